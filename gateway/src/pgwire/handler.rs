//! Simple and extended query protocol over the planner's engine API.
//!
//! Session chatter (`SET`, `SHOW`, `RESET`, `BEGIN`, `COMMIT`, `ROLLBACK`, `DISCARD`, …) is
//! answered from the connection's own state ([`session_statements`](super::session_statements));
//! every other statement is planned at Parse ([`prepare`](super::prepare)) and goes to
//! [`QueryService`](tollgate_planner::QueryService), whose result stream is encoded row by
//! row as the client reads it — nothing collects a whole result. Portals with a row limit
//! pull only as many rows as asked and keep the rest of the stream suspended.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures::sink::Sink;
use futures::stream::{self, Stream, StreamExt, TryStreamExt};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler, send_describe_response};
use pgwire::api::results::{
    DescribePortalResponse, FieldFormat, FieldInfo, QueryResponse, Response, Tag,
};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, Type};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::data::DataRow;
use pgwire::messages::extendedquery::{Describe, TARGET_TYPE_BYTE_PORTAL};
use pgwire::messages::response::TransactionStatus;
use tollgate_planner::datafusion::common::ScalarValue;
use tollgate_planner::datafusion::sql::sqlparser::ast::Statement;
use tollgate_planner::{PlannedQuery, QueryContext, QueryStream};

use super::PgShared;
use super::connection::ConnectionState;
use super::copy::{CopyFormat, copy_response};
use super::encode;
use super::errors::{planner_error, user_error};
use super::params;
use super::prepare::{PreparedStatement, prepare};
use super::session_statements::{answer_session_statement, is_session_statement, shown_parameter};
use super::transaction_block;

/// The query handlers of one connection.
pub struct TollgateQueryHandler {
    shared: Arc<PgShared>,
    connection: Arc<ConnectionState>,
    parser: Arc<TollgateQueryParser>,
}

impl TollgateQueryHandler {
    /// Handlers for one connection.
    pub fn new(shared: Arc<PgShared>, connection: Arc<ConnectionState>) -> Self {
        let parser = Arc::new(TollgateQueryParser {
            shared: Arc::clone(&shared),
            connection: Arc::clone(&connection),
        });
        Self {
            shared,
            connection,
            parser,
        }
    }
}

fn check_size(shared: &PgShared, sql: &str) -> PgWireResult<()> {
    let limit = shared.max_query_size;
    if sql.len() as u64 > limit.bytes() {
        return Err(user_error(
            "54000",
            format!(
                "statement is too long: {} bytes, the limit is {limit}",
                sql.len()
            ),
        ));
    }
    Ok(())
}

/// Bytes of a DataRow message: type byte, length, field count and the fields.
fn data_row_bytes(row: &DataRow) -> u64 {
    7 + row.data.len() as u64
}

/// Encodes a result stream into data rows as the client pulls them, counting the bytes
/// for the query's usage record.
fn data_rows(
    stream: QueryStream,
    fields: Arc<Vec<FieldInfo>>,
) -> impl Stream<Item = PgWireResult<DataRow>> + Send + 'static {
    let wire = stream.wire_bytes();
    stream
        .map(move |batch| {
            let rows: Vec<PgWireResult<DataRow>> = match batch {
                Ok(batch) => match encode::encode_batch(&fields, &batch) {
                    Ok(rows) => {
                        wire.add(rows.iter().map(data_row_bytes).sum());
                        rows.into_iter().map(Ok).collect()
                    }
                    Err(error) => vec![Err(error)],
                },
                Err(error) => vec![Err(planner_error(&error))],
            };
            stream::iter(rows)
        })
        .flatten()
}

/// Runs a planned query and wraps its stream for the wire.
async fn run_query(
    shared: &PgShared,
    ctx: &QueryContext,
    planned: &PlannedQuery,
    parameters: Vec<ScalarValue>,
    format: &Format,
) -> PgWireResult<Response> {
    let fields = Arc::new(encode::field_infos(planned.schema(), format)?);
    let stream = shared
        .service
        .execute(ctx, planned, parameters)
        .await
        .map_err(|e| planner_error(&e))?;
    Ok(Response::Query(QueryResponse::new(
        Arc::clone(&fields),
        data_rows(stream, fields),
    )))
}

/// The fields of cursor `name`'s rows in `format`, else as the cursor was declared.
fn cursor_fields(
    connection: &ConnectionState,
    name: &str,
    format: Option<&Format>,
) -> PgWireResult<Vec<FieldInfo>> {
    let (schema, binary) = connection.cursors().describe(name)?;
    let declared = if binary {
        Format::UnifiedBinary
    } else {
        Format::UnifiedText
    };
    encode::field_infos(&schema, format.unwrap_or(&declared))
}

/// Opens, reads from or closes one of the connection's cursors. `format` is the result
/// format a Bind asked for (none in the simple protocol).
async fn run_cursor_statement(
    shared: &PgShared,
    connection: &ConnectionState,
    ctx: &QueryContext,
    statement: &PreparedStatement,
    parameters: Vec<ScalarValue>,
    format: Option<&Format>,
) -> PgWireResult<Response> {
    match statement {
        PreparedStatement::Declare {
            name,
            query,
            with_hold,
            binary,
        } => {
            let stream = shared
                .service
                .execute(ctx, query, parameters)
                .await
                .map_err(|e| planner_error(&e))?;
            connection
                .cursors()
                .declare(name, stream, *with_hold, *binary)?;
            Ok(Response::Execution(Tag::new("DECLARE CURSOR")))
        }
        PreparedStatement::Fetch { name, count } => {
            let fields = Arc::new(cursor_fields(connection, name, format)?);
            let (batches, wire) = connection.cursors().fetch(name, *count).await?;
            let mut rows = Vec::new();
            for batch in &batches {
                let encoded = encode::encode_batch(&fields, batch)?;
                wire.add(encoded.iter().map(data_row_bytes).sum());
                rows.extend(encoded.into_iter().map(Ok));
            }
            let mut response = QueryResponse::new(fields, stream::iter(rows));
            response.set_command_tag("FETCH");
            Ok(Response::Query(response))
        }
        PreparedStatement::CloseCursor(Some(name)) => {
            connection.cursors().close(name)?;
            Ok(Response::Execution(Tag::new("CLOSE CURSOR")))
        }
        PreparedStatement::CloseCursor(None) => {
            connection.cursors().close_all();
            Ok(Response::Execution(Tag::new("CLOSE CURSOR ALL")))
        }
        PreparedStatement::Session(_)
        | PreparedStatement::Query(_)
        | PreparedStatement::CopyOut(..) => Err(user_error(
            "XX000",
            "internal error: not a cursor statement",
        )),
    }
}

/// Runs a planned query and streams it as COPY data.
async fn run_copy(
    shared: &PgShared,
    ctx: &QueryContext,
    planned: &PlannedQuery,
    format: &CopyFormat,
) -> PgWireResult<Response> {
    let fields = encode::field_infos(planned.schema(), &Format::UnifiedText)?;
    let stream = shared
        .service
        .execute(ctx, planned, Vec::new())
        .await
        .map_err(|e| planner_error(&e))?;
    Ok(Response::CopyOut(copy_response(stream, fields, format)))
}

/// `response` with its rows (or COPY data) read to the end, which releases what the query
/// holds; they are sent from memory.
///
/// # Errors
/// The query's error, if it fails on the way.
async fn run_to_end(response: Response) -> PgWireResult<Response> {
    match response {
        Response::Query(mut query) => {
            let rows: Vec<_> = query.data_rows.try_collect().await?;
            query.data_rows = Box::pin(stream::iter(rows.into_iter().map(Ok)));
            Ok(Response::Query(query))
        }
        Response::CopyOut(mut copy) => {
            let data: Vec<_> = copy.data_stream.try_collect().await?;
            copy.data_stream = Box::pin(stream::iter(data.into_iter().map(Ok)));
            Ok(Response::CopyOut(copy))
        }
        other => Ok(other),
    }
}

#[async_trait]
impl SimpleQueryHandler for TollgateQueryHandler {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        check_size(&self.shared, query)?;
        let statements = self
            .shared
            .service
            .parse(&self.connection.query_context()?, query)
            .map_err(|e| planner_error(&e))?;
        let mut responses = Vec::with_capacity(statements.len());
        let last = statements.len().saturating_sub(1);
        let mut failed = client.transaction_status() == TransactionStatus::Error;
        for (position, statement) in statements.into_iter().enumerate() {
            // A context per statement: a SET earlier in the batch applies to the next one.
            let ctx = self.connection.query_context()?;
            let session = is_session_statement(&statement).then_some(&statement);
            let refusal = transaction_block::refusal(failed, session);
            // As PostgreSQL, the first failing statement ends the batch.
            let prepared = match refusal {
                Some(refusal) => Err(refusal),
                None => prepare(&self.shared, &ctx, statement).await,
            };
            let response = match prepared {
                Ok(PreparedStatement::Session(statement)) => {
                    // Only the block's end or a return to a savepoint get here if it failed.
                    let ended_failure = std::mem::take(&mut failed);
                    answer_session_statement(&self.connection, client, &statement, ended_failure)
                        .await
                }
                Ok(PreparedStatement::Query(planned)) => {
                    run_query(
                        &self.shared,
                        &ctx,
                        &planned,
                        Vec::new(),
                        &Format::UnifiedText,
                    )
                    .await
                }
                Ok(PreparedStatement::CopyOut(planned, format)) => {
                    run_copy(&self.shared, &ctx, &planned, &format).await
                }
                Ok(cursor_statement) => {
                    run_cursor_statement(
                        &self.shared,
                        &self.connection,
                        &ctx,
                        &cursor_statement,
                        Vec::new(),
                        None,
                    )
                    .await
                }
                Err(error) => Err(error),
            };
            // A statement followed by others runs to its end before the next starts, as in
            // PostgreSQL: its rows are sent after the whole batch is planned, and a stream
            // left open would hold a slot of the tenant's pool the next statement waits for.
            let response = match response {
                Ok(response) if position < last => run_to_end(response).await,
                other => other,
            };
            match response {
                Ok(response) => responses.push(response),
                Err(PgWireError::UserError(info)) => {
                    responses.push(Response::Error(info));
                    break;
                }
                Err(other) => return Err(other),
            }
        }
        Ok(responses)
    }
}

/// Parses and plans statements for the extended protocol.
pub struct TollgateQueryParser {
    shared: Arc<PgShared>,
    connection: Arc<ConnectionState>,
}

#[async_trait]
impl QueryParser for TollgateQueryParser {
    type Statement = PreparedStatement;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<Self::Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        check_size(&self.shared, sql)?;
        let declared = types
            .iter()
            .map(|pg_type| pg_type.as_ref().and_then(params::declared_sql_type))
            .collect();
        let ctx = self
            .connection
            .query_context()?
            .with_declared_parameters(declared);
        let mut statements = self
            .shared
            .service
            .parse(&ctx, sql)
            .map_err(|e| planner_error(&e))?;
        match statements.len() {
            0 => Ok(None),
            1 => prepare(&self.shared, &ctx, statements.remove(0))
                .await
                .map(Some),
            _ => Err(user_error(
                "42601",
                "cannot insert multiple commands into a prepared statement",
            )),
        }
    }

    fn get_parameter_types(&self, statement: &Self::Statement) -> PgWireResult<Vec<Type>> {
        match statement {
            PreparedStatement::Session(_)
            | PreparedStatement::CopyOut(..)
            | PreparedStatement::Fetch { .. }
            | PreparedStatement::CloseCursor(_) => Ok(Vec::new()),
            PreparedStatement::Query(planned)
            | PreparedStatement::Declare { query: planned, .. } => planned
                .parameter_types()
                .iter()
                .map(|data_type| match data_type {
                    Some(data_type) => encode::pg_type(data_type),
                    None => Ok(Type::TEXT),
                })
                .collect(),
        }
    }

    fn get_result_schema(
        &self,
        statement: &Self::Statement,
        format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        match statement {
            PreparedStatement::Session(statement) => match statement.as_ref() {
                Statement::ShowVariable { variable } => Ok(vec![FieldInfo::new(
                    shown_parameter(variable),
                    None,
                    None,
                    Type::TEXT,
                    FieldFormat::Text,
                )]),
                _ => Ok(Vec::new()),
            },
            PreparedStatement::CopyOut(..)
            | PreparedStatement::Declare { .. }
            | PreparedStatement::CloseCursor(_) => Ok(Vec::new()),
            PreparedStatement::Fetch { name, .. } => cursor_fields(&self.connection, name, format),
            PreparedStatement::Query(planned) => {
                encode::field_infos(planned.schema(), format.unwrap_or(&Format::UnifiedText))
            }
        }
    }
}

#[async_trait]
impl ExtendedQueryHandler for TollgateQueryHandler {
    type Statement = PreparedStatement;
    type QueryParser = TollgateQueryParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        Arc::clone(&self.parser)
    }

    /// As in PostgreSQL, an open cursor can be described as the portal of its name
    /// (psycopg describes its named cursors so after declaring them).
    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if message.target_type == TARGET_TYPE_BYTE_PORTAL
            && let Some(name) = message.name.as_deref()
            && client.portal_store().get_portal(name).is_none()
            && let Ok(fields) = cursor_fields(&self.connection, name, None)
        {
            return send_describe_response(client, &DescribePortalResponse::new(fields)).await;
        }
        self._on_describe(client, message).await
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let stored: &StoredStatement<PreparedStatement> = &portal.statement;
        let failed = client.transaction_status() == TransactionStatus::Error;
        let session = match &stored.statement {
            PreparedStatement::Session(statement) => Some(&**statement),
            _ => None,
        };
        if let Some(refusal) = transaction_block::refusal(failed, session) {
            return Err(refusal);
        }
        match &stored.statement {
            PreparedStatement::Session(statement) => {
                answer_session_statement(&self.connection, client, statement, failed).await
            }
            PreparedStatement::CopyOut(planned, format) => {
                run_copy(
                    &self.shared,
                    &self.connection.query_context()?,
                    planned,
                    format,
                )
                .await
            }
            PreparedStatement::Query(planned) => {
                let values = self.bound_parameters(portal)?;
                run_query(
                    &self.shared,
                    &self.connection.query_context()?,
                    planned,
                    values,
                    &portal.result_column_format,
                )
                .await
            }
            cursor_statement => {
                let values = self.bound_parameters(portal)?;
                run_cursor_statement(
                    &self.shared,
                    &self.connection,
                    &self.connection.query_context()?,
                    cursor_statement,
                    values,
                    Some(&portal.result_column_format),
                )
                .await
            }
        }
    }
}

impl TollgateQueryHandler {
    /// The values a Bind gave the portal's parameters, in the types the client declared
    /// at Parse, else the inferred ones ([`params::wire_type`]).
    ///
    /// # Errors
    /// 08P01 when the Bind supplies another number of parameters; 22P02 and friends for
    /// values that do not decode.
    fn bound_parameters(
        &self,
        portal: &Portal<PreparedStatement>,
    ) -> PgWireResult<Vec<ScalarValue>> {
        let stored = &portal.statement;
        let inferred = self.parser.get_parameter_types(&stored.statement)?;
        let types: Vec<Type> = inferred
            .iter()
            .enumerate()
            .map(|(i, inferred)| {
                params::wire_type(
                    stored.parameter_types.get(i).and_then(Option::as_ref),
                    inferred,
                )
            })
            .collect();
        if portal.parameter_len() != types.len() {
            return Err(user_error(
                "08P01",
                format!(
                    "bind message supplies {} parameters, but prepared statement \"{}\" requires {}",
                    portal.parameter_len(),
                    stored.id,
                    types.len()
                ),
            ));
        }
        params::decode(portal, &types)
    }
}
