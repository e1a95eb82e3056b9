//! The control API with real clients: the provider onboards a tenant, the tenant browses,
//! orders a channel, receives its login by event, connects with tokio-postgres, rotates and
//! revokes it; another tenant's ids answer as missing ones; bad requests get problem+json.

use std::time::{Duration, Instant};

use reqwest::{Client as Http, Method, StatusCode};
use serde_json::{Value, json};
use tokio_postgres::NoTls;
use tollgate_tests::{TestGateway, message, sqlstate};

const ADMIN: &str = "tg_admin.demo-admin";
const ACME: &str = "tg_acme.demo-acme";

/// A caller of one gateway's API with one key.
struct Api {
    http: Http,
    base: String,
    key: String,
}

impl Api {
    fn new(gateway: &TestGateway, key: &str) -> Self {
        Self {
            http: Http::new(),
            base: format!("http://{}", gateway.http_addr()),
            key: key.to_owned(),
        }
    }

    fn with_key(&self, key: &str) -> Self {
        Self {
            http: self.http.clone(),
            base: self.base.clone(),
            key: key.to_owned(),
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
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

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }
}

/// Creates tenant `id` with an entitlement to four columns of orders from 1996 on, and
/// returns its API key.
async fn onboard(admin: &Api, id: &str) -> String {
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
async fn order(tenant: &Api) -> String {
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
async fn event(tenant: &Api, after: i64, kind: &str) -> Value {
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

async fn connect(
    gateway: &TestGateway,
    user: &str,
    password: &str,
) -> Result<
    (
        tokio_postgres::Client,
        tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
    ),
    tokio_postgres::Error,
> {
    let conninfo = format!(
        "host={} port={} dbname=tollgate user={user} password={password}",
        gateway.addr().ip(),
        gateway.addr().port()
    );
    let (client, connection) = tokio_postgres::connect(&conninfo, NoTls).await?;
    Ok((client, tokio::spawn(connection)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_orders_a_channel_connects_rotates_and_revokes_it() {
    let gateway = TestGateway::start().await;
    let admin = Api::new(&gateway, ADMIN);
    let key = onboard(&admin, "initech").await;
    let tenant = admin.with_key(&key);

    // The catalog shows the entitlement as the tenant's session sees it.
    let (status, catalog) = tenant.get("/v1/catalog").await;
    assert_eq!(status, StatusCode::OK, "{catalog}");
    let items = catalog["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{catalog}");
    assert_eq!(items[0]["dataset"], "tpch.orders");
    let columns: Vec<&str> = items[0]["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| c["name"].as_str().expect("a name"))
        .collect();
    assert_eq!(
        columns,
        ["o_orderkey", "o_custkey", "o_totalprice", "o_orderdate"]
    );
    assert_eq!(items[0]["columns"][3]["type"], "date");
    assert_eq!(items[0]["prices"]["currency_per_gib_returned"], 0.05);

    // The output model is checked against the entitlement; a dataset the tenant is not
    // entitled to reads exactly as one that does not exist.
    let wanting = |dataset: &str, column: &str| json!({ "kind": "postgres", "datasets": [{ "dataset": dataset, "columns": [column] }] });
    let (status, body) = tenant
        .post("/v1/channels", wanting("tpch.orders", "o_comment"))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .contains("o_comment"),
        "{body}"
    );
    let (_, hidden) = tenant
        .post("/v1/channels", wanting("tpch.customer", "c_name"))
        .await;
    let (_, missing) = tenant
        .post("/v1/channels", wanting("tpch.nothing", "c_name"))
        .await;
    assert_eq!(
        hidden["detail"]
            .as_str()
            .map(|d| d.replace("tpch.customer", "X")),
        missing["detail"]
            .as_str()
            .map(|d| d.replace("tpch.nothing", "X")),
    );

    // Order → ready event with the login and password, shown once.
    let ordered = Instant::now();
    let order_id = order(&tenant).await;
    let ready = event(&tenant, 0, "channel.ready").await;
    let ready_after = ordered.elapsed();
    assert_eq!(ready["order"], order_id.as_str(), "{ready}");
    let login = ready["login"].as_str().expect("a login").to_owned();
    let password = ready["password"].as_str().expect("a password").to_owned();
    assert_eq!(ready["connection"]["port"], gateway.addr().port());
    let (_, again) = tenant.get("/v1/events?after=0").await;
    let shown_again = again["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|e| e["type"] == "channel.ready")
        .expect("the event is still listed");
    assert!(shown_again["password"].is_null(), "{shown_again}");
    let (status, order_view) = tenant.get(&format!("/v1/orders/{order_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(order_view["state"], "ready", "{order_view}");
    let channel_id = order_view["channel"]
        .as_str()
        .expect("a channel")
        .to_owned();
    println!("order to ready: {} ms", ready_after.as_millis());

    // The login sees exactly the output model.
    let (client, _connection) = connect(&gateway, &login, &password).await.expect("log in");
    let rows = client
        .query("SELECT * FROM tpch.orders LIMIT 1", &[])
        .await
        .expect("query");
    let names: Vec<&str> = rows[0].columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["o_orderkey", "o_totalprice"]);
    let small = client
        .query_one(
            "SELECT count(*) FROM tpch.orders WHERE o_totalprice <= 100000",
            &[],
        )
        .await
        .expect("count");
    assert_eq!(small.get::<_, i64>(0), 0);
    let error = client
        .simple_query("SELECT o_custkey FROM tpch.orders")
        .await
        .expect_err("not in the output model");
    assert_eq!(sqlstate(&error), "42703", "{}", message(&error));
    let error = client
        .simple_query("SELECT * FROM tpch.lineitem")
        .await
        .expect_err("not entitled");
    assert_eq!(sqlstate(&error), "42P01", "{}", message(&error));

    // Another tenant's ids are the same 404 as missing ones.
    let acme = admin.with_key(ACME);
    for path in [
        format!("/v1/orders/{order_id}"),
        format!("/v1/channels/{channel_id}"),
    ] {
        let (status, theirs) = acme.get(&path).await;
        let (_, none) = acme
            .get(
                &path
                    .replace(&channel_id, "ch_x")
                    .replace(&order_id, "ord_x"),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {theirs}");
        assert_eq!(theirs["type"], none["type"]);
    }
    let (status, _) = acme
        .call(Method::DELETE, &format!("/v1/channels/{channel_id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = acme
        .post(&format!("/v1/channels/{channel_id}/credentials"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Rotation: a new login; the old one keeps working during the overlap.
    let (status, rotated) = tenant
        .post(&format!("/v1/channels/{channel_id}/credentials"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rotated}");
    let new_login = rotated["login"].as_str().expect("login").to_owned();
    let new_password = rotated["password"].as_str().expect("password").to_owned();
    assert_ne!(new_login, login);
    connect(&gateway, &login, &password)
        .await
        .expect("the old login works");
    let (new_client, _new_connection) = connect(&gateway, &new_login, &new_password)
        .await
        .expect("the new login works");
    new_client.simple_query("SELECT 1").await.expect("query");

    // Revocation ends open sessions with 57P01 and refuses new logins.
    let (open, open_connection) = connect(&gateway, &new_login, &new_password)
        .await
        .expect("log in");
    open.simple_query("SELECT 1").await.expect("query");
    let revoking = Instant::now();
    let (status, body) = tenant
        .call(Method::DELETE, &format!("/v1/channels/{channel_id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let ended = tokio::time::timeout(Duration::from_secs(1), open_connection)
        .await
        .expect("the session ends within 1 s")
        .expect("the connection task");
    let error = ended.expect_err("the session ends with an error");
    assert_eq!(sqlstate(&error), "57P01", "{}", message(&error));
    assert!(message(&error).contains("revoked"), "{}", message(&error));
    println!(
        "revoke to session end: {} ms",
        revoking.elapsed().as_millis()
    );
    let error = connect(&gateway, &new_login, &new_password)
        .await
        .expect_err("a revoked login is refused");
    assert_eq!(sqlstate(&error), "28P01", "{}", message(&error));
    let (_, channel) = tenant.get(&format!("/v1/channels/{channel_id}")).await;
    assert_eq!(channel["state"], "revoked", "{channel}");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_problem_details() {
    let gateway = TestGateway::start_with(|options| {
        if let Some(control) = &mut options.control {
            control.max_body_bytes = 1024;
            control.rate_limit = 2.0;
        }
    })
    .await;
    let admin = Api::new(&gateway, ADMIN);
    let acme = admin.with_key(ACME);
    let (status, body) = admin.with_key("tg_nobody.nothing").get("/v1/catalog").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["type"], "urn:tollgate:problem:unauthorized");
    let (status, _) = acme.get("/v1/admin/tenants").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = acme
        .post(
            "/v1/channels",
            json!({ "kind": "postgres", "datasets": [], "colour": "red" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["detail"].as_str().expect("detail").contains("colour"),
        "{body}"
    );
    let (status, _) = acme
        .post(
            "/v1/channels",
            json!({ "kind": "postgres", "datasets": [{ "dataset": "x".repeat(2000) }] }),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Four per two seconds at most in a burst: the next ones are refused.
    let mut limited = None;
    for _ in 0..10 {
        let response = reqwest::Client::new()
            .get(format!("http://{}/v1/catalog", gateway.http_addr()))
            .bearer_auth(ACME)
            .send()
            .await
            .expect("answer");
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(response);
            break;
        }
    }
    let limited = limited.expect("the rate limit answers 429");
    assert!(limited.headers().contains_key("retry-after"));
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_tenant_is_refused_on_every_front_end() {
    let gateway = TestGateway::start().await;
    let admin = Api::new(&gateway, ADMIN);
    let key = onboard(&admin, "hooli").await;
    let tenant = admin.with_key(&key);
    order(&tenant).await;
    let ready = event(&tenant, 0, "channel.ready").await;
    let (login, password) = (
        ready["login"].as_str().expect("login"),
        ready["password"].as_str().expect("password"),
    );
    let (_client, connection) = connect(&gateway, login, password).await.expect("log in");
    let (status, body) = admin
        .call(
            Method::PATCH,
            "/v1/admin/tenants/hooli",
            Some(json!({ "suspended": true })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let error = tokio::time::timeout(Duration::from_secs(1), connection)
        .await
        .expect("the session ends within 1 s")
        .expect("the connection task")
        .expect_err("ended with an error");
    assert_eq!(sqlstate(&error), "57P01");
    let error = connect(&gateway, login, password)
        .await
        .expect_err("refused");
    assert_eq!(sqlstate(&error), "28P01");
    let (status, _) = tenant.get("/v1/catalog").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Resumed: the channel serves again.
    let (status, _) = admin
        .call(
            Method::PATCH,
            "/v1/admin/tenants/hooli",
            Some(json!({ "suspended": false })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    connect(&gateway, login, password)
        .await
        .expect("served again");
    let (_, audit) = admin.get("/v1/admin/audit").await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"tenant.update"), "{audit}");
    gateway.stop().await;
}
