//! Bytes scanned, counted where they are read: a wrapper around every object store a query
//! uses, attributing each read to the dataset whose files it touched.
//!
//! ```text
//! query's RuntimeEnv ── MeteredRegistry ── get_store(url) ──▶ MeteredStore(inner store)
//!                                                               │ get_opts / get_ranges
//!                                                               ▼
//!                                          ScanMeter: bytes per dataset (by path prefix)
//! ```
//!
//! Counting at the store measures exactly what pruning left: skipped files, row groups and
//! pages are never read, so never billed.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use datafusion::common::Result as EngineResult;
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::execution::object_store::ObjectStoreRegistry;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result as StoreResult,
};
use tollgate_catalog::{Catalog, DatasetLocation};
use url::Url;

use crate::error::PlannerError;

/// Where each dataset's files live: store URL and path prefix.
#[derive(Debug, Default)]
pub(crate) struct DatasetPaths {
    entries: Vec<DatasetPath>,
}

#[derive(Debug)]
struct DatasetPath {
    store: String,
    prefix: Path,
    dataset: String,
}

impl DatasetPaths {
    /// Where the files of `catalog`'s Parquet datasets live.
    ///
    /// # Errors
    /// [`PlannerError::Source`] for a dataset URL that does not parse.
    pub fn from_catalog(catalog: &Catalog) -> Result<Self, PlannerError> {
        let mut paths = Self::default();
        for dataset in catalog.datasets() {
            let DatasetLocation::Parquet { url, .. } = &dataset.location else {
                continue;
            };
            let id = dataset.id.to_string();
            let url = ListingTableUrl::parse(url).map_err(|e| PlannerError::Source {
                dataset: id.clone(),
                message: format!("cannot locate its files: {e}"),
            })?;
            paths.add(url.object_store().as_ref(), url.prefix().clone(), id);
        }
        Ok(paths)
    }

    /// Adds `dataset`, whose files are under `prefix` in the store at `store` (`file:///`,
    /// `s3://bucket/`).
    pub fn add(&mut self, store: &Url, prefix: Path, dataset: String) {
        self.entries.push(DatasetPath {
            store: store_key(store),
            prefix,
            dataset,
        });
    }

    /// How many datasets are mapped.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The dataset at `index`.
    pub fn dataset(&self, index: usize) -> Option<&str> {
        self.entries.get(index).map(|entry| entry.dataset.as_str())
    }

    /// The index of the dataset owning `location` in `store`: the longest matching prefix.
    fn owner(&self, store: &str, location: &Path) -> Option<usize> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, entry)| entry.store == store && location.prefix_matches(&entry.prefix))
            .max_by_key(|(_, entry)| entry.prefix.as_ref().len())
            .map(|(index, _)| index)
    }
}

/// The store a URL names: scheme and authority (`file://`, `s3://bucket`).
fn store_key(url: &Url) -> String {
    format!(
        "{}://{}",
        url.scheme(),
        &url[url::Position::BeforeHost..url::Position::AfterPort]
    )
}

/// One query's bytes read, per dataset.
#[derive(Debug)]
pub(crate) struct ScanMeter {
    paths: Arc<DatasetPaths>,
    /// One counter per dataset of `paths`, then one for reads no dataset owns.
    bytes: Vec<AtomicU64>,
}

impl ScanMeter {
    pub fn new(paths: Arc<DatasetPaths>) -> Self {
        let bytes = (0..=paths.len()).map(|_| AtomicU64::new(0)).collect();
        Self { paths, bytes }
    }

    fn count(&self, store: &str, location: &Path, bytes: u64) {
        let index = self
            .paths
            .owner(store, location)
            .unwrap_or(self.paths.len());
        if let Some(counter) = self.bytes.get(index) {
            counter.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// Bytes read per dataset, for datasets read at all; and bytes no dataset owns.
    pub fn totals(&self) -> (Vec<(String, u64)>, u64) {
        let mut per_dataset = Vec::new();
        for (index, counter) in self.bytes.iter().enumerate() {
            let bytes = counter.load(Ordering::Relaxed);
            if bytes == 0 {
                continue;
            }
            if let Some(dataset) = self.paths.dataset(index) {
                per_dataset.push((dataset.to_owned(), bytes));
            }
        }
        let unowned = self
            .bytes
            .last()
            .map_or(0, |counter| counter.load(Ordering::Relaxed));
        (per_dataset, unowned)
    }
}

/// The object stores of one query, each wrapped to count into its [`ScanMeter`].
#[derive(Debug)]
pub(crate) struct MeteredRegistry {
    inner: Arc<dyn ObjectStoreRegistry>,
    meter: Arc<ScanMeter>,
}

impl MeteredRegistry {
    pub fn new(inner: Arc<dyn ObjectStoreRegistry>, meter: Arc<ScanMeter>) -> Self {
        Self { inner, meter }
    }
}

impl ObjectStoreRegistry for MeteredRegistry {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.inner.register_store(url, store)
    }

    fn get_store(&self, url: &Url) -> EngineResult<Arc<dyn ObjectStore>> {
        let inner = self.inner.get_store(url)?;
        Ok(Arc::new(MeteredStore {
            inner,
            store: store_key(url),
            meter: Arc::clone(&self.meter),
        }))
    }
}

/// An object store that counts the bytes it returns.
#[derive(Debug)]
struct MeteredStore {
    inner: Arc<dyn ObjectStore>,
    store: String,
    meter: Arc<ScanMeter>,
}

impl fmt::Display for MeteredStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Metered({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for MeteredStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        options: PutOptions,
    ) -> StoreResult<PutResult> {
        self.inner.put_opts(location, payload, options).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        options: PutMultipartOptions,
    ) -> StoreResult<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, options).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> StoreResult<GetResult> {
        let head = options.head;
        let result = self.inner.get_opts(location, options).await?;
        if !head {
            let returned = result.range.end.saturating_sub(result.range.start);
            self.meter.count(&self.store, location, returned);
        }
        Ok(result)
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> StoreResult<Vec<Bytes>> {
        let parts = self.inner.get_ranges(location, ranges).await?;
        let returned = parts.iter().map(|part| part.len() as u64).sum();
        self.meter.count(&self.store, location, returned);
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

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, StoreResult<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> StoreResult<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> StoreResult<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> StoreResult<()> {
        self.inner.rename_opts(from, to, options).await
    }
}
