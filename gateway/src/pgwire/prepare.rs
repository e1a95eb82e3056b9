//! What Parse keeps of a statement: session chatter left to the front end, or a query, a
//! `COPY … TO STDOUT` or a cursor statement planned in the tenant's session.

use pgwire::error::PgWireResult;
use tollgate_planner::datafusion::sql::sqlparser::ast::{
    CloseCursor, CopySource, CopyTarget, DeclareType, Statement,
};
use tollgate_planner::{PlannedQuery, QueryContext};

use super::PgShared;
use super::copy::CopyFormat;
use super::cursors::FetchCount;
use super::errors::{planner_error, user_error};
use super::session_statements::is_session_statement;

/// A statement as stored by Parse: chatter for the front end, or a planned query.
#[derive(Debug, Clone)]
pub enum PreparedStatement {
    /// Answered from session state.
    Session(Box<Statement>),
    /// Planned in the tenant's session.
    Query(Box<PlannedQuery>),
    /// `COPY (query) TO STDOUT` or `COPY dataset [(columns)] TO STDOUT`: a planned query
    /// sent as COPY data.
    CopyOut(Box<PlannedQuery>, CopyFormat),
    /// `DECLARE name CURSOR FOR query`: a planned query whose rows later `FETCH`es read.
    Declare {
        /// The cursor's name.
        name: String,
        /// Its query.
        query: Box<PlannedQuery>,
        /// Whether it outlives its transaction.
        with_hold: bool,
        /// Whether simple-protocol `FETCH`es return binary rows.
        binary: bool,
    },
    /// `FETCH n FROM name`.
    Fetch {
        /// The cursor's name.
        name: String,
        /// How many rows.
        count: FetchCount,
    },
    /// `CLOSE name`, or `CLOSE ALL` (no name).
    CloseCursor(Option<String>),
}

/// Plans one statement for the tenant of `ctx`.
pub(super) async fn prepare(
    shared: &PgShared,
    ctx: &QueryContext,
    statement: Statement,
) -> PgWireResult<PreparedStatement> {
    if is_session_statement(&statement) {
        return Ok(PreparedStatement::Session(Box::new(statement)));
    }
    let plan = |statement| async {
        shared
            .service
            .plan(ctx, statement)
            .await
            .map(Box::new)
            .map_err(|e| planner_error(&e))
    };
    match statement {
        Statement::Declare { mut stmts } if stmts.len() == 1 => {
            let declare = stmts.remove(0);
            let (Some(DeclareType::Cursor), Some(query), [name]) = (
                &declare.declare_type,
                declare.for_query,
                declare.names.as_slice(),
            ) else {
                return Err(user_error(
                    "0A000",
                    "only DECLARE name CURSOR FOR query is supported",
                ));
            };
            if declare.scroll == Some(true) {
                return Err(user_error(
                    "0A000",
                    "SCROLL cursors are not supported: cursors scan forward only",
                ));
            }
            Ok(PreparedStatement::Declare {
                name: name.value.clone(),
                query: plan(Statement::Query(query)).await?,
                with_hold: declare.hold == Some(true),
                binary: declare.binary == Some(true),
            })
        }
        Statement::Fetch {
            name,
            direction,
            into: None,
            ..
        } => Ok(PreparedStatement::Fetch {
            name: name.value,
            count: FetchCount::from_direction(&direction)?,
        }),
        Statement::Close { cursor } => Ok(PreparedStatement::CloseCursor(match cursor {
            CloseCursor::All => None,
            CloseCursor::Specific { name } => Some(name.value),
        })),
        Statement::Copy {
            source,
            to: true,
            target: CopyTarget::Stdout,
            options,
            legacy_options,
            ..
        } => {
            let format = CopyFormat::from_options(&options, &legacy_options)?;
            let query = match source {
                CopySource::Query(query) => Statement::Query(query),
                // `COPY dataset [(columns)]` is `COPY (SELECT columns FROM dataset)`.
                CopySource::Table {
                    table_name,
                    columns,
                } => {
                    let selected = if columns.is_empty() {
                        "*".to_owned()
                    } else {
                        columns
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    let sql = format!("SELECT {selected} FROM {table_name}");
                    let mut parsed = shared
                        .service
                        .parse(ctx, &sql)
                        .map_err(|e| planner_error(&e))?;
                    match parsed.pop() {
                        Some(query @ Statement::Query(_)) if parsed.is_empty() => query,
                        _ => {
                            return Err(user_error(
                                "42601",
                                format!("cannot copy from {table_name}"),
                            ));
                        }
                    }
                }
            };
            Ok(PreparedStatement::CopyOut(plan(query).await?, format))
        }
        statement => Ok(PreparedStatement::Query(plan(statement).await?)),
    }
}
