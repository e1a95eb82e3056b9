//! How big and how fresh a dataset is, for the catalog tenants browse: the files, bytes,
//! rows (from the Parquet footers) and newest file of a Parquet dataset; a replica table's
//! size and row estimate from its server's statistics.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::datasource::physical_plan::parquet::metadata::DFParquetMetadata;
use datafusion::execution::SessionState;
use futures::TryStreamExt;
use moka::future::Cache;
use object_store::{ObjectMeta, ObjectStore};
use ring::digest;
use serde::Serialize;
use tollgate_catalog::{Dataset, DatasetId, DatasetLocation};

use crate::sources::postgres_table::table_query;
use crate::sources::replicas::ReplicaSet;
use crate::sources::source_clients::SourceClients;

/// A dataset's size and freshness; `None` where the source does not tell.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DatasetStats {
    /// Bytes at the source: the files' sizes, or the table's on disk.
    pub bytes: Option<u64>,
    /// Rows: exact from Parquet footers, the server's estimate for a replica table.
    pub rows: Option<u64>,
    /// Files, for a dataset of files.
    pub files: Option<u64>,
    /// When its newest file was written.
    pub last_modified: Option<DateTime<Utc>>,
    /// Whether it is read live from a database (a replica table, Athena), so it is as
    /// fresh as its source.
    pub live: bool,
}

/// The Parquet files under `url` and the store they are in.
async fn parquet_files(
    state: &SessionState,
    url: &str,
) -> Result<(Arc<dyn ObjectStore>, Vec<ObjectMeta>), String> {
    let path = ListingTableUrl::parse(url).map_err(|e| e.to_string())?;
    let store = state
        .runtime_env()
        .object_store(&path)
        .map_err(|e| e.to_string())?;
    let files = path
        .list_all_files(state, store.as_ref(), "parquet")
        .await
        .map_err(|e| e.to_string())?
        .try_collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok((store, files))
}

/// What the files of `dataset` look like now, as a digest of their names, sizes and
/// modification times: it changes when a file is added, replaced or removed. `None` for a
/// dataset read live from a database, which may change at any time.
///
/// # Errors
/// Why the files cannot be listed.
pub(crate) async fn source_version(
    state: &SessionState,
    dataset: &Dataset,
) -> Result<Option<String>, String> {
    let DatasetLocation::Parquet { url, .. } = &dataset.location else {
        return Ok(None);
    };
    let (_, mut files) = parquet_files(state, url).await?;
    files.sort_by(|a, b| a.location.cmp(&b.location));
    let mut listing = digest::Context::new(&digest::SHA256);
    for file in &files {
        let line = format!(
            "{}\t{}\t{}\n",
            file.location,
            file.size,
            file.last_modified.timestamp_micros()
        );
        listing.update(line.as_bytes());
    }
    let digest = listing.finish();
    Ok(Some(
        digest
            .as_ref()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect(),
    ))
}

/// One Parquet file of a dataset, as its store lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceFile {
    /// Its path in the store (`tpch/orders/part-0.parquet`).
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// When it was last written.
    pub last_modified: DateTime<Utc>,
}

/// The files of `dataset`, oldest first (by modification time, then path); `None` for a
/// dataset read live from a database.
///
/// # Errors
/// Why the files cannot be listed.
pub(crate) async fn source_files(
    state: &SessionState,
    dataset: &Dataset,
) -> Result<Option<Vec<SourceFile>>, String> {
    let DatasetLocation::Parquet { url, .. } = &dataset.location else {
        return Ok(None);
    };
    let (_, files) = parquet_files(state, url).await?;
    let mut files: Vec<SourceFile> = files
        .into_iter()
        .map(|file| SourceFile {
            path: file.location.to_string(),
            size: file.size,
            last_modified: file.last_modified,
        })
        .collect();
    files.sort_by(|a, b| (a.last_modified, &a.path).cmp(&(b.last_modified, &b.path)));
    Ok(Some(files))
}

/// The files, bytes, rows and newest file under `url`.
///
/// # Errors
/// Why the files cannot be listed or a footer read.
pub(crate) async fn parquet_stats(state: &SessionState, url: &str) -> Result<DatasetStats, String> {
    let (store, files) = parquet_files(state, url).await?;
    let mut stats = DatasetStats {
        bytes: Some(files.iter().map(|f| f.size).sum()),
        rows: Some(0),
        files: Some(files.len() as u64),
        last_modified: files.iter().map(|f| f.last_modified).max(),
        live: false,
    };
    for file in &files {
        let metadata = DFParquetMetadata::new(store.as_ref(), file)
            .fetch_metadata()
            .await
            .map_err(|e| e.to_string())?;
        let rows = u64::try_from(metadata.file_metadata().num_rows()).unwrap_or(0);
        stats.rows = stats.rows.map(|total| total + rows);
    }
    Ok(stats)
}

/// The size on disk and estimated rows of `schema.table` on `replicas`.
///
/// # Errors
/// Why the server could not be asked.
pub(crate) async fn replica_stats(
    replicas: &Arc<ReplicaSet>,
    schema: &str,
    table: &str,
) -> Result<DatasetStats, String> {
    // reltuples is -1 for a table never analysed.
    const SIZE: &str = "SELECT pg_total_relation_size(c.oid), c.reltuples::bigint \
         FROM pg_class c WHERE c.oid = (quote_ident($1) || '.' || quote_ident($2))::regclass";
    let rows = table_query(replicas, SIZE, schema, table).await?;
    let row = rows.first().ok_or("the table is gone")?;
    let bytes: i64 = row.get(0);
    let rows: i64 = row.get(1);
    Ok(DatasetStats {
        bytes: u64::try_from(bytes).ok(),
        rows: u64::try_from(rows).ok(),
        files: None,
        last_modified: None,
        live: true,
    })
}

/// Statistics kept for a while, so browsing the catalog does not read every footer again.
pub(crate) struct StatsCache(Cache<DatasetId, DatasetStats>);

impl StatsCache {
    /// Statistics kept for `ttl`.
    pub(crate) fn new(ttl: Duration) -> Self {
        Self(
            Cache::builder()
                .max_capacity(10_000)
                .time_to_live(ttl)
                .build(),
        )
    }

    /// The statistics of `dataset`, read from its source (with `state`'s object stores, or
    /// the replicas of `clients`) unless kept; `None` if the source does not answer.
    pub(crate) async fn get(
        &self,
        dataset: &Dataset,
        state: &SessionState,
        clients: &tokio::sync::Mutex<SourceClients>,
    ) -> Option<DatasetStats> {
        if let Some(kept) = self.0.get(&dataset.id).await {
            return Some(kept);
        }
        let read = match &dataset.location {
            DatasetLocation::Parquet { url, .. } => parquet_stats(state, url).await,
            DatasetLocation::Postgres {
                source,
                schema,
                table,
            } => {
                let replicas = clients.lock().await.replicas(source);
                match replicas {
                    Ok(replicas) => replica_stats(&replicas, schema, table).await,
                    Err(error) => Err(error.to_string()),
                }
            }
            DatasetLocation::Athena { .. } => Ok(DatasetStats {
                live: true,
                ..DatasetStats::default()
            }),
        };
        match read {
            Ok(stats) => {
                self.0.insert(dataset.id.clone(), stats.clone()).await;
                Some(stats)
            }
            Err(error) => {
                tracing::warn!(dataset = %dataset.id, %error, "cannot read the dataset's statistics");
                None
            }
        }
    }

    /// Forgets what is kept of `dataset`.
    pub(crate) async fn forget(&self, dataset: &DatasetId) {
        self.0.invalidate(dataset).await;
    }
}
