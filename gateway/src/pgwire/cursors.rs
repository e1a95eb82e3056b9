//! SQL cursors: `DECLARE name CURSOR FOR query`, `FETCH [FORWARD] n | ALL FROM name`,
//! `CLOSE name | ALL`. psycopg's named (server-side) cursors and JDBC-style paging read large
//! results this way.
//!
//! A cursor holds its query's running result stream: each `FETCH` pulls only the batches
//! it needs, splitting the last one, so nothing collects the whole result. Cursors scan
//! forward only (PostgreSQL's `NO SCROLL`); a backward fetch is refused with 55000. A
//! cursor declared `WITHOUT HOLD` (the default) closes when its transaction ends, one
//! `WITH HOLD` when closed or when the connection ends. Closing a cursor before its end
//! drops the stream, which stops the query and records it.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use pgwire::error::PgWireResult;
use tokio::sync::Mutex;
use tollgate_planner::QueryStream;
use tollgate_planner::datafusion::arrow::datatypes::SchemaRef;
use tollgate_planner::datafusion::arrow::record_batch::RecordBatch;
use tollgate_planner::datafusion::sql::sqlparser::ast::{FetchDirection, Value, ValueWithSpan};
use tollgate_planner::metering::WireBytes;

use super::errors::{planner_error, user_error};

/// How many rows a `FETCH` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchCount {
    /// At most this many.
    Rows(usize),
    /// Every remaining row.
    All,
}

impl FetchCount {
    /// The forward count of a `FETCH` direction.
    ///
    /// # Errors
    /// 55000 for backward and absolute positioning (cursors scan forward only), 22023 for
    /// a count that is not a non-negative integer.
    pub fn from_direction(direction: &FetchDirection) -> PgWireResult<Self> {
        let rows = |limit: &ValueWithSpan| match &limit.value {
            Value::Number(text, _) => text
                .parse::<usize>()
                .map(Self::Rows)
                .map_err(|_| user_error("22023", format!("FETCH count {text} is not a row count"))),
            other => Err(user_error(
                "22023",
                format!("FETCH count {other} is not a row count"),
            )),
        };
        match direction {
            FetchDirection::Next => Ok(Self::Rows(1)),
            FetchDirection::Count { limit } => rows(limit),
            FetchDirection::Forward { limit: Some(limit) } => rows(limit),
            FetchDirection::Forward { limit: None } => Ok(Self::Rows(1)),
            FetchDirection::All | FetchDirection::ForwardAll => Ok(Self::All),
            _ => Err(user_error(
                "55000",
                "cursor can only scan forward: declare it with SCROLL is not supported",
            )),
        }
    }
}

/// One open cursor: its query's stream and the rows read from it but not yet fetched.
struct Cursor {
    schema: SchemaRef,
    with_hold: bool,
    binary: bool,
    rows: Mutex<CursorRows>,
}

struct CursorRows {
    stream: QueryStream,
    pending: Option<RecordBatch>,
}

/// The open cursors of one connection.
#[derive(Default)]
pub struct Cursors {
    open: std::sync::Mutex<HashMap<String, Arc<Cursor>>>,
}

impl std::fmt::Debug for Cursors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cursors").finish_non_exhaustive()
    }
}

impl Cursors {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Cursor>>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Opens cursor `name` over a running query; a `binary` cursor's rows are binary
    /// unless the fetch asks for a format.
    ///
    /// # Errors
    /// 42P03 if a cursor of that name is open.
    pub fn declare(
        &self,
        name: &str,
        stream: QueryStream,
        with_hold: bool,
        binary: bool,
    ) -> PgWireResult<()> {
        let mut open = self.lock();
        if open.contains_key(name) {
            return Err(user_error(
                "42P03",
                format!("cursor \"{name}\" already exists"),
            ));
        }
        let cursor = Cursor {
            schema: stream.schema(),
            with_hold,
            binary,
            rows: Mutex::new(CursorRows {
                stream,
                pending: None,
            }),
        };
        open.insert(name.to_owned(), Arc::new(cursor));
        Ok(())
    }

    /// The schema of cursor `name`'s rows and whether it is binary.
    ///
    /// # Errors
    /// 34000 if no such cursor is open.
    pub fn describe(&self, name: &str) -> PgWireResult<(SchemaRef, bool)> {
        self.lock()
            .get(name)
            .map(|cursor| (SchemaRef::clone(&cursor.schema), cursor.binary))
            .ok_or_else(|| missing(name))
    }

    /// The next rows of cursor `name`, as batches of its schema, and the counter of the
    /// bytes the caller writes for them (the query's usage record reports them).
    ///
    /// # Errors
    /// 34000 if no such cursor is open; the query's own error if it fails (the cursor is
    /// closed then).
    pub async fn fetch(
        &self,
        name: &str,
        count: FetchCount,
    ) -> PgWireResult<(Vec<RecordBatch>, WireBytes)> {
        let cursor = self
            .lock()
            .get(name)
            .cloned()
            .ok_or_else(|| missing(name))?;
        let mut rows = cursor.rows.lock().await;
        let bytes = rows.stream.wire_bytes();
        let mut wanted = match count {
            FetchCount::Rows(rows) => rows,
            FetchCount::All => usize::MAX,
        };
        let mut batches = Vec::new();
        while wanted > 0 {
            let batch = match rows.pending.take() {
                Some(batch) => batch,
                None => match rows.stream.next().await {
                    Some(Ok(batch)) => batch,
                    Some(Err(error)) => {
                        self.lock().remove(name);
                        return Err(planner_error(&error));
                    }
                    None => break,
                },
            };
            if batch.num_rows() > wanted {
                rows.pending = Some(batch.slice(wanted, batch.num_rows() - wanted));
                batches.push(batch.slice(0, wanted));
                wanted = 0;
            } else {
                wanted -= batch.num_rows();
                batches.push(batch);
            }
        }
        Ok((batches, bytes))
    }

    /// Closes cursor `name`.
    ///
    /// # Errors
    /// 34000 if no such cursor is open.
    pub fn close(&self, name: &str) -> PgWireResult<()> {
        self.lock()
            .remove(name)
            .map(drop)
            .ok_or_else(|| missing(name))
    }

    /// Closes every cursor (`CLOSE ALL`, `DISCARD ALL`).
    pub fn close_all(&self) {
        self.lock().clear();
    }

    /// Closes the cursors a transaction's end closes: those declared without hold.
    pub fn end_transaction(&self) {
        self.lock().retain(|_, cursor| cursor.with_hold);
    }
}

fn missing(name: &str) -> pgwire::error::PgWireError {
    user_error("34000", format!("cursor \"{name}\" does not exist"))
}
