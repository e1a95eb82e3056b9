//! Push channels' common ground in tests: a feed dataset granted to both demo tenants,
//! ordering a push channel, and what pgwire and the usage views say.

use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tollgate_catalog::{
    ControlOptions, DatasetOptions, GrantOptions, SourceOptions, TollgateOptions,
};

use crate::TestGateway;
use crate::api::{Api, event};

/// How often the gateways of these tests look for new files.
pub const POLL: Duration = Duration::from_millis(200);

/// `feed.events` (the files of `feed/events/`) granted to globex (even ids) and acme (odd
/// ids), with the control plane's push settings set by `push`.
pub fn with_feed(
    options: &mut TollgateOptions,
    feed: &Path,
    push: impl FnOnce(&mut ControlOptions),
) {
    options.sources.insert(
        "feed".to_owned(),
        SourceOptions::Local {
            path: feed.to_owned(),
        },
    );
    let dataset: DatasetOptions =
        toml::from_str("id = \"feed.events\"\nsource = \"feed\"\npath = \"events/\"\n")
            .expect("a dataset");
    options.datasets.push(dataset);
    for (tenant, row_filter) in [("globex", "id % 2 = 0"), ("acme", "id % 2 = 1")] {
        options.grants.push(GrantOptions {
            tenant: tenant.to_owned(),
            dataset: "feed.events".to_owned(),
            columns: None,
            row_filter: Some(row_filter.to_owned()),
            source: None,
        });
    }
    if let Some(control) = &mut options.control {
        push(control);
    }
}

/// A ready push channel of `kind` (JSON lines) of `feed.events` with `row_filter`:
/// (channel id, connection).
pub async fn order_push_channel(tenant: &Api, kind: &str, row_filter: &str) -> (String, Value) {
    order_push_channel_of(tenant, kind, "feed.events", row_filter).await
}

/// A ready push channel of `kind` (JSON lines) of `dataset` with `row_filter`: (channel
/// id, connection).
pub async fn order_push_channel_of(
    tenant: &Api,
    kind: &str,
    dataset: &str,
    row_filter: &str,
) -> (String, Value) {
    let (_, events) = tenant.get("/v1/events?after=0").await;
    let after = events["next_after"].as_i64().unwrap_or(0);
    let (status, body) = tenant
        .post(
            "/v1/channels",
            json!({
                "kind": kind,
                "message_format": "json",
                "datasets": [{ "dataset": dataset, "row_filter": row_filter }]
            }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let ready = event(tenant, after, "channel.ready").await;
    let channel = ready["channel"].as_str().expect("a channel").to_owned();
    (channel, ready["connection"].clone())
}

/// The ids of `sql` over pgwire as `user`.
pub async fn over_pgwire(gateway: &TestGateway, user: &str, sql: &str) -> Vec<i64> {
    let client = gateway.connect(user).await;
    client
        .query(sql, &[])
        .await
        .expect("query")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// Rows and records of the tenant's pushes to `channel`, from `tollgate.usage_records`.
pub async fn pushed_usage(gateway: &TestGateway, user: &str, channel: &str) -> (i64, i64) {
    let client = gateway.connect(user).await;
    let row = client
        .query_one(
            &format!(
                "SELECT count(*), coalesce(sum(rows_returned), 0) FROM tollgate.usage_records \
                 WHERE protocol = 'push' AND channel = '{channel}' AND outcome = 'ok'"
            ),
            &[],
        )
        .await
        .expect("usage");
    (row.get(0), row.get::<_, i64>(1))
}

/// `ids` in ascending order.
pub fn sorted(ids: &[i64]) -> Vec<i64> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids
}

/// The `id` of each JSON line of a message's `payload`.
///
/// # Panics
/// If a line is not a JSON object with an integer `id`.
pub fn json_line_ids(payload: &[u8]) -> Vec<i64> {
    String::from_utf8_lossy(payload)
        .lines()
        .map(|line| {
            let row: Value = serde_json::from_str(line).expect("a JSON line");
            row["id"].as_i64().expect("an id")
        })
        .collect()
}
