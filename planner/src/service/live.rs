//! The sessions the current catalog calls for: one per tenant and one per channel, swapped
//! as a whole when the catalog changes, and the revocation of logins that went away.
//!
//! ```text
//! apply(catalog) ── unchanged tenant or channel ──▶ its session kept (running queries go on)
//!                ── changed ──▶ session rebuilt (same pool if the profile is the same)
//!                ── gone ──▶ session dropped; its logins' revocation tokens fire
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::SessionState;
use datafusion::execution::object_store::ObjectStoreRegistry;
use tokio_util::sync::CancellationToken;
use tollgate_catalog::{Catalog, Channel, ChannelKind, Dataset, Grant, Principal, Tenant};

use crate::error::PlannerError;
use crate::metering::UsageLedger;
use crate::resources::executor::DedicatedExecutor;
use crate::resources::pool::TenantPool;
use crate::session::tenant::TenantSession;
use crate::sources::dataset_stats::{self, DatasetStats, SourceFile};
use crate::sources::tables::SourceTables;

/// What builds sessions: the opened sources and what every session shares.
pub(super) struct SessionFactory {
    pub(super) sources: SourceTables,
    pub(super) stores: Arc<dyn ObjectStoreRegistry>,
    pub(super) ledger: Arc<dyn UsageLedger>,
    /// The executor every session shares when tenants are not isolated.
    pub(super) shared: Option<Arc<DedicatedExecutor>>,
}

impl SessionFactory {
    /// A session of `tenant` over `grants`, in `pool` or a new one.
    async fn build(
        &self,
        catalog: &Catalog,
        tenant: Arc<Tenant>,
        grants: &[Grant],
        pool: Option<Arc<TenantPool>>,
    ) -> Result<Arc<TenantSession>, PlannerError> {
        let pool = match pool {
            Some(pool) => pool,
            None => {
                let executor = match &self.shared {
                    Some(shared) => Arc::clone(shared),
                    // The tenant's own threads: its parallelism bounds the cores it can hold.
                    None => Arc::new(
                        DedicatedExecutor::new("tollgate-tenant", tenant.profile.parallelism)
                            .map_err(PlannerError::Executor)?,
                    ),
                };
                Arc::new(TenantPool::new(
                    tenant.id.clone(),
                    Arc::clone(&tenant.profile),
                    executor,
                    self.shared.is_none(),
                ))
            }
        };
        let session = TenantSession::build(
            catalog,
            tenant,
            grants,
            &self.sources,
            &self.stores,
            pool,
            &self.ledger,
        )
        .await?;
        Ok(Arc::new(session))
    }
}

/// A session with what it was built from, to tell whether a new catalog changes it.
#[derive(Debug, Clone)]
struct Built {
    tenant: Arc<Tenant>,
    grants: Vec<Grant>,
    /// The granted datasets as they were (location, columns, descriptions, prices).
    datasets: Vec<Option<Arc<Dataset>>>,
    session: Arc<TenantSession>,
}

/// The datasets `grants` read, as `catalog` has them.
fn granted_datasets(catalog: &Catalog, grants: &[Grant]) -> Vec<Option<Arc<Dataset>>> {
    grants
        .iter()
        .map(|grant| catalog.dataset(&grant.dataset).map(Arc::clone))
        .collect()
}

/// One catalog and its sessions.
#[derive(Debug)]
struct Generation {
    catalog: Arc<Catalog>,
    tenants: HashMap<String, Built>,
    channels: HashMap<String, Built>,
}

/// The live sessions.
pub(super) struct LiveSessions {
    factory: SessionFactory,
    current: RwLock<Arc<Generation>>,
    /// A token per logged-in user, fired when the user leaves the catalog.
    revocations: Mutex<HashMap<String, CancellationToken>>,
    /// One catalog change at a time.
    applying: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for LiveSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSessions").finish_non_exhaustive()
    }
}

impl LiveSessions {
    /// Every session of `catalog`.
    ///
    /// # Errors
    /// The first session that cannot be built ([`PlannerError::Grant`], …).
    pub(super) async fn start(
        factory: SessionFactory,
        catalog: Arc<Catalog>,
    ) -> Result<Self, PlannerError> {
        let generation = build_generation(&factory, catalog, None, true).await?.0;
        Ok(Self {
            factory,
            current: RwLock::new(Arc::new(generation)),
            revocations: Mutex::new(HashMap::new()),
            applying: tokio::sync::Mutex::new(()),
        })
    }

    fn current(&self) -> Arc<Generation> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The catalog now served.
    pub(super) fn catalog(&self) -> Arc<Catalog> {
        Arc::clone(&self.current().catalog)
    }

    /// The login `user`, if the current catalog has it.
    pub(super) fn principal(&self, user: &str) -> Option<Arc<Principal>> {
        self.current().catalog.principal(user).map(Arc::clone)
    }

    /// The login `user` if it may use a front end of `kind`: a channel's login only on its
    /// channel's kind; a tenant's own login on every front end.
    pub(super) fn principal_on(&self, user: &str, kind: ChannelKind) -> Option<Arc<Principal>> {
        let current = self.current();
        let principal = current.catalog.principal(user)?;
        let allowed = principal.channel.as_ref().is_none_or(|channel| {
            current
                .catalog
                .channel(channel)
                .is_some_and(|channel| channel.kind == kind)
        });
        allowed.then(|| Arc::clone(principal))
    }

    /// The session `principal` works in: its channel's, or its tenant's.
    pub(super) fn session(&self, principal: &Principal) -> Option<Arc<TenantSession>> {
        let current = self.current();
        let built = match &principal.channel {
            Some(channel) => current.channels.get(channel),
            None => current.tenants.get(&principal.tenant),
        };
        built.map(|built| Arc::clone(&built.session))
    }

    /// A token that fires when `principal` is revoked: removed from the catalog, its
    /// channel deleted or its tenant suspended. Already fired if that happened.
    pub(super) fn revocation(&self, principal: &Principal) -> CancellationToken {
        let mut revocations = self
            .revocations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let token = revocations
            .entry(principal.user.clone())
            .or_default()
            .clone();
        if !still_serves(&self.current().catalog, principal) {
            token.cancel();
            revocations.remove(&principal.user);
        }
        token
    }

    /// Serves `catalog` from now on: sessions of changed tenants and channels rebuilt, those
    /// of removed ones dropped, and removed logins revoked. A tenant or channel whose session
    /// cannot be built is left out (its logins are refused) and returned with the reason.
    pub(super) async fn apply(&self, catalog: Arc<Catalog>) -> Vec<(String, PlannerError)> {
        let _applying = self.applying.lock().await;
        // A dataset that does not open leaves out the sessions that read it (below), not
        // the whole change: revocations and other tenants' changes still apply.
        if let Err(error) = self.factory.sources.sync(&catalog).await {
            tracing::error!(%error, "a dataset of the new catalog cannot be opened");
        }
        let previous = self.current();
        let (generation, failures) =
            match build_generation(&self.factory, Arc::clone(&catalog), Some(&previous), false)
                .await
            {
                Ok(built) => built,
                Err(error) => return vec![(String::new(), error)],
            };
        for (name, error) in &failures {
            tracing::warn!(session = %name, %error, "session left out of the new catalog");
        }
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(generation);
        let mut revocations = self
            .revocations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        revocations.retain(|user, token| {
            let keep = catalog
                .principal(user)
                .is_some_and(|principal| still_serves(&catalog, principal))
                && previous.catalog.principal(user).is_none_or(|before| {
                    catalog.principal(user).is_some_and(|now| {
                        now.tenant == before.tenant && now.channel == before.channel
                    })
                });
            if !keep {
                tracing::info!(target: "tollgate::audit", event = "login_revoked", user, "login revoked");
                token.cancel();
            }
            keep
        });
        failures
    }

    /// The columns `dataset` would have, read from its source without serving it.
    ///
    /// # Errors
    /// [`PlannerError::Source`] if its source cannot be read.
    pub(super) async fn probe(&self, dataset: &Dataset) -> Result<SchemaRef, PlannerError> {
        self.factory.sources.probe(dataset).await
    }

    /// The size and freshness of `dataset`.
    pub(super) async fn stats(&self, dataset: &Dataset) -> Option<DatasetStats> {
        self.factory.sources.stats(dataset).await
    }

    /// See [`QueryService::source_version`].
    pub(super) async fn source_version(&self, dataset: &Dataset) -> Result<Option<String>, String> {
        dataset_stats::source_version(&self.factory.sources.listing_state(), dataset).await
    }

    /// The private session of the datasets' source tables.
    pub(super) fn source_state(&self) -> SessionState {
        self.factory.sources.listing_state()
    }

    /// See [`QueryService::source_files`].
    pub(super) async fn source_files(
        &self,
        dataset: &Dataset,
    ) -> Result<Option<Vec<SourceFile>>, String> {
        dataset_stats::source_files(&self.factory.sources.listing_state(), dataset).await
    }

    /// Every session now served: each tenant's and each channel's.
    pub(super) fn sessions(&self) -> Vec<Arc<TenantSession>> {
        let current = self.current();
        current
            .tenants
            .values()
            .chain(current.channels.values())
            .map(|built| Arc::clone(&built.session))
            .collect()
    }

    /// The session of the tenant `tenant` (over all its entitlements).
    pub(super) fn tenant_session(&self, tenant: &str) -> Option<Arc<TenantSession>> {
        self.current()
            .tenants
            .get(tenant)
            .map(|built| Arc::clone(&built.session))
    }

    /// Builds the session `tenant` of `catalog` would get, without serving it.
    ///
    /// # Errors
    /// Why a grant does not plan ([`PlannerError::Grant`]).
    pub(super) async fn check_tenant(
        &self,
        catalog: &Catalog,
        tenant: &str,
    ) -> Result<(), PlannerError> {
        let found = catalog.tenant(tenant).ok_or_else(|| PlannerError::Source {
            dataset: String::new(),
            message: format!("no tenant `{tenant}`"),
        })?;
        self.factory
            .build(catalog, Arc::clone(found), catalog.grants(tenant), None)
            .await
            .map(drop)
    }

    /// Builds the session `channel` of `catalog` would get, without serving it.
    ///
    /// # Errors
    /// Why the channel's output model does not plan ([`PlannerError::Grant`]).
    pub(super) async fn check_channel(
        &self,
        catalog: &Catalog,
        channel: &Channel,
    ) -> Result<(), PlannerError> {
        let tenant = catalog
            .tenant(&channel.tenant)
            .ok_or_else(|| PlannerError::Source {
                dataset: String::new(),
                message: format!("no tenant `{}`", channel.tenant),
            })?;
        let tenant = channel_tenant(tenant, channel);
        self.factory
            .build(catalog, tenant, &channel.grants, None)
            .await
            .map(drop)
    }
}

/// Whether `principal`'s tenant and channel are still served by `catalog`.
fn still_serves(catalog: &Catalog, principal: &Principal) -> bool {
    catalog.tenant(&principal.tenant).is_some()
        && principal
            .channel
            .as_ref()
            .is_none_or(|channel| catalog.channel(channel).is_some())
}

/// The tenant as a channel's session sees it: the channel's profile.
fn channel_tenant(tenant: &Arc<Tenant>, channel: &Channel) -> Arc<Tenant> {
    Arc::new(Tenant {
        id: tenant.id.clone(),
        profile: Arc::clone(&channel.profile),
        attributes: tenant.attributes.clone(),
        allowed_origins: tenant.allowed_origins.clone(),
    })
}

/// The sessions of `catalog`, reusing those of `previous` that did not change. With
/// `strict`, the first failure is the error; otherwise failures are returned beside.
async fn build_generation(
    factory: &SessionFactory,
    catalog: Arc<Catalog>,
    previous: Option<&Generation>,
    strict: bool,
) -> Result<(Generation, Vec<(String, PlannerError)>), PlannerError> {
    let mut failures = Vec::new();
    let mut tenants = HashMap::new();
    let mut wanted: Vec<(bool, String, Arc<Tenant>, Vec<Grant>)> = catalog
        .tenants()
        .map(|tenant| {
            let grants = catalog.grants(&tenant.id).to_vec();
            (false, tenant.id.clone(), Arc::clone(tenant), grants)
        })
        .collect();
    for channel in catalog.channels() {
        if let Some(tenant) = catalog.tenant(&channel.tenant) {
            let tenant = channel_tenant(tenant, channel);
            wanted.push((true, channel.id.clone(), tenant, channel.grants.clone()));
        }
    }
    let mut channels = HashMap::new();
    for (is_channel, key, tenant, grants) in wanted {
        let before = previous.and_then(|previous| {
            if is_channel {
                previous.channels.get(&key)
            } else {
                previous.tenants.get(&key)
            }
        });
        let datasets = granted_datasets(&catalog, &grants);
        let built = match before {
            Some(before)
                if before.tenant == tenant
                    && before.grants == grants
                    && before.datasets == datasets =>
            {
                Ok(before.clone())
            }
            _ => {
                let pool = before
                    .filter(|before| before.tenant.profile == tenant.profile)
                    .map(|before| Arc::clone(before.session.pool()));
                factory
                    .build(&catalog, Arc::clone(&tenant), &grants, pool)
                    .await
                    .map(|session| Built {
                        tenant,
                        grants,
                        datasets,
                        session,
                    })
            }
        };
        match built {
            Ok(built) if is_channel => {
                channels.insert(key, built);
            }
            Ok(built) => {
                tenants.insert(key, built);
            }
            Err(error) if strict => return Err(error),
            Err(error) => failures.push((key, error)),
        }
    }
    Ok((
        Generation {
            catalog,
            tenants,
            channels,
        },
        failures,
    ))
}
