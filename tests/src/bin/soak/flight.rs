//! A Flight SQL client: arrow-flight's `FlightSqlServiceClient` over one gRPC channel,
//! logged in by handshake, reading each endpoint of a query in turn; it cancels with
//! `CancelFlightInfo` and leaves by dropping its stream and channel, then connects again.

use std::net::SocketAddr;
use std::time::Instant;

use arrow_flight::error::FlightError;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::{Action, CancelFlightInfoRequest, FlightInfo, Ticket};
use futures::TryStreamExt;
use prost::Message;
use tonic::Code;
use tonic::transport::Channel;

use crate::client::Client;
use crate::tally::{HUNG, Outcome, Protocol, classify};
use crate::workload::{Action as ClientAction, Query};

type Flight = FlightSqlServiceClient<Channel>;

/// Runs queries until the soak stops.
pub async fn run(addr: SocketAddr, mut client: Client) {
    let uri = format!("http://{addr}");
    let mut flight: Option<Flight> = None;
    loop {
        let Some(open) = &mut flight else {
            flight = connect(&uri, &client).await;
            if flight.is_none() && !client.back_off(std::time::Duration::from_secs(1)).await {
                break;
            }
            continue;
        };
        let (query, action) = client.mix.next();
        if !run_one(open, &query, action, &client).await {
            flight = None;
        }
        if !client.think().await {
            break;
        }
    }
}

/// Opens a channel and logs in; `None` after a failure (counted as unexpected).
async fn connect(uri: &str, client: &Client) -> Option<Flight> {
    let login = async {
        let channel = Channel::from_shared(uri.to_owned())
            .map_err(|e| e.to_string())?
            .connect()
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let mut flight = FlightSqlServiceClient::new(channel);
        flight
            .handshake(&client.tenant.id, &client.tenant.password)
            .await
            .map_err(|e| format!("handshake: {}", describe(&e)))?;
        Ok::<_, String>(flight)
    };
    match tokio::time::timeout(HUNG, login).await {
        Ok(Ok(flight)) => {
            client.tally.connected(Protocol::FlightSql);
            Some(flight)
        }
        Ok(Err(what)) => {
            client.tally.unexpected(Protocol::FlightSql, &what);
            None
        }
        Err(_) => {
            client
                .tally
                .unexpected(Protocol::FlightSql, "login: no answer in time");
            None
        }
    }
}

/// Runs one query as `action` says, counting an outcome per endpoint read (or for the
/// `GetFlightInfo` that failed); whether the channel is still fit for the next.
async fn run_one(
    flight: &mut Flight,
    query: &Query,
    action: ClientAction,
    client: &Client,
) -> bool {
    let (tenant, tally) = (&client.tenant.id, &client.tally);
    // A client leaves at any time; it cancels what it is reading.
    let leave_at = match action {
        ClientAction::Leave(after) => Some(tokio::time::Instant::now() + after),
        ClientAction::Wait | ClientAction::Cancel(_) => None,
    };
    let requested = Instant::now();
    let planning = tokio::time::timeout(HUNG, flight.execute(query.sql.clone(), None));
    let planned = match leave_at {
        Some(at) => tokio::select! {
            biased;
            planned = planning => planned,
            () = tokio::time::sleep_until(at) => {
                tally.query(tenant, Protocol::FlightSql, Outcome::Abandoned);
                return false;
            }
        },
        None => planning.await,
    };
    let info = match planned {
        Ok(Ok(info)) => info,
        Ok(Err(error)) => return count_failure(&error, None, query, client),
        Err(_) => {
            let what = format!("{:?}: GetFlightInfo without an answer", query.shape);
            tally.unexpected_query(tenant, Protocol::FlightSql, &what);
            return false;
        }
    };
    let started = Instant::now();
    let at = match action {
        ClientAction::Cancel(after) => Some(tokio::time::Instant::now() + after),
        ClientAction::Leave(_) => leave_at,
        ClientAction::Wait => None,
    };
    let mut cancelled_at = None;
    let mut completed = 0;
    for endpoint in &info.endpoint {
        let Some(ticket) = endpoint.ticket.clone() else {
            tally.unexpected(Protocol::FlightSql, "an endpoint without a ticket");
            continue;
        };
        let mut canceller = flight.clone();
        let read = tokio::time::timeout(HUNG, read_endpoint(flight, ticket));
        tokio::pin!(read);
        let answer = match at {
            Some(at) => tokio::select! {
                biased;
                answer = &mut read => answer,
                () = tokio::time::sleep_until(at) => {
                    if leave_at.is_some() {
                        tally.query(tenant, Protocol::FlightSql, Outcome::Abandoned);
                        return false;
                    }
                    cancelled_at = Some(Instant::now());
                    if let Err(error) = cancel(&mut canceller, &info).await {
                        let what = format!("CancelFlightInfo: {}", describe(&error));
                        tally.unexpected(Protocol::FlightSql, &what);
                    }
                    read.await
                }
            },
            None => read.await,
        };
        match answer {
            Ok(Ok(())) => tally.query(tenant, Protocol::FlightSql, Outcome::Completed),
            Ok(Err(error)) => {
                if !count_failure(&error, cancelled_at, query, client) {
                    return false;
                }
                break;
            }
            Err(_) => {
                let what = format!(
                    "{:?}: DoGet without an answer after {:?}",
                    query.shape,
                    started.elapsed()
                );
                tally.unexpected_query(tenant, Protocol::FlightSql, &what);
                return false;
            }
        }
        // A cancelled query's other endpoints are refused: a client stops reading.
        if cancelled_at.is_some() {
            break;
        }
        completed += 1;
    }
    if completed == info.endpoint.len() && completed > 0 {
        tally.completed_in(query.shape, requested.elapsed());
    }
    true
}

/// Reads an endpoint to its end.
async fn read_endpoint(flight: &mut Flight, ticket: Ticket) -> Result<(), FlightError> {
    let mut stream = flight.do_get(ticket).await?;
    while stream.try_next().await?.is_some() {}
    Ok(())
}

/// Asks the gateway to cancel the query of `info`.
async fn cancel(flight: &mut Flight, info: &FlightInfo) -> Result<(), FlightError> {
    let body = CancelFlightInfoRequest::new(info.clone()).encode_to_vec();
    let results = flight
        .do_action(Action::new("CancelFlightInfo", body))
        .await?;
    results.try_collect::<Vec<_>>().await?;
    Ok(())
}

/// Counts a failed query by its gRPC status (`cancelled_at`: when the client asked to
/// cancel it); whether the channel is still fit.
fn count_failure(
    error: &FlightError,
    cancelled_at: Option<Instant>,
    query: &Query,
    client: &Client,
) -> bool {
    let (tenant, tally) = (&client.tenant.id, &client.tally);
    let FlightError::Tonic(status) = error else {
        let what = format!("{:?}: {}", query.shape, describe(error));
        tally.unexpected_query(tenant, Protocol::FlightSql, &what);
        return false;
    };
    let message = status.message();
    // The SQLSTATE the other front ends send for the same error.
    let sqlstate = match status.code() {
        Code::Cancelled | Code::DeadlineExceeded => "57014",
        Code::ResourceExhausted if message.contains("queries per second") => "53400",
        Code::ResourceExhausted => "53300",
        _ => "",
    };
    match classify(sqlstate, message, cancelled_at.is_some()) {
        Outcome::Unexpected => {
            let what = format!("{:?}: {}", query.shape, describe(error));
            tally.unexpected_query(tenant, Protocol::FlightSql, &what);
        }
        outcome => {
            if let (Outcome::Cancelled, Some(at)) = (outcome, cancelled_at) {
                tally.cancelled_after(Protocol::FlightSql, at.elapsed());
            }
            tally.query(tenant, Protocol::FlightSql, outcome);
        }
    }
    true
}

/// An error as `gRPC code: message`.
fn describe(error: &FlightError) -> String {
    match error {
        FlightError::Tonic(status) => format!("{:?}: {}", status.code(), status.message()),
        other => other.to_string(),
    }
}
