//! B10: a `file` channel of B2's `lineitem` projection, ordered through the control API, then
//! loaded into pandas by the `delta-sharing` connector over the gateway's Delta Sharing
//! endpoint and signed file URLs, against the same Parquet files read from disk with pyarrow
//! (the limit). The export that writes the files is timed too.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;
use tollgate_tests::api::{ACME, Api};
use tollgate_tests::moto::delta_sharing_python;
use tollgate_tests::sharing::order_file_channel;

use crate::gateway::{Fixture, PROJECTION};
use crate::placement::Placement;
use crate::report::{Measurement, Ratio, Report};
use crate::webapi::wait_for_http;

/// Measures the export and both loads, `runs` times each, and records rows/s and the ratio.
pub async fn measure(
    fixture: &Fixture,
    placement: Placement,
    runs: usize,
    report: &mut Report,
) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let delivery = dir.path().join("delivery");
    let mut options = fixture.options.clone();
    if let Some(http) = &mut options.http {
        http.listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    }
    let control = options
        .control
        .as_mut()
        .ok_or("the demo configuration has no [control]")?;
    control.path = dir.path().join("control.db");
    control.delivery_path = delivery.clone();
    let config = fixture.write_config("b10-sharing", &options)?;
    let server = fixture.spawn_server_with(&config, placement)?;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    wait_for_http(&format!("http://{addr}")).await?;
    let columns: Vec<&str> = PROJECTION.split(", ").collect();
    let started = Instant::now();
    let channel = order_file_channel(
        &Api::at(addr, ACME),
        json!([{ "dataset": "tpch.lineitem", "columns": columns }]),
    )
    .await;
    let export_seconds = started.elapsed().as_secs_f64();
    let files = parquet_files(&delivery.join("acme").join(&channel.id))?;
    let profile = channel.profile_file(dir.path());
    let table = format!("{}.tpch.lineitem", channel.id);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/bin/bench/delta_sharing_load.py"
    );
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(delta_sharing_python())
            .arg(script)
            .arg(profile)
            .arg(table)
            .arg(runs.max(1).to_string())
            .args(files)
            .output()
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("the Delta Sharing reader: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "the Delta Sharing reader failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let (mut rows, mut connector, mut from_disk) = (0u64, Vec::new(), Vec::new());
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let [
            "RUN",
            shared_rows,
            shared_seconds,
            local_rows,
            local_seconds,
        ] = words[..]
        else {
            continue;
        };
        if shared_rows != local_rows {
            return Err(format!(
                "the connector loaded {shared_rows} rows, the files hold {local_rows}"
            ));
        }
        rows = shared_rows.parse().map_err(|_| format!("rows: {line}"))?;
        connector.push(
            shared_seconds
                .parse()
                .map_err(|_| format!("seconds: {line}"))?,
        );
        from_disk.push(
            local_seconds
                .parse()
                .map_err(|_| format!("seconds: {line}"))?,
        );
    }
    if connector.is_empty() {
        return Err("the Delta Sharing reader printed no runs".to_owned());
    }
    report.add(Measurement {
        id: "B10",
        placement: placement.name(),
        name: "file channel export (order to ready): rows/s".to_owned(),
        value: rows as f64 / export_seconds,
        spread: (rows as f64 / export_seconds, rows as f64 / export_seconds),
        unit: "rows/s",
    });
    let rates: Vec<f64> = [
        ("delta-sharing load_as_pandas", &connector),
        ("pyarrow read_table from disk", &from_disk),
    ]
    .iter()
    .map(|(name, seconds)| report.rows_per_second(("B10", placement.name()), name, rows, seconds))
    .collect();
    report.ratio(Ratio {
        id: "B10",
        placement: placement.name(),
        name: "delta-sharing load_as_pandas ÷ pyarrow from disk (rows/s)".to_owned(),
        numerator: rates[0],
        denominator: rates[1],
        goal: "—",
    });
    drop(server);
    Ok(())
}

/// The Parquet files under `dir`, at any depth.
fn parquet_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "parquet") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}
