//! Resource queries in PostgREST's conventions, turned into one `SELECT` over a granted
//! dataset: identifiers checked against its columns and quoted, values never spliced into
//! the text but bound as `$n` parameters.
//!
//! ```text
//! ?select=a,b&a=eq.5&b=not.in.(1,2)&c=ilike.*x*&d=is.null&order=a.desc.nullslast&limit=10&offset=20
//!   ─▶ SELECT "a", "b" FROM "s"."t" WHERE ("a" = $1) AND (NOT ("b" = $2 OR "b" = $3)) AND …
//!      ORDER BY "a" DESC NULLS LAST, "b" LIMIT 11 OFFSET 20
//! ```
//!
//! Pages are stable: after the requested order every selected column follows as a
//! tiebreaker, so rows with equal keys always come in the same order and a `next` link
//! never repeats or skips a row of an unchanged dataset.

use std::fmt::Write as _;

use tollgate_planner::TenantTable;

use super::errors::WebError;

/// The query-string keys that are not column filters.
const RESERVED: [&str; 4] = ["select", "order", "limit", "offset"];

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
}

impl Comparison {
    fn sql(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Neq => "<>",
            Self::Lt => "<",
            Self::Lte => "<=",
            Self::Gt => ">",
            Self::Gte => ">=",
        }
    }
}

/// What `is.` tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IsValue {
    Null,
    NotNull,
    True,
    False,
    Unknown,
}

/// One filter's operator and operands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Operator {
    Compare(Comparison, String),
    Like { pattern: String, ignore_case: bool },
    In(Vec<String>),
    Is(IsValue),
}

/// `column=[not.]operator.value`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Filter {
    column: String,
    negated: bool,
    operator: Operator,
}

/// One `order` term.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OrderTerm {
    column: String,
    descending: bool,
    nulls_first: Option<bool>,
}

/// A resource request as its query string states it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceQuery {
    select: Option<Vec<String>>,
    filters: Vec<Filter>,
    order: Vec<OrderTerm>,
    /// Rows asked for, if any.
    pub limit: Option<u64>,
    /// Rows skipped.
    pub offset: u64,
}

/// The SQL of one page and its parameters' text, `$1..$n` in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageSql {
    /// One `SELECT`.
    pub sql: String,
    /// The values of `$1..$n`, as text.
    pub parameters: Vec<String>,
}

impl ResourceQuery {
    /// Reads a query string's pairs.
    ///
    /// # Errors
    /// [`WebError::BadRequest`] naming the pair that is malformed.
    pub fn parse(pairs: &[(String, String)]) -> Result<Self, WebError> {
        let mut query = Self::default();
        for (key, value) in pairs {
            match key.as_str() {
                "select" => query.select = Some(parse_select(value)?),
                "order" => query.order = parse_order(value)?,
                "limit" => query.limit = Some(parse_count("limit", value)?),
                "offset" => query.offset = parse_count("offset", value)?,
                column => query.filters.push(parse_filter(column, value)?),
            }
        }
        Ok(query)
    }

    /// The SQL of the page of at most `rows` rows (one more is asked for, to tell whether a
    /// next page exists) over `table`.
    ///
    /// # Errors
    /// [`WebError::BadRequest`] for a column the table does not have.
    pub fn page_sql(&self, table: &TenantTable, rows: u64) -> Result<PageSql, WebError> {
        let known = |column: &str| {
            if table.columns.field_with_name(column).is_ok() {
                Ok(quote(column))
            } else {
                Err(WebError::BadRequest(format!(
                    "column `{column}` does not exist in `{}.{}`",
                    table.schema, table.table
                )))
            }
        };
        let selected: Vec<String> = match &self.select {
            Some(columns) => columns.clone(),
            None => table
                .columns
                .fields()
                .iter()
                .map(|field| field.name().clone())
                .collect(),
        };
        let mut sql = String::from("SELECT ");
        for (i, column) in selected.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&known(column)?);
        }
        let _ = write!(
            sql,
            " FROM {}.{}",
            quote(&table.schema),
            quote(&table.table)
        );
        let mut parameters = Vec::new();
        for (i, filter) in self.filters.iter().enumerate() {
            sql.push_str(if i == 0 { " WHERE " } else { " AND " });
            let column = known(&filter.column)?;
            let condition = condition(&column, &filter.operator, &mut parameters);
            if filter.negated {
                let _ = write!(sql, "(NOT ({condition}))");
            } else {
                let _ = write!(sql, "({condition})");
            }
        }
        let mut terms = Vec::new();
        for term in &self.order {
            let mut text = known(&term.column)?;
            text.push_str(if term.descending { " DESC" } else { " ASC" });
            match term.nulls_first {
                Some(true) => text.push_str(" NULLS FIRST"),
                Some(false) => text.push_str(" NULLS LAST"),
                None => {}
            }
            terms.push(text);
        }
        for column in &selected {
            if !self.order.iter().any(|term| &term.column == column) {
                terms.push(quote(column));
            }
        }
        if !terms.is_empty() {
            let _ = write!(sql, " ORDER BY {}", terms.join(", "));
        }
        let _ = write!(
            sql,
            " LIMIT {} OFFSET {}",
            rows.saturating_add(1),
            self.offset
        );
        Ok(PageSql { sql, parameters })
    }
}

/// `"name"`, with inner quotes doubled.
fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// The SQL condition of `operator` on `column`, its values pushed to `parameters`.
fn condition(column: &str, operator: &Operator, parameters: &mut Vec<String>) -> String {
    let mut bind = |value: &str| {
        parameters.push(value.to_owned());
        format!("${}", parameters.len())
    };
    match operator {
        Operator::Compare(comparison, value) => {
            format!("{column} {} {}", comparison.sql(), bind(value))
        }
        Operator::Like {
            pattern,
            ignore_case,
        } => {
            let keyword = if *ignore_case { "ILIKE" } else { "LIKE" };
            // PostgREST writes `*` for SQL's `%`, which URLs would have to escape.
            format!("{column} {keyword} {}", bind(&pattern.replace('*', "%")))
        }
        Operator::In(values) if values.is_empty() => "FALSE".to_owned(),
        Operator::In(values) => values
            .iter()
            .map(|value| format!("{column} = {}", bind(value)))
            .collect::<Vec<_>>()
            .join(" OR "),
        Operator::Is(value) => {
            let test = match value {
                IsValue::Null => "IS NULL",
                IsValue::NotNull => "IS NOT NULL",
                IsValue::True => "IS TRUE",
                IsValue::False => "IS FALSE",
                IsValue::Unknown => "IS UNKNOWN",
            };
            format!("{column} {test}")
        }
    }
}

fn parse_select(value: &str) -> Result<Vec<String>, WebError> {
    let columns: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|column| !column.is_empty())
        .map(str::to_owned)
        .collect();
    if columns.is_empty() {
        return Err(WebError::BadRequest("`select` names no column".to_owned()));
    }
    Ok(columns)
}

fn parse_order(value: &str) -> Result<Vec<OrderTerm>, WebError> {
    value
        .split(',')
        .map(|term| {
            let mut parts = term.trim().split('.');
            let column = parts.next().unwrap_or_default().to_owned();
            if column.is_empty() {
                return Err(WebError::BadRequest(format!(
                    "`order` term `{term}` names no column"
                )));
            }
            let mut order = OrderTerm {
                column,
                descending: false,
                nulls_first: None,
            };
            for modifier in parts {
                match modifier {
                    "asc" => order.descending = false,
                    "desc" => order.descending = true,
                    "nullsfirst" => order.nulls_first = Some(true),
                    "nullslast" => order.nulls_first = Some(false),
                    other => {
                        return Err(WebError::BadRequest(format!(
                            "`order` modifier `{other}` is not one of asc, desc, nullsfirst, nullslast"
                        )));
                    }
                }
            }
            Ok(order)
        })
        .collect()
}

fn parse_count(name: &str, value: &str) -> Result<u64, WebError> {
    value.trim().parse().map_err(|_| {
        WebError::BadRequest(format!("`{name}` must be a whole number, got `{value}`"))
    })
}

fn parse_filter(column: &str, value: &str) -> Result<Filter, WebError> {
    if RESERVED.contains(&column) {
        return Err(WebError::BadRequest(format!("`{column}` is given twice")));
    }
    let (negated, rest) = match value.strip_prefix("not.") {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    let (name, operand) = rest.split_once('.').ok_or_else(|| {
        WebError::BadRequest(format!(
            "filter `{column}={value}` must read `operator.value`, e.g. `{column}=eq.5`"
        ))
    })?;
    let compare = |comparison| Operator::Compare(comparison, operand.to_owned());
    let operator = match name {
        "eq" => compare(Comparison::Eq),
        "neq" => compare(Comparison::Neq),
        "lt" => compare(Comparison::Lt),
        "lte" => compare(Comparison::Lte),
        "gt" => compare(Comparison::Gt),
        "gte" => compare(Comparison::Gte),
        "like" | "ilike" => Operator::Like {
            pattern: operand.to_owned(),
            ignore_case: name == "ilike",
        },
        "in" => Operator::In(parse_list(column, operand)?),
        "is" => Operator::Is(match operand {
            "null" => IsValue::Null,
            "not_null" => IsValue::NotNull,
            "true" => IsValue::True,
            "false" => IsValue::False,
            "unknown" => IsValue::Unknown,
            other => {
                return Err(WebError::BadRequest(format!(
                    "`{column}=is.{other}`: `is` takes null, not_null, true, false or unknown"
                )));
            }
        }),
        other => {
            return Err(WebError::BadRequest(format!(
                "unknown operator `{other}` in `{column}`; use eq, neq, lt, lte, gt, gte, like, ilike, in or is"
            )));
        }
    };
    Ok(Filter {
        column: column.to_owned(),
        negated,
        operator,
    })
}

/// `(a,"b,c",d)` → `a`, `b,c`, `d`: values in double quotes may hold commas and
/// parentheses, and `\"` or `\\` inside them.
fn parse_list(column: &str, operand: &str) -> Result<Vec<String>, WebError> {
    let inner = operand
        .strip_prefix('(')
        .and_then(|rest| rest.strip_suffix(')'))
        .ok_or_else(|| {
            WebError::BadRequest(format!(
                "`{column}=in.{operand}`: the list must be in parentheses, e.g. in.(1,2)"
            ))
        })?;
    if inner.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut values = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted => current.extend(chars.next()),
            ',' if !quoted => values.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    if quoted {
        return Err(WebError::BadRequest(format!(
            "`{column}=in.{operand}`: a quote is not closed"
        )));
    }
    values.push(current);
    Ok(values)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn table() -> TenantTable {
        TenantTable {
            schema: "tpch".to_owned(),
            table: "orders".to_owned(),
            columns: Arc::new(Schema::new(vec![
                Field::new("a", DataType::Int64, true),
                Field::new("b", DataType::Utf8, true),
                Field::new("odd\"name", DataType::Utf8, true),
            ])),
            kind: tollgate_catalog::DatasetKind::Table,
        }
    }

    fn pairs(query: &str) -> Vec<(String, String)> {
        url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect()
    }

    fn page(query: &str) -> Result<PageSql, WebError> {
        ResourceQuery::parse(&pairs(query))?.page_sql(&table(), 10)
    }

    #[test]
    fn every_operator_becomes_a_bound_condition() {
        let sql = page("select=a,b&a=gte.5&a=lt.9&b=not.in.(x,\"y,z\")&b=ilike.*ab*&a=is.not_null&order=a.desc.nullslast&offset=20")
            .expect("page");
        assert_eq!(
            sql.sql,
            "SELECT \"a\", \"b\" FROM \"tpch\".\"orders\" WHERE (\"a\" >= $1) AND (\"a\" < $2) \
             AND (NOT (\"b\" = $3 OR \"b\" = $4)) AND (\"b\" ILIKE $5) AND (\"a\" IS NOT NULL) \
             ORDER BY \"a\" DESC NULLS LAST, \"b\" LIMIT 11 OFFSET 20"
        );
        assert_eq!(sql.parameters, ["5", "9", "x", "y,z", "%ab%"]);
    }

    #[test]
    fn values_never_reach_the_text_and_identifiers_are_quoted() {
        let sql = page("odd\"name=eq.'); DROP TABLE x; --").expect("page");
        assert!(sql.sql.contains("\"odd\"\"name\" = $1"), "{}", sql.sql);
        assert!(!sql.sql.contains("DROP"), "{}", sql.sql);
        assert_eq!(sql.parameters, ["'); DROP TABLE x; --"]);
    }

    #[test]
    fn unknown_columns_operators_and_values_are_bad_requests() {
        for query in [
            "select=nope",
            "nope=eq.1",
            "order=nope",
            "a=approx.1",
            "a=5",
            "a=is.maybe",
            "a=in.1,2",
            "a=in.(\"x)",
            "limit=ten",
            "order=a.sideways",
            "select=",
        ] {
            assert!(
                matches!(page(query), Err(WebError::BadRequest(_))),
                "{query}"
            );
        }
    }

    #[test]
    fn every_selected_column_breaks_ties_in_order() {
        let sql = page("").expect("page");
        assert!(
            sql.sql
                .ends_with("ORDER BY \"a\", \"b\", \"odd\"\"name\" LIMIT 11 OFFSET 0"),
            "{}",
            sql.sql
        );
        assert_eq!(page("a=in.()").expect("page").parameters.len(), 0);
    }
}
