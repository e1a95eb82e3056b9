//! Tenants' broker accounts and their users, kept in the state store so every gateway signs
//! with the same keys; the NATS server is told of each account and of the users it
//! revokes, the MQTT broker loses the clients of logins that no longer serve.
//!
//! A user is revoked once its login no longer serves: the channel was revoked, or the
//! login expired after a rotation.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use nkeys::KeyPair;
use tollgate_catalog::store::push_records::{
    PUSH_ACCOUNT, PUSH_USER, PushAccountRecord, PushUserRecord,
};
use tollgate_catalog::store::records::{
    CHANNEL, CREDENTIAL, ChannelRecord, ChannelState, CredentialRecord,
};
use tollgate_catalog::store::{ControlStore, Expect, StoreError, Write};

use super::mqtt_broker::MqttBroker;
use super::nats_broker::{AccountState, BrokerError, NatsBroker, reader_permissions};
use super::nats_jwt;

/// Why an account or user could not be made or sent.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The broker failed.
    #[error(transparent)]
    Broker(#[from] BrokerError),
}

/// A channel login's broker credentials, as given to the tenant once.
#[derive(Debug, Clone)]
pub struct IssuedUser {
    /// The record kept of it.
    pub record: PushUserRecord,
    /// The `.creds` text: its JWT and seed.
    pub creds: String,
}

/// The account of `tenant`, made (and stored) on first use.
///
/// # Errors
/// The store's.
pub async fn account(store: &ControlStore, tenant: &str) -> Result<PushAccountRecord, StoreError> {
    if let Some(document) = store.get(PUSH_ACCOUNT, tenant).await? {
        return document.parse();
    }
    let pair = KeyPair::new_account();
    let record = PushAccountRecord {
        tenant: tenant.to_owned(),
        public_key: pair.public_key(),
        seed: pair
            .seed()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?,
        created_at: Utc::now(),
    };
    let write = Write::put(PUSH_ACCOUNT, tenant, tenant, &record, Expect::Absent);
    match store.write(vec![write]).await {
        Ok(_) => Ok(record),
        // Another gateway made it first: use theirs.
        Err(StoreError::Conflict { .. }) => store
            .get(PUSH_ACCOUNT, tenant)
            .await?
            .ok_or_else(|| StoreError::Unavailable(format!("the account of `{tenant}` vanished")))?
            .parse(),
        Err(error) => Err(error),
    }
}

/// New broker credentials for `login` of `channel`, signed by `account`; the returned
/// record is to be stored with the login.
///
/// # Errors
/// [`AccountError::Broker`] when the account's seed or the signing fails.
pub fn issue_user(
    account: &PushAccountRecord,
    channel: &str,
    login: &str,
    issued_at: DateTime<Utc>,
) -> Result<IssuedUser, AccountError> {
    let signer =
        nats_jwt::key_pair(&account.seed, "account seed", "account").map_err(BrokerError::from)?;
    let user = KeyPair::new_user();
    let issued_at = DateTime::from_timestamp(issued_at.timestamp(), 0).unwrap_or(issued_at);
    let permissions = reader_permissions();
    let jwt = nats_jwt::user_jwt(
        &signer,
        login,
        &user.public_key(),
        issued_at,
        Some(&permissions),
    )
    .map_err(BrokerError::from)?;
    let seed = user
        .seed()
        .map_err(|e| BrokerError::from(nats_jwt::JwtError::Sign(e.to_string())))?;
    Ok(IssuedUser {
        record: PushUserRecord {
            login: login.to_owned(),
            tenant: account.tenant.clone(),
            channel: channel.to_owned(),
            public_key: user.public_key(),
            issued_at,
        },
        creds: nats_jwt::creds(&jwt, &seed),
    })
}

/// The channel logins that serve now (stored, not expired).
async fn serving_logins(store: &ControlStore) -> Result<HashSet<String>, StoreError> {
    let now = Utc::now();
    Ok(store
        .list(CREDENTIAL, None)
        .await?
        .iter()
        .map(|document| document.parse::<CredentialRecord>())
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|login| login.expires_at.is_none_or(|at| at > now))
        .map(|login| login.login)
        .collect())
}

/// Removes the MQTT broker's clients of channel logins that no longer serve (revoked
/// channels, logins expired after a rotation); their connections are closed.
///
/// # Errors
/// The store's or the broker's.
pub async fn sync_mqtt_logins(
    store: &ControlStore,
    broker: &MqttBroker,
) -> Result<(), AccountError> {
    let now = Utc::now();
    let logins: Vec<CredentialRecord> = store
        .list(CREDENTIAL, None)
        .await?
        .iter()
        .map(|document| document.parse())
        .collect::<Result<_, _>>()?;
    let channels: Vec<ChannelRecord> = store
        .list(CHANNEL, None)
        .await?
        .iter()
        .map(|document| document.parse())
        .collect::<Result<_, _>>()?;
    for login in broker.logins().await? {
        let Some(channel) = channel_of(&login) else {
            continue;
        };
        // A login being provisioned is on the broker before its channel and credential
        // are stored: only a revoked channel or an expired login retires it.
        let retired = match logins.iter().find(|known| known.login == login) {
            Some(known) => known.expires_at.is_some_and(|at| at <= now),
            None => channels
                .iter()
                .any(|known| known.id == channel && known.state == ChannelState::Revoked),
        };
        if retired {
            broker.remove_login(&login).await?;
        }
    }
    Ok(())
}

/// The channel of a channel login's name (`ch_<order>_<generation>`), so one the gateway
/// made; `None` for other names.
fn channel_of(name: &str) -> Option<&str> {
    let (channel, generation) = name.rsplit_once('_')?;
    (channel.starts_with("ch_") && generation.parse::<u32>().is_ok()).then_some(channel)
}

/// Sends every tenant account to the server as the store has it now, with the users
/// whose logins no longer serve revoked.
///
/// # Errors
/// The first failure; the other accounts are still sent.
pub async fn sync_all(store: &ControlStore, broker: &NatsBroker) -> Result<(), AccountError> {
    let serving = serving_logins(store).await?;
    let mut revoked: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for document in store.list(PUSH_USER, None).await? {
        let user: PushUserRecord = document.parse()?;
        if !serving.contains(&user.login) {
            revoked
                .entry(user.tenant)
                .or_default()
                .insert(user.public_key, user.issued_at.timestamp());
        }
    }
    let mut first_error = None;
    for document in store.list(PUSH_ACCOUNT, None).await? {
        let account: PushAccountRecord = document.parse()?;
        let state = AccountState {
            revoked: revoked.remove(&account.tenant).unwrap_or_default(),
            tenant: account.tenant,
            seed: account.seed,
        };
        if let Err(error) = broker.sync_account(&state).await {
            first_error.get_or_insert(AccountError::Broker(error));
        }
    }
    first_error.map_or(Ok(()), Err)
}
