//! Prepared statements as ADBC and JDBC drive them.
//!
//! ```text
//! CreatePreparedStatement(sql) ─▶ handle {principal, sql, expiry} (signed) + both schemas
//! DoPut(handle, one row of parameters) ─▶ new handle {…, parameters}  (stateless clients)
//!                                       └▶ parameters kept by the old handle (other clients)
//! GetFlightInfo(handle) ─▶ tickets with the parameters bound
//! ClosePreparedStatement(handle) ─▶ forgets kept parameters
//! ```
//!
//! The handle is self-contained like a ticket. Clients that follow Flight SQL's stateless
//! protocol use the new handle `DoPut` returns; older clients keep using the first handle,
//! so its bound parameters are also kept here, by the handle's digest, until it expires.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use ring::digest;

use crate::signing::now_seconds;

/// Kept parameters at most; the oldest are dropped first beyond this.
const MAX_KEPT: usize = 10_000;

/// Parameters bound to prepared statement handles, by handle digest.
#[derive(Debug, Default)]
pub struct BoundParameters {
    bound: Mutex<HashMap<Vec<u8>, Kept>>,
}

#[derive(Debug)]
struct Kept {
    parameters: String,
    expires: u64,
}

impl BoundParameters {
    /// Keeps `parameters` for `handle` until `expires`.
    pub fn bind(&self, handle: &[u8], parameters: String, expires: u64) {
        let mut bound = self.bound.lock().unwrap_or_else(PoisonError::into_inner);
        let now = now_seconds();
        bound.retain(|_, kept| kept.expires > now);
        if bound.len() >= MAX_KEPT
            && let Some(oldest) = bound
                .iter()
                .min_by_key(|(_, kept)| kept.expires)
                .map(|(key, _)| key.clone())
        {
            bound.remove(&oldest);
        }
        bound.insert(
            key(handle),
            Kept {
                parameters,
                expires,
            },
        );
    }

    /// The parameters last bound to `handle`.
    pub fn get(&self, handle: &[u8]) -> Option<String> {
        let bound = self.bound.lock().unwrap_or_else(PoisonError::into_inner);
        bound
            .get(&key(handle))
            .filter(|kept| kept.expires > now_seconds())
            .map(|kept| kept.parameters.clone())
    }

    /// Forgets the parameters of `handle`.
    pub fn close(&self, handle: &[u8]) {
        let mut bound = self.bound.lock().unwrap_or_else(PoisonError::into_inner);
        bound.remove(&key(handle));
    }
}

fn key(handle: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA256, handle).as_ref().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_parameters_per_handle_until_closed_or_expired() {
        let bound = BoundParameters::default();
        bound.bind(b"h1", "p1".to_owned(), now_seconds() + 60);
        bound.bind(b"h2", "p2".to_owned(), now_seconds() - 1);
        assert_eq!(bound.get(b"h1").as_deref(), Some("p1"));
        assert_eq!(bound.get(b"h2"), None, "expired");
        bound.close(b"h1");
        assert_eq!(bound.get(b"h1"), None);
    }
}
