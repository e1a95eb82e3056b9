//! The OpenAPI 3.1 document of `/v1`, generated from the routes' annotations and served at
//! `/v1/openapi.json`.

use axum::Json;
use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{
    admin, catalog, datasets, entitlements, events, notifications, profiles, publish, queries,
    refresh, refusals, tenant, usage,
};
use crate::control::problem::ProblemBody;

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tollgate control API",
        description = "Browse the data catalog with prices, order data-out channels, receive their credentials by event, rotate and revoke them; the provider manages tenants, API keys, entitlements, datasets, prices and profiles. Errors are application/problem+json."
    ),
    paths(
        catalog::catalog,
        catalog::catalog_entry,
        tenant::order_channel,
        tenant::order,
        tenant::channels,
        tenant::channel,
        tenant::delete_channel,
        tenant::rotate_credentials,
        events::events,
        notifications::get,
        notifications::put,
        notifications::deliveries,
        admin::create_tenant,
        admin::tenants,
        admin::tenant,
        admin::update_tenant,
        admin::delete_tenant,
        admin::create_key,
        admin::revoke_key,
        entitlements::entitlements,
        entitlements::put_entitlement,
        entitlements::delete_entitlement,
        entitlements::audit,
        usage::usage,
        usage::admin_usage,
        refusals::refusals,
        queries::queries,
        queries::cancel,
        datasets::datasets,
        datasets::dataset,
        datasets::put_dataset,
        datasets::patch_dataset,
        datasets::delete_dataset,
        profiles::profiles,
        profiles::put_profile,
        profiles::delete_profile,
        refresh::refresh_channel,
        publish::publish_dataset,
    ),
    components(schemas(ProblemBody)),
    modifiers(&ApiKeys),
    security(("api_key" = [])),
    tags(
        (name = "tenant", description = "A tenant's own catalog, channels, orders and events"),
        (name = "admin", description = "The provider's tenants, keys, entitlements, datasets, profiles, usage and audit"),
    )
)]
pub struct ApiDoc;

/// Declares the bearer API keys every route takes.
struct ApiKeys;

impl Modify for ApiKeys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("tg_<id>.<secret>")
                    .build(),
            ),
        );
    }
}

/// `GET /v1/openapi.json`.
pub async fn document() -> impl IntoResponse {
    Json(ApiDoc::openapi())
}
