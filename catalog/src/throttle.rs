//! Throttling of failed logins per user name and client address.
//!
//! After `max_failures` failures within `failure_window`, further attempts from the same
//! address for the same user are refused for `lockout` without checking the password, so
//! a password cannot be guessed at wire speed. The same applies to unknown user names, so
//! the throttle reveals nothing about which users exist.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::AuthOptions;
use crate::model::Principal;
use crate::scram::{DEFAULT_ITERATIONS, Verifier};

/// Why a password login was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRefusal {
    /// Too many failures from this address for this user; the password was not checked.
    LockedOut,
    /// An unknown user or a wrong password (alike, and alike in time).
    Failed,
}

/// Failure counts keyed by (user, client address).
#[derive(Debug)]
pub struct LoginThrottle {
    max_failures: u32,
    window: Duration,
    lockout: Duration,
    entries: Mutex<HashMap<(String, IpAddr), Entry>>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    first_failure: Instant,
    failures: u32,
    locked_until: Option<Instant>,
}

/// Entries kept at most; older ones are dropped first when the map is full.
const MAX_ENTRIES: usize = 100_000;

impl LoginThrottle {
    /// A throttle with the configured limits.
    pub fn new(options: &AuthOptions) -> Self {
        Self {
            max_failures: options.max_failures.max(1),
            window: options.failure_window.duration(),
            lockout: options.lockout.duration(),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Checks `password` of `user` (the login `principal` found, if any) from `address`:
    /// refused without a check while locked out; an unknown user costs one key derivation
    /// like a known one, so timing does not tell which users exist; the outcome counts
    /// toward the lockout.
    ///
    /// # Errors
    /// [`LoginRefusal`].
    pub fn check_password<P: std::ops::Deref<Target = Principal>>(
        &self,
        user: &str,
        password: &str,
        principal: Option<P>,
        address: IpAddr,
    ) -> Result<P, LoginRefusal> {
        if self.locked(user, address).is_some() {
            return Err(LoginRefusal::LockedOut);
        }
        let verified = match &principal {
            Some(principal) => principal.verifier.verify_password(password),
            None => {
                let _ = Verifier::derive_with_salt(
                    password,
                    user.as_bytes().to_vec(),
                    DEFAULT_ITERATIONS,
                );
                false
            }
        };
        match principal {
            Some(principal) if verified => {
                self.succeeded(user, address);
                Ok(principal)
            }
            _ => {
                self.failed(user, address);
                Err(LoginRefusal::Failed)
            }
        }
    }

    /// `Some(remaining)` if `user` from `address` is locked out now.
    pub fn locked(&self, user: &str, address: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let entries = self.entries.lock().ok()?;
        let until = entries.get(&(user.to_owned(), address))?.locked_until?;
        until.checked_duration_since(now).filter(|d| !d.is_zero())
    }

    /// Counts a failed attempt.
    pub fn failed(&self, user: &str, address: IpAddr) {
        let now = Instant::now();
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= MAX_ENTRIES {
            let window = self.window.max(self.lockout);
            entries.retain(|_, e| now.duration_since(e.first_failure) < window);
        }
        let entry = entries.entry((user.to_owned(), address)).or_insert(Entry {
            first_failure: now,
            failures: 0,
            locked_until: None,
        });
        if now.duration_since(entry.first_failure) > self.window
            && entry.locked_until.is_none_or(|u| u <= now)
        {
            *entry = Entry {
                first_failure: now,
                failures: 0,
                locked_until: None,
            };
        }
        entry.failures += 1;
        if entry.failures >= self.max_failures {
            entry.locked_until = Some(now + self.lockout);
        }
    }

    /// Forgets failures after a successful login.
    pub fn succeeded(&self, user: &str, address: IpAddr) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(&(user.to_owned(), address));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HumanDuration;

    #[test]
    fn locks_after_max_failures_and_unlocks_on_success() {
        let options = AuthOptions {
            max_failures: 3,
            failure_window: HumanDuration(Duration::from_secs(60)),
            lockout: HumanDuration(Duration::from_secs(30)),
        };
        let throttle = LoginThrottle::new(&options);
        let address = IpAddr::from([127, 0, 0, 1]);
        for _ in 0..2 {
            throttle.failed("acme", address);
        }
        assert!(throttle.locked("acme", address).is_none());
        throttle.failed("acme", address);
        assert!(throttle.locked("acme", address).is_some());
        assert!(
            throttle.locked("globex", address).is_none(),
            "other users are not affected"
        );
        throttle.succeeded("acme", address);
        assert!(throttle.locked("acme", address).is_none());
    }
}
