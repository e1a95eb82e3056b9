//! Building a [`Catalog`] from [`TollgateOptions`]: every cross reference, unit and SQL
//! fragment checked, each error naming the key at fault (`grants[2].dataset`).

use std::collections::BTreeMap;
use std::sync::Arc;

use url::Url;

use super::shape;
use super::{
    Catalog, Column, Dataset, DatasetId, DatasetLocation, Grant, GrantColumn, Principal, Profile,
    RateLimit, Tenant, quote_identifier, referenced_attributes,
};
use crate::error::CatalogError;
use crate::options::{GrantColumnOptions, SourceOptions, TollgateOptions};
use crate::scram::Verifier;

/// The most threads one profile's executor may have.
const MAX_PARALLELISM: usize = 1024;
/// The most queries, queued queries or connections one profile may allow.
const MAX_COUNT: usize = 1_000_000;

impl Catalog {
    /// Validates options into a catalog.
    ///
    /// # Errors
    /// [`CatalogError::Invalid`] naming the first key at fault.
    pub fn from_options(options: &TollgateOptions) -> Result<Self, CatalogError> {
        if options.database.is_empty() {
            return Err(CatalogError::invalid("database", "must not be empty"));
        }
        let mut profiles = BTreeMap::new();
        for (name, profile) in &options.profiles {
            // Each unit of parallelism is a thread of the tenant's own executor.
            if !(1..=MAX_PARALLELISM).contains(&profile.parallelism) {
                return Err(CatalogError::invalid(
                    format!("profiles.{name}.parallelism"),
                    format!("must be between 1 and {MAX_PARALLELISM}"),
                ));
            }
            if profile.statement_timeout.duration().is_zero() {
                return Err(CatalogError::invalid(
                    format!("profiles.{name}.statement_timeout"),
                    "must be positive",
                ));
            }
            let key = |field: &str| format!("profiles.{name}.{field}");
            for (field, value) in [
                ("max_concurrent_queries", profile.max_concurrent_queries),
                ("max_connections", profile.max_connections),
            ] {
                if !(1..=MAX_COUNT).contains(&value) {
                    return Err(CatalogError::invalid(
                        key(field),
                        format!("must be between 1 and {MAX_COUNT}"),
                    ));
                }
            }
            if !profile.price_factor.is_finite() || profile.price_factor < 0.0 {
                return Err(CatalogError::invalid(
                    key("price_factor"),
                    "must be a number, at least 0",
                ));
            }
            if profile.queue_length > MAX_COUNT {
                return Err(CatalogError::invalid(
                    key("queue_length"),
                    format!("must be at most {MAX_COUNT}"),
                ));
            }
            let rate = match profile.rate_limit {
                None => None,
                Some(per_second) if per_second.is_finite() && per_second > 0.0 => {
                    Some(RateLimit {
                        per_second,
                        // One second's worth by default, at least one query.
                        burst: profile
                            .rate_burst
                            .unwrap_or_else(|| {
                                per_second.ceil().clamp(1.0, f64::from(u32::MAX)) as u32
                            })
                            .max(1),
                    })
                }
                Some(_) => {
                    return Err(CatalogError::invalid(
                        key("rate_limit"),
                        "must be a positive number of queries per second",
                    ));
                }
            };
            profiles.insert(
                name.clone(),
                Arc::new(Profile {
                    name: name.clone(),
                    memory_limit: profile.memory_limit,
                    spill: profile.spill,
                    spill_quota: profile.spill_quota,
                    statement_timeout: profile.statement_timeout.duration(),
                    parallelism: profile.parallelism,
                    max_concurrent_queries: profile.max_concurrent_queries,
                    queue_length: profile.queue_length,
                    max_queue_wait: profile.max_queue_wait.duration(),
                    rate,
                    max_result_rows: profile.max_result_rows,
                    max_result_bytes: profile.max_result_bytes,
                    max_connections: profile.max_connections,
                    athena_workgroup: profile.athena_workgroup.clone(),
                    max_join_pairs: profile.max_join_pairs,
                    max_recursive_rows: profile.max_recursive_rows,
                    max_generated_rows: profile.max_generated_rows,
                    max_value_size: profile.max_value_size,
                    price_factor: profile.price_factor,
                    push_retention: profile.push_retention.duration(),
                    push_max_bytes: profile.push_max_bytes,
                    push_in_flight: profile.push_in_flight.max(1),
                }),
            );
        }

        for (name, source) in &options.sources {
            if let SourceOptions::S3 {
                request_timeout, ..
            } = source
                && request_timeout.duration().is_zero()
            {
                return Err(CatalogError::invalid(
                    format!("sources.{name}.request_timeout"),
                    "must be positive",
                ));
            }
            if let SourceOptions::Postgres {
                replicas,
                max_connections,
                read_timeout,
                ..
            } = source
            {
                let key = |field: &str| format!("sources.{name}.{field}");
                if replicas.is_empty() {
                    return Err(CatalogError::invalid(key("replicas"), "lists no replica"));
                }
                if read_timeout.duration().is_zero() {
                    return Err(CatalogError::invalid(
                        key("read_timeout"),
                        "must be positive",
                    ));
                }
                if *max_connections == 0 {
                    return Err(CatalogError::invalid(
                        key("max_connections"),
                        "must be at least 1",
                    ));
                }
            }
        }

        let mut datasets = BTreeMap::new();
        for (i, dataset) in options.datasets.iter().enumerate() {
            let key = |field: &str| format!("datasets[{i}].{field}");
            let id =
                DatasetId::parse(&dataset.id).map_err(|m| CatalogError::invalid(key("id"), m))?;
            if dataset.format != "parquet" {
                return Err(CatalogError::invalid(
                    key("format"),
                    format!("`{}` is not supported; use \"parquet\"", dataset.format),
                ));
            }
            let location = match options.sources.get(&dataset.source) {
                None => {
                    return Err(CatalogError::invalid(
                        key("source"),
                        format!("no source named `{}` in [sources]", dataset.source),
                    ));
                }
                Some(SourceOptions::Postgres { .. }) => {
                    let (schema, table) = dataset.path.split_once('.').ok_or_else(|| {
                        CatalogError::invalid(
                            key("path"),
                            format!("`{}` is not a table of the form schema.table", dataset.path),
                        )
                    })?;
                    if !dataset.partition_columns.is_empty() {
                        return Err(CatalogError::invalid(
                            key("partition_columns"),
                            "applies to Parquet files only",
                        ));
                    }
                    DatasetLocation::Postgres {
                        source: dataset.source.clone(),
                        schema: schema.to_owned(),
                        table: table.to_owned(),
                    }
                }
                Some(SourceOptions::Athena(_)) => {
                    if dataset.columns.is_none() || !dataset.partition_columns.is_empty() {
                        return Err(CatalogError::invalid(
                            key("columns"),
                            "a dataset on Athena declares its columns (and no partition columns)",
                        ));
                    }
                    DatasetLocation::Athena {
                        source: dataset.source.clone(),
                        table: dataset.path.clone(),
                    }
                }
                Some(source) => DatasetLocation::Parquet {
                    source: dataset.source.clone(),
                    url: parquet_url(source, &dataset.path)
                        .map_err(|m| CatalogError::invalid(key("path"), m))?,
                    partition_columns: dataset.partition_columns.iter().map(Column::from).collect(),
                },
            };
            let mut columns = dataset
                .columns
                .as_ref()
                .map(|columns| columns.iter().map(Column::from).collect::<Vec<_>>());
            if columns.as_ref().is_some_and(Vec::is_empty) {
                return Err(CatalogError::invalid(
                    key("columns"),
                    "declares no column; omit the key to infer them",
                ));
            }
            if let Some(declared) = &columns
                && let Some(unknown) = dataset.column_descriptions.keys().find(|name| {
                    !declared.iter().any(|c| &c.name == *name)
                        && !dataset.partition_columns.iter().any(|c| &c.name == *name)
                })
            {
                return Err(CatalogError::invalid(
                    key("column_descriptions"),
                    format!("describes `{unknown}`, which is not a column of the dataset"),
                ));
            }
            for (name, price) in [
                ("price_per_gib", dataset.price_per_gib),
                ("price_per_gib_scanned", dataset.price_per_gib_scanned),
            ] {
                if !(price.is_finite() && price >= 0.0) {
                    return Err(CatalogError::invalid(
                        key(name),
                        "must be a non-negative number",
                    ));
                }
            }
            if let Some(column) = &dataset.watermark {
                if !matches!(location, DatasetLocation::Postgres { .. }) {
                    return Err(CatalogError::invalid(
                        key("watermark"),
                        "only a table of a `postgres` source has one; new files are new rows",
                    ));
                }
                if let Some(declared) = &columns
                    && !declared.iter().any(|c| &c.name == column)
                {
                    return Err(CatalogError::invalid(
                        key("watermark"),
                        format!("`{column}` is not a column of the dataset"),
                    ));
                }
            }
            let primary_key = shape::primary_key(i, dataset, columns.as_deref())?;
            let foreign_keys = shape::foreign_keys(i, dataset, columns.as_deref())?;
            if let Some(columns) = &mut columns {
                shape::not_null_keys(columns, &primary_key);
            }
            let entry = Dataset {
                id: id.clone(),
                location,
                columns,
                description: dataset.description.clone(),
                column_descriptions: dataset.column_descriptions.clone(),
                tags: dataset.tags.clone(),
                price_per_gib: dataset.price_per_gib,
                price_per_gib_scanned: dataset.price_per_gib_scanned,
                watermark: dataset.watermark.clone(),
                kind: dataset.kind,
                primary_key,
                foreign_keys,
            };
            if datasets.insert(id.clone(), Arc::new(entry)).is_some() {
                return Err(CatalogError::invalid(
                    key("id"),
                    format!("dataset `{id}` is defined twice"),
                ));
            }
        }

        shape::resolve_references(&mut datasets, &options.datasets)?;

        let mut tenants = BTreeMap::new();
        for (i, tenant) in options.tenants.iter().enumerate() {
            let profile = profiles.get(&tenant.profile).ok_or_else(|| {
                CatalogError::invalid(
                    format!("tenants[{i}].profile"),
                    format!("no profile named `{}` in [profiles]", tenant.profile),
                )
            })?;
            let entry = Tenant {
                id: tenant.id.clone(),
                profile: Arc::clone(profile),
                attributes: tenant.attributes.clone(),
                allowed_origins: tenant.allowed_origins.clone(),
            };
            if tenant.id.is_empty() || tenants.insert(tenant.id.clone(), Arc::new(entry)).is_some()
            {
                return Err(CatalogError::invalid(
                    format!("tenants[{i}].id"),
                    format!("`{}` is empty or defined twice", tenant.id),
                ));
            }
        }

        let mut principals = BTreeMap::new();
        for (i, principal) in options.principals.iter().enumerate() {
            let key = |field: &str| format!("principals[{i}].{field}");
            if !tenants.contains_key(&principal.tenant) {
                return Err(CatalogError::invalid(
                    key("tenant"),
                    format!("no tenant `{}`", principal.tenant),
                ));
            }
            let verifier: Verifier = principal.scram_verifier.parse().map_err(|e| {
                CatalogError::invalid(
                    key("scram_verifier"),
                    format!("{e}; `tollgate passwd` prints one"),
                )
            })?;
            let entry = Principal {
                user: principal.user.clone(),
                tenant: principal.tenant.clone(),
                verifier,
                channel: principal.channel.clone(),
            };
            if principal.user.is_empty()
                || principals
                    .insert(principal.user.clone(), Arc::new(entry))
                    .is_some()
            {
                return Err(CatalogError::invalid(
                    key("user"),
                    format!("`{}` is empty or defined twice", principal.user),
                ));
            }
        }

        let mut grants: BTreeMap<String, Vec<Grant>> = BTreeMap::new();
        for (i, grant) in options.grants.iter().enumerate() {
            let key = |field: &str| format!("grants[{i}].{field}");
            let Some(tenant) = tenants.get(&grant.tenant) else {
                return Err(CatalogError::invalid(
                    key("tenant"),
                    format!("no tenant `{}`", grant.tenant),
                ));
            };
            let dataset = DatasetId::parse(&grant.dataset)
                .map_err(|m| CatalogError::invalid(key("dataset"), m))?;
            if !datasets.contains_key(&dataset) {
                return Err(CatalogError::invalid(
                    key("dataset"),
                    format!("no dataset `{dataset}`"),
                ));
            }
            let columns = grant.columns.as_ref().map(|columns| {
                columns
                    .iter()
                    .map(|column| match column {
                        GrantColumnOptions::Name(name) => GrantColumn {
                            name: name.clone(),
                            expr: quote_identifier(name),
                        },
                        GrantColumnOptions::Expr { name, expr } => GrantColumn {
                            name: name.clone(),
                            expr: expr.clone(),
                        },
                    })
                    .collect::<Vec<_>>()
            });
            if columns.as_ref().is_some_and(Vec::is_empty) {
                return Err(CatalogError::invalid(
                    key("columns"),
                    "grants no column; omit the key to grant all columns",
                ));
            }
            if let Some(filter) = &grant.row_filter {
                for attribute in referenced_attributes(filter) {
                    if !tenant.attributes.contains_key(attribute) {
                        return Err(CatalogError::invalid(
                            key("row_filter"),
                            format!(
                                "names `${attribute}`, but tenant `{}` has no attribute `{attribute}`",
                                tenant.id
                            ),
                        ));
                    }
                }
            }
            let list = grants.entry(grant.tenant.clone()).or_default();
            if list.iter().any(|g| g.dataset == dataset) {
                return Err(CatalogError::invalid(
                    key("dataset"),
                    format!("tenant `{}` is granted `{dataset}` twice", grant.tenant),
                ));
            }
            if let Some(source) = &grant.source {
                let dedicated = options.sources.get(source);
                let on_postgres = matches!(
                    datasets.get(&dataset).map(|d| &d.location),
                    Some(DatasetLocation::Postgres { .. })
                );
                if !matches!(dedicated, Some(SourceOptions::Postgres { .. })) || !on_postgres {
                    return Err(CatalogError::invalid(
                        key("source"),
                        format!(
                            "`{source}` must be a postgres source in [sources], and `{dataset}` a dataset of a postgres source"
                        ),
                    ));
                }
            }
            list.push(Grant {
                dataset,
                columns,
                row_filter: grant.row_filter.clone(),
                source: grant.source.clone(),
                narrowing: None,
            });
        }
        let channels = super::channels::build(options, &profiles, &tenants, &grants)?;
        for (i, principal) in options.principals.iter().enumerate() {
            if let Some(channel) = &principal.channel
                && channels
                    .get(channel)
                    .is_none_or(|channel| channel.tenant != principal.tenant)
            {
                return Err(CatalogError::invalid(
                    format!("principals[{i}].channel"),
                    format!("tenant `{}` has no channel `{channel}`", principal.tenant),
                ));
            }
        }

        Ok(Self {
            database: options.database.clone(),
            engine: options.engine.clone(),
            usage: options.usage.clone(),
            sources: options.sources.clone(),
            datasets,
            tenants,
            principals,
            grants,
            channels,
        })
    }
}

/// The URL of a Parquet dataset at `path` within `source`: a directory (ending in `/`) unless
/// `path` names a `.parquet` file.
fn parquet_url(source: &SourceOptions, path: &str) -> Result<String, String> {
    let file = path.ends_with(".parquet");
    let mut url = match source {
        SourceOptions::Local { path: root } => {
            let full = std::path::absolute(root.join(path))
                .map_err(|e| format!("cannot make `{path}` absolute: {e}"))?;
            Url::from_file_path(&full)
                .map_err(|()| format!("`{}` is not a valid file path", full.display()))?
                .to_string()
        }
        SourceOptions::Postgres { .. } | SourceOptions::Athena(_) => {
            return Err("this source holds tables, not files".to_owned());
        }
        SourceOptions::S3 { bucket, prefix, .. } => {
            let key: Vec<&str> = [prefix.as_str(), path]
                .into_iter()
                .flat_map(|part| part.split('/'))
                .filter(|segment| !segment.is_empty())
                .collect();
            let mut url = Url::parse(&format!("s3://{bucket}/"))
                .map_err(|e| format!("bucket `{bucket}` does not form a URL: {e}"))?;
            url.path_segments_mut()
                .map_err(|()| format!("bucket `{bucket}` does not form a URL"))?
                .pop_if_empty()
                .extend(key);
            url.to_string()
        }
    };
    if !file && !url.ends_with('/') {
        url.push('/');
    }
    Ok(url)
}
