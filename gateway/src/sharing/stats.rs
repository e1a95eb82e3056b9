//! Delta's per-file statistics of the rows written to a shared file: the smallest and
//! largest value and the count of nulls of each top-level column, which Delta readers use
//! to skip files a filter rules out.
//!
//! Bounds are only ever widened, never narrowed, so skipping stays correct: a string's
//! minimum is cut to its first [`STRING_PREFIX`] characters and a longer maximum is left
//! out; a timestamp's minimum is floored and its maximum ceiled to the millisecond Delta
//! writes; decimals wider than a JSON double holds exactly, NaN and booleans get no bounds.

use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::functions_aggregate::min_max::{MaxAccumulator, MinAccumulator};
use datafusion::logical_expr::Accumulator;
use serde_json::{Map, Value, json};

/// Characters of a string kept as a bound, as Delta writers keep.
const STRING_PREFIX: usize = 32;
/// Decimal digits a double holds exactly.
const EXACT_DIGITS: u8 = 15;

/// The statistics of the rows of one file, so far.
pub struct FileStats {
    columns: Vec<ColumnStats>,
}

/// One column's bounds and nulls.
struct ColumnStats {
    name: String,
    /// `None` for a type Delta keeps no bounds of.
    bounds: Option<(MinAccumulator, MaxAccumulator)>,
    nulls: u64,
}

impl FileStats {
    /// No rows yet of files of `schema`.
    pub fn new(schema: &SchemaRef) -> Self {
        let columns = schema
            .fields()
            .iter()
            .map(|field| ColumnStats {
                name: field.name().clone(),
                bounds: has_bounds(field.data_type())
                    .then(|| {
                        Some((
                            MinAccumulator::try_new(field.data_type()).ok()?,
                            MaxAccumulator::try_new(field.data_type()).ok()?,
                        ))
                    })
                    .flatten(),
                nulls: 0,
            })
            .collect();
        Self { columns }
    }

    /// Adds the rows of `batch`, which has the schema given to [`Self::new`]. A column
    /// whose bounds cannot be computed loses them (its statistics are left out).
    pub fn add(&mut self, batch: &RecordBatch) {
        for (column, values) in self.columns.iter_mut().zip(batch.columns()) {
            column.nulls += values.null_count() as u64;
            if let Some((min, max)) = &mut column.bounds {
                let values: &[ArrayRef] = std::slice::from_ref(values);
                if min.update_batch(values).is_err() || max.update_batch(values).is_err() {
                    column.bounds = None;
                }
            }
        }
    }

    /// Delta's `minValues`, `maxValues` and `nullCount` of the rows added.
    pub fn finish(self) -> Value {
        let (mut min_values, mut max_values, mut null_count) = (Map::new(), Map::new(), Map::new());
        for column in self.columns {
            null_count.insert(column.name.clone(), json!(column.nulls));
            let Some((mut min, mut max)) = column.bounds else {
                continue;
            };
            if let Some(value) = min.evaluate().ok().and_then(|v| bound(&v, Side::Min)) {
                min_values.insert(column.name.clone(), value);
            }
            if let Some(value) = max.evaluate().ok().and_then(|v| bound(&v, Side::Max)) {
                max_values.insert(column.name, value);
            }
        }
        json!({ "minValues": min_values, "maxValues": max_values, "nullCount": null_count })
    }
}

/// Whether Delta keeps bounds of a column of `data_type`.
fn has_bounds(data_type: &DataType) -> bool {
    match data_type {
        DataType::Decimal32(precision, _)
        | DataType::Decimal64(precision, _)
        | DataType::Decimal128(precision, _)
        | DataType::Decimal256(precision, _) => *precision <= EXACT_DIGITS,
        other => {
            other.is_integer()
                || other.is_floating()
                || matches!(
                    other,
                    DataType::Utf8
                        | DataType::LargeUtf8
                        | DataType::Utf8View
                        | DataType::Date32
                        | DataType::Date64
                        | DataType::Timestamp(..)
                )
        }
    }
}

/// Which end of a range a bound is.
#[derive(Clone, Copy, PartialEq)]
enum Side {
    Min,
    Max,
}

/// The JSON of a bound, widened where Delta's form is coarser than the value; `None` when
/// it cannot be written without narrowing the range.
fn bound(value: &ScalarValue, side: Side) -> Option<Value> {
    if value.is_null() {
        return None;
    }
    match value {
        ScalarValue::Utf8(Some(text))
        | ScalarValue::LargeUtf8(Some(text))
        | ScalarValue::Utf8View(Some(text)) => {
            let cut: String = text.chars().take(STRING_PREFIX).collect();
            (side == Side::Min || cut.len() == text.len()).then_some(json!(cut))
        }
        ScalarValue::Date32(Some(days)) => {
            let date = NaiveDate::from_num_days_from_ce_opt(days + 719_163)?;
            Some(json!(date.format("%Y-%m-%d").to_string()))
        }
        ScalarValue::Date64(Some(ms)) => {
            let date = DateTime::from_timestamp_millis(*ms)?.date_naive();
            Some(json!(date.format("%Y-%m-%d").to_string()))
        }
        ScalarValue::TimestampSecond(Some(v), zone) => timestamp(v * 1_000, zone.is_some()),
        ScalarValue::TimestampMillisecond(Some(v), zone) => timestamp(*v, zone.is_some()),
        ScalarValue::TimestampMicrosecond(Some(v), zone) => {
            timestamp(to_millis(*v, 1_000, side), zone.is_some())
        }
        ScalarValue::TimestampNanosecond(Some(v), zone) => {
            timestamp(to_millis(*v, 1_000_000, side), zone.is_some())
        }
        ScalarValue::Float32(Some(v)) => finite(f64::from(*v)),
        ScalarValue::Float64(Some(v)) => finite(*v),
        ScalarValue::Decimal32(..)
        | ScalarValue::Decimal64(..)
        | ScalarValue::Decimal128(..)
        | ScalarValue::Decimal256(..) => value.to_string().parse::<f64>().ok().and_then(finite),
        other if other.data_type().is_integer() => serde_json::from_str(&other.to_string()).ok(),
        _ => None,
    }
}

/// `value` in `per_milli` units as whole milliseconds, rounded outward.
fn to_millis(value: i64, per_milli: i64, side: Side) -> i64 {
    match side {
        Side::Min => value.div_euclid(per_milli),
        Side::Max => value.div_euclid(per_milli) + i64::from(value.rem_euclid(per_milli) != 0),
    }
}

/// A timestamp bound as Delta writes it: `…T…:…:….mmmZ` with a zone, without `Z` for a
/// timestamp without one.
fn timestamp(millis: i64, zoned: bool) -> Option<Value> {
    let at = DateTime::<Utc>::from_timestamp_millis(millis)?;
    let format = if zoned {
        "%Y-%m-%dT%H:%M:%S%.3fZ"
    } else {
        "%Y-%m-%dT%H:%M:%S%.3f"
    };
    Some(json!(at.format(format).to_string()))
}

fn finite(value: f64) -> Option<Value> {
    value.is_finite().then(|| json!(value))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{
        Decimal128Array, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray,
    };
    use datafusion::arrow::datatypes::{Field, Schema, TimeUnit};

    use super::*;

    #[test]
    fn bounds_and_nulls_of_each_column_are_widened_never_narrowed() {
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
            Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, None), true),
            Field::new("price", DataType::Decimal128(12, 2), true),
            Field::new("wide", DataType::Decimal128(38, 2), true),
            Field::new("ratio", DataType::Float64, true),
        ]));
        let long = "x".repeat(40);
        let batch = |ids: Vec<Option<i64>>, names: Vec<Option<&str>>, ats: Vec<Option<i64>>| {
            let rows = ids.len();
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(Int64Array::from(ids)),
                    Arc::new(StringArray::from(names)),
                    Arc::new(TimestampMicrosecondArray::from(ats)),
                    Arc::new(
                        Decimal128Array::from(vec![Some(1999); rows])
                            .with_precision_and_scale(12, 2)
                            .expect("decimal"),
                    ),
                    Arc::new(
                        Decimal128Array::from(vec![Some(1); rows])
                            .with_precision_and_scale(38, 2)
                            .expect("decimal"),
                    ),
                    Arc::new(Float64Array::from(vec![Some(f64::NAN); rows])),
                ],
            )
            .expect("batch")
        };
        let mut stats = FileStats::new(&schema);
        stats.add(&batch(
            vec![Some(5), None],
            vec![Some("b"), Some(&long)],
            vec![Some(1_500), None],
        ));
        stats.add(&batch(
            vec![Some(-3), Some(9)],
            vec![Some("a"), None],
            vec![Some(2_000), Some(999)],
        ));
        let stats = stats.finish();
        assert_eq!(stats["minValues"]["id"], json!(-3));
        assert_eq!(stats["maxValues"]["id"], json!(9));
        assert_eq!(stats["minValues"]["name"], json!("a"));
        // The 40-character maximum cannot be cut without narrowing the range.
        assert_eq!(stats["maxValues"].get("name"), None);
        assert_eq!(stats["minValues"]["at"], json!("1970-01-01T00:00:00.000"));
        assert_eq!(stats["maxValues"]["at"], json!("1970-01-01T00:00:00.002"));
        assert_eq!(stats["minValues"]["price"], json!(19.99));
        assert_eq!(stats["minValues"].get("wide"), None);
        assert_eq!(stats["minValues"].get("ratio"), None);
        assert_eq!(stats["nullCount"]["id"], json!(1));
        assert_eq!(stats["nullCount"]["name"], json!(1));
        assert_eq!(stats["nullCount"]["at"], json!(1));
        assert_eq!(stats["nullCount"]["price"], json!(0));
    }
}
