//! Whole aggregates over a dataset on a PostgreSQL replica run on the replica: the tenant's
//! `GROUP BY` and aggregates, its filters, the grant's columns and row filter become one SQL
//! query, and only the groups cross the network.
//!
//! ```text
//! Aggregate                                Projection (the aggregate's names)
//!   Filter (tenant, leakproof)        ⇒      TableScan remote query:
//!     TableScan crm.accounts (grant)           SELECT region, count(*) FROM
//!                                                (SELECT … FROM public.accounts
//!                                                 WHERE <row filter>) AS accounts
//!                                                WHERE <tenant filter> GROUP BY region
//! ```
//!
//! The rewrite applies only when everything in it is evaluated by PostgreSQL exactly as
//! DataFusion would ([`pushable`]): the grant's plan is a projection and filter over one
//! replica table, the tenant's filters are leakproof (PostgreSQL may evaluate them before
//! the grant's row filter: they must not fail or reveal anything on hidden rows), and the
//! aggregates are `count`, `sum`, `min`, `max` and `avg` over such expressions. Anything
//! else stays in the gateway, with the grant's scan pushed down as before.

use std::fmt;
use std::ops::ControlFlow;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchema, TableReference};
use datafusion::datasource::{TableType, provider_as_source, source_as_provider};
use datafusion::error::Result;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{
    Expr, LogicalPlan, LogicalPlanBuilder, SubqueryAlias, TableScan, TableSource,
};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::sql::sqlparser::ast::{
    Ident, Query, Statement, TableAlias, TableFactor, VisitMut, VisitorMut,
};
use datafusion::sql::unparser::Unparser;
use datafusion::sql::unparser::dialect::PostgreSqlDialect;

use crate::granted_view::{GrantedScanExec, GrantedViewProvider};
use crate::postgres_table::{PostgresTable, text_scan};
use crate::pushdown::pushable;
use crate::replicas::ReplicaSet;
use crate::source_scan::SourceScanExec;

/// Aggregate functions PostgreSQL computes as DataFusion does.
const AGGREGATES: &[&str] = &["count", "sum", "min", "max", "avg"];

/// The optimizer rule: aggregates over one replica dataset become one remote query.
#[derive(Debug, Default)]
pub(crate) struct ReplicaPushdown;

impl OptimizerRule for ReplicaPushdown {
    fn name(&self) -> &str {
        "tollgate_replica_pushdown"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        None
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        plan.transform_down(|node| {
            if !matches!(node, LogicalPlan::Aggregate(_)) {
                return Ok(Transformed::no(node));
            }
            match remote_aggregate(&node)? {
                Some(remote) => Ok(Transformed::new(remote, true, TreeNodeRecursion::Jump)),
                None => Ok(Transformed::no(node)),
            }
        })
    }
}

/// The aggregate `node` as a scan of one remote query, if all of it can run on a replica.
fn remote_aggregate(node: &LogicalPlan) -> Result<Option<LogicalPlan>> {
    let LogicalPlan::Aggregate(aggregate) = node else {
        return Ok(None);
    };
    let aggregates_pushable = aggregate.group_expr.iter().all(pushable_value)
        && aggregate
            .aggr_expr
            .iter()
            .all(|expr| match unaliased(expr) {
                Expr::AggregateFunction(AggregateFunction { func, params }) => {
                    AGGREGATES.contains(&func.name())
                        && params.filter.is_none()
                        && params.order_by.is_empty()
                        && params.args.iter().all(pushable_value)
                }
                _ => false,
            });
    if !aggregates_pushable {
        return Ok(None);
    }
    // Down to the grant's scan through the tenant's projections and filters.
    let mut filters = Vec::new();
    let mut current = aggregate.input.as_ref();
    let scan = loop {
        match current {
            LogicalPlan::Projection(projection) => {
                if !projection.expr.iter().all(pushable_value) {
                    return Ok(None);
                }
                current = projection.input.as_ref();
            }
            LogicalPlan::Filter(filter) => {
                filters.extend(split_conjunction(&filter.predicate).into_iter().cloned());
                current = filter.input.as_ref();
            }
            LogicalPlan::TableScan(scan) => break scan,
            _ => return Ok(None),
        }
    };
    if scan.fetch.is_some() {
        return Ok(None);
    }
    let Ok(provider) = source_as_provider(&scan.source) else {
        return Ok(None);
    };
    let Some(granted) = provider.downcast_ref::<GrantedViewProvider>() else {
        return Ok(None);
    };
    if !filters
        .iter()
        .all(|filter| granted.admits_before_filter(filter))
    {
        return Ok(None);
    }
    let Some((replicas, grant)) = remote_grant(granted.plan())? else {
        return Ok(None);
    };

    // The aggregate (its columns in a fixed order) and the grant's plan, unparsed; the
    // view's name in the first becomes the second, as a derived table.
    let columns: Vec<Expr> = node
        .schema()
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect();
    let ordered = LogicalPlanBuilder::from(node.clone())
        .project(columns)?
        .build()?;
    let dialect = PostgreSqlDialect {};
    let unparser = Unparser::new(&dialect);
    let (Ok(mut statement), Ok(Statement::Query(grant))) =
        (unparser.plan_to_sql(&ordered), unparser.plan_to_sql(&grant))
    else {
        return Ok(None);
    };
    let mut inliner = ViewInliner {
        name: scan.table_name.to_vec(),
        alias: scan.table_name.table().to_owned(),
        grant,
        inlined: 0,
    };
    let _ = statement.visit(&mut inliner);
    if inliner.inlined != 1 {
        return Ok(None);
    }

    // A scan of the remote query, renamed back to the aggregate's output.
    let output = node.schema();
    let fields: Vec<Field> = output
        .fields()
        .iter()
        .enumerate()
        .map(|(i, field)| Field::new(format!("c{i}"), field.data_type().clone(), true))
        .collect();
    let table = RemoteQueryTable {
        dataset: granted.dataset().to_owned(),
        sql: statement.to_string(),
        schema: Arc::new(Schema::new(fields)),
        replicas,
    };
    let name = TableReference::bare("remote_query");
    let names: Vec<Expr> = output
        .iter()
        .enumerate()
        .map(|(i, (qualifier, field))| {
            Expr::Column(Column::new(Some(name.clone()), format!("c{i}")))
                .alias_qualified(qualifier.cloned(), field.name())
        })
        .collect();
    let remote = LogicalPlanBuilder::scan(name, provider_as_source(Arc::new(table)), None)?
        .project(names)?
        .build()?;
    Ok(Some(remote))
}

/// The grant's plan with its table renamed to the replica's, if the grant is projections
/// and filters of pushable expressions over one replica table.
fn remote_grant(plan: &LogicalPlan) -> Result<Option<(Arc<ReplicaSet>, LogicalPlan)>> {
    let mut replicas: Option<Arc<ReplicaSet>> = None;
    let mut supported = true;
    plan.apply(|node| {
        match node {
            LogicalPlan::Projection(projection) => {
                supported &= projection.expr.iter().all(pushable_value);
            }
            LogicalPlan::Filter(filter) => supported &= pushable(&filter.predicate),
            LogicalPlan::SubqueryAlias(_) => {}
            LogicalPlan::TableScan(scan) => match postgres_table(&scan.source) {
                Some((table_replicas, _)) if scan.filters.is_empty() && scan.fetch.is_none() => {
                    match &replicas {
                        Some(seen) if !Arc::ptr_eq(seen, &table_replicas) => supported = false,
                        _ => replicas = Some(table_replicas),
                    }
                }
                _ => supported = false,
            },
            _ => supported = false,
        }
        Ok(if supported {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    })?;
    let Some(replicas) = replicas.filter(|_| supported) else {
        return Ok(None);
    };
    let renamed = plan
        .clone()
        .transform_up(|node| match &node {
            LogicalPlan::TableScan(scan) => match postgres_table(&scan.source) {
                Some((_, remote)) => Ok(Transformed::yes(on_replica(scan, &remote)?)),
                None => Ok(Transformed::no(node)),
            },
            _ => Ok(Transformed::no(node)),
        })?
        .data;
    Ok(Some((replicas, renamed)))
}

/// `scan` reading the replica's table, under its own name as an alias.
fn on_replica(scan: &TableScan, remote: &TableReference) -> Result<LogicalPlan> {
    let mut renamed = scan.clone();
    renamed.table_name = remote.clone();
    renamed.projected_schema = Arc::new(DFSchema::try_from_qualified_schema(
        remote.clone(),
        scan.projected_schema.as_arrow(),
    )?);
    Ok(LogicalPlan::SubqueryAlias(SubqueryAlias::try_new(
        Arc::new(LogicalPlan::TableScan(renamed)),
        scan.table_name.clone(),
    )?))
}

/// The replicas and remote name of the replica table `source` reads, if it reads one.
fn postgres_table(source: &Arc<dyn TableSource>) -> Option<(Arc<ReplicaSet>, TableReference)> {
    let provider = source_as_provider(source).ok()?;
    let table = provider.downcast_ref::<PostgresTable>()?;
    Some((Arc::clone(table.replicas()), table.remote_name().clone()))
}

/// Replaces the view's table in the tenant's query by the grant's query.
struct ViewInliner {
    name: Vec<String>,
    alias: String,
    grant: Box<Query>,
    inlined: usize,
}

impl VisitorMut for ViewInliner {
    type Break = ();

    fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let TableFactor::Table { name, alias, .. } = factor else {
            return ControlFlow::Continue(());
        };
        let parts: Vec<String> = name
            .0
            .iter()
            .filter_map(|part| part.as_ident().map(|ident| ident.value.clone()))
            .collect();
        if parts != self.name {
            return ControlFlow::Continue(());
        }
        let alias = alias.clone().unwrap_or_else(|| TableAlias {
            explicit: true,
            name: Ident::with_quote('"', self.alias.clone()),
            columns: Vec::new(),
            at: None,
        });
        *factor = TableFactor::Derived {
            lateral: false,
            subquery: self.grant.clone(),
            alias: Some(alias),
            sample: None,
        };
        self.inlined += 1;
        ControlFlow::Continue(())
    }
}

/// `expr` without its aliases.
fn unaliased(expr: &Expr) -> &Expr {
    match expr {
        Expr::Alias(alias) => unaliased(&alias.expr),
        other => other,
    }
}

/// A value expression PostgreSQL evaluates as DataFusion does (aliases allowed).
fn pushable_value(expr: &Expr) -> bool {
    pushable(unaliased(expr))
}

/// The result of one query on a replica, as a table.
#[derive(Debug)]
struct RemoteQueryTable {
    dataset: String,
    sql: String,
    schema: SchemaRef,
    replicas: Arc<ReplicaSet>,
}

#[async_trait]
impl TableProvider for RemoteQueryTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let indices: Vec<usize> = match projection {
            Some(indices) => indices.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let schema = Arc::new(self.schema.project(&indices)?);
        let names: Vec<String> = (0..self.schema.fields().len())
            .map(|i| format!("c{i}"))
            .collect();
        let select = if indices.is_empty() {
            "1".to_owned()
        } else {
            indices
                .iter()
                .map(|&i| format!("q.c{i}::text"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let sql = format!(
            "SELECT {select} FROM ({}) AS q({})",
            self.sql,
            names.join(", ")
        );
        let scan = Arc::new(text_scan(
            self.dataset.clone(),
            sql,
            Arc::clone(&schema),
            Arc::clone(&self.replicas),
        ));
        let inner = SourceScanExec::wrap_leaves(&self.dataset, scan)?;
        Ok(Arc::new(GrantedScanExec::new(
            self.dataset.clone(),
            inner,
            schema,
        )))
    }
}

impl fmt::Display for RemoteQueryTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "remote query on dataset {}", self.dataset)
    }
}
