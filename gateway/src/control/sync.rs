//! The catalog a gateway serves: the configuration file's options with the state store's
//! tenants, entitlements, channels and logins, rebuilt whenever the store's version moves
//! (any gateway sharing the store wrote) or a replaced password expires.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tollgate_catalog::store::state::ControlState;
use tollgate_catalog::store::{ControlStore, StoreError};
use tollgate_catalog::{Catalog, CatalogError, TollgateOptions};
use tollgate_planner::QueryService;

/// Keeps a [`QueryService`] serving the store's current catalog.
#[derive(Debug)]
pub struct CatalogSync {
    store: Arc<ControlStore>,
    /// The configuration file's options; replaced on reload.
    base: std::sync::RwLock<Arc<TollgateOptions>>,
    service: Arc<QueryService>,
    /// The store version last applied, and when the next login expires.
    applied: Mutex<Applied>,
}

#[derive(Debug, Default)]
struct Applied {
    version: Option<i64>,
    next_expiry: Option<chrono::DateTime<Utc>>,
}

impl CatalogSync {
    /// The catalog of `base` with the state of `store`, as of now.
    ///
    /// # Errors
    /// [`StoreError`] reading the store; the catalog's own validation errors as
    /// [`CatalogError`] (in the `Err` of the inner result).
    pub async fn current_catalog(
        store: &ControlStore,
        base: &TollgateOptions,
    ) -> Result<(Result<Catalog, CatalogError>, ControlState, i64), StoreError> {
        let version = store.version().await?;
        let state = ControlState::load(store).await?;
        let options = state.apply_to(base, Utc::now());
        Ok((Catalog::from_options(&options), state, version))
    }

    /// A sync of `service` with `store`; `version` is the store version `service` was
    /// built from.
    pub fn new(
        store: Arc<ControlStore>,
        base: TollgateOptions,
        service: Arc<QueryService>,
        state: &ControlState,
        version: i64,
    ) -> Self {
        Self {
            store,
            base: std::sync::RwLock::new(Arc::new(base)),
            service,
            applied: Mutex::new(Applied {
                version: Some(version),
                next_expiry: state.next_expiry(Utc::now()),
            }),
        }
    }

    /// The configuration file's options.
    pub fn base(&self) -> Arc<TollgateOptions> {
        Arc::clone(
            &self
                .base
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// The catalog that `base` would make with the store's state, to check a new
    /// configuration file before serving it.
    ///
    /// # Errors
    /// As [`CatalogSync::current_catalog`].
    pub async fn catalog_of(
        &self,
        base: &TollgateOptions,
    ) -> Result<Result<Catalog, CatalogError>, StoreError> {
        Ok(Self::current_catalog(&self.store, base).await?.0)
    }

    /// Serves `base` (a configuration file read again) with the store's state from now on.
    ///
    /// # Errors
    /// [`StoreError`] if the store cannot be read; `base` is kept, and applied at the next
    /// change of the store.
    pub async fn rebase(&self, base: TollgateOptions) -> Result<(), StoreError> {
        *self
            .base
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(base);
        self.applied.lock().await.version = None;
        self.refresh().await
    }

    /// Applies the store's state now if it changed since last applied (or a login expired).
    ///
    /// # Errors
    /// [`StoreError`] if the store cannot be read.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let mut applied = self.applied.lock().await;
        let version = self.store.version().await?;
        let expired = applied.next_expiry.is_some_and(|at| at <= Utc::now());
        if applied.version == Some(version) && !expired {
            return Ok(());
        }
        let base = self.base();
        let (catalog, state, version) = Self::current_catalog(&self.store, &base).await?;
        match catalog {
            Ok(catalog) => {
                for (name, error) in self.service.apply(Arc::new(catalog)).await {
                    tracing::warn!(session = %name, %error, "not served: its session does not build");
                }
            }
            // Keep serving the last good catalog; the API validates before writing, so
            // this takes a change made around it.
            Err(error) => {
                tracing::error!(%error, "the control state does not form a valid catalog")
            }
        }
        applied.version = Some(version);
        applied.next_expiry = state.next_expiry(Utc::now());
        Ok(())
    }

    /// Polls the store every `interval` until `shutdown`.
    pub async fn run(self: Arc<Self>, interval: Duration, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            if let Err(error) = self.refresh().await {
                tracing::warn!(%error, "cannot read the control state; serving the last catalog");
            }
        }
    }
}
