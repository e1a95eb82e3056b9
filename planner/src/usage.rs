//! The tenant's usage in SQL: its own ledger records, and the views billing questions ask.
//!
//! ```text
//! tollgate.usage_records    one row per execution (a pgwire statement, a Flight SQL endpoint)
//! tollgate.usage_datasets   one row per execution and dataset: bytes, rows, cost
//! tollgate.usage            one row per query (its executions summed), with its cost
//! tollgate.usage_daily      per day and dataset: queries, rows, bytes, cost
//! ```
//!
//! The two tables read the ledger with the tenant fixed in the scan, so no filter a tenant
//! writes, and no path through the views, reaches another tenant's rows.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::view::ViewTable;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;

use crate::metering::{
    DatasetsColumn, UsageLedger, UsageScope, datasets_batch, datasets_schema, records_batch,
    records_schema,
};

/// One row per query: its executions summed.
const USAGE: &str = "SELECT query_id, \
    min(tenant) AS tenant, min(principal) AS principal, min(protocol) AS protocol, \
    min(application_name) AS application_name, min(datasets) AS datasets, \
    min(started_at) AS started_at, max(finished_at) AS finished_at, \
    CASE WHEN bool_and(outcome = 'ok') THEN 'ok' \
         ELSE max(CASE WHEN outcome <> 'ok' THEN outcome END) END AS outcome, \
    max(sqlstate) AS sqlstate, \
    sum(rows_returned) AS rows_returned, sum(bytes_returned) AS bytes_returned, \
    sum(wire_bytes) AS wire_bytes, sum(bytes_scanned) AS bytes_scanned, \
    sum(rows_scanned) AS rows_scanned, max(peak_memory) AS peak_memory, \
    sum(spill_bytes) AS spill_bytes, min(sql_hash) AS sql_hash, sum(cost) AS cost \
    FROM tollgate.usage_records GROUP BY query_id";

/// Per day (UTC) and dataset.
const USAGE_DAILY: &str = "SELECT CAST(started_at AS DATE) AS day, dataset, \
    count(DISTINCT query_id) AS queries, sum(rows_scanned) AS rows_scanned, \
    sum(bytes_returned) AS bytes_returned, sum(bytes_scanned) AS bytes_scanned, \
    sum(cost) AS cost \
    FROM tollgate.usage_datasets GROUP BY CAST(started_at AS DATE), dataset";

/// Registers the usage tables of `tenant` in `schema`, and the views over them.
pub(crate) async fn register(
    context: &SessionContext,
    schema: &Arc<dyn SchemaProvider>,
    ledger: &Arc<dyn UsageLedger>,
    tenant: &str,
) -> Result<()> {
    for (name, shape) in [
        ("usage_records", Shape::Records),
        ("usage_datasets", Shape::Datasets),
    ] {
        schema.register_table(
            name.to_owned(),
            Arc::new(UsageTable {
                ledger: Arc::clone(ledger),
                tenant: tenant.to_owned(),
                shape,
            }),
        )?;
    }
    for (name, sql) in [("usage", USAGE), ("usage_daily", USAGE_DAILY)] {
        let plan = context.state().create_logical_plan(sql).await?;
        let view = ViewTable::new(plan, Some(sql.to_owned()));
        schema.register_table(name.to_owned(), Arc::new(view))?;
    }
    Ok(())
}

/// Which of the two shapes a table reads.
#[derive(Debug, Clone, Copy)]
enum Shape {
    Records,
    Datasets,
}

/// A tenant's records in the ledger, read when scanned.
#[derive(Debug)]
struct UsageTable {
    ledger: Arc<dyn UsageLedger>,
    tenant: String,
    shape: Shape,
}

#[async_trait]
impl TableProvider for UsageTable {
    fn schema(&self) -> SchemaRef {
        match self.shape {
            Shape::Records => records_schema(DatasetsColumn::List),
            Shape::Datasets => datasets_schema(),
        }
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let records = self
            .ledger
            .records(UsageScope::tenant(&self.tenant))
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let batch = match self.shape {
            Shape::Records => records_batch(&records, DatasetsColumn::List)?,
            Shape::Datasets => datasets_batch(&records)?,
        };
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            self.schema(),
            projection.cloned(),
        )?)
    }
}
