//! B11: a `nats` channel on a private NATS server. The snapshot of a one-million-row dataset
//! from the order to its last row at a JetStream subscriber (rows/s), against the same
//! messages published straight into a stream of the same server and read by the same
//! subscriber (the broker's limit); and the latency from a file landing to its rows at the
//! subscriber (p50, p99), with the gateway looking for new files every 100 ms.

use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::pull;
use chrono::Utc;
use futures::StreamExt;
use nkeys::KeyPair;
use serde_json::json;
use tollgate_catalog::store::push_records::PushAccountRecord;
use tollgate_catalog::{DatasetOptions, GrantOptions, MessageFormat, SourceOptions};
use tollgate_gateway::push::accounts::issue_user;
use tollgate_gateway::push::messages::Messages;
use tollgate_gateway::push::nats_broker::{
    AccountState, NatsBroker, STREAM, StreamLimits, subject,
};
use tollgate_planner::datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use tollgate_tests::api::{ACME, Api, event};
use tollgate_tests::nats::{NatsServer, connect, consumer};
use tollgate_tests::sharing::write_events;

use crate::gateway::Fixture;
use crate::placement::Placement;
use crate::report::{Measurement, Ratio, Report, summarize};
use crate::webapi::wait_for_http;

/// How often the gateway looks for new files here.
const POLL: Duration = Duration::from_millis(100);
/// Rows per message, in both paths.
const MESSAGE_ROWS: usize = 10_000;
/// Rows of each file that lands.
const LANDING_ROWS: i64 = 100;

/// Measures `runs` snapshots of `rows` rows each way, and `landings` files landing.
pub async fn measure(
    fixture: &Fixture,
    placement: Placement,
    (rows, runs, landings): (i64, usize, usize),
    report: &mut Report,
) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let nats_dir = dir.path().join("nats");
    std::fs::create_dir_all(&nats_dir).map_err(|e| e.to_string())?;
    let nats = NatsServer::start(&nats_dir);
    let feed = dir.path().join("feed");
    write_events(&feed.join("events"), "part-0.parquet", 0, rows);
    let http = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_err(|e| e.to_string())?;
    let mut options = fixture.options.clone();
    if let Some(listener) = &mut options.http {
        listener.listen = http;
    }
    options.sources.insert(
        "feed".to_owned(),
        SourceOptions::Local { path: feed.clone() },
    );
    let dataset: DatasetOptions =
        toml::from_str("id = \"feed.events\"\nsource = \"feed\"\npath = \"events/\"\n")
            .map_err(|e| e.to_string())?;
    options.datasets.push(dataset);
    options.grants.push(GrantOptions {
        tenant: "acme".to_owned(),
        dataset: "feed.events".to_owned(),
        columns: None,
        row_filter: None,
        source: None,
    });
    let control = options
        .control
        .as_mut()
        .ok_or("the demo configuration has no [control]")?;
    control.path = dir.path().join("control.db");
    control.nats_push = Some(nats.push_options(POLL, MESSAGE_ROWS));
    let push = control.nats_push.clone().ok_or("no push options")?;
    let config = fixture.write_config("b11-push", &options)?;
    let server = fixture.spawn_server_with(&config, placement)?;
    wait_for_http(&format!("http://{http}")).await?;
    let acme = Api::at(http, ACME);

    let mut through_gateway = Vec::new();
    let mut last = None;
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        let (status, body) = acme
            .post(
                "/v1/channels",
                json!({
                    "kind": "nats",
                    "message_format": "arrow",
                    "datasets": [{ "dataset": "feed.events" }]
                }),
            )
            .await;
        if !status.is_success() {
            return Err(format!("ordering a nats channel: {status} {body}"));
        }
        let order = body["id"].as_str().unwrap_or_default().to_owned();
        let ready = ready_event(&acme, &order).await;
        let connection = &ready["connection"];
        let field = |name: &str| connection[name].as_str().unwrap_or_default().to_owned();
        let client = connect(&field("nats_url"), &field("creds")).await?;
        // A durable consumer per channel: the runs' channels share the tenant's stream.
        let name = ready["channel"].as_str().unwrap_or("bench").to_owned();
        let reader = consumer(&client, &field("stream"), &name, &field("subject")).await;
        read_rows(&reader, rows as u64).await?;
        through_gateway.push(started.elapsed().as_secs_f64());
        last = Some((client, reader));
    }
    let direct = publish_directly(&push, &feed, rows, runs).await?;
    let id = ("B11", placement.name());
    let rows_u64 = rows as u64;
    let gateway_rate = report.rows_per_second(
        id,
        "nats channel snapshot (order to last row)",
        rows_u64,
        &through_gateway,
    );
    let direct_rate = report.rows_per_second(
        id,
        "the same messages published straight to JetStream",
        rows_u64,
        &direct,
    );
    report.ratio(Ratio {
        id: "B11",
        placement: placement.name(),
        name: "nats snapshot ÷ direct JetStream publish (rows/s)".to_owned(),
        numerator: gateway_rate,
        denominator: direct_rate,
        goal: "—",
    });

    // Files landing: each written at once, its rows awaited at the last channel's reader.
    let (_client, reader) = last.ok_or("no channel")?;
    let mut latencies = Vec::new();
    for landing in 0..landings {
        let first = rows + landing as i64 * LANDING_ROWS;
        let landed = Instant::now();
        write_events(
            &feed.join("events"),
            &format!("landing-{landing:05}.parquet"),
            first,
            LANDING_ROWS,
        );
        read_rows(&reader, LANDING_ROWS as u64).await?;
        latencies.push(landed.elapsed().as_secs_f64() * 1000.0);
    }
    for (name, quantile) in [("p50", 0.5), ("p99", 0.99)] {
        let value = quantile_of(&latencies, quantile);
        let (_, spread) = summarize(&latencies);
        report.add(Measurement {
            id: "B11",
            placement: placement.name(),
            name: format!("file landed to its rows at the subscriber, {name} (poll every 100 ms)"),
            value,
            spread,
            unit: "ms",
        });
    }
    drop(server);
    drop(nats);
    Ok(())
}

/// The `channel.ready` event of `order`.
async fn ready_event(tenant: &Api, order: &str) -> serde_json::Value {
    let mut after = 0;
    loop {
        let ready = event(tenant, after, "channel.ready").await;
        if ready["order"] == order {
            return ready;
        }
        after = ready["seq"].as_i64().unwrap_or(after + 1);
    }
}

/// Reads messages of `reader` until `rows` rows (by their `Tollgate-Rows` header) came.
async fn read_rows(
    reader: &async_nats::jetstream::consumer::Consumer<pull::Config>,
    rows: u64,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut received = 0;
    while received < rows {
        if Instant::now() > deadline {
            return Err(format!("{received} of {rows} rows arrived"));
        }
        let mut batch = reader
            .fetch()
            .max_messages(256)
            .expires(Duration::from_millis(50))
            .messages()
            .await
            .map_err(|e| e.to_string())?;
        while let Some(message) = batch.next().await {
            let message = message.map_err(|e| e.to_string())?;
            received += message
                .headers
                .as_ref()
                .and_then(|headers| headers.get("Tollgate-Rows"))
                .and_then(|value| value.as_str().parse::<u64>().ok())
                .unwrap_or(0);
            message.ack().await.map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Seconds of each of `runs` publishes of the rows of `feed`'s file, encoded as the
/// gateway encodes them, into a stream of an account of the bench's own, each read to its
/// last row by a subscriber.
async fn publish_directly(
    push: &tollgate_catalog::NatsPushOptions,
    feed: &std::path::Path,
    rows: i64,
    runs: usize,
) -> Result<Vec<f64>, String> {
    let file =
        std::fs::File::open(feed.join("events/part-0.parquet")).map_err(|e| e.to_string())?;
    let batches = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|builder| builder.build())
        .map_err(|e| e.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let broker = NatsBroker::new(push.clone()).map_err(|e| e.to_string())?;
    let account = KeyPair::new_account();
    let record = PushAccountRecord {
        tenant: "bench".to_owned(),
        public_key: account.public_key(),
        seed: account.seed().map_err(|e| e.to_string())?,
        created_at: Utc::now(),
    };
    broker
        .sync_account(&AccountState {
            tenant: record.tenant.clone(),
            seed: record.seed.clone(),
            revoked: Default::default(),
        })
        .await
        .map_err(|e| e.to_string())?;
    let publisher = broker
        .publisher(
            &record.tenant,
            &record.seed,
            StreamLimits {
                max_age: Duration::from_secs(3600),
                max_bytes: None,
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    let user = issue_user(&record, "bench", "bench", Utc::now()).map_err(|e| e.to_string())?;
    let client = connect(&push.url, &user.creds).await?;
    let mut seconds = Vec::new();
    for run in 0..runs.max(1) {
        let channel = format!("direct{run}");
        let subject = subject(&record.tenant, &channel);
        let reader = consumer(&client, STREAM, &channel, &subject).await;
        let started = Instant::now();
        let reading = tokio::spawn(async move { read_rows(&reader, rows as u64).await });
        // Cut as the gateway cuts: at most the server's max_payload, less room for headers.
        let max_bytes = publisher
            .client()
            .server_info()
            .max_payload
            .saturating_sub(1024);
        let mut messages = Messages::new(
            MessageFormat::Arrow,
            MESSAGE_ROWS,
            max_bytes,
            &channel,
            "part-0",
        );
        for batch in &batches {
            let mut acks = Vec::new();
            for message in messages.of(batch).map_err(|e| e.to_string())? {
                let mut headers = HeaderMap::new();
                headers.insert("Nats-Msg-Id", message.id.as_str());
                headers.insert("Tollgate-Rows", message.rows.to_string().as_str());
                acks.push(
                    NatsBroker::publish(&publisher, subject.clone(), headers, message.payload)
                        .await
                        .map_err(|e| e.to_string())?,
                );
            }
            for ack in acks {
                ack.await.map_err(|e| e.to_string())?;
            }
        }
        reading.await.map_err(|e| e.to_string())??;
        seconds.push(started.elapsed().as_secs_f64());
    }
    Ok(seconds)
}

/// The `quantile` of `samples` (nearest rank).
fn quantile_of(samples: &[f64], quantile: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((quantile * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
