//! The Flight SQL service: authenticates every call, then hands it to the engine API.
//!
//! Each method only translates: credentials to a principal ([`crate::auth`]), statements
//! to tickets and streams ([`crate::queries`]), metadata commands to the tenant's listing
//! ([`crate::metadata`]). Writes, transactions and Substrait are refused with a code and a
//! message that say so.

use std::sync::Arc;
use std::time::Duration;

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError as WireError;
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
    CommandStatementUpdate, DoPutPreparedStatementResult, ProstMessageExt, SqlInfo,
    TicketStatementQuery,
};
use arrow_flight::{
    Action, ActionType, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus,
    FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, IpcMessage,
    SchemaAsIpc, Ticket,
};
use futures::stream::{self, BoxStream};
use futures::{StreamExt, TryStreamExt};
use prost::Message;
use tollgate_catalog::{Catalog, LoginThrottle, Principal};
use tollgate_planner::QueryService;
use tollgate_planner::datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use tollgate_planner::datafusion::arrow::ipc::writer::IpcWriteOptions;
use tollgate_planner::datafusion::arrow::record_batch::RecordBatch;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::{Authenticator, Caller};
use crate::claims::{PreparedClaims, encode_parameters, parameter_row};
use crate::error::internal_status;
use crate::metadata::{self, SQL_INFO, XDBC_TYPES};
use crate::portable::portable_schema;
use crate::prepared::BoundParameters;
use crate::queries::Statements;
use crate::running::CancelOutcome;
use crate::signing::{Purpose, Signer, expires_in, now_seconds};

/// The core Flight action that cancels a `FlightInfo`'s query.
const CANCEL_FLIGHT_INFO: &str = "CancelFlightInfo";

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
    /// A service over `service`'s tenants, authenticating against `catalog`'s principals.
    pub fn new(
        catalog: Arc<Catalog>,
        service: Arc<QueryService>,
        signer: Arc<Signer>,
        throttle: LoginThrottle,
        token_ttl: Duration,
        ticket_ttl: Duration,
    ) -> Self {
        Self {
            auth: Authenticator::new(catalog, Arc::clone(&signer), throttle, token_ttl),
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

    /// A `FlightInfo` whose one ticket is the metadata command itself: it names no data,
    /// and `DoGet` answers it for whoever presents it.
    fn metadata_info(
        command: &impl ProstMessageExt,
        schema: &Schema,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        let info = FlightInfo::new()
            .try_with_schema(schema)
            .map_err(|e| internal_status("cannot encode a metadata schema", e))?
            .with_descriptor(descriptor)
            .with_ordered(true)
            .with_endpoint(
                FlightEndpoint::new().with_ticket(Ticket::new(command.as_any().encode_to_vec())),
            );
        Ok(Response::new(info))
    }

    fn open_handle(&self, principal: &Principal, handle: &[u8]) -> Result<PreparedClaims, Status> {
        let claims: PreparedClaims = self
            .signer
            .open(Purpose::PreparedStatement, handle)
            .ok_or_else(|| {
                Status::invalid_argument(
                    "unknown prepared statement handle; create the statement again",
                )
            })?;
        if !claims.belongs_to(principal) {
            return Err(Status::permission_denied(
                "the prepared statement belongs to another principal",
            ));
        }
        if claims.expires <= now_seconds() {
            return Err(Status::failed_precondition(
                "the prepared statement has expired; create it again",
            ));
        }
        Ok(claims)
    }

    fn cancel(&self, principal: &Principal, info: &FlightInfo) -> Result<CancelStatus, Status> {
        let mut found = false;
        let mut outcome = CancelOutcome::NothingRunning;
        for endpoint in &info.endpoint {
            let Some(ticket) = &endpoint.ticket else {
                continue;
            };
            let Ok(any) = arrow_flight::sql::Any::decode(ticket.ticket.as_ref()) else {
                continue;
            };
            let Ok(Some(statement)) = any.unpack::<TicketStatementQuery>() else {
                continue;
            };
            let claims = self
                .statements
                .open_ticket(principal, &statement.statement_handle)
                .or_else(|status| {
                    // An expired ticket's query can still be running.
                    if status.code() == tonic::Code::FailedPrecondition {
                        self.signer
                            .open(Purpose::Ticket, &statement.statement_handle)
                            .ok_or(status)
                    } else {
                        Err(status)
                    }
                })?;
            found = true;
            if self
                .statements
                .running()
                .cancel(&claims.query_id, claims.expires)
                == CancelOutcome::Cancelled
            {
                outcome = CancelOutcome::Cancelled;
            }
        }
        if !found {
            return Err(Status::invalid_argument(
                "the FlightInfo holds no query ticket of this service",
            ));
        }
        tracing::info!(user = %principal.user, ?outcome, "query cancelled");
        Ok(CancelStatus::Cancelled)
    }
}

/// A stream of one metadata batch.
fn batch_stream(
    batch: Result<RecordBatch, WireError>,
) -> Result<Response<<TollgateFlightSql as FlightService>::DoGetStream>, Status> {
    let batch = batch.map_err(|e| internal_status("cannot build a metadata batch", e))?;
    let schema = batch.schema();
    let stream = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(stream::iter([Ok::<_, WireError>(batch)]))
        .map_err(Status::from);
    Ok(Response::new(Box::pin(stream)))
}

/// An empty, well-formed batch of `schema`.
fn empty(schema: SchemaRef) -> Result<RecordBatch, WireError> {
    Ok(RecordBatch::new_empty(schema))
}

fn ipc_schema(schema: &Schema) -> Result<bytes::Bytes, Status> {
    let options = IpcWriteOptions::default();
    IpcMessage::try_from(SchemaAsIpc::new(schema, &options))
        .map(|message| message.0)
        .map_err(|e| internal_status("cannot encode a schema", e))
}

fn with_token<T>(mut response: Response<T>, caller: &Caller) -> Response<T> {
    if let Some(token) = &caller.issued_token
        && let Ok(value) = MetadataValue::try_from(format!("Bearer {token}"))
    {
        response.metadata_mut().insert("authorization", value);
    }
    response
}

fn read_only() -> Status {
    Status::permission_denied("Tollgate is read-only: only queries are allowed")
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
        let handle = command.prepared_statement_handle.as_ref();
        let claims = self.open_handle(&caller.principal, handle)?;
        let parameters = claims.parameters.or_else(|| self.bound.get(handle));
        let info = self
            .statements
            .flight_info(&caller, &claims.sql, parameters, request.into_inner())
            .await?;
        Ok(with_token(Response::new(info), &caller))
    }

    async fn get_flight_info_substrait_plan(
        &self,
        _query: CommandStatementSubstraitPlan,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.principal(&request)?;
        Err(Status::unimplemented(
            "Substrait plans are not supported; send SQL",
        ))
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.principal(&request)?;
        let schema = query.into_builder().schema();
        Self::metadata_info(&query, &schema, request.into_inner())
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.principal(&request)?;
        let schema = query.clone().into_builder().schema();
        Self::metadata_info(&query, &schema, request.into_inner())
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.principal(&request)?;
        let schema = query.clone().into_builder().schema();
        Self::metadata_info(&query, &schema, request.into_inner())
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.principal(&request)?;
        let schema = query.into_builder().schema();
        Self::metadata_info(&query, &schema, request.into_inner())
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.principal(&request)?;
        let schema = query.clone().into_builder(&SQL_INFO).schema();
        Self::metadata_info(&query, &schema, request.into_inner())
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.principal(&request)?;
        Self::metadata_info(
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
        Self::metadata_info(
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
        Self::metadata_info(
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
        Self::metadata_info(
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
        Self::metadata_info(&query, &schema, request.into_inner())
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
        _query: CommandGetPrimaryKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.principal(&request)?;
        batch_stream(empty(metadata::primary_keys_schema()))
    }

    async fn do_get_exported_keys(
        &self,
        _query: CommandGetExportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.principal(&request)?;
        batch_stream(empty(metadata::foreign_keys_schema()))
    }

    async fn do_get_imported_keys(
        &self,
        _query: CommandGetImportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.principal(&request)?;
        batch_stream(empty(metadata::foreign_keys_schema()))
    }

    async fn do_get_cross_reference(
        &self,
        _query: CommandGetCrossReference,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.principal(&request)?;
        batch_stream(empty(metadata::foreign_keys_schema()))
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
        Err(read_only())
    }

    async fn do_put_statement_ingest(
        &self,
        _ticket: CommandStatementIngest,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.principal(&request)?;
        Err(read_only())
    }

    async fn do_put_prepared_statement_update(
        &self,
        _query: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.principal(&request)?;
        Err(read_only())
    }

    async fn do_put_substrait_plan(
        &self,
        _query: CommandStatementSubstraitPlan,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.principal(&request)?;
        Err(Status::unimplemented(
            "Substrait plans are not supported; send SQL",
        ))
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let principal = self.principal(&request)?;
        let handle = query.prepared_statement_handle;
        let mut claims = self.open_handle(&principal, &handle)?;
        let batches: Vec<RecordBatch> =
            arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(
                request.into_inner().map_err(WireError::from),
            )
            .try_collect()
            .await
            .map_err(|e| {
                Status::invalid_argument(format!("cannot read the bound parameters: {e}"))
            })?;
        let rows: Vec<RecordBatch> = batches.into_iter().filter(|b| b.num_rows() > 0).collect();
        let [row] = rows.as_slice() else {
            return Err(Status::invalid_argument(format!(
                "a query takes one row of parameters, but {} batches of rows were bound",
                rows.len()
            )));
        };
        parameter_row(row)?;
        let encoded = encode_parameters(row)?;
        self.bound.bind(&handle, encoded.clone(), claims.expires);
        claims.parameters = Some(encoded);
        let updated = self
            .signer
            .seal(Purpose::PreparedStatement, &claims)
            .map_err(|e| internal_status("cannot sign a prepared statement", e))?;
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(updated.into()),
        })
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let caller = self.caller(&request)?;
        let (_, planned) = self
            .statements
            .plan(
                &caller,
                &query.query,
                tokio_util::sync::CancellationToken::new(),
            )
            .await?;
        let parameters = Schema::new(
            planned
                .parameter_types()
                .iter()
                .enumerate()
                .map(|(i, data_type)| {
                    Field::new(
                        format!("${}", i + 1),
                        data_type.clone().unwrap_or(DataType::Null),
                        true,
                    )
                })
                .collect::<Vec<_>>(),
        );
        let claims = PreparedClaims {
            user: caller.principal.user.clone(),
            tenant: caller.principal.tenant.clone(),
            expires: expires_in(self.handle_ttl),
            sql: query.query,
            parameters: None,
        };
        let handle = self
            .signer
            .seal(Purpose::PreparedStatement, &claims)
            .map_err(|e| internal_status("cannot sign a prepared statement", e))?;
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle.into(),
            dataset_schema: ipc_schema(&portable_schema(planned.schema()))?,
            parameter_schema: ipc_schema(&parameters)?,
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        let principal = self.principal(&request)?;
        let handle = query.prepared_statement_handle;
        // Closing an expired statement is not an error: there is nothing left to close.
        if let Err(status) = self.open_handle(&principal, &handle)
            && status.code() != tonic::Code::FailedPrecondition
        {
            return Err(status);
        }
        self.bound.close(&handle);
        Ok(())
    }

    async fn do_action_create_prepared_substrait_plan(
        &self,
        _query: ActionCreatePreparedSubstraitPlanRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        self.principal(&request)?;
        Err(Status::unimplemented(
            "Substrait plans are not supported; send SQL",
        ))
    }

    async fn do_action_begin_transaction(
        &self,
        _query: ActionBeginTransactionRequest,
        request: Request<Action>,
    ) -> Result<ActionBeginTransactionResult, Status> {
        self.principal(&request)?;
        Err(Status::unimplemented(
            "transactions are not supported: every query reads a consistent snapshot on its own",
        ))
    }

    async fn do_action_end_transaction(
        &self,
        _query: ActionEndTransactionRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        self.principal(&request)?;
        Err(Status::unimplemented("transactions are not supported"))
    }

    async fn do_action_begin_savepoint(
        &self,
        _query: ActionBeginSavepointRequest,
        request: Request<Action>,
    ) -> Result<ActionBeginSavepointResult, Status> {
        self.principal(&request)?;
        Err(Status::unimplemented("savepoints are not supported"))
    }

    async fn do_action_end_savepoint(
        &self,
        _query: ActionEndSavepointRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        self.principal(&request)?;
        Err(Status::unimplemented("savepoints are not supported"))
    }

    async fn do_action_cancel_query(
        &self,
        query: ActionCancelQueryRequest,
        request: Request<Action>,
    ) -> Result<ActionCancelQueryResult, Status> {
        let principal = self.principal(&request)?;
        let info = FlightInfo::decode(query.info).map_err(|e| {
            Status::invalid_argument(format!("the FlightInfo does not decode: {e}"))
        })?;
        self.cancel(&principal, &info)?;
        Ok(ActionCancelQueryResult {
            // CancelResult::Cancelled; arrow-flight does not export that enum.
            result: 1,
        })
    }

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<<Self as FlightService>::DoActionStream>, Status> {
        let principal = self.principal(&request)?;
        let action = request.into_inner();
        if action.r#type != CANCEL_FLIGHT_INFO {
            return Err(Status::unimplemented(format!(
                "unknown action `{}`",
                action.r#type
            )));
        }
        let cancel = CancelFlightInfoRequest::decode(action.body).map_err(|e| {
            Status::invalid_argument(format!("the CancelFlightInfoRequest does not decode: {e}"))
        })?;
        let info = cancel
            .info
            .ok_or_else(|| Status::invalid_argument("the request names no FlightInfo"))?;
        let status = self.cancel(&principal, &info)?;
        let result = CancelFlightInfoResult::new(status);
        let body = arrow_flight::Result::new(result.encode_to_vec());
        Ok(Response::new(stream::iter([Ok(body)]).boxed()))
    }

    async fn list_custom_actions(&self) -> Option<Vec<Result<ActionType, Status>>> {
        Some(vec![Ok(ActionType {
            r#type: CANCEL_FLIGHT_INFO.to_owned(),
            description:
                "Cancels the query of a FlightInfo: running endpoints stop, others are refused.\n
                Request Message: CancelFlightInfoRequest\n
                Response Message: CancelFlightInfoResult"
                    .to_owned(),
        })])
    }

    /// Server information is static ([`SQL_INFO`]); nothing registers more.
    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}
