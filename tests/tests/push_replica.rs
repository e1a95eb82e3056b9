//! Push channels of a PostgreSQL replica table whose provider declares a watermark column
//! (`taken_at`, a `timestamptz`): each channel gets the table's rows as its snapshot, then
//! exactly the rows inserted since (equal to the same query on the replica), each slice of
//! new rows read once for every channel that takes it (the audit log's `slice_read`
//! lines); a gateway killed with -9 in the middle of a slice pushes the same slice again
//! after its restart, so a JetStream stream holds every row once.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{Consumer, pull};
use serde_json::Value;
use tokio_postgres::Client;
use tollgate_catalog::{DatasetOptions, GrantOptions, HumanDuration, SourceOptions};
use tollgate_tests::api::{ACME, Api, GLOBEX};
use tollgate_tests::demo_options;
use tollgate_tests::machine_pg::{ADMIN, connect, conninfo, drop_database, recreate_database};
use tollgate_tests::nats::{self, NatsServer, consumer, fetch, ids};
use tollgate_tests::process::{GatewayProcess, free_port, usage_export, write_config};
use tollgate_tests::push::{POLL, order_push_channel_of, sorted};

const DATASET: &str = "plant.readings";

/// A database of its own holding `readings`, one row a millisecond from 2026-01-01.
struct Replica {
    admin: Client,
    name: String,
    client: Client,
}

impl Replica {
    async fn create() -> Self {
        let admin = connect(ADMIN).await;
        let name = format!("tollgate_push_replica_{}", std::process::id());
        recreate_database(&admin, &name).await;
        let client = connect(&conninfo(&name)).await;
        client
            .batch_execute(
                "CREATE TABLE readings (
                     id bigint PRIMARY KEY,
                     sensor text NOT NULL,
                     value double precision NOT NULL,
                     taken_at timestamptz NOT NULL)",
            )
            .await
            .expect("create readings");
        Self {
            admin,
            name,
            client,
        }
    }

    /// Inserts readings `from .. from + count`, in one transaction.
    async fn insert(&self, from: i64, count: i64) {
        self.client
            .batch_execute(&format!(
                "INSERT INTO readings
                 SELECT i, 'sensor-' || (i % 7), i * 0.5,
                        TIMESTAMPTZ '2026-01-01 00:00:00+00' + i * INTERVAL '1 millisecond'
                 FROM generate_series({from}, {}) AS i",
                from + count - 1
            ))
            .await
            .expect("insert readings");
    }

    /// The ids of the readings matching `filter`, in order.
    async fn ids(&self, filter: &str) -> Vec<i64> {
        self.client
            .query(
                &format!("SELECT id FROM readings WHERE {filter} ORDER BY id"),
                &[],
            )
            .await
            .expect("the replica's rows")
            .iter()
            .map(|row| row.get(0))
            .collect()
    }

    async fn drop(self) {
        drop(self.client);
        drop_database(&self.admin, &self.name).await;
    }
}

/// A gateway configuration serving `plant.readings` (watermark `taken_at`) of `replica`,
/// granted to globex (even ids) and acme (odd ids), pushing to `nats`; its HTTP port.
fn configure(
    dir: &Path,
    replica: &Replica,
    nats: &NatsServer,
) -> (std::path::PathBuf, std::net::SocketAddr) {
    let mut options = demo_options(dir);
    options.sources.insert(
        "plant".to_owned(),
        SourceOptions::Postgres {
            replicas: vec![conninfo(&replica.name)],
            max_connections: 4,
            connect_timeout: HumanDuration(Duration::from_secs(2)),
            read_timeout: HumanDuration(Duration::from_secs(30)),
            tls: None,
        },
    );
    let dataset: DatasetOptions = toml::from_str(&format!(
        "id = \"{DATASET}\"\nsource = \"plant\"\npath = \"public.readings\"\nwatermark = \"taken_at\"\n"
    ))
    .expect("a dataset");
    options.datasets.push(dataset);
    for (tenant, row_filter) in [("globex", "id % 2 = 0"), ("acme", "id % 2 = 1")] {
        options.grants.push(GrantOptions {
            tenant: tenant.to_owned(),
            dataset: DATASET.to_owned(),
            columns: None,
            row_filter: Some(row_filter.to_owned()),
            source: None,
        });
    }
    if let Some(control) = &mut options.control {
        control.nats_push = Some(nats.push_options(POLL, 50));
    }
    options.usage.audit_log = Some(dir.join("audit.log"));
    let http = free_port();
    if let Some(listener) = &mut options.http {
        listener.listen = http;
    }
    (write_config(dir, &options), http)
}

/// A durable consumer of the channel a ready event's `connection` describes.
async fn reader_of(connection: &Value, name: &str) -> Consumer<pull::Config> {
    let field = |key: &str| connection[key].as_str().expect(key).to_owned();
    let client = nats::connect(&field("nats_url"), &field("creds"))
        .await
        .expect("the channel's credentials");
    consumer(&client, &field("stream"), name, &field("subject")).await
}

/// Messages the stream of `reader` holds now.
async fn stored(reader: &mut Consumer<pull::Config>) -> u64 {
    reader.info().await.expect("consumer info").num_pending
        + reader.cached_info().delivered.stream_sequence
}

/// The ids `reader` receives until `expected` arrived (or 60 seconds passed), then
/// whatever else comes within half a second.
async fn receive(reader: &Consumer<pull::Config>, expected: usize) -> Vec<i64> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut received = Vec::new();
    while received.len() < expected && Instant::now() < deadline {
        let messages = fetch(reader, 500, Duration::from_millis(300)).await;
        assert!(messages.iter().all(|m| m.dataset == DATASET));
        received.extend(ids(&messages));
    }
    received.extend(ids(&fetch(reader, 500, Duration::from_millis(500)).await));
    received
}

/// The audit log's `slice_read` lines: (slice, channels it went to).
fn slices_read(dir: &Path) -> Vec<(String, u64)> {
    std::fs::read_to_string(dir.join("audit.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["event"] == "slice_read")
        .map(|line| {
            (
                line["slice"].as_str().unwrap_or_default().to_owned(),
                line["channels"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_replica_rows_are_found_by_watermark_read_once_and_pushed_once_across_a_crash() {
    let dir = tempfile::tempdir().expect("a directory");
    let nats_dir = dir.path().join("nats");
    std::fs::create_dir_all(&nats_dir).expect("the NATS directory");
    let nats = NatsServer::start(&nats_dir);
    let replica = Replica::create().await;
    replica.insert(0, 1_000).await;
    let (config, http) = configure(dir.path(), &replica, &nats);
    let mut gateway = GatewayProcess::spawn(&config, &dir.path().join("gateway-1.log"));
    let (globex, acme) = (Api::at(http, GLOBEX), Api::at(http, ACME));

    // The snapshot: globex's even ids narrowed to multiples of 3; all of acme's odd ids.
    let (_, globex_connection) =
        order_push_channel_of(&globex, "nats", DATASET, "id % 3 = 0").await;
    let globex_reader = reader_of(&globex_connection, "reader").await;
    let expected = replica.ids("id % 6 = 0").await;
    assert_eq!(
        sorted(&receive(&globex_reader, expected.len()).await),
        expected
    );
    let (acme_channel, acme_connection) =
        order_push_channel_of(&acme, "nats", DATASET, "value >= 0").await;
    let mut acme_reader = reader_of(&acme_connection, "reader").await;
    let expected = replica.ids("id % 2 = 1").await;
    assert_eq!(
        sorted(&receive(&acme_reader, expected.len()).await),
        expected
    );

    // New rows: exactly them, to both, from one read of the replica.
    let before = slices_read(dir.path()).len();
    replica.insert(1_000, 300).await;
    let expected = replica.ids("id % 6 = 0 AND id >= 1000").await;
    assert_eq!(
        sorted(&receive(&globex_reader, expected.len()).await),
        expected
    );
    let expected = replica.ids("id % 2 = 1 AND id >= 1000").await;
    assert_eq!(
        sorted(&receive(&acme_reader, expected.len()).await),
        expected
    );
    let reads = slices_read(dir.path());
    let new_reads: Vec<_> = reads[before..].to_vec();
    assert_eq!(new_reads.len(), 1, "{new_reads:?}");
    assert_eq!(
        new_reads[0].1, 2,
        "one read for both channels: {new_reads:?}"
    );
    assert!(
        new_reads[0]
            .0
            .starts_with("taken_at in (2026-01-01T00:00:00.999000Z, "),
        "{new_reads:?}"
    );

    // Many rows: the gateway killed as soon as the first of them is in the stream (waiting
    // for a subscriber to fetch it first gave the push time to end on a busy machine).
    let before = stored(&mut acme_reader).await;
    replica.insert(1_300, 200_000).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while stored(&mut acme_reader).await == before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    gateway.kill();
    let at_kill = stored(&mut acme_reader).await;
    assert!(at_kill > before, "nothing of the new rows arrived");
    let restarted = GatewayProcess::spawn(&config, &dir.path().join("gateway-2.log"));
    let expected = replica.ids("id % 2 = 1 AND id >= 1300").await;
    let all = receive(&acme_reader, expected.len()).await;
    let unique: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(unique.len(), all.len(), "each row once");
    assert_eq!(sorted(&all), expected, "every row");
    // The slice had not been pushed whole when the gateway was killed.
    let in_the_end = stored(&mut acme_reader).await;
    assert!(
        at_kill < in_the_end,
        "{at_kill} messages at the kill, {in_the_end} in the end"
    );
    let expected = replica.ids("id % 6 = 0 AND id >= 1300").await;
    assert_eq!(
        sorted(&receive(&globex_reader, expected.len()).await),
        expected
    );
    drop(restarted);

    // Each row billed once to acme's channel, whose killed attempt left no record.
    let pushed: u64 = usage_export(&config, &[])
        .iter()
        .filter(|r| {
            r["protocol"] == "push" && r["channel"] == acme_channel.as_str() && r["outcome"] == "ok"
        })
        .map(|r| r["rows_returned"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(pushed, 500 + 150 + 100_000);
    replica.drop().await;
    drop(nats);
}
