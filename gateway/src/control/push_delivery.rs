//! Pushing push channels' rows (`nats`, `mqtt`): on order, every file of each dataset (the
//! initial snapshot; for a dataset read live from a database, the whole dataset), then each
//! new file as it lands and each version the provider publishes, each once per channel.
//!
//! ```text
//! every poll_interval (or when woken):
//!   NATS accounts ─▶ server (users of logins that no longer serve revoked); MQTT clients
//!   of such logins removed
//!   active push channels ─▶ each dataset's files now ─▶ files the cursor lacks, oldest first
//!     ─▶ cursor: pending (file, attempt) ─▶ push_file ─▶ cursor: delivered (rows, messages)
//! ```
//!
//! The cursor is written before a file's push starts and after it ends. A gateway killed
//! in between leaves the file pending: whoever goes on pushes it again, under the same
//! message ids (so a JetStream stream stores each message once; MQTT subscribers drop
//! repeated ids) and the same usage record id (so it is billed once). An attempt that ends with an error counts as failed, and the next
//! one gets a record of its own.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use ring::digest;
use tokio_util::sync::CancellationToken;
use tollgate_catalog::store::push_records::{
    PUSH_CURSOR, PUSH_PUBLICATION, PendingFile, PushCursorRecord, PushPublicationRecord, PushedFile,
};
use tollgate_catalog::store::records::{
    CHANNEL, CREDENTIAL, ChannelRecord, ChannelState, CredentialRecord,
};
use tollgate_catalog::store::{Expect, StoreError, Write};
use tollgate_catalog::{ChannelKind, DatasetId, ProfileOptions};
use tollgate_planner::dataset_stats::SourceFile;
use uuid::Uuid;

use super::ControlPlane;
use crate::push::accounts::{self, AccountError};
use crate::push::file_push::{FileTarget, push_file};
use crate::push::mqtt_broker::topic;
use crate::push::nats_broker::{StreamLimits, subject};
use crate::push::sink::Sink;

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
        if let Err(error) = push_due(&plane).await {
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
            };
            Ok(Some((sink, broker.options().message_rows)))
        }
        _ => Ok(None),
    }
}

/// Something to push to a channel: a file of its dataset, or a whole version of it.
#[derive(Debug, Clone)]
struct Entry {
    /// The file's path, or `@snapshot` / `@publication/<n>`.
    path: String,
    size: u64,
    is_file: bool,
}

/// What `channel` gets of `dataset` whose files are `files` (`None`: read live), with the
/// provider's `publications` of it: each file, oldest first, or, for a dataset read live,
/// its snapshot; then each version published since the channel was made.
fn entries(
    channel: &ChannelRecord,
    files: Option<&Vec<SourceFile>>,
    publications: &[PushPublicationRecord],
) -> Vec<Entry> {
    let mut entries: Vec<Entry> = match files {
        Some(files) => files
            .iter()
            .map(|file| Entry {
                path: file.path.clone(),
                size: file.size,
                is_file: true,
            })
            .collect(),
        None => vec![Entry {
            path: "@snapshot".to_owned(),
            size: 0,
            is_file: false,
        }],
    };
    entries.extend(
        publications
            .iter()
            .filter(|publication| publication.created_at > channel.created_at)
            .map(|publication| Entry {
                path: publication.entry(),
                size: 0,
                is_file: false,
            }),
    );
    entries
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

/// One round of [`run`]: each active push channel's files and versions not pushed yet.
async fn push_due(plane: &ControlPlane) -> Result<(), AccountError> {
    let mut listings: HashMap<String, Option<Vec<SourceFile>>> = HashMap::new();
    let published = publications(plane).await?;
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
        let Some((mut sink, message_rows)) = sink(plane, &channel).await? else {
            continue;
        };
        for dataset in &channel.request.datasets {
            let Ok(id) = DatasetId::parse(&dataset.dataset) else {
                continue;
            };
            if !listings.contains_key(&dataset.dataset) {
                let files = match plane.service.source_files(&id).await {
                    Ok(files) => files,
                    Err(error) => {
                        tracing::warn!(dataset = %dataset.dataset, %error, "cannot list a pushed dataset's files");
                        continue;
                    }
                };
                listings.insert(dataset.dataset.clone(), files);
            }
            let Some(files) = listings.get(&dataset.dataset) else {
                continue;
            };
            let publications = published
                .get(&dataset.dataset)
                .map_or(&[][..], Vec::as_slice);
            let (mut revision, mut cursor) = cursor(plane, &channel, &dataset.dataset).await?;
            for file in entries(&channel, files.as_ref(), publications) {
                if cursor.delivered.iter().any(|done| done.path == file.path) {
                    continue;
                }
                let attempt = match &cursor.pending {
                    Some(pending) if pending.path == file.path => pending.failed_attempts,
                    _ => 0,
                };
                cursor.pending = Some(PendingFile {
                    path: file.path.clone(),
                    failed_attempts: attempt,
                });
                let Some(next) = save(plane, &cursor, revision).await? else {
                    break; // Another gateway is on it.
                };
                revision = Some(next);
                let target = FileTarget {
                    dataset: id.clone(),
                    entry: file.path.clone(),
                    is_file: file.is_file,
                    version: cursor.delivered.len() as u64 + 1,
                    format: channel.request.message_format.unwrap_or_default(),
                    message_rows,
                    record_id: record_id(&channel.id, &dataset.dataset, &file.path, attempt),
                };
                let pushed = push_file(
                    &plane.service,
                    Arc::clone(&session),
                    Arc::clone(&principal),
                    &mut sink,
                    &target,
                )
                .await;
                match pushed {
                    Ok(pushed) => {
                        tracing::info!(target: "tollgate::audit", event = "file_pushed", tenant = %channel.tenant, channel = %channel.id, dataset = %dataset.dataset, file = %file.path, rows = pushed.rows, messages = pushed.messages, duplicates = pushed.duplicates, "file pushed");
                        cursor.delivered.push(PushedFile {
                            path: file.path.clone(),
                            size: file.size,
                            rows: pushed.rows,
                            messages: pushed.messages,
                            version: target.version,
                        });
                        cursor.pending = None;
                    }
                    Err(error) => {
                        tracing::warn!(channel = %channel.id, dataset = %dataset.dataset, file = %file.path, %error, "pushing a file failed; it is tried again");
                        cursor.pending = Some(PendingFile {
                            path: file.path.clone(),
                            failed_attempts: attempt + 1,
                        });
                    }
                }
                let failed = cursor.pending.is_some();
                match save(plane, &cursor, revision).await? {
                    Some(next) => revision = Some(next),
                    None => break,
                }
                if failed {
                    break;
                }
            }
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
                updated_at: Utc::now(),
            },
        )),
    }
}

/// Stores `cursor` over `revision` (`None`: not stored yet); its new revision, or `None`
/// when another gateway moved it first.
async fn save(
    plane: &ControlPlane,
    cursor: &PushCursorRecord,
    revision: Option<i64>,
) -> Result<Option<i64>, StoreError> {
    let cursor = PushCursorRecord {
        updated_at: Utc::now(),
        ..cursor.clone()
    };
    let expect = revision.map_or(Expect::Absent, Expect::Revision);
    let id = PushCursorRecord::id(&cursor.channel, &cursor.dataset);
    match plane
        .store
        .write(vec![Write::put(
            PUSH_CURSOR,
            &id,
            &cursor.tenant,
            &cursor,
            expect,
        )])
        .await
    {
        Ok(_) => Ok(Some(revision.map_or(1, |revision| revision + 1))),
        Err(StoreError::Conflict { .. }) => Ok(None),
        Err(error) => Err(error),
    }
}

/// The usage record id of attempt `attempt` at pushing `file` of `dataset` to `channel`.
fn record_id(channel: &str, dataset: &str, file: &str, attempt: u32) -> Uuid {
    let key = format!("{channel}\n{dataset}\n{file}\n{attempt}");
    let hash = digest::digest(&digest::SHA256, key.as_bytes());
    let mut bytes = [0_u8; 16];
    bytes.copy_from_slice(&hash.as_ref()[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}
