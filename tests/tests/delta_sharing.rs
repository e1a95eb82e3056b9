//! `file` channels with the `delta-sharing` Python connector: a channel ordered through the
//! control API is written as Parquet files and read with `load_as_pandas` (values equal to
//! the same query over pgwire); file URLs expire; another tenant cannot list or read the
//! share; a refresh adds a version with the dataset's new rows, and the old version stays
//! readable. Delivered into S3 (moto), the files are read by presigned URLs, with the
//! connector and with Spark, and new source files make a new version on schedule.

use std::path::Path;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tollgate_catalog::{
    DatasetOptions, GrantOptions, HumanDuration, S3DeliveryOptions, SourceOptions,
};
use tollgate_tests::TestGateway;
use tollgate_tests::api::{ADMIN, Api, GLOBEX, event};
use tollgate_tests::moto::{ACCESS_KEY, MotoServer, REGION, SECRET_KEY};
use tollgate_tests::sharing::{
    file_actions, load_tables, order_file_channel, sharing, spark_read_table, write_events,
    write_labels,
};

/// Seconds a file URL stays valid in these tests.
const URL_TTL: u64 = 4;

/// The demo gateway with globex granted the even rows of `feed.events` (`events/` of the
/// test's directory `feed`) and all of `feed.yearly` (`yearly/`, partitioned by `year`),
/// file URLs valid for [`URL_TTL`] seconds, and its control plane's settings changed by
/// `control`.
async fn gateway(
    feed: &Path,
    control: impl FnOnce(&mut tollgate_catalog::ControlOptions) + Send + 'static,
) -> TestGateway {
    let feed = feed.to_owned();
    for (year, rows) in [(2023, 300), (2024, 400)] {
        write_labels(
            &feed.join(format!("yearly/year={year}")),
            "part-0.parquet",
            rows,
        );
    }
    write_events(&feed.join("events"), "part-0.parquet", 0, 1_000);
    TestGateway::start_with(move |options| {
        options
            .sources
            .insert("feed".to_owned(), SourceOptions::Local { path: feed });
        for dataset in [
            "id = \"feed.events\"\nsource = \"feed\"\npath = \"events/\"\n",
            "id = \"feed.yearly\"\nsource = \"feed\"\npath = \"yearly/\"\n\
             partition_columns = [{ name = \"year\", type = \"int\" }]\n",
        ] {
            let dataset: DatasetOptions = toml::from_str(dataset).expect("a dataset");
            options.datasets.push(dataset);
        }
        for (dataset, row_filter) in [
            ("feed.events", Some("id % 2 = 0".to_owned())),
            ("feed.yearly", None),
        ] {
            options.grants.push(GrantOptions {
                tenant: "globex".to_owned(),
                dataset: dataset.to_owned(),
                columns: None,
                row_filter,
                source: None,
            });
        }
        if let Some(options) = &mut options.control {
            options.file_url_ttl = HumanDuration(Duration::from_secs(URL_TTL));
            control(options);
        }
    })
    .await
}

/// (rows, sum of the first column) of `sql` over pgwire as globex.
async fn over_pgwire(gateway: &TestGateway, sql: &str) -> (i64, i64) {
    let client = gateway.connect("globex").await;
    let row = client.query_one(sql, &[]).await.expect("query");
    (row.get(0), row.get::<_, Option<i64>>(1).unwrap_or(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_channel_is_read_with_the_delta_sharing_connector() {
    let feed = tempfile::tempdir().expect("a feed directory");
    let delivery = tempfile::tempdir().expect("a delivery directory");
    let delivery_path = delivery.path().to_owned();
    let gateway = gateway(feed.path(), move |control| {
        control.delivery_path = delivery_path;
    })
    .await;
    let globex = Api::new(&gateway, GLOBEX);
    let channel = order_file_channel(
        &globex,
        json!([
            {
                "dataset": "tpch.orders",
                "columns": ["o_orderkey", "o_custkey", "o_totalprice", "o_orderdate"],
                "row_filter": "o_totalprice > 200000"
            },
            { "dataset": "feed.events" },
            { "dataset": "feed.yearly" }
        ]),
    )
    .await;
    let channel_id = &channel.id;
    let (endpoint, token) = (channel.endpoint().to_owned(), channel.token().to_owned());
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
    // The partition column is rebuilt from the files' partition values.
    let yearly = over_pgwire(
        &gateway,
        "SELECT count(*), sum(year)::bigint FROM feed.yearly",
    )
    .await;
    assert_eq!(yearly, (700, 300 * 2023 + 400 * 2024));
    let tables = load_tables(&channel, delivery.path()).await;
    assert_eq!(
        tables,
        vec![
            (
                format!("{channel_id}.feed.events"),
                events_v1.0,
                events_v1.1
            ),
            (format!("{channel_id}.feed.yearly"), yearly.0, yearly.1),
            (format!("{channel_id}.tpch.orders"), orders.0, orders.1),
        ]
    );
    let (_, _, lines) = sharing(
        Method::POST,
        &format!("{}/query", channel.table_url("feed", "yearly")),
        &token,
        Some(json!({})),
    )
    .await;
    let metadata: Value =
        serde_json::from_str(lines.lines().nth(1).expect("metadata")).expect("json");
    assert_eq!(metadata["metaData"]["partitionColumns"], json!(["year"]));
    let partitions: Vec<(Value, u64)> = file_actions(&lines)
        .iter()
        .map(|file| {
            let stats: Value =
                serde_json::from_str(file["stats"].as_str().expect("stats")).expect("json");
            (
                file["partitionValues"].clone(),
                stats["numRecords"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        partitions,
        vec![
            (json!({ "year": "2023" }), 300),
            (json!({ "year": "2024" }), 400)
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
    let table_url = channel.table_url("feed", "events");
    let (status, headers, lines) = sharing(
        Method::POST,
        &format!("{table_url}/query"),
        &token,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{lines}");
    assert_eq!(headers["delta-table-version"], "1");
    let file = file_actions(&lines).remove(0);
    let url = file["url"].as_str().expect("a URL").to_owned();
    let size = file["size"].as_u64().expect("a size");
    // Statistics let readers skip files: the bounds of the even ids kept, and no nulls.
    let stats: Value = serde_json::from_str(file["stats"].as_str().expect("stats")).expect("json");
    assert_eq!(stats["numRecords"], 500);
    assert_eq!(stats["minValues"]["id"], 0);
    assert_eq!(stats["maxValues"]["id"], 998);
    assert_eq!(stats["minValues"]["label"], "event-0");
    assert_eq!(stats["nullCount"]["label"], 0);
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
        format!("{endpoint}/shares/{channel_id}/all-tables"),
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
    write_events(&feed.path().join("events"), "part-1.parquet", 1_000, 1_000);
    let (_, events) = globex.get("/v1/events?after=0").await;
    let after = events["next_after"].as_i64().unwrap_or(0);
    let admin = Api::new(&gateway, ADMIN);
    let (status, refreshed) = admin
        .post(
            &format!("/v1/admin/channels/{channel_id}/refresh"),
            json!({}),
        )
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
    let tables = load_tables(&channel, delivery.path()).await;
    assert!(
        tables.contains(&(
            format!("{channel_id}.feed.events"),
            events_v2.0,
            events_v2.1
        )),
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
    let rows: u64 = file_actions(&lines)
        .iter()
        .map(|file| {
            let stats: Value =
                serde_json::from_str(file["stats"].as_str().expect("stats")).expect("json");
            stats["numRecords"].as_u64().expect("rows")
        })
        .sum();
    assert_eq!(rows, 500);
    // Revoked: the token is refused.
    let (status, _) = globex
        .call(Method::DELETE, &format!("/v1/channels/{channel_id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = sharing(Method::GET, &format!("{endpoint}/shares"), &token, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    gateway.stop().await;
}

/// The keys of the delivery bucket, one per line.
fn bucket_keys(moto: &MotoServer) -> String {
    moto.python(
        "print('\\n'.join(o['Key'] for o in client('s3').list_objects_v2(Bucket='deliveries')['Contents']))",
    )
}

/// Rows of `feed.events` globex's channel holds after `files` files of 1,000 rows: the
/// even ids, and their sum.
fn even_events(files: i64) -> (i64, i64) {
    (files * 500, (0..files * 1_000).step_by(2).sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_channel_delivered_into_s3_is_read_by_presigned_urls_and_refreshed_on_schedule() {
    let moto = MotoServer::start();
    moto.python("client('s3').create_bucket(Bucket='deliveries')");
    let feed = tempfile::tempdir().expect("a feed directory");
    let scratch = tempfile::tempdir().expect("a directory for profiles");
    let endpoint = moto.endpoint().to_owned();
    let gateway = gateway(feed.path(), move |control| {
        control.delivery_s3 = Some(S3DeliveryOptions {
            bucket: "deliveries".to_owned(),
            prefix: "tollgate/out".to_owned(),
            region: Some(REGION.to_owned()),
            endpoint: Some(endpoint),
            access_key_id: Some(ACCESS_KEY.to_owned()),
            secret_access_key: Some(SECRET_KEY.to_owned()),
            session_token: None,
        });
        control.file_refresh_interval = HumanDuration(Duration::from_secs(1));
    })
    .await;
    let globex = Api::new(&gateway, GLOBEX);
    let channel = order_file_channel(
        &globex,
        json!([
            { "dataset": "feed.events" },
            {
                "dataset": "tpch.orders",
                "columns": ["o_orderkey", "o_totalprice", "o_orderdate"],
                "row_filter": "o_totalprice > 300000"
            }
        ]),
    )
    .await;
    // The files are in the bucket, under the prefix, and nowhere else.
    let keys = bucket_keys(&moto);
    assert!(
        keys.lines().all(
            |key| key.starts_with(&format!("tollgate/out/globex/{}/", channel.id))
                && key.ends_with(".parquet")
        ),
        "{keys}"
    );
    assert_eq!(keys.lines().count(), 2, "{keys}");
    // The connector and Spark read the tables from presigned S3 URLs, as pgwire reads them.
    let tables = load_tables(&channel, scratch.path()).await;
    let orders = over_pgwire(
        &gateway,
        "SELECT count(*), sum(o_orderkey)::bigint FROM tpch.orders WHERE o_totalprice > 300000",
    )
    .await;
    assert_eq!(
        tables,
        vec![
            (
                format!("{}.feed.events", channel.id),
                even_events(1).0,
                even_events(1).1
            ),
            (format!("{}.tpch.orders", channel.id), orders.0, orders.1),
        ]
    );
    let spark = spark_read_table(&channel, scratch.path(), "feed.events").await;
    assert_eq!(spark, (1, even_events(1).0, even_events(1).1));
    let (status, headers, lines) = sharing(
        Method::POST,
        &format!("{}/query", channel.table_url("feed", "events")),
        channel.token(),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{lines}");
    assert_eq!(headers["delta-table-version"], "1");
    let file = file_actions(&lines).remove(0);
    let url = reqwest::Url::parse(file["url"].as_str().expect("a URL")).expect("a URL");
    assert_eq!(url.origin().ascii_serialization(), moto.endpoint());
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query["X-Amz-Expires"], URL_TTL.to_string());
    assert!(query.contains_key("X-Amz-Signature"), "{url}");
    let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
    let expires = file["expirationTimestamp"].as_u64().expect("an expiry") / 1_000;
    assert!(
        (now..=now + URL_TTL).contains(&expires),
        "{expires} vs {now}"
    );
    // New files in the feed: the schedule writes version 2 of that dataset alone.
    let (_, events) = globex.get("/v1/events?after=0").await;
    let after = events["next_after"].as_i64().unwrap_or(0);
    write_events(&feed.path().join("events"), "part-1.parquet", 1_000, 1_000);
    let refreshed = event(&globex, after, "channel.refreshed").await;
    assert_eq!(refreshed["channel"], channel.id.as_str());
    assert_eq!(refreshed["versions"], json!({ "feed.events": 2 }));
    // Its files joined the bucket; no other attempt left any behind.
    assert_eq!(bucket_keys(&moto).lines().count(), 3);
    let tables = load_tables(&channel, scratch.path()).await;
    assert!(
        tables.contains(&(
            format!("{}.feed.events", channel.id),
            even_events(2).0,
            even_events(2).1
        )),
        "{tables:?}"
    );
    // Nothing changed since: no version 3 after several rounds.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let version = |schema: &str, table: &str| {
        let url = format!("{}/version", channel.table_url(schema, table));
        let token = channel.token().to_owned();
        async move {
            let (_, headers, _) = sharing(Method::GET, &url, &token, None).await;
            headers["delta-table-version"].clone()
        }
    };
    assert_eq!(version("feed", "events").await, "2");
    assert_eq!(version("tpch", "orders").await, "1");
    gateway.stop().await;
}
