//! B9: the Web-API — B2's `lineitem` projection streamed whole by `POST /v1/statements`
//! (`?stream=true`) as NDJSON and as an Arrow IPC stream, against the same rows over Flight
//! SQL; and the p50 latency of a one-row resource `GET` against the same lookup prepared
//! once over pgwire.

use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures::StreamExt;
use tollgate_planner::datafusion::arrow::ipc::reader::StreamReader;

use crate::flight;
use crate::gateway::{Fixture, PROJECTION};
use crate::placement::Placement;
use crate::report::{Measurement, Ratio, Report, summarize};
use crate::throughput::time_runs;

/// Measures the paths and records rows/s, p50 latencies and their ratios; `rows` is the
/// projection's row count, `lookups` the one-row requests per path.
pub async fn measure(
    fixture: &Fixture,
    placement: Placement,
    (rows, runs, lookups): (u64, usize, usize),
    report: &mut Report,
) -> Result<(), String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let mut options = fixture.options.clone();
    if let Some(http) = &mut options.http {
        http.listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    }
    let config = fixture.write_config("b9-webapi", &options)?;
    let server = fixture.spawn_server_with(&config, placement)?;
    let base = format!("http://127.0.0.1:{port}");
    wait_for_http(&base).await?;
    let client = reqwest::Client::new();
    let authorization = format!("Basic {}", STANDARD.encode("acme:acme"));
    let sql = format!("SELECT {PROJECTION} FROM tpch.lineitem");
    let stream = |accept: &'static str| {
        let (client, base, authorization, sql) = (&client, &base, &authorization, &sql);
        async move {
            let response = client
                .post(format!("{base}/v1/statements?stream=true"))
                .header("authorization", authorization)
                .header("accept", accept)
                .body(sql.clone())
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if !response.status().is_success() {
                return Err(format!("{accept}: {}", response.status()));
            }
            count_rows(accept, response).await
        }
    };
    let mut paths = Vec::new();
    for (name, accept) in [
        ("Web-API NDJSON", "application/x-ndjson"),
        ("Web-API Arrow IPC", "application/vnd.apache.arrow.stream"),
    ] {
        let seconds = time_runs(runs, || async {
            let got = stream(accept).await?;
            if got == rows {
                Ok(got)
            } else {
                Err(format!("{name}: {got} rows, expected {rows}"))
            }
        })
        .await?;
        paths.push((name, seconds));
    }
    let flight_sql = time_runs(runs, || flight::fetch_parallel(&server, rows)).await?;
    paths.push(("Flight SQL", flight_sql));
    let rates: Vec<f64> = paths
        .iter()
        .map(|(name, seconds)| {
            report.rows_per_second(("B9", placement.name()), name, rows, seconds)
        })
        .collect();
    for (i, name) in ["Web-API NDJSON", "Web-API Arrow IPC"].iter().enumerate() {
        report.ratio(Ratio {
            id: "B9",
            placement: placement.name(),
            name: format!("{name} ÷ Flight SQL (rows/s)"),
            numerator: rates[i],
            denominator: rates[2],
            goal: "—",
        });
    }
    let http = lookup_latencies(lookups, |key| {
        let (client, base, authorization) = (&client, &base, &authorization);
        async move {
            let response = client
                .get(format!(
                    "{base}/v1/data/tpch/orders?o_orderkey=eq.{key}&limit=1"
                ))
                .header("authorization", authorization)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let body = response.text().await.map_err(|e| e.to_string())?;
            if body.starts_with("[{") {
                Ok(())
            } else {
                Err(format!("order {key}: {body}"))
            }
        }
    })
    .await?;
    let (pg, connection) =
        tokio_postgres::connect(&server.conninfo("acme", false), tokio_postgres::NoTls)
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let statement = pg
        .prepare("SELECT * FROM tpch.orders WHERE o_orderkey = $1 LIMIT 1")
        .await
        .map_err(|e| e.to_string())?;
    let pgwire = lookup_latencies(lookups, |key| {
        let (pg, statement) = (&pg, &statement);
        async move {
            let found = pg
                .query(statement, &[&key])
                .await
                .map_err(|e| e.to_string())?;
            if found.len() == 1 {
                Ok(())
            } else {
                Err(format!("order {key}: {} rows", found.len()))
            }
        }
    })
    .await?;
    for (name, p50) in [("resource GET", http), ("pgwire prepared", pgwire)] {
        report.add(Measurement {
            id: "B9",
            placement: placement.name(),
            name: format!("one-row lookup, {name}: p50"),
            value: p50 * 1e3,
            spread: (p50 * 1e3, p50 * 1e3),
            unit: "ms",
        });
    }
    report.ratio(Ratio {
        id: "B9",
        placement: placement.name(),
        name: "one-row lookup p50: resource GET ÷ pgwire prepared".to_owned(),
        numerator: http,
        denominator: pgwire,
        goal: "—",
    });
    drop(server);
    Ok(())
}

/// Rows of a streamed body: lines of NDJSON, or the rows of the Arrow stream's batches.
async fn count_rows(accept: &str, response: reqwest::Response) -> Result<u64, String> {
    if accept == "application/x-ndjson" {
        let mut rows = 0u64;
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| e.to_string())?;
            rows += chunk.iter().filter(|byte| **byte == b'\n').count() as u64;
        }
        return Ok(rows);
    }
    let bytes = response.bytes().await.map_err(|e| e.to_string())?;
    let reader = StreamReader::try_new(&bytes[..], None).map_err(|e| e.to_string())?;
    let mut rows = 0u64;
    for batch in reader {
        rows += batch.map_err(|e| e.to_string())?.num_rows() as u64;
    }
    Ok(rows)
}

/// The p50 in seconds of `count` lookups of order keys spread over the table.
async fn lookup_latencies<F, Fut>(count: usize, mut lookup: F) -> Result<f64, String>
where
    F: FnMut(i64) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    lookup(1).await?;
    let mut seconds = Vec::with_capacity(count);
    for i in 0..count.max(1) {
        // Order keys of TPC-H are the multiples of 32 plus 1 to 8.
        let key = (i as i64 % 1_000) * 32 + 1;
        let started = Instant::now();
        lookup(key).await?;
        seconds.push(started.elapsed().as_secs_f64());
    }
    Ok(summarize(&seconds).0)
}

/// Waits until the HTTP listener at `base` answers.
pub async fn wait_for_http(base: &str) -> Result<(), String> {
    let started = Instant::now();
    while reqwest::get(format!("{base}/metrics")).await.is_err() {
        if started.elapsed().as_secs() > 60 {
            return Err(format!("{base} does not answer"));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Ok(())
}
