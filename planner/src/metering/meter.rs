//! One query's meter: what it read, held and returned, turned into its [`UsageRecord`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use datafusion::physical_plan::ExecutionPlan;
use tollgate_catalog::Catalog;
use uuid::Uuid;

use super::memory::QueryMemoryPool;
use super::record::{DatasetUsage, Outcome, Protocol, UsageRecord, sql_hash};
use super::scan::{DatasetPaths, ScanMeter};
use crate::error::PlannerError;
use crate::grants::granted_view::GrantedScanExec;
use crate::sources::remote_scan::SOURCE_BYTES;

const GIB: f64 = (1u64 << 30) as f64;

/// Who a query is for and where it came from, as the front end knows it.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    /// The front end.
    pub protocol: Protocol,
    /// The client's address.
    pub address: Option<String>,
    /// The client's `application_name`.
    pub application_name: Option<String>,
}

impl ClientInfo {
    /// A client of `protocol` whose address and name are not known.
    pub fn new(protocol: Protocol) -> Self {
        Self {
            protocol,
            address: None,
            application_name: None,
        }
    }
}

/// Each dataset's prices per GiB: (returned, scanned).
#[derive(Debug, Default)]
pub(crate) struct Prices(HashMap<String, (f64, f64)>);

impl Prices {
    /// The prices of `catalog`'s datasets.
    pub fn from_catalog(catalog: &Catalog) -> Self {
        Self(
            catalog
                .datasets()
                .map(|d| (d.id.to_string(), (d.price_per_gib, d.price_per_gib_scanned)))
                .collect(),
        )
    }

    fn of(&self, dataset: &str) -> (f64, f64) {
        self.0.get(dataset).copied().unwrap_or((0.0, 0.0))
    }
}

/// What metering needs of the catalog: each dataset's prices, and where its files live (to
/// attribute bytes scanned).
#[derive(Debug, Clone)]
pub(crate) struct Rates {
    /// Prices per dataset.
    pub prices: Arc<Prices>,
    /// Where datasets' files live.
    pub paths: Arc<DatasetPaths>,
}

impl Rates {
    /// The rates of `catalog`.
    ///
    /// # Errors
    /// [`PlannerError::Source`] for a dataset URL that does not parse.
    pub fn of(catalog: &Catalog) -> Result<Self, PlannerError> {
        Ok(Self {
            prices: Arc::new(Prices::from_catalog(catalog)),
            paths: Arc::new(DatasetPaths::from_catalog(catalog)?),
        })
    }
}

/// Bytes a front end wrote for a query's rows; it adds as it encodes.
#[derive(Debug, Clone, Default)]
pub struct WireBytes(Arc<AtomicU64>);

impl WireBytes {
    /// Counts `bytes` more.
    pub fn add(&self, bytes: u64) {
        self.0.fetch_add(bytes, Ordering::Relaxed);
    }

    fn total(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The fixed facts of one execution, known before it runs.
#[derive(Debug, Clone)]
pub(crate) struct Execution {
    pub query_id: Uuid,
    /// The id its record is kept under, where the front end fixed it; else a new one.
    pub record_id: Option<Uuid>,
    pub part: u32,
    pub parts: u32,
    pub tenant: String,
    pub principal: String,
    pub channel: Option<String>,
    /// The profile's factor on the datasets' prices.
    pub price_factor: f64,
    pub client: Arc<ClientInfo>,
    pub sql: String,
    pub keep_sql_text: bool,
    pub started_at: DateTime<Utc>,
    pub planning: Duration,
}

/// Counts one running query.
#[derive(Debug)]
pub(crate) struct QueryMeter {
    execution: Execution,
    prices: Arc<Prices>,
    scans: Arc<ScanMeter>,
    memory: Arc<QueryMemoryPool>,
    plan: Arc<OnceLock<Arc<dyn ExecutionPlan>>>,
    wire: WireBytes,
    running_since: Instant,
    rows: u64,
    bytes: u64,
}

impl QueryMeter {
    pub fn new(
        execution: Execution,
        prices: Arc<Prices>,
        scans: Arc<ScanMeter>,
        memory: Arc<QueryMemoryPool>,
        plan: Arc<OnceLock<Arc<dyn ExecutionPlan>>>,
    ) -> Self {
        Self {
            execution,
            prices,
            scans,
            memory,
            plan,
            wire: WireBytes::default(),
            running_since: Instant::now(),
            rows: 0,
            bytes: 0,
        }
    }

    /// Physical planning is over: what follows is execution.
    pub fn planned(&mut self) {
        let now = Instant::now();
        self.execution.planning += now - self.running_since;
        self.running_since = now;
    }

    /// The counter the front end adds its wire bytes to.
    pub fn wire(&self) -> WireBytes {
        self.wire.clone()
    }

    /// Counts a batch handed to the front end.
    pub fn returned(&mut self, rows: usize, bytes: u64) {
        self.rows += rows as u64;
        self.bytes += bytes;
    }

    /// The record of the execution, ended with `outcome`.
    pub fn finish(self, outcome: Outcome, sqlstate: Option<&str>) -> UsageRecord {
        let execution = self.running_since.elapsed();
        let mut record = base_record(&self.execution, outcome, sqlstate);
        record.execution_us = micros(execution);
        record.rows_returned = self.rows;
        record.bytes_returned = self.bytes;
        record.wire_bytes = self.wire.total();
        record.peak_memory = self.memory.peak();

        let mut touched = BTreeMap::new();
        let mut reported = BTreeMap::new();
        if let Some(plan) = self.plan.get() {
            record.spill_bytes = spilled_bytes(plan.as_ref());
            granted_scans(plan.as_ref(), &mut touched, &mut reported);
        }
        let (mut scanned, unowned) = self.scans.totals();
        for (dataset, bytes) in reported {
            match scanned.iter_mut().find(|(owner, _)| *owner == dataset) {
                Some((_, counted)) => *counted += bytes,
                None => scanned.push((dataset, bytes)),
            }
        }
        record.datasets = touched.keys().cloned().collect();
        record.rows_scanned = touched.values().sum();
        record.bytes_scanned = scanned.iter().map(|(_, bytes)| bytes).sum::<u64>() + unowned;
        record.scans = price(
            &self.prices,
            self.execution.price_factor,
            &touched,
            &scanned,
            self.bytes,
        );
        record.cost = record.scans.iter().map(|scan| scan.cost).sum();
        record
    }
}

/// The record of a statement that failed before it ran (parse, policy, planning, admission)
/// with `outcome` and `sqlstate`.
pub(crate) fn failed_record(
    execution: &Execution,
    outcome: Outcome,
    sqlstate: &str,
) -> UsageRecord {
    let mut record = base_record(execution, outcome, Some(sqlstate));
    record.planning_us = micros(
        Utc::now()
            .signed_duration_since(execution.started_at)
            .to_std()
            .unwrap_or_default(),
    );
    record
}

fn base_record(execution: &Execution, outcome: Outcome, sqlstate: Option<&str>) -> UsageRecord {
    UsageRecord {
        record_id: execution.record_id.unwrap_or_else(Uuid::now_v7),
        query_id: execution.query_id,
        part: execution.part,
        parts: execution.parts,
        tenant: execution.tenant.clone(),
        principal: execution.principal.clone(),
        channel: execution.channel.clone(),
        protocol: execution.client.protocol,
        client_address: execution.client.address.clone(),
        application_name: execution.client.application_name.clone(),
        datasets: Vec::new(),
        started_at: execution.started_at,
        finished_at: Utc::now(),
        planning_us: micros(execution.planning),
        execution_us: 0,
        outcome,
        sqlstate: sqlstate.map(str::to_owned),
        rows_returned: 0,
        bytes_returned: 0,
        wire_bytes: 0,
        bytes_scanned: 0,
        rows_scanned: 0,
        peak_memory: 0,
        spill_bytes: 0,
        sql_hash: sql_hash(&execution.sql),
        sql_text: execution.keep_sql_text.then(|| execution.sql.clone()),
        cost: 0.0,
        scans: Vec::new(),
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// The granted datasets `plan` reads, with the rows their scans produced.
fn granted_scans(
    plan: &dyn ExecutionPlan,
    touched: &mut BTreeMap<String, u64>,
    reported: &mut BTreeMap<String, u64>,
) {
    if let Some(granted) = plan.downcast_ref::<GrantedScanExec>() {
        let (rows, bytes) = leaf_totals(granted.inner().as_ref());
        let datasets = granted.datasets();
        let shares = split_evenly(rows, datasets.len()).zip(split_evenly(bytes, datasets.len()));
        for (dataset, (rows, bytes)) in datasets.iter().zip(shares) {
            *touched.entry(dataset.clone()).or_default() += rows;
            if bytes > 0 {
                *reported.entry(dataset.clone()).or_default() += bytes;
            }
        }
        return;
    }
    for child in plan.children() {
        granted_scans(child.as_ref(), touched, reported);
    }
}

/// `total` in `parts` shares that add up to it, the remainder on the first. A remote query
/// over several datasets (a join on one replica) reports its rows and bytes split evenly
/// among them.
fn split_evenly(total: u64, parts: usize) -> impl Iterator<Item = u64> {
    let parts = parts.max(1) as u64;
    let share = total / parts;
    (0..parts).map(move |i| if i == 0 { share + total % parts } else { share })
}

/// Rows produced by the leaves (the source scans) of `plan`, and the bytes scanned that
/// sources reported themselves (Athena's `DataScannedInBytes`) in [`SOURCE_BYTES`].
pub(crate) fn leaf_totals(plan: &dyn ExecutionPlan) -> (u64, u64) {
    let children = plan.children();
    if children.is_empty() {
        let metrics = plan.metrics();
        let rows = metrics.as_ref().and_then(|m| m.output_rows()).unwrap_or(0) as u64;
        let bytes = metrics
            .as_ref()
            .and_then(|m| m.sum_by_name(SOURCE_BYTES))
            .map_or(0, |value| value.as_usize() as u64);
        return (rows, bytes);
    }
    children
        .iter()
        .map(|child| leaf_totals(child.as_ref()))
        .fold((0, 0), |(rows, bytes), (r, b)| (rows + r, bytes + b))
}

/// Bytes spilled by every operator of `plan`, inside grants too.
fn spilled_bytes(plan: &dyn ExecutionPlan) -> u64 {
    let own = plan
        .metrics()
        .and_then(|metrics| metrics.spilled_bytes())
        .unwrap_or(0) as u64;
    let inner = plan
        .downcast_ref::<GrantedScanExec>()
        .map_or(0, |granted| spilled_bytes(granted.inner().as_ref()));
    own + inner
        + plan
            .children()
            .iter()
            .map(|child| spilled_bytes(child.as_ref()))
            .sum::<u64>()
}

/// Each dataset's usage and cost. Returned bytes are billed to the granted datasets the
/// query read, in proportion to the bytes scanned from each (evenly when none were).
fn price(
    prices: &Prices,
    factor: f64,
    touched: &BTreeMap<String, u64>,
    scanned: &[(String, u64)],
    returned: u64,
) -> Vec<DatasetUsage> {
    let scanned: BTreeMap<&str, u64> = scanned.iter().map(|(d, b)| (d.as_str(), *b)).collect();
    let datasets: BTreeSet<&str> = touched
        .keys()
        .map(String::as_str)
        .chain(scanned.keys().copied())
        .collect();
    let weights: Vec<(&str, u64)> = touched
        .keys()
        .map(|dataset| {
            (
                dataset.as_str(),
                scanned.get(dataset.as_str()).copied().unwrap_or(0),
            )
        })
        .collect();
    let total_weight: u64 = weights.iter().map(|(_, weight)| weight).sum();
    let mut shares = BTreeMap::new();
    let mut left = returned;
    for (i, (dataset, weight)) in weights.iter().enumerate() {
        let share = if i + 1 == weights.len() {
            left
        } else if total_weight == 0 {
            returned / weights.len() as u64
        } else {
            (u128::from(returned) * u128::from(*weight) / u128::from(total_weight)) as u64
        };
        left -= share.min(left);
        shares.insert(*dataset, share);
    }
    datasets
        .into_iter()
        .map(|dataset| {
            let (per_returned, per_scanned) = prices.of(dataset);
            let (per_returned, per_scanned) = (per_returned * factor, per_scanned * factor);
            let bytes_scanned = scanned.get(dataset).copied().unwrap_or(0);
            let bytes_returned = shares.get(dataset).copied().unwrap_or(0);
            DatasetUsage {
                dataset: dataset.to_owned(),
                bytes_scanned,
                rows_scanned: touched.get(dataset).copied().unwrap_or(0),
                bytes_returned,
                cost: bytes_scanned as f64 / GIB * per_scanned
                    + bytes_returned as f64 / GIB * per_returned,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prices() -> Prices {
        Prices(HashMap::from([
            ("a.x".to_owned(), (2.0, 0.5)),
            ("a.y".to_owned(), (4.0, 0.0)),
        ]))
    }

    #[test]
    fn returned_bytes_are_split_by_bytes_scanned_and_priced() {
        let touched = BTreeMap::from([("a.x".to_owned(), 10), ("a.y".to_owned(), 20)]);
        let scanned = vec![("a.x".to_owned(), 3 << 30), ("a.y".to_owned(), 1 << 30)];
        let usage = price(&prices(), 1.0, &touched, &scanned, 4 << 30);
        assert_eq!(usage.len(), 2);
        assert_eq!(usage[0].bytes_returned, 3 << 30);
        assert_eq!(usage[1].bytes_returned, 1 << 30);
        assert!((usage[0].cost - (3.0 * 0.5 + 3.0 * 2.0)).abs() < 1e-9);
        assert!((usage[1].cost - 4.0).abs() < 1e-9);
    }

    #[test]
    fn every_returned_byte_is_billed_once() {
        let touched = BTreeMap::from([
            ("a.x".to_owned(), 0),
            ("a.y".to_owned(), 0),
            ("a.z".to_owned(), 0),
        ]);
        let usage = price(&prices(), 1.0, &touched, &[], 1000);
        let billed: u64 = usage.iter().map(|u| u.bytes_returned).sum();
        assert_eq!(billed, 1000);
    }

    #[test]
    fn datasets_read_only_by_a_row_filter_pay_their_scan() {
        let touched = BTreeMap::from([("a.y".to_owned(), 5)]);
        let scanned = vec![("a.x".to_owned(), 1 << 30)];
        let usage = price(&prices(), 1.0, &touched, &scanned, 1 << 30);
        let x = usage
            .iter()
            .find(|u| u.dataset == "a.x")
            .expect("a.x is billed");
        assert_eq!(x.bytes_returned, 0);
        assert!((x.cost - 0.5).abs() < 1e-9);
    }
}
