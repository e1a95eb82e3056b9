//! Queries running on this gateway, by the query id their tickets share, for cancel.
//!
//! `CancelFlightInfo` (and the older `CancelQuery` action) names a `FlightInfo`; every
//! endpoint's ticket carries the same query id. Cancelling fires the token of every `DoGet`
//! running for that id and remembers the id until its tickets expire, so an endpoint not yet
//! fetched is refused instead of starting. Dropping a `DoGet` stream stops its query without
//! any of this: the stream owns the query.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio_util::sync::CancellationToken;

use crate::signing::now_seconds;

/// Running and cancelled queries.
#[derive(Debug, Default)]
pub struct RunningQueries {
    queries: Mutex<HashMap<String, QueryEntry>>,
}

#[derive(Debug, Default)]
struct QueryEntry {
    expires: u64,
    cancelled: bool,
    streams: Vec<(u64, CancellationToken)>,
    next_stream: u64,
}

/// What a cancel request found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// Running streams were stopped.
    Cancelled,
    /// Nothing was running; endpoints not fetched yet will be refused.
    NothingRunning,
}

impl RunningQueries {
    /// Registers a stream of query `query_id` whose tickets expire at `expires`.
    ///
    /// Returns `None` if the query was cancelled.
    pub fn start(self: &Arc<Self>, query_id: &str, expires: u64) -> Option<RunningStream> {
        let mut queries = self.queries.lock().unwrap_or_else(PoisonError::into_inner);
        Self::forget_expired(&mut queries);
        let entry = queries.entry(query_id.to_owned()).or_default();
        if entry.cancelled {
            return None;
        }
        entry.expires = entry.expires.max(expires);
        let token = CancellationToken::new();
        let id = entry.next_stream;
        entry.next_stream += 1;
        entry.streams.push((id, token.clone()));
        Some(RunningStream {
            registry: Arc::clone(self),
            query_id: query_id.to_owned(),
            stream: id,
            token,
        })
    }

    /// Cancels every stream of `query_id` and refuses later ones.
    pub fn cancel(&self, query_id: &str, expires: u64) -> CancelOutcome {
        let mut queries = self.queries.lock().unwrap_or_else(PoisonError::into_inner);
        Self::forget_expired(&mut queries);
        let entry = queries.entry(query_id.to_owned()).or_default();
        entry.cancelled = true;
        entry.expires = entry.expires.max(expires);
        let running = !entry.streams.is_empty();
        for (_, token) in entry.streams.drain(..) {
            token.cancel();
        }
        if running {
            CancelOutcome::Cancelled
        } else {
            CancelOutcome::NothingRunning
        }
    }

    fn finished(&self, query_id: &str, stream: u64) {
        let mut queries = self.queries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = queries.get_mut(query_id) {
            entry.streams.retain(|(id, _)| *id != stream);
            if entry.streams.is_empty() && !entry.cancelled {
                queries.remove(query_id);
            }
        }
    }

    fn forget_expired(queries: &mut HashMap<String, QueryEntry>) {
        let now = now_seconds();
        queries.retain(|_, entry| !entry.streams.is_empty() || entry.expires > now);
    }
}

/// One running `DoGet`; deregisters itself when dropped.
#[derive(Debug)]
pub struct RunningStream {
    registry: Arc<RunningQueries>,
    query_id: String,
    stream: u64,
    token: CancellationToken,
}

impl RunningStream {
    /// The token that stops this stream's query.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }
}

impl Drop for RunningStream {
    fn drop(&mut self) {
        self.registry.finished(&self.query_id, self.stream);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_stops_running_streams_and_refuses_later_ones() {
        let registry = Arc::new(RunningQueries::default());
        let expires = now_seconds() + 60;
        let stream = registry.start("q1", expires).expect("not cancelled");
        let token = stream.token();
        assert_eq!(registry.cancel("q1", expires), CancelOutcome::Cancelled);
        assert!(token.is_cancelled());
        assert!(registry.start("q1", expires).is_none());
        drop(stream);
        assert!(registry.start("q1", expires).is_none(), "still refused");
        assert!(registry.start("q2", expires).is_some());
        assert_eq!(
            registry.cancel("q3", expires),
            CancelOutcome::NothingRunning
        );
    }

    #[test]
    fn finished_queries_are_forgotten() {
        let registry = Arc::new(RunningQueries::default());
        let stream = registry.start("q1", now_seconds() + 60).expect("start");
        drop(stream);
        let queries = registry.queries.lock().expect("lock");
        assert!(queries.is_empty());
    }
}
