//! Clients of `file` channels: a feed of Parquet files that grows, ordering a channel through
//! the control API, the Delta Sharing endpoint over HTTP, and the Python readers of
//! `bi-examples/delta-sharing` (the `delta-sharing` connector, and Spark on the file URLs).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tollgate_planner::datafusion::arrow::array::{Int64Array, StringArray};
use tollgate_planner::datafusion::arrow::datatypes::{DataType, Field, Schema};
use tollgate_planner::datafusion::arrow::record_batch::RecordBatch;
use tollgate_planner::datafusion::parquet::arrow::ArrowWriter;

use crate::api::{Api, event};
use crate::moto::{delta_sharing_python, venv_python};

/// Writes `rows` rows (`id` from `first`, `label` `event-<id>`) as the Parquet file
/// `name` in `dir` (made if missing), atomically (written aside, then renamed).
///
/// # Panics
/// If the file cannot be written.
pub fn write_events(dir: &Path, name: &str, first: i64, rows: i64) {
    write_labelled_events(dir, name, first, rows, |id| format!("event-{id}"));
}

/// Writes `rows` rows (`id` from `first`, `label` as `label` says) as the Parquet file
/// `name` in `dir` (made if missing), atomically (written aside, then renamed).
///
/// # Panics
/// If the file cannot be written.
pub fn write_labelled_events(
    dir: &Path,
    name: &str,
    first: i64,
    rows: i64,
    label: impl Fn(i64) -> String,
) {
    std::fs::create_dir_all(dir).expect("the feed's directory");
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("label", DataType::Utf8, false),
    ]));
    let ids: Vec<i64> = (first..first + rows).collect();
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(Int64Array::from(ids.clone())),
            Arc::new(StringArray::from_iter_values(
                ids.iter().map(|id| label(*id)),
            )),
        ],
    )
    .expect("a batch");
    let partial = dir.join(format!("{name}.tmp"));
    let mut writer = ArrowWriter::try_new(
        std::fs::File::create(&partial).expect("create"),
        schema,
        None,
    )
    .expect("a writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
    std::fs::rename(partial, dir.join(name)).expect("publish");
}

/// Writes `rows` rows of a `label` column alone as the Parquet file `name` in `dir` (made
/// if missing), as a partition of a dataset partitioned by directory.
///
/// # Panics
/// If the file cannot be written.
pub fn write_labels(dir: &Path, name: &str, rows: usize) {
    std::fs::create_dir_all(dir).expect("the partition's directory");
    let schema = Arc::new(Schema::new(vec![Field::new(
        "label",
        DataType::Utf8,
        false,
    )]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![Arc::new(StringArray::from_iter_values(
            (0..rows).map(|row| format!("label-{row}")),
        ))],
    )
    .expect("a batch");
    let mut writer = ArrowWriter::try_new(
        std::fs::File::create(dir.join(name)).expect("create"),
        schema,
        None,
    )
    .expect("a writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
}

/// A `file` channel, ready: its id and the profile of its `channel.ready` event.
#[derive(Debug, Clone)]
pub struct FileChannel {
    /// The channel id (the share).
    pub id: String,
    /// The Delta Sharing profile: `endpoint`, `bearerToken`.
    pub profile: Value,
}

impl FileChannel {
    /// The profile's endpoint.
    pub fn endpoint(&self) -> &str {
        self.profile["endpoint"].as_str().expect("an endpoint")
    }

    /// The profile's bearer token.
    pub fn token(&self) -> &str {
        self.profile["bearerToken"].as_str().expect("a token")
    }

    /// The URL of table `schema.table` of the share.
    pub fn table_url(&self, schema: &str, table: &str) -> String {
        format!(
            "{}/shares/{}/schemas/{schema}/tables/{table}",
            self.endpoint(),
            self.id
        )
    }

    /// Saves the profile as a file in `dir`, for the Python readers.
    ///
    /// # Panics
    /// If it cannot be written.
    pub fn profile_file(&self, dir: &Path) -> PathBuf {
        let file = dir.join(format!(
            "profile-{}.share",
            chrono::Utc::now().timestamp_micros()
        ));
        std::fs::write(&file, self.profile.to_string()).expect("write the profile");
        file
    }
}

/// Orders a `file` channel of `datasets` (the request's `datasets` array) as `tenant` and
/// waits until it is ready.
///
/// # Panics
/// If the order is refused or fails, or no ready event comes.
pub async fn order_file_channel(tenant: &Api, datasets: Value) -> FileChannel {
    let (_, events) = tenant.get("/v1/events?after=0").await;
    let after = events["next_after"].as_i64().unwrap_or(0);
    let (status, body) = tenant
        .post(
            "/v1/channels",
            serde_json::json!({ "kind": "file", "datasets": datasets }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let order = body["id"].as_str().expect("an order id");
    loop {
        let (_, state) = tenant.get(&format!("/v1/orders/{order}")).await;
        match state["state"].as_str() {
            Some("ready") => break,
            Some("failed") => panic!("the order failed: {state}"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let ready = event(tenant, after, "channel.ready").await;
    FileChannel {
        id: ready["channel"].as_str().expect("a channel").to_owned(),
        profile: ready["connection"]["profile"].clone(),
    }
}

/// A request to the Delta Sharing endpoint with `token`: status, headers, body.
///
/// # Panics
/// If no answer comes.
pub async fn sharing(
    method: Method,
    url: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let mut request = reqwest::Client::new()
        .request(method, url)
        .header("authorization", format!("Bearer {token}"));
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().await.expect("a response");
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.text().await.expect("a body"))
}

/// The `file` actions of a `query` answer.
///
/// # Panics
/// If a line is not JSON.
pub fn file_actions(lines: &str) -> Vec<Value> {
    lines
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("a JSON line"))
        .filter_map(|action| action.get("file").cloned())
        .collect()
}

/// Runs `bi-examples/delta-sharing/load_tables.py` (the `delta-sharing` connector) over
/// `channel`'s profile: `(table, rows, sum)` per table, the sum over its first integer
/// column, sorted by table.
///
/// # Panics
/// If the script fails.
pub async fn load_tables(channel: &FileChannel, dir: &Path) -> Vec<(String, i64, i64)> {
    let file = channel.profile_file(dir);
    let stdout = run_python(delta_sharing_python(), "load_tables.py", vec![file.into()]).await;
    let mut tables = Vec::new();
    for line in stdout.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let ["TABLE", table, "ROWS", rows] = words[..] {
            tables.push((table.to_owned(), rows.parse().expect("rows"), 0));
        }
        if let ["SUM", table, _, sum] = words[..]
            && let Some(entry) = tables.iter_mut().find(|(name, _, _)| name == table)
        {
            entry.2 = sum.parse().expect("a sum");
        }
    }
    tables.sort();
    tables
}

/// Runs `bi-examples/delta-sharing/spark_read_table.py` (Spark tasks downloading the file
/// URLs) for `schema.table` of `channel`: `(files, rows, sum)`, the sum over its first
/// integer column.
///
/// # Panics
/// If the script fails.
pub async fn spark_read_table(channel: &FileChannel, dir: &Path, table: &str) -> (usize, i64, i64) {
    let file = channel.profile_file(dir);
    let name = format!("{}.{table}", channel.id);
    let stdout = run_python(
        venv_python(),
        "spark_read_table.py",
        vec![file.into(), name.into()],
    )
    .await;
    let (mut files, mut rows, mut sum) = (None, None, 0);
    for line in stdout.lines() {
        match line.split_whitespace().collect::<Vec<_>>()[..] {
            ["FILES", n] => files = n.parse().ok(),
            ["ROWS", n] => rows = n.parse().ok(),
            ["SUM", _, n] => sum = n.parse().expect("a sum"),
            _ => {}
        }
    }
    (
        files.expect("a FILES line"),
        rows.expect("a ROWS line"),
        sum,
    )
}

/// Runs the script `name` of `bi-examples/delta-sharing` with `python` and `args`; its
/// standard output.
async fn run_python(python: PathBuf, name: &str, args: Vec<std::ffi::OsString>) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../bi-examples/delta-sharing")
        .join(name);
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(script)
            .args(args)
            .output()
    })
    .await
    .expect("the script's thread")
    .expect("run python");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
