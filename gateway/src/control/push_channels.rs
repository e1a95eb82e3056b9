//! What a `nats` channel needs beside its login: the tenant's account on the server (made
//! on the tenant's first such channel), and a broker user of the login that may read the
//! tenant's stream, whose credentials the ready event (or a rotation) carries once.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tollgate_catalog::store::push_records::PUSH_USER;
use tollgate_catalog::store::{Expect, StoreError, Write};

use super::ControlPlane;
use crate::push::accounts;
use crate::push::nats_broker::{STREAM, subject};

/// The broker user of `login` of channel `channel` of `tenant`: the write that keeps it,
/// and what the tenant is told (URL, stream, subject, `.creds`). `Ok(Err(reason))` when
/// this gateway pushes to no NATS server.
///
/// # Errors
/// The store's, or [`StoreError::Unavailable`] when the server does not take the account
/// or make its stream (the order is taken up again after its lease).
pub(super) async fn broker_user(
    plane: &ControlPlane,
    tenant: &str,
    channel: &str,
    login: &str,
    now: DateTime<Utc>,
) -> Result<Result<(Write, Value), String>, StoreError> {
    let Some(broker) = &plane.broker else {
        return Ok(Err("NATS push is not enabled on this gateway".to_owned()));
    };
    let account = accounts::account(&plane.store, tenant).await?;
    // The account and its stream are on the server before anyone is told to read them.
    let unavailable = |error: String| StoreError::Unavailable(error);
    accounts::sync_all(&plane.store, broker)
        .await
        .map_err(|error| unavailable(error.to_string()))?;
    broker
        .publisher(tenant, &account.seed)
        .await
        .map_err(|error| unavailable(error.to_string()))?;
    let issued = accounts::issue_user(&account, channel, login, now)
        .map_err(|error| unavailable(error.to_string()))?;
    let write = Write::put(PUSH_USER, login, tenant, &issued.record, Expect::Absent);
    let connection = json!({
        "nats_url": broker.public_url(),
        "stream": STREAM,
        "subject": subject(tenant, channel),
        "creds": issued.creds,
    });
    Ok(Ok((write, connection)))
}
