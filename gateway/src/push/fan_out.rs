//! One slice of a dataset (a new file, a snapshot, new replica rows, a published version)
//! pushed to every channel that takes it next: read once from the source, and each
//! channel's query (its grant, its model, its login's limits and metering) run over the
//! shared rows at the same time.
//!
//! ```text
//! read_slice ─▶ fan_out ─┬─▶ push_file (channel 1) ─▶ its sink
//!                        └─▶ push_file (channel 2) ─▶ its sink
//! ```

use std::sync::Arc;

use futures::future::join_all;
use tollgate_catalog::{DatasetId, Principal};
use tollgate_planner::shared_rows::fan_out;
use tollgate_planner::source_slice::Slice;
use tollgate_planner::{QueryService, TenantSession};

use super::file_push::{FileTarget, PushError, Pushed, push_file};
use super::sink::Sink;

/// One channel a slice goes to.
pub struct Recipient<'a> {
    /// The session of the channel's login.
    pub session: Arc<TenantSession>,
    /// The channel's login.
    pub principal: Arc<Principal>,
    /// Where its messages go.
    pub sink: &'a mut Sink,
    /// How.
    pub target: FileTarget,
}

/// Reads `slice` of `dataset` once and pushes it to each of `recipients`; what each got,
/// in their order.
pub async fn push_slice(
    service: &QueryService,
    dataset: &DatasetId,
    slice: &Slice,
    recipients: Vec<Recipient<'_>>,
) -> Vec<Result<Pushed, PushError>> {
    let count = recipients.len();
    let rows = match service.read_slice(dataset, slice).await {
        Ok(rows) => rows,
        Err(error) => {
            let message = error.client_message();
            return (0..count)
                .map(|_| {
                    Err(PushError::Read {
                        dataset: dataset.to_string(),
                        message: message.clone(),
                    })
                })
                .collect();
        }
    };
    let (read, tables) = fan_out(rows, count);
    let pushes = recipients
        .into_iter()
        .zip(tables)
        .map(|(recipient, rows)| async move {
            push_file(
                service,
                recipient.session,
                recipient.principal,
                recipient.sink,
                &recipient.target,
                rows,
            )
            .await
        });
    let (read, pushed) = tokio::join!(read, join_all(pushes));
    match read {
        Ok(scanned) => {
            tracing::info!(target: "tollgate::audit", event = "slice_read", dataset = %dataset, slice = %describe(slice), channels = count, bytes_scanned = scanned, "a slice read once for its channels");
        }
        Err(error) => {
            tracing::debug!(dataset = %dataset, %error, "a pushed slice was not read to its end");
        }
    }
    pushed
}

/// What `slice` holds, for the audit log.
fn describe(slice: &Slice) -> String {
    match slice {
        Slice::Files(files) => files.join(","),
        Slice::Whole => "whole".to_owned(),
        Slice::Range {
            column,
            after,
            up_to,
        } => format!(
            "{column} in ({}, {up_to}]",
            after.as_deref().unwrap_or("-inf")
        ),
    }
}
