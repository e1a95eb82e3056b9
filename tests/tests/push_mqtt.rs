//! `mqtt` channels against a private Mosquitto with its dynamic security plugin: a channel
//! ordered through the control API publishes its snapshot at QoS 1 (in messages cut to
//! the broker's maximum packet size), then exactly the
//! matching rows of each new file (equal to the same query over pgwire); the channel's
//! persistent session, opened by the gateway before the ready event, holds what was
//! published before the tenant first connected and while it was away; another tenant's login
//! is refused the topic; revocation closes the login's connection and refuses it; usage
//! records with protocol `push` match what was delivered; a gateway killed with -9 in the
//! middle of a push delivers every row after its restart, once each by message id.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tollgate_tests::api::{ACME, Api, GLOBEX};
use tollgate_tests::mqtt::{MqttServer, Subscriber, ids};
use tollgate_tests::process::{GatewayProcess, free_port, usage_export, write_config};
use tollgate_tests::push::{
    POLL, order_push_channel, over_pgwire, pushed_usage, sorted, with_feed,
};
use tollgate_tests::sharing::write_events;
use tollgate_tests::{TestGateway, demo_options};

/// What a ready event's connection tells: where and what to read, and as whom.
struct Login {
    url: String,
    topic: String,
    /// The persistent session already subscribed to the topic.
    client_id: String,
    username: String,
    password: String,
}

impl Login {
    fn of(connection: &Value) -> Self {
        let field = |name: &str| connection[name].as_str().expect(name).to_owned();
        Self {
            url: field("mqtt_url"),
            topic: field("topic"),
            client_id: field("client_id"),
            username: field("username"),
            password: field("password"),
        }
    }

    /// Connects to the channel's own session, which holds everything published so far.
    async fn resume(&self) -> Subscriber {
        self.connect(&self.client_id).await
    }

    /// Connects as this login in the session `client_id`.
    async fn connect(&self, client_id: &str) -> Subscriber {
        Subscriber::connect(&self.url, client_id, &self.username, &self.password).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mqtt_channel_publishes_its_snapshot_then_each_new_file() {
    let dir = tempfile::tempdir().expect("a directory");
    let feed = dir.path().join("feed");
    let broker_dir = dir.path().join("mqtt");
    std::fs::create_dir_all(&broker_dir).expect("the broker's directory");
    // 40 rows of JSON lines are more than the broker takes in one packet.
    let max_packet_size = 2_048;
    let broker =
        MqttServer::start_configured(&broker_dir, &format!("max_packet_size {max_packet_size}"));
    write_events(&feed.join("events"), "part-0.parquet", 0, 1_000);
    let (feed_dir, push) = (feed.clone(), broker.push_options(POLL, 40));
    let gateway = TestGateway::start_with(move |options| {
        with_feed(options, &feed_dir, |control| control.mqtt_push = Some(push));
        // globex's profile waits for the broker after every 2 unacknowledged messages.
        if let Some(profile) = options.profiles.get_mut("S") {
            profile.push_in_flight = 2;
        }
    })
    .await;
    let globex = Api::new(&gateway, GLOBEX);
    let acme = Api::new(&gateway, ACME);

    let (channel, connection) = order_push_channel(&globex, "mqtt", "id % 3 = 0").await;
    let login = Login::of(&connection);
    assert_eq!(login.topic, format!("tollgate/globex/{channel}"));
    let mut reader = login.resume().await;
    assert!(
        reader.subscribe(&login.topic).await,
        "globex may read its topic"
    );
    let mut seen = HashSet::new();
    let expected = over_pgwire(
        &gateway,
        "globex",
        "SELECT id FROM feed.events WHERE id % 3 = 0 ORDER BY id",
    )
    .await;
    let (snapshot, _) = reader.receive(expected.len() as u64, &mut seen).await;
    assert_eq!(sorted(&ids(&snapshot)), expected);
    assert!(
        snapshot.len() > expected.len().div_ceil(40),
        "cut to fit the broker"
    );
    assert!(
        snapshot
            .iter()
            .all(|m| m.rows < 40 && m.payload.len() < max_packet_size)
    );

    write_events(&feed.join("events"), "part-1.parquet", 1_000, 300);
    let (new, _) = reader.receive(50, &mut seen).await;
    let expected_new = over_pgwire(
        &gateway,
        "globex",
        "SELECT id FROM feed.events WHERE id % 3 = 0 AND id >= 1000 ORDER BY id",
    )
    .await;
    assert_eq!(sorted(&ids(&new)), expected_new);

    // Away while a file lands: the persistent session keeps its messages.
    reader.disconnect().await;
    write_events(&feed.join("events"), "part-2.parquet", 1_300, 300);
    tokio::time::sleep(POLL * 10).await;
    let mut reader = login.resume().await;
    let (resumed, repeated) = reader.receive(50, &mut seen).await;
    let expected_resumed = over_pgwire(
        &gateway,
        "globex",
        "SELECT id FROM feed.events WHERE id % 3 = 0 AND id >= 1300 ORDER BY id",
    )
    .await;
    assert_eq!(sorted(&ids(&resumed)), expected_resumed);
    assert_eq!(repeated, 0);
    assert!(reader.drain(Duration::from_millis(500)).await.is_empty());
    let delivered: Vec<i64> = [snapshot, new, resumed]
        .iter()
        .flat_map(|m| ids(m))
        .collect();
    let unique: BTreeSet<i64> = delivered.iter().copied().collect();
    assert_eq!(unique.len(), delivered.len(), "each row once");
    assert_eq!(
        pushed_usage(&gateway, "globex", &channel).await,
        (3, delivered.len() as i64)
    );

    // acme's channel; globex's login is refused acme's topic.
    let (acme_channel, acme_connection) = order_push_channel(&acme, "mqtt", "id < 100").await;
    let acme_login = Login::of(&acme_connection);
    let acme_topic = acme_login.topic.clone();
    // The snapshot was published before acme first connected: its session kept it.
    tokio::time::sleep(POLL * 10).await;
    let mut acme_reader = acme_login.resume().await;
    let (acme_rows, _) = acme_reader.receive(50, &mut HashSet::new()).await;
    assert_eq!(
        sorted(&ids(&acme_rows)),
        (1..100).step_by(2).collect::<Vec<i64>>()
    );
    let mut spy = login.connect("globex-spy").await;
    assert!(
        !spy.subscribe(&acme_topic).await,
        "globex subscribed to acme's topic"
    );
    assert!(
        !spy.subscribe("tollgate/#").await,
        "globex subscribed to every topic"
    );

    // Revoked: the connection is closed, the login refused, nothing more is published.
    let (status, body) = globex
        .call(Method::DELETE, &format!("/v1/channels/{channel}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(
        reader.refused_within(Duration::from_secs(10)).await,
        "still connected"
    );
    let mut again = login.connect("globex-again").await;
    assert!(
        again.refused_within(Duration::from_secs(10)).await,
        "revoked login connects"
    );
    write_events(&feed.join("events"), "part-3.parquet", 1_600, 300);
    tokio::time::sleep(POLL * 10).await;
    assert_eq!(
        pushed_usage(&gateway, "globex", &channel).await,
        (3, delivered.len() as i64)
    );
    assert_eq!(pushed_usage(&gateway, "acme", &acme_channel).await.1, 50);
    drop(broker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_killed_in_the_middle_of_an_mqtt_push_delivers_every_row_after_restart() {
    let dir = tempfile::tempdir().expect("a directory");
    let feed = dir.path().join("feed");
    let broker_dir = dir.path().join("mqtt");
    std::fs::create_dir_all(&broker_dir).expect("the broker's directory");
    let broker = MqttServer::start(&broker_dir);
    write_events(&feed.join("events"), "part-0.parquet", 0, 1_000);
    let mut options = demo_options(dir.path());
    let push = broker.push_options(POLL, 20);
    with_feed(&mut options, &feed, |control| {
        control.mqtt_push = Some(push)
    });
    let http = free_port();
    if let Some(listener) = &mut options.http {
        listener.listen = http;
    }
    let config = write_config(dir.path(), &options);
    let mut gateway = GatewayProcess::spawn(&config, &dir.path().join("gateway-1.log"));
    let globex = Api::at(http, GLOBEX);
    let (channel, connection) = order_push_channel(&globex, "mqtt", "id >= 0").await;
    let mut reader = Login::of(&connection).resume().await;
    let mut seen = HashSet::new();
    let (first, _) = reader.receive(500, &mut seen).await;
    assert_eq!(ids(&first).len(), 500);

    // A big file: killed once its first messages arrived.
    write_events(&feed.join("events"), "part-1.parquet", 1_000, 200_000);
    let (before, _) = reader.receive(1, &mut seen).await;
    gateway.kill();
    assert!(!before.is_empty(), "nothing of the big file arrived");
    let _restarted = GatewayProcess::spawn(&config, &dir.path().join("gateway-2.log"));
    let before_rows: u64 = before.iter().map(|m| m.rows).sum();
    let (rest, repeated) = reader.receive(100_000 - before_rows, &mut seen).await;
    // The restarted gateway pushed the file again from its start: it had not been done.
    assert!(repeated > 0, "the push had ended before the kill");
    let big: Vec<i64> = ids(&before).into_iter().chain(ids(&rest)).collect();
    assert_eq!(
        sorted(&big),
        (1_000..201_000).step_by(2).collect::<Vec<i64>>(),
        "every row once by message id ({repeated} messages came again)"
    );
    drop(_restarted);
    let pushed: u64 = usage_export(&config, &[])
        .iter()
        .filter(|r| {
            r["protocol"] == "push" && r["channel"] == channel.as_str() && r["outcome"] == "ok"
        })
        .map(|r| r["rows_returned"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(pushed, 100_500, "each pushed row billed once");
    drop(broker);
}
