//! The tenant's `tollgate` schema: its own running and queued queries, and a way to stop one.
//!
//! ```text
//! SELECT * FROM tollgate.queries      query_id, principal, state, submitted_at, started_at, sql
//! SELECT tollgate.cancel(42)          true if query 42 was one of this tenant's, now cancelled
//! ```
//!
//! Both read the tenant's own [`TenantPool`], so no path leads to another tenant's queries.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider, Session, TableProvider};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{ScalarValue, exec_err};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlan, ScalarUDF, Volatility, create_udf,
};
use datafusion::physical_plan::ExecutionPlan;

use crate::resources::pool::TenantPool;

/// The schema's name in the tenant's catalog.
pub const SCHEMA: &str = "tollgate";

/// The engine's name of the tenant-facing function `tollgate.<name>`.
pub(crate) fn function_name(name: &str) -> String {
    format!("{SCHEMA}_{name}")
}

/// Whether `plan` is self-service: it reads `tollgate.queries` or calls `tollgate.cancel`,
/// and reads no other table. (Usage tables queue like any query: they can be large.)
pub(crate) fn is_self_service(plan: &LogicalPlan) -> bool {
    let mut system = false;
    let mut other = false;
    let cancel = function_name("cancel");
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            if scan.table_name.schema() == Some(SCHEMA) && scan.table_name.table() == "queries" {
                system = true;
            } else {
                other = true;
            }
        }
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                if let Expr::ScalarFunction(function) = e
                    && function.name() == cancel
                {
                    system = true;
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })?;
        Ok(TreeNodeRecursion::Continue)
    });
    system && !other
}

/// The `tollgate` schema of a tenant whose queries `pool` runs.
pub(crate) fn schema(pool: &Arc<TenantPool>) -> Result<Arc<dyn SchemaProvider>> {
    let schema = MemorySchemaProvider::new();
    schema.register_table(
        "queries".to_owned(),
        Arc::new(QueriesTable {
            pool: Arc::clone(pool),
        }),
    )?;
    Ok(Arc::new(schema))
}

/// `tollgate.cancel(query_id)`: cancels one of the tenant's own queries.
pub(crate) fn cancel_udf(pool: &Arc<TenantPool>) -> ScalarUDF {
    let pool = Arc::clone(pool);
    create_udf(
        &function_name("cancel"),
        vec![DataType::Int64],
        DataType::Boolean,
        // Volatile: it must run when the query runs, never be folded while planning.
        Volatility::Volatile,
        Arc::new(move |args: &[ColumnarValue]| match args {
            [ColumnarValue::Scalar(value)] => {
                let cancelled = scalar_id(value).is_some_and(|id| pool.cancel(id));
                Ok(ColumnarValue::Scalar(ScalarValue::Boolean(Some(cancelled))))
            }
            [ColumnarValue::Array(ids)] => {
                let ids = ids.as_any().downcast_ref::<Int64Array>().map(|ids| {
                    ids.iter()
                        .map(|id| {
                            Some(
                                id.and_then(|id| u64::try_from(id).ok())
                                    .is_some_and(|id| pool.cancel(id)),
                            )
                        })
                        .collect::<BooleanArray>()
                });
                match ids {
                    Some(results) => Ok(ColumnarValue::Array(Arc::new(results))),
                    None => exec_err!("tollgate.cancel takes a query id (bigint)"),
                }
            }
            _ => exec_err!("tollgate.cancel takes one query id"),
        }),
    )
}

fn scalar_id(value: &ScalarValue) -> Option<u64> {
    match value {
        ScalarValue::Int64(Some(id)) => u64::try_from(*id).ok(),
        _ => None,
    }
}

/// `tollgate.queries`, read from the pool when scanned.
#[derive(Debug)]
struct QueriesTable {
    pool: Arc<TenantPool>,
}

fn queries_schema() -> SchemaRef {
    let timestamp = DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()));
    Arc::new(Schema::new(vec![
        Field::new("query_id", DataType::Int64, false),
        Field::new("principal", DataType::Utf8, false),
        Field::new("state", DataType::Utf8, false),
        Field::new("submitted_at", timestamp.clone(), false),
        Field::new("started_at", timestamp, true),
        Field::new("sql", DataType::Utf8, false),
    ]))
}

fn micros(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

#[async_trait]
impl TableProvider for QueriesTable {
    fn schema(&self) -> SchemaRef {
        queries_schema()
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
        let queries = self.pool.queries();
        let schema = queries_schema();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(
                queries
                    .iter()
                    .map(|q| i64::try_from(q.id).unwrap_or(i64::MAX))
                    .collect::<Int64Array>(),
            ),
            Arc::new(StringArray::from_iter_values(
                queries.iter().map(|q| &q.user),
            )),
            Arc::new(StringArray::from_iter_values(
                queries.iter().map(|q| q.state.as_str()),
            )),
            Arc::new(
                queries
                    .iter()
                    .map(|q| Some(micros(q.submitted_at)))
                    .collect::<TimestampMicrosecondArray>()
                    .with_timezone("+00:00"),
            ),
            Arc::new(
                queries
                    .iter()
                    .map(|q| q.started_at.map(micros))
                    .collect::<TimestampMicrosecondArray>()
                    .with_timezone("+00:00"),
            ),
            Arc::new(StringArray::from_iter_values(
                queries.iter().map(|q| &q.sql),
            )),
        ];
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            schema,
            projection.cloned(),
        )?)
    }
}
