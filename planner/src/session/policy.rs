//! The SQL policy: which statements a tenant may run.
//!
//! Statements are parsed with the PostgreSQL dialect (with a recursion limit, and bounds on
//! nesting checked right after parsing, so SQL nested thousands deep is an error and not a
//! stack overflow: see [`crate::resources::complexity`]), rewritten by the Postgres
//! compatibility rules of `datafusion-pg-catalog` (`OPERATOR(pg_catalog.~)`, `::regclass`,
//! `COLLATE`, …), then classified. Only reads reach the engine: queries (`SELECT`, `WITH`,
//! `VALUES`) and `EXPLAIN` of them. Session chatter (`SET`, `SHOW`, `BEGIN`, …) is the front
//! end's to answer from its own session state, so the planner refuses it like any other
//! statement that would change engine state.

use std::sync::Arc;

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, Ident, ObjectName, Statement, visit_expressions_mut, visit_relations,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use datafusion_pg_catalog::sql::rules::{
    CurrentUserVariableToSessionUserFunctionCall, FixArrayLiteral, FixVersionColumnName,
    PrependUnqualifiedPgTableName, ResolveUnqualifiedIdentifier, RewriteArrayAnyAllOperation,
    RewritePgCatalogOperator, RewriteRegCastToSubquery, SqlStatementRewriteRule,
    StripCallableQualifier, StripCollate,
};

use crate::error::{ErrorKind, PlannerError};
use crate::pg_compat::rewrite::array_parameters::TextArrayParameters;
use crate::pg_compat::rewrite::catalog_lookups::CatalogLookups;
use crate::pg_compat::rewrite::catalog_operators::QualifiedOperators;
use crate::pg_compat::rewrite::catalog_subqueries::AggregatedScalarSubqueries;
use crate::pg_compat::rewrite::catalog_types::CatalogColumnTypes;
use crate::pg_compat::rewrite::expand_array::ExpandArray;
use crate::pg_compat::rewrite::generate_subscripts::GenerateSubscripts;
use crate::pg_compat::rewrite::like_escape::LikeEscapeToBackslash;
use crate::pg_compat::rewrite::output_names;
use crate::pg_compat::rewrite::regclass_names::SystemCatalogNames;
use crate::pg_compat::rewrite::regproc::RegprocZero;
use crate::pg_compat::rewrite::unnest_from::UnnestInFrom;
use crate::resources::complexity;

/// Deepest nesting of expressions and subqueries a statement may have.
const RECURSION_LIMIT: usize = 256;

/// Parses SQL text into statements and checks them against the policy.
#[derive(Debug)]
pub struct SqlPolicy {
    rules: Vec<Arc<dyn SqlStatementRewriteRule>>,
    catalog_parser: PostgresCompatibilityParser,
}

impl Default for SqlPolicy {
    fn default() -> Self {
        // The compatibility parser's full rule set includes `RemoveSubqueryFromProjection`,
        // which replaces scalar subqueries DataFusion cannot plan with NULL: right for the
        // introspection queries clients send to `pg_catalog`, wrong for data, where it would
        // silently change the answers tenants are billed for. Data queries get these rules.
        let rules: Vec<Arc<dyn SqlStatementRewriteRule>> = vec![
            // Before StripCallableQualifier, which would turn `tollgate.cancel` into `cancel`.
            Arc::new(TollgateFunctionNames),
            Arc::new(ResolveUnqualifiedIdentifier),
            Arc::new(RewriteArrayAnyAllOperation),
            Arc::new(PrependUnqualifiedPgTableName),
            Arc::new(StripCallableQualifier),
            Arc::new(FixArrayLiteral),
            Arc::new(CurrentUserVariableToSessionUserFunctionCall),
            Arc::new(StripCollate),
            Arc::new(RewritePgCatalogOperator),
            Arc::new(RewriteRegCastToSubquery::new()),
            Arc::new(FixVersionColumnName),
        ];
        Self {
            rules,
            catalog_parser: PostgresCompatibilityParser::new(),
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
            // DataFusion cannot run (psql's `\d`, pgcli, …) for equivalents, matching tokens
            // of the original text, and applies every rewrite rule.
            return Ok(self.catalog_parser.parse(sql)?);
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
        let statement = if reads_catalog_tables(&statement) {
            // Rewritten by the compatibility parser already; scalar subqueries made
            // aggregates, which the engine can decorrelate.
            [
                &CatalogLookups as &dyn SqlStatementRewriteRule,
                &SystemCatalogNames,
                &QualifiedOperators,
                &ExpandArray,
                &AggregatedScalarSubqueries,
                &RegprocZero,
                &CatalogColumnTypes,
                &TextArrayParameters,
            ]
            .into_iter()
            .fold(statement, |statement, rule| rule.rewrite(statement))
        } else {
            self.rules
                .iter()
                .fold(statement, |statement, rule| rule.rewrite(statement))
        };
        let statement = GenerateSubscripts.rewrite(UnnestInFrom.rewrite(statement));
        let mut statement = LikeEscapeToBackslash.rewrite(statement);
        output_names::apply(&mut statement);
        Ok(statement)
    }
}

/// Whether `statement` names a `pg_catalog` or `information_schema` relation.
fn reads_catalog_tables(statement: &Statement) -> bool {
    let found = visit_relations(statement, |name| {
        let is_catalog = name
            .0
            .iter()
            .filter_map(|part| part.as_ident())
            .any(|ident| {
                let value = ident.value.to_ascii_lowercase();
                value == "pg_catalog" || value == "information_schema" || value.starts_with("pg_")
            });
        if is_catalog {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    found.is_break()
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
