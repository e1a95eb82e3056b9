//! `rest_body`: request bodies of the control API's writing routes. The first byte picks the
//! route; the rest is the body, sent as JSON. Bad bodies must be refused with a 4xx, never
//! answered with a 5xx or a dropped connection.

use reqwest::Method;

use super::Harness;

/// The tenant the harness onboards for this target, so that the bodies it sends may change
/// a tenant's settings without touching acme and globex, which the other targets log in as.
pub(super) const FUZZ_TENANT: &str = "fuzz";

/// The routes bodies are sent to, as the admin (`true`) or as acme.
const ROUTES: [(Method, &str, bool); 9] = [
    (Method::POST, "/v1/admin/tenants", true),
    (Method::PATCH, "/v1/admin/tenants/fuzz", true),
    (
        Method::PUT,
        "/v1/admin/tenants/fuzz/entitlements/tpch.orders",
        true,
    ),
    (Method::POST, "/v1/admin/tenants/fuzz/api-keys", true),
    (Method::PUT, "/v1/admin/profiles/fuzz", true),
    (Method::PUT, "/v1/admin/datasets/fuzz.orders", true),
    (Method::PATCH, "/v1/admin/datasets/tpch.nation", true),
    (Method::POST, "/v1/channels", false),
    (Method::POST, "/console/session", false),
];

/// Sends `data` to one route.
pub(super) async fn run(harness: &Harness, data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let (method, path, as_admin) = &ROUTES[usize::from(selector) % ROUTES.len()];
    let caller = if *as_admin {
        &harness.admin
    } else {
        &harness.acme
    };
    let (status, text) = caller.call_raw(method.clone(), path, body).await;
    assert!(
        !status.is_server_error(),
        "{method} {path} answered {status} to body {:?}: {text}",
        String::from_utf8_lossy(body)
    );
}
