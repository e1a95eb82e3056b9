//! Shutting down in two steps: first no new statement is taken (draining) while running
//! ones go on; then the ones still running are stopped. Both answer
//! [`PlannerError::ShuttingDown`](crate::PlannerError::ShuttingDown) (57P01), and the
//! stopped ones are recorded as cancelled.
//!
//! ```text
//! begin_drain ─▶ execute refuses ─▶ running_queries() falls to 0, or the grace ends
//!             ─▶ stop_running ─▶ each running stream ends with ShuttingDown
//! ```

use std::sync::Arc;

use crate::resources::drain;
use crate::service::engine::QueryService;

impl QueryService {
    /// Takes no new statement from now on (57P01); running ones go on.
    pub fn begin_drain(&self) {
        self.drain.begin();
    }

    /// Whether the service drains: front ends refuse new logins (57P03).
    pub fn draining(&self) -> bool {
        self.drain.draining()
    }

    /// How many statements run or wait for a slot now, over every session served.
    pub fn running_queries(&self) -> usize {
        let sessions = self.live.sessions();
        drain::running_queries(sessions.iter().map(|s| Arc::clone(s.pool())).collect())
    }

    /// Stops every statement still running (57P01); each is recorded as cancelled.
    pub fn stop_running(&self) {
        self.drain.stop();
    }
}
