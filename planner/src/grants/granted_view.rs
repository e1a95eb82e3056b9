//! A grant as a view: the table a tenant names, and the barrier that keeps its row filter first.
//!
//! ```text
//! tenant SQL ── Filter(user predicate) ── TableScan(tpch.orders)          outer plan
//!                                                │ GrantedViewProvider::scan
//!                                                ▼
//!                                 GrantedScanExec  (a leaf for the outer plan)
//!                                                │ executes
//!                 Projection(granted columns) ── Filter(grant row filter) ── Parquet scan
//! ```
//!
//! The grant's row filter is a **security barrier**, as PostgreSQL's `security_barrier`
//! views: no expression the tenant wrote may run on a row the grant hides, or an error
//! (division by zero), a timing or a side effect could reveal it. DataFusion's optimizers
//! freely push and reorder predicates, so the barrier is built from two walls:
//!
//! * logically, [`GrantedViewProvider`] accepts only leakproof filters ([`crate::sources::leakproof`]:
//!   comparisons of passed-through columns with literals, which cannot fail on a hidden
//!   row) so that sources can prune with them; every other tenant predicate stays above
//!   the scan, and the provider hides its plan from the outer optimizer;
//! * physically, [`GrantedScanExec`] is a leaf: the outer plan's optimizer rules (filter,
//!   projection and dynamic-filter pushdown) cannot see or enter the grant's sub-plan,
//!   which was optimized on its own, with no tenant expression in it.
//!
//! The leaf also keeps source paths and the filter text out of `EXPLAIN`: it displays only
//! the dataset id.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{
    Expr, LogicalPlan, LogicalPlanBuilder, TableProviderFilterPushDown,
};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties, Statistics, StatisticsArgs, StatisticsContext,
};
use futures::StreamExt;
use tollgate_catalog::DatasetKind;

use crate::sources::leakproof;
use crate::sources::source_error::DatasetError;
use crate::sources::source_scan;

/// The table a tenant sees for one grant.
#[derive(Debug)]
pub struct GrantedViewProvider {
    dataset: String,
    plan: LogicalPlan,
    schema: SchemaRef,
    passthrough: HashSet<String>,
    table_type: TableType,
}

impl GrantedViewProvider {
    /// Wraps the grant's plan (`SELECT <granted columns> FROM <source> WHERE <row filter>`,
    /// tenant attributes already bound) for dataset `dataset`.
    pub fn new(dataset: String, plan: LogicalPlan) -> Self {
        let schema = Arc::new(plan.schema().as_arrow().clone());
        let passthrough = leakproof::passthrough_columns(&plan);
        Self {
            dataset,
            plan,
            schema,
            passthrough,
            table_type: TableType::Base,
        }
    }

    /// The view listed as the provider declares the dataset: a table (the default), or a
    /// view.
    #[must_use]
    pub fn listed_as(mut self, kind: DatasetKind) -> Self {
        self.table_type = match kind {
            DatasetKind::Table => TableType::Base,
            DatasetKind::View => TableType::View,
        };
        self
    }

    /// The dataset's id.
    pub fn dataset(&self) -> &str {
        &self.dataset
    }

    /// The grant's plan.
    pub fn plan(&self) -> &LogicalPlan {
        &self.plan
    }

    /// Whether a tenant's `predicate` over the view may run before the grant's row filter:
    /// it cannot fail, or reveal anything, on rows the filter hides.
    pub fn admits_before_filter(&self, predicate: &Expr) -> bool {
        leakproof::is_leakproof(predicate, &self.passthrough)
    }
}

#[async_trait]
impl TableProvider for GrantedViewProvider {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// Tenants see datasets as the provider declares them, tables unless they are views:
    /// that a grant is built as a view is not something the tenant should have to know.
    fn table_type(&self) -> TableType {
        self.table_type
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // The barrier: only leakproof tenant predicates are evaluated inside the grant (and
        // again above it: Inexact).
        Ok(filters
            .iter()
            .map(|filter| {
                if leakproof::is_leakproof(filter, &self.passthrough) {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let output_schema = match projection {
            Some(indices) => Arc::new(self.schema.project(indices)?),
            None => Arc::clone(&self.schema),
        };
        let mut builder = LogicalPlanBuilder::from(self.plan.clone());
        // Above the grant's own filter; the grant's optimizer pushes it into the source.
        let leakproof: Vec<Expr> = filters
            .iter()
            .filter(|filter| leakproof::is_leakproof(filter, &self.passthrough))
            .map(|filter| leakproof::unqualified(filter.clone()))
            .collect::<Result<_>>()?;
        if let Some(predicate) = conjunction(leakproof) {
            builder = builder.filter(predicate)?;
        }
        // An empty projection (e.g. `count(*)`) still needs rows: keep one column inside
        // and drop it at the barrier.
        match projection {
            Some(indices) if indices.is_empty() => builder = builder.select([0])?,
            Some(indices) => builder = builder.select(indices.iter().copied())?,
            None => {}
        }
        if limit.is_some() {
            builder = builder.limit(0, limit)?;
        }
        let inner = state
            .create_physical_plan(&builder.build()?)
            .await
            .map_err(|error| {
                DatasetError::replace(error, |e| DatasetError::from_store(&self.dataset, e))
            })?;
        let inner = source_scan::wrap_leaves(&self.dataset, inner)?;
        Ok(Arc::new(GrantedScanExec::new(
            vec![self.dataset.clone()],
            inner,
            output_schema,
        )))
    }
}

/// The physical barrier: runs the grant's own optimized plan and shows the outer plan a leaf.
///
/// A remote query that joins several grants on one SQL source is one such leaf over all
/// their datasets.
#[derive(Debug)]
pub struct GrantedScanExec {
    datasets: Vec<String>,
    inner: Arc<dyn ExecutionPlan>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl GrantedScanExec {
    pub(crate) fn new(
        datasets: Vec<String>,
        inner: Arc<dyn ExecutionPlan>,
        schema: SchemaRef,
    ) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(inner.output_partitioning().partition_count()),
            inner.pipeline_behavior(),
            inner.boundedness(),
        );
        Self {
            datasets,
            inner,
            schema,
            properties: Arc::new(properties),
        }
    }
}

impl GrantedScanExec {
    /// The ids of the datasets the grants are on (one, unless a remote query joins several).
    pub fn datasets(&self) -> &[String] {
        &self.datasets
    }

    /// The grant's own physical plan.
    pub fn inner(&self) -> &Arc<dyn ExecutionPlan> {
        &self.inner
    }
}

impl DisplayAs for GrantedScanExec {
    fn fmt_as(&self, _format: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "GrantedScanExec: dataset={}", self.datasets.join(", "))
    }
}

impl ExecutionPlan for GrantedScanExec {
    fn name(&self) -> &str {
        "GrantedScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            Err(DataFusionError::Internal(
                "GrantedScanExec is a leaf and takes no children".to_owned(),
            ))
        }
    }

    /// The estimated row count of the grant's rows (after its filter), and nothing about
    /// its columns: enough for the profile's bounds on join sizes, no more.
    fn statistics_from_inputs(
        &self,
        _input_stats: &[Arc<Statistics>],
        args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        let inner = StatisticsContext::new().compute(self.inner.as_ref(), args)?;
        let mut statistics = Statistics::new_unknown(&self.schema);
        statistics.num_rows = inner.num_rows.to_inexact();
        Ok(Arc::new(statistics))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let stream = self.inner.execute(partition, context)?;
        if !self.schema.fields().is_empty() {
            return Ok(stream);
        }
        let schema = Arc::clone(&self.schema);
        let rows_only = stream.map(move |batch| {
            let batch = batch?;
            let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
            Ok(RecordBatch::try_new_with_options(
                Arc::clone(&schema),
                Vec::new(),
                &options,
            )?)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::new(Schema::empty()),
            rows_only,
        )))
    }
}
