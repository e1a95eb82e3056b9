//! PostgreSQL functions drivers call that neither DataFusion nor `datafusion-pg-catalog`
//! provide, answered as PostgreSQL would for a read-only database of views.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};

use crate::tenant::SERVER_VERSION;

/// Every function of this module, to register in a tenant's session.
pub(crate) fn all() -> Vec<ScalarUDF> {
    vec![version(), advisory_unlock_all(), serial_sequence()]
}

/// `version()` in PostgreSQL's format, which drivers parse; DataFusion's names the engine.
fn version() -> ScalarUDF {
    let text = format!(
        "PostgreSQL {SERVER_VERSION} (Tollgate {})",
        env!("CARGO_PKG_VERSION")
    );
    create_udf(
        "version",
        vec![],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(move |_| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(text.clone()))))),
    )
}

/// `pg_advisory_unlock_all()`, which asyncpg sends when it resets a pooled connection. A
/// tenant cannot take advisory locks, so there is never one to release.
fn advisory_unlock_all() -> ScalarUDF {
    create_udf(
        "pg_advisory_unlock_all",
        vec![],
        DataType::Utf8,
        Volatility::Volatile,
        Arc::new(|_| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)))),
    )
}

/// `pg_get_serial_sequence(table, column)`: the sequence a serial column draws from, which
/// SQLAlchemy asks for every column it reflects. A tenant's datasets are views over data
/// it cannot write, so no column has one: always NULL.
fn serial_sequence() -> ScalarUDF {
    create_udf(
        "pg_get_serial_sequence",
        vec![DataType::Utf8, DataType::Utf8],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(|_| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)))),
    )
}
