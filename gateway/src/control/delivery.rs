//! Delivering tenants' events to their webhook (HTTP POST signed with HMAC-SHA256) and to
//! NATS JetStream (deduplicated by event), retried with backoff; every attempt is kept.
//!
//! ```text
//! events after the cursor ──▶ one delivery per (event, target) ── due? ──claim──▶ attempt
//!                                                                 └── failed: retry in 1, 2, 4 … s
//! ```
//!
//! Gateways sharing a store split the work through revision checks: a delivery is created
//! once, and each attempt is claimed by one gateway.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use ring::hmac;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tollgate_catalog::store::records::{
    DELIVERY, DELIVERY_CURSOR, DeliveryRecord, SECRET, SecretRecord, TENANT, TenantRecord,
};
use tollgate_catalog::store::{EventQuery, Expect, StoreError, Write};

use super::ControlPlane;

/// Attempts before a delivery is abandoned.
const MAX_ATTEMPTS: u32 = 8;
/// How often new events and due retries are looked for.
const POLL: Duration = Duration::from_millis(250);
/// How long one webhook call may take.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// The JetStream stream holding every tenant's events.
pub const STREAM: &str = "TOLLGATE_EVENTS";

/// The `Tollgate-Signature` header of `body` sent at `timestamp`: `t=<unix seconds>,
/// v1=<hex HMAC-SHA256 of "<t>.<body>" under the tenant's webhook secret>`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let tag = hmac::sign(&key, format!("{timestamp}.{body}").as_bytes());
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

/// Where events go, and the connections to get them there.
struct Targets {
    http: reqwest::Client,
    nats: Option<async_nats::jetstream::Context>,
}

/// Delivers events until `shutdown`.
pub(super) async fn run(plane: Arc<ControlPlane>, shutdown: CancellationToken) {
    let http = reqwest::Client::builder()
        .timeout(WEBHOOK_TIMEOUT)
        .build()
        .unwrap_or_default();
    let mut targets = Targets { http, nats: None };
    loop {
        if targets.nats.is_none()
            && let Some(url) = &plane.options.nats_url
        {
            targets.nats = connect_nats(url, &plane.options.nats_subject_prefix).await;
        }
        if let Err(error) = deliver_due(&plane, &targets).await {
            tracing::warn!(%error, "cannot deliver events now");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// A JetStream context whose stream takes every subject under `prefix`.
async fn connect_nats(url: &str, prefix: &str) -> Option<async_nats::jetstream::Context> {
    let client = async_nats::connect(url)
        .await
        .inspect_err(|error| tracing::warn!(%error, url, "cannot reach NATS"))
        .ok()?;
    let jetstream = async_nats::jetstream::new(client);
    jetstream
        .get_or_create_stream(async_nats::jetstream::stream::Config {
            name: STREAM.to_owned(),
            subjects: vec![format!("{prefix}.>")],
            duplicate_window: Duration::from_secs(3600),
            ..Default::default()
        })
        .await
        .inspect_err(|error| tracing::warn!(%error, "cannot create the JetStream stream"))
        .ok()?;
    Some(jetstream)
}

async fn deliver_due(plane: &ControlPlane, targets: &Targets) -> Result<(), StoreError> {
    schedule_new_events(plane).await?;
    let now = Utc::now();
    for document in plane.store.list(DELIVERY, None).await? {
        let delivery: DeliveryRecord = document.parse()?;
        if delivery.delivered || delivery.abandoned || delivery.next_attempt_at > now {
            continue;
        }
        let backoff = chrono::Duration::seconds(1 << delivery.attempts.min(10));
        let claimed = DeliveryRecord {
            attempts: delivery.attempts + 1,
            next_attempt_at: now + backoff,
            ..delivery
        };
        let claim = Write::put(
            DELIVERY,
            &claimed.id,
            &claimed.tenant,
            &claimed,
            Expect::Revision(document.revision),
        );
        match plane.store.write(vec![claim]).await {
            Ok(_) => {}
            Err(StoreError::Conflict { .. }) => continue,
            Err(error) => return Err(error),
        }
        let result = attempt(plane, targets, &claimed).await?;
        let done = DeliveryRecord {
            delivered: result.is_ok(),
            abandoned: result.is_err() && claimed.attempts >= MAX_ATTEMPTS,
            last_result: Some(match &result {
                Ok(outcome) | Err(outcome) => outcome.clone(),
            }),
            ..claimed
        };
        let record = Write::put(
            DELIVERY,
            &done.id,
            &done.tenant,
            &done,
            Expect::Revision(document.revision + 1),
        );
        match plane.store.write(vec![record]).await {
            Ok(_) | Err(StoreError::Conflict { .. }) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Creates a delivery for each target of each event after the cursor, then moves it.
async fn schedule_new_events(plane: &ControlPlane) -> Result<(), StoreError> {
    let cursor = plane.store.get(DELIVERY_CURSOR, "events").await?;
    let after = cursor
        .as_ref()
        .and_then(|c| c.body.get("after").and_then(Value::as_i64))
        .unwrap_or(0);
    let events = plane
        .store
        .events(EventQuery {
            tenant: None,
            topic: "tenant",
            after,
            limit: 200,
        })
        .await?;
    let Some(last) = events.last().map(|e| e.seq) else {
        return Ok(());
    };
    let mut writes = Vec::new();
    for event in &events {
        let Some(tenant) = plane.store.get(TENANT, &event.tenant).await? else {
            continue;
        };
        let tenant: TenantRecord = tenant.parse()?;
        let mut kinds = Vec::new();
        if tenant.webhook.is_some() {
            kinds.push("webhook");
        }
        if tenant.nats_subject.is_some() && plane.options.nats_url.is_some() {
            kinds.push("nats");
        }
        for target in kinds {
            let delivery = DeliveryRecord {
                id: format!("{}/{target}", event.seq),
                tenant: event.tenant.clone(),
                event: event.seq,
                target: target.to_owned(),
                attempts: 0,
                last_result: None,
                delivered: false,
                abandoned: false,
                next_attempt_at: Utc::now(),
            };
            writes.push(Write::put(
                DELIVERY,
                &delivery.id,
                &delivery.tenant,
                &delivery,
                Expect::Absent,
            ));
        }
    }
    let expect = cursor.map_or(Expect::Absent, |c| Expect::Revision(c.revision));
    writes.push(Write::put(
        DELIVERY_CURSOR,
        "events",
        "",
        &json!({ "after": last }),
        expect,
    ));
    match plane.store.write(writes).await {
        // Another gateway scheduled these events.
        Ok(_) | Err(StoreError::Conflict { .. }) => Ok(()),
        Err(error) => Err(error),
    }
}

/// One attempt: `Ok(outcome)` when delivered, `Err(outcome)` otherwise.
async fn attempt(
    plane: &ControlPlane,
    targets: &Targets,
    delivery: &DeliveryRecord,
) -> Result<Result<String, String>, StoreError> {
    let Some(event) = plane
        .store
        .events(EventQuery {
            tenant: Some(&delivery.tenant),
            topic: "tenant",
            after: delivery.event - 1,
            limit: 1,
        })
        .await?
        .into_iter()
        .find(|e| e.seq == delivery.event)
    else {
        return Ok(Err("the event is gone".to_owned()));
    };
    let Some(tenant) = plane.store.get(TENANT, &delivery.tenant).await? else {
        return Ok(Err("the tenant is gone".to_owned()));
    };
    let tenant: TenantRecord = tenant.parse()?;
    let mut body = event.body;
    // Unique across stores too (several deployments may share one NATS server).
    let digest = ring::digest::digest(&ring::digest::SHA256, body.to_string().as_bytes());
    let message_id: String = digest.as_ref()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let message_id = format!("tollgate-{}-{message_id}", event.seq);
    let secret = take_secret(plane, &body).await?;
    if let Some(object) = body.as_object_mut() {
        object.remove("secret");
        object.insert("seq".to_owned(), json!(event.seq));
        if let Some(secret) = &secret {
            object.insert("password".to_owned(), json!(secret.password));
        }
    }
    let text = body.to_string();
    let outcome = match delivery.target.as_str() {
        "webhook" => match &tenant.webhook {
            Some(webhook) => post_webhook(&targets.http, &webhook.url, &webhook.secret, text).await,
            None => Err("no webhook registered".to_owned()),
        },
        "nats" => match (&targets.nats, &tenant.nats_subject) {
            (Some(nats), Some(subject)) => publish_nats(nats, subject, &message_id, text).await,
            _ => Err("NATS is not reachable, or no subject is registered".to_owned()),
        },
        other => Err(format!("unknown target {other}")),
    };
    // A password not delivered stays for the next attempt or reader.
    if outcome.is_err()
        && let Some(secret) = secret
    {
        let back = Write::put(
            SECRET,
            &secret.login,
            &delivery.tenant,
            &secret,
            Expect::Absent,
        );
        match plane.store.write(vec![back]).await {
            Ok(_) | Err(StoreError::Conflict { .. }) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(outcome)
}

/// The password an event announces, taken out of the store (it is shown once).
async fn take_secret(
    plane: &ControlPlane,
    body: &Value,
) -> Result<Option<SecretRecord>, StoreError> {
    let Some(login) = body.get("secret").and_then(Value::as_str) else {
        return Ok(None);
    };
    let Some(document) = plane.store.get(SECRET, login).await? else {
        return Ok(None);
    };
    let secret: SecretRecord = document.parse()?;
    let taken = Write::Delete {
        kind: SECRET,
        id: login.to_owned(),
        expect: Expect::Revision(document.revision),
    };
    match plane.store.write(vec![taken]).await {
        Ok(_) => Ok(Some(secret)),
        Err(StoreError::Conflict { .. }) => Ok(None),
        Err(error) => Err(error),
    }
}

async fn post_webhook(
    http: &reqwest::Client,
    url: &str,
    secret: &str,
    body: String,
) -> Result<String, String> {
    let timestamp = Utc::now().timestamp();
    let response = http
        .post(url)
        .header("content-type", "application/json")
        .header("tollgate-signature", signature(secret, timestamp, &body))
        .body(body)
        .send()
        .await
        .map_err(|e| format!("POST failed: {e}"))?;
    let status = response.status();
    let outcome = format!("HTTP {}", status.as_u16());
    if status.is_success() {
        Ok(outcome)
    } else {
        Err(outcome)
    }
}

async fn publish_nats(
    nats: &async_nats::jetstream::Context,
    subject: &str,
    message_id: &str,
    body: String,
) -> Result<String, String> {
    let mut headers = async_nats::HeaderMap::new();
    // JetStream drops a second message with the same id: a retry never duplicates.
    headers.insert("Nats-Msg-Id", message_id);
    let ack = nats
        .publish_with_headers(subject.to_owned(), headers, body.into())
        .await
        .map_err(|e| format!("publish failed: {e}"))?
        .await
        .map_err(|e| format!("not acknowledged: {e}"))?;
    Ok(format!("stored as {} #{}", ack.stream, ack.sequence))
}
