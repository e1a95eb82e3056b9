//! The NATS server `nats` channels push to: tenants' accounts sent to its resolver, and a
//! publisher per tenant writing into the tenant's stream.
//!
//! ```text
//! gateway ──user of the system account──▶ $SYS.REQ.CLAIMS.UPDATE (account JWTs)
//! gateway ──user of tenant T's account──▶ stream TOLLGATE: tollgate.push.T.<channel>
//! channel login ──user of T's account (reads only)──▶ consumers of stream TOLLGATE
//! ```
//!
//! Each tenant's stream lives in the tenant's own account, so one tenant can neither see
//! nor name another's subjects.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use async_nats::{AuthError, ConnectOptions, HeaderMap};
use chrono::{DateTime, Utc};
use nkeys::KeyPair;
use tokio::sync::Mutex;
use tollgate_catalog::{NatsPushOptions, Profile};

use super::nats_jwt::{self, JwtError, Permissions};

/// The stream of every tenant's account.
pub const STREAM: &str = "TOLLGATE";

/// Why the broker did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// A key or token could not be made.
    #[error(transparent)]
    Jwt(#[from] JwtError),
    /// The server cannot be reached or refused the connection.
    #[error("cannot connect to NATS: {0}")]
    Connect(String),
    /// The server refused or did not answer a request.
    #[error("NATS refused {what}: {message}")]
    Refused {
        /// What was asked.
        what: &'static str,
        /// The server's answer.
        message: String,
    },
}

/// The subject a tenant's channel is pushed to.
pub fn subject(tenant: &str, channel: &str) -> String {
    format!("tollgate.push.{tenant}.{channel}")
}

/// What a channel login may do in its tenant's account: read the stream through
/// consumers, never publish into it or change it.
pub fn reader_permissions() -> Permissions {
    Permissions {
        publish_allow: vec![
            "$JS.API.>".to_owned(),
            "$JS.ACK.>".to_owned(),
            "$JS.FC.>".to_owned(),
        ],
        publish_deny: [
            "STREAM.CREATE",
            "STREAM.UPDATE",
            "STREAM.DELETE",
            "STREAM.PURGE",
            "STREAM.MSG.DELETE",
            "STREAM.SNAPSHOT",
            "STREAM.RESTORE",
        ]
        .iter()
        .map(|api| format!("$JS.API.{api}.>"))
        .collect(),
        subscribe_allow: vec!["_INBOX.>".to_owned()],
    }
}

/// What a tenant's stream keeps: its profile's `push_retention` and `push_max_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    /// Messages older than this are dropped.
    pub max_age: Duration,
    /// Beyond this many bytes the oldest messages are dropped.
    pub max_bytes: Option<u64>,
}

impl StreamLimits {
    /// The limits of `profile`.
    pub fn of(profile: &Profile) -> Self {
        Self {
            max_age: profile.push_retention,
            max_bytes: profile.push_max_bytes.map(|bytes| bytes.0),
        }
    }
}

/// A tenant account as the server should have it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountState {
    /// The tenant.
    pub tenant: String,
    /// Its account key pair's seed.
    pub seed: String,
    /// Revoked user keys, each with the time before which its tokens stop working.
    pub revoked: BTreeMap<String, i64>,
}

/// The gateway's connections to the NATS server of push channels.
pub struct NatsBroker {
    options: NatsPushOptions,
    operator: KeyPair,
    system_account: KeyPair,
    system: Mutex<Option<async_nats::Client>>,
    /// The JetStream publisher of each tenant account, by account key, and the limits its
    /// stream was given.
    publishers: Mutex<HashMap<String, (jetstream::Context, StreamLimits)>>,
    /// What was last sent for each account, and when it was signed.
    sent: Mutex<HashMap<String, (AccountState, i64)>>,
}

impl std::fmt::Debug for NatsBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsBroker")
            .field("url", &self.options.url)
            .finish_non_exhaustive()
    }
}

impl NatsBroker {
    /// The broker of `options`; connects when first used.
    ///
    /// # Errors
    /// [`JwtError::Seed`] for a seed of the wrong kind.
    pub fn new(options: NatsPushOptions) -> Result<Self, JwtError> {
        let operator = nats_jwt::key_pair(&options.operator_seed, "operator_seed", "operator")?;
        let system_account = nats_jwt::key_pair(
            &options.system_account_seed,
            "system_account_seed",
            "account",
        )?;
        Ok(Self {
            options,
            operator,
            system_account,
            system: Mutex::new(None),
            publishers: Mutex::new(HashMap::new()),
            sent: Mutex::new(HashMap::new()),
        })
    }

    /// The options it was made with.
    pub fn options(&self) -> &NatsPushOptions {
        &self.options
    }

    /// The URL tenants connect to.
    pub fn public_url(&self) -> &str {
        self.options
            .public_url
            .as_deref()
            .unwrap_or(&self.options.url)
    }

    /// Sends `state` to the server unless it was the last sent for that account.
    ///
    /// # Errors
    /// [`BrokerError`] when the server cannot be reached or refuses the account.
    pub async fn sync_account(&self, state: &AccountState) -> Result<(), BrokerError> {
        let account = nats_jwt::key_pair(&state.seed, "account seed", "account")?;
        let key = account.public_key();
        let previous = self.sent.lock().await.get(&key).cloned();
        if previous.as_ref().is_some_and(|(sent, _)| sent == state) {
            return Ok(());
        }
        // A newer token replaces the one the server has only when signed later.
        let issued_at = previous
            .map_or(0, |(_, at)| at + 1)
            .max(Utc::now().timestamp());
        let at = DateTime::from_timestamp(issued_at, 0).unwrap_or_else(Utc::now);
        let jwt = nats_jwt::account_jwt(
            &self.operator,
            &state.tenant,
            &key,
            at,
            true,
            &state.revoked,
        )?;
        let client = self.system_client().await?;
        let reply = client
            .request("$SYS.REQ.CLAIMS.UPDATE", jwt.into())
            .await
            .map_err(|e| BrokerError::Refused {
                what: "an account update",
                message: e.to_string(),
            });
        let reply = match reply {
            Ok(reply) => reply,
            Err(error) => {
                *self.system.lock().await = None;
                return Err(error);
            }
        };
        let answer: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap_or_default();
        if let Some(error) = answer.get("error") {
            return Err(BrokerError::Refused {
                what: "an account update",
                message: error.to_string(),
            });
        }
        self.sent
            .lock()
            .await
            .insert(key, (state.clone(), issued_at));
        Ok(())
    }

    /// The publisher into the stream of the account of `seed` (tenant `tenant`), the
    /// stream made, or its limits changed, to keep what `limits` says.
    ///
    /// # Errors
    /// [`BrokerError`] when the server cannot be reached or refuses the stream.
    pub async fn publisher(
        &self,
        tenant: &str,
        seed: &str,
        limits: StreamLimits,
    ) -> Result<jetstream::Context, BrokerError> {
        let account = nats_jwt::key_pair(seed, "account seed", "account")?;
        let key = account.public_key();
        if let Some((publisher, kept)) = self.publishers.lock().await.get(&key)
            && *kept == limits
        {
            return Ok(publisher.clone());
        }
        let client = self.connect(&account, "tollgate publisher").await?;
        let publisher = jetstream::new(client);
        let config = jetstream::stream::Config {
            name: STREAM.to_owned(),
            subjects: vec![format!("tollgate.push.{tenant}.>")],
            max_age: limits.max_age,
            max_bytes: limits
                .max_bytes
                .map_or(-1, |bytes| i64::try_from(bytes).unwrap_or(i64::MAX)),
            duplicate_window: self.options.duplicate_window.duration(),
            storage: jetstream::stream::StorageType::File,
            ..Default::default()
        };
        publisher
            .create_or_update_stream(config)
            .await
            .map_err(|e| BrokerError::Refused {
                what: "the tenant's stream",
                message: e.to_string(),
            })?;
        self.publishers
            .lock()
            .await
            .insert(key, (publisher.clone(), limits));
        Ok(publisher)
    }

    /// Forgets the publisher of the account of `seed`, after it failed.
    pub async fn drop_publisher(&self, seed: &str) {
        if let Ok(account) = nats_jwt::key_pair(seed, "account seed", "account") {
            self.publishers.lock().await.remove(&account.public_key());
        }
    }

    /// Publishes `payload` with `headers` (which carry its `Nats-Msg-Id`) to `subject`;
    /// whether the stream already had that message.
    ///
    /// # Errors
    /// [`BrokerError::Refused`] when the stream does not acknowledge it.
    pub async fn publish(
        publisher: &jetstream::Context,
        subject: String,
        headers: HeaderMap,
        payload: bytes::Bytes,
    ) -> Result<jetstream::context::PublishAckFuture, BrokerError> {
        publisher
            .publish_with_headers(subject, headers, payload)
            .await
            .map_err(|e| BrokerError::Refused {
                what: "a message",
                message: e.to_string(),
            })
    }

    async fn system_client(&self) -> Result<async_nats::Client, BrokerError> {
        let mut system = self.system.lock().await;
        if let Some(client) = system.as_ref() {
            return Ok(client.clone());
        }
        let client = self
            .connect(&self.system_account, "tollgate accounts")
            .await?;
        *system = Some(client.clone());
        Ok(client)
    }

    /// A connection as a new user of `account`, allowed everything in it.
    async fn connect(
        &self,
        account: &KeyPair,
        name: &str,
    ) -> Result<async_nats::Client, BrokerError> {
        let user = Arc::new(KeyPair::new_user());
        let jwt = nats_jwt::user_jwt(account, name, &user.public_key(), Utc::now(), None)?;
        ConnectOptions::new()
            .name(name)
            .jwt(jwt, move |nonce| {
                let user = Arc::clone(&user);
                async move { user.sign(&nonce).map_err(AuthError::new) }
            })
            .connect(self.options.url.as_str())
            .await
            .map_err(|e| BrokerError::Connect(e.to_string()))
    }
}
