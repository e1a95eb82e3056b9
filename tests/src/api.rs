//! A caller of the control API with one key, and the steps most control API tests share:
//! onboarding a tenant, ordering a channel, waiting for an event.

use std::time::{Duration, Instant};

use reqwest::{Client as Http, Method, StatusCode};
use serde_json::{Value, json};

use crate::TestGateway;

/// The demo's admin key.
pub const ADMIN: &str = "tg_admin.demo-admin";
/// The demo's key of acme.
pub const ACME: &str = "tg_acme.demo-acme";
/// The demo's key of globex.
pub const GLOBEX: &str = "tg_globex.demo-globex";

/// A caller of one gateway's API with one key.
pub struct Api {
    http: Http,
    base: String,
    key: String,
}

impl Api {
    /// A caller of `gateway`'s API with `key`.
    pub fn new(gateway: &TestGateway, key: &str) -> Self {
        Self::at(gateway.http_addr(), key)
    }

    /// A caller of the API at `addr` with `key`.
    pub fn at(addr: std::net::SocketAddr, key: &str) -> Self {
        Self {
            http: Http::new(),
            base: format!("http://{addr}"),
            key: key.to_owned(),
        }
    }

    /// A caller of the HTTPS API at `addr` (as `localhost`) with `key`, trusting the
    /// certificate `cert_pem`.
    ///
    /// # Panics
    /// If the certificate does not parse.
    pub fn over_tls(addr: std::net::SocketAddr, key: &str, cert_pem: &str) -> Self {
        let root = reqwest::Certificate::from_pem(cert_pem.as_bytes()).expect("a PEM certificate");
        Self {
            http: Http::builder()
                .add_root_certificate(root)
                .build()
                .expect("an HTTPS client"),
            base: format!("https://localhost:{}", addr.port()),
            key: key.to_owned(),
        }
    }

    /// The same API with another key.
    pub fn with_key(&self, key: &str) -> Self {
        Self {
            http: self.http.clone(),
            base: self.base.clone(),
            key: key.to_owned(),
        }
    }

    /// Calls `method path` with a JSON `body`; the status and the JSON answer.
    ///
    /// # Panics
    /// If the API does not answer, or not with JSON.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("the API answers");
        let status = response.status();
        let text = response.text().await.expect("a body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON body: {text}"))
        };
        (status, value)
    }

    /// A request with `body` as it is, sent as JSON; the status and the body's text.
    ///
    /// # Panics
    /// If the API does not answer.
    pub async fn call_raw(&self, method: Method, path: &str, body: &[u8]) -> (StatusCode, String) {
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .expect("the API answers");
        let status = response.status();
        (status, response.text().await.unwrap_or_default())
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    /// `POST path` with `body`.
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }
}

/// Creates tenant `id` with an entitlement to four columns of orders from 1996 on, and
/// returns its API key.
pub async fn onboard(admin: &Api, id: &str) -> String {
    let (status, body) = admin
        .post(
            "/v1/admin/tenants",
            json!({ "id": id, "profile": "S", "attributes": { "region": "ASIA" } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = admin
        .call(
            Method::PUT,
            &format!("/v1/admin/tenants/{id}/entitlements/tpch.orders"),
            Some(json!({
                "columns": ["o_orderkey", "o_custkey", "o_totalprice", "o_orderdate"],
                "row_filter": "o_orderdate >= DATE '1996-01-01'"
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = admin
        .post(&format!("/v1/admin/tenants/{id}/api-keys"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["key"].as_str().expect("a key").to_owned()
}

/// Orders a postgres channel of orders with two columns and big orders only; returns the
/// order id.
pub async fn order(tenant: &Api) -> String {
    let (status, body) = tenant
        .post(
            "/v1/channels",
            json!({
                "kind": "postgres",
                "datasets": [{
                    "dataset": "tpch.orders",
                    "columns": ["o_orderkey", "o_totalprice"],
                    "row_filter": "o_totalprice > 100000"
                }]
            }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    body["id"].as_str().expect("an order id").to_owned()
}

/// Waits for the event of `kind` about `order` (or any, if `None`) after `after`.
pub async fn event(tenant: &Api, after: i64, kind: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut after = after;
    while Instant::now() < deadline {
        let (status, body) = tenant
            .get(&format!("/v1/events?after={after}&wait=5"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        for item in body["items"].as_array().expect("items") {
            if item["type"] == kind {
                return item.clone();
            }
        }
        after = body["next_after"].as_i64().expect("next_after");
    }
    panic!("no {kind} event");
}
