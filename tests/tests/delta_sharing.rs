//! `file` channels with the `delta-sharing` Python connector: a channel ordered through the
//! control API is written as Parquet files and read with `load_as_pandas` (values equal to
//! the same query over pgwire); file URLs expire; another tenant cannot list or read the
//! share; a refresh adds a version with the dataset's new rows, and the old version stays
//! readable.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tollgate_catalog::{DatasetOptions, GrantOptions, HumanDuration, SourceOptions};
use tollgate_planner::datafusion::arrow::array::{Int64Array, StringArray};
use tollgate_planner::datafusion::arrow::datatypes::{DataType, Field, Schema};
use tollgate_planner::datafusion::arrow::record_batch::RecordBatch;
use tollgate_planner::datafusion::parquet::arrow::ArrowWriter;
use tollgate_tests::TestGateway;
use tollgate_tests::api::{ADMIN, Api, GLOBEX, event};
use tollgate_tests::moto::delta_sharing_python;

/// Seconds a file URL stays valid in these tests.
const URL_TTL: u64 = 4;

/// Writes `rows` rows (`id` from `first`, `label`) as `name` in `dir`.
fn write_events(dir: &Path, name: &str, first: i64, rows: i64) {
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
                ids.iter().map(|id| format!("event-{id}")),
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

/// The demo gateway with globex granted `feed.events` (a directory of this test), file
/// channels delivered into `delivery`, file URLs valid for [`URL_TTL`] seconds.
async fn gateway(feed: &Path, delivery: &Path) -> TestGateway {
    let (feed, delivery) = (feed.to_owned(), delivery.to_owned());
    TestGateway::start_with(move |options| {
        options
            .sources
            .insert("feed".to_owned(), SourceOptions::Local { path: feed });
        let dataset: DatasetOptions =
            toml::from_str("id = \"feed.events\"\nsource = \"feed\"\npath = \"\"\n")
                .expect("a dataset");
        options.datasets.push(dataset);
        options.grants.push(GrantOptions {
            tenant: "globex".to_owned(),
            dataset: "feed.events".to_owned(),
            columns: None,
            row_filter: Some("id % 2 = 0".to_owned()),
            source: None,
        });
        if let Some(control) = &mut options.control {
            control.delivery_path = delivery;
            control.file_url_ttl = HumanDuration(Duration::from_secs(URL_TTL));
        }
    })
    .await
}

/// Runs the `bi-examples/delta-sharing` script over `profile`: `(table, rows, sum)` per
/// table, the sum over its first integer column.
async fn load_tables(profile: &Value, dir: &Path) -> Vec<(String, i64, i64)> {
    let file = dir.join(format!(
        "profile-{}.share",
        chrono::Utc::now().timestamp_micros()
    ));
    std::fs::write(&file, profile.to_string()).expect("write the profile");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../bi-examples/delta-sharing/load_tables.py"
    );
    let python = delta_sharing_python();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(script)
            .arg(file)
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

/// (rows, sum of the first column) of `sql` over pgwire as globex.
async fn over_pgwire(gateway: &TestGateway, sql: &str) -> (i64, i64) {
    let client = gateway.connect("globex").await;
    let row = client.query_one(sql, &[]).await.expect("query");
    (row.get(0), row.get::<_, Option<i64>>(1).unwrap_or(0))
}

/// A client of the Delta Sharing endpoint with `token`.
async fn sharing(
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_channel_is_read_with_the_delta_sharing_connector() {
    let feed = tempfile::tempdir().expect("a feed directory");
    let delivery = tempfile::tempdir().expect("a delivery directory");
    write_events(feed.path(), "part-0.parquet", 0, 1_000);
    let gateway = gateway(feed.path(), delivery.path()).await;
    let globex = Api::new(&gateway, GLOBEX);
    let (_, events) = globex.get("/v1/events?after=0").await;
    let after = events["next_after"].as_i64().unwrap_or(0);
    let (status, body) = globex
        .post(
            "/v1/channels",
            json!({
                "kind": "file",
                "datasets": [
                    {
                        "dataset": "tpch.orders",
                        "columns": ["o_orderkey", "o_custkey", "o_totalprice", "o_orderdate"],
                        "row_filter": "o_totalprice > 200000"
                    },
                    { "dataset": "feed.events" }
                ]
            }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let order = body["id"].as_str().expect("an order id");
    loop {
        let (_, state) = globex.get(&format!("/v1/orders/{order}")).await;
        match state["state"].as_str() {
            Some("ready") => break,
            Some("failed") => panic!("the order failed: {state}"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let ready = event(&globex, after, "channel.ready").await;
    let channel = ready["channel"].as_str().expect("a channel").to_owned();
    let profile = ready["connection"]["profile"].clone();
    let token = profile["bearerToken"].as_str().expect("a token").to_owned();
    let endpoint = profile["endpoint"]
        .as_str()
        .expect("an endpoint")
        .to_owned();
    // The connector reads each table as the channel's model over pgwire reads it.
    let orders = over_pgwire(
        &gateway,
        "SELECT count(*), sum(o_orderkey)::bigint FROM tpch.orders WHERE o_totalprice > 200000",
    )
    .await;
    let events_v1 = over_pgwire(
        &gateway,
        "SELECT count(*), sum(id)::bigint FROM feed.events",
    )
    .await;
    assert_eq!(events_v1, (500, (0..1_000).step_by(2).sum::<i64>()));
    let tables = load_tables(&profile, delivery.path()).await;
    assert_eq!(
        tables,
        vec![
            (format!("{channel}.feed.events"), events_v1.0, events_v1.1),
            (format!("{channel}.tpch.orders"), orders.0, orders.1),
        ]
    );
    // The files handed out are metered, as the export that wrote them was.
    let client = gateway.connect("globex").await;
    let handouts: i64 = client
        .query_one(
            "SELECT count(*) FROM tollgate.usage_records WHERE protocol = 'delta_sharing' AND rows_returned > 0",
            &[],
        )
        .await
        .expect("usage")
        .get(0);
    assert!(
        handouts >= 4,
        "two exports and two handouts at least: {handouts}"
    );
    // A file URL works with ranges, then expires.
    let table_url = format!("{endpoint}/shares/{channel}/schemas/feed/tables/events");
    let (status, headers, lines) = sharing(
        Method::POST,
        &format!("{table_url}/query"),
        &token,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{lines}");
    assert_eq!(headers["delta-table-version"], "1");
    let file: Value =
        serde_json::from_str(lines.lines().nth(2).expect("a file line")).expect("json");
    let url = file["file"]["url"].as_str().expect("a URL").to_owned();
    let size = file["file"]["size"].as_u64().expect("a size");
    let ranged = reqwest::Client::new()
        .get(&url)
        .header("range", "bytes=0-3")
        .send()
        .await
        .expect("a range");
    assert_eq!(ranged.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        ranged.headers()["content-range"],
        format!("bytes 0-3/{size}").as_str()
    );
    assert_eq!(ranged.bytes().await.expect("bytes").as_ref(), b"PAR1");
    tokio::time::sleep(Duration::from_secs(URL_TTL + 1)).await;
    let expired = reqwest::get(&url).await.expect("a response");
    assert_eq!(expired.status(), StatusCode::FORBIDDEN);
    // Another tenant's login neither lists nor reads the share.
    let basic = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode("acme:acme")
    };
    let acme_get = |path: String| {
        let basic = basic.clone();
        async move {
            reqwest::Client::new()
                .get(path)
                .header("authorization", format!("Basic {basic}"))
                .send()
                .await
                .expect("a response")
        }
    };
    let listed: Value = serde_json::from_str(
        &acme_get(format!("{endpoint}/shares"))
            .await
            .text()
            .await
            .expect("a body"),
    )
    .expect("json");
    assert_eq!(listed["items"], json!([]));
    for path in [
        format!("{endpoint}/shares/{channel}/all-tables"),
        format!("{table_url}/metadata"),
        format!("{table_url}/version"),
    ] {
        assert_eq!(
            acme_get(path.clone()).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    let (status, _, _) = sharing(
        Method::GET,
        &format!("{endpoint}/shares"),
        "nobody.wrong",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // New rows land; a refresh makes version 2, announced by event; version 1 stays.
    write_events(feed.path(), "part-1.parquet", 1_000, 1_000);
    let (_, events) = globex.get("/v1/events?after=0").await;
    let after = events["next_after"].as_i64().unwrap_or(0);
    let admin = Api::new(&gateway, ADMIN);
    let (status, refreshed) = admin
        .post(&format!("/v1/admin/channels/{channel}/refresh"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    assert_eq!(refreshed["versions"]["feed.events"], 2);
    let announced = event(&globex, after, "channel.refreshed").await;
    assert_eq!(announced["versions"]["feed.events"], 2);
    let (_, headers, _) = sharing(Method::GET, &format!("{table_url}/version"), &token, None).await;
    assert_eq!(headers["delta-table-version"], "2");
    let events_v2 = over_pgwire(
        &gateway,
        "SELECT count(*), sum(id)::bigint FROM feed.events",
    )
    .await;
    assert_eq!(events_v2.0, 1_000);
    let tables = load_tables(&profile, delivery.path()).await;
    assert!(
        tables.contains(&(format!("{channel}.feed.events"), events_v2.0, events_v2.1)),
        "{tables:?}"
    );
    let (status, headers, lines) = sharing(
        Method::POST,
        &format!("{table_url}/query"),
        &token,
        Some(json!({ "version": 1 })),
    )
    .await;
    assert_eq!(
        (status, &headers["delta-table-version"]),
        (StatusCode::OK, &"1".parse().expect("header"))
    );
    let rows: u64 = lines
        .lines()
        .skip(2)
        .map(|line| {
            let file: Value = serde_json::from_str(line).expect("json");
            let stats: Value =
                serde_json::from_str(file["file"]["stats"].as_str().expect("stats")).expect("json");
            stats["numRecords"].as_u64().expect("rows")
        })
        .sum();
    assert_eq!(rows, 500);
    // Revoked: the token is refused.
    let (status, _) = globex
        .call(Method::DELETE, &format!("/v1/channels/{channel}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = sharing(Method::GET, &format!("{endpoint}/shares"), &token, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    gateway.stop().await;
}
