//! Provisioning a `file` channel: its files are written by its own login, so the channel
//! and login are stored and served first, then the first version of each dataset is
//! exported, then the order becomes ready.
//!
//! ```text
//! claimed ─▶ channel + login (order still provisioning, names the channel) ─▶ served
//!        ─▶ export v1 of each dataset as the login ─▶ shared tables + ready + event
//!                                   └─ fails ─▶ channel and login removed, order failed
//! ```
//!
//! A gateway that dies between the steps leaves the order provisioning; whoever claims it
//! next finds the channel of this order and goes on from the export.

use chrono::Utc;
use serde_json::Value;
use tollgate_catalog::store::records::{
    CHANNEL, CREDENTIAL, ChannelRecord, ORDER, OrderRecord, SECRET, SHARED_TABLE, SharedTableRecord,
};
use tollgate_catalog::store::{Expect, StoreError, Write};

use super::ControlPlane;
use super::credentials::login_name;
use crate::sharing::export;

/// How provisioning a file channel ended, when the store did not fail.
pub(super) enum Provisioned {
    /// Ready, or left to the gateway that holds the claim.
    Done,
    /// It cannot be fulfilled; the order is at `revision` and is to be marked failed.
    Failed {
        /// Why.
        reason: String,
        /// The order's revision now.
        revision: i64,
    },
}

/// Provisions file channel `id` of `order` (claimed at `revision`): `first` stores the
/// channel, login and password; `ready` and `event` announce it once its files exist.
///
/// # Errors
/// The store's; the order is taken up again after its lease.
pub(super) async fn provision(
    plane: &ControlPlane,
    (order, revision): (&OrderRecord, i64),
    id: String,
    first: Vec<Write>,
    ready: OrderRecord,
    event: Value,
) -> Result<Provisioned, StoreError> {
    let existing: Option<ChannelRecord> = plane
        .store
        .get(CHANNEL, &id)
        .await?
        .map(|document| document.parse())
        .transpose()?;
    let revision = match existing {
        Some(channel) if channel.order == order.id => revision,
        Some(_) => {
            return Ok(Provisioned::Failed {
                reason: format!("channel `{id}` exists already"),
                revision,
            });
        }
        None => {
            let provisioning = OrderRecord {
                channel: Some(id.clone()),
                updated_at: Utc::now(),
                ..order.clone()
            };
            let mut writes = first;
            writes.push(Write::put(
                ORDER,
                &order.id,
                &order.tenant,
                &provisioning,
                Expect::Revision(revision),
            ));
            match plane.store.write(writes).await {
                Ok(_) => revision + 1,
                // Lost the claim: whoever holds it finishes.
                Err(StoreError::Conflict { .. }) => return Ok(Provisioned::Done),
                Err(error) => return Err(error),
            }
        }
    };
    plane.sync.refresh().await?;
    let login = login_name(&id, 1);
    let exported = export_all(plane, order, &login).await;
    let tables = match exported {
        Ok(tables) => tables,
        Err(reason) => {
            withdraw(plane, order, &id, &login).await?;
            return Ok(Provisioned::Failed { reason, revision });
        }
    };
    let mut writes = vec![
        Write::put(
            ORDER,
            &order.id,
            &order.tenant,
            &ready,
            Expect::Revision(revision),
        ),
        Write::event(&order.tenant, "tenant", &event),
    ];
    for table in &tables {
        writes.push(Write::put(
            SHARED_TABLE,
            SharedTableRecord::id(&id, &table.dataset, table.version),
            &order.tenant,
            table,
            Expect::Any,
        ));
    }
    let files = || {
        tables
            .iter()
            .flat_map(|table| table.files.iter().map(|file| file.path.clone()))
            .collect::<Vec<_>>()
    };
    match plane.store.write(writes).await {
        Ok(_) => {
            tracing::info!(target: "tollgate::audit", event = "channel_ready", tenant = %order.tenant, order = %order.id, channel = %id, "file channel provisioned");
            Ok(Provisioned::Done)
        }
        Err(StoreError::Conflict { .. }) => {
            plane.delivery.remove(files()).await;
            Ok(Provisioned::Done)
        }
        Err(error) => {
            plane.delivery.remove(files()).await;
            Err(error)
        }
    }
}

/// Version 1 of every dataset of the order, read as `login`.
async fn export_all(
    plane: &ControlPlane,
    order: &OrderRecord,
    login: &str,
) -> Result<Vec<SharedTableRecord>, String> {
    let principal = plane
        .service
        .principal(login)
        .ok_or_else(|| format!("the login `{login}` is not served yet; retry"))?;
    let session = plane
        .service
        .session(&principal)
        .ok_or_else(|| format!("the session of `{login}` is not served yet; retry"))?;
    let mut tables: Vec<SharedTableRecord> = Vec::new();
    for dataset in &order.request.datasets {
        let written = export::write_version(
            &plane.service,
            std::sync::Arc::clone(&session),
            std::sync::Arc::clone(&principal),
            &plane.delivery,
            &dataset.dataset,
            1,
        )
        .await;
        match written {
            Ok(table) => tables.push(table),
            Err(error) => {
                let files = tables
                    .iter()
                    .flat_map(|table| table.files.iter().map(|file| file.path.clone()));
                plane.delivery.remove(files.collect::<Vec<_>>()).await;
                return Err(error.to_string());
            }
        }
    }
    Ok(tables)
}

/// Removes the channel, login and password of an order that failed after they were stored.
async fn withdraw(
    plane: &ControlPlane,
    order: &OrderRecord,
    id: &str,
    login: &str,
) -> Result<(), StoreError> {
    let delete = |kind: &'static str, id: &str| Write::Delete {
        kind,
        id: id.to_owned(),
        expect: Expect::Any,
    };
    plane
        .store
        .write(vec![
            delete(CHANNEL, id),
            delete(CREDENTIAL, login),
            delete(SECRET, login),
        ])
        .await?;
    tracing::info!(tenant = %order.tenant, order = %order.id, channel = %id, "file channel withdrawn: its first version could not be written");
    plane.sync.refresh().await
}
