//! The client's session parameters as SQL sees them: `current_setting(name [, missing_ok])`
//! reads them and `set_config(name, value, is_local)` changes them, as in PostgreSQL.
//!
//! Session parameters belong to the front end (what the client `SET`); a query reaches them
//! through the [`SessionParameters`] of its [`QueryContext`](crate::QueryContext). Engine
//! configuration is reachable by no name.

use std::fmt::Debug;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarUDF, Signature, TypeSignature, Volatility, expr_fn::SimpleScalarUDF,
};

/// A session's parameters, by name (case-insensitive for PostgreSQL's own).
pub trait SessionParameters: Debug + Send + Sync {
    /// The current value of `name`, or `None` when there is no such parameter.
    fn get(&self, name: &str) -> Option<String>;

    /// Sets `name` to `value` for the rest of the session.
    ///
    /// # Errors
    /// Why the parameter cannot be set.
    fn set(&self, name: &str, value: &str) -> Result<(), ParameterRefused>;
}

/// Why a session parameter cannot be read or set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParameterRefused {
    /// No parameter has this name.
    #[error("unrecognized configuration parameter \"{0}\"")]
    Unknown(String),
    /// The parameter is fixed for the session (`server_version`, …).
    #[error("parameter \"{0}\" cannot be changed")]
    ReadOnly(String),
    /// The name is an engine setting, which tenants can neither read nor change.
    #[error(
        "permission denied to set parameter \"{0}\": engine settings are not available to tenants"
    )]
    EngineSetting(String),
    /// The parameter does not take this value (`client_encoding` other than UTF8, …).
    #[error("invalid value for parameter \"{0}\": \"{1}\"")]
    InvalidValue(String, String),
}

impl ParameterRefused {
    /// The refusal inside an engine error, if there is one.
    pub(crate) fn find(error: &DataFusionError) -> Option<&Self> {
        match error.find_root() {
            DataFusionError::External(inner) => inner.downcast_ref::<Self>(),
            _ => None,
        }
    }
}

/// The parameters of a front end that keeps none (Flight SQL): no name is known.
#[derive(Debug, Default)]
pub struct NoParameters;

impl SessionParameters for NoParameters {
    fn get(&self, _name: &str) -> Option<String> {
        None
    }

    fn set(&self, name: &str, _value: &str) -> Result<(), ParameterRefused> {
        Err(ParameterRefused::Unknown(name.to_owned()))
    }
}

/// `current_setting(text [, missing_ok boolean]) -> text`: an unknown name is an error,
/// or NULL when `missing_ok` is true.
pub fn current_setting_udf(parameters: Arc<dyn SessionParameters>) -> ScalarUDF {
    let signature = Signature::one_of(
        vec![
            TypeSignature::Exact(vec![DataType::Utf8]),
            TypeSignature::Exact(vec![DataType::Utf8, DataType::Boolean]),
        ],
        Volatility::Volatile,
    );
    let read = move |args: &[ColumnarValue]| {
        row_wise(args, |row| {
            let Some(name) = row.text(0) else {
                return Ok(None);
            };
            match parameters.get(name) {
                Some(value) => Ok(Some(value)),
                None if row.flag(1) == Some(true) => Ok(None),
                None => Err(refused(ParameterRefused::Unknown(name.to_owned()))),
            }
        })
    };
    ScalarUDF::from(SimpleScalarUDF::new_with_signature(
        "current_setting",
        signature,
        DataType::Utf8,
        Arc::new(read),
    ))
}

/// `set_config(name text, value text, is_local boolean) -> text`: sets the parameter and
/// returns its new value. A transaction-local change (`is_local` true) lasts for the
/// session too: the gateway's transactions are read-only and keep no parameter state.
pub fn set_config_udf(parameters: Arc<dyn SessionParameters>) -> ScalarUDF {
    let change = move |args: &[ColumnarValue]| {
        row_wise(args, |row| {
            let (Some(name), Some(value)) = (row.text(0), row.text(1)) else {
                return Err(DataFusionError::Execution(
                    "set_config: the parameter's name and value must not be NULL".to_owned(),
                ));
            };
            parameters.set(name, value).map_err(refused)?;
            Ok(parameters.get(name).or_else(|| Some(value.to_owned())))
        })
    };
    ScalarUDF::from(SimpleScalarUDF::new(
        "set_config",
        vec![DataType::Utf8, DataType::Utf8, DataType::Boolean],
        DataType::Utf8,
        Volatility::Volatile,
        Arc::new(change),
    ))
}

fn refused(refusal: ParameterRefused) -> DataFusionError {
    DataFusionError::External(Box::new(refusal))
}

/// One row of a function's arguments.
struct Row<'a> {
    columns: &'a [ArrayRef],
    index: usize,
}

impl Row<'_> {
    fn text(&self, column: usize) -> Option<&str> {
        let array = self.columns.get(column)?.as_string::<i32>();
        (!array.is_null(self.index)).then(|| array.value(self.index))
    }

    fn flag(&self, column: usize) -> Option<bool> {
        let array = self.columns.get(column)?.as_boolean();
        (!array.is_null(self.index)).then(|| array.value(self.index))
    }
}

/// Applies `each` to every row of `args`; a scalar when every argument is one.
fn row_wise(
    args: &[ColumnarValue],
    each: impl Fn(&Row) -> Result<Option<String>>,
) -> Result<ColumnarValue> {
    let all_scalar = args
        .iter()
        .all(|arg| matches!(arg, ColumnarValue::Scalar(_)));
    let columns = ColumnarValue::values_to_arrays(args)?;
    let rows = columns.first().map_or(1, |column| column.len());
    let values = (0..rows)
        .map(|index| {
            each(&Row {
                columns: &columns,
                index,
            })
        })
        .collect::<Result<StringArray>>()?;
    let values: ArrayRef = Arc::new(values);
    if all_scalar {
        Ok(ColumnarValue::Scalar(
            datafusion::common::ScalarValue::try_from_array(&values, 0)?,
        ))
    } else {
        Ok(ColumnarValue::Array(values))
    }
}
