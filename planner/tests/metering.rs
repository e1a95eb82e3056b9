//! Bytes scanned are what the object store served: the engine's record of a query equals
//! what a counting store around the same files saw, and pruning shows up as fewer bytes.

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use bytes::Bytes;
use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::file::properties::WriterProperties;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result as StoreResult,
};
use tokio_util::sync::CancellationToken;
use tollgate_catalog::scram::Verifier;
use tollgate_catalog::{Catalog, TollgateOptions};
use tollgate_planner::metering::{
    ClientInfo, LedgerError, Outcome, Protocol, Receipt, UsageLedger, UsageRecord, UsageScope,
};
use tollgate_planner::{QueryContext, QueryService};

const ROWS: i64 = 200_000;
const ROWS_PER_GROUP: usize = 20_000;

/// Keeps records in memory, as submitted.
#[derive(Debug, Default)]
struct KeptRecords(Mutex<Vec<UsageRecord>>);

impl UsageLedger for KeptRecords {
    fn submit(&self, record: UsageRecord) -> Receipt {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(record);
        Box::pin(std::future::ready(Ok(())))
    }

    fn records(
        &self,
        scope: UsageScope,
    ) -> BoxFuture<'static, Result<Vec<UsageRecord>, LedgerError>> {
        let records = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let kept = records
            .iter()
            .filter(|r| scope.contains(r))
            .cloned()
            .collect();
        Box::pin(std::future::ready(Ok(kept)))
    }
}

/// Counts the bytes a local file system returns.
#[derive(Debug)]
struct CountingStore {
    inner: LocalFileSystem,
    bytes: AtomicU64,
}

impl fmt::Display for CountingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Counting({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for CountingStore {
    async fn put_opts(&self, l: &Path, p: PutPayload, o: PutOptions) -> StoreResult<PutResult> {
        self.inner.put_opts(l, p, o).await
    }

    async fn put_multipart_opts(
        &self,
        l: &Path,
        o: PutMultipartOptions,
    ) -> StoreResult<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(l, o).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> StoreResult<GetResult> {
        let head = options.head;
        let result = self.inner.get_opts(location, options).await?;
        if !head {
            self.bytes
                .fetch_add(result.range.end - result.range.start, Ordering::Relaxed);
        }
        Ok(result)
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> StoreResult<Vec<Bytes>> {
        let parts = self.inner.get_ranges(location, ranges).await?;
        let bytes: u64 = parts.iter().map(|p| p.len() as u64).sum();
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        Ok(parts)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, StoreResult<Path>>,
    ) -> BoxStream<'static, StoreResult<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, StoreResult<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> StoreResult<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> StoreResult<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// A Parquet file of `ROWS` rows sorted by `key`, in row groups of `ROWS_PER_GROUP`.
fn write_sorted_parquet(path: &std::path::Path) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("key", DataType::Int64, false),
        Field::new("payload", DataType::Utf8, false),
    ]));
    let keys = Int64Array::from_iter_values(0..ROWS);
    let payload = StringArray::from_iter_values((0..ROWS).map(|i| format!("payload-{i:08}")));
    let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(keys), Arc::new(payload)])
        .expect("batch");
    let properties = WriterProperties::builder()
        .set_max_row_group_row_count(Some(ROWS_PER_GROUP))
        .build();
    let file = std::fs::File::create(path).expect("create the Parquet file");
    let mut writer = ArrowWriter::try_new(file, schema, Some(properties)).expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
}

struct Fixture {
    service: QueryService,
    ledger: Arc<KeptRecords>,
    store: Arc<CountingStore>,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    write_sorted_parquet(&dir.path().join("events.parquet"));
    let verifier = Verifier::derive("acme", std::num::NonZeroU32::MIN).expect("verifier");
    let config = format!(
        r#"
[sources.lake]
kind = "local"
path = "{}"

[profiles.M]

[[datasets]]
id = "log.events"
source = "lake"
path = "events.parquet"
price_per_gib = 2.0
price_per_gib_scanned = 0.5

[[tenants]]
id = "acme"
profile = "M"

[[principals]]
user = "acme"
tenant = "acme"
scram_verifier = "{verifier}"

[[grants]]
tenant = "acme"
dataset = "log.events"
"#,
        dir.path().display()
    );
    let options: TollgateOptions = toml::from_str(&config).expect("configuration");
    let catalog = Arc::new(Catalog::from_options(&options).expect("catalog"));
    let ledger = Arc::new(KeptRecords::default());
    let service = QueryService::new(catalog, Arc::clone(&ledger) as Arc<dyn UsageLedger>)
        .await
        .expect("service");
    let store = Arc::new(CountingStore {
        inner: LocalFileSystem::new(),
        bytes: AtomicU64::new(0),
    });
    let url = url::Url::parse("file://").expect("url");
    service.register_object_store(&url, Arc::clone(&store) as Arc<dyn ObjectStore>);
    Fixture {
        service,
        ledger,
        store,
        _dir: dir,
    }
}

impl Fixture {
    /// Runs `sql` as acme to its end; its record and the bytes the counting store served.
    async fn run(&self, sql: &str) -> (UsageRecord, u64, u64) {
        let principal = self.service.principal("acme").expect("acme");
        let session = self.service.session(&principal).expect("session");
        let ctx = QueryContext::new(
            session,
            principal,
            CancellationToken::new(),
            Arc::new(ClientInfo::new(Protocol::Pgwire)),
        );
        let before = self.store.bytes.load(Ordering::Relaxed);
        let mut statements = self.service.parse(&ctx, sql).expect("parse");
        let planned = self
            .service
            .plan(&ctx, statements.remove(0))
            .await
            .expect("plan");
        let mut stream = self
            .service
            .execute(&ctx, &planned, Vec::new())
            .await
            .expect("execute");
        let mut rows = 0;
        while let Some(batch) = stream.next().await {
            rows += batch.expect("batch").num_rows() as u64;
        }
        let served = self.store.bytes.load(Ordering::Relaxed) - before;
        let record = self
            .ledger
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last()
            .cloned()
            .expect("a record");
        (record, served, rows)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bytes_scanned_equal_what_the_object_store_served() {
    let fixture = fixture().await;
    for sql in [
        "SELECT key, payload FROM log.events",
        "SELECT count(*) FROM log.events WHERE key % 7 = 0",
        "SELECT payload FROM log.events WHERE key BETWEEN 1000 AND 1100",
    ] {
        let (record, served, rows) = fixture.run(sql).await;
        assert_eq!(record.outcome, Outcome::Ok, "{sql}");
        assert!(served > 0, "{sql}: the store served nothing");
        assert_eq!(record.bytes_scanned, served, "{sql}");
        assert_eq!(record.rows_returned, rows, "{sql}");
        assert_eq!(record.datasets, vec!["log.events".to_owned()], "{sql}");
        assert_eq!(record.scans.len(), 1, "{sql}");
        assert_eq!(record.scans[0].bytes_scanned, served, "{sql}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_selective_filter_meters_fewer_bytes_and_rows_than_a_full_scan() {
    let fixture = fixture().await;
    let (full, _, _) = fixture
        .run("SELECT max(payload) FROM log.events WHERE key >= 0")
        .await;
    let (selective, _, rows) = fixture
        .run("SELECT payload FROM log.events WHERE key < 100")
        .await;
    assert_eq!(rows, 100);
    // One row group of ten is read: pruning is billed, not the whole file.
    assert!(
        selective.bytes_scanned * 5 < full.bytes_scanned,
        "selective {} vs full {}",
        selective.bytes_scanned,
        full.bytes_scanned
    );
    assert!(
        selective.rows_scanned <= ROWS_PER_GROUP as u64,
        "{}",
        selective.rows_scanned
    );
    assert_eq!(full.rows_scanned, ROWS as u64);
}

#[tokio::test(flavor = "multi_thread")]
async fn cost_prices_scanned_and_returned_bytes() {
    let fixture = fixture().await;
    let (record, _, _) = fixture.run("SELECT key, payload FROM log.events").await;
    let gib = f64::from(1u32 << 30);
    let expected =
        record.bytes_scanned as f64 / gib * 0.5 + record.bytes_returned as f64 / gib * 2.0;
    assert!(record.bytes_returned > 0);
    assert!(
        (record.cost - expected).abs() < 1e-12,
        "{} vs {expected}",
        record.cost
    );
    assert_eq!(record.scans[0].bytes_returned, record.bytes_returned);
}
