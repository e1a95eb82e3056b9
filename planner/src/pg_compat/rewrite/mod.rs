//! Compatibility rewrites of statements: one rule a file, each a
//! `SqlStatementRewriteRule` over the parsed statement, `sql_calls` to build and recognize
//! the calls and columns they rewrite, and here the order they run in
//! ([`CompatibilityRewrites`]).

pub(crate) mod array_parameters;
pub(crate) mod catalog_lookups;
pub(crate) mod catalog_operators;
pub(crate) mod catalog_subqueries;
pub(crate) mod catalog_types;
pub(crate) mod distinct_from;
pub(crate) mod expand_array;
pub(crate) mod fetch_first;
pub(crate) mod generate_subscripts;
pub(crate) mod like_escape;
pub(crate) mod output_names;
pub(crate) mod regclass_names;
pub(crate) mod regclass_output;
pub(crate) mod regproc;
pub(crate) mod series_in_select_list;
pub(crate) mod sql_calls;
pub(crate) mod unnest_from;

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::sql::sqlparser::ast::{Statement, visit_relations};
use datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use datafusion_pg_catalog::sql::rules::{
    CurrentUserVariableToSessionUserFunctionCall, FixArrayLiteral, FixVersionColumnName,
    PrependUnqualifiedPgTableName, ResolveUnqualifiedIdentifier, RewriteArrayAnyAllOperation,
    RewritePgCatalogOperator, RewriteRegCastToSubquery, SqlStatementRewriteRule,
    StripCallableQualifier, StripCollate,
};

use crate::error::PlannerError;
use array_parameters::TextArrayParameters;
use catalog_lookups::CatalogLookups;
use catalog_operators::QualifiedOperators;
use catalog_subqueries::AggregatedScalarSubqueries;
use catalog_types::CatalogColumnTypes;
use distinct_from::DistinctFromPrecedence;
use expand_array::ExpandArray;
use fetch_first::FetchFirstToLimit;
use generate_subscripts::GenerateSubscripts;
use like_escape::LikeEscapeToBackslash;
use regclass_names::RegclassLookups;
use regclass_output::RegclassOutput;
use regproc::RegprocZero;
use series_in_select_list::SeriesInSelectList;
use unnest_from::UnnestInFrom;

/// The compatibility rewrites, in the order they run.
///
/// Statements that read catalog tables were parsed by the compatibility parser of
/// `datafusion-pg-catalog`, which applied its full rule set; they get the catalog rules
/// here. Its full set includes `RemoveSubqueryFromProjection`, which replaces scalar
/// subqueries DataFusion cannot plan with NULL: right for the introspection queries clients
/// send to `pg_catalog`, wrong for data, where it would silently change the answers tenants
/// are billed for. So data statements get the data rules instead. Both then get the rules
/// every statement needs.
#[derive(Debug)]
pub(crate) struct CompatibilityRewrites {
    data: Vec<Arc<dyn SqlStatementRewriteRule>>,
    catalog_parser: PostgresCompatibilityParser,
    regclass_lookups: Arc<RegclassLookups>,
}

impl CompatibilityRewrites {
    /// The rewrites, with `first` run before the data rules (the session's own renames).
    pub(crate) fn new(first: Arc<dyn SqlStatementRewriteRule>) -> Self {
        let regclass_lookups = Arc::new(RegclassLookups::new());
        let data: Vec<Arc<dyn SqlStatementRewriteRule>> = vec![
            first,
            Arc::new(ResolveUnqualifiedIdentifier),
            Arc::new(RewriteArrayAnyAllOperation),
            Arc::new(PrependUnqualifiedPgTableName),
            Arc::new(StripCallableQualifier),
            Arc::new(FixArrayLiteral),
            Arc::new(CurrentUserVariableToSessionUserFunctionCall),
            Arc::new(StripCollate),
            Arc::new(RewritePgCatalogOperator),
            Arc::new(RewriteRegCastToSubquery::new()),
            Arc::clone(&regclass_lookups) as Arc<dyn SqlStatementRewriteRule>,
            Arc::new(FixVersionColumnName),
        ];
        Self {
            data,
            catalog_parser: PostgresCompatibilityParser::new(),
            regclass_lookups,
        }
    }

    /// Parses `sql`, whose statements read catalog tables, with the compatibility parser:
    /// it swaps known client queries DataFusion cannot run for equivalents, matching tokens
    /// of the original text, and applies its rules.
    ///
    /// # Errors
    /// [`PlannerError::Engine`] for SQL the compatibility parser refuses.
    pub(crate) fn parse_catalog_statements(
        &self,
        sql: &str,
    ) -> Result<Vec<Statement>, PlannerError> {
        Ok(self.catalog_parser.parse(sql)?)
    }

    /// `statement` with every rule that applies to it, in order.
    pub(crate) fn apply(&self, statement: Statement) -> Statement {
        let statement = if reads_catalog_tables(&statement) {
            // Scalar subqueries made aggregates, which the engine can decorrelate.
            [
                &CatalogLookups as &dyn SqlStatementRewriteRule,
                self.regclass_lookups.as_ref(),
                &QualifiedOperators,
                &ExpandArray,
                &AggregatedScalarSubqueries,
                &RegprocZero,
                &CatalogColumnTypes,
                &TextArrayParameters,
                &RegclassOutput,
                &SeriesInSelectList,
            ]
            .into_iter()
            .fold(statement, |statement, rule| rule.rewrite(statement))
        } else {
            self.data
                .iter()
                .fold(statement, |statement, rule| rule.rewrite(statement))
        };
        let statement = GenerateSubscripts.rewrite(UnnestInFrom.rewrite(statement));
        let statement = DistinctFromPrecedence.rewrite(FetchFirstToLimit.rewrite(statement));
        let mut statement = LikeEscapeToBackslash.rewrite(statement);
        output_names::apply(&mut statement);
        statement
    }
}

/// Whether `statement` names a `pg_catalog` or `information_schema` relation.
pub(crate) fn reads_catalog_tables(statement: &Statement) -> bool {
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
