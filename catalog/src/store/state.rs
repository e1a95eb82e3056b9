//! The store's tenants, entitlements, channels and logins as catalog options, merged with
//! the configuration file's: what a gateway serves at any moment.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::records::{
    CHANNEL, CREDENTIAL, ChannelRecord, ChannelState, CredentialRecord, DATASET, DatasetRecord,
    ENTITLEMENT, EntitlementRecord, PROFILE, ProfileRecord, TENANT, TenantRecord,
};
use super::{ControlStore, StoreError};
use crate::control_options::ChannelOptions;
use crate::options::{GrantOptions, PrincipalOptions, TenantOptions, TollgateOptions};

/// Everything in the store that shapes the catalog.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ControlState {
    /// Profiles, added or replacing configured ones.
    pub profiles: Vec<ProfileRecord>,
    /// Datasets, registered or replacing configured ones.
    pub datasets: Vec<DatasetRecord>,
    /// Tenants (and suspensions of configured tenants).
    pub tenants: Vec<TenantRecord>,
    /// Entitlements.
    pub entitlements: Vec<EntitlementRecord>,
    /// Channels, active and revoked.
    pub channels: Vec<ChannelRecord>,
    /// Channel logins.
    pub credentials: Vec<CredentialRecord>,
}

impl ControlState {
    /// Reads the state from `store`.
    ///
    /// # Errors
    /// [`StoreError`] if the store cannot be read or holds a document it cannot parse.
    pub async fn load(store: &ControlStore) -> Result<Self, StoreError> {
        async fn all<T: serde::de::DeserializeOwned>(
            store: &ControlStore,
            kind: &str,
        ) -> Result<Vec<T>, StoreError> {
            store
                .list(kind, None)
                .await?
                .iter()
                .map(super::Document::parse)
                .collect()
        }
        Ok(Self {
            profiles: all(store, PROFILE).await?,
            datasets: all(store, DATASET).await?,
            tenants: all(store, TENANT).await?,
            entitlements: all(store, ENTITLEMENT).await?,
            channels: all(store, CHANNEL).await?,
            credentials: all(store, CREDENTIAL).await?,
        })
    }

    /// `base` with this state added, as of `now`: the store's profiles and datasets (a
    /// stored one replaces the configured one of its name; one on a source the file no
    /// longer has is left out), tenants, their entitlements as grants, active channels and
    /// unexpired logins. Suspended tenants are removed with
    /// everything of theirs, configured or stored. A channel that lost an entitlement it
    /// narrows stops serving, and so do its logins.
    pub fn apply_to(&self, base: &TollgateOptions, now: DateTime<Utc>) -> TollgateOptions {
        let mut options = base.clone();
        for stored in &self.profiles {
            options
                .profiles
                .insert(stored.name.clone(), stored.profile.clone());
        }
        for stored in &self.datasets {
            if !options.sources.contains_key(&stored.dataset.source) {
                continue;
            }
            match options
                .datasets
                .iter_mut()
                .find(|d| d.id == stored.dataset.id)
            {
                Some(configured) => *configured = stored.dataset.clone(),
                None => options.datasets.push(stored.dataset.clone()),
            }
        }
        let suspended: BTreeSet<&str> = self
            .tenants
            .iter()
            .filter(|t| t.suspended)
            .map(|t| t.id.as_str())
            .collect();
        for tenant in &self.tenants {
            let configured = options.tenants.iter().any(|t| t.id == tenant.id);
            if !configured && options.profiles.contains_key(&tenant.profile) {
                options.tenants.push(TenantOptions {
                    id: tenant.id.clone(),
                    profile: tenant.profile.clone(),
                    attributes: tenant.attributes.clone(),
                    allowed_origins: tenant.allowed_origins.clone(),
                });
            }
        }
        options
            .tenants
            .retain(|t| !suspended.contains(t.id.as_str()));
        let tenants: BTreeSet<String> = options.tenants.iter().map(|t| t.id.clone()).collect();
        let datasets: BTreeSet<String> = options.datasets.iter().map(|d| d.id.clone()).collect();
        for entitlement in &self.entitlements {
            let duplicate = options
                .grants
                .iter()
                .any(|g| g.tenant == entitlement.tenant && g.dataset == entitlement.dataset);
            if tenants.contains(&entitlement.tenant)
                && datasets.contains(&entitlement.dataset)
                && !duplicate
            {
                options.grants.push(GrantOptions {
                    tenant: entitlement.tenant.clone(),
                    dataset: entitlement.dataset.clone(),
                    columns: entitlement.columns.clone(),
                    row_filter: entitlement.row_filter.clone(),
                    source: None,
                });
            }
        }
        options.grants.retain(|g| tenants.contains(&g.tenant));
        for channel in &self.channels {
            let entitled = channel.request.datasets.iter().all(|wanted| {
                options
                    .grants
                    .iter()
                    .any(|g| g.tenant == channel.tenant && g.dataset == wanted.dataset)
            });
            if channel.state == ChannelState::Active
                && tenants.contains(&channel.tenant)
                && entitled
                && !options.channels.iter().any(|c| c.id == channel.id)
            {
                options.channels.push(ChannelOptions {
                    id: channel.id.clone(),
                    tenant: channel.tenant.clone(),
                    kind: channel.request.kind,
                    profile: channel.request.profile.clone(),
                    datasets: channel.request.datasets.clone(),
                });
            }
        }
        options.channels.retain(|c| tenants.contains(&c.tenant));
        let channels: BTreeSet<String> = options.channels.iter().map(|c| c.id.clone()).collect();
        for credential in &self.credentials {
            let live = credential.expires_at.is_none_or(|at| at > now);
            let taken = options
                .principals
                .iter()
                .any(|p| p.user == credential.login);
            if live && channels.contains(&credential.channel) && !taken {
                options.principals.push(PrincipalOptions {
                    user: credential.login.clone(),
                    tenant: credential.tenant.clone(),
                    scram_verifier: credential.scram_verifier.clone(),
                    channel: Some(credential.channel.clone()),
                });
            }
        }
        options.principals.retain(|p| {
            tenants.contains(&p.tenant) && p.channel.as_ref().is_none_or(|c| channels.contains(c))
        });
        options
    }

    /// The next moment a login expires after `now`: the catalog must be rebuilt then.
    pub fn next_expiry(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.credentials
            .iter()
            .filter_map(|c| c.expires_at)
            .filter(|at| *at > now)
            .min()
    }
}
