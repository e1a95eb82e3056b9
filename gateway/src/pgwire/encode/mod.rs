//! Arrow record batches to Postgres wire rows.
//!
//! The pgwire front end streams DataFusion results to clients; this folder owns the
//! translation of one result schema and its batches:
//!
//! ```text
//!   Schema ──field_infos──▶ Vec<FieldInfo>   (RowDescription: OID, typmod, text/binary)
//!   RecordBatch ──encode_batch──▶ Vec<DataRow>   (one DataRow per row)
//! ```
//!
//! | file | job |
//! | --- | --- |
//! | `types.rs` | Arrow types → Postgres types: OIDs, `numeric` type modifiers, row descriptions |
//! | `rows.rs` | batches → `DataRow`s and `COPY` rows; dictionaries decoded once per batch |
//! | `columns.rs` | one typed reader per column, scalar or list (a Postgres array), writing into the row |
//! | `convert.rs` | Arrow values → wire values that can fall outside Postgres's range (decimals, dates, times, instants) |
//! | `text.rs` | wire values whose text form is PostgreSQL's rather than pgwire's (floats, dates, intervals, numerics) |
//!
//! Each column is downcast once per batch into a typed reader (`Source`); values are then
//! written straight from the Arrow buffers (`&str`, `&[u8]`, integers) into one reused
//! [`DataRowEncoder`](pgwire::api::results::DataRowEncoder). Text output goes through pgwire's
//! `ToSqlText`, so it follows the session's `FormatOptions` (DateStyle, `bytea_output`,
//! `extra_float_digits`), except that float infinities are spelled as PostgreSQL does
//! (`Float`); binary output goes through postgres-types' `ToSql`, the layouts PostgreSQL
//! itself sends. `timestamptz` values are instants and are shown in UTC (`+00`), whatever zone
//! the Arrow type names.
//!
//! | Arrow                                            | Postgres (OID)          |
//! |--------------------------------------------------|-------------------------|
//! | Boolean                                          | bool (16)               |
//! | Int8, UInt8, Int16                               | int2 (21)               |
//! | Int32, UInt16                                    | int4 (23)               |
//! | Int64, UInt32                                    | int8 (20)               |
//! | UInt64                                           | numeric(20,0) (1700)    |
//! | Decimal32/64/128/256(p, s)                       | numeric(p,s) (1700)     |
//! | Float16, Float32                                 | float4 (700)            |
//! | Float64                                          | float8 (701)            |
//! | Utf8, LargeUtf8, Utf8View, Null                  | text (25)               |
//! | Binary, LargeBinary, BinaryView, FixedSizeBinary | bytea (17)              |
//! | Date32, Date64                                   | date (1082)             |
//! | Time32(s, ms), Time64(µs, ns)                    | time (1083)             |
//! | Timestamp(unit, None)                            | timestamp (1114)        |
//! | Timestamp(unit, Some(tz))                        | timestamptz (1184)      |
//! | Interval(MonthDayNano)                           | interval (1186)         |
//! | Dictionary(_, V)                                 | as V                    |
//! | List / LargeList of any of the above             | the matching array type |
//!
//! Anything else (other intervals, durations, structs, maps, nested lists, …) is refused with
//! SQLSTATE 0A000 when the row description is built, before any row is sent.

mod columns;
mod convert;
mod rows;
mod text;
mod types;

pub use rows::{encode_batch, encode_copy_batch};
pub use types::{field_infos, pg_type};

/// What the folder's tests share: one-column batches encoded and read back as a client would.
#[cfg(test)]
mod test_support {
    use std::sync::Arc;

    use datafusion::arrow::array::{Array, ArrayRef, Decimal128Array};
    use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema};
    use datafusion::arrow::record_batch::RecordBatch;
    use pgwire::api::portal::Format;
    use pgwire::api::results::FieldFormat;
    use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
    use pgwire::messages::data::DataRow;
    use postgres_types::FromSqlOwned;

    use super::{encode_batch, field_infos, pg_type};

    /// Encodes a one-column batch; each row's field, `None` for NULL.
    pub(super) fn encode(array: ArrayRef, format: FieldFormat) -> Vec<Option<Vec<u8>>> {
        try_encode(array, format).expect("encodes")
    }

    pub(super) fn try_encode(
        array: ArrayRef,
        format: FieldFormat,
    ) -> PgWireResult<Vec<Option<Vec<u8>>>> {
        let field = Field::new("c", array.data_type().clone(), true);
        let schema = Arc::new(Schema::new(vec![field]));
        let batch = RecordBatch::try_new(Arc::clone(&schema), vec![array]).expect("valid batch");
        let fields = Arc::new(field_infos(&schema, &Format::from(format.value()))?);
        let rows = encode_batch(&fields, &batch)?;
        Ok(rows
            .iter()
            .map(|row| {
                let [cell]: [_; 1] = cells(row).try_into().expect("one field");
                cell
            })
            .collect())
    }

    /// The fields of a `DataRow`: a 4-byte length (-1 for NULL) then the bytes, each.
    pub(super) fn cells(row: &DataRow) -> Vec<Option<Vec<u8>>> {
        let mut data = &row.data[..];
        let cells = (0..row.field_count)
            .map(|_| {
                let (length, rest) = data.split_at(4);
                data = rest;
                let length = i32::from_be_bytes(length.try_into().expect("4 bytes"));
                usize::try_from(length).ok().map(|length| {
                    let (value, rest) = data.split_at(length);
                    data = rest;
                    value.to_vec()
                })
            })
            .collect();
        assert!(data.is_empty(), "trailing bytes in DataRow");
        cells
    }

    pub(super) fn text(array: ArrayRef) -> Vec<Option<String>> {
        encode(array, FieldFormat::Text)
            .into_iter()
            .map(|cell| cell.map(|bytes| String::from_utf8(bytes).expect("utf-8")))
            .collect()
    }

    /// Binary fields decoded with postgres-types, as a client driver would.
    pub(super) fn binary<T: FromSqlOwned>(array: ArrayRef) -> Vec<Option<T>> {
        let ty = pg_type(array.data_type()).expect("supported");
        encode(array, FieldFormat::Binary)
            .into_iter()
            .map(|cell| cell.map(|bytes| T::from_sql(&ty, &bytes).expect("decodes")))
            .collect()
    }

    /// Asserts a column's text fields, and its binary fields as decoded into `T`.
    #[track_caller]
    pub(super) fn assert_column<T>(
        array: ArrayRef,
        text_form: &[Option<&str>],
        binary_form: &[Option<T>],
    ) where
        T: FromSqlOwned + PartialEq + std::fmt::Debug,
    {
        assert_eq!(
            text(Arc::clone(&array)),
            strings(text_form),
            "{}",
            array.data_type()
        );
        assert_eq!(binary::<T>(array), binary_form);
    }

    pub(super) fn strings(values: &[Option<&str>]) -> Vec<Option<String>> {
        values.iter().map(|v| v.map(str::to_owned)).collect()
    }

    pub(super) fn code(error: PgWireError) -> String {
        ErrorInfo::from(error).code
    }

    pub(super) fn item(data_type: DataType) -> FieldRef {
        Arc::new(Field::new("item", data_type, true))
    }

    pub(super) fn decimals(values: Vec<Option<i128>>, precision: u8, scale: i8) -> ArrayRef {
        let array = Decimal128Array::from(values).with_precision_and_scale(precision, scale);
        Arc::new(array.expect("valid decimal type"))
    }
}
