//! `ListFlights`: the caller's datasets, each a flight whose descriptor is the query that
//! reads it whole (`SELECT * FROM "schema"."table"`), with its Arrow schema; no endpoints,
//! so a client asks `GetFlightInfo` with that descriptor to read one.
//!
//! arrow-flight's Flight SQL server answers `ListFlights` with "unimplemented" for every
//! service, so [`ListingFlightSql`] serves Flight with that one method of its own and hands
//! every other call to the Flight SQL service unchanged.

use std::pin::Pin;
use std::sync::Arc;

use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::{CommandStatementQuery, ProstMessageExt};
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaResult, Ticket,
};
use futures::Stream;
use futures::stream;
use prost::Message;
use tonic::{Request, Response, Status, Streaming};

use super::TollgateFlightSql;
use crate::portable::portable_schema;

type Answers<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The Flight service: [`TollgateFlightSql`] with `ListFlights`.
#[derive(Debug, Clone)]
pub struct ListingFlightSql {
    inner: Arc<TollgateFlightSql>,
}

impl ListingFlightSql {
    /// Serves `inner`, with `ListFlights` answered here.
    pub fn new(inner: TollgateFlightSql) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The flights of the caller's session whose `schema.table` starts with `prefix`.
    fn flights(&self, request: &Request<Criteria>) -> Result<Vec<FlightInfo>, Status> {
        let principal = self.inner.principal(request)?;
        let session = self.inner.statements.session(&principal)?;
        let prefix = String::from_utf8_lossy(&request.get_ref().expression).into_owned();
        let mut flights = Vec::new();
        for table in session.tables() {
            let name = format!("{}.{}", table.schema, table.table);
            if !name.starts_with(&prefix) {
                continue;
            }
            let query = CommandStatementQuery {
                query: format!(
                    "SELECT * FROM {}.{}",
                    quoted(&table.schema),
                    quoted(&table.table)
                ),
                transaction_id: None,
            };
            let descriptor = FlightDescriptor::new_cmd(query.as_any().encode_to_vec());
            let info = FlightInfo::new()
                .try_with_schema(&portable_schema(&table.columns))
                .map_err(|e| Status::internal(format!("the schema of {name}: {e}")))?
                .with_descriptor(descriptor);
            flights.push(info);
        }
        Ok(flights)
    }
}

/// `name` as a quoted SQL identifier.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[tonic::async_trait]
impl FlightService for ListingFlightSql {
    type HandshakeStream = Answers<HandshakeResponse>;
    type ListFlightsStream = Answers<FlightInfo>;
    type DoGetStream = Answers<FlightData>;
    type DoPutStream = Answers<PutResult>;
    type DoActionStream = Answers<arrow_flight::Result>;
    type ListActionsStream = Answers<ActionType>;
    type DoExchangeStream = Answers<FlightData>;

    async fn handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        FlightService::handshake(&*self.inner, request).await
    }

    async fn list_flights(
        &self,
        request: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        let flights = self.flights(&request)?;
        Ok(Response::new(Box::pin(stream::iter(
            flights.into_iter().map(Ok),
        ))))
    }

    async fn get_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        FlightService::get_flight_info(&*self.inner, request).await
    }

    async fn poll_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        FlightService::poll_flight_info(&*self.inner, request).await
    }

    async fn get_schema(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        FlightService::get_schema(&*self.inner, request).await
    }

    async fn do_get(
        &self,
        request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        FlightService::do_get(&*self.inner, request).await
    }

    async fn do_put(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        FlightService::do_put(&*self.inner, request).await
    }

    async fn do_action(
        &self,
        request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        FlightService::do_action(&*self.inner, request).await
    }

    async fn list_actions(
        &self,
        request: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        FlightService::list_actions(&*self.inner, request).await
    }

    async fn do_exchange(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        FlightService::do_exchange(&*self.inner, request).await
    }
}
