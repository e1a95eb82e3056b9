//! Building a catalog's channels: each narrows grants its tenant holds, so a channel can
//! never see more than its tenant's entitlements.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Channel, DatasetId, Grant, GrantColumn, Narrowing, Profile, Tenant, quote_identifier};
use crate::error::CatalogError;
use crate::options::{GrantColumnOptions, TollgateOptions};

/// The channels of `options`, checked against the tenants and their grants.
///
/// # Errors
/// [`CatalogError::Invalid`] naming the first key at fault: an unknown tenant or profile, a
/// dataset the tenant is not entitled to, or a column its entitlement does not grant.
pub(super) fn build(
    options: &TollgateOptions,
    profiles: &BTreeMap<String, Arc<Profile>>,
    tenants: &BTreeMap<String, Arc<Tenant>>,
    grants: &BTreeMap<String, Vec<Grant>>,
) -> Result<BTreeMap<String, Arc<Channel>>, CatalogError> {
    let mut channels = BTreeMap::new();
    for (i, channel) in options.channels.iter().enumerate() {
        let key = |field: &str| format!("channels[{i}].{field}");
        let Some(tenant) = tenants.get(&channel.tenant) else {
            return Err(CatalogError::invalid(
                key("tenant"),
                format!("no tenant `{}`", channel.tenant),
            ));
        };
        let profile = match &channel.profile {
            None => Arc::clone(&tenant.profile),
            Some(name) => Arc::clone(profiles.get(name).ok_or_else(|| {
                CatalogError::invalid(key("profile"), format!("no profile named `{name}`"))
            })?),
        };
        let entitled = grants
            .get(&tenant.id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut narrowed = Vec::with_capacity(channel.datasets.len());
        for (j, wanted) in channel.datasets.iter().enumerate() {
            let key = |field: &str| format!("channels[{i}].datasets[{j}].{field}");
            let entitlement = DatasetId::parse(&wanted.dataset)
                .ok()
                .and_then(|id| entitled.iter().find(|grant| grant.dataset == id))
                .ok_or_else(|| {
                    CatalogError::invalid(
                        key("dataset"),
                        format!(
                            "tenant `{}` is not entitled to `{}`",
                            tenant.id, wanted.dataset
                        ),
                    )
                })?;
            if narrowed
                .iter()
                .any(|g: &Grant| g.dataset == entitlement.dataset)
            {
                return Err(CatalogError::invalid(
                    key("dataset"),
                    format!("`{}` is listed twice", wanted.dataset),
                ));
            }
            let columns = match &wanted.columns {
                None => None,
                Some(columns) if columns.is_empty() => {
                    return Err(CatalogError::invalid(
                        key("columns"),
                        "lists no column; omit the key to keep every entitled column",
                    ));
                }
                Some(columns) => Some(narrowed_columns(columns, entitlement, &key("columns"))?),
            };
            narrowed.push(Grant {
                narrowing: Some(Narrowing {
                    columns,
                    row_filter: wanted.row_filter.clone(),
                }),
                ..entitlement.clone()
            });
        }
        if narrowed.is_empty() {
            return Err(CatalogError::invalid(key("datasets"), "lists no dataset"));
        }
        let entry = Channel {
            id: channel.id.clone(),
            tenant: tenant.id.clone(),
            kind: channel.kind,
            profile,
            grants: narrowed,
        };
        if channel.id.is_empty()
            || channels
                .insert(channel.id.clone(), Arc::new(entry))
                .is_some()
        {
            return Err(CatalogError::invalid(
                key("id"),
                format!("`{}` is empty or defined twice", channel.id),
            ));
        }
    }
    Ok(channels)
}

/// A channel's columns over `entitlement`: plain names must be granted columns (when the
/// entitlement lists them); expressions are checked when the channel's session is planned.
fn narrowed_columns(
    columns: &[GrantColumnOptions],
    entitlement: &Grant,
    key: &str,
) -> Result<Vec<GrantColumn>, CatalogError> {
    columns
        .iter()
        .map(|column| match column {
            GrantColumnOptions::Name(name) => {
                let granted = entitlement
                    .columns
                    .as_ref()
                    .is_none_or(|granted| granted.iter().any(|g| &g.name == name));
                if granted {
                    Ok(GrantColumn {
                        name: name.clone(),
                        expr: quote_identifier(name),
                    })
                } else {
                    Err(CatalogError::invalid(
                        key,
                        format!(
                            "column `{name}` is not among the columns `{}` is entitled to",
                            entitlement.dataset
                        ),
                    ))
                }
            }
            GrantColumnOptions::Expr { name, expr } => Ok(GrantColumn {
                name: name.clone(),
                expr: expr.clone(),
            }),
        })
        .collect()
}
