//! The control plane's state store: documents with revisions, an event log and a version
//! number every write increases, in SQLite (one gateway) or PostgreSQL (several gateways).
//!
//! ```text
//! objects   (kind, id) → tenant, revision, JSON body     tenants, keys, channels, orders, …
//! events    seq → tenant, topic, JSON body               what tenants are told, and the audit
//! version   one number, increased by every write          gateways poll it to see changes
//! ```
//!
//! A write is a batch applied in one transaction: puts and deletes that each expect a
//! revision (so two gateways cannot both claim an order), and events. Typed records on top
//! of the documents live in [`records`]; turning them into catalog options in [`state`].

mod postgres;
pub mod push_records;
pub mod records;
mod sqlite;
pub mod state;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::control_options::{ControlOptions, StateStoreKind};

/// Why the state store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or refused the statement.
    #[error("control state store unavailable: {0}")]
    Unavailable(String),
    /// A write expected a revision that is no longer there: someone else wrote first.
    #[error("the {kind} `{id}` was changed concurrently")]
    Conflict {
        /// Kind of the document.
        kind: String,
        /// Its id.
        id: String,
    },
    /// A stored body does not have the expected shape.
    #[error("the stored {kind} `{id}` cannot be read: {message}")]
    Corrupt {
        /// Kind of the document.
        kind: String,
        /// Its id.
        id: String,
        /// What did not parse.
        message: String,
    },
}

/// One stored document.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// Kind (`tenant`, `channel`, …).
    pub kind: String,
    /// Id, unique within its kind.
    pub id: String,
    /// The tenant it belongs to (empty for the provider's own).
    pub tenant: String,
    /// Increased by every write of it.
    pub revision: i64,
    /// Its JSON body.
    pub body: Value,
}

impl Document {
    /// The body as `T`.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if it does not parse.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, StoreError> {
        serde_json::from_value(self.body.clone()).map_err(|e| StoreError::Corrupt {
            kind: self.kind.clone(),
            id: self.id.clone(),
            message: e.to_string(),
        })
    }
}

/// What a put or delete expects to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// No document with that id.
    Absent,
    /// The document at this revision.
    Revision(i64),
    /// Anything.
    Any,
}

/// Kinds whose documents the catalog served is not built from (console sessions, push
/// cursors): a batch that writes only these leaves the store's version alone, so no
/// gateway rebuilds its catalog for it.
const OUTSIDE_CATALOG: &[&str] = &[records::CONSOLE_SESSION, push_records::PUSH_CURSOR];

/// Whether `writes` change the store's version: anything but puts and deletes of
/// [`OUTSIDE_CATALOG`] kinds (events included, whose positions follow the version's order).
fn moves_version(writes: &[Write]) -> bool {
    writes.iter().any(|write| match write {
        Write::Put { kind, .. } | Write::Delete { kind, .. } => !OUTSIDE_CATALOG.contains(kind),
        Write::Event { .. } => true,
    })
}

/// One change of a write batch.
#[derive(Debug, Clone)]
pub enum Write {
    /// Create or replace a document.
    Put {
        /// Kind.
        kind: &'static str,
        /// Id.
        id: String,
        /// Owning tenant.
        tenant: String,
        /// JSON body.
        body: Value,
        /// What must be there now.
        expect: Expect,
    },
    /// Remove a document.
    Delete {
        /// Kind.
        kind: &'static str,
        /// Id.
        id: String,
        /// What must be there now.
        expect: Expect,
    },
    /// Append an event.
    Event {
        /// The tenant it is for (empty for provider-only events).
        tenant: String,
        /// `tenant` for events the tenant reads, `audit` for the audit trail.
        topic: &'static str,
        /// JSON body.
        body: Value,
    },
}

impl Write {
    /// A put of `record` as JSON.
    ///
    /// # Panics
    /// Never: records are plain data that always serialize.
    pub fn put(
        kind: &'static str,
        id: impl Into<String>,
        tenant: impl Into<String>,
        record: &impl Serialize,
        expect: Expect,
    ) -> Self {
        Self::Put {
            kind,
            id: id.into(),
            tenant: tenant.into(),
            body: serde_json::to_value(record).unwrap_or(Value::Null),
            expect,
        }
    }

    /// An event for `tenant` on `topic`.
    pub fn event(tenant: impl Into<String>, topic: &'static str, body: &impl Serialize) -> Self {
        Self::Event {
            tenant: tenant.into(),
            topic,
            body: serde_json::to_value(body).unwrap_or(Value::Null),
        }
    }
}

/// One event of the log.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Position in the log; later events have larger numbers.
    pub seq: i64,
    /// The tenant it is for.
    pub tenant: String,
    /// `tenant` or `audit`.
    pub topic: String,
    /// JSON body.
    pub body: Value,
}

/// Which events to read.
#[derive(Debug, Clone, Copy)]
pub struct EventQuery<'a> {
    /// Only this tenant's; `None` for every tenant's.
    pub tenant: Option<&'a str>,
    /// Only this topic.
    pub topic: &'a str,
    /// Only events after this position.
    pub after: i64,
    /// At most this many.
    pub limit: u32,
}

/// The state store.
#[derive(Debug)]
pub struct ControlStore {
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    Sqlite(sqlite::SqliteState),
    Postgres(postgres::PostgresState),
}

impl ControlStore {
    /// Opens (and creates if needed) the store `options` name.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if the database cannot be opened or its tables created.
    pub async fn open(options: &ControlOptions) -> Result<Self, StoreError> {
        let backend = match options.store {
            StateStoreKind::Sqlite => {
                Backend::Sqlite(sqlite::SqliteState::open(&options.path).await?)
            }
            StateStoreKind::Postgres => {
                let config = options.postgres.as_deref().ok_or_else(|| {
                    StoreError::Unavailable(
                        "control.store is \"postgres\" but control.postgres is not set".to_owned(),
                    )
                })?;
                Backend::Postgres(postgres::PostgresState::open(config).await?)
            }
        };
        Ok(Self { backend })
    }

    /// The version: it changes whenever any gateway sharing the store writes something the
    /// catalog is built from, or an event.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn version(&self) -> Result<i64, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.version().await,
            Backend::Postgres(p) => p.version().await,
        }
    }

    /// The document `kind`/`id`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn get(&self, kind: &str, id: &str) -> Result<Option<Document>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.get(kind, id).await,
            Backend::Postgres(p) => p.get(kind, id).await,
        }
    }

    /// Every document of `kind`, of one tenant if `tenant` is given, ordered by id.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn list(
        &self,
        kind: &str,
        tenant: Option<&str>,
    ) -> Result<Vec<Document>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.list(kind, tenant).await,
            Backend::Postgres(p) => p.list(kind, tenant).await,
        }
    }

    /// Applies `writes` in one transaction and returns the positions of its events.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] (nothing written) if a put or delete did not find what it
    /// expected; [`StoreError::Unavailable`].
    pub async fn write(&self, writes: Vec<Write>) -> Result<Vec<i64>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.write(writes).await,
            Backend::Postgres(p) => p.write(writes).await,
        }
    }

    /// Events in order of position.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`].
    pub async fn events(&self, query: EventQuery<'_>) -> Result<Vec<StoredEvent>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.events(query).await,
            Backend::Postgres(p) => p.events(query).await,
        }
    }
}

/// The tables, in SQL both databases accept except for the event sequence.
const CREATE_OBJECTS: &str = "CREATE TABLE IF NOT EXISTS tollgate_control_objects (\
     kind TEXT NOT NULL, id TEXT NOT NULL, tenant TEXT NOT NULL, revision BIGINT NOT NULL, \
     body TEXT NOT NULL, PRIMARY KEY (kind, id)); \
     CREATE INDEX IF NOT EXISTS tollgate_control_objects_by_tenant \
     ON tollgate_control_objects (kind, tenant, id); \
     CREATE TABLE IF NOT EXISTS tollgate_control_version (\
     singleton INTEGER PRIMARY KEY, version BIGINT NOT NULL); \
     INSERT INTO tollgate_control_version (singleton, version) VALUES (1, 0) \
     ON CONFLICT DO NOTHING";

/// Why a JSON body could not be read back.
fn corrupt_body(kind: &str, id: &str, error: &serde_json::Error) -> StoreError {
    StoreError::Corrupt {
        kind: kind.to_owned(),
        id: id.to_owned(),
        message: error.to_string(),
    }
}
