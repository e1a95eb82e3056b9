//! `nats` channels against a private NATS server in operator mode: a channel ordered
//! through the control API receives its snapshot, then exactly the matching rows of each
//! new file (equal to the same query over pgwire); a durable consumer resumes without loss
//! or duplicates; a version the provider publishes arrives whole; rotated credentials read it, the old ones too for the overlap; another
//! tenant's credentials cannot read the subjects, and its stream keeps what its profile
//! says; revocation ends
//! the credentials and the pushes; usage records with protocol `push` match what was
//! delivered; a gateway killed with -9 in the middle of a push delivers every row exactly
//! once after its restart; rows larger than the server's `max_payload` go in smaller
//! messages, and a row too large alone fails the push with a `channel.push_failed` event.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tollgate_catalog::{ByteSize, HumanDuration};
use tollgate_tests::api::{ACME, ADMIN, Api, GLOBEX, event};
use tollgate_tests::nats::{NatsServer, connect, consumer, fetch, ids};
use tollgate_tests::process::{GatewayProcess, write_config};
use tollgate_tests::push::{
    POLL, order_push_channel, over_pgwire, pushed_usage, sorted, with_feed,
};
use tollgate_tests::sharing::{write_events, write_labelled_events};
use tollgate_tests::{TestGateway, demo_options};

/// Every message of `consumer` until `expected` ids arrived (or 30 seconds passed).
async fn receive_until(
    consumer: &async_nats::jetstream::consumer::Consumer<
        async_nats::jetstream::consumer::pull::Config,
    >,
    expected: usize,
) -> Vec<i64> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut received = Vec::new();
    while received.len() < expected && Instant::now() < deadline {
        let messages = fetch(consumer, 500, Duration::from_millis(500)).await;
        assert!(
            messages
                .iter()
                .all(|m| m.dataset == "feed.events" && m.version > 0)
        );
        received.extend(ids(&messages));
    }
    received
}

/// The ids globex's rows matching `filter` have over pgwire, once they all arrived at
/// `reader` (and nothing else did).
async fn receive_rows_of(
    gateway: &TestGateway,
    reader: &async_nats::jetstream::consumer::Consumer<
        async_nats::jetstream::consumer::pull::Config,
    >,
    filter: &str,
) -> Vec<i64> {
    let sql = format!("SELECT id FROM feed.events WHERE {filter} ORDER BY id");
    let expected = over_pgwire(gateway, "globex", &sql).await;
    let received = receive_until(reader, expected.len()).await;
    assert_eq!(sorted(&received), expected, "{filter}");
    received
}

/// A client connected with a ready event's `connection`, the channel's stream, and a
/// durable consumer `reader` of its subject.
async fn read_channel(
    connection: &Value,
) -> (
    async_nats::Client,
    String,
    async_nats::jetstream::consumer::Consumer<async_nats::jetstream::consumer::pull::Config>,
) {
    let text = |field: &str| connection[field].as_str().expect(field).to_owned();
    let client = connect(&text("nats_url"), &text("creds"))
        .await
        .expect("the tenant's credentials");
    let stream = text("stream");
    let reader = consumer(&client, &stream, "reader", &text("subject")).await;
    (client, stream, reader)
}

/// Messages in `stream` now.
async fn stored(client: &async_nats::Client, stream: &str) -> u64 {
    let mut stream = async_nats::jetstream::new(client.clone())
        .get_stream(stream)
        .await
        .expect("the tenant's stream");
    stream.info().await.expect("stream info").state.messages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_channel_pushes_its_snapshot_then_each_new_file_exactly_once() {
    let dir = tempfile::tempdir().expect("a directory");
    let feed = dir.path().join("feed");
    let nats_dir = dir.path().join("nats");
    std::fs::create_dir_all(&nats_dir).expect("the NATS directory");
    let nats = NatsServer::start(&nats_dir);
    write_events(&feed.join("events"), "part-0.parquet", 0, 1_000);
    let (feed_dir, push) = (feed.clone(), nats.push_options(POLL, 40));
    let gateway = TestGateway::start_with(move |options| {
        with_feed(options, &feed_dir, |control| control.nats_push = Some(push));
        // globex's profile keeps its pushed messages two hours, at most 64 MiB, and has
        // at most 4 unacknowledged at once.
        if let Some(profile) = options.profiles.get_mut("S") {
            profile.push_retention = HumanDuration(Duration::from_secs(7_200));
            profile.push_max_bytes = Some(ByteSize(64 << 20));
            profile.push_in_flight = 4;
        }
    })
    .await;
    let globex = Api::new(&gateway, GLOBEX);
    let acme = Api::new(&gateway, ACME);

    // The snapshot: globex's even ids, narrowed by the channel to multiples of 3.
    let (channel, connection) = order_push_channel(&globex, "nats", "id % 3 = 0").await;
    let url = connection["nats_url"].as_str().expect("a URL").to_owned();
    let creds = connection["creds"].as_str().expect("creds").to_owned();
    let subject = connection["subject"]
        .as_str()
        .expect("a subject")
        .to_owned();
    assert_eq!(subject, format!("tollgate.push.globex.{channel}"));
    let stream = connection["stream"].as_str().expect("a stream").to_owned();
    let client = connect(&url, &creds).await.expect("globex's credentials");
    let reader = consumer(&client, &stream, "reader", &subject).await;
    let snapshot = receive_rows_of(&gateway, &reader, "id % 3 = 0").await;
    assert_eq!(snapshot.len(), 167);

    // A new file: exactly its matching rows.
    write_events(&feed.join("events"), "part-1.parquet", 1_000, 300);
    let new = receive_rows_of(&gateway, &reader, "id % 3 = 0 AND id >= 1000").await;
    assert_eq!(new.len(), 50);

    // The subscriber leaves; a file lands meanwhile; the durable consumer resumes.
    drop(reader);
    drop(client);
    write_events(&feed.join("events"), "part-2.parquet", 1_300, 300);
    tokio::time::sleep(POLL * 5).await;
    let client = connect(&url, &creds).await.expect("globex's credentials");
    let reader = consumer(&client, &stream, "reader", &subject).await;
    let resumed = receive_rows_of(&gateway, &reader, "id % 3 = 0 AND id >= 1300").await;
    assert!(
        fetch(&reader, 10, Duration::from_millis(500))
            .await
            .is_empty(),
        "no duplicates"
    );
    let delivered = snapshot.len() + new.len() + resumed.len();
    let all: BTreeSet<i64> = snapshot
        .iter()
        .chain(&new)
        .chain(&resumed)
        .copied()
        .collect();
    assert_eq!(all.len(), delivered, "each row once");

    // The provider publishes the dataset: the channel gets all of it again, as it sees it.
    let (status, body) = Api::new(&gateway, ADMIN)
        .post(
            "/v1/admin/datasets/feed.events/publish",
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["publication"], 1);
    let republished = receive_until(&reader, delivered).await;
    assert_eq!(
        sorted(&republished),
        all.iter().copied().collect::<Vec<i64>>()
    );

    // Usage: one record per file and publication, rows as delivered.
    let (records, rows) = pushed_usage(&gateway, "globex", &channel).await;
    assert_eq!((records, rows), (4, 2 * delivered as i64));

    // Rotation: new credentials read the stream; the old ones work for the overlap.
    let (status, rotated) = globex
        .post(
            &format!("/v1/channels/{channel}/credentials"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rotated}");
    let new_creds = rotated["connection"]["creds"].as_str().expect("new creds");
    assert_ne!(new_creds, creds);
    let rotated_client = connect(&url, new_creds).await.expect("the new credentials");
    assert_eq!(
        stored(&rotated_client, &stream).await,
        stored(&client, &stream).await
    );
    connect(&url, &creds)
        .await
        .expect("the old credentials, within the overlap");

    // acme's own channel gets acme's rows; globex's credentials cannot read acme's subjects.
    let (acme_channel, acme_connection) = order_push_channel(&acme, "nats", "id < 100").await;
    let acme_client = connect(&url, acme_connection["creds"].as_str().expect("creds"))
        .await
        .expect("acme's credentials");
    let acme_subject = format!("tollgate.push.acme.{acme_channel}");
    let acme_reader = consumer(&acme_client, &stream, "acme", &acme_subject).await;
    let acme_rows = receive_until(&acme_reader, 50).await;
    assert_eq!(
        sorted(&acme_rows),
        (1..100).step_by(2).collect::<Vec<i64>>()
    );
    let errors = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&errors);
    let spy = async_nats::ConnectOptions::new()
        .credentials(&creds)
        .expect("creds")
        .event_callback(move |event| {
            let seen = Arc::clone(&seen);
            async move { seen.lock().expect("errors").push(event.to_string()) }
        })
        .connect(&url)
        .await
        .expect("globex's credentials");
    let mut stolen = spy
        .subscribe(acme_subject.clone())
        .await
        .expect("a subscription");
    let got = tokio::time::timeout(
        Duration::from_secs(2),
        futures::StreamExt::next(&mut stolen),
    )
    .await;
    assert!(!matches!(got, Ok(Some(_))), "globex read acme's subject");
    assert!(
        errors
            .lock()
            .expect("errors")
            .iter()
            .any(|e| e.to_lowercase().contains("permissions violation")),
        "{:?}",
        errors.lock().expect("errors")
    );
    // Globex's stream is globex's alone: acme's channel is not in it.
    let globex_stream = async_nats::jetstream::new(client.clone())
        .get_stream(&stream)
        .await
        .expect("globex's stream")
        .info()
        .await
        .expect("stream info")
        .config
        .clone();
    assert_eq!(
        globex_stream.subjects,
        vec!["tollgate.push.globex.>".to_owned()]
    );
    assert_eq!(globex_stream.max_age, Duration::from_secs(7_200));
    assert_eq!(globex_stream.max_bytes, 64 << 20);

    // Revoked: the credentials are refused and nothing more is pushed.
    let (status, body) = globex
        .call(Method::DELETE, &format!("/v1/channels/{channel}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    for revoked in [creds.as_str(), new_creds] {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match connect(&url, revoked).await {
                Err(_) => break,
                Ok(_) if Instant::now() < deadline => tokio::time::sleep(POLL).await,
                Ok(_) => panic!("revoked credentials still connect"),
            }
        }
    }
    write_events(&feed.join("events"), "part-3.parquet", 1_600, 300);
    tokio::time::sleep(POLL * 10).await;
    assert_eq!(
        pushed_usage(&gateway, "globex", &channel).await,
        (records, rows)
    );
    let (_, acme_rows_pushed) = pushed_usage(&gateway, "acme", &acme_channel).await;
    assert_eq!(
        acme_rows_pushed, 50,
        "acme's channel gets nothing of ids >= 100"
    );
    drop(nats);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_killed_in_the_middle_of_a_push_delivers_every_row_once_after_restart() {
    let dir = tempfile::tempdir().expect("a directory");
    let feed = dir.path().join("feed");
    let nats_dir = dir.path().join("nats");
    std::fs::create_dir_all(&nats_dir).expect("the NATS directory");
    let nats = NatsServer::start(&nats_dir);
    write_events(&feed.join("events"), "part-0.parquet", 0, 1_000);
    let mut options = demo_options(dir.path());
    let push = nats.push_options(POLL, 20);
    with_feed(&mut options, &feed, |control| {
        control.nats_push = Some(push)
    });
    let http = tollgate_tests::process::free_port();
    if let Some(listener) = &mut options.http {
        listener.listen = http;
    }
    let config = write_config(dir.path(), &options);
    let mut gateway = GatewayProcess::spawn(&config, &dir.path().join("gateway-1.log"));
    let globex = Api::at(http, GLOBEX);
    let (channel, connection) = order_push_channel(&globex, "nats", "id >= 0").await;
    let (client, stream, reader) = read_channel(&connection).await;
    assert_eq!(receive_until(&reader, 500).await.len(), 500);

    // A big file: killed once its first messages arrived.
    write_events(&feed.join("events"), "part-1.parquet", 1_000, 400_000);
    let mut before = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while before.is_empty() && Instant::now() < deadline {
        before = ids(&fetch(&reader, 50, Duration::from_millis(100)).await);
    }
    gateway.kill();
    assert!(!before.is_empty(), "nothing of the big file arrived");
    let at_kill = stored(&client, &stream).await;
    let mut restarted = GatewayProcess::spawn(&config, &dir.path().join("gateway-2.log"));
    let rest = receive_until(&reader, 200_000 - before.len()).await;
    assert!(
        fetch(&reader, 10, Duration::from_millis(1_000))
            .await
            .is_empty(),
        "no duplicates"
    );
    let all: Vec<i64> = before.iter().chain(&rest).copied().collect();
    assert!(all.len() < 200_000 + 1, "{} rows", all.len());
    assert_eq!(
        sorted(&all),
        (1_000..401_000).step_by(2).collect::<Vec<i64>>(),
        "every row once"
    );
    // The push had not ended when the gateway was killed.
    let in_the_end = stored(&client, &stream).await;
    assert!(
        at_kill < in_the_end,
        "{at_kill} messages at the kill, {in_the_end} in the end"
    );
    restarted.kill();

    // The ledger bills each pushed row once: the killed attempt left no record.
    let records = tollgate_tests::process::usage_export(&config, &[]);
    let pushed: Vec<&Value> = records
        .iter()
        .filter(|r| {
            r["protocol"] == "push" && r["channel"] == channel.as_str() && r["outcome"] == "ok"
        })
        .collect();
    let rows: u64 = pushed
        .iter()
        .map(|r| r["rows_returned"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(rows, 200_500, "{pushed:?}");
    drop(nats);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_beyond_the_servers_max_payload_go_in_smaller_messages_and_a_row_too_large_fails_with_an_event()
 {
    let dir = tempfile::tempdir().expect("a directory");
    let feed = dir.path().join("feed");
    let nats_dir = dir.path().join("nats");
    std::fs::create_dir_all(&nats_dir).expect("the NATS directory");
    let max_payload = 8 * 1024;
    let nats = NatsServer::start_configured(&nats_dir, &format!("max_payload: {max_payload}"));
    // globex's 1,000 rows of this file are about 36 KiB of JSON lines: one message of
    // `message_rows` would be refused.
    write_labelled_events(&feed.join("events"), "part-0.parquet", 0, 2_000, |id| {
        format!("event-{id}-{}", "x".repeat(6))
    });
    let (feed_dir, push) = (feed.clone(), nats.push_options(POLL, 10_000));
    let gateway = TestGateway::start_with(move |options| {
        with_feed(options, &feed_dir, |control| control.nats_push = Some(push));
    })
    .await;
    let globex = Api::new(&gateway, GLOBEX);
    let (channel, connection) = order_push_channel(&globex, "nats", "id >= 0").await;
    let (_client, _stream, reader) = read_channel(&connection).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut messages = Vec::new();
    while ids(&messages).len() < 1_000 && Instant::now() < deadline {
        messages.extend(fetch(&reader, 100, Duration::from_millis(500)).await);
    }
    let expected = over_pgwire(&gateway, "globex", "SELECT id FROM feed.events ORDER BY id").await;
    assert_eq!(sorted(&ids(&messages)), expected);
    assert!(messages.len() >= 5, "{} messages", messages.len());
    assert!(messages.iter().all(|m| m.payload.len() <= max_payload));

    // A row larger alone than the server takes: the push fails, the tenant is told why,
    // and nothing of the file is published.
    let (_, events) = globex.get("/v1/events?after=0").await;
    let after = events["next_after"].as_i64().unwrap_or(0);
    write_labelled_events(&feed.join("events"), "part-1.parquet", 2_000, 1, |_| {
        "y".repeat(max_payload)
    });
    let failed = event(&globex, after, "channel.push_failed").await;
    assert_eq!(failed["channel"], channel.as_str());
    assert_eq!(failed["dataset"], "feed.events");
    let reason = failed["error"].as_str().expect("a reason");
    assert!(reason.contains("more than the"), "{reason}");
    assert!(
        fetch(&reader, 10, Duration::from_millis(500))
            .await
            .is_empty()
    );
    gateway.stop().await;
}
