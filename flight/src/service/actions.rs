//! Cancellation: the Flight SQL `CancelQuery` action and the core `CancelFlightInfo` action,
//! both stopping every running endpoint of the query a `FlightInfo` names.

use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::{ActionCancelQueryRequest, ActionCancelQueryResult, TicketStatementQuery};
use arrow_flight::{
    Action, ActionType, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus, FlightInfo,
};
use futures::StreamExt;
use futures::stream;
use prost::Message;
use tollgate_catalog::Principal;
use tonic::{Response, Status};

use super::TollgateFlightSql;
use crate::running::CancelOutcome;
use crate::signing::Purpose;

/// The core Flight action that cancels a `FlightInfo`'s query.
const CANCEL_FLIGHT_INFO: &str = "CancelFlightInfo";

impl TollgateFlightSql {
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

    /// `CancelQuery`: the query of the encoded `FlightInfo` in `query`.
    pub(super) fn cancel_query(
        &self,
        principal: &Principal,
        query: ActionCancelQueryRequest,
    ) -> Result<ActionCancelQueryResult, Status> {
        let info = FlightInfo::decode(query.info).map_err(|e| {
            Status::invalid_argument(format!("the FlightInfo does not decode: {e}"))
        })?;
        self.cancel(principal, &info)?;
        Ok(ActionCancelQueryResult {
            // CancelResult::Cancelled; arrow-flight does not export that enum.
            result: 1,
        })
    }

    /// An action Flight SQL does not name: `CancelFlightInfo`, or an unknown action.
    pub(super) fn custom_action(
        &self,
        principal: &Principal,
        action: Action,
    ) -> Result<Response<<Self as FlightService>::DoActionStream>, Status> {
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
        let status = self.cancel(principal, &info)?;
        let result = CancelFlightInfoResult::new(status);
        let body = arrow_flight::Result::new(result.encode_to_vec());
        Ok(Response::new(stream::iter([Ok(body)]).boxed()))
    }
}

/// The actions [`TollgateFlightSql::custom_action`] answers, as `ListActions` lists them.
pub(super) fn custom_actions() -> Vec<Result<ActionType, Status>> {
    vec![Ok(ActionType {
        r#type: CANCEL_FLIGHT_INFO.to_owned(),
        description:
            "Cancels the query of a FlightInfo: running endpoints stop, others are refused.\n
                Request Message: CancelFlightInfoRequest\n
                Response Message: CancelFlightInfoResult"
                .to_owned(),
    })]
}
