//! What a push channel lacks of a dataset: how the dataset's new rows are found (its files,
//! a replica table's watermark, or neither), and the entries a channel's cursor has not
//! delivered, in the order they go out.
//!
//! ```text
//! files          ─▶ each file not delivered, oldest first
//! watermark w    ─▶ @rows [cursor's w, newest w]   (a pending slice: its own bounds again)
//! live table     ─▶ @snapshot
//! + each @publication/<n> made after the channel
//! ```

use tollgate_catalog::DatasetId;
use tollgate_catalog::store::push_records::{PushCursorRecord, PushPublicationRecord};
use tollgate_catalog::store::records::ChannelRecord;
use tollgate_planner::dataset_stats::SourceFile;
use tollgate_planner::source_slice::Slice;

use super::ControlPlane;

/// How a slice of new replica rows is named in a cursor: this, then its bounds in JSON.
const RANGE: &str = "@rows ";

/// Something to push to a channel: a file of its dataset, the whole dataset, or its new
/// replica rows.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    /// The file's path, `@snapshot`, `@publication/<n>`, or `@rows [after, up_to]`.
    pub path: String,
    pub size: u64,
    pub slice: Slice,
}

impl Entry {
    /// The whole dataset, under `path`.
    fn whole(path: String) -> Self {
        Self {
            path,
            size: 0,
            slice: Slice::Whole,
        }
    }

    /// The rows whose `column` is above `after` and at most `up_to`.
    fn range(column: &str, after: Option<String>, up_to: String) -> Self {
        let path = format!(
            "{RANGE}{}",
            serde_json::to_string(&(&after, &up_to)).unwrap_or_default()
        );
        Self {
            path,
            size: 0,
            slice: Slice::Range {
                column: column.to_owned(),
                after,
                up_to,
            },
        }
    }

    /// The range a cursor's pending entry named, if it is one.
    fn pending_range(column: &str, path: &str) -> Option<Self> {
        let bounds = path.strip_prefix(RANGE)?;
        let (after, up_to): (Option<String>, String) = serde_json::from_str(bounds).ok()?;
        Some(Self::range(column, after, up_to))
    }
}

/// How a dataset's new rows are found now.
pub(super) enum Source {
    /// Its files, oldest first.
    Files(Vec<SourceFile>),
    /// A replica table with a watermark `column`, whose newest value is `newest`.
    Watermark {
        column: String,
        newest: Option<String>,
    },
    /// A table read live without a watermark: only its snapshot and published versions.
    Live,
}

/// What `channel`, at `cursor`, lacks of `dataset` found by `source`, with the provider's
/// `publications` of it, in order: each file not pushed, oldest first (a live table: its
/// snapshot; a replica table with a watermark: its rows above the cursor's watermark);
/// then each version published since the channel was made.
pub(super) fn lacking(
    channel: &ChannelRecord,
    cursor: &PushCursorRecord,
    source: &Source,
    publications: &[PushPublicationRecord],
) -> Vec<Entry> {
    let mut entries: Vec<Entry> = match source {
        Source::Files(files) => files
            .iter()
            .map(|file| Entry {
                path: file.path.clone(),
                size: file.size,
                slice: Slice::Files(vec![file.path.clone()]),
            })
            .collect(),
        Source::Live => vec![Entry::whole("@snapshot".to_owned())],
        Source::Watermark { column, newest } => {
            let pending = cursor
                .pending
                .as_ref()
                .and_then(|pending| Entry::pending_range(column, &pending.path));
            match (pending, newest) {
                // A slice begun is finished with the same bounds, so its messages repeat.
                (Some(pending), _) => vec![pending],
                (None, Some(newest)) if cursor.watermark.as_ref() != Some(newest) => {
                    vec![Entry::range(
                        column,
                        cursor.watermark.clone(),
                        newest.clone(),
                    )]
                }
                _ => Vec::new(),
            }
        }
    };
    entries.extend(
        publications
            .iter()
            .filter(|publication| publication.created_at > channel.created_at)
            .map(|publication| Entry::whole(publication.entry())),
    );
    entries.retain(|entry| !cursor.delivered.iter().any(|done| done.path == entry.path));
    entries
}

/// How the new rows of `id` are found now; `None` (logged) when its source does not
/// answer.
pub(super) async fn source(plane: &ControlPlane, id: &DatasetId) -> Option<Source> {
    let files = match plane.service.source_files(id).await {
        Ok(files) => files,
        Err(error) => {
            tracing::warn!(dataset = %id, %error, "cannot list a pushed dataset's files");
            return None;
        }
    };
    if let Some(files) = files {
        return Some(Source::Files(files));
    }
    let watermark = plane
        .service
        .catalog()
        .dataset(id)
        .and_then(|dataset| dataset.watermark.clone());
    let Some(column) = watermark else {
        return Some(Source::Live);
    };
    match plane.service.newest_watermark(id).await {
        Ok(newest) => Some(Source::Watermark { column, newest }),
        Err(error) => {
            tracing::warn!(dataset = %id, %error, "cannot read a pushed table's watermark");
            None
        }
    }
}
