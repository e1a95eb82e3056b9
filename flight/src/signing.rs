//! Signed, self-contained credentials: bearer tokens, tickets and prepared-statement handles.
//!
//! ```text
//! sealed = purpose(1 byte) ‖ JSON claims ‖ HMAC-SHA256(key, purpose ‖ claims)
//! ```
//!
//! Nothing is kept in one process's memory: any gateway holding the same key (the
//! `flight.signing_key` of a shared configuration) verifies what another issued. The purpose
//! byte is signed with the claims, so a ticket can never be replayed as a token or the
//! other way round. Claims carry their own expiry, checked on every open.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::hmac;
use ring::rand::SystemRandom;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::FlightError;

/// Shortest signing key accepted, in bytes.
const MIN_KEY_BYTES: usize = 32;
const TAG_BYTES: usize = 32;

/// What a sealed value is for; part of what is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Purpose {
    /// A bearer token naming a principal.
    Token = 1,
    /// A ticket for one part of a query's result.
    Ticket = 2,
    /// A prepared statement handle.
    PreparedStatement = 3,
    /// A URL of a shared file, handed out by the gateway's Delta Sharing endpoint.
    FileUrl = 4,
}

/// Seals and opens claims with the gateway's HMAC key.
pub struct Signer {
    key: hmac::Key,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer with the configured base64 key, or a random one when none is configured.
    ///
    /// # Errors
    /// [`FlightError::SigningKey`] if the key is not base64 or shorter than 32 bytes.
    pub fn new(configured: Option<&str>) -> Result<Self, FlightError> {
        let key = match configured {
            Some(text) => {
                let bytes = STANDARD
                    .decode(text.trim())
                    .map_err(|_| FlightError::SigningKey("not valid base64".to_owned()))?;
                if bytes.len() < MIN_KEY_BYTES {
                    return Err(FlightError::SigningKey(format!(
                        "{} bytes, at least {MIN_KEY_BYTES} are needed",
                        bytes.len()
                    )));
                }
                hmac::Key::new(hmac::HMAC_SHA256, &bytes)
            }
            None => hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new())
                .map_err(|_| FlightError::SigningKey("cannot draw a random key".to_owned()))?,
        };
        Ok(Self { key })
    }

    /// Signs `claims` for `purpose`.
    ///
    /// # Errors
    /// [`FlightError::Internal`] if the claims do not serialize.
    pub fn seal<T: Serialize>(&self, purpose: Purpose, claims: &T) -> Result<Vec<u8>, FlightError> {
        let mut sealed = vec![purpose as u8];
        serde_json::to_writer(&mut sealed, claims)
            .map_err(|e| FlightError::Internal(format!("cannot encode claims: {e}")))?;
        let tag = hmac::sign(&self.key, &sealed);
        sealed.extend_from_slice(tag.as_ref());
        Ok(sealed)
    }

    /// The claims of `sealed` if it was signed with this key for `purpose`; `None` for
    /// anything forged, altered, truncated or meant for another purpose.
    pub fn open<T: DeserializeOwned>(&self, purpose: Purpose, sealed: &[u8]) -> Option<T> {
        let split = sealed.len().checked_sub(TAG_BYTES)?;
        let (signed, tag) = sealed.split_at(split);
        if signed.first() != Some(&(purpose as u8)) {
            return None;
        }
        hmac::verify(&self.key, signed, tag).ok()?;
        serde_json::from_slice(&signed[1..]).ok()
    }
}

/// Seconds since the Unix epoch, the unit of every expiry.
pub fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The expiry `ttl` from now.
pub fn expires_in(ttl: Duration) -> u64 {
    now_seconds().saturating_add(ttl.as_secs().max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Claims {
        user: String,
    }

    #[test]
    fn opens_only_what_it_sealed_for_the_same_purpose() {
        let signer = Signer::new(None).expect("random key");
        let claims = Claims {
            user: "acme".to_owned(),
        };
        let sealed = signer.seal(Purpose::Token, &claims).expect("seal");
        assert_eq!(signer.open::<Claims>(Purpose::Token, &sealed), Some(claims));
        assert_eq!(signer.open::<Claims>(Purpose::Ticket, &sealed), None);

        let mut altered = sealed.clone();
        altered[3] ^= 1;
        assert_eq!(signer.open::<Claims>(Purpose::Token, &altered), None);
        assert_eq!(signer.open::<Claims>(Purpose::Token, &sealed[..10]), None);

        let other = Signer::new(None).expect("random key");
        assert_eq!(other.open::<Claims>(Purpose::Token, &sealed), None);
    }

    #[test]
    fn nodes_sharing_a_key_accept_each_others_values() {
        let key = STANDARD.encode([7u8; 32]);
        let first = Signer::new(Some(&key)).expect("key");
        let second = Signer::new(Some(&key)).expect("key");
        let claims = Claims {
            user: "globex".to_owned(),
        };
        let sealed = first.seal(Purpose::Ticket, &claims).expect("seal");
        assert_eq!(
            second.open::<Claims>(Purpose::Ticket, &sealed),
            Some(claims)
        );
        assert!(Signer::new(Some(&STANDARD.encode([1u8; 16]))).is_err());
        assert!(Signer::new(Some("not base64!")).is_err());
    }
}
