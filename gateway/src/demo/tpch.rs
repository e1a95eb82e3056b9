//! TPC-H demo data: the eight TPC-H tables written as Parquet, generated in-process.
//!
//! The rows come from `tpchgen` (a port of the reference `dbgen` that reproduces its output) and
//! become Arrow record batches through `tpchgen-arrow`. Each batch goes straight to a Parquet
//! [`ArrowWriter`]; nothing collects a table.
//!
//! ```text
//!  tpchgen part n of N ─► tpchgen-arrow ─► ArrowWriter ─► <dir>/.<table>.partial/part-<n>.parquet
//!  (one worker thread      8 000-row       ZSTD, ≤ 256 Ki       │ all parts written and fsynced,
//!   per core)              batches         rows per row group   │ then the _SUCCESS marker
//!                                                               ▼
//!                        rename <dir>/.<table>.partial ─► <dir>/<table>/   (complete, or absent)
//! ```
//!
//! # Layout
//!
//! `<dir>/<table>/part-<n>.parquet` (`n` from 1) plus a `_SUCCESS` marker recording the scale
//! factor. Register each table directory with the `.parquet` file extension so the marker is not
//! read as data. Tables are split into files of at most about 1 M rows (one tpchgen part each),
//! and `orders` and `lineitem` into at least four files even at small scale, so DataFusion scans
//! them in parallel; several row groups per large file let it split files too. `orders` part `n`
//! and `lineitem` part `n` cover the same order keys, and rows within each file are in
//! primary-key order.
//!
//! # Memory
//!
//! Bounded by one batch plus one row group being encoded per worker thread (tens of MB for
//! `lineitem`), whatever the scale factor. On top of that, the first use of tpchgen builds its
//! 300 MB text pool (comments are drawn from it, and its size is part of the TPC-H definition),
//! which stays allocated in a process-wide static for the rest of the process.
//!
//! # Column names and types
//!
//! Kept exactly as `tpchgen-arrow` produces them, all non-nullable:
//! keys (`*_orderkey`, `*_custkey`, `*_partkey`, `*_suppkey`, `*_nationkey`, `*_regionkey`) are
//! `Int64`; `l_linenumber`, `o_shippriority`, `p_size` and `ps_availqty` are `Int32`; money,
//! quantities and rates (`l_quantity`, `l_extendedprice`, `l_discount`, `l_tax`, `o_totalprice`,
//! `p_retailprice`, `ps_supplycost`, `c_acctbal`, `s_acctbal`) are `Decimal128(15, 2)`; dates
//! (`l_shipdate`, `l_commitdate`, `l_receiptdate`, `o_orderdate`) are `Date32`; every other
//! column (names, flags, comments, …) is `Utf8View`.

use std::fs::{self, File};
use std::io::{self, ErrorKind};
use std::num::NonZeroUsize;
use std::panic;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::thread;

use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatchReader;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::properties::WriterProperties;
use tpchgen::generators::{
    CustomerGenerator, LineItemGenerator, NationGenerator, OrderGenerator, PartGenerator,
    PartSuppGenerator, RegionGenerator, SupplierGenerator,
};
use tpchgen_arrow::{
    CustomerArrow, LineItemArrow, NationArrow, OrderArrow, PartArrow, PartSuppArrow, RegionArrow,
    SupplierArrow,
};

/// The eight TPC-H tables in dependency-free order: region, nation, supplier, customer, part,
/// partsupp, orders, lineitem. Each table only references tables listed before it.
pub const TPCH_TABLES: [&str; 8] = [
    "region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem",
];

/// The smallest scale factor accepted (`supplier` has 10 rows there). Smaller scales shrink it
/// to one row and then none, which tpchgen does not handle.
pub const MIN_SCALE: f64 = 0.001;

/// Upper bound on the rows of one Parquet file (a tpchgen part), so large tables become several
/// files that DataFusion scans in parallel.
const ROWS_PER_FILE: u64 = 1_000_000;

/// Upper bound on the rows of one row group. Several row groups per file let DataFusion split a
/// file between partitions too, and bound what the writer buffers.
const MAX_ROW_GROUP_ROWS: usize = 256 * 1024;

/// `orders` and `lineitem` are split into at least this many files even at small scale.
const MIN_FILES_LARGE_TABLE: u64 = 4;

/// File in a finished table directory that records the scale factor it was generated at.
const MARKER_FILE: &str = "_SUCCESS";

/// Prefix of the marker line that holds the scale factor.
const MARKER_SCALE_KEY: &str = "scale=";

/// Everything that can go wrong while generating the TPC-H data set.
#[derive(Debug, thiserror::Error)]
pub enum TpchError {
    /// The scale factor is not a finite number of at least [`MIN_SCALE`], or is so large that
    /// its file count overflows an `i32` (tpchgen's part numbers).
    #[error("invalid TPC-H scale factor {scale}: must be finite, at least {MIN_SCALE}, not huge")]
    InvalidScale {
        /// The rejected scale factor.
        scale: f64,
    },
    /// Creating, writing, syncing, renaming or removing a file or directory failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The Parquet writer failed.
    #[error("Parquet error writing {}: {source}", path.display())]
    Parquet {
        /// The Parquet file being written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: ParquetError,
    },
    /// The generator failed to build a record batch.
    #[error("generating TPC-H data for {}: {source}", path.display())]
    Generate {
        /// The Parquet file being written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: ArrowError,
    },
    /// The table directory is complete but was generated at another scale factor: use another
    /// directory, or remove this one to regenerate.
    #[error("{} holds TPC-H data at scale factor {found}, not {requested}", path.display())]
    ScaleMismatch {
        /// The table directory.
        path: PathBuf,
        /// The scale factor recorded in its marker, as written there.
        found: String,
        /// The scale factor asked for.
        requested: f64,
    },
    /// Something sits where a table belongs but has no marker, so it was not made here; it is
    /// left alone rather than deleted.
    #[error("{} exists but has no {MARKER_FILE} marker: not a TPC-H table", path.display())]
    NotATable {
        /// The table directory.
        path: PathBuf,
    },
}

/// Writes `<dir>/<table>/part-<n>.parquet` for every table in [`TPCH_TABLES`] at scale factor
/// `scale` (e.g. 0.01, 0.1, 1; SF 1 is about 8.7 M rows, 6 M of them in `lineitem`).
///
/// Idempotent: a table whose directory already holds a complete marker for the same scale is
/// skipped. Each table is written into `<dir>/.<table>.partial` (removed first if an earlier run
/// left it) and renamed into place only once every file and the marker are written and synced,
/// so an interrupted run never leaves a half table that looks complete.
///
/// # Errors
///
/// [`TpchError::InvalidScale`] for a scale below [`MIN_SCALE`] or not finite;
/// [`TpchError::ScaleMismatch`] if a table exists at another scale;
/// [`TpchError::NotATable`] if a table directory exists without a marker;
/// [`TpchError::Io`], [`TpchError::Parquet`] or [`TpchError::Generate`] if writing fails.
///
/// # Blocking
///
/// Synchronous and CPU-bound, one thread per core. Measured on two busy cores: about 2 s at
/// SF 0.1 and 10 s at SF 1 in a release build; about 5.5 s at SF 0.01 and 9 s at SF 0.1 in a
/// debug build, where building tpchgen's text pool alone takes 4 s. Call it before starting the
/// async runtime or from `spawn_blocking`. Two processes must not generate into the same
/// directory at the same time.
pub fn generate_tpch(dir: &Path, scale: f64) -> Result<(), TpchError> {
    if !(scale.is_finite() && scale >= MIN_SCALE) {
        return Err(TpchError::InvalidScale { scale });
    }
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    for table in Table::ALL {
        ensure_table(dir, table, scale)?;
    }
    Ok(())
}

/// Generates one table unless it is already complete at this scale.
fn ensure_table(dir: &Path, table: Table, scale: f64) -> Result<(), TpchError> {
    let table_dir = dir.join(table.name());
    match read_marker_scale(&table_dir)? {
        Some(found) if found.parse::<f64>().ok() == Some(scale) => return Ok(()),
        Some(found) => {
            return Err(TpchError::ScaleMismatch {
                path: table_dir,
                found,
                requested: scale,
            });
        }
        None if exists(&table_dir)? => return Err(TpchError::NotATable { path: table_dir }),
        None => {}
    }

    let files = table.file_count(scale)?;
    let partial = dir.join(format!(".{}.partial", table.name()));
    if exists(&partial)? {
        fs::remove_dir_all(&partial).map_err(io_err(&partial))?;
    }
    fs::create_dir(&partial).map_err(io_err(&partial))?;

    let rows = write_parts(&partial, table, scale, files)?;

    let marker = partial.join(MARKER_FILE);
    let text = format!("{MARKER_SCALE_KEY}{scale}\nfiles={files}\nrows={rows}\n");
    fs::write(&marker, text).map_err(io_err(&marker))?;
    sync_file(&marker)?;
    fs::rename(&partial, &table_dir).map_err(io_err(&table_dir))
}

/// Writes parts `1..=files` of `table` into `partial`, one worker thread per available core, and
/// returns the total row count. Workers take the next unwritten part until none is left; after
/// an error the others finish their current part and stop.
fn write_parts(partial: &Path, table: Table, scale: f64, files: i32) -> Result<u64, TpchError> {
    let props = writer_properties();
    let next_part = AtomicI32::new(1);
    let failed = AtomicBool::new(false);
    let cores = thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let workers = usize::try_from(files).map_or(cores, |files| files.min(cores));
    let worker = || -> Result<u64, TpchError> {
        let mut rows = 0;
        while !failed.load(Ordering::Relaxed) {
            let part = next_part.fetch_add(1, Ordering::Relaxed);
            if part > files {
                break;
            }
            let path = partial.join(format!("part-{part}.parquet"));
            let written = write_part(&path, table.batches(scale, part, files), &props);
            match written {
                Ok(part_rows) => rows += part_rows,
                Err(e) => {
                    failed.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
        Ok(rows)
    };
    thread::scope(|scope| {
        let handles: Vec<_> = (0..workers).map(|_| scope.spawn(worker)).collect();
        let mut total = 0;
        let mut first_error = None;
        for handle in handles {
            // A panic in a worker is a bug in the generator or writer: pass it on unchanged.
            match handle
                .join()
                .unwrap_or_else(|panic| panic::resume_unwind(panic))
            {
                Ok(rows) => total += rows,
                Err(e) => first_error = first_error.or(Some(e)),
            }
        }
        first_error.map_or(Ok(total), Err)
    })
}

/// Streams one generator part into one Parquet file, syncs it, and returns its row count.
fn write_part(
    path: &Path,
    batches: Box<dyn RecordBatchReader>,
    props: &WriterProperties,
) -> Result<u64, TpchError> {
    let parquet_err = |source| TpchError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let file = File::create(path).map_err(io_err(path))?;
    let mut writer =
        ArrowWriter::try_new(file, batches.schema(), Some(props.clone())).map_err(parquet_err)?;
    let mut rows = 0;
    for batch in batches {
        let batch = batch.map_err(|source| TpchError::Generate {
            path: path.to_path_buf(),
            source,
        })?;
        // usize → u64 is lossless on every supported target.
        rows += batch.num_rows() as u64;
        writer.write(&batch).map_err(parquet_err)?;
    }
    let file = writer.into_inner().map_err(parquet_err)?;
    file.sync_all().map_err(io_err(path))?;
    Ok(rows)
}

/// Writer settings shared by every file: ZSTD (level 1) and bounded row groups.
///
/// ZSTD is compiled in here: DataFusion's default features (enabled in the workspace through
/// `datafusion-pg-catalog`) turn on parquet's `zstd` feature, and the tests read the files back.
fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(MAX_ROW_GROUP_ROWS))
        .build()
}

/// Returns the scale recorded in `table_dir`'s marker, or `None` if there is no marker.
fn read_marker_scale(table_dir: &Path) -> Result<Option<String>, TpchError> {
    let marker = table_dir.join(MARKER_FILE);
    match fs::read_to_string(&marker) {
        Ok(text) => Ok(Some(
            text.lines()
                .find_map(|line| line.strip_prefix(MARKER_SCALE_KEY))
                .unwrap_or("unknown")
                .to_owned(),
        )),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TpchError::Io {
            path: marker,
            source,
        }),
    }
}

/// Whether anything (file, directory or dangling link) exists at `path`.
fn exists(path: &Path) -> Result<bool, TpchError> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(source) => Err(TpchError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Flushes a written file to disk, so a renamed table directory never holds torn files.
fn sync_file(path: &Path) -> Result<(), TpchError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io_err(path))
}

/// Builds a closure that wraps an [`io::Error`] with the path it concerns.
fn io_err(path: &Path) -> impl FnOnce(io::Error) -> TpchError + '_ {
    move |source| TpchError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One TPC-H table: its name, its size at a scale factor and its generator.
#[derive(Debug, Clone, Copy)]
enum Table {
    Region,
    Nation,
    Supplier,
    Customer,
    Part,
    PartSupp,
    Orders,
    LineItem,
}

impl Table {
    /// All tables, in the order of [`TPCH_TABLES`].
    const ALL: [Table; 8] = [
        Table::Region,
        Table::Nation,
        Table::Supplier,
        Table::Customer,
        Table::Part,
        Table::PartSupp,
        Table::Orders,
        Table::LineItem,
    ];

    /// The table's SQL name, as listed in [`TPCH_TABLES`].
    fn name(self) -> &'static str {
        match self {
            Table::Region => "region",
            Table::Nation => "nation",
            Table::Supplier => "supplier",
            Table::Customer => "customer",
            Table::Part => "part",
            Table::PartSupp => "partsupp",
            Table::Orders => "orders",
            Table::LineItem => "lineitem",
        }
    }

    /// Number of rows at `scale`: exact except for `lineitem`, which has 1 to 7 lines per
    /// order, 4 on average.
    fn estimated_rows(self, scale: f64) -> u64 {
        let rows = match self {
            Table::Region => 5,
            Table::Nation => 25,
            Table::Supplier => SupplierGenerator::calculate_row_count(scale, 1, 1),
            Table::Customer => CustomerGenerator::calculate_row_count(scale, 1, 1),
            Table::Part => PartGenerator::calculate_row_count(scale, 1, 1),
            // The partsupp generator counts parts; each part has four suppliers.
            Table::PartSupp => {
                PartSuppGenerator::calculate_row_count(scale, 1, 1).saturating_mul(4)
            }
            Table::Orders => OrderGenerator::calculate_row_count(scale, 1, 1),
            Table::LineItem => OrderGenerator::calculate_row_count(scale, 1, 1).saturating_mul(4),
        };
        // tpchgen's counts are never negative.
        u64::try_from(rows).unwrap_or(0)
    }

    /// How many files (tpchgen parts) the table is written as at `scale`.
    fn file_count(self, scale: f64) -> Result<i32, TpchError> {
        let files = match self {
            // These generators ignore the part arguments: splitting would repeat every row.
            Table::Region | Table::Nation => 1,
            Table::Orders | Table::LineItem => self
                .estimated_rows(scale)
                .div_ceil(ROWS_PER_FILE)
                .max(MIN_FILES_LARGE_TABLE),
            _ => self.estimated_rows(scale).div_ceil(ROWS_PER_FILE).max(1),
        };
        i32::try_from(files).map_err(|_| TpchError::InvalidScale { scale })
    }

    /// The record batches of part `part` (from 1) of `parts`.
    fn batches(self, scale: f64, part: i32, parts: i32) -> Box<dyn RecordBatchReader> {
        match self {
            Table::Region => Box::new(RegionArrow::new(RegionGenerator::new(scale, part, parts))),
            Table::Nation => Box::new(NationArrow::new(NationGenerator::new(scale, part, parts))),
            Table::Supplier => Box::new(SupplierArrow::new(SupplierGenerator::new(
                scale, part, parts,
            ))),
            Table::Customer => Box::new(CustomerArrow::new(CustomerGenerator::new(
                scale, part, parts,
            ))),
            Table::Part => Box::new(PartArrow::new(PartGenerator::new(scale, part, parts))),
            Table::PartSupp => Box::new(PartSuppArrow::new(PartSuppGenerator::new(
                scale, part, parts,
            ))),
            Table::Orders => Box::new(OrderArrow::new(OrderGenerator::new(scale, part, parts))),
            Table::LineItem => Box::new(LineItemArrow::new(LineItemGenerator::new(
                scale, part, parts,
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use std::collections::BTreeMap;
    use std::error::Error;
    use std::time::SystemTime;

    type TestResult = Result<(), Box<dyn Error>>;

    /// Row counts at scale factor 0.01, as documented for TPC-H `dbgen` (which tpchgen matches).
    const SF_001_ROWS: [(&str, u64); 8] = [
        ("region", 5),
        ("nation", 25),
        ("supplier", 100),
        ("customer", 1_500),
        ("part", 2_000),
        ("partsupp", 8_000),
        ("orders", 15_000),
        ("lineitem", 60_175),
    ];

    /// Every file under `dir` with its modification time.
    fn snapshot(dir: &Path) -> Result<BTreeMap<PathBuf, SystemTime>, Box<dyn Error>> {
        let mut files = BTreeMap::new();
        for table in fs::read_dir(dir)? {
            for file in fs::read_dir(table?.path())? {
                let path = file?.path();
                let modified = fs::metadata(&path)?.modified()?;
                files.insert(path, modified);
            }
        }
        Ok(files)
    }

    #[test]
    fn table_list_matches_generators() {
        assert_eq!(Table::ALL.map(Table::name), TPCH_TABLES);
    }

    #[test]
    fn generates_every_table_with_tpch_row_counts_and_is_idempotent() -> TestResult {
        let tmp = tempfile::tempdir()?;
        generate_tpch(tmp.path(), 0.01)?;

        for ((name, expected_rows), table) in SF_001_ROWS.into_iter().zip(Table::ALL) {
            assert_eq!(name, table.name());
            let table_dir = tmp.path().join(name);
            let expected_schema = table.batches(0.01, 1, 1).schema();
            let files = usize::try_from(table.file_count(0.01)?)?;
            let mut rows = 0;
            for part in 1..=files {
                let file = File::open(table_dir.join(format!("part-{part}.parquet")))?;
                let reader = ParquetRecordBatchReaderBuilder::try_new(file)?;
                assert_eq!(reader.schema(), &expected_schema, "{name} schema");
                for row_group in reader.metadata().row_groups() {
                    assert!(usize::try_from(row_group.num_rows())? <= MAX_ROW_GROUP_ROWS);
                }
                // Decode every batch so the codec is exercised, not just the footer.
                for batch in reader.build()? {
                    rows += u64::try_from(batch?.num_rows())?;
                }
            }
            assert_eq!(rows, expected_rows, "{name} rows");
            let parquet_files = fs::read_dir(&table_dir)?
                .filter(|e| {
                    e.as_ref()
                        .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "parquet"))
                })
                .count();
            assert_eq!(parquet_files, files, "{name} files");
            assert!(table_dir.join(MARKER_FILE).is_file());
        }
        assert_eq!(Table::LineItem.file_count(0.01)?, 4);
        assert_eq!(Table::Part.file_count(0.01)?, 1);

        let before = snapshot(tmp.path())?;
        generate_tpch(tmp.path(), 0.01)?;
        assert_eq!(snapshot(tmp.path())?, before, "second run rewrote files");
        Ok(())
    }

    #[test]
    fn replaces_partial_output_and_refuses_foreign_or_mismatched_tables() -> TestResult {
        let tmp = tempfile::tempdir()?;
        // Leftovers of an interrupted run: a partial directory is replaced.
        fs::create_dir(tmp.path().join(".region.partial"))?;
        fs::write(tmp.path().join(".region.partial/part-9.parquet"), b"junk")?;
        ensure_table(tmp.path(), Table::Region, 0.01)?;
        assert!(!tmp.path().join(".region.partial").exists());
        assert!(!tmp.path().join("region/part-9.parquet").exists());
        assert!(tmp.path().join("region/part-1.parquet").is_file());

        // A complete table at another scale is not silently reused.
        let err = ensure_table(tmp.path(), Table::Region, 0.1);
        assert!(
            matches!(err, Err(TpchError::ScaleMismatch { .. })),
            "{err:?}"
        );

        // A directory without a marker was not made here and is left alone.
        fs::create_dir(tmp.path().join("nation"))?;
        let err = ensure_table(tmp.path(), Table::Nation, 0.01);
        assert!(matches!(err, Err(TpchError::NotATable { .. })), "{err:?}");
        Ok(())
    }

    #[test]
    fn rejects_invalid_scale() {
        for scale in [0.0, -1.0, 0.0001, f64::NAN, f64::INFINITY] {
            let err = generate_tpch(Path::new("/nonexistent/never-created"), scale);
            assert!(
                matches!(err, Err(TpchError::InvalidScale { .. })),
                "{scale}: {err:?}"
            );
        }
    }
}
