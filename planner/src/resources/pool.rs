//! A tenant's resource pool: what its profile lets it hold, shared by all its sessions on
//! every front end.
//!
//! ```text
//! execute ─▶ rate (token bucket) ─▶ queue full? ─▶ wait for a slot (FIFO, ≤ max_queue_wait)
//!         ─▶ run on the tenant's executor threads (= parallelism) within its memory pool
//!         ─▶ result rows/bytes capped while streaming ─▶ slot freed when the stream ends
//! ```
//!
//! Every refusal names the limit and the profile, so the tenant knows what to change or buy.
//! The pool also lists its running and queued queries for the tenant's `tollgate.queries`
//! view and cancels them for `tollgate.cancel(id)`, so a tenant sees and stops only its own.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tollgate_catalog::Profile;

use crate::error::{Limit, PlannerError};
use crate::resources::executor::DedicatedExecutor;

/// Ids of queries, unique in the process.
static NEXT_QUERY_ID: AtomicU64 = AtomicU64::new(1);

/// Where a listed query is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryState {
    /// Waiting for a slot.
    Queued,
    /// Holding a slot.
    Running,
    /// Stopped (cancelled, timed out, its client gone), its work not yet ended: it holds
    /// its slot until its threads are free.
    Cancelling,
}

impl QueryState {
    /// The state's name in `tollgate.queries`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Cancelling => "cancelling",
        }
    }
}

/// A query as `tollgate.queries` shows it.
#[derive(Debug, Clone)]
pub struct ListedQuery {
    /// Process-unique id, what `tollgate.cancel` takes.
    pub id: u64,
    /// The principal running it.
    pub user: String,
    /// Queued or running.
    pub state: QueryState,
    /// When it was submitted.
    pub submitted_at: SystemTime,
    /// When it got its slot.
    pub started_at: Option<SystemTime>,
    /// Its SQL text.
    pub sql: String,
}

struct Entry {
    listed: ListedQuery,
    cancel: CancellationToken,
}

/// One tenant's pool.
pub struct TenantPool {
    tenant: String,
    profile: Arc<Profile>,
    executor: Arc<DedicatedExecutor>,
    /// `None` when isolation is off: queries are admitted at once.
    slots: Option<Arc<Semaphore>>,
    waiting: AtomicUsize,
    rate: Option<DefaultDirectRateLimiter>,
    queries: Mutex<BTreeMap<u64, Entry>>,
    connections: Arc<AtomicUsize>,
}

impl std::fmt::Debug for TenantPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantPool")
            .field("tenant", &self.tenant)
            .field("profile", &self.profile.name)
            .finish_non_exhaustive()
    }
}

impl TenantPool {
    /// A pool for `tenant` with `profile`'s limits, running on `executor`. Without
    /// `isolation` it enforces no concurrency, queue or rate limits (the executor is shared).
    pub fn new(
        tenant: String,
        profile: Arc<Profile>,
        executor: Arc<DedicatedExecutor>,
        isolation: bool,
    ) -> Self {
        let slots = isolation.then(|| Arc::new(Semaphore::new(profile.max_concurrent_queries)));
        let rate = profile.rate.filter(|_| isolation).map(|rate| {
            let period = Duration::from_secs_f64(1.0 / rate.per_second);
            let burst = NonZeroU32::new(rate.burst).unwrap_or(NonZeroU32::MIN);
            let quota = Quota::with_period(period)
                .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
                .allow_burst(burst);
            RateLimiter::direct(quota)
        });
        Self {
            tenant,
            profile,
            executor,
            slots,
            waiting: AtomicUsize::new(0),
            rate,
            queries: Mutex::new(BTreeMap::new()),
            connections: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The tenant's profile.
    pub(crate) fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The executor the tenant's queries run on.
    pub(crate) fn executor(&self) -> &DedicatedExecutor {
        &self.executor
    }

    /// Admits a query: checks the rate, waits in the queue for a slot, and lists it.
    /// Self-service statements (reading only the `tollgate` schema: listing and cancelling
    /// the tenant's own queries) are admitted at once and not listed, so a tenant whose
    /// slots are all busy can still see and stop its queries.
    ///
    /// # Errors
    /// [`PlannerError::Limit`] for the rate, a full queue or a wait past `max_queue_wait`;
    /// [`PlannerError::Cancelled`] if `cancel` fires while queued.
    pub async fn admit(
        self: &Arc<Self>,
        user: &str,
        sql: &str,
        cancel: CancellationToken,
        self_service: bool,
    ) -> Result<Admission, PlannerError> {
        if self_service {
            return Ok(Admission {
                pool: Arc::clone(self),
                id: NEXT_QUERY_ID.fetch_add(1, Ordering::Relaxed),
                _permit: None,
            });
        }
        if let Some(rate) = &self.rate
            && rate.check().is_err()
        {
            return Err(self.refuse(Limit::Rate));
        }
        let id = NEXT_QUERY_ID.fetch_add(1, Ordering::Relaxed);
        let mut admission = Admission {
            pool: Arc::clone(self),
            id,
            _permit: None,
        };
        self.list(id, user, sql, cancel.clone());
        let Some(slots) = &self.slots else {
            self.mark_running(id);
            return Ok(admission);
        };
        let permit = match Arc::clone(slots).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let waiting = self.waiting.fetch_add(1, Ordering::AcqRel);
                let _waiter = Waiter(&self.waiting);
                if waiting >= self.profile.queue_length {
                    return Err(self.refuse(Limit::QueueFull));
                }
                tokio::select! {
                    permit = Arc::clone(slots).acquire_owned() => {
                        permit.map_err(|_| self.refuse(Limit::QueueFull))?
                    }
                    () = tokio::time::sleep(self.profile.max_queue_wait) => {
                        return Err(self.refuse(Limit::QueueWait));
                    }
                    () = cancel.cancelled() => return Err(PlannerError::Cancelled),
                }
            }
        };
        admission._permit = Some(permit);
        self.mark_running(id);
        Ok(admission)
    }

    /// Opens a connection slot of the tenant.
    ///
    /// # Errors
    /// [`PlannerError::Limit`] with [`Limit::Connections`] when all are taken.
    pub fn connect(&self) -> Result<ConnectionSlot, PlannerError> {
        let open = self.connections.fetch_add(1, Ordering::AcqRel);
        let slot = ConnectionSlot(Arc::clone(&self.connections));
        if open >= self.profile.max_connections {
            drop(slot);
            return Err(self.refuse(Limit::Connections));
        }
        Ok(slot)
    }

    /// The tenant's running and queued queries, oldest first.
    pub fn queries(&self) -> Vec<ListedQuery> {
        let queries = self.queries.lock().unwrap_or_else(PoisonError::into_inner);
        queries.values().map(|entry| entry.listed.clone()).collect()
    }

    /// Cancels query `id` if it is one of this tenant's; whether it was.
    pub fn cancel(&self, id: u64) -> bool {
        let queries = self.queries.lock().unwrap_or_else(PoisonError::into_inner);
        match queries.get(&id) {
            Some(entry) => {
                entry.cancel.cancel();
                true
            }
            None => false,
        }
    }

    /// The refusal for `limit`, naming it and the profile.
    pub(crate) fn refuse(&self, limit: Limit) -> PlannerError {
        let profile = &self.profile;
        let detail = match limit {
            Limit::Rate => {
                let rate = profile.rate.map_or(0.0, |r| r.per_second);
                let burst = profile.rate.map_or(0, |r| r.burst);
                format!("more than {rate} queries per second (burst {burst})")
            }
            Limit::QueueFull => format!(
                "{} queries running and {} queued (max_concurrent_queries, queue_length)",
                profile.max_concurrent_queries, profile.queue_length
            ),
            Limit::QueueWait => format!(
                "a wait in the queue longer than {} (max_queue_wait)",
                duration_text(profile.max_queue_wait)
            ),
            Limit::Connections => format!(
                "more than {} open connections (max_connections)",
                profile.max_connections
            ),
            Limit::Memory if profile.spill => format!(
                "more than {} of memory and {} of spill files (memory_limit, spill_quota)",
                profile.memory_limit, profile.spill_quota
            ),
            Limit::Memory => format!(
                "more than {} of memory (memory_limit; the profile does not spill to disk)",
                profile.memory_limit
            ),
            Limit::ResultRows => format!(
                "more than {} result rows per query (max_result_rows)",
                profile.max_result_rows.unwrap_or(0)
            ),
            Limit::ResultBytes => format!(
                "more than {} of results per query (max_result_bytes)",
                profile
                    .max_result_bytes
                    .map(|b| b.to_string())
                    .unwrap_or_default()
            ),
            Limit::JoinPairs => format!(
                "a cross or nested-loop join comparing more than {} row pairs (max_join_pairs)",
                profile.max_join_pairs
            ),
            Limit::RecursiveRows => format!(
                "a recursive query producing more than {} rows (max_recursive_rows)",
                profile.max_recursive_rows
            ),
            Limit::GeneratedRows => format!(
                "a set-returning function generating more than {} rows (max_generated_rows)",
                profile.max_generated_rows
            ),
            Limit::ValueSize => format!(
                "a value larger than {} (max_value_size)",
                profile.max_value_size
            ),
        };
        PlannerError::Limit {
            limit,
            message: format!(
                "tenant \"{}\" reached a limit of its profile {}: {detail}",
                self.tenant, profile.name
            ),
        }
    }

    fn list(&self, id: u64, user: &str, sql: &str, cancel: CancellationToken) {
        let mut queries = self.queries.lock().unwrap_or_else(PoisonError::into_inner);
        queries.insert(
            id,
            Entry {
                listed: ListedQuery {
                    id,
                    user: user.to_owned(),
                    state: QueryState::Queued,
                    submitted_at: SystemTime::now(),
                    started_at: None,
                    sql: sql.to_owned(),
                },
                cancel,
            },
        );
    }

    fn mark_running(&self, id: u64) {
        let mut queries = self.queries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = queries.get_mut(&id) {
            entry.listed.state = QueryState::Running;
            entry.listed.started_at = Some(SystemTime::now());
        }
    }

    /// Shows query `id` as cancelling until its work has ended.
    pub(crate) fn mark_cancelling(&self, id: u64) {
        let mut queries = self.queries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = queries.get_mut(&id) {
            entry.listed.state = QueryState::Cancelling;
        }
    }

    fn finished(&self, id: u64) {
        let mut queries = self.queries.lock().unwrap_or_else(PoisonError::into_inner);
        queries.remove(&id);
    }
}

/// Counts a waiter while it is in the queue.
struct Waiter<'a>(&'a AtomicUsize);

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An admitted query: holds its slot and its listing until dropped. The query's job on the
/// executor owns it, so a stopped query keeps its slot until its work has really ended.
pub struct Admission {
    pool: Arc<TenantPool>,
    id: u64,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Admission {
    /// The query's id in the tenant's list.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.pool.finished(self.id);
    }
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission").field("id", &self.id).finish()
    }
}

/// An open connection of a tenant; frees its slot when dropped.
#[derive(Debug)]
pub struct ConnectionSlot(Arc<AtomicUsize>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A limit's duration as errors show it (`300ms`, `1m`, `5m`).
pub(crate) fn duration_text(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}
