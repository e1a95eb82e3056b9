//! A SCRAM-SHA-256 client (RFC 5802, RFC 7677, as PostgreSQL speaks it: no user name in the
//! messages, no channel binding) that derives the salted password once per password, salt
//! and iteration count. A login then costs two HMACs and a round trip instead of thousands
//! of HMAC rounds, so a fuzz target can log in for every input.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::{digest, hmac, pbkdf2};

/// The gs2 header of a client without channel binding, `n,,`, as base64.
const GS2_HEADER_BASE64: &str = "biws";

/// One client's exchange: its first message sent, waiting for the server's.
pub struct ScramClient {
    password: String,
    first_bare: String,
}

impl ScramClient {
    /// A client of `password` with a fresh nonce.
    pub fn new(password: &str) -> Self {
        let nonce: [u8; 18] = rand::random();
        Self {
            password: password.to_owned(),
            first_bare: format!("n=,r={}", STANDARD.encode(nonce)),
        }
    }

    /// The client-first message (the SASLInitialResponse's data).
    pub fn first_message(&self) -> String {
        format!("n,,{}", self.first_bare)
    }

    /// The client-final message answering `server_first` (`r=…,s=…,i=…`).
    ///
    /// # Errors
    /// A message saying what the server's message lacks.
    pub fn final_message(&self, server_first: &str) -> Result<String, String> {
        let field = |name: char| {
            server_first
                .split(',')
                .find_map(|part| part.strip_prefix(name)?.strip_prefix('='))
                .ok_or_else(|| format!("server-first-message without `{name}`: {server_first}"))
        };
        let nonce = field('r')?;
        let salt = STANDARD
            .decode(field('s')?)
            .map_err(|e| format!("salt: {e}"))?;
        let iterations: NonZeroU32 = field('i')?
            .parse()
            .map_err(|e| format!("iteration count: {e}"))?;
        let salted = salted_password(&self.password, &salt, iterations);
        let client_key = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, salted.as_slice()),
            b"Client Key",
        );
        let stored_key = digest::digest(&digest::SHA256, client_key.as_ref());
        let without_proof = format!("c={GS2_HEADER_BASE64},r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.first_bare);
        let signature = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, stored_key.as_ref()),
            auth_message.as_bytes(),
        );
        let proof: Vec<u8> = client_key
            .as_ref()
            .iter()
            .zip(signature.as_ref())
            .map(|(key, signature)| key ^ signature)
            .collect();
        Ok(format!("{without_proof},p={}", STANDARD.encode(proof)))
    }
}

/// `Hi(password, salt, iterations)`, computed once per process for each argument triple.
fn salted_password(password: &str, salt: &[u8], iterations: NonZeroU32) -> Arc<[u8; 32]> {
    type Key = (String, Vec<u8>, NonZeroU32);
    static DERIVED: OnceLock<Mutex<HashMap<Key, Arc<[u8; 32]>>>> = OnceLock::new();
    let derived = DERIVED.get_or_init(Mutex::default);
    let key = (password.to_owned(), salt.to_vec(), iterations);
    if let Some(found) = derived
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&key)
    {
        return Arc::clone(found);
    }
    let mut salted = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt,
        password.as_bytes(),
        &mut salted,
    );
    let salted = Arc::new(salted);
    derived
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(key, Arc::clone(&salted));
    salted
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's example exchange (user "user", password "pencil"), with PostgreSQL's
    /// empty user name in the client's bare first message.
    #[test]
    fn the_proof_is_rfc_7677s_for_its_messages() {
        let client = ScramClient {
            password: "pencil".to_owned(),
            first_bare: "n=user,r=rOprNGfwEbeRWgbNEkqO".to_owned(),
        };
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        assert_eq!(
            client.final_message(server_first).expect("a final message"),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
    }
}
