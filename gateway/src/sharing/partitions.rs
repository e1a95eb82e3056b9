//! Partitioned shared tables: a dataset partitioned Hive-style at its source keeps its
//! partition columns when shared. Rows arrive ordered by those columns; each run of equal
//! values goes to files under `col=value/…` that hold the other columns, and the values
//! travel as the files' Delta `partitionValues`, from which readers rebuild the columns.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::compute::partition;
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::array_value_to_string;

/// The directory name of a null partition value, as Hive and Delta write it.
const NULL_DIRECTORY: &str = "__HIVE_DEFAULT_PARTITION__";

/// A partition's values, in the order of the partition columns; `None` for null.
pub type PartitionValues = Vec<(String, Option<String>)>;

/// How the rows of one table are split into partitions.
#[derive(Debug)]
pub struct Partitioning {
    /// The partition columns' indices in the rows.
    columns: Vec<usize>,
    /// The other columns' indices: what files hold.
    stored: Vec<usize>,
    file_schema: SchemaRef,
}

impl Partitioning {
    /// The partitioning of rows of `schema` by those of `names` it has (none: one
    /// partition, files with every column).
    pub fn new(schema: &SchemaRef, names: &[String]) -> Self {
        let (columns, stored): (Vec<usize>, Vec<usize>) = (0..schema.fields().len())
            .partition(|&i| names.iter().any(|name| name == schema.field(i).name()));
        let file_schema = Arc::new(Schema::new(
            stored
                .iter()
                .map(|&i| schema.field(i).clone())
                .collect::<Vec<_>>(),
        ));
        Self {
            columns,
            stored,
            file_schema,
        }
    }

    /// Whether the rows are split at all.
    pub fn is_partitioned(&self) -> bool {
        !self.columns.is_empty()
    }

    /// The columns files hold.
    pub fn file_schema(&self) -> &SchemaRef {
        &self.file_schema
    }

    /// The runs of equal partition values of `batch` (ordered by them), each as the values
    /// and the run's rows without the partition columns.
    ///
    /// # Errors
    /// Arrow's, for columns it cannot compare or print.
    pub fn split(
        &self,
        batch: &RecordBatch,
    ) -> Result<Vec<(PartitionValues, RecordBatch)>, ArrowError> {
        if !self.is_partitioned() {
            return Ok(vec![(Vec::new(), batch.clone())]);
        }
        let keys: Vec<ArrayRef> = self
            .columns
            .iter()
            .map(|&i| Arc::clone(batch.column(i)))
            .collect();
        let stored = batch.project(&self.stored)?;
        let mut runs = Vec::new();
        for range in partition(&keys)?.ranges() {
            let mut values = Vec::with_capacity(self.columns.len());
            for (&i, key) in self.columns.iter().zip(&keys) {
                let name = batch.schema().field(i).name().clone();
                values.push((name, value_string(key, range.start)?));
            }
            runs.push((values, stored.slice(range.start, range.end - range.start)));
        }
        Ok(runs)
    }
}

/// Delta's string form of the partition value at `row`; `None` for null.
fn value_string(column: &ArrayRef, row: usize) -> Result<Option<String>, ArrowError> {
    if column.is_null(row) {
        return Ok(None);
    }
    let text = array_value_to_string(column, row)?;
    Ok(Some(match column.data_type() {
        // Delta writes `2024-07-01 10:30:00`, not ISO 8601's `T`.
        DataType::Timestamp(..) => text.replacen('T', " ", 1),
        _ => text,
    }))
}

/// The directory of a partition, `col=value/…`, with values escaped for a path.
pub fn directory(values: &PartitionValues) -> String {
    values
        .iter()
        .map(|(name, value)| {
            let value = value.as_deref().map_or_else(
                || NULL_DIRECTORY.to_owned(),
                |value| url::form_urlencoded::byte_serialize(value.as_bytes()).collect(),
            );
            format!("{name}={value}")
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The values as a file's `partitionValues`.
pub fn value_map(values: &PartitionValues) -> BTreeMap<String, Option<String>> {
    values.iter().cloned().collect()
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int32Array, StringArray};
    use datafusion::arrow::datatypes::Field;

    use super::*;

    #[test]
    fn ordered_rows_split_into_runs_of_equal_values_without_the_partition_columns() {
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("year", DataType::Int32, true),
            Field::new("label", DataType::Utf8, false),
            Field::new("region", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int32Array::from(vec![
                    Some(2023),
                    Some(2023),
                    Some(2024),
                    None,
                ])),
                Arc::new(StringArray::from(vec!["a", "b", "c", "d"])),
                Arc::new(StringArray::from(vec![
                    Some("eu"),
                    Some("eu"),
                    Some("a/b"),
                    None,
                ])),
            ],
        )
        .expect("a batch");
        let names = ["region".to_owned(), "year".to_owned()];
        let partitioning = Partitioning::new(&schema, &names);
        assert_eq!(partitioning.file_schema().fields().len(), 1);
        let runs = partitioning.split(&batch).expect("runs");
        let shapes: Vec<(String, usize)> = runs
            .iter()
            .map(|(values, rows)| (directory(values), rows.num_rows()))
            .collect();
        assert_eq!(
            shapes,
            vec![
                ("year=2023/region=eu".to_owned(), 2),
                ("year=2024/region=a%2Fb".to_owned(), 1),
                (
                    "year=__HIVE_DEFAULT_PARTITION__/region=__HIVE_DEFAULT_PARTITION__".to_owned(),
                    1
                ),
            ]
        );
        assert_eq!(
            value_map(&runs[1].0),
            BTreeMap::from([
                ("region".to_owned(), Some("a/b".to_owned())),
                ("year".to_owned(), Some("2024".to_owned())),
            ])
        );
        let unpartitioned = Partitioning::new(&schema, &[]);
        assert!(!unpartitioned.is_partitioned());
        assert_eq!(unpartitioned.split(&batch).expect("one run").len(), 1);
    }
}
