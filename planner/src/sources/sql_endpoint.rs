//! Where a query over tables of SQL sources runs as one: a PostgreSQL replica set, or
//! Athena in one workgroup. Tables on the same endpoint can be joined and aggregated there,
//! and the result read back as one scan.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::TableReference;
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::TableSource;
use datafusion::sql::unparser::dialect::{Dialect, PostgreSqlDialect};

use crate::sources::athena::{AthenaSource, AthenaTable, athena_dialect, athena_scan};
use crate::sources::postgres_table::{PostgresTable, text_scan};
use crate::sources::remote_scan::RemoteScanExec;
use crate::sources::replicas::ReplicaSet;

/// A SQL engine that runs queries for the gateway.
#[derive(Debug, Clone)]
pub(crate) enum SqlEndpoint {
    /// A set of PostgreSQL replicas (with failover between them).
    Replicas(Arc<ReplicaSet>),
    /// An Athena source, in one tenant's workgroup.
    Athena {
        source: Arc<AthenaSource>,
        workgroup: String,
    },
}

impl SqlEndpoint {
    /// The endpoint and remote name of the SQL source table `source` reads, if it is one.
    pub fn of(source: &Arc<dyn TableSource>) -> Option<(Self, TableReference)> {
        let provider = source_as_provider(source).ok()?;
        if let Some(table) = provider.downcast_ref::<PostgresTable>() {
            return Some((
                Self::Replicas(Arc::clone(table.replicas())),
                table.remote_name().clone(),
            ));
        }
        let table = provider.downcast_ref::<AthenaTable>()?;
        Some((
            Self::Athena {
                source: Arc::clone(table.source()),
                workgroup: table.workgroup().to_owned(),
            },
            table.remote_name().clone(),
        ))
    }

    /// Whether `self` and `other` are the same engine, so one query can read both's tables.
    pub fn same_as(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Replicas(a), Self::Replicas(b)) => Arc::ptr_eq(a, b),
            (
                Self::Athena {
                    source: a,
                    workgroup: wa,
                },
                Self::Athena {
                    source: b,
                    workgroup: wb,
                },
            ) => Arc::ptr_eq(a, b) && wa == wb,
            _ => false,
        }
    }

    /// The endpoint's SQL dialect, for the unparser.
    pub fn dialect(&self) -> Box<dyn Dialect> {
        match self {
            Self::Replicas(_) => Box::new(PostgreSqlDialect {}),
            Self::Athena { .. } => Box::new(athena_dialect()),
        }
    }

    /// A scan of `datasets` (their ids, comma-separated) that reads the columns `selected`
    /// (by position) of the query `sql`, whose result has `width` columns; the scan's
    /// output is `schema`, the selected columns in order, named `c<position>`.
    pub fn query_scan(
        &self,
        datasets: String,
        sql: &str,
        width: usize,
        selected: &[usize],
        schema: SchemaRef,
    ) -> RemoteScanExec {
        let names: Vec<String> = (0..width).map(|i| format!("c{i}")).collect();
        // PostgreSQL's values are read as text and cast to the schema's types; Athena
        // returns text whatever the type.
        let as_text = match self {
            Self::Replicas(_) => "::text",
            Self::Athena { .. } => "",
        };
        let select = if selected.is_empty() {
            "1".to_owned()
        } else {
            selected
                .iter()
                .map(|&i| format!("q.c{i}{as_text} AS c{i}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let sql = format!("SELECT {select} FROM ({sql}) AS q({})", names.join(", "));
        match self {
            Self::Replicas(replicas) => text_scan(datasets, sql, schema, Arc::clone(replicas)),
            Self::Athena { source, workgroup } => {
                athena_scan(source, workgroup, datasets, sql, schema)
            }
        }
    }
}
