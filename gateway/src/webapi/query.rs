//! One Web-API query through the engine API: parse (exactly one statement), plan in the
//! caller's session, bind parameters to the types the plan infers, execute.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tollgate_planner::{QueryContext, QueryService, QueryStream};

use super::auth::WebCaller;
use super::errors::WebError;

/// Starts `sql` with `parameters` (`$1..$n`) for `caller`; `cancel` stops it.
///
/// # Errors
/// [`WebError::BadRequest`] for zero or several statements or a parameter that does not
/// convert; the planner's errors as [`WebError::Query`].
pub async fn start(
    service: &QueryService,
    caller: &WebCaller,
    sql: &str,
    parameters: Vec<Value>,
    cancel: CancellationToken,
) -> Result<QueryStream, WebError> {
    let context = QueryContext::new(
        Arc::clone(&caller.session),
        Arc::clone(&caller.principal),
        cancel,
        Arc::clone(&caller.client),
    );
    let mut statements = service.parse(&context, sql)?;
    if statements.len() != 1 {
        return Err(WebError::BadRequest(format!(
            "a statement must be exactly one SQL statement, got {}",
            statements.len()
        )));
    }
    let planned = service.plan(&context, statements.remove(0)).await?;
    let types = planned.parameter_types();
    if parameters.len() != types.len() {
        return Err(WebError::BadRequest(format!(
            "the statement takes {} parameters, {} were given",
            types.len(),
            parameters.len()
        )));
    }
    let values = parameters
        .into_iter()
        .zip(types)
        .enumerate()
        .map(|(i, (value, data_type))| bind(i + 1, value, data_type.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(service.execute(&context, &planned, values).await?)
}

/// The engine value of parameter `$position` given as JSON, of the type the plan infers
/// for it (or the JSON value's own when the plan infers none).
fn bind(
    position: usize,
    value: Value,
    data_type: Option<&DataType>,
) -> Result<ScalarValue, WebError> {
    let bad = |detail: String| WebError::BadRequest(format!("parameter ${position}: {detail}"));
    let text = match value {
        Value::Null => {
            return match data_type {
                Some(data_type) => ScalarValue::try_from(data_type).map_err(|e| bad(e.to_string())),
                None => Ok(ScalarValue::Null),
            };
        }
        Value::String(text) => text,
        Value::Bool(flag) if data_type.is_none() => return Ok(ScalarValue::Boolean(Some(flag))),
        Value::Number(number) if data_type.is_none() => {
            return Ok(match number.as_i64() {
                Some(integer) => ScalarValue::Int64(Some(integer)),
                None => ScalarValue::Float64(number.as_f64()),
            });
        }
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => number.to_string(),
        Value::Array(_) | Value::Object(_) => {
            return Err(bad("must be a string, number, boolean or null".to_owned()));
        }
    };
    match data_type {
        None => Ok(ScalarValue::Utf8(Some(text))),
        Some(data_type) => ScalarValue::try_from_string(text.clone(), data_type)
            .map_err(|_| bad(format!("`{text}` is not a valid {data_type}"))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parameters_take_the_inferred_type() {
        assert_eq!(
            bind(1, json!("5"), Some(&DataType::Int64)).expect("int"),
            ScalarValue::Int64(Some(5))
        );
        assert_eq!(
            bind(1, json!(5), Some(&DataType::Utf8)).expect("text"),
            ScalarValue::Utf8(Some("5".to_owned()))
        );
        assert_eq!(
            bind(1, json!(null), Some(&DataType::Date32)).expect("null"),
            ScalarValue::Date32(None)
        );
        assert_eq!(
            bind(1, json!(2.5), None).expect("float"),
            ScalarValue::Float64(Some(2.5))
        );
        assert!(matches!(
            bind(2, json!("x"), Some(&DataType::Int64)),
            Err(WebError::BadRequest(message)) if message.starts_with("parameter $2")
        ));
        assert!(bind(1, json!([1]), None).is_err());
    }
}
