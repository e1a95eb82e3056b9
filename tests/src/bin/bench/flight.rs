//! B2's Arrow paths: Flight SQL with every endpoint fetched in parallel, and the limit it is
//! measured against, the same batches through Arrow IPC encode and decode in memory.

use futures::{StreamExt, TryStreamExt};
use tollgate_planner::datafusion::arrow::ipc::reader::StreamReader;
use tollgate_planner::datafusion::arrow::ipc::writer::StreamWriter;

use arrow_flight::sql::client::FlightSqlServiceClient;
use tonic::transport::Channel;

use crate::gateway::{Fixture, PROJECTION, Server};

/// Streams the in-process result through IPC encode → decode, batch by batch; returns rows.
pub async fn ipc_round_trip(fixture: &Fixture) -> Result<u64, String> {
    let mut stream = fixture.lineitem_in_process().await?;
    let schema = stream.schema();
    let mut buffer = Vec::new();
    let mut rows = 0u64;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| e.to_string())?;
        buffer.clear();
        let mut writer = StreamWriter::try_new(&mut buffer, &schema).map_err(|e| e.to_string())?;
        writer.write(&batch).map_err(|e| e.to_string())?;
        writer.finish().map_err(|e| e.to_string())?;
        drop(writer);
        for decoded in StreamReader::try_new(buffer.as_slice(), None).map_err(|e| e.to_string())? {
            rows += decoded.map_err(|e| e.to_string())?.num_rows() as u64;
        }
    }
    Ok(rows)
}

/// Logs in as acme, asks for the projection's endpoints and fetches them all in parallel,
/// each on its own connection; checks the row count.
pub async fn fetch_parallel(server: &Server, expected: u64) -> Result<u64, String> {
    let channel = || async {
        Channel::from_shared(format!("http://{}", server.flight_addr))
            .map_err(|e| e.to_string())?
            .connect()
            .await
            .map_err(|e| e.to_string())
    };
    let mut client = FlightSqlServiceClient::new(channel().await?);
    client
        .handshake("acme", "acme")
        .await
        .map_err(|e| e.to_string())?;
    let token = client.token().cloned().ok_or("no bearer token")?;
    let info = client
        .execute(format!("SELECT {PROJECTION} FROM tpch.lineitem"), None)
        .await
        .map_err(|e| e.to_string())?;
    let mut readers = Vec::new();
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.ok_or("an endpoint without a ticket")?;
        let mut reader = FlightSqlServiceClient::new(channel().await?);
        reader.set_token(token.clone());
        readers.push(tokio::spawn(async move {
            let mut stream = reader.do_get(ticket).await.map_err(|e| e.to_string())?;
            let mut rows = 0u64;
            while let Some(batch) = stream.try_next().await.map_err(|e| e.to_string())? {
                rows += batch.num_rows() as u64;
            }
            Ok::<_, String>(rows)
        }));
    }
    let mut rows = 0;
    for reader in readers {
        rows += reader.await.map_err(|e| e.to_string())??;
    }
    if rows == expected {
        Ok(rows)
    } else {
        Err(format!("Flight SQL: {rows} rows, expected {expected}"))
    }
}
