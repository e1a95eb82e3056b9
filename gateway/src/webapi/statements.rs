//! `POST /v1/statements`: SQL with parameters for programmatic clients, its result paged
//! by `nextUri` in the manner of Trino's client protocol.
//!
//! ```text
//! POST /v1/statements {sql, parameters}  ─▶ page 0 + nextUri …/v1/statements/{id}/1
//! GET  …/{id}/1 ─▶ page 1 + nextUri …/{id}/2 ─▶ … ─▶ last page, no nextUri (query recorded)
//! DELETE …/{id}  ─▶ cancelled now; one nobody reads for `http.statement_idle` is too
//! POST /v1/statements?stream=true ─▶ the whole result in one streamed body
//! ```
//!
//! A statement lives in the memory of the gateway that started it, as Trino's queries live
//! on their coordinator; its pages are fetched from there. Only its principal sees it.
//! A dropped statement drops its query stream, which stops the query and records it as
//! cancelled.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::auth::WebCaller;
use super::errors::WebError;
use super::formats::{Encoder, Format};
use super::pages::{PageReader, PageSize};
use super::{WebApi, query};

/// Rows of a page unless the client asks for another number.
const DEFAULT_PAGE_ROWS: usize = 10_000;
/// Most rows of a page.
const MAX_PAGE_ROWS: usize = 1_000_000;
/// Arrow bytes after which a page ends (Trino's target result size).
const PAGE_BYTES: usize = 16 << 20;
/// Largest request body.
pub const MAX_BODY: usize = 1 << 20;

/// A started statement between two pages.
struct Statement {
    user: String,
    reader: PageReader,
    cancel: CancellationToken,
    next_page: u64,
    last_used: Instant,
}

/// The statements of one gateway, by id. A statement is out of the map while a page of it
/// is being read, and put back (with its next page number) after.
#[derive(Default)]
pub struct Statements {
    parked: Mutex<HashMap<String, Parked>>,
}

enum Parked {
    /// Waiting for its next page to be asked for.
    Idle(Box<Statement>),
    /// A page of it is being read: its principal, and how to stop it.
    Busy(String, CancellationToken),
}

impl Parked {
    fn user(&self) -> &str {
        match self {
            Self::Idle(statement) => &statement.user,
            Self::Busy(user, _) => user,
        }
    }
}

impl std::fmt::Debug for Statements {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Statements").finish_non_exhaustive()
    }
}

impl Statements {
    /// Cancels statements idle for longer than `idle`, looking every second while
    /// `statements` lives.
    pub fn start_sweeper(statements: &Arc<Self>, idle: Duration) {
        let weak: Weak<Self> = Arc::downgrade(statements);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let Some(statements) = weak.upgrade() else {
                    return;
                };
                statements.sweep(idle);
            }
        });
    }

    /// Drops (so cancels) the statements idle for longer than `idle`.
    fn sweep(&self, idle: Duration) {
        let expired: Vec<Parked> = {
            let mut parked = self.lock();
            let ids: Vec<String> = parked
                .iter()
                .filter(|(_, entry)| {
                    matches!(entry, Parked::Idle(statement) if statement.last_used.elapsed() > idle)
                })
                .map(|(id, _)| id.clone())
                .collect();
            ids.iter().filter_map(|id| parked.remove(id)).collect()
        };
        if !expired.is_empty() {
            tracing::info!(
                count = expired.len(),
                "Web-API statements abandoned; cancelled"
            );
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Parked>> {
        self.parked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes statement `id` of `user` to read page `page`.
    fn take(&self, id: &str, user: &str, page: u64) -> Result<Box<Statement>, WebError> {
        let mut parked = self.lock();
        let cancel = match parked.get(id) {
            Some(entry) if entry.user() == user => match entry {
                Parked::Busy(..) => {
                    return Err(WebError::Conflict(format!(
                        "a page of statement `{id}` is being read by another request"
                    )));
                }
                Parked::Idle(statement) if statement.next_page != page => {
                    return Err(WebError::Conflict(format!(
                        "page {page} of statement `{id}` is not the next one; fetch page {}",
                        statement.next_page
                    )));
                }
                Parked::Idle(statement) => statement.cancel.clone(),
            },
            // Another principal's statement is as unknown as one that ended.
            _ => return Err(WebError::Gone(id.to_owned())),
        };
        match parked.insert(id.to_owned(), Parked::Busy(user.to_owned(), cancel)) {
            Some(Parked::Idle(statement)) => Ok(statement),
            _ => Err(WebError::Gone(id.to_owned())),
        }
    }

    /// Marks a new statement `id` of `user` as being read.
    fn begin(&self, id: &str, user: &str, cancel: CancellationToken) {
        self.lock()
            .insert(id.to_owned(), Parked::Busy(user.to_owned(), cancel));
    }

    /// Parks a statement for its next page, unless it was cancelled meanwhile (then it is
    /// dropped, which stops its query).
    fn park(&self, id: &str, statement: Box<Statement>) {
        let mut parked = self.lock();
        if matches!(parked.get(id), Some(Parked::Busy(..))) {
            parked.insert(id.to_owned(), Parked::Idle(statement));
        }
    }

    /// Forgets a statement read to its end, failed, or dropped with its request.
    fn forget(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Statement `id` is being read until the returned guard is parked or dropped.
    fn reading<'a>(&'a self, id: &'a str) -> Reading<'a> {
        Reading {
            statements: self,
            id,
            parked: false,
        }
    }
}

/// A page of a statement being read. Unless the statement is parked for its next page, it
/// is forgotten when this is dropped: read to its end, failed, or dropped with a request
/// whose client went away (the statement went with it, which stopped its query).
struct Reading<'a> {
    statements: &'a Statements,
    id: &'a str,
    parked: bool,
}

impl Reading<'_> {
    /// Parks the statement for its next page.
    fn park(mut self, statement: Box<Statement>) {
        self.statements.park(self.id, statement);
        self.parked = true;
    }
}

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        if !self.parked {
            self.statements.forget(self.id);
        }
    }
}

impl Statements {
    /// Cancels statement `id` of `user`.
    fn cancel(&self, id: &str, user: &str) -> Result<(), WebError> {
        let removed = {
            let mut parked = self.lock();
            if parked.get(id).is_none_or(|entry| entry.user() != user) {
                return Err(WebError::NotFound(format!("statement `{id}`")));
            }
            parked.remove(id)
        };
        match removed {
            Some(Parked::Busy(_, cancel)) => cancel.cancel(),
            Some(Parked::Idle(statement)) => statement.cancel.cancel(),
            None => {}
        }
        Ok(())
    }
}

/// Query-string options of the statement routes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageOptions {
    /// Most rows per page (default 10 000, at most 1 000 000).
    #[serde(default)]
    rows: Option<usize>,
    /// The whole result in one streamed body, without pages.
    #[serde(default)]
    stream: bool,
}

impl PageOptions {
    fn size(&self) -> PageSize {
        PageSize {
            rows: self
                .rows
                .unwrap_or(DEFAULT_PAGE_ROWS)
                .clamp(1, MAX_PAGE_ROWS),
            bytes: PAGE_BYTES,
        }
    }
}

/// A JSON statement body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatementBody {
    sql: String,
    #[serde(default)]
    parameters: Vec<Value>,
}

/// `POST /v1/statements`: runs SQL (a JSON body `{sql, parameters}` or the SQL as text)
/// and answers its first page, or with `?stream=true` the whole result.
///
/// # Errors
/// 400 for a malformed body or options, the query's errors by SQLSTATE.
pub async fn submit(
    State(api): State<Arc<WebApi>>,
    caller: WebCaller,
    options: Result<Query<PageOptions>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let Query(options) = options.map_err(|e| WebError::BadRequest(e.body_text()))?;
    let format = Format::negotiate(headers.get(header::ACCEPT))?;
    let (sql, parameters) = statement_body(&headers, &body)?;
    let cancel = CancellationToken::new();
    let stream = query::start(&api.service, &caller, &sql, parameters, cancel.clone()).await?;
    let reader = PageReader::new(stream);
    if options.stream {
        return super::streamed::response(reader, format).await;
    }
    let id = Uuid::now_v7().simple().to_string();
    api.statements
        .begin(&id, &caller.principal.user, cancel.clone());
    let statement = Box::new(Statement {
        user: caller.principal.user.clone(),
        reader,
        cancel,
        next_page: 0,
        last_used: Instant::now(),
    });
    serve_page(&api, &headers, &id, statement, options.size(), format).await
}

/// `GET /v1/statements/{id}/{page}`: the statement's next page.
///
/// # Errors
/// 410 for a statement that ended or is not the caller's, 409 for a page that is not the
/// next one, the query's errors by SQLSTATE.
pub async fn page(
    State(api): State<Arc<WebApi>>,
    caller: WebCaller,
    Path((id, page)): Path<(String, u64)>,
    options: Result<Query<PageOptions>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let Query(options) = options.map_err(|e| WebError::BadRequest(e.body_text()))?;
    let format = Format::negotiate(headers.get(header::ACCEPT))?;
    let statement = api.statements.take(&id, &caller.principal.user, page)?;
    serve_page(&api, &headers, &id, statement, options.size(), format).await
}

/// `DELETE /v1/statements/{id}`: cancels the statement; its query stops and is recorded.
///
/// # Errors
/// 404 for a statement that is not the caller's or ended.
pub async fn cancel(
    State(api): State<Arc<WebApi>>,
    caller: WebCaller,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    api.statements.cancel(&id, &caller.principal.user)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The SQL and parameters of a request body: JSON `{sql, parameters}`, or the SQL as text.
fn statement_body(headers: &HeaderMap, body: &Bytes) -> Result<(String, Vec<Value>), WebError> {
    if body.len() > MAX_BODY {
        return Err(WebError::BadRequest(format!(
            "the statement body is larger than {MAX_BODY} bytes"
        )));
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if json {
        let body: StatementBody = serde_json::from_slice(body)
            .map_err(|e| WebError::BadRequest(format!("malformed statement body: {e}")))?;
        return Ok((body.sql, body.parameters));
    }
    let sql = std::str::from_utf8(body)
        .map_err(|_| WebError::BadRequest("the SQL text is not UTF-8".to_owned()))?;
    Ok((sql.to_owned(), Vec::new()))
}

/// Reads a page of `statement` and answers it; parks the statement for its next page, or
/// forgets it when it ended, failed, or its client went away.
async fn serve_page(
    api: &WebApi,
    headers: &HeaderMap,
    id: &str,
    mut statement: Box<Statement>,
    size: PageSize,
    format: Format,
) -> Result<Response, WebError> {
    let reading = api.statements.reading(id);
    let page = statement.next_page;
    let schema = statement.reader.schema();
    // In the JSON document, `data` is the rows as an array of objects.
    let mut encoder = Encoder::new(format, &schema)?;
    let wire = statement.reader.wire_bytes();
    let mut data = Vec::new();
    let read = statement
        .reader
        .next_page(size, |batch| {
            let bytes = encoder.batch(batch)?;
            wire.add(bytes.len() as u64);
            data.extend(bytes);
            Ok(())
        })
        .await;
    let rows = read?;
    data.extend(encoder.finish()?);
    let next = statement
        .reader
        .has_more()
        .then(|| format!("{}/v1/statements/{id}/{}", api.base_url(headers), page + 1));
    if next.is_some() {
        statement.next_page = page + 1;
        statement.last_used = Instant::now();
        reading.park(statement);
    }
    let mut response = if format == Format::Json {
        let columns: Vec<Value> = schema
            .fields()
            .iter()
            .map(|field| json!({ "name": field.name(), "type": field.data_type().to_string() }))
            .collect();
        let mut document = json!({
            "id": id,
            "columns": columns,
            "stats": {
                "state": if next.is_some() { "RUNNING" } else { "FINISHED" },
                "page": page,
                "rows": rows,
            },
        });
        if let Some(next) = &next {
            document["nextUri"] = json!(next);
        }
        let mut body = serde_json::to_vec(&document).map_err(|e| {
            WebError::Encode(datafusion::arrow::error::ArrowError::ExternalError(
                Box::new(e),
            ))
        })?;
        // `…}` becomes `…,"data":[…]}`: the rows are spliced in as encoded.
        body.pop();
        body.extend_from_slice(b",\"data\":");
        body.extend(data);
        body.push(b'}');
        Response::new(Body::from(body))
    } else {
        Response::new(Body::from(data))
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(value) = HeaderValue::from_str(id) {
        headers.insert("tollgate-statement-id", value);
    }
    if let Some(next) = next
        && let Ok(value) = HeaderValue::from_str(&format!("<{next}>; rel=\"next\""))
    {
        headers.insert(header::LINK, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_json_statements_or_sql_text() {
        let mut headers = HeaderMap::new();
        let (sql, parameters) =
            statement_body(&headers, &Bytes::from_static(b"SELECT 1")).expect("text");
        assert_eq!((sql.as_str(), parameters.len()), ("SELECT 1", 0));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let (sql, parameters) = statement_body(
            &headers,
            &Bytes::from_static(br#"{"sql":"SELECT $1","parameters":[5]}"#),
        )
        .expect("json");
        assert_eq!((sql.as_str(), parameters), ("SELECT $1", vec![json!(5)]));
        assert!(statement_body(&headers, &Bytes::from_static(br#"{"query":"x"}"#)).is_err());
    }
}
