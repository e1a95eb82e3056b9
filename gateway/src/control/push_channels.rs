//! What a push channel's login needs on its broker, and what the tenant is told of it
//! once (in the ready event, or a rotation's answer):
//!
//! * `nats`: the tenant's account on the server (made on the tenant's first such channel)
//!   with its stream, and a user of that account who may read the stream: `.creds`;
//! * `mqtt`: a broker client with the login's name and password, in the tenant's role,
//!   which may subscribe to `tollgate/<tenant>/#` only, and a persistent session of the
//!   same name already subscribed to the channel's topic, kept as long as the profile's
//!   `push_retention`, so that nothing published before the tenant first connects is lost.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tollgate_catalog::ChannelKind;
use tollgate_catalog::store::push_records::PUSH_USER;
use tollgate_catalog::store::{Expect, StoreError, Write};

use super::{ControlPlane, push_delivery};
use crate::push::accounts;
use crate::push::mqtt_broker::topic;
use crate::push::nats_broker::{STREAM, subject};

/// The broker user of `login` (with its password) of channel `channel` of `tenant`, a
/// channel of `kind`: what to store with the login, and what the tenant is told (URL,
/// subject or topic, credentials). `Ok(Err(reason))` when this gateway has no such broker.
///
/// # Errors
/// The store's, or [`StoreError::Unavailable`] when the broker cannot be reached or
/// refuses (the order is taken up again after its lease).
pub(super) async fn broker_user(
    plane: &ControlPlane,
    kind: ChannelKind,
    tenant: &str,
    channel: &str,
    (login, password): (&str, &str),
    now: DateTime<Utc>,
) -> Result<Result<(Option<Write>, Value), String>, StoreError> {
    let unavailable = |error: String| StoreError::Unavailable(error);
    match kind {
        ChannelKind::Nats => {
            let Some(broker) = &plane.brokers.nats else {
                return Ok(Err("NATS push is not enabled on this gateway".to_owned()));
            };
            let account = accounts::account(&plane.store, tenant).await?;
            // The account and its stream are on the server before anyone is told to read
            // them.
            accounts::sync_all(&plane.store, broker)
                .await
                .map_err(|error| unavailable(error.to_string()))?;
            broker
                .publisher(
                    tenant,
                    &account.seed,
                    push_delivery::stream_limits(plane, tenant),
                )
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
            Ok(Ok((Some(write), connection)))
        }
        ChannelKind::Mqtt => {
            let Some(broker) = &plane.brokers.mqtt else {
                return Ok(Err("MQTT push is not enabled on this gateway".to_owned()));
            };
            let topic = topic(tenant, channel);
            let retention = push_delivery::stream_limits(plane, tenant).max_age;
            broker
                .add_login(tenant, login, password)
                .await
                .map_err(|error| unavailable(error.to_string()))?;
            // The session exists before anything is published, so the snapshot waits in it.
            broker
                .open_session(login, password, &topic, retention)
                .await
                .map_err(|error| unavailable(error.to_string()))?;
            let connection = json!({
                "mqtt_url": broker.public_url(),
                "topic": topic,
                "client_id": login,
                "username": login,
                "password": password,
                "qos": 1,
            });
            Ok(Ok((None, connection)))
        }
        _ => Ok(Err(format!("a `{}` channel has no broker", kind.as_str()))),
    }
}
