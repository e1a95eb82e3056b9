//! CORS for the Web-API: a browser page of an origin a tenant allows may call it with that
//! tenant's credentials.
//!
//! A preflight carries no credentials, so it is answered for any origin some tenant
//! allows; the response to the real request names the origin only when the tenant of the
//! login it presents allows it, so a page of one tenant's origin can never read another
//! tenant's answers.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::WebApi;

/// Headers a page may send.
const ALLOWED_HEADERS: &str = "authorization, content-type, accept, if-none-match";
/// Headers a page may read.
const EXPOSED_HEADERS: &str = "content-range, link, etag, tollgate-statement-id";

/// Answers preflights and marks responses for the caller's tenant's origins.
pub async fn cors(State(api): State<Arc<WebApi>>, request: Request, next: Next) -> Response {
    let Some(origin) = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|origin| origin.to_str().ok())
        .map(str::to_owned)
    else {
        return next.run(request).await;
    };
    let catalog = api.service.catalog();
    if request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        let allowed = catalog
            .tenants()
            .any(|tenant| tenant.allowed_origins.contains(&origin));
        let mut response = StatusCode::NO_CONTENT.into_response();
        if allowed {
            let headers = response.headers_mut();
            allow(headers, &origin);
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
            );
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOWED_HEADERS),
            );
            headers.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
        }
        response
            .headers_mut()
            .append(header::VARY, HeaderValue::from_static("Origin"));
        return response;
    }
    let tenant = api.auth.claimed_tenant(request.headers());
    let mut response = next.run(request).await;
    let allowed = tenant
        .and_then(|tenant| catalog.tenant(&tenant).cloned())
        .is_some_and(|tenant| tenant.allowed_origins.contains(&origin));
    let headers = response.headers_mut();
    if allowed {
        allow(headers, &origin);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED_HEADERS),
        );
    }
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    response
}

fn allow(headers: &mut axum::http::HeaderMap, origin: &str) {
    if let Ok(value) = HeaderValue::from_str(origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    }
}
