//! Provisioning orders, on whichever gateway claims them first.
//!
//! ```text
//! pending ──claim (revision check, lease)──▶ provisioning ──check channel──▶ ready + event
//!                                                  │                    └─▶ failed + event
//!                                      lease expired (gateway died) ──▶ claimed again
//! ```
//!
//! The last step writes the channel, its login, the order's new state and the event in one
//! transaction that expects the claimed revision, so an order is provisioned at most once
//! even when two gateways, or a restarted one, take it up again.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tollgate_catalog::store::records::{
    CHANNEL, CREDENTIAL, ChannelRecord, ChannelState, CredentialRecord, ORDER, OrderRecord,
    OrderState, SECRET, SecretRecord,
};
use tollgate_catalog::store::state::ControlState;
use tollgate_catalog::store::{Expect, StoreError, Write};
use tollgate_catalog::{Catalog, ChannelKind, ChannelOptions};

use super::ControlPlane;
use super::credentials::{self, connection_details, login_name};
use super::file_channels::{self, Provisioned};
use super::push_channels;

/// How long a claim holds an order before another gateway may take it up.
const LEASE: Duration = Duration::from_secs(10);
/// Claims of one order before it fails for good.
const MAX_ATTEMPTS: u32 = 3;
/// How often orders placed on other gateways are looked for.
const POLL: Duration = Duration::from_millis(500);

/// The channel id an order makes: fixed by the order, so a retry makes the same one.
pub fn channel_id(order: &str) -> String {
    format!("ch_{}", order.trim_start_matches("ord_"))
}

/// Provisions due orders until `shutdown`.
pub(super) async fn run(plane: Arc<ControlPlane>, shutdown: CancellationToken) {
    loop {
        if let Err(error) = provision_due(&plane).await {
            tracing::warn!(%error, "cannot provision orders now");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = plane.orders.notified() => {}
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Claims and provisions every order that is pending, or provisioning with an expired lease.
async fn provision_due(plane: &ControlPlane) -> Result<(), StoreError> {
    for document in plane.store.list(ORDER, None).await? {
        let order: OrderRecord = document.parse()?;
        let now = Utc::now();
        let due = match order.state {
            OrderState::Pending => true,
            OrderState::Provisioning => order.lease_until.is_none_or(|until| until <= now),
            OrderState::Ready | OrderState::Failed => false,
        };
        if !due {
            continue;
        }
        let lease = chrono::Duration::from_std(LEASE).unwrap_or(chrono::Duration::MAX);
        let claimed = OrderRecord {
            state: OrderState::Provisioning,
            attempts: order.attempts + 1,
            lease_until: Some(now + lease),
            updated_at: now,
            ..order
        };
        let claim = Write::put(
            ORDER,
            &claimed.id,
            &claimed.tenant,
            &claimed,
            Expect::Revision(document.revision),
        );
        match plane.store.write(vec![claim]).await {
            Ok(_) => {}
            // Another gateway claimed it first.
            Err(StoreError::Conflict { .. }) => continue,
            Err(error) => return Err(error),
        }
        let revision = document.revision + 1;
        let outcome = if claimed.attempts > MAX_ATTEMPTS {
            Err(format!(
                "provisioning did not complete after {MAX_ATTEMPTS} attempts"
            ))
        } else {
            provision(plane, &claimed, revision).await?
        };
        if let Err(reason) = outcome {
            fail(plane, claimed, revision, reason).await?;
        }
        plane.sync.refresh().await?;
    }
    Ok(())
}

/// Makes the order's channel and login. `Ok(Err(reason))` when the order cannot be
/// fulfilled; `Err` when the store failed (the order is taken up again after its lease).
async fn provision(
    plane: &ControlPlane,
    order: &OrderRecord,
    revision: i64,
) -> Result<Result<(), String>, StoreError> {
    let id = channel_id(&order.id);
    let request = &order.request;
    if request.kind == ChannelKind::Flight && plane.endpoints.flight_port.is_none() {
        return Ok(Err("Flight SQL is not enabled on this gateway".to_owned()));
    }
    let state = ControlState::load(&plane.store).await?;
    let mut options = state.apply_to(&plane.sync.base(), Utc::now());
    options.channels.retain(|channel| channel.id != id);
    options.channels.push(ChannelOptions {
        id: id.clone(),
        tenant: order.tenant.clone(),
        kind: request.kind,
        profile: request.profile.clone(),
        datasets: request.datasets.clone(),
    });
    let catalog = match Catalog::from_options(&options) {
        Ok(catalog) => catalog,
        Err(error) => return Ok(Err(error.to_string())),
    };
    if let Err(error) = plane.service.check_channel(&catalog, &id).await {
        return Ok(Err(error.to_string()));
    }
    let Ok(issued) = credentials::issue(login_name(&id, 1)) else {
        return Ok(Err("cannot draw a random password".to_owned()));
    };
    let now = Utc::now();
    let channel = ChannelRecord {
        id: id.clone(),
        tenant: order.tenant.clone(),
        request: request.clone(),
        state: ChannelState::Active,
        order: order.id.clone(),
        created_at: now,
        revoked_at: None,
    };
    let credential = CredentialRecord {
        login: issued.login.clone(),
        tenant: order.tenant.clone(),
        channel: id.clone(),
        scram_verifier: issued.verifier.clone(),
        created_at: now,
        expires_at: None,
    };
    let ready = OrderRecord {
        state: OrderState::Ready,
        channel: Some(id.clone()),
        lease_until: None,
        updated_at: now,
        ..order.clone()
    };
    let mut event = json!({
        "type": "channel.ready",
        "at": now,
        "order": order.id,
        "channel": id,
        "kind": request.kind.as_str(),
        "login": issued.login,
        "secret": issued.login,
        "connection": connection_details(&plane.endpoints, request.kind, &issued.login),
    });
    let secret = SecretRecord {
        login: issued.login.clone(),
        password: issued.password,
    };
    let mut first = vec![
        Write::put(CHANNEL, &id, &order.tenant, &channel, Expect::Absent),
        Write::put(
            CREDENTIAL,
            &credential.login,
            &order.tenant,
            &credential,
            Expect::Absent,
        ),
        Write::put(
            SECRET,
            &secret.login,
            &order.tenant,
            &secret,
            Expect::Absent,
        ),
    ];
    if request.kind.is_push() {
        let login = (issued.login.as_str(), secret.password.as_str());
        match push_channels::broker_user(plane, request.kind, &order.tenant, &id, login, now)
            .await?
        {
            Ok((user, connection)) => {
                first.extend(user);
                event["connection"] = connection;
            }
            Err(reason) => return Ok(Err(reason)),
        }
    }
    if request.kind == ChannelKind::File {
        let provisioned =
            file_channels::provision(plane, (order, revision), id, first, ready, event).await?;
        if let Provisioned::Failed { reason, revision } = provisioned {
            fail(plane, order.clone(), revision, reason).await?;
        }
        return Ok(Ok(()));
    }
    let mut writes = first;
    writes.push(Write::put(
        ORDER,
        &order.id,
        &order.tenant,
        &ready,
        Expect::Revision(revision),
    ));
    writes.push(Write::event(&order.tenant, "tenant", &event));
    match plane.store.write(writes).await {
        Ok(_) => {
            tracing::info!(target: "tollgate::audit", event = "channel_ready", tenant = %order.tenant, order = %order.id, channel = %id, "channel provisioned");
            // A push channel's snapshot starts now, not at the next round.
            plane.push.notify_one();
            Ok(Ok(()))
        }
        // Lost the claim, or the channel exists already: whoever holds it finishes.
        Err(StoreError::Conflict { .. }) => Ok(Ok(())),
        Err(error) => Err(error),
    }
}

/// Marks the order failed with `reason`, and tells the tenant.
async fn fail(
    plane: &ControlPlane,
    order: OrderRecord,
    revision: i64,
    reason: String,
) -> Result<(), StoreError> {
    let now = Utc::now();
    let event = json!({
        "type": "order.failed",
        "at": now,
        "order": order.id,
        "reason": reason,
    });
    let failed = OrderRecord {
        state: OrderState::Failed,
        reason: Some(reason),
        lease_until: None,
        updated_at: now,
        ..order
    };
    let writes = vec![
        Write::put(
            ORDER,
            &failed.id,
            &failed.tenant,
            &failed,
            Expect::Revision(revision),
        ),
        Write::event(&failed.tenant, "tenant", &event),
    ];
    match plane.store.write(writes).await {
        Ok(_) | Err(StoreError::Conflict { .. }) => Ok(()),
        Err(error) => Err(error),
    }
}
