//! The shared store: a PostgreSQL database, for several gateways behind one load balancer.

use async_trait::async_trait;
use tokio::sync::Mutex;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls};
use tollgate_planner::metering::{LedgerError, UsageRecord, UsageScope};

use super::store::{CREATE_INDEX, CREATE_TABLE, LedgerStore, bounds, parse, row};

/// A PostgreSQL ledger; reconnects when its connection is lost.
pub struct PostgresStore {
    config: String,
    client: Mutex<Option<Client>>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The connection string may hold a password.
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

fn unavailable(error: impl std::fmt::Display) -> LedgerError {
    LedgerError::Unavailable(format!("PostgreSQL ledger: {error}"))
}

async fn connect(config: &str) -> Result<Client, LedgerError> {
    let (client, connection) = tokio_postgres::connect(config, NoTls)
        .await
        .map_err(unavailable)?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(%error, "PostgreSQL ledger connection ended");
        }
    });
    Ok(client)
}

impl PostgresStore {
    /// Connects with `config` (`host=… dbname=… user=…`) and creates the table if needed.
    ///
    /// # Errors
    /// [`LedgerError::Unavailable`] if the server cannot be reached or the table created.
    pub async fn open(config: &str) -> Result<Self, LedgerError> {
        let client = connect(config).await?;
        client
            .batch_execute(&format!("{CREATE_TABLE}; {CREATE_INDEX};"))
            .await
            .map_err(unavailable)?;
        Ok(Self {
            config: config.to_owned(),
            client: Mutex::new(Some(client)),
        })
    }

    /// The connection, opened again if it was lost.
    async fn client(&self) -> Result<tokio::sync::MappedMutexGuard<'_, Client>, LedgerError> {
        let mut guard = self.client.lock().await;
        if guard.as_ref().is_none_or(Client::is_closed) {
            *guard = Some(connect(&self.config).await?);
        }
        tokio::sync::MutexGuard::try_map(guard, Option::as_mut)
            .map_err(|_| unavailable("no connection"))
    }
}

#[async_trait]
impl LedgerStore for PostgresStore {
    async fn append(&self, records: &[UsageRecord]) -> Result<(), LedgerError> {
        let rows = records.iter().map(row).collect::<Result<Vec<_>, _>>()?;
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        let insert = transaction
            .prepare(
                "INSERT INTO tollgate_usage (record_id, query_id, tenant, started_at, record) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (record_id) DO NOTHING",
            )
            .await
            .map_err(unavailable)?;
        let parameters: Vec<[&(dyn ToSql + Sync); 5]> = rows
            .iter()
            .map(|(record_id, query_id, tenant, started_at, json)| {
                [
                    record_id as &(dyn ToSql + Sync),
                    query_id,
                    tenant,
                    started_at,
                    json,
                ]
            })
            .collect();
        // Pipelined: every insert is sent before the first answer is awaited.
        let inserts = parameters
            .iter()
            .map(|values| transaction.execute(&insert, values));
        futures::future::try_join_all(inserts)
            .await
            .map_err(unavailable)?;
        transaction.commit().await.map_err(unavailable)
    }

    async fn read(&self, scope: &UsageScope) -> Result<Vec<UsageRecord>, LedgerError> {
        let (from, to) = bounds(scope);
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT record FROM tollgate_usage \
                 WHERE ($1::text IS NULL OR tenant = $1) AND started_at >= $2 AND started_at < $3 \
                 ORDER BY started_at, record_id",
                &[&scope.tenant, &from, &to],
            )
            .await
            .map_err(unavailable)?;
        let mut records = Vec::with_capacity(rows.len());
        for row in rows {
            let json: String = row.try_get(0).map_err(unavailable)?;
            let record = parse(&json)?;
            if scope.contains(&record) {
                records.push(record);
            }
        }
        Ok(records)
    }
}
