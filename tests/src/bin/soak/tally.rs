//! What the clients saw: one outcome per query, counted per tenant and protocol, and the
//! text of every unexpected error.
//!
//! A query is what the ledger keeps one record of: a pgwire statement, a Web-API statement
//! or resource read, and over Flight SQL each endpoint read (`DoGet`), or the
//! `GetFlightInfo` that failed before any endpoint existed.
//!
//! Expected failures, each of a behaviour the load provokes on purpose:
//!
//! | outcome | pgwire / Web-API | Flight SQL |
//! | --- | --- | --- |
//! | cancelled | 57014 after the client's CancelRequest (pgwire; or one sent during the connection's previous query, which a late CancelRequest reaches as in PostgreSQL), 204 to `DELETE` (Web-API) | `Cancelled` after `CancelFlightInfo` (also for an endpoint fetched after it: it starts stopped, and is recorded) |
//! | timed out | 57014 "due to statement timeout" (the profile's) | `DeadlineExceeded` |
//! | refused | 53300 naming `max_concurrent_queries` or `max_queue_wait`, 53400 (rate) | `ResourceExhausted` naming the same limits |
//!
//! A login refused with 53300 (`max_connections`, while the gateway has not yet noticed a
//! connection the client left) is expected too, and retried. Anything else is unexpected:
//! another SQLSTATE or gRPC code, a 57014 nobody asked for, a connection the gateway
//! closed, a query without an answer within [`HUNG`].
//!
//! How long a cancel took, from the request to the client seeing its query stopped, is kept
//! per protocol: under load it is the latency a user waits for.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::workload::Shape;

/// How long a query may go without an answer before it counts as hung (unexpected).
pub const HUNG: Duration = Duration::from_secs(120);

/// The front ends, named as usage records name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// The Postgres wire protocol.
    Pgwire,
    /// Arrow Flight SQL.
    FlightSql,
    /// The Web-API.
    Http,
}

impl Protocol {
    /// Every protocol, in report order.
    pub const ALL: [Protocol; 3] = [Self::Pgwire, Self::FlightSql, Self::Http];

    /// The name usage records give it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pgwire => "pgwire",
            Self::FlightSql => "flight_sql",
            Self::Http => "http",
        }
    }
}

/// How one query ended for its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The whole result arrived.
    Completed,
    /// Stopped at the client's request.
    Cancelled,
    /// Stopped by the profile's statement timeout.
    TimedOut,
    /// Refused by admission (queue, queue wait, rate).
    Refused,
    /// The client went away before the answer: the gateway may or may not have started it.
    Abandoned,
    /// Anything else.
    Unexpected,
}

impl Outcome {
    /// Every outcome, in report order.
    pub const ALL: [Outcome; 6] = [
        Self::Completed,
        Self::Cancelled,
        Self::TimedOut,
        Self::Refused,
        Self::Abandoned,
        Self::Unexpected,
    ];

    /// A short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
            Self::TimedOut => "timed out",
            Self::Refused => "refused",
            Self::Abandoned => "abandoned",
            Self::Unexpected => "unexpected",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Completed => 0,
            Self::Cancelled => 1,
            Self::TimedOut => 2,
            Self::Refused => 3,
            Self::Abandoned => 4,
            Self::Unexpected => 5,
        }
    }
}

/// Counts of each outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts([u64; 6]);

impl Counts {
    /// How many queries ended with `outcome`.
    pub fn get(&self, outcome: Outcome) -> u64 {
        self.0[outcome.index()]
    }

    /// Every query.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    fn add(&mut self, other: &Counts) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine += theirs;
        }
    }
}

/// The classification of a failed query from its SQLSTATE and message; `cancel_asked`
/// when the client asked to cancel it.
pub fn classify(sqlstate: &str, message: &str, cancel_asked: bool) -> Outcome {
    let admission = ["max_concurrent_queries", "max_queue_wait"];
    match sqlstate {
        "57014" if message.contains("statement timeout") => Outcome::TimedOut,
        "57014" if cancel_asked => Outcome::Cancelled,
        "53300" if admission.iter().any(|limit| message.contains(limit)) => Outcome::Refused,
        "53400" => Outcome::Refused,
        _ => Outcome::Unexpected,
    }
}

/// Everything counted so far.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Outcomes by tenant and protocol.
    pub counts: BTreeMap<(String, Protocol), Counts>,
    /// Unexpected errors by their text (protocol, SQLSTATE or code, message), with counts.
    pub unexpected: BTreeMap<String, u64>,
    /// Connections (logins, Flight handshakes, HTTP clients) opened, by protocol.
    pub connections: BTreeMap<Protocol, u64>,
    /// Logins refused with 53300 (`max_connections`) and retried.
    pub login_refusals: u64,
    /// From a cancel request to its query's 57014, by protocol.
    pub cancel_latencies: BTreeMap<Protocol, Vec<Duration>>,
    /// How long completed queries took, from the request to the end of the result, by shape.
    pub latencies: BTreeMap<Shape, Vec<Duration>>,
}

impl Snapshot {
    /// The counts of `protocol` over every tenant.
    pub fn protocol(&self, protocol: Protocol) -> Counts {
        let mut sum = Counts::default();
        for ((_, p), counts) in &self.counts {
            if *p == protocol {
                sum.add(counts);
            }
        }
        sum
    }

    /// The counts of every query.
    pub fn all(&self) -> Counts {
        let mut sum = Counts::default();
        for counts in self.counts.values() {
            sum.add(counts);
        }
        sum
    }

    /// Unexpected errors, of queries and of connections.
    pub fn unexpected_total(&self) -> u64 {
        self.unexpected.values().sum()
    }

    /// The median, 99th percentile and longest cancel latency over `protocol`, if any.
    pub fn cancel_latency(&self, protocol: Protocol) -> Option<[Duration; 3]> {
        percentiles(self.cancel_latencies.get(&protocol)?)
    }

    /// The median, 99th percentile and longest time of completed queries of `shape`.
    pub fn latency(&self, shape: Shape) -> Option<[Duration; 3]> {
        percentiles(self.latencies.get(&shape)?)
    }
}

/// The median, 99th percentile and maximum of `values`, if there are any.
fn percentiles(values: &[Duration]) -> Option<[Duration; 3]> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let last = sorted.len().checked_sub(1)?;
    let at = |share: f64| sorted[(last as f64 * share) as usize];
    Some([at(0.5), at(0.99), sorted[last]])
}

/// The clients' shared counters.
#[derive(Debug, Default)]
pub struct Tally(Mutex<Snapshot>);

impl Tally {
    fn with<T>(&self, f: impl FnOnce(&mut Snapshot) -> T) -> T {
        f(&mut self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Counts a query of `tenant` over `protocol` that ended with `outcome` (not
    /// [`Outcome::Unexpected`]: see [`Tally::unexpected_query`]).
    pub fn query(&self, tenant: &str, protocol: Protocol, outcome: Outcome) {
        self.with(|snapshot| {
            let counts = snapshot
                .counts
                .entry((tenant.to_owned(), protocol))
                .or_default();
            counts.0[outcome.index()] += 1;
        });
    }

    /// Counts a query that ended with an unexpected error, described by `what`.
    pub fn unexpected_query(&self, tenant: &str, protocol: Protocol, what: &str) {
        self.query(tenant, protocol, Outcome::Unexpected);
        self.unexpected(protocol, what);
    }

    /// Counts an unexpected error outside a query (a login, a cancel request).
    pub fn unexpected(&self, protocol: Protocol, what: &str) {
        self.with(|snapshot| {
            *snapshot
                .unexpected
                .entry(format!("{}: {what}", protocol.as_str()))
                .or_default() += 1;
        });
    }

    /// Keeps how long a cancel over `protocol` took to stop its query.
    pub fn cancelled_after(&self, protocol: Protocol, latency: Duration) {
        self.with(|snapshot| {
            snapshot
                .cancel_latencies
                .entry(protocol)
                .or_default()
                .push(latency);
        });
    }

    /// Keeps how long a completed query of `shape` took.
    pub fn completed_in(&self, shape: Shape, took: Duration) {
        self.with(|snapshot| snapshot.latencies.entry(shape).or_default().push(took));
    }

    /// Counts a connection opened over `protocol`.
    pub fn connected(&self, protocol: Protocol) {
        self.with(|snapshot| *snapshot.connections.entry(protocol).or_default() += 1);
    }

    /// Counts a login refused for the tenant's connection limit.
    pub fn login_refused(&self) {
        self.with(|snapshot| snapshot.login_refusals += 1);
    }

    /// A copy of the counts.
    pub fn snapshot(&self) -> Snapshot {
        self.with(|snapshot| snapshot.clone())
    }
}
