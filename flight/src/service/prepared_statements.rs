//! Prepared statements: create (plan once, sign a handle holding the SQL), bind parameters
//! with `DoPut`, run with `GetFlightInfo`, close. Handles are signed claims
//! ([`crate::claims::PreparedClaims`]); parameters bound to a handle are also kept
//! ([`crate::prepared`]) for clients that reuse the first handle.

use arrow_flight::error::FlightError as WireError;
use arrow_flight::sql::server::PeekableFlightDataStream;
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, CommandPreparedStatementQuery,
    DoPutPreparedStatementResult,
};
use arrow_flight::{FlightDescriptor, FlightInfo, IpcMessage, SchemaAsIpc};
use futures::TryStreamExt;
use tollgate_catalog::Principal;
use tollgate_planner::datafusion::arrow::datatypes::{DataType, Field, Schema};
use tollgate_planner::datafusion::arrow::ipc::writer::IpcWriteOptions;
use tollgate_planner::datafusion::arrow::record_batch::RecordBatch;
use tonic::Status;

use super::TollgateFlightSql;
use crate::auth::Caller;
use crate::claims::{PreparedClaims, encode_parameters, parameter_row};
use crate::error::internal_status;
use crate::portable::portable_schema;
use crate::signing::{Purpose, expires_in, now_seconds};

impl TollgateFlightSql {
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

    /// `GetFlightInfo` of a prepared statement: its SQL with the parameters bound last.
    pub(super) async fn prepared_statement_info(
        &self,
        caller: &Caller,
        command: CommandPreparedStatementQuery,
        descriptor: FlightDescriptor,
    ) -> Result<FlightInfo, Status> {
        let handle = command.prepared_statement_handle.as_ref();
        let claims = self.open_handle(&caller.principal, handle)?;
        let parameters = claims.parameters.or_else(|| self.bound.get(handle));
        self.statements
            .flight_info(caller, &claims.sql, parameters, descriptor)
            .await
    }

    /// `DoPut` of a prepared statement: one row of parameters, returned in a new handle.
    pub(super) async fn bind_parameters(
        &self,
        principal: &Principal,
        query: CommandPreparedStatementQuery,
        data: PeekableFlightDataStream,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let handle = query.prepared_statement_handle;
        let mut claims = self.open_handle(principal, &handle)?;
        let batches: Vec<RecordBatch> =
            arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(
                data.map_err(WireError::from),
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

    /// `CreatePreparedStatement`: plans the SQL once for its result and parameter schemas.
    pub(super) async fn create_prepared_statement(
        &self,
        caller: &Caller,
        query: ActionCreatePreparedStatementRequest,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let (_, planned) = self
            .statements
            .plan(
                caller,
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

    /// `ClosePreparedStatement`: forgets the parameters bound to the handle.
    pub(super) fn close_prepared_statement(
        &self,
        principal: &Principal,
        query: ActionClosePreparedStatementRequest,
    ) -> Result<(), Status> {
        let handle = query.prepared_statement_handle;
        // Closing an expired statement is not an error: there is nothing left to close.
        if let Err(status) = self.open_handle(principal, &handle)
            && status.code() != tonic::Code::FailedPrecondition
        {
            return Err(status);
        }
        self.bound.close(&handle);
        Ok(())
    }
}

fn ipc_schema(schema: &Schema) -> Result<bytes::Bytes, Status> {
    let options = IpcWriteOptions::default();
    IpcMessage::try_from(SchemaAsIpc::new(schema, &options))
        .map(|message| message.0)
        .map_err(|e| internal_status("cannot encode a schema", e))
}
