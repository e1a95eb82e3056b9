//! Statements: from SQL to a `FlightInfo` of signed tickets, and from a ticket to a stream.
//!
//! ```text
//! GetFlightInfo(sql) ─▶ plan (tenant session) ─▶ partition_count ≤ profile parallelism = N
//!                    ─▶ N tickets {principal, sql, parameters, k of N, query id, expiry}
//! DoGet(ticket k)    ─▶ verify signature, expiry, caller = ticket's principal
//!                    ─▶ plan again ─▶ execute partition k ─▶ Arrow IPC stream
//! ```
//!
//! Tickets hold everything `DoGet` needs, so any gateway sharing the signing key serves
//! them and nothing is kept per query between the two calls. A ticket presented by another
//! principal is refused before anything is planned.

use std::sync::Arc;
use std::time::Duration;

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError as WireError;
use arrow_flight::sql::{ProstMessageExt, TicketStatementQuery};
use arrow_flight::{FlightData, FlightDescriptor, FlightEndpoint, FlightInfo, Ticket};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use prost::Message;
use prost_types::Timestamp;
use tokio_util::sync::CancellationToken;
use tollgate_catalog::Principal;
use tollgate_planner::datafusion::arrow::datatypes::SchemaRef;
use tollgate_planner::{PlannedQuery, QueryContext, QueryService, ResultPart, TenantSession};
use tonic::Status;
use uuid::Uuid;

use crate::auth::Caller;
use crate::claims::{TicketClaims, decode_parameters};
use crate::error::{internal_status, planner_status};
use crate::portable::{portable_batch, portable_schema};
use crate::running::RunningQueries;
use crate::signing::{Purpose, Signer, expires_in, now_seconds};

/// A stream of Flight data for `DoGet`.
pub type FlightDataStream = BoxStream<'static, Result<FlightData, Status>>;

/// Plans statements and streams their tickets' results.
#[derive(Debug)]
pub struct Statements {
    service: Arc<QueryService>,
    signer: Arc<Signer>,
    running: Arc<RunningQueries>,
    ticket_ttl: Duration,
}

impl Statements {
    /// Statements over `service`, signing tickets valid for `ticket_ttl`.
    pub fn new(service: Arc<QueryService>, signer: Arc<Signer>, ticket_ttl: Duration) -> Self {
        Self {
            service,
            signer,
            running: Arc::new(RunningQueries::default()),
            ticket_ttl,
        }
    }

    /// The running queries, for cancel requests.
    pub fn running(&self) -> &Arc<RunningQueries> {
        &self.running
    }

    /// The session of `principal`'s tenant.
    ///
    /// # Errors
    /// PERMISSION_DENIED if the tenant has no session (not served by this gateway).
    pub fn session(&self, principal: &Principal) -> Result<Arc<TenantSession>, Status> {
        self.service.session(principal).ok_or_else(|| {
            Status::permission_denied(format!(
                "tenant \"{}\" is not served by this gateway",
                principal.tenant
            ))
        })
    }

    /// Plans `sql`, which must be one statement, for `principal`.
    ///
    /// # Errors
    /// The planner's errors mapped to gRPC codes; INVALID_ARGUMENT for zero or several
    /// statements.
    pub async fn plan(
        &self,
        caller: &Caller,
        sql: &str,
        cancel: CancellationToken,
    ) -> Result<(QueryContext, PlannedQuery), Status> {
        let session = self.session(&caller.principal)?;
        let context = QueryContext::new(
            session,
            Arc::clone(&caller.principal),
            cancel,
            Arc::clone(&caller.client),
        );
        let mut statements = self
            .service
            .parse(&context, sql)
            .map_err(|e| planner_status(&e))?;
        if statements.len() != 1 {
            return Err(Status::invalid_argument(format!(
                "a Flight SQL query must be exactly one statement, got {}",
                statements.len()
            )));
        }
        let statement = statements.remove(0);
        let planned = self
            .service
            .plan(&context, statement)
            .await
            .map_err(|e| planner_status(&e))?;
        Ok((context, planned))
    }

    /// The `FlightInfo` for `sql` with `parameters`: its schema and one endpoint per
    /// independent partition of its result.
    ///
    /// # Errors
    /// As [`Statements::plan`], and planner errors of physical planning.
    pub async fn flight_info(
        &self,
        caller: &Caller,
        sql: &str,
        parameters: Option<String>,
        descriptor: FlightDescriptor,
    ) -> Result<FlightInfo, Status> {
        let principal = &caller.principal;
        let (context, planned) = self.plan(caller, sql, CancellationToken::new()).await?;
        let values = decode_parameters(parameters.as_deref())?;
        let partitions = self
            .service
            .partition_count(&context, &planned, values)
            .await
            .map_err(|e| planner_status(&e))?;
        let query_id = Uuid::now_v7().to_string();
        let expires = expires_in(self.ticket_ttl);
        let mut info = FlightInfo::new()
            .try_with_schema(&portable_schema(planned.schema()))
            .map_err(|e| internal_status("cannot encode a result schema", e))?
            .with_descriptor(descriptor)
            .with_ordered(partitions == 1)
            .with_total_records(-1)
            .with_total_bytes(-1);
        for partition in 0..partitions {
            let claims = TicketClaims {
                user: principal.user.clone(),
                tenant: principal.tenant.clone(),
                expires,
                query_id: query_id.clone(),
                sql: sql.to_owned(),
                parameters: parameters.clone(),
                partition,
                partitions,
            };
            let handle = self
                .signer
                .seal(Purpose::Ticket, &claims)
                .map_err(|e| internal_status("cannot sign a ticket", e))?;
            let ticket = TicketStatementQuery {
                statement_handle: handle.into(),
            };
            info = info.with_endpoint(
                FlightEndpoint::new()
                    .with_ticket(Ticket::new(ticket.as_any().encode_to_vec()))
                    .with_expiration_time(Timestamp {
                        seconds: i64::try_from(expires).unwrap_or(i64::MAX),
                        nanos: 0,
                    }),
            );
        }
        Ok(info)
    }

    /// Opens a statement ticket for `principal`.
    ///
    /// # Errors
    /// PERMISSION_DENIED for a forged ticket or one issued to another principal;
    /// FAILED_PRECONDITION for an expired one.
    pub fn open_ticket(
        &self,
        principal: &Principal,
        handle: &[u8],
    ) -> Result<TicketClaims, Status> {
        let claims: TicketClaims = self.signer.open(Purpose::Ticket, handle).ok_or_else(|| {
            Status::permission_denied("the ticket was not issued by this service or was altered")
        })?;
        if !claims.belongs_to(principal) {
            tracing::warn!(
                target: "audit",
                user = %principal.user,
                tenant = %principal.tenant,
                "refused a ticket issued to another principal"
            );
            return Err(Status::permission_denied(
                "the ticket was issued to another principal",
            ));
        }
        if claims.expires <= now_seconds() {
            return Err(Status::failed_precondition(
                "the ticket has expired; call GetFlightInfo again",
            ));
        }
        Ok(claims)
    }

    /// Streams the part of a result a ticket names.
    ///
    /// # Errors
    /// As [`Statements::open_ticket`]; CANCELLED if its query was cancelled; planner errors.
    ///
    /// # Cancellation
    /// Dropping the stream stops the query; so does cancelling its `FlightInfo`. An
    /// endpoint fetched after its `FlightInfo` was cancelled starts already stopped, so that
    /// it is answered and recorded as every cancelled query is.
    pub async fn do_get(&self, caller: &Caller, handle: &[u8]) -> Result<FlightDataStream, Status> {
        let claims = self.open_ticket(&caller.principal, handle)?;
        let registration = self.running.start(&claims.query_id, claims.expires);
        let cancel = match &registration {
            Some(registration) => registration.token(),
            None => {
                let cancelled = CancellationToken::new();
                cancelled.cancel();
                cancelled
            }
        };
        let (context, planned) = self.plan(caller, &claims.sql, cancel).await?;
        // Every endpoint's record carries the query's id, so its parts add up to one query.
        let context = match Uuid::parse_str(&claims.query_id) {
            Ok(query_id) => context.with_query_id(query_id),
            Err(_) => context,
        };
        let values = decode_parameters(claims.parameters.as_deref())?;
        let part = if claims.partitions > 1 {
            ResultPart::Partition {
                index: claims.partition,
                count: claims.partitions,
            }
        } else {
            ResultPart::Whole
        };
        let stream = self
            .service
            .execute_part(&context, &planned, values, part)
            .await
            .map_err(|e| planner_status(&e))?;
        let schema = portable_schema(&stream.schema());
        let batch_schema = SchemaRef::clone(&schema);
        let wire = stream.wire_bytes();
        let batches = stream.map(move |batch| {
            // The registration lives as long as the stream, so cancel can reach it.
            let _running = &registration;
            let batch = batch.map_err(|e| WireError::Tonic(Box::new(planner_status(&e))))?;
            portable_batch(batch, &batch_schema).map_err(WireError::Arrow)
        });
        // The encoder sends every message of a batch before it asks for the next one, so
        // the wire bytes are counted before the query's stream ends and is recorded.
        let flight = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(batches)
            .inspect_ok(move |data| {
                wire.add((data.data_header.len() + data.data_body.len()) as u64);
            })
            .map_err(Status::from);
        Ok(flight.boxed())
    }
}
