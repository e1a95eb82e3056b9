//! The REST API `/v1`: who is calling (API keys, or the web console's session cookie;
//! rate limited per key), request bodies as
//! JSON with unknown fields refused, and the routes of tenants and of the provider.
//!
//! | module | job |
//! | --- | --- |
//! | `mod.rs` | router, callers, rate limit, JSON bodies, the audit of admin calls |
//! | `catalog.rs` | the tenant's catalog: entitled datasets with columns, prices, its channels |
//! | `console_session.rs` | web console sessions: a cookie standing for an API key or a login, CSRF tokens |
//! | `tenant.rs` | channels, orders, credentials |
//! | `events.rs` | the tenant's events, long-polled; new passwords shown once |
//! | `openapi.rs` | the OpenAPI 3.1 document, from the routes' annotations |
//! | `notifications.rs` | the tenant's webhook and NATS subject, and delivery attempts |
//! | `admin.rs` | tenants and their API keys; every admin call audited |
//! | `entitlements.rs` | entitlements, checked before stored; the audit trail |
//! | `datasets.rs` | datasets registered from a source path, described and priced; read before stored |
//! | `profiles.rs` | performance profiles, checked before stored |
//! | `refresh.rs` | a new version of a `file` channel's datasets, announced by event |
//! | `queries.rs` | the tenant's queries running on this gateway, and cancelling one |
//! | `publish.rs` | a new version of a dataset for its push channels: the whole dataset again |
//! | `usage.rs` | usage and cost from the ledger, grouped by day, dataset, channel (tenant) |
//! | `refusals.rs` | the provider's recent refusals: queries a limit refused or stopped |

mod admin;
mod catalog;
mod console_session;
mod datasets;
mod entitlements;
mod events;
mod notifications;
mod openapi;
mod profiles;
mod publish;
mod queries;
mod refresh;
mod refusals;
mod tenant;
mod usage;

use std::num::NonZeroU32;
use std::sync::Arc;

use axum::Router;
use axum::body::{Bytes, to_bytes};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use axum::routing::{delete, get, post, put};
use chrono::Utc;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::de::DeserializeOwned;
use serde_json::json;
use tollgate_catalog::store::Write;
use tollgate_catalog::store::records::{API_KEY, ApiKeyRecord};
use tollgate_catalog::{AuthOptions, LoginThrottle};

use super::keys::PresentedKey;
use super::{ControlPlane, Problem};

/// What every route shares.
pub struct ApiState {
    plane: Arc<ControlPlane>,
    limiter: DefaultKeyedRateLimiter<String>,
    /// Failed console sign-ins by login, as the other front ends count them.
    throttle: LoginThrottle,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState").finish_non_exhaustive()
    }
}

/// The `/v1` routes over `plane`; console sign-ins by login are throttled as `auth` says.
pub fn router(plane: Arc<ControlPlane>, auth: &AuthOptions) -> Router {
    let per_second = plane.options.rate_limit.max(0.1);
    // A burst of twice the sustained rate, at least one request.
    let burst = NonZeroU32::new((per_second * 2.0).ceil() as u32).unwrap_or(NonZeroU32::MIN);
    let period = std::time::Duration::from_secs_f64(1.0 / per_second);
    let quota = Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst);
    let state = Arc::new(ApiState {
        plane,
        limiter: RateLimiter::keyed(quota),
        throttle: LoginThrottle::new(auth),
    });
    Router::new()
        .route("/v1/openapi.json", get(openapi::document))
        .route("/v1/catalog", get(catalog::catalog))
        .route("/v1/catalog/{dataset}", get(catalog::catalog_entry))
        .route(
            "/v1/channels",
            post(tenant::order_channel).get(tenant::channels),
        )
        .route(
            "/v1/channels/{id}",
            get(tenant::channel).delete(tenant::delete_channel),
        )
        .route(
            "/v1/channels/{id}/credentials",
            post(tenant::rotate_credentials),
        )
        .route("/v1/orders/{id}", get(tenant::order))
        .route("/v1/events", get(events::events))
        .route(
            "/v1/notifications",
            get(notifications::get).put(notifications::put),
        )
        .route("/v1/deliveries", get(notifications::deliveries))
        .route(
            "/v1/admin/tenants",
            post(admin::create_tenant).get(admin::tenants),
        )
        .route(
            "/v1/admin/tenants/{id}",
            get(admin::tenant)
                .patch(admin::update_tenant)
                .delete(admin::delete_tenant),
        )
        .route("/v1/admin/tenants/{id}/api-keys", post(admin::create_key))
        .route("/v1/admin/api-keys/{id}", delete(admin::revoke_key))
        .route(
            "/v1/admin/tenants/{id}/entitlements",
            get(entitlements::entitlements),
        )
        .route(
            "/v1/admin/tenants/{id}/entitlements/{dataset}",
            put(entitlements::put_entitlement).delete(entitlements::delete_entitlement),
        )
        .route("/v1/admin/audit", get(entitlements::audit))
        .route("/v1/admin/refusals", get(refusals::refusals))
        .route("/v1/admin/datasets", get(datasets::datasets))
        .route(
            "/v1/admin/datasets/{id}",
            get(datasets::dataset)
                .put(datasets::put_dataset)
                .patch(datasets::patch_dataset)
                .delete(datasets::delete_dataset),
        )
        .route("/v1/admin/profiles", get(profiles::profiles))
        .route(
            "/v1/admin/profiles/{name}",
            put(profiles::put_profile).delete(profiles::delete_profile),
        )
        .route(
            "/v1/admin/channels/{id}/refresh",
            post(refresh::refresh_channel),
        )
        .route(
            "/v1/admin/datasets/{id}/publish",
            post(publish::publish_dataset),
        )
        .route("/v1/usage", get(usage::usage))
        .route("/v1/queries", get(queries::queries))
        .route("/v1/queries/{id}", delete(queries::cancel))
        .route("/v1/admin/usage", get(usage::admin_usage))
        .route(
            "/console/session",
            post(console_session::sign_in)
                .get(console_session::current)
                .delete(console_session::sign_out),
        )
        .fallback(|| async { Problem::NotFound("no such endpoint".to_owned()) })
        .with_state(state)
}

/// Writes `writes` with an audit event of `action` on `target` by `actor`; a refused call
/// is audited too.
async fn audited(
    plane: &ControlPlane,
    actor: &str,
    action: &str,
    target: &str,
    outcome: Result<Vec<Write>, Problem>,
) -> Result<(), Problem> {
    let (mut writes, result) = match outcome {
        Ok(writes) => (writes, Ok(())),
        Err(problem) => (Vec::new(), Err(problem)),
    };
    let audit = json!({
        "at": Utc::now(),
        "actor": actor,
        "action": action,
        "target": target,
        "outcome": match &result { Ok(()) => "ok".to_owned(), Err(p) => p.type_uri().to_owned() },
    });
    writes.push(Write::event("", "audit", &audit));
    plane.store.write(writes).await?;
    tracing::info!(target: "tollgate::audit", event = "admin", actor, action, target, outcome = %audit["outcome"], "admin call");
    if result.is_ok() {
        plane.sync.refresh().await?;
    }
    result
}

/// Who is calling: a tenant's key, or the provider's.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A tenant key.
    Tenant {
        /// The key's id (named in the audit).
        key: String,
        /// The tenant.
        tenant: String,
    },
    /// An admin key.
    Admin {
        /// The key's id.
        key: String,
    },
    /// A console session opened with a login (a channel's, or the tenant's own) instead of
    /// a key: it reads its tenant's catalog and its own queries and usage, cancels its own
    /// queries, and changes nothing else.
    Login {
        /// The login's user name.
        user: String,
        /// Its tenant.
        tenant: String,
    },
}

impl FromRequestParts<Arc<ApiState>> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, Self::Rejection> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                let (scheme, rest) = value.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then_some(rest)
            });
        if let Some(bearer) = bearer {
            let presented = PresentedKey::parse(bearer).ok_or(Problem::Unauthorized)?;
            return caller_of_key(state, &presented.id, Some(&presented)).await;
        }
        // The web console: its session cookie stands for the key or login it signed in with.
        let session = console_session::of_request(&parts.headers, &state.plane)
            .await?
            .ok_or(Problem::Unauthorized)?;
        if !console_session::csrf_allows(&parts.method, &parts.headers, &session) {
            return Err(Problem::CrossSite);
        }
        console_session::caller(state, &session).await
    }
}

/// The caller whose API key has id `id`, its secret checked when `presented` (a console
/// session's key was checked when it signed in), rate limited per key.
///
/// # Errors
/// 429 beyond the key's rate; 401 for an unknown or revoked key, a wrong secret, or the
/// key of a tenant not served.
async fn caller_of_key(
    state: &ApiState,
    id: &str,
    presented: Option<&PresentedKey>,
) -> Result<Caller, Problem> {
    // Rate limited per key id before the key is checked: guessing costs the same.
    if let Err(not_until) = state.limiter.check_key(&id.to_owned()) {
        return Err(Problem::TooManyRequests(
            not_until.wait_time_from(DefaultClock::default().now()),
        ));
    }
    let plane = &state.plane;
    let configured = plane
        .configured_keys()
        .iter()
        .find(|key| key.id == id)
        .map(|key| (key.tenant.clone(), key.secret_sha256.clone(), false));
    let stored = match configured {
        Some(found) => Some(found),
        None => plane
            .store
            .get(API_KEY, id)
            .await?
            .map(|document| document.parse::<ApiKeyRecord>())
            .transpose()?
            .map(|key| (key.tenant, key.secret_sha256, key.revoked)),
    };
    let Some((tenant, hash, revoked)) = stored else {
        return Err(Problem::Unauthorized);
    };
    if revoked || presented.is_some_and(|key| !key.matches(&hash)) {
        return Err(Problem::Unauthorized);
    }
    match tenant {
        None => Ok(Caller::Admin { key: id.to_owned() }),
        // A suspended or deleted tenant is not in the catalog served.
        Some(tenant) if plane.service.catalog().tenant(&tenant).is_some() => Ok(Caller::Tenant {
            key: id.to_owned(),
            tenant,
        }),
        Some(_) => Err(Problem::Unauthorized),
    }
}

/// The caller of a provider's route: an admin key, by its id. A tenant key is refused
/// with 403 before the request's body is read.
#[derive(Debug, Clone)]
pub struct Admin(pub String);

impl FromRequestParts<Arc<ApiState>> for Admin {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, Self::Rejection> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::Admin { key } => Ok(Self(key)),
            Caller::Tenant { .. } | Caller::Login { .. } => Err(Problem::Forbidden),
        }
    }
}

impl Caller {
    /// The tenant of a tenant key.
    ///
    /// # Errors
    /// [`Problem::Forbidden`] for an admin key.
    fn tenant(&self) -> Result<&str, Problem> {
        match self {
            Self::Tenant { tenant, .. } => Ok(tenant),
            Self::Admin { .. } | Self::Login { .. } => Err(Problem::Forbidden),
        }
    }

    /// What a reading route shows the caller: its tenant's, narrowed to the login's own
    /// queries and usage for a login (`None`: every login of the tenant).
    ///
    /// # Errors
    /// [`Problem::Forbidden`] for an admin key.
    fn reader(&self) -> Result<(&str, Option<&str>), Problem> {
        match self {
            Self::Tenant { tenant, .. } => Ok((tenant, None)),
            Self::Login { user, tenant } => Ok((tenant, Some(user))),
            Self::Admin { .. } => Err(Problem::Forbidden),
        }
    }
}

/// A JSON request body: `application/json`, at most `control.max_body_bytes`, no unknown
/// fields (400), well-formed (400).
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Arc<ApiState>> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(
        request: Request,
        state: &Arc<ApiState>,
    ) -> Result<Self, Self::Rejection> {
        let json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim();
                mime.eq_ignore_ascii_case("application/json")
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            });
        if !json {
            return Err(Problem::UnsupportedMediaType);
        }
        let max = state.plane.options.max_body_bytes;
        let bytes: Bytes = to_bytes(request.into_body(), max)
            .await
            .map_err(|_| Problem::TooLarge(max))?;
        serde_json::from_slice(&bytes)
            .map(Self)
            .map_err(|e| Problem::BadRequest(format!("invalid JSON body: {e}")))
    }
}

/// Query parameters, refused with a 400 problem (not axum's plain-text one).
#[derive(Debug)]
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<Arc<ApiState>> for QueryParams<T> {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Self(value))
            .map_err(|e| {
                Problem::BadRequest(format!("invalid query parameters: {}", e.body_text()))
            })
    }
}

/// Path parameters, refused with a 400 problem (not axum's plain-text one).
#[derive(Debug)]
pub struct PathParams<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<Arc<ApiState>> for PathParams<T> {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Self(value))
            .map_err(|e| Problem::BadRequest(format!("invalid path: {}", e.body_text())))
    }
}
