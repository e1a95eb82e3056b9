//! What tickets and prepared-statement handles carry, signed by [`crate::signing`].
//!
//! A ticket is self-contained: the principal it was issued to, the SQL, bound parameters,
//! which part of the result it reads and when it expires. `DoGet` plans from it alone, on
//! whichever gateway receives it, and runs it only for the principal it names.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use tollgate_planner::datafusion::arrow::ipc::reader::StreamReader;
use tollgate_planner::datafusion::arrow::ipc::writer::StreamWriter;
use tollgate_planner::datafusion::arrow::record_batch::RecordBatch;
use tollgate_planner::datafusion::common::ScalarValue;
use tonic::Status;

use tollgate_catalog::Principal;

/// The claims of a statement ticket: one part of one query's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TicketClaims {
    /// The principal the ticket was issued to.
    pub user: String,
    /// That principal's tenant.
    pub tenant: String,
    /// Expiry, seconds since the Unix epoch.
    pub expires: u64,
    /// Shared by every endpoint of one `FlightInfo`; what cancel requests name.
    pub query_id: String,
    /// The statement.
    pub sql: String,
    /// Bound parameters, one row in Arrow IPC (base64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<String>,
    /// Which partition of the result this ticket reads.
    pub partition: usize,
    /// How many partitions the result was split into.
    pub partitions: usize,
}

impl TicketClaims {
    /// Whether `principal` is the one the ticket was issued to.
    pub fn belongs_to(&self, principal: &Principal) -> bool {
        self.user == principal.user && self.tenant == principal.tenant
    }
}

/// The claims of a prepared statement handle.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreparedClaims {
    /// The principal that prepared the statement.
    pub user: String,
    /// That principal's tenant.
    pub tenant: String,
    /// Expiry, seconds since the Unix epoch.
    pub expires: u64,
    /// The statement.
    pub sql: String,
    /// Parameters bound with `DoPut`, one row in Arrow IPC (base64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<String>,
}

impl PreparedClaims {
    /// Whether `principal` is the one that prepared the statement.
    pub fn belongs_to(&self, principal: &Principal) -> bool {
        self.user == principal.user && self.tenant == principal.tenant
    }
}

/// Encodes a one-row parameter batch for a ticket or handle.
///
/// # Errors
/// INVALID_ARGUMENT unless the batch has exactly one row; INTERNAL if it does not encode.
pub fn encode_parameters(batch: &RecordBatch) -> Result<String, Status> {
    if batch.num_rows() != 1 {
        return Err(Status::invalid_argument(format!(
            "a query takes one row of parameters, but {} were bound",
            batch.num_rows()
        )));
    }
    let mut bytes = Vec::new();
    let mut writer = StreamWriter::try_new(&mut bytes, &batch.schema())
        .map_err(|e| crate::error::internal_status("cannot encode parameters", e))?;
    writer
        .write(batch)
        .and_then(|()| writer.finish())
        .map_err(|e| crate::error::internal_status("cannot encode parameters", e))?;
    drop(writer);
    Ok(STANDARD.encode(bytes))
}

/// The parameter values `$1..$n` of an encoded parameter row.
///
/// # Errors
/// INVALID_ARGUMENT if the encoding is damaged (it is signed, so only a bug can do that).
pub fn decode_parameters(encoded: Option<&str>) -> Result<Vec<ScalarValue>, Status> {
    let Some(encoded) = encoded else {
        return Ok(Vec::new());
    };
    let invalid = |e: &dyn std::fmt::Display| {
        Status::invalid_argument(format!("the bound parameters do not decode: {e}"))
    };
    let bytes = STANDARD.decode(encoded).map_err(|e| invalid(&e))?;
    let reader = StreamReader::try_new(bytes.as_slice(), None).map_err(|e| invalid(&e))?;
    let mut values = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| invalid(&e))?;
        values = parameter_row(&batch)?;
    }
    Ok(values)
}

/// The values of the single row of a parameter batch, column by column.
///
/// # Errors
/// INVALID_ARGUMENT unless the batch has exactly one row.
pub fn parameter_row(batch: &RecordBatch) -> Result<Vec<ScalarValue>, Status> {
    if batch.num_rows() != 1 {
        return Err(Status::invalid_argument(format!(
            "a query takes one row of parameters, but {} were bound",
            batch.num_rows()
        )));
    }
    batch
        .columns()
        .iter()
        .map(|column| {
            ScalarValue::try_from_array(column, 0)
                .map_err(|e| Status::invalid_argument(format!("unsupported parameter value: {e}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use tollgate_planner::datafusion::arrow::array::{Date32Array, Int64Array};
    use tollgate_planner::datafusion::arrow::datatypes::{DataType, Field, Schema};

    #[test]
    fn parameters_round_trip_through_their_encoding() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("0", DataType::Int64, true),
            Field::new("1", DataType::Date32, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![42])),
                Arc::new(Date32Array::from(vec![9131])),
            ],
        )
        .expect("batch");
        let encoded = encode_parameters(&batch).expect("encode");
        let values = decode_parameters(Some(&encoded)).expect("decode");
        assert_eq!(
            values,
            vec![
                ScalarValue::Int64(Some(42)),
                ScalarValue::Date32(Some(9131))
            ]
        );
        assert!(decode_parameters(None).expect("none").is_empty());
        assert!(encode_parameters(&batch.slice(0, 0)).is_err());
    }
}
