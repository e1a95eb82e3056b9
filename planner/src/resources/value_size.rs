//! Functions whose result can be far larger than their arguments (`repeat('x', 10^9)`,
//! `lpad`, `rpad`, `range`, `generate_series`, `array_repeat`), checked before they build
//! anything: one value over the profile's `max_value_size` is refused (54000), and so is a
//! batch of values that together pass the tenant's `memory_limit` (53200). Row and byte
//! caps count results only after they are built, and the memory pool does not see scalar
//! results, so without this a few bytes of SQL allocate gigabytes.
//!
//! Each function of the engine's is registered again for the tenant under its own name,
//! wrapped in a [`BoundedBuilder`] that estimates its output from the arguments of every
//! row (a string's bytes times a count, a count of list elements times their size) and
//! then calls the engine's function.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::compute::kernels::length::length;
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::error::Result;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};

use crate::error::Limit;
use crate::resources::pool::TenantPool;
use crate::resources::work_limits::limit_error;

/// How a function's output size follows from its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Growth {
    /// `repeat(s, n)`: the bytes of `s` times `n`.
    Repeat,
    /// `lpad(s, n [, fill])`, `rpad`: `n` characters of up to 4 bytes.
    Pad,
    /// `range(stop)`, `range(start, stop [, step])`: that many 8-byte elements.
    Range,
    /// `array_repeat(element, n)`: `n` copies of the element.
    ArrayRepeat,
}

/// The engine's functions that are wrapped, with how each grows.
const BOUNDED: [(&str, Growth); 6] = [
    ("repeat", Growth::Repeat),
    ("lpad", Growth::Pad),
    ("rpad", Growth::Pad),
    ("range", Growth::Range),
    ("generate_series", Growth::Range),
    ("array_repeat", Growth::ArrayRepeat),
];

/// The bounded versions of the engine's growing functions found in `registry`, for the
/// tenant of `pool`.
pub(crate) fn bounded_functions(
    registry: &dyn FunctionRegistry,
    pool: &Arc<TenantPool>,
) -> Vec<ScalarUDF> {
    BOUNDED
        .iter()
        .filter_map(|(name, growth)| {
            let inner = registry.udf(name).ok()?;
            Some(ScalarUDF::new_from_impl(BoundedBuilder {
                inner,
                growth: *growth,
                pool: Arc::clone(pool),
            }))
        })
        .collect()
}

/// An engine function whose output is estimated and checked before it is built.
#[derive(Debug)]
struct BoundedBuilder {
    inner: Arc<ScalarUDF>,
    growth: Growth,
    pool: Arc<TenantPool>,
}

impl PartialEq for BoundedBuilder {
    fn eq(&self, other: &Self) -> bool {
        self.inner == other.inner && Arc::ptr_eq(&self.pool, &other.pool)
    }
}

impl Eq for BoundedBuilder {}

impl Hash for BoundedBuilder {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.inner.hash(state);
    }
}

impl BoundedBuilder {
    /// Refuses `args` if a value or the batch would pass the profile's limits.
    fn check(&self, args: &ScalarFunctionArgs) -> Result<()> {
        let Some(sizes) = self.output_sizes(args)? else {
            return Ok(());
        };
        let profile = self.pool.profile();
        let largest = sizes.iter().flatten().max().unwrap_or(0);
        if largest as u64 > profile.max_value_size.bytes() {
            return Err(limit_error(&self.pool, Limit::ValueSize));
        }
        let total = sizes
            .iter()
            .flatten()
            .fold(0_i64, |total, size| total.saturating_add(size));
        if total as u64 > profile.memory_limit.bytes() {
            return Err(limit_error(&self.pool, Limit::Memory));
        }
        Ok(())
    }

    /// Each row's output size in bytes (saturating), where the arguments say it.
    fn output_sizes(&self, args: &ScalarFunctionArgs) -> Result<Option<Int64Array>> {
        let rows = args.number_rows;
        let column = |index: usize| -> Result<Option<ArrayRef>> {
            args.args
                .get(index)
                .map(|arg| arg.to_array(rows))
                .transpose()
        };
        let integers = |array: &ArrayRef| -> Result<Int64Array> {
            let cast = cast(array, &DataType::Int64)?;
            Ok(cast
                .as_any()
                .downcast_ref::<Int64Array>()
                .cloned()
                .unwrap_or_else(|| Int64Array::from(vec![None; array.len()])))
        };
        let sizes = match self.growth {
            Growth::Repeat => {
                let (Some(text), Some(count)) = (column(0)?, column(1)?) else {
                    return Ok(None);
                };
                let bytes = integers(&length(&text)?)?;
                Some(times(&bytes, &integers(&count)?))
            }
            Growth::Pad => {
                let Some(count) = column(1)? else {
                    return Ok(None);
                };
                Some(scaled(&integers(&count)?, 4))
            }
            Growth::Range => {
                let elements = match args.args.len() {
                    1 => column(0)?.map(|stop| integers(&stop)).transpose()?,
                    2 | 3 => match (column(0)?, column(1)?) {
                        (Some(start), Some(stop)) => {
                            let step = match column(2)? {
                                Some(step) => Some(integers(&step)?),
                                None => None,
                            };
                            Some(range_lengths(
                                &integers(&start)?,
                                &integers(&stop)?,
                                step.as_ref(),
                            ))
                        }
                        _ => None,
                    },
                    _ => None,
                };
                let Some(elements) = elements else {
                    return Ok(None);
                };
                Some(scaled(&elements, 8))
            }
            Growth::ArrayRepeat => {
                let (Some(element), Some(count)) = (column(0)?, column(1)?) else {
                    return Ok(None);
                };
                let per_element = (element.get_array_memory_size() / rows.max(1)).max(8) as i64;
                Some(scaled(&integers(&count)?, per_element))
            }
        };
        Ok(sizes)
    }
}

/// `a × b` per row, saturating; negative values count as 0.
fn times(a: &Int64Array, b: &Int64Array) -> Int64Array {
    a.iter()
        .zip(b.iter())
        .map(|(a, b)| Some(a?.max(0).saturating_mul(b?.max(0))))
        .collect()
}

/// `counts × factor` per row, saturating; negative counts are 0.
fn scaled(counts: &Int64Array, factor: i64) -> Int64Array {
    counts
        .iter()
        .map(|count| count.map(|count| count.max(0).saturating_mul(factor)))
        .collect()
}

/// How many elements `range(start, stop, step)` has per row (step 1 when absent).
fn range_lengths(start: &Int64Array, stop: &Int64Array, step: Option<&Int64Array>) -> Int64Array {
    (0..start.len())
        .map(|row| {
            let start = start.is_valid(row).then(|| start.value(row))?;
            let stop = stop.is_valid(row).then(|| stop.value(row))?;
            let step = match step {
                Some(step) if step.is_valid(row) => step.value(row),
                Some(_) => return None,
                None => 1,
            };
            if step == 0 {
                return Some(0);
            }
            let span = i128::from(stop) - i128::from(start);
            let length = span / i128::from(step) + 1;
            Some(i64::try_from(length.max(0)).unwrap_or(i64::MAX))
        })
        .collect()
}

impl ScalarUDFImpl for BoundedBuilder {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.check(&args)?;
        self.inner.invoke_with_args(args)
    }
}
