//! Pushing push channels' rows (`nats`, `mqtt`): on order, every file of each dataset (the
//! initial snapshot; for a table read live from a database, the whole table), then each
//! new file as it lands (a replica table with a watermark column: its new rows), and each
//! version the provider publishes, each once per channel.
//!
//! ```text
//! every poll_interval (or when woken):
//!   NATS accounts ─▶ server (users of logins that no longer serve revoked); MQTT clients
//!   of such logins removed
//!   active push channels ─▶ per dataset: what each channel's cursor lacks (push_entries)
//!     ─▶ the next entry, for every channel that lacks it next: cursors pending (entry,
//!        attempt) ─▶ fan_out (read once, each channel's view) ─▶ cursors delivered
//! ```
//!
//! The cursor is written before a push starts and after it ends. A gateway killed in
//! between leaves the entry pending: whoever goes on pushes it again (a slice of new rows
//! with the same bounds), under the same message ids (so a JetStream stream stores each
//! message once; MQTT subscribers drop repeated ids) and the same usage record id (so it is
//! billed once). An attempt that ends with an error counts as failed, and the next one
//! gets a record of its own; it comes a second later, then after twice as long each time
//! up to five minutes, and the first failure of an entry tells the tenant
//! (`channel.push_failed`, with the reason) unless the gateway's drain stopped it. A
//! draining gateway starts no push.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ring::digest;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tollgate_catalog::store::push_records::{
    PUSH_CURSOR, PUSH_PUBLICATION, PendingFile, PushCursorRecord, PushPublicationRecord, PushedFile,
};
use tollgate_catalog::store::records::{
    CHANNEL, CREDENTIAL, ChannelRecord, ChannelState, CredentialRecord,
};
use tollgate_catalog::store::{Expect, StoreError, Write};
use tollgate_catalog::{ChannelKind, DatasetId, Principal, ProfileOptions};
use tollgate_planner::TenantSession;
use tollgate_planner::source_slice::Slice;
use uuid::Uuid;

use super::ControlPlane;
use super::push_entries::{Entry, lacking, source};
use crate::push::accounts::{self, AccountError};
use crate::push::fan_out::{Recipient, push_slice};
use crate::push::file_push::FileTarget;
use crate::push::mqtt_broker::topic;
use crate::push::nats_broker::{StreamLimits, subject};
use crate::push::sink::Sink;

/// How long after a failed push its entry is tried again the first time.
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The longest wait between two attempts at one entry.
const LONGEST_RETRY: Duration = Duration::from_secs(300);

/// Pushes new files of every push channel, every `interval` (or when woken), until
/// `shutdown`.
pub(super) async fn run(plane: Arc<ControlPlane>, interval: Duration, shutdown: CancellationToken) {
    loop {
        if let Some(broker) = &plane.brokers.nats
            && let Err(error) = accounts::sync_all(&plane.store, broker).await
        {
            tracing::warn!(%error, "cannot update the NATS push accounts now");
        }
        if let Some(broker) = &plane.brokers.mqtt
            && let Err(error) = accounts::sync_mqtt_logins(&plane.store, broker).await
        {
            tracing::warn!(%error, "cannot update the MQTT push clients now");
        }
        // A draining gateway starts no push; the next one takes them up.
        if !plane.service.draining()
            && let Err(error) = push_due(&plane).await
        {
            tracing::warn!(%error, "cannot push channels now");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = plane.push.notified() => {}
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// The sink of `channel` and the most rows a message of it holds; `None` when this
/// gateway has no broker of its kind.
async fn sink(
    plane: &ControlPlane,
    channel: &ChannelRecord,
) -> Result<Option<(Sink, usize)>, AccountError> {
    let in_flight = plane
        .service
        .catalog()
        .tenant(&channel.tenant)
        .map_or(ProfileOptions::default().push_in_flight, |tenant| {
            tenant.profile.push_in_flight
        });
    match channel.request.kind {
        ChannelKind::Nats => {
            let Some(broker) = &plane.brokers.nats else {
                return Ok(None);
            };
            let account = accounts::account(&plane.store, &channel.tenant).await?;
            let limits = stream_limits(plane, &channel.tenant);
            let publisher = match broker
                .publisher(&channel.tenant, &account.seed, limits)
                .await
            {
                Ok(publisher) => publisher,
                Err(error) => {
                    broker.drop_publisher(&account.seed).await;
                    return Err(error.into());
                }
            };
            let sink = Sink::Nats {
                publisher: Box::new(publisher),
                subject: subject(&channel.tenant, &channel.id),
                pending: VecDeque::new(),
                in_flight,
            };
            Ok(Some((sink, broker.options().message_rows)))
        }
        ChannelKind::Mqtt => {
            let Some(broker) = &plane.brokers.mqtt else {
                return Ok(None);
            };
            let sink = Sink::Mqtt {
                publisher: broker.publisher().await?,
                topic: topic(&channel.tenant, &channel.id),
                unacknowledged: 0,
                in_flight,
            };
            Ok(Some((sink, broker.options().message_rows)))
        }
        _ => Ok(None),
    }
}

/// The provider's publications, by dataset, oldest first.
async fn publications(
    plane: &ControlPlane,
) -> Result<HashMap<String, Vec<PushPublicationRecord>>, StoreError> {
    let mut by_dataset: HashMap<String, Vec<PushPublicationRecord>> = HashMap::new();
    for document in plane.store.list(PUSH_PUBLICATION, None).await? {
        let publication: PushPublicationRecord = document.parse()?;
        by_dataset
            .entry(publication.dataset.clone())
            .or_default()
            .push(publication);
    }
    for list in by_dataset.values_mut() {
        list.sort_by_key(|publication| publication.number);
    }
    Ok(by_dataset)
}

/// What the stream of `tenant` keeps, by its profile (a profile's defaults for a tenant
/// not served).
pub(super) fn stream_limits(plane: &ControlPlane, tenant: &str) -> StreamLimits {
    match plane.service.catalog().tenant(tenant) {
        Some(tenant) => StreamLimits::of(&tenant.profile),
        None => {
            let defaults = ProfileOptions::default();
            StreamLimits {
                max_age: defaults.push_retention.duration(),
                max_bytes: defaults.push_max_bytes.map(|bytes| bytes.0),
            }
        }
    }
}

/// A push channel served this round: its login's session and its sink.
struct Subscriber {
    channel: ChannelRecord,
    principal: Arc<Principal>,
    session: Arc<TenantSession>,
    sink: Sink,
    message_rows: usize,
}

/// Where one subscriber is on one dataset this round.
struct Position {
    /// Its index among the subscribers.
    subscriber: usize,
    revision: Option<i64>,
    cursor: PushCursorRecord,
    /// What it lacks, in order; the first goes next.
    lacking: VecDeque<Entry>,
    /// It failed, or another gateway moved its cursor: nothing more this round.
    stopped: bool,
}

/// One round of [`run`]: each active push channel's files, rows and versions not pushed
/// yet, each read once for the channels that take it next.
async fn push_due(plane: &ControlPlane) -> Result<(), AccountError> {
    let published = publications(plane).await?;
    let mut subscribers = Vec::new();
    for document in plane.store.list(CHANNEL, None).await? {
        let channel: ChannelRecord = document.parse()?;
        if channel.state != ChannelState::Active || !channel.request.kind.is_push() {
            continue;
        }
        let Some(login) = newest_login(plane, &channel).await? else {
            continue;
        };
        // A login not served yet on this gateway is taken up in a later round.
        let Some(principal) = plane.service.principal(&login) else {
            continue;
        };
        let Some(session) = plane.service.session(&principal) else {
            continue;
        };
        let Some((sink, message_rows)) = sink(plane, &channel).await? else {
            continue;
        };
        subscribers.push(Subscriber {
            channel,
            principal,
            session,
            sink,
            message_rows,
        });
    }
    let datasets: BTreeSet<String> = subscribers
        .iter()
        .flat_map(|subscriber| &subscriber.channel.request.datasets)
        .map(|dataset| dataset.dataset.clone())
        .collect();
    for dataset in datasets {
        let publications = published.get(&dataset).map_or(&[][..], Vec::as_slice);
        push_dataset(plane, &dataset, &mut subscribers, publications).await?;
    }
    Ok(())
}

/// Pushes what the `subscribers` of `dataset` lack of it: the entry the first of them
/// lacks next, read once for all those that lack it next, and so on.
async fn push_dataset(
    plane: &ControlPlane,
    dataset: &str,
    subscribers: &mut [Subscriber],
    publications: &[PushPublicationRecord],
) -> Result<(), AccountError> {
    let Ok(id) = DatasetId::parse(dataset) else {
        return Ok(());
    };
    let Some(source) = source(plane, &id).await else {
        return Ok(());
    };
    let mut positions = Vec::new();
    for (index, subscriber) in subscribers.iter().enumerate() {
        let channel = &subscriber.channel;
        if !channel
            .request
            .datasets
            .iter()
            .any(|d| d.dataset == dataset)
        {
            continue;
        }
        let (revision, cursor) = cursor(plane, channel, dataset).await?;
        let lacking = lacking(channel, &cursor, &source, publications).into();
        let waiting = cursor
            .pending
            .as_ref()
            .is_some_and(|pending| backing_off(pending.failed_attempts, cursor.updated_at));
        positions.push(Position {
            subscriber: index,
            revision,
            cursor,
            lacking,
            stopped: waiting,
        });
    }
    loop {
        let next = positions
            .iter()
            .filter(|position| !position.stopped)
            .find_map(|position| position.lacking.front().cloned());
        let Some(entry) = next else {
            return Ok(());
        };
        let mut group = Vec::new();
        for (at, position) in positions.iter_mut().enumerate() {
            if position.stopped
                || position
                    .lacking
                    .front()
                    .is_none_or(|first| first.path != entry.path)
            {
                continue;
            }
            let attempt = match &position.cursor.pending {
                Some(pending) if pending.path == entry.path => pending.failed_attempts,
                _ => 0,
            };
            position.cursor.pending = Some(PendingFile {
                path: entry.path.clone(),
                failed_attempts: attempt,
            });
            match save(plane, &position.cursor, position.revision, None).await? {
                Some(next) => {
                    position.revision = Some(next);
                    group.push((at, attempt));
                }
                None => position.stopped = true, // Another gateway is on it.
            }
        }
        if !group.is_empty() {
            push_entry(plane, &id, &entry, &mut positions, &group, subscribers).await?;
        }
    }
}

/// Pushes `entry` of `id` once to the positions of `group` (with their attempt numbers),
/// and moves their cursors.
async fn push_entry(
    plane: &ControlPlane,
    id: &DatasetId,
    entry: &Entry,
    positions: &mut [Position],
    group: &[(usize, u32)],
    subscribers: &mut [Subscriber],
) -> Result<(), AccountError> {
    let dataset = id.to_string();
    let mut recipients = Vec::with_capacity(group.len());
    let mut members = Vec::with_capacity(group.len());
    for (index, subscriber) in subscribers.iter_mut().enumerate() {
        let Some(&(at, attempt)) = group
            .iter()
            .find(|(at, _)| positions[*at].subscriber == index)
        else {
            continue;
        };
        let position = &positions[at];
        let target = FileTarget {
            dataset: id.clone(),
            entry: entry.path.clone(),
            version: position.cursor.next_version(),
            format: subscriber
                .channel
                .request
                .message_format
                .unwrap_or_default(),
            message_rows: subscriber.message_rows,
            record_id: record_id(&subscriber.channel.id, &dataset, &entry.path, attempt),
        };
        members.push((at, attempt, target.version));
        recipients.push(Recipient {
            session: Arc::clone(&subscriber.session),
            principal: Arc::clone(&subscriber.principal),
            sink: &mut subscriber.sink,
            target,
        });
    }
    let results = push_slice(&plane.service, id, &entry.slice, recipients).await;
    for ((at, attempt, version), pushed) in members.into_iter().zip(results) {
        let position = &mut positions[at];
        let channel = &subscribers[position.subscriber].channel;
        let mut event = None;
        match pushed {
            Ok(pushed) => {
                tracing::info!(target: "tollgate::audit", event = "file_pushed", tenant = %channel.tenant, channel = %channel.id, dataset = %dataset, file = %entry.path, rows = pushed.rows, messages = pushed.messages, duplicates = pushed.duplicates, "file pushed");
                match &entry.slice {
                    Slice::Range { up_to, .. } => {
                        position.cursor.watermark = Some(up_to.clone());
                        position.cursor.ranges += 1;
                    }
                    _ => position.cursor.delivered.push(PushedFile {
                        path: entry.path.clone(),
                        size: entry.size,
                        rows: pushed.rows,
                        messages: pushed.messages,
                        version,
                    }),
                }
                position.cursor.pending = None;
                position.lacking.pop_front();
            }
            Err(error) => {
                tracing::warn!(channel = %channel.id, dataset = %dataset, file = %entry.path, %error, "pushing a file failed; it is tried again");
                position.cursor.pending = Some(PendingFile {
                    path: entry.path.clone(),
                    failed_attempts: attempt + 1,
                });
                position.stopped = true;
                // A push stopped by the gateway's drain is not the tenant's concern.
                if attempt == 0 && !error.is_shutdown() {
                    event = Some(Write::event(
                        channel.tenant.clone(),
                        "tenant",
                        &json!({
                            "type": "channel.push_failed",
                            "at": Utc::now(),
                            "channel": channel.id,
                            "dataset": dataset,
                            "version": version,
                            "error": error.to_string(),
                        }),
                    ));
                }
            }
        }
        match save(plane, &position.cursor, position.revision, event).await? {
            Some(next) => position.revision = Some(next),
            None => position.stopped = true,
        }
    }
    Ok(())
}

/// The login the channel's rows are read as: its newest.
async fn newest_login(
    plane: &ControlPlane,
    channel: &ChannelRecord,
) -> Result<Option<String>, StoreError> {
    let mut newest: Option<CredentialRecord> = None;
    for document in plane.store.list(CREDENTIAL, Some(&channel.tenant)).await? {
        let login: CredentialRecord = document.parse()?;
        if login.channel == channel.id
            && newest
                .as_ref()
                .is_none_or(|known| known.created_at < login.created_at)
        {
            newest = Some(login);
        }
    }
    Ok(newest.map(|login| login.login))
}

/// The cursor of `channel` on `dataset` and its revision; a new one if there is none.
async fn cursor(
    plane: &ControlPlane,
    channel: &ChannelRecord,
    dataset: &str,
) -> Result<(Option<i64>, PushCursorRecord), StoreError> {
    let id = PushCursorRecord::id(&channel.id, dataset);
    match plane.store.get(PUSH_CURSOR, &id).await? {
        Some(document) => Ok((Some(document.revision), document.parse()?)),
        None => Ok((
            None,
            PushCursorRecord {
                channel: channel.id.clone(),
                tenant: channel.tenant.clone(),
                dataset: dataset.to_owned(),
                delivered: Vec::new(),
                pending: None,
                watermark: None,
                ranges: 0,
                updated_at: Utc::now(),
            },
        )),
    }
}

/// Stores `cursor` over `revision` (`None`: not stored yet), with `event` if any; its new
/// revision, or `None` when another gateway moved it first.
async fn save(
    plane: &ControlPlane,
    cursor: &PushCursorRecord,
    revision: Option<i64>,
    event: Option<Write>,
) -> Result<Option<i64>, StoreError> {
    let cursor = PushCursorRecord {
        updated_at: Utc::now(),
        ..cursor.clone()
    };
    let expect = revision.map_or(Expect::Absent, Expect::Revision);
    let id = PushCursorRecord::id(&cursor.channel, &cursor.dataset);
    let mut writes = vec![Write::put(
        PUSH_CURSOR,
        &id,
        &cursor.tenant,
        &cursor,
        expect,
    )];
    writes.extend(event);
    match plane.store.write(writes).await {
        Ok(_) => Ok(Some(revision.map_or(1, |revision| revision + 1))),
        Err(StoreError::Conflict { .. }) => Ok(None),
        Err(error) => Err(error),
    }
}

/// Whether an entry whose push failed `failed_attempts` times, the last at `last`, still
/// waits before it is tried again: a second after the first failure, twice as long after
/// each further one, five minutes at most.
fn backing_off(failed_attempts: u32, last: DateTime<Utc>) -> bool {
    let Some(doublings) = failed_attempts.checked_sub(1) else {
        return false;
    };
    let wait = FIRST_RETRY
        .saturating_mul(1_u32 << doublings.min(16))
        .min(LONGEST_RETRY);
    chrono::Duration::from_std(wait).is_ok_and(|wait| Utc::now() < last + wait)
}

/// The usage record id of attempt `attempt` at pushing `file` of `dataset` to `channel`.
fn record_id(channel: &str, dataset: &str, file: &str, attempt: u32) -> Uuid {
    let key = format!("{channel}\n{dataset}\n{file}\n{attempt}");
    let hash = digest::digest(&digest::SHA256, key.as_bytes());
    let mut bytes = [0_u8; 16];
    bytes.copy_from_slice(&hash.as_ref()[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_entries_wait_longer_after_each_failure() {
        let now = Utc::now();
        assert!(!backing_off(0, now));
        assert!(backing_off(1, now));
        assert!(!backing_off(1, now - chrono::Duration::seconds(2)));
        assert!(backing_off(3, now - chrono::Duration::seconds(3)));
        assert!(!backing_off(3, now - chrono::Duration::seconds(5)));
        assert!(backing_off(40, now - chrono::Duration::seconds(299)));
        assert!(!backing_off(40, now - chrono::Duration::seconds(301)));
    }
}
