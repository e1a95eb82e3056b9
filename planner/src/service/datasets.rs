//! What the control plane asks of datasets beside queries: the columns a dataset would
//! have before it is served, and how big and fresh a served one is.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use tollgate_catalog::{Dataset, DatasetId};

use crate::error::PlannerError;
use crate::service::engine::QueryService;
use crate::sources::dataset_stats::{DatasetStats, SourceFile};

impl QueryService {
    /// The columns `dataset` (not necessarily served) would have, read from its source:
    /// its files' schema or the declared one, its replica table's columns.
    ///
    /// # Errors
    /// [`PlannerError::Source`] if the source cannot be read, or a declared type is not
    /// a SQL type.
    pub async fn probe_dataset(&self, dataset: &Dataset) -> Result<SchemaRef, PlannerError> {
        self.live.probe(dataset).await
    }

    /// The size, rows and freshness of the served dataset `id`, kept for a minute; `None`
    /// if it is not served or its source does not answer.
    pub async fn dataset_stats(&self, id: &DatasetId) -> Option<DatasetStats> {
        let dataset = self.catalog().dataset(id).cloned()?;
        self.live.stats(&dataset).await
    }

    /// A digest of what the files of the served dataset `id` look like now (names, sizes,
    /// modification times), which changes when a file is added, replaced or removed;
    /// `Ok(None)` for a dataset read live from a database.
    ///
    /// # Errors
    /// [`PlannerError::Source`] if `id` is not served or its files cannot be listed.
    pub async fn source_version(&self, id: &DatasetId) -> Result<Option<String>, PlannerError> {
        let dataset = self.served(id)?;
        self.live
            .source_version(&dataset)
            .await
            .map_err(|message| source_error(id, message))
    }

    /// The Parquet files of the served dataset `id`, oldest first; `Ok(None)` for a dataset
    /// read live from a database. New files show within the source's `listing_cache_ttl`.
    ///
    /// # Errors
    /// [`PlannerError::Source`] if `id` is not served or its files cannot be listed.
    pub async fn source_files(
        &self,
        id: &DatasetId,
    ) -> Result<Option<Vec<SourceFile>>, PlannerError> {
        let dataset = self.served(id)?;
        self.live
            .source_files(&dataset)
            .await
            .map_err(|message| source_error(id, message))
    }

    /// The served dataset `id`.
    pub(super) fn served(&self, id: &DatasetId) -> Result<Arc<Dataset>, PlannerError> {
        self.catalog()
            .dataset(id)
            .cloned()
            .ok_or_else(|| source_error(id, "not served".to_owned()))
    }
}

/// A source error of dataset `id`.
pub(super) fn source_error(id: &DatasetId, message: String) -> PlannerError {
    PlannerError::Source {
        dataset: id.to_string(),
        message,
    }
}
