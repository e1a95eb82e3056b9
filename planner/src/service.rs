//! The engine API: one protocol-neutral service every front end calls.
//!
//! ```text
//! front end ── parse(sql) ──▶ statements ── (session chatter answered by the front end)
//!           ── plan(ctx, statement) ──▶ PlannedQuery { schema, parameter types }
//!           ── execute(ctx, planned, params) ──▶ QueryStream of Arrow batches
//! ```
//!
//! Authorization lives here once: the [`QueryContext`] names a tenant session whose catalog
//! holds only that tenant's views; the policy admits only reads; limits (statement timeout,
//! memory) come from the tenant's profile.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::execute_stream;
use datafusion::sql::parser::Statement as EngineStatement;
use datafusion::sql::sqlparser::ast::Statement;
use tokio_util::sync::CancellationToken;
use tollgate_catalog::{Catalog, Principal};

use crate::current_setting::current_setting_udf;
use crate::error::PlannerError;
use crate::executor::DedicatedExecutor;
use crate::partitions;
use crate::policy::SqlPolicy;
use crate::pool::TenantPool;
use crate::sources::SourceTables;
use crate::stream::{Limits, QueryStream, ResultCaps};
use crate::system;
use crate::tenant::TenantSession;

/// Everything one query runs with: whose it is and how to stop it.
#[derive(Debug, Clone)]
pub struct QueryContext {
    session: Arc<TenantSession>,
    principal: Arc<Principal>,
    cancel: CancellationToken,
    settings: Arc<BTreeMap<String, String>>,
}

impl QueryContext {
    /// A context for one query of `principal` in `session`, stopped when `cancel` fires.
    pub fn new(
        session: Arc<TenantSession>,
        principal: Arc<Principal>,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            session,
            principal,
            cancel,
            settings: Arc::default(),
        }
    }

    /// The client's session parameters, which `current_setting()` reads.
    pub fn with_settings(mut self, settings: Arc<BTreeMap<String, String>>) -> Self {
        self.settings = settings;
        self
    }

    /// The principal running the query.
    pub fn principal(&self) -> &Arc<Principal> {
        &self.principal
    }

    /// The tenant session the query runs in.
    pub fn session(&self) -> &Arc<TenantSession> {
        &self.session
    }
}

/// A statement planned for a tenant: what it returns and which parameters it takes.
#[derive(Debug, Clone)]
pub struct PlannedQuery {
    sql: String,
    self_service: bool,
    plan: LogicalPlan,
    schema: SchemaRef,
    parameter_types: Vec<Option<DataType>>,
}

impl PlannedQuery {
    /// The statement's SQL text, as `tollgate.queries` lists it.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The columns the query returns.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The type of each positional parameter `$1..$n`, where the engine could infer it.
    pub fn parameter_types(&self) -> &[Option<DataType>] {
        &self.parameter_types
    }
}

/// The query engine shared by all front ends.
#[derive(Debug)]
pub struct QueryService {
    catalog: Arc<Catalog>,
    policy: SqlPolicy,
    tenants: HashMap<String, Arc<TenantSession>>,
}

impl QueryService {
    /// Opens every dataset and builds every tenant's session.
    ///
    /// # Errors
    /// [`PlannerError::Source`] for a dataset that cannot be opened, [`PlannerError::Grant`]
    /// for a grant whose columns or filter do not plan.
    pub async fn new(catalog: Arc<Catalog>) -> Result<Self, PlannerError> {
        let sources = SourceTables::open(&catalog).await?;
        let isolation = catalog.engine().isolation;
        // Without isolation every tenant shares one executor with a thread per core.
        let shared = if isolation {
            None
        } else {
            let threads = std::thread::available_parallelism().map_or(2, usize::from);
            Some(Arc::new(
                DedicatedExecutor::new("tollgate-exec", threads).map_err(PlannerError::Executor)?,
            ))
        };
        let mut tenants = HashMap::new();
        for tenant in catalog.tenants() {
            let executor = match &shared {
                Some(shared) => Arc::clone(shared),
                // The tenant's own threads: its parallelism bounds the cores it can hold.
                None => Arc::new(
                    DedicatedExecutor::new("tollgate-tenant", tenant.profile.parallelism)
                        .map_err(PlannerError::Executor)?,
                ),
            };
            let pool = Arc::new(TenantPool::new(
                tenant.id.clone(),
                Arc::clone(&tenant.profile),
                executor,
                isolation,
            ));
            let session =
                TenantSession::build(&catalog, Arc::clone(tenant), &sources, pool).await?;
            tenants.insert(tenant.id.clone(), Arc::new(session));
        }
        Ok(Self {
            catalog,
            policy: SqlPolicy::default(),
            tenants,
        })
    }

    /// The catalog the service was built from.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The session of the tenant `principal` belongs to.
    pub fn session(&self, principal: &Principal) -> Option<Arc<TenantSession>> {
        self.tenants.get(&principal.tenant).map(Arc::clone)
    }

    /// Splits SQL text into statements. Front ends answer session chatter among them
    /// (`SET`, `SHOW`, `BEGIN`, …) themselves and hand the rest to [`QueryService::plan`].
    ///
    /// # Errors
    /// [`PlannerError::Parse`].
    pub fn parse(&self, sql: &str) -> Result<Vec<Statement>, PlannerError> {
        self.policy.parse(sql)
    }

    /// Checks `statement` against the policy and plans it in the tenant's session.
    ///
    /// # Errors
    /// [`PlannerError::Policy`] for statements that are not reads; engine errors for names
    /// that do not exist in the tenant's catalog (42P01) and other planning failures.
    pub async fn plan(
        &self,
        ctx: &QueryContext,
        statement: Statement,
    ) -> Result<PlannedQuery, PlannerError> {
        let statement = self.policy.admit(statement)?;
        let sql = statement.to_string();
        let mut state = ctx.session.state();
        state.register_udf(Arc::new(current_setting_udf(Arc::clone(&ctx.settings))))?;
        // On the tenant's executor: planning a large statement is CPU work too, and must not
        // hold the network runtime's threads.
        let plan = ctx
            .session
            .pool()
            .executor()
            .spawn(async move {
                state
                    .statement_to_plan(EngineStatement::Statement(Box::new(statement)))
                    .await
            })
            .await??;
        let mut parameters: Vec<(usize, Option<DataType>)> = plan
            .get_parameter_types()?
            .into_iter()
            .map(|(id, data_type)| {
                id.trim_start_matches('$')
                    .parse::<usize>()
                    .map(|position| (position, data_type))
                    .map_err(|_| {
                        PlannerError::Parameters(format!(
                            "parameter `{id}` is not positional ($1, $2, …)"
                        ))
                    })
            })
            .collect::<Result<_, _>>()?;
        parameters.sort_by_key(|(position, _)| *position);
        let count = parameters.last().map_or(0, |(position, _)| *position);
        let mut parameter_types = vec![None; count];
        for (position, data_type) in parameters {
            if let Some(slot) = position
                .checked_sub(1)
                .and_then(|i| parameter_types.get_mut(i))
            {
                *slot = data_type;
            }
        }
        let schema = Arc::new(plan.schema().as_arrow().clone());
        Ok(PlannedQuery {
            sql,
            self_service: system::is_self_service(&plan),
            plan,
            schema,
            parameter_types,
        })
    }

    /// Runs a planned query with `parameters` bound to `$1..$n`.
    ///
    /// # Errors
    /// [`PlannerError::Parameters`] for a wrong parameter count or a value that does not
    /// convert to the parameter's type; engine errors from physical planning.
    ///
    /// # Cancellation
    /// The returned stream stops when the context's token is cancelled or the profile's
    /// statement timeout passes; dropping it stops the query.
    pub async fn execute(
        &self,
        ctx: &QueryContext,
        planned: &PlannedQuery,
        parameters: Vec<ScalarValue>,
    ) -> Result<QueryStream, PlannerError> {
        self.execute_part(ctx, planned, parameters, ResultPart::Whole)
            .await
    }

    /// How many independent partitions the result of `planned` splits into: the `count` a
    /// front end may hand out as separate streams ([`ResultPart::Partition`]), each read by
    /// its own client connection. 1 when the result must be read as one stream (it is
    /// ordered, aggregated or limited as a whole). Bounded by the profile's parallelism.
    ///
    /// # Errors
    /// As [`QueryService::execute`], for physical planning.
    pub async fn partition_count(
        &self,
        ctx: &QueryContext,
        planned: &PlannedQuery,
        parameters: Vec<ScalarValue>,
    ) -> Result<usize, PlannerError> {
        let plan = self.bind(planned, parameters)?;
        let state = partitions::partition_wise(ctx.session.state());
        let parallelism = ctx.session.tenant().profile.parallelism;
        let count = ctx
            .session
            .pool()
            .executor()
            .spawn(async move {
                let physical = state.create_physical_plan(&plan).await?;
                Ok::<_, PlannerError>(partitions::independent_partitions(&physical))
            })
            .await??;
        Ok(if count <= parallelism { count } else { 1 })
    }

    /// Runs one part of a planned query's result with `parameters` bound to `$1..$n`.
    ///
    /// # Errors
    /// As [`QueryService::execute`]; [`PlannerError::LayoutChanged`] when the result no
    /// longer splits into the partitions a [`ResultPart::Partition`] was counted from.
    ///
    /// # Cancellation
    /// As [`QueryService::execute`].
    pub async fn execute_part(
        &self,
        ctx: &QueryContext,
        planned: &PlannedQuery,
        parameters: Vec<ScalarValue>,
        part: ResultPart,
    ) -> Result<QueryStream, PlannerError> {
        let plan = self.bind(planned, parameters)?;
        let pool = ctx.session.pool();
        let admission = pool
            .admit(
                &ctx.principal.user,
                &planned.sql,
                ctx.cancel.clone(),
                planned.self_service,
            )
            .await?;
        let profile = &ctx.session.tenant().profile;
        let mut limits = Limits {
            cancelled: Box::pin(ctx.cancel.clone().cancelled_owned()),
            deadline: Box::pin(tokio::time::sleep(profile.statement_timeout)),
            timeout: duration_text(profile.statement_timeout),
            profile: profile.name.clone(),
        };
        let state = match part {
            ResultPart::Whole => ctx.session.state(),
            ResultPart::Partition { .. } => partitions::partition_wise(ctx.session.state()),
        };
        let run = async move {
            let physical = state.create_physical_plan(&plan).await?;
            let context = state.task_ctx();
            match part {
                ResultPart::Whole => Ok(execute_stream(physical, context)?),
                ResultPart::Partition { index, count } => {
                    let planned = partitions::independent_partitions(&physical);
                    if planned != count || index >= count {
                        return Err(PlannerError::LayoutChanged { planned, count });
                    }
                    Ok(physical.execute(index, context)?)
                }
            }
        };
        let mut start = std::pin::pin!(pool.executor().run(run));
        // Physical planning can be slow (listing files, reading footers); it obeys the same
        // limits, and dropping `start` aborts it.
        let job = std::future::poll_fn(|cx| {
            if let Some(error) = limits.poll_stop(cx) {
                return std::task::Poll::Ready(Err(error));
            }
            start.as_mut().poll(cx)
        })
        .await?;
        let caps = ResultCaps {
            max_rows: profile.max_result_rows,
            max_bytes: profile.max_result_bytes.map(|b| b.bytes()),
            rows: 0,
            bytes: 0,
        };
        Ok(QueryStream::new(
            job,
            limits,
            caps,
            Arc::clone(pool),
            admission,
        ))
    }

    /// The plan with `parameters` bound to `$1..$n`, converted to the inferred types.
    fn bind(
        &self,
        planned: &PlannedQuery,
        parameters: Vec<ScalarValue>,
    ) -> Result<LogicalPlan, PlannerError> {
        let expected = planned.parameter_types.len();
        if parameters.len() != expected {
            return Err(PlannerError::Parameters(format!(
                "the statement takes {expected} parameters, but {} were supplied",
                parameters.len()
            )));
        }
        Ok(if expected == 0 {
            planned.plan.clone()
        } else {
            let values = parameters
                .into_iter()
                .zip(&planned.parameter_types)
                .enumerate()
                .map(|(i, (value, data_type))| match data_type {
                    Some(data_type) if &value.data_type() != data_type => {
                        value.cast_to(data_type).map_err(|e| {
                            PlannerError::Parameters(format!(
                                "parameter ${} does not convert to {data_type}: {e}",
                                i + 1
                            ))
                        })
                    }
                    _ => Ok(value),
                })
                .collect::<Result<Vec<_>, _>>()?;
            planned.plan.clone().with_param_values(values)?
        })
    }
}

/// Which part of a query's result to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultPart {
    /// All of it, as one stream.
    Whole,
    /// Partition `index` of the `count` that [`QueryService::partition_count`] reported.
    Partition {
        /// Zero-based partition.
        index: usize,
        /// How many partitions the result was split into.
        count: usize,
    },
}

/// A limit's duration as errors show it (`300ms`, `1m`, `5m`).
pub(crate) fn duration_text(duration: std::time::Duration) -> String {
    humantime::format_duration(duration).to_string()
}
