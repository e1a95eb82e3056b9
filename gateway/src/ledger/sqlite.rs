//! The default store: a SQLite file in WAL mode with full sync, so a committed group
//! survives a crash of the process and of the machine.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, params};
use tollgate_planner::metering::{LedgerError, UsageRecord, UsageScope};

use super::store::{CREATE_INDEX, CREATE_TABLE, LedgerStore, bounds, parse, row};

/// A SQLite ledger file.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    writer: Arc<Mutex<Connection>>,
}

fn unavailable(path: &Path, error: impl std::fmt::Display) -> LedgerError {
    LedgerError::Unavailable(format!("SQLite ledger {}: {error}", path.display()))
}

impl SqliteStore {
    /// Opens (or creates) the ledger at `path`.
    ///
    /// # Errors
    /// [`LedgerError::Unavailable`] if the file cannot be opened or its table created.
    pub async fn open(path: &Path) -> Result<Self, LedgerError> {
        let path = path.to_owned();
        let opened = path.clone();
        let writer = tokio::task::spawn_blocking(move || {
            if let Some(parent) = opened.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| unavailable(&opened, e))?;
            }
            let connection = Connection::open(&opened).map_err(|e| unavailable(&opened, e))?;
            connection
                .execute_batch(&format!(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                     PRAGMA busy_timeout = 5000; {CREATE_TABLE}; {CREATE_INDEX};"
                ))
                .map_err(|e| unavailable(&opened, e))?;
            Ok::<_, LedgerError>(connection)
        })
        .await
        .map_err(|e| unavailable(&path, e))??;
        Ok(Self {
            path,
            writer: Arc::new(Mutex::new(writer)),
        })
    }
}

#[async_trait]
impl LedgerStore for SqliteStore {
    async fn append(&self, records: &[UsageRecord]) -> Result<(), LedgerError> {
        let rows = records.iter().map(row).collect::<Result<Vec<_>, _>>()?;
        let writer = Arc::clone(&self.writer);
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let mut connection = writer.lock().unwrap_or_else(PoisonError::into_inner);
            let transaction = connection.transaction().map_err(|e| unavailable(&path, e))?;
            {
                let mut insert = transaction
                    .prepare_cached(
                        "INSERT OR IGNORE INTO tollgate_usage \
                         (record_id, query_id, tenant, started_at, record) VALUES (?1, ?2, ?3, ?4, ?5)",
                    )
                    .map_err(|e| unavailable(&path, e))?;
                for (record_id, query_id, tenant, started_at, json) in &rows {
                    insert
                        .execute(params![record_id, query_id, tenant, started_at, json])
                        .map_err(|e| unavailable(&path, e))?;
                }
            }
            transaction.commit().map_err(|e| unavailable(&path, e))
        })
        .await
        .map_err(|e| unavailable(&self.path, e))?
    }

    async fn read(&self, scope: &UsageScope) -> Result<Vec<UsageRecord>, LedgerError> {
        let path = self.path.clone();
        let tenant = scope.tenant.clone();
        let (from, to) = bounds(scope);
        let scope = scope.clone();
        tokio::task::spawn_blocking(move || {
            // A reader of its own: WAL lets it read while the writer commits.
            let connection = Connection::open_with_flags(
                &path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(|e| unavailable(&path, e))?;
            let mut select = connection
                .prepare(
                    "SELECT record FROM tollgate_usage \
                     WHERE (?1 IS NULL OR tenant = ?1) AND started_at >= ?2 AND started_at < ?3 \
                     ORDER BY started_at, record_id",
                )
                .map_err(|e| unavailable(&path, e))?;
            let rows = select
                .query_map(params![tenant, from, to], |row| row.get::<_, String>(0))
                .map_err(|e| unavailable(&path, e))?;
            let mut records = Vec::new();
            for json in rows {
                let record = parse(&json.map_err(|e| unavailable(&path, e))?)?;
                if scope.contains(&record) {
                    records.push(record);
                }
            }
            Ok(records)
        })
        .await
        .map_err(|e| unavailable(&self.path, e))?
    }
}
