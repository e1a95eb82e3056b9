//! A pgwire client: a tokio-postgres connection running the mix, half in the simple and
//! half in the extended protocol, cancelling with CancelRequests and leaving in the middle
//! of queries (its socket closed), then logging in again.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_postgres::NoTls;

use crate::client::Client;
use crate::tally::{HUNG, Outcome, Protocol, classify};
use crate::workload::{Action, Query};

/// A logged-in connection.
struct Connection {
    client: tokio_postgres::Client,
    /// Drives the socket; aborting it closes the connection.
    driver: JoinHandle<()>,
    /// Queries a CancelRequest sent by this connection may still reach: the one it was
    /// sent for and, arriving late, the next.
    cancel_reach: u8,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Runs queries until the soak stops.
pub async fn run(addr: SocketAddr, mut client: Client) {
    let conninfo = format!(
        "host={} port={} dbname=tollgate user={} password={} connect_timeout=30",
        addr.ip(),
        addr.port(),
        client.tenant.id,
        client.tenant.password
    );
    let mut connection: Option<Connection> = None;
    loop {
        let Some(open) = &mut connection else {
            connection = connect(&conninfo, &client).await;
            if connection.is_none() && !client.back_off(LOGIN_RETRY).await {
                break;
            }
            continue;
        };
        let (query, action) = client.mix.next();
        let extended = client.mix.chance(0.5);
        let (outcome, keep) = run_one(open, &query, action, extended, &client).await;
        if let Some(outcome) = outcome {
            client
                .tally
                .query(&client.tenant.id, Protocol::Pgwire, outcome);
        }
        if !keep || open.client.is_closed() {
            connection = None;
        }
        if !client.think().await {
            break;
        }
    }
}

/// Longest pause before logging in again after a refused login.
const LOGIN_RETRY: Duration = Duration::from_secs(1);

/// Logs in; `None` after a refused login (counted) or a failure (counted as unexpected).
async fn connect(conninfo: &str, client: &Client) -> Option<Connection> {
    match tokio_postgres::connect(conninfo, NoTls).await {
        Ok((pg, connection)) => {
            client.tally.connected(Protocol::Pgwire);
            let driver = tokio::spawn(async move {
                let _ = connection.await;
            });
            Some(Connection {
                client: pg,
                driver,
                cancel_reach: 0,
            })
        }
        Err(error) => {
            match error.as_db_error() {
                Some(db)
                    if db.code().code() == "53300" && db.message().contains("max_connections") =>
                {
                    client.tally.login_refused();
                }
                _ => client
                    .tally
                    .unexpected(Protocol::Pgwire, &format!("login: {}", describe(&error))),
            }
            None
        }
    }
}

/// Runs one query as `action` says: its outcome (`None` once counted as unexpected) and
/// whether the connection is still fit for the next.
async fn run_one(
    connection: &mut Connection,
    query: &Query,
    action: Action,
    extended: bool,
    client: &Client,
) -> (Option<Outcome>, bool) {
    let started = Instant::now();
    let pg = &connection.client;
    let cancel_token = pg.cancel_token();
    let running = async {
        match (extended, query.parameterized()) {
            (true, Some((sql, key))) => pg.query(&sql, &[&key]).await.map(drop),
            (true, None) => pg.query(&query.sql, &[]).await.map(drop),
            (false, _) => pg.simple_query(&query.sql).await.map(drop),
        }
    };
    let running = tokio::time::timeout(HUNG, running);
    tokio::pin!(running);
    let mut cancelled_at = None;
    let answer = match action {
        Action::Wait => running.await,
        Action::Cancel(after) => {
            tokio::select! {
                biased;
                answer = &mut running => answer,
                () = tokio::time::sleep(after) => {
                    cancelled_at = Some(Instant::now());
                    if let Err(error) = cancel_token.cancel_query(NoTls).await {
                        let what = format!("CancelRequest: {}", describe(&error));
                        client.tally.unexpected(Protocol::Pgwire, &what);
                    }
                    connection.cancel_reach = 2;
                    running.await
                }
            }
        }
        Action::Leave(after) => {
            tokio::select! {
                biased;
                answer = &mut running => answer,
                () = tokio::time::sleep(after) => return (Some(Outcome::Abandoned), false),
            }
        }
    };
    let tenant = &client.tenant.id;
    let cancel_asked = connection.cancel_reach > 0;
    connection.cancel_reach = connection.cancel_reach.saturating_sub(1);
    match answer {
        Ok(Ok(())) => {
            client.tally.completed_in(query.shape, started.elapsed());
            (Some(Outcome::Completed), true)
        }
        Ok(Err(error)) => match error.as_db_error() {
            Some(db) => match classify(db.code().code(), db.message(), cancel_asked) {
                Outcome::Unexpected => {
                    let what = format!("{:?}: {}", query.shape, describe(&error));
                    client
                        .tally
                        .unexpected_query(tenant, Protocol::Pgwire, &what);
                    (None, true)
                }
                outcome => {
                    if let (Outcome::Cancelled, Some(at)) = (outcome, cancelled_at) {
                        client.tally.cancelled_after(Protocol::Pgwire, at.elapsed());
                    }
                    (Some(outcome), true)
                }
            },
            None => {
                let what = format!("{:?}: {}", query.shape, describe(&error));
                client
                    .tally
                    .unexpected_query(tenant, Protocol::Pgwire, &what);
                (None, false)
            }
        },
        Err(_) => {
            let what = format!("{:?}: no answer within {HUNG:?}", query.shape);
            client
                .tally
                .unexpected_query(tenant, Protocol::Pgwire, &what);
            (None, false)
        }
    }
}

/// An error as `SQLSTATE message`, or tokio-postgres' text when the server sent none.
fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{} {}", db.code().code(), db.message()),
        None => error.to_string(),
    }
}
