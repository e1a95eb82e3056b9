//! `pg_get_constraintdef` and `pg_get_indexdef` of one tenant's session: the definitions of
//! the keys it sees ([`ShownKeys`]), and NULL for any other oid, as PostgreSQL answers for an
//! object it does not know.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::pg_compat::dataset_keys::ShownKeys;

/// The two functions, for a session that shows `keys`.
pub(crate) fn all(keys: &ShownKeys) -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::new_from_impl(KeyDefinition {
            name: "pg_get_constraintdef",
            signature: Signature::variadic_any(Volatility::Stable),
            definitions: Arc::new(
                keys.constraint_definitions()
                    .into_iter()
                    .map(|(oid, definition)| (oid, (definition, Vec::new())))
                    .collect(),
            ),
        }),
        ScalarUDF::new_from_impl(KeyDefinition {
            name: "pg_get_indexdef",
            signature: Signature::variadic_any(Volatility::Stable),
            definitions: Arc::new(keys.index_definitions()),
        }),
    ]
}

/// `name(oid [, column] [, pretty])`: the definition of the object `oid`; for an index
/// with a column number above 0, that column's name.
#[derive(Debug)]
struct KeyDefinition {
    name: &'static str,
    signature: Signature,
    /// By oid: the whole definition and the names of the columns.
    definitions: Arc<HashMap<i64, (String, Vec<String>)>>,
}

impl PartialEq for KeyDefinition {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.definitions, &other.definitions)
    }
}

impl Eq for KeyDefinition {}

impl std::hash::Hash for KeyDefinition {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        Arc::as_ptr(&self.definitions).hash(state);
    }
}

impl ScalarUDFImpl for KeyDefinition {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let oids = integers(arrays.first(), rows)?;
        // `pg_get_indexdef(index, column, pretty)`; `pg_get_constraintdef(oid, pretty)`
        // has no column.
        let columns = match (self.name, arrays.get(1)) {
            ("pg_get_indexdef", Some(column)) => Some(integers(Some(column), rows)?),
            _ => None,
        };
        let oids = oids.as_primitive::<Int64Type>();
        let answer: StringArray = (0..rows)
            .map(|row| {
                if oids.is_null(row) {
                    return None;
                }
                let (definition, names) = self.definitions.get(&oids.value(row))?;
                let column = columns
                    .as_ref()
                    .map(|c| c.as_primitive::<Int64Type>())
                    .filter(|c| c.is_valid(row))
                    .map_or(0, |c| c.value(row));
                match usize::try_from(column) {
                    Ok(0) | Err(_) => Some(definition.clone()),
                    Ok(number) => names.get(number - 1).cloned().or(Some(String::new())),
                }
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(answer)))
    }
}

/// The argument as 64-bit integers (oids and column numbers arrive as any integer type).
fn integers(argument: Option<&ArrayRef>, rows: usize) -> Result<ArrayRef> {
    match argument {
        Some(values) => Ok(cast(values, &DataType::Int64)?),
        None => Ok(datafusion::arrow::array::new_null_array(
            &DataType::Int64,
            rows,
        )),
    }
}
