//! PostgreSQL on this machine as the reference: the same `lineitem` rows in the machine's
//! server, for throughput. (Connect time uses `tollgate_tests::pg_cluster`.)

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio_postgres::NoTls;
use tollgate_tests::reference_pg::copy_text;

use crate::gateway::{Fixture, PROJECTION};

/// The machine's PostgreSQL (trust authentication on loopback).
pub const MACHINE_POSTGRES: &str = "host=127.0.0.1 port=5432 user=postgres dbname=postgres";

/// The table holding the projection at `scale`.
pub fn lineitem_table(scale: f64) -> String {
    format!(
        "tollgate_bench.lineitem_sf{}",
        scale.to_string().replace('.', "_")
    )
}

/// Loads the projection into the machine's PostgreSQL unless it is there already; returns
/// the row count.
pub async fn load_lineitem(fixture: &Fixture) -> Result<u64, String> {
    let (client, connection) = tokio_postgres::connect(MACHINE_POSTGRES, NoTls)
        .await
        .map_err(|e| format!("PostgreSQL at 127.0.0.1:5432: {e}"))?;
    tokio::spawn(connection);
    let expected = fixture.scan_in_process(|_| {}).await?;
    let table = lineitem_table(fixture.scale);
    client
        .batch_execute("CREATE SCHEMA IF NOT EXISTS tollgate_bench")
        .await
        .map_err(|e| e.to_string())?;
    let present: i64 = match client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
    {
        Ok(row) => row.get(0),
        Err(_) => -1,
    };
    if u64::try_from(present).is_ok_and(|n| n == expected) {
        return Ok(expected);
    }
    eprintln!("bench: loading {expected} rows into PostgreSQL table {table}");
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (l_orderkey bigint, l_partkey bigint, l_suppkey bigint, \
             l_linenumber integer, l_quantity numeric(15,2), l_extendedprice numeric(15,2), l_shipdate date)"
        ))
        .await
        .map_err(|e| e.to_string())?;
    let sink = client
        .copy_in::<_, Bytes>(&format!("COPY {table} ({PROJECTION}) FROM STDIN"))
        .await
        .map_err(|e| e.to_string())?;
    let mut sink = Box::pin(sink);
    // Batch by batch from the engine to PostgreSQL, never the whole table in memory.
    let mut batches = fixture.lineitem_in_process().await?;
    while let Some(batch) = batches.next().await {
        let batch = batch.map_err(|e| e.to_string())?;
        sink.send(copy_text(&batch)?)
            .await
            .map_err(|e| e.to_string())?;
    }
    sink.as_mut().finish().await.map_err(|e| e.to_string())?;
    client
        .batch_execute(&format!("ANALYZE {table}"))
        .await
        .map_err(|e| e.to_string())?;
    Ok(expected)
}
