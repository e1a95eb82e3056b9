//! The state store in a SQLite file (WAL, full sync): the embedded default, one gateway.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::{
    CREATE_OBJECTS, Document, EventQuery, Expect, StoreError, StoredEvent, Write, corrupt_body,
};

/// A SQLite state file.
#[derive(Debug)]
pub(super) struct SqliteState {
    connection: Arc<Mutex<Connection>>,
}

fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("SQLite: {error}"))
}

impl SqliteState {
    pub(super) async fn open(path: &Path) -> Result<Self, StoreError> {
        let path = path.to_owned();
        let connection = tokio::task::spawn_blocking(move || {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(unavailable)?;
            }
            let connection = Connection::open(&path).map_err(unavailable)?;
            connection
                .execute_batch(&format!(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                     PRAGMA busy_timeout = 5000; {CREATE_OBJECTS}; \
                     CREATE TABLE IF NOT EXISTS tollgate_control_events (\
                     seq INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, \
                     topic TEXT NOT NULL, body TEXT NOT NULL);"
                ))
                .map_err(unavailable)?;
            Ok::<_, StoreError>(connection)
        })
        .await
        .map_err(unavailable)??;
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    /// Runs `work` with the connection on a blocking thread.
    async fn with<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let connection = Arc::clone(&self.connection);
        tokio::task::spawn_blocking(move || {
            let mut connection = connection.lock().unwrap_or_else(PoisonError::into_inner);
            work(&mut connection)
        })
        .await
        .map_err(unavailable)?
    }

    pub(super) async fn version(&self) -> Result<i64, StoreError> {
        self.with(|c| {
            c.query_row("SELECT version FROM tollgate_control_version", [], |row| {
                row.get(0)
            })
            .map_err(unavailable)
        })
        .await
    }

    pub(super) async fn get(&self, kind: &str, id: &str) -> Result<Option<Document>, StoreError> {
        let (kind, id) = (kind.to_owned(), id.to_owned());
        self.with(move |c| {
            let row = c
                .query_row(
                    "SELECT tenant, revision, body FROM tollgate_control_objects \
                     WHERE kind = ?1 AND id = ?2",
                    params![kind, id],
                    |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get(1)?,
                            row.get::<_, String>(2)?,
                        ))
                    },
                )
                .optional()
                .map_err(unavailable)?;
            row.map(|(tenant, revision, body)| document(kind, id, tenant, revision, &body))
                .transpose()
        })
        .await
    }

    pub(super) async fn list(
        &self,
        kind: &str,
        tenant: Option<&str>,
    ) -> Result<Vec<Document>, StoreError> {
        let (kind, tenant) = (kind.to_owned(), tenant.map(str::to_owned));
        self.with(move |c| {
            let mut statement = c
                .prepare_cached(
                    "SELECT id, tenant, revision, body FROM tollgate_control_objects \
                     WHERE kind = ?1 AND (?2 IS NULL OR tenant = ?2) ORDER BY id",
                )
                .map_err(unavailable)?;
            let rows = statement
                .query_map(params![kind, tenant], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get(2)?,
                        row.get::<_, String>(3)?,
                    ))
                })
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            rows.into_iter()
                .map(|(id, tenant, revision, body)| {
                    document(kind.clone(), id, tenant, revision, &body)
                })
                .collect()
        })
        .await
    }

    pub(super) async fn write(&self, writes: Vec<Write>) -> Result<Vec<i64>, StoreError> {
        let moves_version = super::moves_version(&writes);
        self.with(move |c| {
            let transaction = c.transaction().map_err(unavailable)?;
            if moves_version {
                transaction
                    .execute(
                        "UPDATE tollgate_control_version SET version = version + 1",
                        [],
                    )
                    .map_err(unavailable)?;
            }
            let mut events = Vec::new();
            for write in writes {
                if let Some(seq) = apply(&transaction, write)? {
                    events.push(seq);
                }
            }
            transaction.commit().map_err(unavailable)?;
            Ok(events)
        })
        .await
    }

    pub(super) async fn events(
        &self,
        query: EventQuery<'_>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let tenant = query.tenant.map(str::to_owned);
        let topic = query.topic.to_owned();
        let (after, limit) = (query.after, query.limit);
        self.with(move |c| {
            let mut statement = c
                .prepare_cached(
                    "SELECT seq, tenant, topic, body FROM tollgate_control_events \
                     WHERE seq > ?1 AND topic = ?2 AND (?3 IS NULL OR tenant = ?3) \
                     ORDER BY seq LIMIT ?4",
                )
                .map_err(unavailable)?;
            let rows = statement
                .query_map(params![after, topic, tenant, limit], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                    ))
                })
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            rows.into_iter()
                .map(|(seq, tenant, topic, body)| {
                    let body = serde_json::from_str(&body)
                        .map_err(|e| corrupt_body("event", &seq.to_string(), &e))?;
                    Ok(StoredEvent {
                        seq,
                        tenant,
                        topic,
                        body,
                    })
                })
                .collect()
        })
        .await
    }
}

fn document(
    kind: String,
    id: String,
    tenant: String,
    revision: i64,
    body: &str,
) -> Result<Document, StoreError> {
    let body = serde_json::from_str(body).map_err(|e| corrupt_body(&kind, &id, &e))?;
    Ok(Document {
        kind,
        id,
        tenant,
        revision,
        body,
    })
}

/// Applies one write; the position of the event it appended, if it is one.
fn apply(transaction: &Transaction<'_>, write: Write) -> Result<Option<i64>, StoreError> {
    let conflict = |kind: &str, id: &str| StoreError::Conflict {
        kind: kind.to_owned(),
        id: id.to_owned(),
    };
    match write {
        Write::Put {
            kind,
            id,
            tenant,
            body,
            expect,
        } => {
            let body = body.to_string();
            let changed = match expect {
                Expect::Absent => transaction.execute(
                    "INSERT INTO tollgate_control_objects (kind, id, tenant, revision, body) \
                     VALUES (?1, ?2, ?3, 1, ?4) ON CONFLICT DO NOTHING",
                    params![kind, id, tenant, body],
                ),
                Expect::Revision(revision) => transaction.execute(
                    "UPDATE tollgate_control_objects SET tenant = ?3, body = ?4, \
                     revision = revision + 1 WHERE kind = ?1 AND id = ?2 AND revision = ?5",
                    params![kind, id, tenant, body, revision],
                ),
                Expect::Any => transaction.execute(
                    "INSERT INTO tollgate_control_objects (kind, id, tenant, revision, body) \
                     VALUES (?1, ?2, ?3, 1, ?4) ON CONFLICT (kind, id) DO UPDATE SET \
                     tenant = excluded.tenant, body = excluded.body, \
                     revision = tollgate_control_objects.revision + 1",
                    params![kind, id, tenant, body],
                ),
            }
            .map_err(unavailable)?;
            if changed == 0 {
                return Err(conflict(kind, &id));
            }
            Ok(None)
        }
        Write::Delete { kind, id, expect } => {
            let changed = match expect {
                Expect::Revision(revision) => transaction.execute(
                    "DELETE FROM tollgate_control_objects \
                     WHERE kind = ?1 AND id = ?2 AND revision = ?3",
                    params![kind, id, revision],
                ),
                Expect::Any | Expect::Absent => transaction.execute(
                    "DELETE FROM tollgate_control_objects WHERE kind = ?1 AND id = ?2",
                    params![kind, id],
                ),
            }
            .map_err(unavailable)?;
            if changed == 0 && matches!(expect, Expect::Revision(_)) {
                return Err(conflict(kind, &id));
            }
            Ok(None)
        }
        Write::Event {
            tenant,
            topic,
            body,
        } => {
            let seq = transaction
                .query_row(
                    "INSERT INTO tollgate_control_events (tenant, topic, body) \
                     VALUES (?1, ?2, ?3) RETURNING seq",
                    params![tenant, topic, body.to_string()],
                    |row| row.get(0),
                )
                .map_err(unavailable)?;
            Ok(Some(seq))
        }
    }
}
