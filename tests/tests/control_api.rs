//! The control API with real clients: the provider onboards a tenant, the tenant browses,
//! orders a channel, receives its login by event, connects with tokio-postgres, rotates and
//! revokes it; another tenant's ids answer as missing ones; bad requests get problem+json.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_postgres::NoTls;
use tollgate_tests::api::{ACME, ADMIN, Api, event, onboard, order};
use tollgate_tests::process::{self, GatewayProcess};
use tollgate_tests::{TestGateway, demo_options, install_crypto_provider, message, sqlstate};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_sharing_a_postgres_state_store_serve_each_others_changes() {
    let admin_conninfo = "host=127.0.0.1 port=5432 user=postgres dbname=postgres";
    let (postgres, connection) = tokio_postgres::connect(admin_conninfo, NoTls)
        .await
        .expect("the machine's PostgreSQL");
    tokio::spawn(connection);
    let schema = format!("tollgate_control_test_{}", std::process::id());
    postgres
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
        ))
        .await
        .expect("create schema");
    let shared = format!("{admin_conninfo} options='-c search_path={schema}'");
    let start = || {
        let shared = shared.clone();
        TestGateway::start_with(move |options| {
            if let Some(control) = &mut options.control {
                control.store = tollgate_catalog::StateStoreKind::Postgres;
                control.postgres = Some(shared);
            }
        })
    };
    let node_a = start().await;
    let node_b = start().await;
    let admin_a = Api::new(&node_a, ADMIN);
    let key = onboard(&admin_a, "umbrella").await;
    let tenant_a = admin_a.with_key(&key);
    let tenant_b = Api::new(&node_b, &key);

    // Ordered through A, usable on B within a second of the ready event.
    order(&tenant_a).await;
    let ready = event(&tenant_a, 0, "channel.ready").await;
    let (login, password) = (
        ready["login"].as_str().expect("login").to_owned(),
        ready["password"].as_str().expect("password").to_owned(),
    );
    let channel = ready["channel"].as_str().expect("channel").to_owned();
    let on_b = Instant::now();
    let session_b = loop {
        match connect(&node_b, &login, &password).await {
            Ok(session) => break session,
            Err(error) if on_b.elapsed() < Duration::from_secs(1) => {
                assert_eq!(sqlstate(&error), "28P01", "{}", message(&error));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => panic!("not usable on node B within 1 s: {}", message(&error)),
        }
    };
    println!(
        "ready on A to usable on B: {} ms",
        on_b.elapsed().as_millis()
    );
    session_b
        .0
        .simple_query("SELECT 1")
        .await
        .expect("query on B");

    // Revoked through B: the session on A ends within a second.
    let (session_a, connection_a) = connect(&node_a, &login, &password)
        .await
        .expect("log in on A");
    session_a
        .simple_query("SELECT 1")
        .await
        .expect("query on A");
    let revoking = Instant::now();
    let (status, body) = tenant_b
        .call(Method::DELETE, &format!("/v1/channels/{channel}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let error = tokio::time::timeout(Duration::from_secs(1), connection_a)
        .await
        .expect("the session on A ends within 1 s")
        .expect("the connection task")
        .expect_err("ended with an error");
    assert_eq!(sqlstate(&error), "57P01", "{}", message(&error));
    println!(
        "revoke on B to session end on A: {} ms",
        revoking.elapsed().as_millis()
    );
    node_a.stop().await;
    node_b.stop().await;
    postgres
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .expect("drop schema");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_example_orders_a_channel_and_connects_with_psql() {
    let gateway = TestGateway::start().await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../bi-examples/api/order_channel.py"
    );
    let base = format!("http://{}", gateway.http_addr());
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(script)
            .arg(base)
            .arg("tg_globex.demo-globex")
            .output()
    })
    .await
    .expect("the script's thread")
    .expect("run python3");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("tpch.orders:"), "{stdout}");
    assert!(stdout.contains("is ready: postgresql://"), "{stdout}");
    assert!(stdout.contains("big_orders"), "{stdout}");
    gateway.stop().await;
}

/// A webhook receiver: answers its first request with 500 (to be retried), then 200, and
/// passes on each request's signature header and body.
async fn webhook_receiver() -> (
    std::net::SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<(u16, String, String)>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut answered = 0;
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = Vec::new();
            let mut buffer = [0u8; 4096];
            let (head, body) = loop {
                let n = socket.read(&mut buffer).await.unwrap_or(0);
                if n == 0 {
                    break (String::new(), String::new());
                }
                request.extend_from_slice(&buffer[..n]);
                let text = String::from_utf8_lossy(&request).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|line| {
                            let (name, value) = line.split_once(':')?;
                            name.eq_ignore_ascii_case("content-length")
                                .then(|| value.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if body.len() >= length {
                        break (head.to_owned(), body.to_owned());
                    }
                }
            };
            let signature = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("tollgate-signature")
                        .then(|| value.trim().to_owned())
                })
                .unwrap_or_default();
            let status = if answered == 0 { 500 } else { 200 };
            answered += 1;
            let _ = socket
                .write_all(
                    format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    )
                    .as_bytes(),
                )
                .await;
            let _ = sender.send((status, signature, body));
        }
    });
    (addr, receiver)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ready_event_reaches_the_webhook_signed_and_nats_once() {
    let gateway = TestGateway::start_with(|options| {
        if let Some(control) = &mut options.control {
            control.nats_url = Some("nats://127.0.0.1:4222".to_owned());
        }
    })
    .await;
    let admin = Api::new(&gateway, ADMIN);
    let tenant_id = format!("wonka{}", std::process::id());
    let key = onboard(&admin, &tenant_id).await;
    let tenant = admin.with_key(&key);
    let (webhook, mut requests) = webhook_receiver().await;
    let subject = format!("tollgate.events.{tenant_id}.ready");
    let nats = async_nats::connect("nats://127.0.0.1:4222")
        .await
        .expect("the machine's NATS");
    let mut messages = nats.subscribe(subject.clone()).await.expect("subscribe");
    let (status, registered) = tenant
        .call(
            Method::PUT,
            "/v1/notifications",
            Some(
                json!({ "webhook_url": format!("http://{webhook}/hook"), "nats_subject": subject }),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    let secret = registered["webhook_secret"]
        .as_str()
        .expect("a secret")
        .to_owned();
    let (status, refused) = tenant
        .call(
            Method::PUT,
            "/v1/notifications",
            Some(json!({ "nats_subject": "tollgate.events.acme.ready" })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");

    let order_id = order(&tenant).await;
    // The first POST gets 500 and is retried; the second is accepted.
    let mut bodies = Vec::new();
    for _ in 0..2 {
        let (status, signature, body) =
            tokio::time::timeout(Duration::from_secs(15), requests.recv())
                .await
                .expect("the webhook is called")
                .expect("a request");
        let (timestamp, tag) = signature
            .split_once(",v1=")
            .and_then(|(t, tag)| Some((t.strip_prefix("t=")?, tag)))
            .expect("t=…,v1=…");
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
        let expected: String = ring::hmac::sign(&key, format!("{timestamp}.{body}").as_bytes())
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(tag, expected, "the signature covers the body");
        bodies.push((status, serde_json::from_str::<Value>(&body).expect("JSON")));
    }
    assert_eq!(bodies[0].0, 500);
    assert_eq!(bodies[1].1["type"], "channel.ready");
    assert_eq!(bodies[1].1["order"], order_id.as_str());
    let message = tokio::time::timeout(
        Duration::from_secs(15),
        futures::StreamExt::next(&mut messages),
    )
    .await
    .expect("a NATS message")
    .expect("the subscription is open");
    let published: Value = serde_json::from_slice(&message.payload).expect("JSON");
    assert_eq!(published["type"], "channel.ready");
    assert_eq!(published["order"], order_id.as_str());
    // The password went out once, on whichever route delivered first.
    let passwords = [&bodies[0].1, &bodies[1].1, &published]
        .iter()
        .filter(|event| event["password"].is_string())
        .count();
    assert_eq!(passwords, 1, "{bodies:?} {published}");
    // The delivery is marked once the receiver's answer is back, just after it saw the body.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (deliveries, webhook_attempts) = loop {
        let (_, deliveries) = tenant.get("/v1/deliveries").await;
        let delivered = deliveries["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|d| d["target"] == "webhook" && d["delivered"] == true)
            .cloned();
        match delivered {
            Some(attempts) => break (deliveries, attempts),
            None if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            None => panic!("the webhook delivery is not listed: {deliveries}"),
        }
    };
    assert_eq!(webhook_attempts["attempts"], 2, "{deliveries}");
    gateway.stop().await;
}

/// Waits until the HTTP listener at `addr` accepts: it binds after the query listeners
/// [`GatewayProcess::spawn`] waits for.
async fn listening(addr: std::net::SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_survive_kill_9_and_are_provisioned_exactly_once() {
    install_crypto_provider();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut options = demo_options(dir.path());
    let http = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    if let Some(listener) = &mut options.http {
        listener.listen = http;
    }
    let config = process::write_config(dir.path(), &options);
    let mut gateway = GatewayProcess::spawn(&config, &dir.path().join("gateway.log"));
    listening(http).await;
    let admin = Api::at(http, ADMIN);
    let key = onboard(&admin, "soylent").await;
    let tenant = admin.with_key(&key);
    let mut orders = Vec::new();
    for _ in 0..12 {
        orders.push(order(&tenant).await);
    }
    // Killed while orders are pending or provisioning.
    gateway.kill();
    let _restarted = GatewayProcess::spawn(&config, &dir.path().join("gateway-restarted.log"));
    let deadline = Instant::now() + Duration::from_secs(60);
    listening(http).await;
    for id in &orders {
        loop {
            let (status, body) = tenant.get(&format!("/v1/orders/{id}")).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            if body["state"] == "ready" {
                break;
            }
            assert_ne!(body["state"], "failed", "{body}");
            assert!(
                Instant::now() < deadline,
                "order {id} is still {}",
                body["state"]
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let (_, events) = tenant.get("/v1/events?after=0").await;
    for id in &orders {
        let ready = events["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|e| e["type"] == "channel.ready" && e["order"] == id.as_str())
            .count();
        assert_eq!(ready, 1, "order {id} announced {ready} times");
    }
    let (_, channels) = tenant.get("/v1/channels").await;
    assert_eq!(
        channels["items"].as_array().expect("items").len(),
        orders.len()
    );
}

/// Runs schemathesis (from `scripts/python-env`) against `gateway`'s OpenAPI document with
/// `key`, checking for server errors and responses the document does not describe.
fn schemathesis(gateway: &TestGateway, key: &str) -> std::process::Output {
    let venv = std::env::var_os("TOLLGATE_SCHEMATHESIS_VENV").map_or_else(
        || {
            std::path::PathBuf::from(std::env::var_os("HOME").expect("HOME"))
                .join(".cache/tollgate-schemathesis")
        },
        std::path::PathBuf::from,
    );
    let binary = venv.join("bin/schemathesis");
    assert!(
        binary.exists(),
        "no schemathesis at {}: run scripts/python-env",
        binary.display()
    );
    std::process::Command::new(binary)
        .arg("run")
        .arg(format!("http://{}/v1/openapi.json", gateway.http_addr()))
        .args(["--header", &format!("Authorization: Bearer {key}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--max-examples", "30", "--seed", "7", "--request-timeout", "30"])
        .args(["--phases", "examples,coverage,fuzzing"])
        // The long poll waits up to 30 s per request; the flow tests above cover it.
        .args(["--exclude-path", "/v1/events"])
        .env("NO_COLOR", "1")
        .output()
        .expect("run schemathesis")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_response_outside_the_document() {
    let gateway = TestGateway::start_with(|options| {
        if let Some(control) = &mut options.control {
            control.rate_limit = 10_000.0;
        }
    })
    .await;
    let api = Api::new(&gateway, ACME);
    let (status, document) = api.get("/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(document["openapi"], "3.1.0");
    assert!(
        document["paths"].as_object().expect("paths").len() >= 15,
        "{document}"
    );
    // Every route documents the problems any caller may get, as problem+json.
    for (path, route) in document["paths"].as_object().expect("paths") {
        for (method, operation) in route.as_object().expect("methods") {
            for status in ["401", "403", "429", "503"] {
                let schema = &operation["responses"][status]["content"]["application/problem+json"]
                    ["schema"]["$ref"];
                assert_eq!(
                    schema, "#/components/schemas/ProblemBody",
                    "{method} {path} {status}"
                );
            }
        }
    }
    // The tenant's routes with a tenant key, then everything with the admin key.
    for key in [ACME, ADMIN] {
        let gateway = &gateway;
        let output = tokio::task::block_in_place(|| schemathesis(gateway, key));
        let stdout = String::from_utf8_lossy(&output.stdout);
        println!("{stdout}");
        assert!(
            output.status.success(),
            "schemathesis with {key}:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    gateway.stop().await;
}

/// The p-th percentile of `samples` (sorted here), in milliseconds.
fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort_unstable();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index].as_secs_f64() * 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_orders_become_ready_and_their_revocations_end_sessions_promptly() {
    const ORDERS: usize = 100;
    let gateway = TestGateway::start().await;
    let admin = Api::new(&gateway, ADMIN);
    let key = onboard(&admin, "cyberdyne").await;
    let tenant = admin.with_key(&key);
    let mut to_ready = Vec::with_capacity(ORDERS);
    let mut logins = Vec::with_capacity(ORDERS);
    let mut after = 0;
    for _ in 0..ORDERS {
        let started = Instant::now();
        let order_id = order(&tenant).await;
        let ready = event(&tenant, after, "channel.ready").await;
        to_ready.push(started.elapsed());
        assert_eq!(ready["order"], order_id.as_str());
        after = ready["seq"].as_i64().expect("seq");
        logins.push((
            ready["channel"].as_str().expect("channel").to_owned(),
            ready["login"].as_str().expect("login").to_owned(),
            ready["password"].as_str().expect("password").to_owned(),
        ));
    }
    let mut to_end = Vec::with_capacity(ORDERS);
    for (channel, login, password) in &logins {
        let (client, connection) = connect(&gateway, login, password).await.expect("log in");
        client.simple_query("SELECT 1").await.expect("query");
        let started = Instant::now();
        let (status, _) = tenant
            .call(Method::DELETE, &format!("/v1/channels/{channel}"), None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let ended = tokio::time::timeout(Duration::from_secs(1), connection)
            .await
            .expect("the session ends within 1 s")
            .expect("the connection task");
        to_end.push(started.elapsed());
        assert_eq!(sqlstate(&ended.expect_err("ended by the server")), "57P01");
    }
    println!(
        "{ORDERS} orders: order to ready p50 {:.0} ms, p99 {:.0} ms; revoke to session end p50 {:.1} ms, p99 {:.1} ms",
        percentile(&mut to_ready, 0.5),
        percentile(&mut to_ready, 0.99),
        percentile(&mut to_end, 0.5),
        percentile(&mut to_end, 0.99),
    );
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_channels_running_query_stops_within_a_second() {
    let gateway = TestGateway::start().await;
    let admin = Api::new(&gateway, ADMIN);
    let key = onboard(&admin, "tyrell").await;
    let tenant = admin.with_key(&key);
    order(&tenant).await;
    let ready = event(&tenant, 0, "channel.ready").await;
    let channel = ready["channel"].as_str().expect("channel").to_owned();
    let (client, connection) = connect(
        &gateway,
        ready["login"].as_str().expect("login"),
        ready["password"].as_str().expect("password"),
    )
    .await
    .expect("log in");
    // An aggregate over ten billion generated rows: work without rows for minutes.
    let running = tokio::spawn(async move {
        client
            .simple_query(
                "SELECT count(*) FROM tpch.orders a, generate_series(1, 10000000000) g \
                 WHERE a.o_orderkey = 1 AND g.value < 0",
            )
            .await
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    if running.is_finished() {
        panic!("the query ended early: {:?}", running.await);
    }
    let revoked = Instant::now();
    let (status, _) = tenant
        .call(Method::DELETE, &format!("/v1/channels/{channel}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    tokio::time::timeout(Duration::from_secs(1), connection)
        .await
        .expect("the session ends within 1 s")
        .expect("the connection task")
        .expect_err("ended by the server");
    // The FATAL reaches the statement that was running.
    let error = running
        .await
        .expect("the query's task")
        .expect_err("the query does not complete");
    assert_eq!(sqlstate(&error), "57P01", "{}", message(&error));
    let idle = tollgate_tests::cpu::idle_after(revoked).await;
    println!("revoked during a query: idle {idle:?} after the revocation");
    assert!(idle <= Duration::from_millis(1_200), "busy for {idle:?}");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_password_is_refused_after_the_overlap() {
    let gateway = TestGateway::start_with(|options| {
        if let Some(control) = &mut options.control {
            control.rotation_overlap = tollgate_catalog::HumanDuration(Duration::from_secs(1));
        }
    })
    .await;
    let admin = Api::new(&gateway, ADMIN);
    let key = onboard(&admin, "aperture").await;
    let tenant = admin.with_key(&key);
    order(&tenant).await;
    let ready = event(&tenant, 0, "channel.ready").await;
    let (old_login, old_password) = (
        ready["login"].as_str().expect("login"),
        ready["password"].as_str().expect("password"),
    );
    let channel = ready["channel"].as_str().expect("channel");
    let (status, rotated) = tenant
        .post(&format!("/v1/channels/{channel}/credentials"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rotated}");
    let (new_login, new_password) = (
        rotated["login"].as_str().expect("login"),
        rotated["password"].as_str().expect("password"),
    );
    connect(&gateway, old_login, old_password)
        .await
        .expect("the old password works during the overlap");
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    let error = connect(&gateway, old_login, old_password)
        .await
        .expect_err("the old password is refused after the overlap");
    assert_eq!(sqlstate(&error), "28P01", "{}", message(&error));
    connect(&gateway, new_login, new_password)
        .await
        .expect("the new password works");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flight_channel_logs_in_on_flight_only_and_its_token_dies_with_it() {
    use arrow_flight::sql::client::FlightSqlServiceClient;
    let gateway = TestGateway::start().await;
    let admin = Api::new(&gateway, ADMIN);
    let key = onboard(&admin, "massive").await;
    let tenant = admin.with_key(&key);
    let (status, body) = tenant
        .post(
            "/v1/channels",
            json!({ "kind": "flight", "datasets": [{ "dataset": "tpch.orders", "columns": ["o_orderkey"] }] }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let ready = event(&tenant, 0, "channel.ready").await;
    let (login, password) = (
        ready["login"].as_str().expect("login"),
        ready["password"].as_str().expect("password"),
    );
    let uri = ready["connection"]["flight_uri"]
        .as_str()
        .expect("a Flight URI");
    assert_eq!(uri, format!("grpc://{}", gateway.flight_addr()));
    let channel =
        tonic::transport::Channel::from_shared(format!("http://{}", gateway.flight_addr()))
            .expect("uri")
            .connect()
            .await
            .expect("connect to Flight SQL");
    let mut client = FlightSqlServiceClient::new(channel);
    client.handshake(login, password).await.expect("handshake");
    client.get_catalogs().await.expect("the token works");
    // A Flight channel's login is not a pgwire login.
    let error = connect(&gateway, login, password)
        .await
        .expect_err("refused on pgwire");
    assert_eq!(sqlstate(&error), "28P01");
    let channel_id = ready["channel"].as_str().expect("channel");
    let (status, _) = tenant
        .call(Method::DELETE, &format!("/v1/channels/{channel_id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let error = client
        .get_catalogs()
        .await
        .expect_err("the token is refused");
    assert!(
        error.to_string().contains("invalid bearer token"),
        "{error}"
    );
    gateway.stop().await;
}
