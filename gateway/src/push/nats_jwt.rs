//! NATS's decentralized authentication: operator, account and user JWTs signed with nkeys,
//! and the `.creds` text a client connects with.
//!
//! ```text
//! operator (SO…) ──signs──▶ account JWT of each tenant (limits, revoked users)
//! account  (SA…) ──signs──▶ user JWT of each channel login (what it may publish, subscribe)
//! ```
//!
//! A JWT is `base64url(header).base64url(claims).base64url(ed25519 signature)`, its `jti`
//! the base32 SHA-512/256 of the claims, as the NATS tools write it.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use nkeys::KeyPair;
use ring::digest;
use serde_json::{Value, json};

/// Why a key or token could not be made.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    /// A seed that is not an nkey seed of the expected kind.
    #[error("`{what}` is not a valid {kind} seed")]
    Seed {
        /// Which setting.
        what: &'static str,
        /// Operator, account.
        kind: &'static str,
    },
    /// Signing failed.
    #[error("cannot sign a NATS token: {0}")]
    Sign(String),
}

/// What a user may publish and subscribe to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions {
    /// Subjects it may publish to.
    pub publish_allow: Vec<String>,
    /// Subjects it may not publish to, even where allowed.
    pub publish_deny: Vec<String>,
    /// Subjects it may subscribe to.
    pub subscribe_allow: Vec<String>,
}

/// The key pair of `seed`, which must be of kind `kind` (`operator`, `account`).
///
/// # Errors
/// [`JwtError::Seed`] naming `what`.
pub fn key_pair(seed: &str, what: &'static str, kind: &'static str) -> Result<KeyPair, JwtError> {
    let prefix = match kind {
        "operator" => 'O',
        "account" => 'A',
        _ => 'U',
    };
    let pair = KeyPair::from_seed(seed).map_err(|_| JwtError::Seed { what, kind })?;
    if pair.public_key().starts_with(prefix) {
        Ok(pair)
    } else {
        Err(JwtError::Seed { what, kind })
    }
}

/// The operator's self-signed JWT, naming the system account.
///
/// # Errors
/// [`JwtError::Sign`].
pub fn operator_jwt(operator: &KeyPair, system_account: &str) -> Result<String, JwtError> {
    let key = operator.public_key();
    let nats = json!({ "system_account": system_account, "type": "operator", "version": 2 });
    sign(operator, "tollgate", &key, Utc::now(), nats)
}

/// An account's JWT, signed by the operator: `jetstream` enables JetStream (unlimited; the
/// streams carry their own limits), `revoked` maps user keys to the time before which
/// their tokens no longer work.
///
/// # Errors
/// [`JwtError::Sign`].
pub fn account_jwt(
    operator: &KeyPair,
    name: &str,
    account: &str,
    issued_at: DateTime<Utc>,
    jetstream: bool,
    revoked: &BTreeMap<String, i64>,
) -> Result<String, JwtError> {
    let storage = if jetstream { -1 } else { 0 };
    let nats = json!({
        "limits": {
            "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
            "wildcards": true, "conn": -1, "leaf": -1,
            "mem_storage": storage, "disk_storage": storage, "streams": -1, "consumer": -1,
        },
        "default_permissions": { "pub": {}, "sub": {} },
        "revocations": revoked,
        "type": "account",
        "version": 2,
    });
    sign(operator, name, account, issued_at, nats)
}

/// A user's JWT, signed by its account.
///
/// # Errors
/// [`JwtError::Sign`].
pub fn user_jwt(
    account: &KeyPair,
    name: &str,
    user: &str,
    issued_at: DateTime<Utc>,
    permissions: Option<&Permissions>,
) -> Result<String, JwtError> {
    let mut nats = json!({ "subs": -1, "data": -1, "payload": -1, "type": "user", "version": 2 });
    if let Some(permissions) = permissions {
        nats["pub"] =
            json!({ "allow": permissions.publish_allow, "deny": permissions.publish_deny });
        nats["sub"] = json!({ "allow": permissions.subscribe_allow });
    }
    sign(account, name, user, issued_at, nats)
}

/// The `.creds` text of a user: its JWT and seed, as `nsc` writes it and clients read it.
pub fn creds(jwt: &str, seed: &str) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\
         NKEYs are sensitive and should be treated as secrets.\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
         *************************************************************\n"
    )
}

/// A new operator and system account, and the NATS server configuration that trusts them.
#[derive(Debug, Clone)]
pub struct OperatorSetup {
    /// `control.nats_push.operator_seed`.
    pub operator_seed: String,
    /// `control.nats_push.system_account_seed`.
    pub system_account_seed: String,
    /// The server's configuration: operator, system account, a full account resolver
    /// keeping accounts under `store_dir/accounts`, JetStream under `store_dir/jetstream`.
    pub server_config: String,
}

/// New operator and system account keys, with the server configuration for `store_dir`.
///
/// # Errors
/// [`JwtError::Sign`].
pub fn operator_setup(store_dir: &str) -> Result<OperatorSetup, JwtError> {
    let operator = KeyPair::new_operator();
    let system = KeyPair::new_account();
    let system_key = system.public_key();
    let operator_jwt = operator_jwt(&operator, &system_key)?;
    let system_jwt = account_jwt(
        &operator,
        "SYS",
        &system_key,
        Utc::now(),
        false,
        &BTreeMap::new(),
    )?;
    let seed = |pair: &KeyPair| pair.seed().map_err(|e| JwtError::Sign(e.to_string()));
    let store_dir = store_dir.trim_end_matches('/');
    let server_config = format!(
        "# Accounts signed by the Tollgate operator, kept by a full resolver.\n\
         operator: {operator_jwt}\n\
         system_account: {system_key}\n\
         resolver: {{\n  type: full\n  dir: \"{store_dir}/accounts\"\n  allow_delete: false\n  interval: \"2m\"\n}}\n\
         resolver_preload: {{\n  {system_key}: {system_jwt}\n}}\n\
         jetstream: {{\n  store_dir: \"{store_dir}/jetstream\"\n}}\n"
    );
    Ok(OperatorSetup {
        operator_seed: seed(&operator)?,
        system_account_seed: seed(&system)?,
        server_config,
    })
}

/// Signs claims about `subject` with `issuer`.
fn sign(
    issuer: &KeyPair,
    name: &str,
    subject: &str,
    issued_at: DateTime<Utc>,
    nats: Value,
) -> Result<String, JwtError> {
    let mut claims = json!({
        "jti": "",
        "iat": issued_at.timestamp(),
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject,
        "nats": nats,
    });
    let unsigned = serde_json::to_vec(&claims).map_err(|e| JwtError::Sign(e.to_string()))?;
    let hash = digest::digest(&digest::SHA512_256, &unsigned);
    claims["jti"] = json!(data_encoding::BASE32_NOPAD.encode(hash.as_ref()));
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&claims).map_err(|e| JwtError::Sign(e.to_string()))?);
    let signed = format!("{header}.{body}");
    let signature = issuer
        .sign(signed.as_bytes())
        .map_err(|e| JwtError::Sign(e.to_string()))?;
    Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(jwt: &str) -> Value {
        let body = jwt.split('.').nth(1).expect("test value");
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).expect("test value"))
            .expect("test value")
    }

    #[test]
    fn a_user_token_is_signed_by_its_account_and_verifies() {
        let account = KeyPair::new_account();
        let user = KeyPair::new_user();
        let permissions = Permissions {
            publish_allow: vec!["$JS.API.>".to_owned()],
            publish_deny: vec![],
            subscribe_allow: vec!["_INBOX.>".to_owned()],
        };
        let jwt = user_jwt(
            &account,
            "ch_1_1",
            &user.public_key(),
            Utc::now(),
            Some(&permissions),
        )
        .expect("test value");
        let parts: Vec<&str> = jwt.split('.').collect();
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).expect("test value");
        account
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .expect("test value");
        let claims = claims(&jwt);
        assert_eq!(claims["iss"], json!(account.public_key()));
        assert_eq!(claims["sub"], json!(user.public_key()));
        assert_eq!(claims["nats"]["sub"]["allow"], json!(["_INBOX.>"]));
        assert_eq!(claims["jti"].as_str().expect("test value").len(), 52);
    }

    #[test]
    fn seeds_of_the_wrong_kind_are_refused() {
        let account = KeyPair::new_account().seed().expect("test value");
        assert!(key_pair(&account, "operator_seed", "operator").is_err());
        assert!(key_pair(&account, "system_account_seed", "account").is_ok());
        assert!(key_pair("nonsense", "operator_seed", "operator").is_err());
    }
}
