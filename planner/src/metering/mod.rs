//! Metering: every query execution leaves one [`UsageRecord`] in the [`UsageLedger`].
//!
//! ```text
//! execute ─▶ per-query RuntimeEnv: MeteredRegistry (bytes scanned per dataset)
//!                                  QueryMemoryPool (peak memory, within the tenant's pool)
//!         ─▶ QueryStream counts rows and Arrow bytes returned; the front end adds wire bytes
//!         ─▶ end of stream: QueryMeter::finish ─▶ ledger.submit ─▶ durable ─▶ stream ends
//! ```
//!
//! The stream's end is the commit point: a front end reports a query complete only after
//! the stream ended, so only after its record is durable. Failures, cancels and timeouts
//! are recorded too; a stream dropped before its end is recorded as cancelled.

mod batch;
mod ledger;
mod memory;
mod meter;
mod record;
mod runtime;
mod scan;

pub use batch::{DatasetsColumn, datasets_batch, datasets_schema, records_batch, records_schema};
pub use ledger::{LedgerError, NoLedger, Receipt, UsageLedger};
pub use meter::{ClientInfo, WireBytes};
pub use record::{DatasetUsage, Outcome, Protocol, UsageRecord, UsageScope};

pub(crate) use memory::QueryMemoryPool;
pub(crate) use meter::{Execution, QueryMeter, Rates, failed_record, leaf_totals};
pub(crate) use runtime::metered_state;
pub(crate) use scan::ScanMeter;
