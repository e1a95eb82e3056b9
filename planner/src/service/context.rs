//! What a query runs with and what planning gives: the per-query [`QueryContext`] front
//! ends build, the [`PlannedQuery`] they execute, and which [`ResultPart`] to run.

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::sqlparser::ast::DataType as SqlDataType;
use tokio_util::sync::CancellationToken;
use tollgate_catalog::Principal;
use uuid::Uuid;

use crate::grants::provided_rows::ProvidedRows;
use crate::metering::ClientInfo;
use crate::session::session_parameters::{NoParameters, SessionParameters};
use crate::session::tenant::TenantSession;

/// Everything one query runs with: whose it is, where it came from and how to stop it.
#[derive(Debug, Clone)]
pub struct QueryContext {
    pub(super) session: Arc<TenantSession>,
    pub(super) principal: Arc<Principal>,
    pub(super) cancel: CancellationToken,
    pub(super) settings: Arc<dyn SessionParameters>,
    pub(super) client: Arc<ClientInfo>,
    pub(super) query_id: Option<Uuid>,
    pub(super) record_id: Option<Uuid>,
    pub(super) provided_rows: Option<Arc<ProvidedRows>>,
    pub(super) declared_parameters: Vec<Option<SqlDataType>>,
}

impl QueryContext {
    /// A context for one query of `principal` in `session`, sent by `client`, stopped when
    /// `cancel` fires.
    pub fn new(
        session: Arc<TenantSession>,
        principal: Arc<Principal>,
        cancel: CancellationToken,
        client: Arc<ClientInfo>,
    ) -> Self {
        Self {
            session,
            principal,
            cancel,
            settings: Arc::new(NoParameters),
            client,
            query_id: None,
            record_id: None,
            provided_rows: None,
            declared_parameters: Vec::new(),
        }
    }

    /// The types the client declared for parameters `$1..$n` (`None`: left to the engine),
    /// as a Parse message does. Planning takes them as given, as `PREPARE name (types)`.
    pub fn with_declared_parameters(mut self, types: Vec<Option<SqlDataType>>) -> Self {
        self.declared_parameters = types;
        self
    }

    /// The id the query is recorded under, where the front end already gave it one (the
    /// endpoints of one Flight SQL query share it). Otherwise each execution gets its own.
    pub fn with_query_id(mut self, query_id: Uuid) -> Self {
        self.query_id = Some(query_id);
        self
    }

    /// The id the execution's usage record is kept under, instead of a new one: work that
    /// may be redone after a crash (a push channel's file) is then recorded once, since the
    /// ledger keeps the first record of an id. Failures before execution (parsing,
    /// planning) are recorded under new ids.
    pub fn with_record_id(mut self, record_id: Uuid) -> Self {
        self.record_id = Some(record_id);
        self
    }

    /// Reads the granted view of `provided.dataset` from `provided.table` instead of the
    /// dataset's source (a push channel's new rows, read once for every channel); planning
    /// fails if the statement does not read that view.
    pub fn with_provided_rows(mut self, provided: ProvidedRows) -> Self {
        self.provided_rows = Some(Arc::new(provided));
        self
    }

    /// The client's session parameters, which `current_setting()` reads and `set_config()`
    /// changes.
    pub fn with_settings(mut self, settings: Arc<dyn SessionParameters>) -> Self {
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
    pub(super) sql: String,
    pub(super) planning: Duration,
    pub(super) self_service: bool,
    pub(super) plan: LogicalPlan,
    pub(super) schema: SchemaRef,
    pub(super) parameter_types: Vec<Option<DataType>>,
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
