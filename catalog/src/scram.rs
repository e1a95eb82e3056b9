//! SCRAM-SHA-256 verifiers in PostgreSQL's stored format.
//!
//! A verifier is what PostgreSQL keeps in `pg_authid.rolpassword`:
//! `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (salt and keys in base64).
//! It lets the server check a client's proof without ever holding the password, so the
//! configuration never contains one. `tollgate passwd` produces verifiers with [`Verifier::derive`].

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, hmac, pbkdf2};

/// Iterations PostgreSQL uses by default (`scram_iterations`).
pub const DEFAULT_ITERATIONS: NonZeroU32 = NonZeroU32::new(4096).expect("4096 is positive");
const SALT_LEN: usize = 16;
const PREFIX: &str = "SCRAM-SHA-256$";

/// A parsed SCRAM-SHA-256 verifier.
#[derive(Clone, PartialEq, Eq)]
pub struct Verifier {
    /// PBKDF2 iteration count.
    pub iterations: u32,
    /// The salt given to clients.
    pub salt: Vec<u8>,
    /// `SHA-256(HMAC(SaltedPassword, "Client Key"))`.
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: Vec<u8>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// Why a verifier could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifierError {
    /// The text is not `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
    #[error(
        "not a SCRAM-SHA-256 verifier in PostgreSQL's format (SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>): {0}"
    )]
    Malformed(&'static str),
    /// The system random generator failed.
    #[error("cannot draw a random salt")]
    Random,
}

impl Verifier {
    /// Derives a verifier for `password` with a fresh random salt.
    ///
    /// # Errors
    /// [`VerifierError::Random`] if the system random generator fails.
    pub fn derive(password: &str, iterations: NonZeroU32) -> Result<Self, VerifierError> {
        let mut salt = vec![0u8; SALT_LEN];
        SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| VerifierError::Random)?;
        Ok(Self::derive_with_salt(password, salt, iterations))
    }

    /// Derives a verifier for `password` with the given salt (deterministic; for tests and
    /// for the throw-away verifiers of unknown users).
    pub fn derive_with_salt(password: &str, salt: Vec<u8>, iterations: NonZeroU32) -> Self {
        let mut salted = [0u8; digest::SHA256_OUTPUT_LEN];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            iterations,
            &salt,
            password.as_bytes(),
            &mut salted,
        );
        let key = hmac::Key::new(hmac::HMAC_SHA256, &salted);
        let client_key = hmac::sign(&key, b"Client Key");
        let stored_key = digest::digest(&digest::SHA256, client_key.as_ref());
        let server_key = hmac::sign(&key, b"Server Key");
        Self {
            iterations: iterations.get(),
            salt,
            stored_key: stored_key.as_ref().to_vec(),
            server_key: server_key.as_ref().to_vec(),
        }
    }
}

impl Verifier {
    /// Whether `password` is the one this verifier was derived from, for protocols that
    /// send a password over an encrypted channel instead of a SCRAM proof (HTTP Basic in
    /// Flight SQL). Compares in constant time.
    pub fn verify_password(&self, password: &str) -> bool {
        let iterations = NonZeroU32::new(self.iterations).unwrap_or(DEFAULT_ITERATIONS);
        let candidate = Self::derive_with_salt(password, self.salt.clone(), iterations);
        let difference = candidate
            .stored_key
            .iter()
            .zip(&self.stored_key)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        candidate.stored_key.len() == self.stored_key.len() && difference == 0
    }
}

impl FromStr for Verifier {
    type Err = VerifierError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let rest = text.strip_prefix(PREFIX).ok_or(VerifierError::Malformed(
            "missing the SCRAM-SHA-256$ prefix",
        ))?;
        let (params, keys) = rest.split_once('$').ok_or(VerifierError::Malformed(
            "missing `$` between salt and keys",
        ))?;
        let (iterations, salt) = params.split_once(':').ok_or(VerifierError::Malformed(
            "missing `:` between iterations and salt",
        ))?;
        let (stored_key, server_key) = keys.split_once(':').ok_or(VerifierError::Malformed(
            "missing `:` between StoredKey and ServerKey",
        ))?;
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| VerifierError::Malformed("iterations is not a number"))?;
        if iterations == 0 {
            return Err(VerifierError::Malformed("iterations must be positive"));
        }
        let decode = |part: &str, what: &'static str| {
            STANDARD
                .decode(part)
                .map_err(|_| VerifierError::Malformed(what))
        };
        let verifier = Self {
            iterations,
            salt: decode(salt, "salt is not base64")?,
            stored_key: decode(stored_key, "StoredKey is not base64")?,
            server_key: decode(server_key, "ServerKey is not base64")?,
        };
        if verifier.stored_key.len() != digest::SHA256_OUTPUT_LEN
            || verifier.server_key.len() != digest::SHA256_OUTPUT_LEN
        {
            return Err(VerifierError::Malformed("keys must be 32 bytes"));
        }
        Ok(verifier)
    }
}

impl fmt::Display for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PREFIX}{}:{}${}:{}",
            self.iterations,
            STANDARD.encode(&self.salt),
            STANDARD.encode(&self.stored_key),
            STANDARD.encode(&self.server_key)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PostgreSQL 15 stored this verifier for `CREATE ROLE r PASSWORD 'pencil'`; deriving with
    /// its salt must give the same keys.
    #[test]
    fn derives_the_same_verifier_as_postgres() {
        let stored = "SCRAM-SHA-256$4096:KC/ZS8VLvFOSahR8HxHkGg==$ukAoK1Lql63xGU/RzE/TZlo7nUZDqKV4rXMv9z+976Q=:Mu6o6WcqMyd/mbeiSGGJAlMqRVV7lUj5WpqAsR0piiQ=";
        let parsed: Verifier = stored.parse().expect("valid verifier");
        let iterations = NonZeroU32::new(parsed.iterations).expect("positive");
        let derived = Verifier::derive_with_salt("pencil", parsed.salt.clone(), iterations);
        assert_eq!(derived, parsed);
        assert_eq!(derived.to_string(), stored);
    }

    #[test]
    fn verifies_passwords_against_a_postgres_verifier() {
        let stored = "SCRAM-SHA-256$4096:KC/ZS8VLvFOSahR8HxHkGg==$ukAoK1Lql63xGU/RzE/TZlo7nUZDqKV4rXMv9z+976Q=:Mu6o6WcqMyd/mbeiSGGJAlMqRVV7lUj5WpqAsR0piiQ=";
        let parsed: Verifier = stored.parse().expect("valid verifier");
        assert!(parsed.verify_password("pencil"));
        assert!(!parsed.verify_password("pencil "));
        assert!(!parsed.verify_password(""));
    }

    #[test]
    fn rejects_malformed_verifiers() {
        assert!("md5abc".parse::<Verifier>().is_err());
        assert!("SCRAM-SHA-256$x:c2FsdA==$a:b".parse::<Verifier>().is_err());
        assert!(
            "SCRAM-SHA-256$4096:c2FsdA==$YQ==:Yg=="
                .parse::<Verifier>()
                .is_err()
        );
    }
}
