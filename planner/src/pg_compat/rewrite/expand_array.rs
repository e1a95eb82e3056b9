//! `information_schema._pg_expandarray(array)`: PostgreSQL's set-returning function giving
//! one `(x, n)` record per element (the element and its 1-based position). pgJDBC's
//! `getPrimaryKeys` reads an index's key columns with it:
//! `(information_schema._pg_expandarray(i.indkey)).n AS KEY_SEQ`, then `(result.KEYS).x`.
//!
//! The call becomes `unnest(_pg_expandarray(array))`, where this module's function builds
//! the list of `{x, n}` structs, and a field of a parenthesized record `(expr).field`
//! becomes `get_field(expr, 'field')`, which the engine plans. Catalog statements only.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int32Array, ListArray, StructArray, new_empty_array,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::common::{DataFusionError, Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::sql::sqlparser::ast::{
    AccessExpr, Expr, Ident, ObjectName, Statement, Value, visit_expressions_mut,
};
use datafusion_pg_catalog::sql::rules::SqlStatementRewriteRule;

use crate::pg_compat::rewrite::sql_calls::{called_name, function_call};

/// The function's name, in the engine as in PostgreSQL.
const NAME: &str = "_pg_expandarray";

/// The rewrite rule.
#[derive(Debug)]
pub(crate) struct ExpandArray;

impl SqlStatementRewriteRule for ExpandArray {
    fn rewrite(&self, mut statement: Statement) -> Statement {
        let _ = visit_expressions_mut(&mut statement, |expr| {
            match expr {
                Expr::Function(function) if called_name(function).as_deref() == Some(NAME) => {
                    let mut call = function.clone();
                    call.name = ObjectName::from(vec![Ident::new(NAME)]);
                    *expr = function_call("unnest", vec![Expr::Function(call)]);
                }
                Expr::CompoundFieldAccess { root, access_chain }
                    if matches!(root.as_ref(), Expr::Nested(_)) =>
                {
                    if let [AccessExpr::Dot(Expr::Identifier(field))] = access_chain.as_slice() {
                        let field = Expr::value(Value::SingleQuotedString(field.value.clone()));
                        *expr = function_call("get_field", vec![(**root).clone(), field]);
                    }
                }
                _ => {}
            }
            ControlFlow::<()>::Continue(())
        });
        statement
    }
}

/// `_pg_expandarray(anyarray) -> list of {x: element, n: int4}`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct ExpandArrayFunction {
    signature: Signature,
}

impl ExpandArrayFunction {
    pub(crate) fn new() -> Self {
        Self {
            signature: Signature::array(Volatility::Immutable),
        }
    }
}

/// The record type of one element.
fn record_fields(element: &DataType) -> Fields {
    Fields::from(vec![
        Field::new("x", element.clone(), true),
        Field::new("n", DataType::Int32, false),
    ])
}

impl ScalarUDFImpl for ExpandArrayFunction {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [DataType::List(element)] => Ok(DataType::List(Arc::new(Field::new_list_field(
                DataType::Struct(record_fields(element.data_type())),
                true,
            )))),
            other => exec_err!("{NAME} takes an array, not {other:?}"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [argument] = args.args.as_slice() else {
            return exec_err!("{NAME} takes one array");
        };
        let is_scalar = matches!(argument, ColumnarValue::Scalar(_));
        let arrays = argument.to_array(1)?;
        let lists = arrays
            .as_list_opt::<i32>()
            .ok_or_else(|| DataFusionError::Execution(format!("{NAME} takes an array")))?;
        let element = lists.value_type();
        // Positions restart at 1 in each array.
        let positions: Int32Array = (0..lists.len())
            .flat_map(|row| {
                let length = if lists.is_null(row) {
                    0
                } else {
                    lists.value_length(row)
                };
                1..=length
            })
            .collect();
        let values: ArrayRef = if lists.is_empty() {
            new_empty_array(&element)
        } else {
            let first = lists.value_offsets()[0] as usize;
            let last = lists.value_offsets()[lists.len()] as usize;
            lists.values().slice(first, last - first)
        };
        let records = StructArray::try_new(
            record_fields(&element),
            vec![values, Arc::new(positions)],
            None,
        )?;
        let offsets = OffsetBuffer::from_lengths((0..lists.len()).map(|row| {
            if lists.is_null(row) {
                0
            } else {
                lists.value_length(row) as usize
            }
        }));
        let expanded = ListArray::try_new(
            Arc::new(Field::new_list_field(records.data_type().clone(), true)),
            offsets,
            Arc::new(records),
            lists.nulls().cloned(),
        )?;
        if is_scalar {
            Ok(ColumnarValue::Scalar(
                datafusion::common::ScalarValue::try_from_array(&expanded, 0)?,
            ))
        } else {
            Ok(ColumnarValue::Array(Arc::new(expanded)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> String {
        crate::pg_compat::rewrite::sql_calls::rewritten_by(&ExpandArray, sql)
    }

    #[test]
    fn expanded_arrays_are_unnested_records() {
        assert_eq!(
            rewritten(
                "SELECT (information_schema._pg_expandarray(i.indkey)).n AS k, \
                 information_schema._pg_expandarray(i.indkey) AS keys FROM pg_index i"
            ),
            "SELECT get_field((unnest(_pg_expandarray(i.indkey))), 'n') AS k, \
             unnest(_pg_expandarray(i.indkey)) AS keys FROM pg_index i"
        );
        assert_eq!(
            rewritten("SELECT 1 FROM r WHERE r.a = (r.keys).x"),
            "SELECT 1 FROM r WHERE r.a = get_field((r.keys), 'x')"
        );
    }
}
