//! Datasets in S3, read through the real S3 API of a moto server on loopback: the grant's
//! columns and row filter apply as for local files, Hive partitions prune, new files
//! appear once the listing cache expires, requests answered with 500, 503 or late are
//! retried with backoff, and a source that breaks (a file of another schema, the server
//! gone, failing or slow for good) fails only the queries on its dataset, with an error
//! that names the dataset and not the bucket.

use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio_postgres::Client;
use tollgate_catalog::{
    DatasetOptions, GrantOptions, HumanDuration, SourceOptions, TollgateOptions,
};
use tollgate_planner::datafusion::arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray};
use tollgate_planner::datafusion::arrow::record_batch::RecordBatch;
use tollgate_planner::datafusion::parquet::arrow::ArrowWriter;
use tollgate_tests::moto::{self, MotoServer};
use tollgate_tests::{TestGateway, assert_dataset_unavailable, message, sqlstate, usage_of};

const BUCKET: &str = "tollgate-lake";

/// One trips file: `rows` trips from `first`, regions cycling EUROPE, AMERICA, ASIA.
fn trips_file(first: i64, rows: i64) -> Vec<u8> {
    let ids: Vec<i64> = (first..first + rows).collect();
    let regions = ["EUROPE", "AMERICA", "ASIA"];
    let batch = RecordBatch::try_from_iter([
        (
            "trip_id",
            Arc::new(Int64Array::from(ids.clone())) as ArrayRef,
        ),
        (
            "region",
            Arc::new(StringArray::from_iter_values(
                ids.iter().map(|id| regions[(id % 3) as usize]),
            )),
        ),
        (
            "fare",
            Arc::new(Float64Array::from_iter_values(
                ids.iter().map(|id| *id as f64 / 4.0),
            )),
        ),
    ])
    .expect("a batch");
    parquet_bytes(&batch)
}

fn parquet_bytes(batch: &RecordBatch) -> Vec<u8> {
    let mut buffer = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buffer, batch.schema(), None).expect("a writer");
    writer.write(batch).expect("write");
    writer.close().expect("close");
    buffer
}

async fn put(store: &Arc<dyn ObjectStore>, key: &str, bytes: Vec<u8>) -> u64 {
    let size = bytes.len() as u64;
    store
        .put(&Path::from(key), bytes.into())
        .await
        .expect("upload");
    size
}

/// Adds source `s3lake` (the bucket on `moto`, listings kept for `ttl`), dataset
/// `lake.trips` partitioned by `year`, and grants: acme sees `trip_id`, `fare` and `year`
/// of its region's trips, globex everything.
fn add_lake(options: &mut TollgateOptions, moto: &MotoServer, ttl: Duration) {
    options.sources.insert(
        "s3lake".to_owned(),
        SourceOptions::S3 {
            bucket: BUCKET.to_owned(),
            prefix: "curated".to_owned(),
            region: Some(moto::REGION.to_owned()),
            endpoint: Some(moto.endpoint().to_owned()),
            access_key_id: Some(moto::ACCESS_KEY.to_owned()),
            secret_access_key: Some(moto::SECRET_KEY.to_owned()),
            session_token: None,
            listing_cache_ttl: HumanDuration(ttl),
            request_timeout: HumanDuration(Duration::from_secs(60)),
        },
    );
    let dataset: DatasetOptions = toml::from_str(
        r#"
        id = "lake.trips"
        source = "s3lake"
        path = "trips"
        partition_columns = [{ name = "year", type = "int" }]
        price_per_gib_scanned = 1.0
        "#,
    )
    .expect("dataset options");
    options.datasets.push(dataset);
    for grant in [
        r#"
        tenant = "acme"
        dataset = "lake.trips"
        columns = ["trip_id", "fare", "year"]
        row_filter = "region = $region"
        "#,
        r#"
        tenant = "globex"
        dataset = "lake.trips"
        "#,
    ] {
        let grant: GrantOptions = toml::from_str(grant).expect("grant options");
        options.grants.push(grant);
    }
}

/// A lake with 2024 (trips 0–2999) and 2025 (3000–5999); the sizes of the two files.
async fn lake(moto: &MotoServer) -> (u64, u64) {
    moto.create_bucket(BUCKET);
    let store = moto.s3(BUCKET);
    let y2024 = put(
        &store,
        "curated/trips/year=2024/part-0.parquet",
        trips_file(0, 3000),
    )
    .await;
    let y2025 = put(
        &store,
        "curated/trips/year=2025/part-0.parquet",
        trips_file(3000, 3000),
    )
    .await;
    (y2024, y2025)
}

async fn count(client: &Client) -> i64 {
    client
        .query_one("SELECT count(*) FROM lake.trips", &[])
        .await
        .expect("count trips")
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_dataset_is_scoped_like_local_files_and_partitions_prune() {
    let moto = MotoServer::start();
    let (y2024, y2025) = lake(&moto).await;
    let gateway = TestGateway::start_with(|options| {
        options.usage.record_sql_text = true;
        add_lake(options, &moto, Duration::from_secs(60));
    })
    .await;

    // acme: its region's trips only, and only the granted columns.
    let acme = gateway.connect("acme").await;
    let row = acme
        .query_one(
            "SELECT count(*), min(trip_id), sum(fare) FROM lake.trips",
            &[],
        )
        .await
        .expect("acme reads lake.trips");
    let europe: Vec<i64> = (0..6000).filter(|id| id % 3 == 0).collect();
    assert_eq!(row.get::<_, i64>(0), europe.len() as i64);
    assert_eq!(row.get::<_, i64>(1), 0);
    let fares: f64 = europe.iter().map(|id| *id as f64 / 4.0).sum();
    assert!((row.get::<_, f64>(2) - fares).abs() < 1e-6);
    let error = acme
        .query("SELECT region FROM lake.trips", &[])
        .await
        .expect_err("region is not granted to acme");
    assert_eq!(sqlstate(&error), "42703");

    // globex: everything, with the partition column typed as declared.
    let globex = gateway.connect("globex").await;
    let row = globex
        .query_one(
            "SELECT count(*), count(DISTINCT region), max(year) FROM lake.trips",
            &[],
        )
        .await
        .expect("globex reads lake.trips");
    assert_eq!(row.get::<_, i64>(0), 6000);
    assert_eq!(row.get::<_, i64>(1), 3);
    assert_eq!(row.get::<_, i32>(2), 2025);

    // A filter on the partition column reads only that partition's file.
    let rows = globex
        .query_one(
            "SELECT count(*), sum(fare) FROM lake.trips WHERE year = 2025 AND 'only-2025' <> ''",
            &[],
        )
        .await
        .expect("2025 only");
    assert_eq!(rows.get::<_, i64>(0), 3000);
    let scanned = usage_of(&globex, "bytes_scanned", "only-2025").await;
    assert!(
        scanned > 0 && (scanned as u64) <= y2025,
        "scanned {scanned} bytes for 2025, whose file has {y2025} (2024's: {y2024})"
    );
    let all = globex
        .query_one(
            "SELECT sum(fare) FROM lake.trips WHERE 'all-years' <> ''",
            &[],
        )
        .await
        .expect("all years");
    assert!(all.get::<_, f64>(0) > 0.0);
    let scanned_all = usage_of(&globex, "bytes_scanned", "all-years").await;
    assert!(
        scanned_all > scanned,
        "a full scan ({scanned_all} bytes) reads more than one partition ({scanned})"
    );
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_s3_files_appear_when_the_listing_expires() {
    let moto = MotoServer::start();
    lake(&moto).await;
    let gateway = TestGateway::start_with(|options| {
        add_lake(options, &moto, Duration::from_secs(1));
    })
    .await;
    let globex = gateway.connect("globex").await;
    assert_eq!(count(&globex).await, 6000);

    let store = moto.s3(BUCKET);
    put(
        &store,
        "curated/trips/year=2026/part-0.parquet",
        trips_file(6000, 500),
    )
    .await;
    let started = Instant::now();
    loop {
        let seen = count(&globex).await;
        if seen == 6500 {
            break;
        }
        assert_eq!(seen, 6000, "either the old or the new listing");
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the new file did not appear within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_source_fails_only_its_dataset_and_hides_its_location() {
    let mut moto = MotoServer::start();
    lake(&moto).await;
    let gateway = TestGateway::start_with(|options| {
        add_lake(options, &moto, Duration::from_millis(100));
    })
    .await;
    let globex = gateway.connect("globex").await;
    let orders: i64 = globex
        .query_one("SELECT count(*) FROM tpch.orders", &[])
        .await
        .expect("local datasets are served")
        .get(0);

    // Schema drift: a new file whose `fare` is text.
    let drifted = RecordBatch::try_from_iter([
        (
            "trip_id",
            Arc::new(Int64Array::from(vec![9000_i64])) as ArrayRef,
        ),
        ("region", Arc::new(StringArray::from(vec!["ASIA"]))),
        ("fare", Arc::new(StringArray::from(vec!["twelve"]))),
    ])
    .expect("a batch");
    let store = moto.s3(BUCKET);
    put(
        &store,
        "curated/trips/year=2027/part-0.parquet",
        parquet_bytes(&drifted),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let error = globex
        .query("SELECT sum(fare) FROM lake.trips", &[])
        .await
        .expect_err("a file of another schema");
    assert_dataset_unavailable(&error, "lake.trips", "schema", &[BUCKET, "curated"]);
    store
        .delete(&Path::from("curated/trips/year=2027/part-0.parquet"))
        .await
        .expect("remove the drifted file");

    // The server goes away: queries on the lake fail, the local datasets still answer.
    moto.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let error = globex
        .query("SELECT count(*) FROM lake.trips", &[])
        .await
        .expect_err("the source is down");
    assert_dataset_unavailable(
        &error,
        "lake.trips",
        "cannot be reached",
        &[BUCKET, "127.0.0.1"],
    );
    let still: i64 = globex
        .query_one("SELECT count(*) FROM tpch.orders", &[])
        .await
        .expect("local datasets are still served")
        .get(0);
    assert_eq!(still, orders);
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_fail_the_dataset_without_its_location() {
    let moto = MotoServer::start_refusing_credentials();
    let gateway = TestGateway::start_with(|options| {
        add_lake(options, &moto, Duration::from_millis(100));
        // Declared columns: nothing is read from the store before the query.
        options
            .datasets
            .retain(|dataset| dataset.id != "lake.trips");
        let dataset: DatasetOptions = toml::from_str(
            r#"
            id = "lake.trips"
            source = "s3lake"
            path = "trips"
            partition_columns = [{ name = "year", type = "int" }]
            columns = [
                { name = "trip_id", type = "bigint" },
                { name = "region", type = "varchar" },
                { name = "fare", type = "double" },
            ]
            "#,
        )
        .expect("dataset options");
        options.datasets.push(dataset);
    })
    .await;
    let globex = gateway.connect("globex").await;
    let error = globex
        .query("SELECT count(*) FROM lake.trips", &[])
        .await
        .expect_err("the store refuses the keys");
    assert_dataset_unavailable(
        &error,
        "lake.trips",
        "refused the gateway's credentials",
        &[BUCKET, "curated"],
    );
    let orders: i64 = globex
        .query_one("SELECT count(*) FROM tpch.orders", &[])
        .await
        .expect("local datasets still answer")
        .get(0);
    assert!(orders > 0);
    gateway.stop().await;
}

/// The sum of all fares, read from the files' data pages (a count could come from their
/// footers alone).
async fn fares(client: &Client) -> Result<f64, tokio_postgres::Error> {
    Ok(client
        .query_one("SELECT sum(fare) FROM lake.trips", &[])
        .await?
        .get(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_and_slow_store_requests_are_retried_then_fail_only_the_dataset() {
    let moto = MotoServer::start();
    lake(&moto).await;
    let gateway = TestGateway::start_with(|options| {
        add_lake(options, &moto, Duration::from_secs(60));
        if let Some(SourceOptions::S3 {
            request_timeout, ..
        }) = options.sources.get_mut("s3lake")
        {
            *request_timeout = HumanDuration(Duration::from_millis(500));
        }
    })
    .await;
    let globex = gateway.connect("globex").await;
    let expected = fares(&globex).await.expect("the lake answers");

    // Faults the two retries of each request get past: the answer is whole and the same.
    for (status, delay, faults) in [
        (Some(503), Duration::ZERO, 2),
        (Some(500), Duration::ZERO, 2),
        (None, Duration::from_secs(2), 1),
    ] {
        moto.inject_faults(status, delay, faults).await;
        let started = Instant::now();
        let answer = fares(&globex).await.expect("answered after retries");
        eprintln!(
            "{faults} object reads answered {status:?} after {delay:?}: the query took {:?}",
            started.elapsed()
        );
        assert!((answer - expected).abs() < 1e-6, "{answer} vs {expected}");
        assert_eq!(moto.faults_served().await, faults as u64);
    }

    // A store failing or slow for good: after the retries the query fails with 58000,
    // naming the dataset and not the store, well within the statement timeout.
    for (status, delay, what) in [
        (Some(503), Duration::ZERO, "503"),
        (None, Duration::from_secs(2), "slow"),
    ] {
        moto.inject_faults(status, delay, 1_000).await;
        let started = Instant::now();
        let error = fares(&globex).await.expect_err("the store keeps failing");
        let took = started.elapsed();
        let served = moto.faults_served().await;
        eprintln!(
            "{what} for good: failed after {took:?} and {served} tries: {}",
            message(&error)
        );
        assert_dataset_unavailable(
            &error,
            "lake.trips",
            "cannot be reached",
            &[BUCKET, "127.0.0.1"],
        );
        assert!(served >= 3, "a request is tried three times: {served}");
        assert!(took < Duration::from_secs(15), "{took:?}");
    }

    // The store mends: the next query is answered again, other datasets all along.
    moto.inject_faults(None, Duration::ZERO, 0).await;
    let answer = fares(&globex).await.expect("answered once the store mends");
    assert!((answer - expected).abs() < 1e-6);
    globex
        .query_one("SELECT count(*) FROM tpch.orders", &[])
        .await
        .expect("local datasets are served");
    gateway.stop().await;
}
