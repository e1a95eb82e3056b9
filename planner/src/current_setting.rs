//! `current_setting(name)`: the client's session parameters, never engine settings.
//!
//! Session parameters belong to the front end (what the client `SET`); a query carries a
//! snapshot of them in its [`QueryContext`](crate::QueryContext), and this function reads
//! that snapshot. DataFusion's own configuration is not reachable by any name.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};

/// The message prefix of an unknown parameter, classified as [`crate::ErrorKind::UndefinedObject`].
pub(crate) const UNRECOGNIZED: &str = "unrecognized configuration parameter";

/// `current_setting(text) -> text` over `settings` (names compared case-insensitively).
pub fn current_setting_udf(settings: Arc<BTreeMap<String, String>>) -> ScalarUDF {
    let lookup = move |name: &str| -> Result<String, DataFusionError> {
        settings
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.clone())
            .ok_or_else(|| DataFusionError::Execution(format!("{UNRECOGNIZED} \"{name}\"")))
    };
    create_udf(
        "current_setting",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(move |args: &[ColumnarValue]| match args {
            [ColumnarValue::Scalar(scalar)] => match scalar.try_as_str() {
                Some(Some(name)) => Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(lookup(
                    name,
                )?)))),
                _ => Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None))),
            },
            [ColumnarValue::Array(array)] => {
                let names = array.as_string::<i32>();
                let values = (0..names.len())
                    .map(|i| {
                        if names.is_null(i) {
                            Ok(None)
                        } else {
                            lookup(names.value(i)).map(Some)
                        }
                    })
                    .collect::<Result<StringArray, _>>()?;
                Ok(ColumnarValue::Array(Arc::new(values)))
            }
            _ => Err(DataFusionError::Plan(
                "current_setting takes one argument".to_owned(),
            )),
        }),
    )
}
