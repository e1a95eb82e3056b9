//! How complex a statement may be: bounds on nesting and size checked right after parsing,
//! before anything else walks the statement.
//!
//! The parser limits its own recursion, but it builds chains of infix operators
//! (`1+1+…+1`, `a AND b AND …`, `x::int::int…`) and of set operations (`SELECT 1 UNION ALL
//! SELECT 1 …`) in a loop, so a few kilobytes of SQL give a tree thousands of levels deep.
//! Every later step — the compatibility rewrites, printing, planning, even dropping the
//! tree — recurses over it, and a stack overflow aborts the whole process. So a statement
//! deeper than [`MAX_DEPTH`] levels, or with more than [`MAX_QUERY_BLOCKS`] `SELECT` blocks
//! (chained CTEs make plans as deep as they are many), is refused with 54001 before any of
//! that, and taken apart without deep recursion ([`discard`]).
//!
//! The later steps stay within a fixed stack: [`with_stack`] runs them where at least
//! [`STACK_SIZE`] bytes of stack are free, on a fresh stack segment if the thread has less.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, Query, Select, SetExpr, Statement, Value, Values, Visit, VisitMut, Visitor, VisitorMut,
};

use crate::error::PlannerError;

/// Deepest nesting of expressions, subqueries and set operations a statement may have.
pub const MAX_DEPTH: usize = 1_000;

/// Most `SELECT` blocks (in subqueries, CTEs and set operations) a statement may have.
pub const MAX_QUERY_BLOCKS: usize = 1_000;

/// The stack a statement of [`MAX_DEPTH`] levels is rewritten, printed and planned within.
pub const STACK_SIZE: usize = 64 << 20;

/// Free stack below which [`with_stack`] switches to a fresh segment.
const RED_ZONE: usize = 32 << 20;

/// Free stack below which the depth check gives up (it recurses once per level).
const CHECK_RED_ZONE: usize = 256 << 10;

/// Expressions deeper than this are cut off when a refused statement is taken apart, so
/// dropping each piece recurses at most this deep.
const CUT_DEPTH: usize = 64;

/// Runs `work` with at least [`STACK_SIZE`] bytes of stack: inline on a thread that has
/// them (the gateway's runtimes do), on a fresh segment otherwise.
pub fn with_stack<T>(work: impl FnOnce() -> T) -> T {
    stacker::maybe_grow(RED_ZONE, STACK_SIZE, work)
}

/// Checks `statements` against the bounds above.
///
/// # Errors
/// [`PlannerError::TooComplex`] naming the bound; the statements are then taken apart
/// without deep recursion.
pub fn check(statements: Vec<Statement>) -> Result<Vec<Statement>, PlannerError> {
    let mut measure = Measure::default();
    let refused = statements
        .iter()
        .find_map(|statement| statement.visit(&mut measure).break_value());
    match refused {
        None => Ok(statements),
        Some(reason) => {
            discard(statements);
            Err(PlannerError::TooComplex(reason.to_string()))
        }
    }
}

/// Why a statement is too complex.
#[derive(Debug, Clone, Copy)]
enum TooComplex {
    Depth,
    QueryBlocks,
}

impl std::fmt::Display for TooComplex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Depth => write!(
                f,
                "statement too complex: expressions, subqueries and set operations nest more \
                 than {MAX_DEPTH} levels deep"
            ),
            Self::QueryBlocks => write!(
                f,
                "statement too complex: more than {MAX_QUERY_BLOCKS} SELECT blocks"
            ),
        }
    }
}

/// Measures nesting while visiting; breaks at the first bound passed, so its own
/// recursion never goes deeper than [`MAX_DEPTH`].
#[derive(Default)]
struct Measure {
    depth: usize,
    blocks: usize,
}

impl Measure {
    fn enter(&mut self, levels: usize) -> ControlFlow<TooComplex> {
        self.depth += levels;
        let out_of_stack = stacker::remaining_stack().is_some_and(|left| left < CHECK_RED_ZONE);
        if self.depth > MAX_DEPTH || out_of_stack {
            ControlFlow::Break(TooComplex::Depth)
        } else {
            ControlFlow::Continue(())
        }
    }

    fn leave(&mut self, levels: usize) -> ControlFlow<TooComplex> {
        self.depth = self.depth.saturating_sub(levels);
        ControlFlow::Continue(())
    }
}

impl Visitor for Measure {
    type Break = TooComplex;

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<TooComplex> {
        // The set operations under a query are visited recursively without a hook of
        // their own: measure their chain here, before the visit descends into it.
        self.enter(set_operation_depth(&query.body))
    }

    fn post_visit_query(&mut self, query: &Query) -> ControlFlow<TooComplex> {
        self.leave(set_operation_depth(&query.body))
    }

    fn pre_visit_select(&mut self, _select: &Select) -> ControlFlow<TooComplex> {
        self.blocks += 1;
        if self.blocks > MAX_QUERY_BLOCKS {
            ControlFlow::Break(TooComplex::QueryBlocks)
        } else {
            ControlFlow::Continue(())
        }
    }

    fn pre_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<TooComplex> {
        self.enter(1)
    }

    fn post_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<TooComplex> {
        self.leave(1)
    }
}

/// Levels of the set operations at the top of `body` (1 for a plain `SELECT`), counted
/// without recursion.
fn set_operation_depth(body: &SetExpr) -> usize {
    let mut deepest = 0;
    let mut pending = vec![(body, 1)];
    while let Some((node, depth)) = pending.pop() {
        deepest = deepest.max(depth);
        if let SetExpr::SetOperation { left, right, .. } = node {
            pending.push((left, depth + 1));
            pending.push((right, depth + 1));
        }
    }
    deepest
}

/// Drops `statements` without recursing deeper than about [`CUT_DEPTH`] levels: deep
/// expressions and set operations are cut into pieces, each dropped on its own.
pub fn discard(statements: Vec<Statement>) {
    let mut cutter = Cutter::default();
    for mut statement in statements {
        let _ = VisitMut::visit(&mut statement, &mut cutter);
    }
    while let Some(piece) = cutter.pieces.pop() {
        cutter.depth = 0;
        match piece {
            Piece::Expr(mut expr) => {
                let _ = VisitMut::visit(&mut *expr, &mut cutter);
            }
            Piece::SetExpr(mut set_expr) => {
                let _ = VisitMut::visit(&mut *set_expr, &mut cutter);
            }
        }
    }
}

/// A part cut out of a statement being discarded.
enum Piece {
    Expr(Box<Expr>),
    SetExpr(Box<SetExpr>),
}

/// Cuts expressions below [`CUT_DEPTH`] and every chain of set operations out of the tree
/// it visits, leaving `NULL` or an empty `VALUES` in their place.
#[derive(Default)]
struct Cutter {
    depth: usize,
    pieces: Vec<Piece>,
}

impl VisitorMut for Cutter {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if matches!(*query.body, SetExpr::SetOperation { .. }) {
            let empty = SetExpr::Values(Values {
                explicit_row: false,
                value_keyword: false,
                rows: Vec::new(),
            });
            let mut pending = vec![std::mem::replace(&mut *query.body, empty)];
            while let Some(node) = pending.pop() {
                match node {
                    SetExpr::SetOperation { left, right, .. } => {
                        pending.push(*left);
                        pending.push(*right);
                    }
                    other => self.pieces.push(Piece::SetExpr(Box::new(other))),
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        self.depth += 1;
        if self.depth > CUT_DEPTH {
            let cut = std::mem::replace(expr, Expr::value(Value::Null));
            self.pieces.push(Piece::Expr(Box::new(cut)));
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, _expr: &mut Expr) -> ControlFlow<()> {
        self.depth = self.depth.saturating_sub(1);
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    use super::*;

    fn parsed(sql: &str) -> Vec<Statement> {
        Parser::new(&PostgreSqlDialect {})
            .try_with_sql(sql)
            .and_then(|mut parser| parser.parse_statements())
            .expect("parses")
    }

    fn sum(terms: usize) -> String {
        format!("SELECT 1{}", "+1".repeat(terms - 1))
    }

    #[test]
    fn statements_within_the_bounds_pass() {
        for sql in [
            sum(MAX_DEPTH - 10),
            format!("SELECT 1{}", " UNION ALL SELECT 1".repeat(500)),
            "WITH a AS (SELECT 1 AS x) SELECT x FROM a WHERE x IN (SELECT 1)".to_owned(),
        ] {
            assert!(check(parsed(&sql)).is_ok(), "{}", &sql[..40.min(sql.len())]);
        }
    }

    #[test]
    fn deep_chains_and_many_blocks_are_refused() {
        let ands = format!("SELECT 1 WHERE true{}", " AND true".repeat(2_000));
        let unions = format!("SELECT 1{}", " UNION ALL SELECT 1".repeat(1_500));
        let ctes = (1..3_000)
            .map(|i| format!("c{i} AS (SELECT * FROM c{})", i - 1))
            .collect::<Vec<_>>()
            .join(", ");
        let ctes = format!("WITH c0 AS (SELECT 1 AS x), {ctes} SELECT * FROM c2999");
        for sql in [sum(2_000), ands, unions, ctes] {
            let error = check(parsed(&sql)).expect_err("too complex");
            assert_eq!(error.kind(), crate::error::ErrorKind::TooComplex);
        }
    }

    #[test]
    fn a_chain_of_a_hundred_thousand_levels_is_refused_and_dropped_on_a_small_stack() {
        // Parsed, measured and dropped on a thread with 1 MiB of stack.
        let sql = sum(100_000);
        let outcome = std::thread::Builder::new()
            .stack_size(1 << 20)
            .spawn(move || check(parsed(&sql)).map(|_| ()).map_err(|e| e.kind()))
            .expect("spawn")
            .join()
            .expect("no overflow");
        assert_eq!(outcome, Err(crate::error::ErrorKind::TooComplex));
    }
}
