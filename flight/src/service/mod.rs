//! The Flight SQL service: authenticates every call, then hands it to the engine API.
//!
//! Each method of the [`FlightSqlService`] implementation below first authenticates its
//! caller ([`crate::auth`]), then calls the file that does the job, and only translates:
//!
//! | file | job |
//! | --- | --- |
//! | `mod.rs` | the service, its construction, the authentication of every call |
//! | [`crate::queries`] | `GetFlightInfo` and `DoGet` of SQL statements |
//! | `prepared_statements.rs` | create, bind (`DoPut`), run and close prepared statements |
//! | `metadata_commands.rs` | catalogs, schemas, tables, keys, `SqlInfo`, XDBC types |
//! | `actions.rs` | `CancelQuery` and the `CancelFlightInfo` action |
//! | `refused.rs` | writes, transactions, savepoints and Substrait, refused with a code and a message that say so |
//! | `listing.rs` | `ListFlights`: the caller's datasets, each as the query that reads it |

mod actions;
mod listing;
mod metadata_commands;
mod prepared_statements;
mod refused;

use std::sync::Arc;
use std::time::Duration;

use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionBeginSavepointRequest, ActionBeginSavepointResult, ActionBeginTransactionRequest,
    ActionBeginTransactionResult, ActionCancelQueryRequest, ActionCancelQueryResult,
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, ActionCreatePreparedSubstraitPlanRequest,
    ActionEndSavepointRequest, ActionEndTransactionRequest, CommandGetCatalogs,
    CommandGetCrossReference, CommandGetDbSchemas, CommandGetExportedKeys, CommandGetImportedKeys,
    CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables,
    CommandGetXdbcTypeInfo, CommandPreparedStatementQuery, CommandPreparedStatementUpdate,
    CommandStatementIngest, CommandStatementQuery, CommandStatementSubstraitPlan,
    CommandStatementUpdate, DoPutPreparedStatementResult, SqlInfo, TicketStatementQuery,
};
use arrow_flight::{
    Action, ActionType, FlightDescriptor, FlightInfo, HandshakeRequest, HandshakeResponse, Ticket,
};
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use tollgate_catalog::{LoginThrottle, Principal};
use tollgate_planner::QueryService;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};

pub use self::listing::ListingFlightSql;
use self::metadata_commands::{batch_stream, metadata_info};
use crate::auth::{Authenticator, Caller};
use crate::error::internal_status;
use crate::keys::{self, TableFilter};
use crate::metadata::{self, SQL_INFO, XDBC_TYPES};
use crate::prepared::BoundParameters;
use crate::queries::Statements;
use crate::signing::Signer;

/// Tollgate's Flight SQL service.
#[derive(Debug)]
pub struct TollgateFlightSql {
    auth: Authenticator,
    statements: Statements,
    signer: Arc<Signer>,
    bound: BoundParameters,
    handle_ttl: Duration,
}

impl TollgateFlightSql {
    /// A service over `service`'s tenants, authenticating against its principals.
    pub fn new(
        service: Arc<QueryService>,
        signer: Arc<Signer>,
        throttle: LoginThrottle,
        token_ttl: Duration,
        ticket_ttl: Duration,
    ) -> Self {
        Self {
            auth: Authenticator::new(
                Arc::clone(&service),
                Arc::clone(&signer),
                throttle,
                token_ttl,
            ),
            statements: Statements::new(service, Arc::clone(&signer), ticket_ttl),
            signer,
            bound: BoundParameters::default(),
            handle_ttl: token_ttl,
        }
    }

    fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        let address = request.remote_addr().map(|addr| addr.ip());
        self.auth.authenticate(request.metadata(), address)
    }

    fn principal<T>(&self, request: &Request<T>) -> Result<Arc<Principal>, Status> {
        self.caller(request).map(|caller| caller.principal)
    }
}

fn with_token<T>(mut response: Response<T>, caller: &Caller) -> Response<T> {
    if let Some(token) = &caller.issued_token
        && let Ok(value) = MetadataValue::try_from(format!("Bearer {token}"))
    {
        response.metadata_mut().insert("authorization", value);
    }
    response
}

#[tonic::async_trait]
impl FlightSqlService for TollgateFlightSql {
    type FlightService = Self;
    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<BoxStream<'static, Result<HandshakeResponse, Status>>>, Status> {
        let caller = self.caller(&request)?;
        let token = match &caller.issued_token {
            Some(token) => token.clone(),
            None => self.auth.issue_token(&caller.principal)?,
        };
        let reply = HandshakeResponse {
            protocol_version: 0,
            payload: token.clone().into(),
        };
        let mut response = Response::new(stream::iter([Ok(reply)]).boxed());
        let value = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|e| internal_status("cannot encode a token header", e))?;
        response.metadata_mut().insert("authorization", value);
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let caller = self.caller(&request)?;
        let info = self
            .statements
            .flight_info(&caller, &query.query, None, request.into_inner())
            .await?;
        Ok(with_token(Response::new(info), &caller))
    }

    async fn get_flight_info_prepared_statement(
        &self,
        command: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let caller = self.caller(&request)?;
        let info = self
            .prepared_statement_info(&caller, command, request.into_inner())
            .await?;
        Ok(with_token(Response::new(info), &caller))
    }

    async fn get_flight_info_substrait_plan(
        &self,
        _query: CommandStatementSubstraitPlan,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.principal(&request)?;
        Err(refused::substrait())
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.principal(&request)?;
        let schema = query.into_builder().schema();
        metadata_info(&query, &schema, request.into_inner())
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.principal(&request)?;
        let schema = query.clone().into_builder().schema();
        metadata_info(&query, &schema, request.into_inner())
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.principal(&request)?;
        let schema = query.clone().into_builder().schema();
        metadata_info(&query, &schema, request.into_inner())
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.principal(&request)?;
        let schema = query.into_builder().schema();
        metadata_info(&query, &schema, request.into_inner())
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.principal(&request)?;
        let schema = query.clone().into_builder(&SQL_INFO).schema();
        metadata_info(&query, &schema, request.into_inner())
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.principal(&request)?;
        metadata_info(
            &query,
            &metadata::primary_keys_schema(),
            request.into_inner(),
        )
    }

    async fn get_flight_info_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.principal(&request)?;
        metadata_info(
            &query,
            &metadata::foreign_keys_schema(),
            request.into_inner(),
        )
    }

    async fn get_flight_info_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.principal(&request)?;
        metadata_info(
            &query,
            &metadata::foreign_keys_schema(),
            request.into_inner(),
        )
    }

    async fn get_flight_info_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.principal(&request)?;
        metadata_info(
            &query,
            &metadata::foreign_keys_schema(),
            request.into_inner(),
        )
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.principal(&request)?;
        let schema = query.into_builder(&XDBC_TYPES).schema();
        metadata_info(&query, &schema, request.into_inner())
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let caller = self.caller(&request)?;
        let stream = self
            .statements
            .do_get(&caller, &ticket.statement_handle)
            .await?;
        Ok(with_token(Response::new(stream), &caller))
    }

    async fn do_get_catalogs(
        &self,
        _query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let session = self.statements.session(&*self.principal(&request)?)?;
        batch_stream(metadata::catalogs(&session))
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let session = self.statements.session(&*self.principal(&request)?)?;
        batch_stream(metadata::db_schemas(&session, query))
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let session = self.statements.session(&*self.principal(&request)?)?;
        batch_stream(metadata::tables(&session, query))
    }

    async fn do_get_table_types(
        &self,
        _query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.principal(&request)?;
        batch_stream(metadata::table_types())
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.principal(&request)?;
        batch_stream(query.into_builder(&SQL_INFO).build())
    }

    async fn do_get_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let session = self.statements.session(&*self.principal(&request)?)?;
        let filter = TableFilter::new(
            query.catalog.as_deref(),
            query.db_schema.as_deref(),
            &query.table,
        );
        batch_stream(keys::primary_keys(&session, &filter))
    }

    async fn do_get_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let session = self.statements.session(&*self.principal(&request)?)?;
        let filter = TableFilter::new(
            query.catalog.as_deref(),
            query.db_schema.as_deref(),
            &query.table,
        );
        let database = session.database();
        batch_stream(keys::foreign_keys(&session, |key| {
            keys::exported_by(&filter, database, key)
        }))
    }

    async fn do_get_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let session = self.statements.session(&*self.principal(&request)?)?;
        let filter = TableFilter::new(
            query.catalog.as_deref(),
            query.db_schema.as_deref(),
            &query.table,
        );
        let database = session.database();
        batch_stream(keys::foreign_keys(&session, |key| {
            keys::imported_by(&filter, database, key)
        }))
    }

    async fn do_get_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let session = self.statements.session(&*self.principal(&request)?)?;
        let referenced = TableFilter::new(
            query.pk_catalog.as_deref(),
            query.pk_db_schema.as_deref(),
            &query.pk_table,
        );
        let referencing = TableFilter::new(
            query.fk_catalog.as_deref(),
            query.fk_db_schema.as_deref(),
            &query.fk_table,
        );
        let database = session.database();
        batch_stream(keys::foreign_keys(&session, |key| {
            keys::exported_by(&referenced, database, key)
                && keys::imported_by(&referencing, database, key)
        }))
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.principal(&request)?;
        batch_stream(query.into_builder(&XDBC_TYPES).build())
    }

    async fn do_put_statement_update(
        &self,
        _ticket: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.principal(&request)?;
        Err(refused::read_only())
    }

    async fn do_put_statement_ingest(
        &self,
        _ticket: CommandStatementIngest,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.principal(&request)?;
        Err(refused::read_only())
    }

    async fn do_put_prepared_statement_update(
        &self,
        _query: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.principal(&request)?;
        Err(refused::read_only())
    }

    async fn do_put_substrait_plan(
        &self,
        _query: CommandStatementSubstraitPlan,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.principal(&request)?;
        Err(refused::substrait())
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let principal = self.principal(&request)?;
        self.bind_parameters(&principal, query, request.into_inner())
            .await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let caller = self.caller(&request)?;
        self.create_prepared_statement(&caller, query).await
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        let principal = self.principal(&request)?;
        self.close_prepared_statement(&principal, query)
    }

    async fn do_action_create_prepared_substrait_plan(
        &self,
        _query: ActionCreatePreparedSubstraitPlanRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        self.principal(&request)?;
        Err(refused::substrait())
    }

    async fn do_action_begin_transaction(
        &self,
        _query: ActionBeginTransactionRequest,
        request: Request<Action>,
    ) -> Result<ActionBeginTransactionResult, Status> {
        self.principal(&request)?;
        Err(refused::begin_transaction())
    }

    async fn do_action_end_transaction(
        &self,
        _query: ActionEndTransactionRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        self.principal(&request)?;
        Err(refused::end_transaction())
    }

    async fn do_action_begin_savepoint(
        &self,
        _query: ActionBeginSavepointRequest,
        request: Request<Action>,
    ) -> Result<ActionBeginSavepointResult, Status> {
        self.principal(&request)?;
        Err(refused::savepoints())
    }

    async fn do_action_end_savepoint(
        &self,
        _query: ActionEndSavepointRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        self.principal(&request)?;
        Err(refused::savepoints())
    }

    async fn do_action_cancel_query(
        &self,
        query: ActionCancelQueryRequest,
        request: Request<Action>,
    ) -> Result<ActionCancelQueryResult, Status> {
        let principal = self.principal(&request)?;
        self.cancel_query(&principal, query)
    }

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<<Self as FlightService>::DoActionStream>, Status> {
        let principal = self.principal(&request)?;
        self.custom_action(&principal, request.into_inner())
    }

    async fn list_custom_actions(&self) -> Option<Vec<Result<ActionType, Status>>> {
        Some(actions::custom_actions())
    }

    /// Server information is static ([`SQL_INFO`]); nothing registers more.
    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}
