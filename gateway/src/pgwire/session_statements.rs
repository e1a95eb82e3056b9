//! Session statements, answered from the connection's own state and never planned: `SET`,
//! `SHOW`, `RESET` and `DISCARD` on its settings; `BEGIN`, `COMMIT`, `ROLLBACK` and savepoints
//! (a transaction's end closes its cursors not declared `WITH HOLD`); `UNLISTEN` and
//! `DEALLOCATE`, which drivers send when they reset a pooled connection.

use std::fmt::Debug;
use std::sync::Arc;

use futures::sink::{Sink, SinkExt};
use futures::stream;
use pgwire::api::Type;
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo, QueryResponse, Response, Tag};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::startup::ParameterStatus;
use tollgate_planner::datafusion::sql::sqlparser::ast::{
    Expr, Ident, Reset, Set, Statement, Value,
};

use super::connection::ConnectionState;
use super::errors::user_error;
use super::settings::{SessionSettings, refusal_error};

pub(super) fn is_session_statement(statement: &Statement) -> bool {
    matches!(
        statement,
        Statement::Set(_)
            | Statement::ShowVariable { .. }
            | Statement::Reset(_)
            | Statement::StartTransaction { .. }
            | Statement::Commit { .. }
            | Statement::Rollback { .. }
            | Statement::Savepoint { .. }
            | Statement::ReleaseSavepoint { .. }
            | Statement::Discard { .. }
            | Statement::UNLISTEN { .. }
            | Statement::Deallocate { .. }
    )
}

/// The parameter a `SHOW` names. `SHOW TRANSACTION ISOLATION LEVEL` is PostgreSQL's
/// spelling of `SHOW transaction_isolation` (SQLAlchemy, Metabase and DataGrip send it).
pub(super) fn shown_parameter(variable: &[Ident]) -> String {
    let name = variable
        .iter()
        .map(|i| i.value.as_str())
        .collect::<Vec<_>>()
        .join(".");
    if name.eq_ignore_ascii_case("transaction.isolation.level") {
        "transaction_isolation".to_owned()
    } else {
        name
    }
}

/// The text of a `SET` value as PostgreSQL stores it (quotes removed, lists joined).
fn set_value(values: &[Expr]) -> String {
    values
        .iter()
        .map(|value| match value {
            Expr::Value(v) => match &v.value {
                Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
                other => other.to_string(),
            },
            Expr::Identifier(ident) => ident.value.clone(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn single_text_row(
    name: &str,
    values: Vec<(String, String)>,
    with_names: bool,
) -> PgWireResult<QueryResponse> {
    let mut fields = Vec::new();
    if with_names {
        fields.push(FieldInfo::new(
            "name".to_owned(),
            None,
            None,
            Type::TEXT,
            FieldFormat::Text,
        ));
    }
    fields.push(FieldInfo::new(
        name.to_owned(),
        None,
        None,
        Type::TEXT,
        FieldFormat::Text,
    ));
    let fields = Arc::new(fields);
    let mut encoder = DataRowEncoder::new(Arc::clone(&fields));
    let mut rows = Vec::with_capacity(values.len());
    for (key, value) in values {
        if with_names {
            encoder.encode_field(&key)?;
        }
        encoder.encode_field(&value)?;
        rows.push(Ok(encoder.take_row()));
    }
    let mut response = QueryResponse::new(fields, stream::iter(rows));
    response.set_command_tag("SHOW");
    Ok(response)
}

/// What a session statement did to the connection's settings.
enum SessionOutcome {
    /// `SET`/`RESET`: the command tag, and the parameter to report if clients track it.
    Changed(&'static str, Option<(String, String)>),
    /// `SHOW`: the rows to return.
    Shown(QueryResponse),
}

/// Applies a settings statement (`SET`, `RESET`, `SHOW`, `DISCARD`) to `settings`.
fn apply_to_settings(
    settings: &mut SessionSettings,
    statement: &Statement,
) -> PgWireResult<SessionOutcome> {
    let report = |settings: &SessionSettings,
                  (canonical, reported): (String, bool)|
     -> PgWireResult<Option<(String, String)>> {
        reported
            .then(|| settings.show(&canonical))
            .transpose()
            .map_err(refusal_error)
    };
    match statement {
        Statement::Set(Set::SingleAssignment {
            variable, values, ..
        }) => {
            let (name, value) = (variable.to_string(), set_value(values));
            let changed = if value.eq_ignore_ascii_case("default") {
                settings.reset(&name).map_err(refusal_error)?
            } else {
                settings.set(&name, value).map_err(refusal_error)?
            };
            Ok(SessionOutcome::Changed("SET", report(settings, changed)?))
        }
        Statement::Set(Set::SetTimeZone { value, .. }) => {
            let changed = settings
                .set("TimeZone", set_value(std::slice::from_ref(value)))
                .map_err(refusal_error)?;
            Ok(SessionOutcome::Changed("SET", report(settings, changed)?))
        }
        Statement::Set(Set::SetNames { charset_name, .. }) => {
            let changed = settings
                .set("client_encoding", charset_name.value.clone())
                .map_err(refusal_error)?;
            Ok(SessionOutcome::Changed("SET", report(settings, changed)?))
        }
        // SET TRANSACTION / SESSION CHARACTERISTICS, SET ROLE …: transactions are read-only
        // already and there is one role per login, so these change nothing.
        Statement::Set(_) => Ok(SessionOutcome::Changed("SET", None)),
        Statement::Reset(reset) => match &reset.reset {
            Reset::ALL => {
                settings.reset_all();
                Ok(SessionOutcome::Changed("RESET", None))
            }
            Reset::ConfigurationParameter(name) => {
                let changed = settings.reset(&name.to_string()).map_err(refusal_error)?;
                Ok(SessionOutcome::Changed("RESET", report(settings, changed)?))
            }
        },
        Statement::Discard { .. } => {
            settings.reset_all();
            Ok(SessionOutcome::Changed("DISCARD ALL", None))
        }
        Statement::ShowVariable { variable } => {
            let name = shown_parameter(variable);
            if name.eq_ignore_ascii_case("all") {
                let all = settings
                    .all()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                Ok(SessionOutcome::Shown(single_text_row(
                    "setting", all, true,
                )?))
            } else {
                let (canonical, value) = settings.show(&name).map_err(refusal_error)?;
                Ok(SessionOutcome::Shown(single_text_row(
                    &canonical,
                    vec![(canonical.clone(), value)],
                    false,
                )?))
            }
        }
        other => Err(user_error(
            "0A000",
            format!("{other} is not a session statement"),
        )),
    }
}

/// Answers a session statement from the connection's state; `failed` when it runs in a
/// failed transaction block (only its end or a return to a savepoint get here then).
pub(super) async fn answer_session_statement<C>(
    connection: &ConnectionState,
    client: &mut C,
    statement: &Statement,
    failed: bool,
) -> PgWireResult<Response>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    match statement {
        Statement::StartTransaction { .. } => {
            return Ok(Response::TransactionStart(Tag::new("BEGIN")));
        }
        Statement::Commit { .. } => {
            connection.cursors().end_transaction();
            // A failed block is rolled back, and PostgreSQL says so.
            let tag = if failed { "ROLLBACK" } else { "COMMIT" };
            return Ok(Response::TransactionEnd(Tag::new(tag)));
        }
        Statement::Rollback {
            savepoint: Some(_), ..
        } => {
            if failed {
                connection.recovery().recovered();
            }
            return Ok(Response::Execution(Tag::new("ROLLBACK")));
        }
        Statement::Rollback { .. } => {
            connection.cursors().end_transaction();
            return Ok(Response::TransactionEnd(Tag::new("ROLLBACK")));
        }
        Statement::Savepoint { .. } => return Ok(Response::Execution(Tag::new("SAVEPOINT"))),
        Statement::ReleaseSavepoint { .. } => return Ok(Response::Execution(Tag::new("RELEASE"))),
        // Connection housekeeping drivers send when they reset a pooled connection
        // (asyncpg: `CLOSE ALL; UNLISTEN *; RESET ALL`): the gateway keeps no listeners or
        // SQL-level prepared statements, so there is nothing to drop.
        Statement::UNLISTEN { .. } => return Ok(Response::Execution(Tag::new("UNLISTEN"))),
        Statement::Deallocate { name, .. } => {
            let tag = if name.value.eq_ignore_ascii_case("all") {
                "DEALLOCATE ALL"
            } else {
                "DEALLOCATE"
            };
            return Ok(Response::Execution(Tag::new(tag)));
        }
        _ => {}
    }
    if let Statement::Discard { .. } = statement {
        connection.cursors().close_all();
    }
    let outcome = connection
        .with_settings(|settings| apply_to_settings(settings, statement))
        .unwrap_or_else(|| Err(user_error("08P01", "the connection is not authenticated")))?;
    match outcome {
        SessionOutcome::Shown(response) => Ok(Response::Query(response)),
        SessionOutcome::Changed(tag, report) => {
            if let Some((name, value)) = report {
                client
                    .feed(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(
                        name, value,
                    )))
                    .await?;
            }
            Ok(Response::Execution(Tag::new(tag)))
        }
    }
}
