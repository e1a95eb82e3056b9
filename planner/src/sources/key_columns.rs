//! A dataset's declared keys against the columns its files turned out to have: every key
//! column must be one of them, and the primary key's are NOT NULL, as in PostgreSQL.

use std::sync::Arc;

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::error::{DataFusionError, Result};
use tollgate_catalog::Dataset;

/// `schema`, inferred from `dataset`'s files, with its primary key's columns NOT NULL.
///
/// # Errors
/// [`DataFusionError::Plan`] naming a key column the files do not have.
pub(crate) fn with_keys(dataset: &Dataset, schema: SchemaRef) -> Result<SchemaRef> {
    let foreign = dataset.foreign_keys.iter().flat_map(|key| &key.columns);
    if let Some(missing) = dataset
        .primary_key
        .iter()
        .chain(foreign)
        .find(|name| schema.field_with_name(name).is_err())
    {
        return Err(DataFusionError::Plan(format!(
            "its key names `{missing}`, which its files do not have"
        )));
    }
    if dataset.primary_key.is_empty() {
        return Ok(schema);
    }
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .map(|field| {
            if dataset.primary_key.contains(field.name()) {
                Arc::new(field.as_ref().clone().with_nullable(false))
            } else {
                Arc::clone(field)
            }
        })
        .collect();
    Ok(Arc::new(Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    )))
}
