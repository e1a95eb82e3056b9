//! The SQL policy: which statements a tenant may run.
//!
//! Statements are parsed with the PostgreSQL dialect (with a recursion limit, and bounds on
//! nesting checked right after parsing, so SQL nested thousands deep is an error and not a
//! stack overflow: see [`crate::resources::complexity`]), then classified, and rewritten by
//! the PostgreSQL compatibility rules in the order `pg_compat` gives them
//! ([`CompatibilityRewrites`]). Only reads reach the engine: queries (`SELECT`, `WITH`,
//! `VALUES`) and `EXPLAIN` of them. Session chatter (`SET`, `SHOW`, `BEGIN`, …) is the front
//! end's to answer from its own session state, so the planner refuses it like any other
//! statement that would change engine state.

use std::sync::Arc;

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{Expr, Ident, ObjectName, Statement, visit_expressions_mut};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion_pg_catalog::sql::rules::SqlStatementRewriteRule;

use crate::error::{ErrorKind, PlannerError};
use crate::pg_compat::rewrite::{CompatibilityRewrites, reads_catalog_tables};
use crate::resources::complexity;

/// Deepest nesting of expressions and subqueries a statement may have.
const RECURSION_LIMIT: usize = 256;

/// Parses SQL text into statements and checks them against the policy.
#[derive(Debug)]
pub struct SqlPolicy {
    rewrites: CompatibilityRewrites,
}

impl Default for SqlPolicy {
    fn default() -> Self {
        Self {
            // Before the rules that strip qualifiers, which would turn `tollgate.cancel` into
            // `cancel`.
            rewrites: CompatibilityRewrites::new(Arc::new(TollgateFunctionNames)),
        }
    }
}

/// Renames calls of the tenant's `tollgate.<f>(…)` functions to the engine's `tollgate_<f>`:
/// DataFusion resolves functions by bare name, and qualifiers are stripped for `pg_catalog`.
#[derive(Debug)]
struct TollgateFunctionNames;

impl SqlStatementRewriteRule for TollgateFunctionNames {
    fn rewrite(&self, mut statement: Statement) -> Statement {
        let _ = visit_expressions_mut(&mut statement, |expr| {
            if let Expr::Function(function) = expr
                && let [schema, name] = function.name.0.as_slice()
                && let (Some(schema), Some(name)) = (schema.as_ident(), name.as_ident())
                && schema
                    .value
                    .eq_ignore_ascii_case(crate::session::system::SCHEMA)
            {
                let renamed = Ident::new(crate::session::system::function_name(
                    &name.value.to_lowercase(),
                ));
                function.name = ObjectName::from(vec![renamed]);
            }
            ControlFlow::<()>::Continue(())
        });
        statement
    }
}

impl SqlPolicy {
    /// Splits `sql` into statements (several may be sent in one simple query).
    ///
    /// # Errors
    /// [`PlannerError::Parse`] for SQL that does not parse or nests too deeply.
    pub fn parse(&self, sql: &str) -> Result<Vec<Statement>, PlannerError> {
        let statements = Parser::new(&PostgreSqlDialect {})
            .with_recursion_limit(RECURSION_LIMIT)
            .try_with_sql(sql)?
            .parse_statements()?;
        // Before anything else walks them: a tree too deep for the later steps is refused
        // and taken apart here.
        let statements = complexity::check(statements)?;
        if statements.iter().any(reads_catalog_tables) {
            // Introspection: the compatibility parser also swaps known client queries that
            // DataFusion cannot run (psql's `\d`, pgcli, …) for equivalents.
            return self.rewrites.parse_catalog_statements(sql);
        }
        Ok(statements)
    }

    /// Checks that `statement` is a read the engine may run, and applies the compatibility
    /// rewrites.
    ///
    /// # Errors
    /// [`PlannerError::Policy`] with [`ErrorKind::Denied`] for writes, DDL and engine
    /// settings, [`ErrorKind::Unsupported`] for other statement kinds.
    pub fn admit(&self, statement: Statement) -> Result<Statement, PlannerError> {
        match &statement {
            Statement::Query(_) => {}
            Statement::Explain {
                statement: inner, ..
            } if matches!(**inner, Statement::Query(_)) => {}
            Statement::Explain { .. } => return Err(denied("EXPLAIN is allowed for queries only")),
            other => return Err(refusal(other)),
        }
        let statement = self.rewrites.apply(statement);
        Ok(statement)
    }
}

fn denied(message: &str) -> PlannerError {
    PlannerError::Policy {
        kind: ErrorKind::Denied,
        message: message.to_owned(),
    }
}

/// The error for a statement that is not a read, saying what is not allowed.
fn refusal(statement: &Statement) -> PlannerError {
    let name = statement_name(statement);
    let (kind, message) = match statement {
        Statement::Insert(_)
        | Statement::Update(_)
        | Statement::Delete(_)
        | Statement::Merge { .. }
        | Statement::Truncate(_) => (
            ErrorKind::Denied,
            format!("permission denied: {name} is not allowed, datasets are read-only"),
        ),
        Statement::Copy { .. } | Statement::CopyIntoSnowflake { .. } | Statement::Unload { .. } => {
            (
                ErrorKind::Denied,
                format!("permission denied: {name} to or from files is not allowed"),
            )
        }
        Statement::Set(_) | Statement::ShowVariable { .. } | Statement::ShowVariables { .. } => (
            ErrorKind::Denied,
            format!("permission denied: {name} of engine settings is not allowed"),
        ),
        Statement::CreateTable(_)
        | Statement::CreateView(_)
        | Statement::CreateSchema { .. }
        | Statement::CreateDatabase { .. }
        | Statement::CreateFunction(_)
        | Statement::CreateIndex(_)
        | Statement::CreateRole(_)
        | Statement::CreateVirtualTable { .. }
        | Statement::CreateExtension(_)
        | Statement::CreateSequence { .. }
        | Statement::CreateType { .. }
        | Statement::AlterTable(_)
        | Statement::AlterView { .. }
        | Statement::AlterRole { .. }
        | Statement::Drop { .. }
        | Statement::DropFunction(_)
        | Statement::Grant(_)
        | Statement::Revoke(_)
        | Statement::AttachDatabase { .. }
        | Statement::Install { .. }
        | Statement::Load { .. } => (
            ErrorKind::Denied,
            format!("permission denied: {name} is not allowed, tenants cannot change the catalog"),
        ),
        _ => (
            ErrorKind::Unsupported,
            format!("{name} is not supported; only SELECT, WITH, VALUES and EXPLAIN are"),
        ),
    };
    PlannerError::Policy { kind, message }
}

/// The leading keywords of a statement, for messages (`CREATE TABLE`, `INSERT`, …).
fn statement_name(statement: &Statement) -> String {
    let text = statement.to_string();
    let words: Vec<&str> = text.split_whitespace().take(3).collect();
    let keywords: Vec<&str> = words
        .iter()
        .take_while(|w| w.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .copied()
        .collect();
    match keywords.as_slice() {
        [] => "this statement".to_owned(),
        [first] => (*first).to_owned(),
        [first, second, ..] => format!("{first} {second}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(sql: &str) -> Result<Statement, PlannerError> {
        let policy = SqlPolicy::default();
        let mut statements = policy.parse(sql)?;
        assert_eq!(statements.len(), 1);
        policy.admit(statements.remove(0))
    }

    #[test]
    fn reads_are_admitted() {
        for sql in [
            "SELECT 1",
            "WITH t AS (SELECT 1) SELECT * FROM t",
            "VALUES (1)",
            "EXPLAIN SELECT 1",
        ] {
            assert!(check(sql).is_ok(), "{sql}");
        }
    }

    #[test]
    fn writes_and_ddl_are_denied_with_their_name() {
        for (sql, name) in [
            ("INSERT INTO t VALUES (1)", "INSERT"),
            ("DELETE FROM t", "DELETE"),
            ("CREATE TABLE t (a int)", "CREATE TABLE"),
            ("DROP TABLE t", "DROP TABLE"),
            ("COPY t FROM '/etc/passwd'", "COPY"),
            ("SET datafusion.execution.target_partitions = 1", "SET"),
            ("EXPLAIN DELETE FROM t", "EXPLAIN"),
        ] {
            let error = check(sql).expect_err(sql);
            assert_eq!(error.kind(), ErrorKind::Denied, "{sql}");
            assert!(error.to_string().contains(name), "{sql}: {error}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let sql = format!("SELECT {}1{}", "(".repeat(10_000), ")".repeat(10_000));
        let error = check(&sql).expect_err("too deep");
        assert_eq!(error.kind(), ErrorKind::TooComplex);
    }
}
