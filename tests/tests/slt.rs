//! SQL behaviour as sqllogictest files, run over the Postgres wire protocol.
//!
//! `tests/slt/<tenant>/*.slt` runs logged in as `<tenant>` against the demo data. Errors are
//! matched as `SQLSTATE: message`, so `statement error 42P01` checks the code.

use std::path::Path;

use async_trait::async_trait;
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType, Runner};
use tokio_postgres::{Client, SimpleQueryMessage};
use tollgate_tests::TestGateway;

/// A failed statement as `SQLSTATE: message`.
#[derive(Debug)]
struct SltError(String);

impl std::fmt::Display for SltError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SltError {}

struct PgwireDb {
    client: Client,
}

#[async_trait]
impl AsyncDB for PgwireDb {
    type Error = SltError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        let messages = self.client.simple_query(sql).await.map_err(|error| {
            SltError(match error.as_db_error() {
                Some(db) => format!("{}: {}", db.code().code(), db.message()),
                None => error.to_string(),
            })
        })?;
        let mut rows = Vec::new();
        let mut columns = None;
        for message in messages {
            match message {
                SimpleQueryMessage::RowDescription(description) => {
                    columns = Some(description.len())
                }
                SimpleQueryMessage::Row(row) => {
                    columns = Some(row.len());
                    rows.push(
                        (0..row.len())
                            .map(|i| row.get(i).unwrap_or("NULL").to_owned())
                            .collect(),
                    );
                }
                SimpleQueryMessage::CommandComplete(count) if columns.is_none() => {
                    return Ok(DBOutput::StatementComplete(count));
                }
                _ => {}
            }
        }
        Ok(DBOutput::Rows {
            types: vec![DefaultColumnType::Any; columns.unwrap_or(0)],
            rows,
        })
    }

    async fn shutdown(&mut self) {}

    async fn sleep(duration: std::time::Duration) {
        tokio::time::sleep(duration).await;
    }
}

async fn run_tenant_files(tenant: &str) {
    let gateway = TestGateway::start().await;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("slt")
        .join(tenant);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("slt directory")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .slt files in {}", dir.display());
    for file in files {
        let conninfo = gateway.conninfo(tenant);
        let mut runner = Runner::new(move || {
            let conninfo = conninfo.clone();
            async move {
                let (client, connection) =
                    tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
                        .await
                        .map_err(|e| SltError(e.to_string()))?;
                tokio::spawn(connection);
                Ok(PgwireDb { client })
            }
        });
        runner.with_column_validator(|_, _| true);
        if let Err(error) = runner.run_file_async(&file).await {
            panic!("{}: {error}", file.display());
        }
    }
}

#[tokio::test]
async fn acme() {
    run_tenant_files("acme").await;
}

#[tokio::test]
async fn globex() {
    run_tenant_files("globex").await;
}
