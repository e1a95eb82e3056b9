//! Pieces of SQL the compatibility rewrites build and recognize: function calls, columns.

use datafusion::sql::sqlparser::ast::{
    Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments, Ident,
    ObjectName,
};

/// `name(args…)`.
pub(crate) fn function_call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|arg| FunctionArg::Unnamed(FunctionArgExpr::Expr(arg)))
                .collect(),
            clauses: Vec::new(),
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: Vec::new(),
    })
}

/// The called function's name, lowercased, without its schema (`pg_catalog.f` is `f`).
pub(crate) fn called_name(function: &Function) -> Option<String> {
    function
        .name
        .0
        .last()
        .and_then(|part| part.as_ident())
        .map(|ident| ident.value.to_ascii_lowercase())
}

/// Whether `expr` is a column (qualified or not) named one of `names` (lowercase).
pub(crate) fn column_in(expr: &Expr, names: &[&str]) -> bool {
    let name = match expr {
        Expr::Identifier(ident) => ident,
        Expr::CompoundIdentifier(parts) => match parts.last() {
            Some(last) => last,
            None => return false,
        },
        _ => return false,
    };
    names.contains(&name.value.to_ascii_lowercase().as_str())
}

/// `sql`'s first statement rewritten by `rule` and printed again: what the compatibility
/// rules' tests compare.
#[cfg(test)]
pub(crate) fn rewritten_by(
    rule: &dyn datafusion_pg_catalog::sql::rules::SqlStatementRewriteRule,
    sql: &str,
) -> String {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    let statement = Parser::parse_sql(&PostgreSqlDialect {}, sql)
        .expect("parses")
        .remove(0);
    rule.rewrite(statement).to_string()
}
