//! The state store in PostgreSQL, shared by every gateway that points at it.

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::{NoTls, Transaction};

use super::{
    CREATE_OBJECTS, Document, EventQuery, Expect, StoreError, StoredEvent, Write, corrupt_body,
};

/// A pool of connections to the state database.
pub(super) struct PostgresState {
    pool: Pool,
}

impl std::fmt::Debug for PostgresState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The connection string may hold a password.
        f.debug_struct("PostgresState").finish_non_exhaustive()
    }
}

fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("PostgreSQL: {error}"))
}

/// Key of the advisory lock that keeps two gateways from creating the tables at once.
const SCHEMA_LOCK: i64 = 0x746f_6c6c_6761_7465;

impl PostgresState {
    pub(super) async fn open(config: &str) -> Result<Self, StoreError> {
        let config: tokio_postgres::Config = config.parse().map_err(unavailable)?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(8)
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(unavailable)?;
        let mut client = pool.get().await.map_err(unavailable)?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        transaction
            .execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
            .await
            .map_err(unavailable)?;
        transaction
            .batch_execute(&format!(
                "{CREATE_OBJECTS}; CREATE TABLE IF NOT EXISTS tollgate_control_events (\
                 seq BIGSERIAL PRIMARY KEY, tenant TEXT NOT NULL, topic TEXT NOT NULL, \
                 body TEXT NOT NULL);"
            ))
            .await
            .map_err(unavailable)?;
        transaction.commit().await.map_err(unavailable)?;
        drop(client);
        Ok(Self { pool })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(unavailable)
    }

    pub(super) async fn version(&self) -> Result<i64, StoreError> {
        let row = self
            .client()
            .await?
            .query_one("SELECT version FROM tollgate_control_version", &[])
            .await
            .map_err(unavailable)?;
        Ok(row.get(0))
    }

    pub(super) async fn get(&self, kind: &str, id: &str) -> Result<Option<Document>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT tenant, revision, body FROM tollgate_control_objects \
                 WHERE kind = $1 AND id = $2",
                &[&kind, &id],
            )
            .await
            .map_err(unavailable)?;
        row.map(|row| document(kind, id, row.get(0), row.get(1), row.get(2)))
            .transpose()
    }

    pub(super) async fn list(
        &self,
        kind: &str,
        tenant: Option<&str>,
    ) -> Result<Vec<Document>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT id, tenant, revision, body FROM tollgate_control_objects \
                 WHERE kind = $1 AND ($2::TEXT IS NULL OR tenant = $2) ORDER BY id",
                &[&kind, &tenant],
            )
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|row| document(kind, row.get(0), row.get(1), row.get(2), row.get(3)))
            .collect()
    }

    pub(super) async fn write(&self, writes: Vec<Write>) -> Result<Vec<i64>, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        // First: every writer of events waits here, so events get their positions in
        // commit order and a reader that saw position n never later finds a smaller one.
        if super::moves_version(&writes) {
            transaction
                .execute(
                    "UPDATE tollgate_control_version SET version = version + 1",
                    &[],
                )
                .await
                .map_err(unavailable)?;
        }
        let mut events = Vec::new();
        for write in writes {
            if let Some(seq) = apply(&transaction, write).await? {
                events.push(seq);
            }
        }
        transaction.commit().await.map_err(unavailable)?;
        Ok(events)
    }

    pub(super) async fn events(
        &self,
        query: EventQuery<'_>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT seq, tenant, topic, body FROM tollgate_control_events \
                 WHERE seq > $1 AND topic = $2 AND ($3::TEXT IS NULL OR tenant = $3) \
                 ORDER BY seq LIMIT $4",
                &[
                    &query.after,
                    &query.topic,
                    &query.tenant,
                    &i64::from(query.limit),
                ],
            )
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|row| {
                let seq: i64 = row.get(0);
                let body: &str = row.get(3);
                Ok(StoredEvent {
                    seq,
                    tenant: row.get(1),
                    topic: row.get(2),
                    body: serde_json::from_str(body)
                        .map_err(|e| corrupt_body("event", &seq.to_string(), &e))?,
                })
            })
            .collect()
    }
}

fn document(
    kind: &str,
    id: &str,
    tenant: String,
    revision: i64,
    body: &str,
) -> Result<Document, StoreError> {
    Ok(Document {
        kind: kind.to_owned(),
        id: id.to_owned(),
        tenant,
        revision,
        body: serde_json::from_str(body).map_err(|e| corrupt_body(kind, id, &e))?,
    })
}

/// Applies one write; the position of the event it appended, if it is one.
async fn apply(transaction: &Transaction<'_>, write: Write) -> Result<Option<i64>, StoreError> {
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
                Expect::Absent => {
                    transaction
                        .execute(
                            "INSERT INTO tollgate_control_objects \
                             (kind, id, tenant, revision, body) VALUES ($1, $2, $3, 1, $4) \
                             ON CONFLICT DO NOTHING",
                            &[&kind, &id, &tenant, &body],
                        )
                        .await
                }
                Expect::Revision(revision) => {
                    transaction
                        .execute(
                            "UPDATE tollgate_control_objects SET tenant = $3, body = $4, \
                             revision = revision + 1 \
                             WHERE kind = $1 AND id = $2 AND revision = $5",
                            &[&kind, &id, &tenant, &body, &revision],
                        )
                        .await
                }
                Expect::Any => {
                    transaction
                        .execute(
                            "INSERT INTO tollgate_control_objects \
                             (kind, id, tenant, revision, body) VALUES ($1, $2, $3, 1, $4) \
                             ON CONFLICT (kind, id) DO UPDATE SET tenant = excluded.tenant, \
                             body = excluded.body, \
                             revision = tollgate_control_objects.revision + 1",
                            &[&kind, &id, &tenant, &body],
                        )
                        .await
                }
            }
            .map_err(unavailable)?;
            if changed == 0 {
                return Err(conflict(kind, &id));
            }
            Ok(None)
        }
        Write::Delete { kind, id, expect } => {
            let changed = match expect {
                Expect::Revision(revision) => {
                    transaction
                        .execute(
                            "DELETE FROM tollgate_control_objects \
                             WHERE kind = $1 AND id = $2 AND revision = $3",
                            &[&kind, &id, &revision],
                        )
                        .await
                }
                Expect::Any | Expect::Absent => {
                    transaction
                        .execute(
                            "DELETE FROM tollgate_control_objects WHERE kind = $1 AND id = $2",
                            &[&kind, &id],
                        )
                        .await
                }
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
            let row = transaction
                .query_one(
                    "INSERT INTO tollgate_control_events (tenant, topic, body) \
                     VALUES ($1, $2, $3) RETURNING seq",
                    &[&tenant, &topic, &body.to_string()],
                )
                .await
                .map_err(unavailable)?;
            Ok(Some(row.get(0)))
        }
    }
}
