//! Whole sub-plans over datasets of one SQL endpoint (a PostgreSQL replica set, Athena in
//! the tenant's workgroup) run there: the tenant's joins, `GROUP BY` and aggregates, its
//! filters, and each grant's columns and row filter become one SQL query, and only its
//! result crosses the network.
//!
//! ```text
//! Aggregate                                 Projection (the sub-plan's names)
//!   Join a.account_id = o.account_id   ⇒      TableScan remote query:
//!     TableScan crm.accounts (grant)            SELECT a.region, count(*) FROM
//!     Filter (tenant, leakproof)                  (SELECT … FROM public.accounts
//!       TableScan crm.orders (grant)               WHERE <row filter>) AS a
//!                                                 JOIN (SELECT … FROM public.orders …) AS o
//!                                                 ON … WHERE <tenant filter> GROUP BY …
//! ```
//!
//! The rewrite applies only when everything in it is evaluated by the endpoint exactly as
//! DataFusion would ([`pushable`]) and no grant's barrier is lowered. The endpoint's planner
//! may evaluate the tenant's filters and join conditions before a grant's row filter, so
//! each filter must be leakproof for the one view it reads (it cannot fail or reveal
//! anything on hidden rows), and join keys must be columns the grants pass through
//! unchanged. Joins are inner or outer equi-joins, aggregates are `count`, `sum`, `min`,
//! `max` and `avg`. Anything else stays in the gateway, with each grant's scan pushed down
//! as before.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::ops::ControlFlow;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchema, NullEquality, TableReference};
use datafusion::datasource::{TableType, provider_as_source, source_as_provider};
use datafusion::error::Result;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{
    Expr, JoinType, LogicalPlan, LogicalPlanBuilder, SubqueryAlias, TableScan,
};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::sql::sqlparser::ast::{
    Ident, Query, Statement, TableAlias, TableFactor, VisitMut, VisitorMut,
};
use datafusion::sql::unparser::Unparser;

use crate::grants::granted_view::{GrantedScanExec, GrantedViewProvider};
use crate::sources::leakproof;
use crate::sources::pushdown::pushable;
use crate::sources::source_scan;
use crate::sources::sql_endpoint::SqlEndpoint;

/// Aggregate functions SQL sources compute as DataFusion does.
const AGGREGATES: &[&str] = &["count", "sum", "min", "max", "avg"];

/// The optimizer rule: joins and aggregates over datasets of one SQL endpoint become one
/// remote query.
#[derive(Debug, Default)]
pub(crate) struct SqlPushdown;

impl OptimizerRule for SqlPushdown {
    fn name(&self) -> &str {
        "tollgate_sql_pushdown"
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
            if !matches!(node, LogicalPlan::Aggregate(_) | LogicalPlan::Join(_)) {
                return Ok(Transformed::no(node));
            }
            match remote_subplan(&node)? {
                Some(remote) => Ok(Transformed::new(remote, true, TreeNodeRecursion::Jump)),
                None => Ok(Transformed::no(node)),
            }
        })
    }
}

/// `node` as a scan of one remote query, if all of it can run on one SQL endpoint.
fn remote_subplan(node: &LogicalPlan) -> Result<Option<LogicalPlan>> {
    let mut subplan = Subplan::default();
    if subplan.visit(node)?.is_none() {
        return Ok(None);
    }
    let Some(endpoint) = subplan.endpoint else {
        return Ok(None);
    };

    // The sub-plan (its columns in a fixed order) unparsed in the endpoint's dialect, each
    // view's table replaced by its grant's query as a derived table.
    let columns: Vec<Expr> = node
        .schema()
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect();
    let ordered = LogicalPlanBuilder::from(filters_in_scans(node.clone())?)
        .project(columns)?
        .build()?;
    let dialect = endpoint.dialect();
    let unparser = Unparser::new(dialect.as_ref());
    let Ok(mut statement) = unparser.plan_to_sql(&ordered) else {
        return Ok(None);
    };
    let mut inliner = ViewInliner {
        grants: HashMap::new(),
        inlined: 0,
        default_aliases: HashSet::new(),
        conflict: false,
    };
    for view in &subplan.views {
        let Ok(Statement::Query(grant)) = unparser.plan_to_sql(&view.grant) else {
            return Ok(None);
        };
        inliner.grants.insert(view.name.to_vec(), grant);
    }
    let _ = statement.visit(&mut inliner);
    if inliner.inlined != subplan.views.len() || inliner.conflict {
        return Ok(None);
    }

    // A scan of the remote query, renamed back to the sub-plan's output.
    let output = node.schema();
    let fields: Vec<Field> = output
        .fields()
        .iter()
        .enumerate()
        .map(|(i, field)| Field::new(format!("c{i}"), field.data_type().clone(), true))
        .collect();
    let mut datasets: Vec<String> = subplan.views.iter().map(|v| v.dataset.clone()).collect();
    datasets.sort();
    datasets.dedup();
    let table = RemoteQueryTable {
        datasets,
        sql: statement.to_string(),
        schema: Arc::new(Schema::new(fields)),
        endpoint,
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

/// `plan` with the filters right above its view scans moved into the scans (whose filters
/// are inexact, so they were there already): the unparser qualifies a scan's filters by
/// the tenant's alias of the view, and a filter above it by the view's name.
fn filters_in_scans(plan: LogicalPlan) -> Result<LogicalPlan> {
    plan.transform_up(|node| match node {
        LogicalPlan::Filter(filter)
            if matches!(filter.input.as_ref(), LogicalPlan::TableScan(_)) =>
        {
            let LogicalPlan::TableScan(mut scan) = Arc::unwrap_or_clone(filter.input) else {
                unreachable!("matched a scan");
            };
            for conjunct in split_conjunction(&filter.predicate) {
                if !scan.filters.contains(conjunct) {
                    scan.filters.push(conjunct.clone());
                }
            }
            Ok(Transformed::yes(LogicalPlan::TableScan(scan)))
        }
        other => Ok(Transformed::no(other)),
    })
    .map(|transformed| transformed.data)
}

/// A column of a sub-plan's output traced to the view it comes from: the view's index in
/// [`Subplan::views`] and the column's name in the view.
type Origin = (usize, String);

/// What a sub-plan reads, collected while checking that it can run remotely.
#[derive(Default)]
struct Subplan {
    endpoint: Option<SqlEndpoint>,
    views: Vec<InlinedView>,
}

/// A granted view the sub-plan reads, and its grant's plan on the endpoint's tables.
struct InlinedView {
    name: TableReference,
    dataset: String,
    provider: Arc<dyn TableProvider>,
    grant: LogicalPlan,
}

impl InlinedView {
    fn granted(&self) -> &GrantedViewProvider {
        self.provider
            .downcast_ref::<GrantedViewProvider>()
            .expect("only granted views are inlined")
    }
}

impl Subplan {
    /// The origins of `plan`'s output columns, or `None` if `plan` cannot run remotely.
    fn visit(&mut self, plan: &LogicalPlan) -> Result<Option<HashMap<Column, Origin>>> {
        match plan {
            LogicalPlan::TableScan(scan) => self.visit_scan(scan),
            LogicalPlan::SubqueryAlias(alias) => {
                let Some(origins) = self.visit(&alias.input)? else {
                    return Ok(None);
                };
                let renamed = alias
                    .input
                    .schema()
                    .columns()
                    .into_iter()
                    .zip(alias.schema.columns())
                    .filter_map(|(inner, outer)| origins.get(&inner).map(|o| (outer, o.clone())))
                    .collect();
                Ok(Some(renamed))
            }
            LogicalPlan::Filter(filter) => {
                let Some(origins) = self.visit(&filter.input)? else {
                    return Ok(None);
                };
                let admitted = split_conjunction(&filter.predicate)
                    .into_iter()
                    .all(|conjunct| self.admits(conjunct, &origins));
                Ok(admitted.then_some(origins))
            }
            LogicalPlan::Projection(projection) => {
                if !projection.expr.iter().all(pushable_value) {
                    return Ok(None);
                }
                let Some(origins) = self.visit(&projection.input)? else {
                    return Ok(None);
                };
                let renamed = projection
                    .expr
                    .iter()
                    .zip(projection.schema.columns())
                    .filter_map(|(expr, outer)| match unaliased(expr) {
                        Expr::Column(inner) => origins.get(inner).map(|o| (outer, o.clone())),
                        _ => None,
                    })
                    .collect();
                Ok(Some(renamed))
            }
            LogicalPlan::Join(join) => {
                let supported = matches!(
                    join.join_type,
                    JoinType::Inner | JoinType::Left | JoinType::Right | JoinType::Full
                ) && join.filter.is_none()
                    && join.null_equality == NullEquality::NullEqualsNothing;
                if !supported {
                    return Ok(None);
                }
                let (Some(left), Some(right)) = (self.visit(&join.left)?, self.visit(&join.right)?)
                else {
                    return Ok(None);
                };
                let keys_passed_through = join
                    .on
                    .iter()
                    .all(|(l, r)| self.passes_through(l, &left) && self.passes_through(r, &right));
                Ok(keys_passed_through.then(|| left.into_iter().chain(right).collect()))
            }
            LogicalPlan::Aggregate(aggregate) => {
                let supported = aggregate.group_expr.iter().all(pushable_value)
                    && aggregate.aggr_expr.iter().all(pushable_aggregate);
                if !supported || self.visit(&aggregate.input)?.is_none() {
                    return Ok(None);
                }
                // An aggregate's output is not a view's column: nothing above may filter
                // it before the grants.
                Ok(Some(HashMap::new()))
            }
            _ => Ok(None),
        }
    }

    /// A scan of a granted view whose grant runs on the sub-plan's endpoint.
    fn visit_scan(&mut self, scan: &TableScan) -> Result<Option<HashMap<Column, Origin>>> {
        if scan.fetch.is_some() {
            return Ok(None);
        }
        let Ok(provider) = source_as_provider(&scan.source) else {
            return Ok(None);
        };
        let Some(granted) = provider.downcast_ref::<GrantedViewProvider>() else {
            return Ok(None);
        };
        let Some((endpoint, grant)) = remote_grant(granted.plan())? else {
            return Ok(None);
        };
        match &self.endpoint {
            Some(seen) if !seen.same_as(&endpoint) => return Ok(None),
            Some(_) => {}
            None => self.endpoint = Some(endpoint),
        }
        let index = self.views.len();
        self.views.push(InlinedView {
            name: scan.table_name.clone(),
            dataset: granted.dataset().to_owned(),
            provider: Arc::clone(&provider),
            grant,
        });
        let origins: HashMap<Column, Origin> = scan
            .projected_schema
            .columns()
            .into_iter()
            .map(|column| {
                let name = column.name.clone();
                (column, (index, name))
            })
            .collect();
        let admitted = scan
            .filters
            .iter()
            .flat_map(split_conjunction)
            .all(|filter| self.admits(filter, &origins));
        Ok(admitted.then_some(origins))
    }

    /// Whether the endpoint may evaluate the tenant's `filter` before the grants' row
    /// filters: it reads one view, and is leakproof for it.
    fn admits(&self, filter: &Expr, origins: &HashMap<Column, Origin>) -> bool {
        if !pushable(filter) {
            return false;
        }
        let mut views = HashSet::new();
        let mut traced = true;
        let Ok(renamed) = filter.clone().transform(|expr| {
            Ok(match expr {
                Expr::Column(column) => match origins.get(&column) {
                    Some((view, name)) => {
                        views.insert(*view);
                        Transformed::yes(Expr::Column(Column::new_unqualified(name)))
                    }
                    None => {
                        traced = false;
                        Transformed::no(Expr::Column(column))
                    }
                },
                other => Transformed::no(other),
            })
        }) else {
            return false;
        };
        if !traced || views.len() > 1 {
            return false;
        }
        match views.into_iter().next() {
            Some(view) => self.views[view]
                .granted()
                .admits_before_filter(&renamed.data),
            None => leakproof::is_leakproof(&renamed.data, &HashSet::new()),
        }
    }

    /// Whether `key` is a column its view passes through unchanged from the source.
    fn passes_through(&self, key: &Expr, origins: &HashMap<Column, Origin>) -> bool {
        let Expr::Column(column) = key else {
            return false;
        };
        origins.get(column).is_some_and(|(view, name)| {
            self.views[*view]
                .granted()
                .admits_before_filter(&Expr::Column(Column::new_unqualified(name)))
        })
    }
}

/// The grant's plan with its table renamed to the source's, if the grant is projections
/// and filters of pushable expressions over one table of a SQL endpoint.
fn remote_grant(plan: &LogicalPlan) -> Result<Option<(SqlEndpoint, LogicalPlan)>> {
    let mut endpoint: Option<SqlEndpoint> = None;
    let mut supported = true;
    plan.apply(|node| {
        match node {
            LogicalPlan::Projection(projection) => {
                supported &= projection.expr.iter().all(pushable_value);
            }
            LogicalPlan::Filter(filter) => supported &= pushable(&filter.predicate),
            LogicalPlan::SubqueryAlias(_) => {}
            LogicalPlan::TableScan(scan) => match SqlEndpoint::of(&scan.source) {
                Some((table_endpoint, _)) if scan.filters.is_empty() && scan.fetch.is_none() => {
                    match &endpoint {
                        Some(seen) if !seen.same_as(&table_endpoint) => supported = false,
                        _ => endpoint = Some(table_endpoint),
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
    let Some(endpoint) = endpoint.filter(|_| supported) else {
        return Ok(None);
    };
    let renamed = plan
        .clone()
        .transform_up(|node| match &node {
            LogicalPlan::TableScan(scan) => match SqlEndpoint::of(&scan.source) {
                Some((_, remote)) => Ok(Transformed::yes(on_source(scan, &remote)?)),
                None => Ok(Transformed::no(node)),
            },
            _ => Ok(Transformed::no(node)),
        })?
        .data;
    Ok(Some((endpoint, renamed)))
}

/// `scan` reading the source's table, under its own name as an alias.
fn on_source(scan: &TableScan, remote: &TableReference) -> Result<LogicalPlan> {
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

/// Replaces the views' tables in the tenant's query by their grants' queries, as derived
/// tables under the tenant's alias, else the view's table name (as the unparser qualifies
/// its columns). Two views of one table name without aliases would collide: `conflict`.
struct ViewInliner {
    grants: HashMap<Vec<String>, Box<Query>>,
    inlined: usize,
    default_aliases: HashSet<String>,
    conflict: bool,
}

impl VisitorMut for ViewInliner {
    type Break = ();

    fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let TableFactor::Table { name, alias, .. } = factor else {
            return ControlFlow::Continue(());
        };
        let parts = ident_values(name.0.iter().filter_map(|part| part.as_ident()));
        let Some(grant) = self.grants.get(&parts) else {
            return ControlFlow::Continue(());
        };
        let alias = match alias {
            Some(alias) => alias.clone(),
            None => {
                let table = parts.last().cloned().unwrap_or_default();
                self.conflict |= !self.default_aliases.insert(table.clone());
                TableAlias {
                    explicit: true,
                    name: Ident::with_quote('"', table),
                    columns: Vec::new(),
                    at: None,
                }
            }
        };
        *factor = TableFactor::Derived {
            lateral: false,
            subquery: grant.clone(),
            alias: Some(alias),
            sample: None,
        };
        self.inlined += 1;
        ControlFlow::Continue(())
    }
}

fn ident_values<'a>(idents: impl Iterator<Item = &'a Ident>) -> Vec<String> {
    idents.map(|ident| ident.value.clone()).collect()
}

/// `expr` without its aliases.
fn unaliased(expr: &Expr) -> &Expr {
    match expr {
        Expr::Alias(alias) => unaliased(&alias.expr),
        other => other,
    }
}

/// A value expression SQL sources evaluate as DataFusion does (aliases allowed).
fn pushable_value(expr: &Expr) -> bool {
    pushable(unaliased(expr))
}

/// An aggregate SQL sources compute as DataFusion does, over such values.
fn pushable_aggregate(expr: &Expr) -> bool {
    match unaliased(expr) {
        Expr::AggregateFunction(AggregateFunction { func, params }) => {
            AGGREGATES.contains(&func.name())
                && params.filter.is_none()
                && params.order_by.is_empty()
                && params.args.iter().all(pushable_value)
        }
        _ => false,
    }
}

/// The result of one query on a SQL endpoint, as a table.
#[derive(Debug)]
struct RemoteQueryTable {
    datasets: Vec<String>,
    sql: String,
    schema: SchemaRef,
    endpoint: SqlEndpoint,
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
        let label = self.datasets.join(", ");
        let scan = Arc::new(self.endpoint.query_scan(
            label.clone(),
            &self.sql,
            self.schema.fields().len(),
            &indices,
            Arc::clone(&schema),
        ));
        let inner = source_scan::wrap_leaves(&label, scan)?;
        Ok(Arc::new(GrantedScanExec::new(
            self.datasets.clone(),
            inner,
            schema,
        )))
    }
}

impl fmt::Display for RemoteQueryTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "remote query on {}", self.datasets.join(", "))
    }
}
