//! New versions of a `file` channel's datasets, written from the datasets as they are now:
//! on an admin's request (every dataset), and on a schedule (each dataset whose files
//! changed since its latest version, and each read live from a database).
//!
//! ```text
//! every file_refresh_interval: active file channels ─▶ changed datasets ─▶ export v(n+1)
//!   ─▶ shared tables + `channel.refreshed` event, in one write that expects each version absent
//!   (two gateways refreshing at once: one write wins, the other deletes its files)
//! ```

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;
use tollgate_catalog::ChannelKind;
use tollgate_catalog::DatasetId;
use tollgate_catalog::store::records::{
    CHANNEL, CREDENTIAL, ChannelRecord, ChannelState, CredentialRecord, SHARED_TABLE,
    SharedTableRecord,
};
use tollgate_catalog::store::{Expect, StoreError, Write};

use super::{ControlPlane, Problem};
use crate::sharing::export;

/// Which datasets of a channel get a new version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refresh {
    /// Every one.
    Every,
    /// Those whose source changed since their latest version.
    Changed,
}

/// The new versions of a channel, written to the delivery store but not yet recorded.
#[derive(Debug, Default)]
pub(super) struct NewVersions {
    /// The shared tables and the `channel.refreshed` event; empty when nothing changed.
    pub writes: Vec<Write>,
    /// Version by dataset.
    pub versions: Map<String, Value>,
    /// The files written, to delete if the writes are not kept.
    pub files: Vec<String>,
}

/// Writes new versions of the datasets of file channel `id` that `refresh` selects.
///
/// # Errors
/// [`Problem::NotFound`] for no active file channel `id`; [`Problem::Conflict`] while its
/// first version is being written; [`Problem::Unprocessable`] when a dataset cannot be
/// written (the versions already written are deleted).
pub(super) async fn write(
    plane: &ControlPlane,
    id: &str,
    refresh: Refresh,
) -> Result<NewVersions, Problem> {
    let missing = || Problem::NotFound(format!("file channel `{id}`"));
    let channel: ChannelRecord = plane
        .store
        .get(CHANNEL, id)
        .await?
        .ok_or_else(missing)?
        .parse()?;
    if channel.state != ChannelState::Active || channel.request.kind != ChannelKind::File {
        return Err(missing());
    }
    // The channel's newest login reads the datasets, in the channel's own session.
    let mut logins: Vec<CredentialRecord> = Vec::new();
    for document in plane.store.list(CREDENTIAL, Some(&channel.tenant)).await? {
        let login: CredentialRecord = document.parse()?;
        if login.channel == id {
            logins.push(login);
        }
    }
    logins.sort_by_key(|login| login.created_at);
    let principal = logins
        .last()
        .and_then(|login| plane.service.principal(&login.login))
        .ok_or_else(missing)?;
    let session = plane.service.session(&principal).ok_or_else(missing)?;
    let latest = latest_versions(plane, &channel).await?;
    // No version yet: the order that makes version 1 is still being provisioned.
    if latest.is_empty() {
        return match refresh {
            Refresh::Every => Err(Problem::Conflict(format!(
                "file channel `{id}` is still being provisioned"
            ))),
            Refresh::Changed => Ok(NewVersions::default()),
        };
    }
    let mut new = NewVersions::default();
    for dataset in &channel.request.datasets {
        let previous = latest.iter().find(|table| table.dataset == dataset.dataset);
        if refresh == Refresh::Changed && !source_changed(plane, previous, &dataset.dataset).await {
            continue;
        }
        let version = previous.map_or(0, |table| table.version) + 1;
        let written = export::write_version(
            &plane.service,
            Arc::clone(&session),
            Arc::clone(&principal),
            &plane.delivery,
            &dataset.dataset,
            version,
        )
        .await;
        let table = match written {
            Ok(table) => table,
            Err(error) => {
                plane.delivery.remove(new.files).await;
                return Err(Problem::Unprocessable(error.to_string()));
            }
        };
        new.files
            .extend(table.files.iter().map(|file| file.path.clone()));
        new.writes.push(Write::put(
            SHARED_TABLE,
            SharedTableRecord::id(id, &table.dataset, version),
            &channel.tenant,
            &table,
            Expect::Absent,
        ));
        new.versions.insert(dataset.dataset.clone(), json!(version));
    }
    if !new.writes.is_empty() {
        new.writes.push(Write::event(
            &channel.tenant,
            "tenant",
            &json!({ "type": "channel.refreshed", "at": Utc::now(), "channel": id, "versions": new.versions }),
        ));
    }
    Ok(new)
}

/// The latest version of each dataset of `channel`.
async fn latest_versions(
    plane: &ControlPlane,
    channel: &ChannelRecord,
) -> Result<Vec<SharedTableRecord>, StoreError> {
    let mut latest: Vec<SharedTableRecord> = Vec::new();
    for document in plane
        .store
        .list(SHARED_TABLE, Some(&channel.tenant))
        .await?
    {
        let table: SharedTableRecord = document.parse()?;
        if table.channel != channel.id {
            continue;
        }
        match latest
            .iter_mut()
            .find(|known| known.dataset == table.dataset)
        {
            Some(known) if known.version < table.version => *known = table,
            Some(_) => {}
            None => latest.push(table),
        }
    }
    Ok(latest)
}

/// Whether `dataset` may hold other rows than its `previous` version: its files changed,
/// or it is read live. A source that cannot be listed is left for the next round.
async fn source_changed(
    plane: &ControlPlane,
    previous: Option<&SharedTableRecord>,
    dataset: &str,
) -> bool {
    let Some(previous) = previous else {
        return true;
    };
    let Ok(id) = DatasetId::parse(dataset) else {
        return false;
    };
    match plane.service.source_version(&id).await {
        Ok(Some(now)) => previous.source.as_deref() != Some(now.as_str()),
        Ok(None) => true,
        Err(error) => {
            tracing::warn!(%dataset, %error, "cannot tell whether a shared dataset changed");
            false
        }
    }
}

/// Refreshes every active file channel whose datasets changed, every `interval`, until
/// `shutdown`.
pub(super) async fn run(plane: Arc<ControlPlane>, interval: Duration, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if let Err(error) = refresh_changed(&plane).await {
            tracing::warn!(%error, "scheduled refresh of file channels");
        }
    }
}

/// One round of [`run`].
async fn refresh_changed(plane: &ControlPlane) -> Result<(), StoreError> {
    for document in plane.store.list(CHANNEL, None).await? {
        let channel: ChannelRecord = document.parse()?;
        if channel.state != ChannelState::Active || channel.request.kind != ChannelKind::File {
            continue;
        }
        let new = match write(plane, &channel.id, Refresh::Changed).await {
            Ok(new) => new,
            Err(problem) => {
                tracing::warn!(channel = %channel.id, %problem, "scheduled refresh of a file channel");
                continue;
            }
        };
        if new.writes.is_empty() {
            continue;
        }
        match plane.store.write(new.writes).await {
            Ok(_) => {
                let versions = Value::Object(new.versions);
                tracing::info!(target: "tollgate::audit", event = "channel_refreshed", tenant = %channel.tenant, channel = %channel.id, %versions, "file channel refreshed");
            }
            // Another gateway wrote these versions first.
            Err(StoreError::Conflict { .. }) => plane.delivery.remove(new.files).await,
            Err(error) => {
                plane.delivery.remove(new.files).await;
                return Err(error);
            }
        }
    }
    Ok(())
}
