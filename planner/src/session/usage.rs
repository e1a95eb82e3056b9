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
//! writes, and no path through the views, reaches another tenant's rows. Bounds on
//! `started_at` (or on its day, as `usage_daily` filters) are pushed into the ledger's read,
//! so "this month" reads this month's records only.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::view::ViewTable;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{BinaryExpr, Cast, Expr, Operator, TableProviderFilterPushDown};
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

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // Inexact: the bounds narrow the read; the filter still runs on what is read.
        Ok(filters
            .iter()
            .map(|filter| {
                if time_bounds(filter).is_empty() {
                    TableProviderFilterPushDown::Unsupported
                } else {
                    TableProviderFilterPushDown::Inexact
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let mut scope = UsageScope::tenant(&self.tenant);
        for bound in filters.iter().flat_map(time_bounds) {
            match bound {
                Bound::From(from) => scope.from = Some(scope.from.map_or(from, |f| f.max(from))),
                Bound::To(to) => scope.to = Some(scope.to.map_or(to, |t| t.min(to))),
            }
        }
        let records = self
            .ledger
            .records(scope)
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

/// A bound on `started_at` a filter implies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    /// Started at or after.
    From(DateTime<Utc>),
    /// Started before.
    To(DateTime<Utc>),
}

/// The bounds on `started_at` that `filter` implies: `started_at <op> <timestamp>` or
/// `CAST(started_at AS DATE) <op> <date>`, either way round. Empty for any other filter.
fn time_bounds(filter: &Expr) -> Vec<Bound> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = filter else {
        return Vec::new();
    };
    let (operand, op, literal) = match (left.as_ref(), right.as_ref()) {
        (operand, Expr::Literal(value, _)) => (operand, *op, value),
        (Expr::Literal(value, _), operand) => match op.swap() {
            Some(op) => (operand, op, value),
            None => return Vec::new(),
        },
        _ => return Vec::new(),
    };
    // The instant the literal names, and the smallest step after it.
    let (at, step) = match (operand, literal) {
        (Expr::Column(column), value) if column.name == "started_at" => {
            match timestamp_micros(value) {
                Some(micros) => (
                    DateTime::from_timestamp_micros(micros),
                    Duration::microseconds(1),
                ),
                None => return Vec::new(),
            }
        }
        (Expr::Cast(Cast { expr, field }), ScalarValue::Date32(Some(days)))
            if *field.data_type() == DataType::Date32
                && matches!(expr.as_ref(), Expr::Column(column) if column.name == "started_at") =>
        {
            (
                DateTime::from_timestamp(i64::from(*days) * 86_400, 0),
                Duration::days(1),
            )
        }
        _ => return Vec::new(),
    };
    let Some(at) = at else {
        return Vec::new();
    };
    match op {
        Operator::Gt | Operator::GtEq => vec![Bound::From(at)],
        Operator::Lt => vec![Bound::To(at)],
        Operator::LtEq => vec![Bound::To(at + step)],
        Operator::Eq => vec![Bound::From(at), Bound::To(at + step)],
        _ => Vec::new(),
    }
}

/// A timestamp literal in microseconds since the epoch.
fn timestamp_micros(value: &ScalarValue) -> Option<i64> {
    match value {
        ScalarValue::TimestampSecond(Some(v), _) => v.checked_mul(1_000_000),
        ScalarValue::TimestampMillisecond(Some(v), _) => v.checked_mul(1_000),
        ScalarValue::TimestampMicrosecond(Some(v), _) => Some(*v),
        ScalarValue::TimestampNanosecond(Some(v), _) => Some(v / 1_000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::logical_expr::{cast, col, lit};

    use super::*;

    fn micros(micros: i64) -> Expr {
        lit(ScalarValue::TimestampMicrosecond(
            Some(micros),
            Some("+00:00".into()),
        ))
    }

    fn at(micros: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(micros).expect("in range")
    }

    #[test]
    fn bounds_on_started_at_either_way_round() {
        assert_eq!(
            time_bounds(&col("started_at").gt_eq(micros(10))),
            vec![Bound::From(at(10))]
        );
        assert_eq!(
            time_bounds(&micros(10).gt(col("started_at"))),
            vec![Bound::To(at(10))]
        );
        assert_eq!(
            time_bounds(&col("started_at").lt_eq(micros(10))),
            vec![Bound::To(at(11))]
        );
    }

    #[test]
    fn bounds_on_the_day() {
        let day = cast(col("started_at"), DataType::Date32);
        let bounds = time_bounds(&day.eq(lit(ScalarValue::Date32(Some(1)))));
        assert_eq!(
            bounds,
            vec![
                Bound::From(at(86_400_000_000)),
                Bound::To(at(172_800_000_000))
            ]
        );
    }

    #[test]
    fn other_filters_imply_nothing() {
        assert!(time_bounds(&col("tenant").eq(lit("acme"))).is_empty());
        assert!(time_bounds(&col("started_at").not_eq(micros(1))).is_empty());
    }
}
