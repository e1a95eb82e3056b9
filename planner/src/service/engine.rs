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

use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use chrono::Utc;
use datafusion::common::ScalarValue;
use datafusion::execution::FunctionRegistry;
use datafusion::execution::object_store::ObjectStoreRegistry;
use datafusion::logical_expr::LogicalPlan;
use datafusion::logical_expr::Statement as PlanStatement;
use datafusion::physical_plan::execute_stream;
use datafusion::sql::parser::Statement as EngineStatement;
use datafusion::sql::sqlparser::ast::{DataType as SqlDataType, Ident, Statement};
use tokio_util::sync::CancellationToken;
use tollgate_catalog::{Catalog, ChannelKind, Principal};
use uuid::Uuid;

use crate::error::PlannerError;
use crate::grants::provided_rows;
use crate::metering::{
    Execution, QueryMemoryPool, QueryMeter, Rates, ScanMeter, UsageLedger, failed_record,
    metered_state,
};
use crate::resources::complexity;
use crate::resources::drain::Drain;
use crate::resources::executor::DedicatedExecutor;
use crate::resources::panics;
use crate::resources::stop_at_leaves;
use crate::resources::stoppable::{self, StopSignal};
use crate::resources::work_limits;
use crate::service::live::{LiveSessions, SessionFactory};
use crate::service::parameters;
use crate::service::partitions;
use crate::service::stream::{Limits, QueryStream, ResultCaps};
use crate::service::{PlannedQuery, QueryContext, ResultPart};
use crate::session::policy::SqlPolicy;
use crate::session::roles::session_user_udf;
use crate::session::search_path;
use crate::session::session_parameters::{current_setting_udf, set_config_udf};
use crate::session::system;
use crate::session::tenant::TenantSession;
use crate::sources::stores;
use crate::sources::tables::SourceTables;

/// The query engine shared by all front ends.
#[derive(Debug)]
pub struct QueryService {
    policy: SqlPolicy,
    pub(super) live: LiveSessions,
    ledger: Arc<dyn UsageLedger>,
    /// The sources' object stores, shared by every tenant's session.
    stores: Arc<dyn ObjectStoreRegistry>,
    /// The served catalog's prices and dataset paths, for metering.
    pub(super) rates: RwLock<Rates>,
    keep_sql_text: bool,
    pub(super) drain: Drain,
}

impl QueryService {
    /// Opens every dataset and builds every tenant's and channel's session; every query's
    /// usage goes to `ledger`.
    ///
    /// # Errors
    /// [`PlannerError::Source`] for a dataset that cannot be opened, [`PlannerError::Grant`]
    /// for a grant whose columns or filter do not plan.
    pub async fn new(
        catalog: Arc<Catalog>,
        ledger: Arc<dyn UsageLedger>,
    ) -> Result<Self, PlannerError> {
        let stores = stores::source_stores(&catalog)?;
        let sources = SourceTables::open(&catalog, Arc::clone(&stores)).await?;
        // Without isolation every tenant shares one executor with a thread per core.
        let shared = if catalog.engine().isolation {
            None
        } else {
            let threads = std::thread::available_parallelism().map_or(2, usize::from);
            Some(Arc::new(
                DedicatedExecutor::new("tollgate-exec", threads).map_err(PlannerError::Executor)?,
            ))
        };
        let rates = Rates::of(&catalog)?;
        let keep_sql_text = catalog.usage().record_sql_text;
        let factory = SessionFactory {
            sources,
            stores: Arc::clone(&stores),
            ledger: Arc::clone(&ledger),
            shared,
        };
        Ok(Self {
            policy: SqlPolicy::default(),
            live: LiveSessions::start(factory, catalog).await?,
            ledger,
            stores,
            rates: RwLock::new(rates),
            keep_sql_text,
            drain: Drain::default(),
        })
    }

    /// Makes `store` serve the objects under `url` (e.g. `s3://bucket`) for every tenant's
    /// queries, replacing the store that served them.
    pub fn register_object_store(&self, url: &url::Url, store: Arc<dyn object_store::ObjectStore>) {
        self.stores.register_store(url, store);
    }

    /// The catalog now served.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.live.catalog()
    }

    /// The login `user` of the catalog now served.
    pub fn principal(&self, user: &str) -> Option<Arc<Principal>> {
        self.live.principal(user)
    }

    /// The login `user` if it may log in on a front end of `kind`: a channel's login only on
    /// its channel's kind, a tenant's own login on every front end.
    pub fn principal_on(&self, user: &str, kind: ChannelKind) -> Option<Arc<Principal>> {
        self.live.principal_on(user, kind)
    }

    /// The session `principal` works in: its channel's, or its tenant's.
    pub fn session(&self, principal: &Principal) -> Option<Arc<TenantSession>> {
        self.live.session(principal)
    }

    /// The session of tenant `tenant` over all its entitlements, as its own logins see it.
    pub fn tenant_session(&self, tenant: &str) -> Option<Arc<TenantSession>> {
        self.live.tenant_session(tenant)
    }

    /// Checks that tenant `tenant` of `catalog` (a catalog not yet served) builds: each of
    /// its grants plans.
    ///
    /// # Errors
    /// [`PlannerError::Grant`] naming the dataset whose grant does not plan.
    pub async fn check_tenant(&self, catalog: &Catalog, tenant: &str) -> Result<(), PlannerError> {
        self.live.check_tenant(catalog, tenant).await
    }

    /// A token that fires when `principal` is revoked (removed from the catalog, its channel
    /// deleted, its tenant suspended); front ends end its connections and queries then.
    pub fn revocation(&self, principal: &Principal) -> CancellationToken {
        self.live.revocation(principal)
    }

    /// Serves `catalog` from now on, for new statements; sessions of unchanged tenants and
    /// channels are kept, and logins that are gone are revoked; datasets added, changed or
    /// removed are opened, reopened or dropped. The sources must be those the service was
    /// built with. Returns the tenants and channels left out
    /// because their sessions do not build, with the reason.
    pub async fn apply(&self, catalog: Arc<Catalog>) -> Vec<(String, PlannerError)> {
        let rates = match Rates::of(&catalog) {
            Ok(rates) => rates,
            Err(error) => return vec![(String::new(), error)],
        };
        let failures = self.live.apply(catalog).await;
        *self.rates.write().unwrap_or_else(PoisonError::into_inner) = rates;
        failures
    }

    /// Checks that channel `channel` of `catalog` (a catalog not yet served) builds: its
    /// columns, expressions and row filter plan over its tenant's entitlements.
    ///
    /// # Errors
    /// [`PlannerError::Grant`] naming the dataset whose output model does not plan.
    pub async fn check_channel(
        &self,
        catalog: &Catalog,
        channel: &str,
    ) -> Result<(), PlannerError> {
        let channel = catalog
            .channel(channel)
            .ok_or_else(|| PlannerError::Source {
                dataset: String::new(),
                message: format!("no channel `{channel}`"),
            })?;
        self.live.check_channel(catalog, channel).await
    }

    /// Splits SQL text into statements. Front ends answer session chatter among them
    /// (`SET`, `SHOW`, `BEGIN`, …) themselves and hand the rest to [`QueryService::plan`].
    ///
    /// # Errors
    /// [`PlannerError::Parse`]; the failed statement is recorded in the ledger.
    pub fn parse(&self, ctx: &QueryContext, sql: &str) -> Result<Vec<Statement>, PlannerError> {
        let started_at = Utc::now();
        complexity::with_stack(|| panics::contained("parsing", || self.policy.parse(sql)))
            .inspect_err(|error| {
                self.record_failure(
                    &self.execution(ctx, sql, started_at, ResultPart::Whole),
                    error,
                );
            })
    }

    /// Checks `statement` against the policy and plans it in the tenant's session.
    ///
    /// # Errors
    /// [`PlannerError::Policy`] for statements that are not reads; engine errors for names
    /// that do not exist in the tenant's catalog (42P01) and other planning failures.
    ///
    /// A statement that fails here is recorded in the ledger.
    pub async fn plan(
        &self,
        ctx: &QueryContext,
        statement: Statement,
    ) -> Result<PlannedQuery, PlannerError> {
        let started_at = Utc::now();
        let started = Instant::now();
        // The rewrites and printing recurse over the statement: within a known stack, and a
        // panic in them fails this statement only.
        let (sql, admitted) = complexity::with_stack(|| {
            panics::contained("checking the statement", || {
                let sql = statement.to_string();
                Ok((sql, self.policy.admit(statement)))
            })
        })
        .unwrap_or_else(|error| (String::new(), Err(error)));
        let planned = match admitted {
            Ok(statement) => self.try_plan(ctx, statement, sql.clone(), started).await,
            Err(error) => Err(error),
        };
        planned.inspect_err(|error| {
            self.record_failure(
                &self.execution(ctx, &sql, started_at, ResultPart::Whole),
                error,
            );
        })
    }

    async fn try_plan(
        &self,
        ctx: &QueryContext,
        statement: Statement,
        sql: String,
        started: Instant,
    ) -> Result<PlannedQuery, PlannerError> {
        // The declared types up to the first undeclared one: DataFusion types placeholders
        // of a PREPARE by position.
        let declared: Vec<SqlDataType> = ctx
            .declared_parameters
            .iter()
            .map_while(Clone::clone)
            .collect();
        let statement = if declared.is_empty() {
            statement
        } else {
            Statement::Prepare {
                name: Ident::new("tollgate_statement"),
                data_types: declared,
                statement: Box::new(statement),
            }
        };
        let mut state = ctx.session.state();
        let (path, relations) = (ctx.settings.get("search_path"), ctx.session.relations());
        search_path::follow(&mut state, path, &ctx.principal.user, relations)?;
        state.register_udf(Arc::new(current_setting_udf(Arc::clone(&ctx.settings))))?;
        state.register_udf(Arc::new(set_config_udf(Arc::clone(&ctx.settings))))?;
        state.register_udf(Arc::new(session_user_udf(&ctx.principal.user)))?;
        // On the tenant's executor: planning a large statement is CPU work too, and must not
        // hold the network runtime's threads.
        let profile = &ctx.session.tenant().profile;
        let revoked = self.live.revocation(&ctx.principal);
        let stopped = self.drain.stopped();
        let mut limits = Limits::new(
            &ctx.cancel,
            &revoked,
            stopped,
            profile,
            profile.statement_timeout,
        );
        let provided_rows = ctx.provided_rows.clone();
        let planning = ctx.session.pool().executor().spawn(async move {
            let plan = match state
                .statement_to_plan(EngineStatement::Statement(Box::new(statement)))
                .await?
            {
                // Declared parameter types: the statement, its placeholders typed.
                LogicalPlan::Statement(PlanStatement::Prepare(prepared)) => {
                    Arc::unwrap_or_clone(prepared.input)
                }
                plan => plan,
            };
            let plan = match &provided_rows {
                Some(provided) => provided_rows::restrict(plan, provided)?,
                None => plan,
            };
            // The rows come from the plan after type coercion, so the described columns
            // and parameters must too (`CASE … THEN int4 ELSE 0 END` is int8 after it).
            let analyzed = match &plan {
                LogicalPlan::Explain(_) => plan.clone(),
                plan => state.analyzer().execute_and_check(
                    plan.clone(),
                    state.config_options(),
                    |_, _| {},
                )?,
            };
            Ok::<_, PlannerError>((plan, analyzed))
        });
        // Planning counts against the statement timeout, and stops on cancel.
        let (plan, analyzed) = limits.bound(async { planning.await? }).await?;
        let parameter_types = parameters::parameter_types(&analyzed)?;
        let schema = Arc::new(analyzed.schema().as_arrow().clone());
        Ok(PlannedQuery {
            sql,
            planning: started.elapsed(),
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
        let mut execution = self.execution(ctx, &planned.sql, Utc::now(), part);
        execution.planning = planned.planning;
        execution.record_id = ctx.record_id;
        self.try_execute_part(ctx, planned, parameters, part, &execution)
            .await
            .inspect_err(|error| self.record_failure(&execution, error))
    }

    async fn try_execute_part(
        &self,
        ctx: &QueryContext,
        planned: &PlannedQuery,
        parameters: Vec<ScalarValue>,
        part: ResultPart,
        execution: &Execution,
    ) -> Result<QueryStream, PlannerError> {
        self.drain.admit()?;
        self.ledger.accepting().map_err(PlannerError::Ledger)?;
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
        let query_id = admission.id();
        let profile = &ctx.session.tenant().profile;
        // Planning counted against the statement timeout already.
        let mut limits = Limits::new(
            &ctx.cancel,
            &self.live.revocation(&ctx.principal),
            self.drain.stopped(),
            profile,
            profile.statement_timeout.saturating_sub(planned.planning),
        );
        let state = match part {
            ResultPart::Whole => ctx.session.state(),
            ResultPart::Partition { .. } => partitions::partition_wise(ctx.session.state()),
        };
        let rates = self
            .rates
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let scans = Arc::new(ScanMeter::new(rates.paths));
        let memory = Arc::new(QueryMemoryPool::new(Arc::clone(
            &state.runtime_env().memory_pool,
        )));
        let state = metered_state(state, &scans, &memory);
        let physical_plan = Arc::new(OnceLock::new());
        let mut meter = QueryMeter::new(
            execution.clone(),
            rates.prices,
            scans,
            memory,
            Arc::clone(&physical_plan),
        );
        let signal = StopSignal::default();
        let job_signal = signal.clone();
        let job_pool = Arc::clone(pool);
        let run = async move {
            let physical = state.create_physical_plan(&plan).await?;
            let physical = work_limits::bound_work(physical, &job_pool)?;
            let physical = stoppable::with_stop_checks(physical, &job_signal)?;
            let physical = stop_at_leaves::check_leaves(physical, &job_signal)?;
            let _ = physical_plan.set(Arc::clone(&physical));
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
        // The job holds the query's admission: its slot is free only once its work ended.
        // Physical planning can be slow (listing files, reading footers); it obeys the same
        // limits, and dropping the job aborts it.
        let job = limits
            .bound(pool.executor().run(run, signal, admission))
            .await?;
        meter.planned();
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
            query_id,
            meter,
            Arc::clone(&self.ledger),
        ))
    }

    /// The fixed facts of one execution of `sql` for `ctx`.
    fn execution(
        &self,
        ctx: &QueryContext,
        sql: &str,
        started_at: chrono::DateTime<Utc>,
        part: ResultPart,
    ) -> Execution {
        let (part, parts) = match part {
            ResultPart::Whole => (0, 1),
            ResultPart::Partition { index, count } => (
                u32::try_from(index).unwrap_or(u32::MAX),
                u32::try_from(count).unwrap_or(u32::MAX),
            ),
        };
        Execution {
            query_id: ctx.query_id.unwrap_or_else(Uuid::now_v7),
            record_id: None,
            part,
            parts,
            tenant: ctx.principal.tenant.clone(),
            principal: ctx.principal.user.clone(),
            channel: ctx.principal.channel.clone(),
            price_factor: ctx.session.tenant().profile.price_factor,
            client: Arc::clone(&ctx.client),
            sql: sql.to_owned(),
            keep_sql_text: self.keep_sql_text,
            started_at,
            planning: Duration::ZERO,
        }
    }

    /// Records a statement that failed before its stream existed. Refusals (policy and
    /// limits) are also written to the audit log.
    fn record_failure(&self, execution: &Execution, error: &PlannerError) {
        let (outcome, sqlstate) = error.outcome();
        let record = failed_record(execution, outcome, sqlstate);
        if matches!(
            error,
            PlannerError::Policy { .. } | PlannerError::Limit { .. }
        ) {
            tracing::info!(
                target: "tollgate::audit",
                event = "statement_refused",
                tenant = %execution.tenant,
                principal = %execution.principal,
                protocol = execution.client.protocol.as_str(),
                client = execution.client.address.as_deref().unwrap_or(""),
                query_id = %execution.query_id,
                outcome = outcome.as_str(),
                sqlstate,
                reason = %error,
                "statement refused"
            );
        }
        // A statement that failed before it ran did no work; while the ledger is down its
        // record would only grow what the ledger keeps for later.
        if self.ledger.accepting().is_ok() {
            // Nothing waits for a failure's record, but the ledger keeps it.
            drop(self.ledger.submit(record));
        }
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
