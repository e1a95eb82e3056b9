//! The provider's side of the control API beyond tenants: datasets registered from a source
//! path, described, priced and removed; profiles; usage as `tollgate.usage_daily` reports
//! it; HTTPS; and every tenant endpoint tried with another tenant's ids.

use std::path::PathBuf;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_postgres::NoTls;
use tollgate_catalog::SourceOptions;
use tollgate_tests::api::{ACME, ADMIN, Api, GLOBEX, event, onboard, order};
use tollgate_tests::{TestCertificate, TestGateway, message, sqlstate};

/// Connects with a login and password the API handed out.
async fn connect(gateway: &TestGateway, login: &str, password: &str) -> tokio_postgres::Client {
    let conninfo = format!(
        "host={} port={} dbname=tollgate user={login} password={password}",
        gateway.addr().ip(),
        gateway.addr().port()
    );
    let (client, connection) = tokio_postgres::connect(&conninfo, NoTls)
        .await
        .expect("log in");
    tokio::spawn(connection);
    client
}

/// Orders the default channel for `tenant` and waits until it is ready: (channel id,
/// order id, login, password).
async fn ready_channel(tenant: &Api) -> (String, String, String, String) {
    let (_, events) = tenant.get("/v1/events?after=0").await;
    let after = events["next_after"].as_i64().unwrap_or(0);
    let order_id = order(tenant).await;
    let ready = event(tenant, after, "channel.ready").await;
    let (status, view) = tenant.get(&format!("/v1/orders/{order_id}")).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    (
        view["channel"].as_str().expect("a channel").to_owned(),
        order_id,
        ready["login"].as_str().expect("a login").to_owned(),
        ready["password"].as_str().expect("a password").to_owned(),
    )
}

/// A directory of the demo lake holding copies of `tpch.region`'s files.
fn upload_of_regions(lake: &std::path::Path) -> String {
    let name = format!(
        "upload-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros()
    );
    let target = lake.join(&name);
    std::fs::create_dir_all(&target).expect("create the upload directory");
    for entry in std::fs::read_dir(lake.join("region")).expect("the region files") {
        let path = entry.expect("an entry").path();
        if path.extension().is_some_and(|e| e == "parquet") {
            std::fs::copy(&path, target.join(path.file_name().expect("a name"))).expect("copy");
        }
    }
    name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_provider_registers_describes_prices_and_removes_a_dataset() {
    let mut lake = PathBuf::new();
    let gateway = TestGateway::start_with(|options| {
        if let Some(SourceOptions::Local { path }) = options.sources.get("lake") {
            lake = path.clone();
        }
    })
    .await;
    let upload = upload_of_regions(&lake);
    let admin = Api::new(&gateway, ADMIN);
    let acme = admin.with_key(ACME);
    let put = |id: &str, body: Value| {
        let admin = &admin;
        let path = format!("/v1/admin/datasets/{id}");
        async move { admin.call(Method::PUT, &path, Some(body)).await }
    };

    // Refused before anything is stored: unreadable files, a path leaving the source, an
    // unknown source, an id that is not domain.name, a tenant key.
    for (id, body) in [
        (
            "uploads.regions",
            json!({ "source": "lake", "path": "no-such-files" }),
        ),
        (
            "uploads.regions",
            json!({ "source": "lake", "path": "../region" }),
        ),
        (
            "uploads.regions",
            json!({ "source": "nowhere", "path": upload }),
        ),
        ("regions", json!({ "source": "lake", "path": upload })),
    ] {
        let (status, problem) = put(id, body.clone()).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {problem}"
        );
        assert_eq!(problem["type"], "urn:tollgate:problem:unprocessable");
    }
    let (status, _) = acme
        .call(
            Method::PUT,
            "/v1/admin/datasets/uploads.regions",
            Some(json!({ "source": "lake", "path": upload })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Registered with the schema read from the files.
    let (status, registered) = put(
        "uploads.regions",
        json!({
            "source": "lake",
            "path": upload,
            "description": "Regions, uploaded",
            "column_descriptions": { "r_name": "Region name" },
            "tags": ["upload"],
            "price_per_gib": 1000.0,
            "price_per_gib_scanned": 10.0
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    let names: Vec<&str> = registered["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| c["name"].as_str().expect("a name"))
        .collect();
    assert_eq!(names, ["r_regionkey", "r_name", "r_comment"]);

    // Not the tenant's until it is entitled; then browsable with size, rows and freshness,
    // and queryable at once, by the next statement of a session opened before.
    let client = gateway.connect("acme").await;
    let (status, _) = acme.get("/v1/catalog/uploads.regions").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let error = client
        .simple_query("SELECT count(*) FROM uploads.regions")
        .await
        .expect_err("not entitled yet");
    assert_eq!(sqlstate(&error), "42P01", "{}", message(&error));
    let (status, body) = admin
        .call(
            Method::PUT,
            "/v1/admin/tenants/acme/entitlements/uploads.regions",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, entry) = acme.get("/v1/catalog/uploads.regions").await;
    assert_eq!(status, StatusCode::OK, "{entry}");
    assert_eq!(entry["description"], "Regions, uploaded");
    assert_eq!(entry["prices"]["currency_per_gib_returned"], 1000.0);
    assert_eq!(entry["columns"][1]["description"], "Region name");
    let statistics = &entry["statistics"];
    assert_eq!(statistics["rows"], 5, "{entry}");
    assert!(statistics["files"].as_u64().expect("files") >= 1, "{entry}");
    assert!(statistics["bytes"].as_u64().expect("bytes") > 0, "{entry}");
    assert!(statistics["last_modified"].is_string(), "{entry}");
    assert_eq!(statistics["live"], false);
    let count = client
        .query_one("SELECT count(*) FROM uploads.regions", &[])
        .await
        .expect("the new dataset is served");
    assert_eq!(count.get::<_, i64>(0), 5);

    // A new price applies to the next query, and the catalog shows it.
    let (status, patched) = admin
        .call(
            Method::PATCH,
            "/v1/admin/datasets/uploads.regions",
            Some(json!({ "price_per_gib": 2000.0, "description": "Regions, priced up" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    let (_, entry) = acme.get("/v1/catalog/uploads.regions").await;
    assert_eq!(entry["prices"]["currency_per_gib_returned"], 2000.0);
    assert_eq!(entry["description"], "Regions, priced up");
    client
        .simple_query("SELECT * FROM uploads.regions")
        .await
        .expect("query");
    let (_, usage) = acme.get("/v1/usage?group_by=dataset").await;
    let line = usage["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|item| item["dataset"] == "uploads.regions")
        .cloned()
        .expect("the dataset's usage");
    let returned = line["bytes_returned"].as_f64().expect("bytes") / f64::from(1u32 << 30);
    let scanned = line["bytes_scanned"].as_f64().expect("bytes") / f64::from(1u32 << 30);
    assert!(
        line["cost"].as_f64().expect("cost") > returned * 1000.0 + scanned * 10.0,
        "the second query is priced at the new price: {line}"
    );

    // Declared columns are taken as declared.
    let (status, declared) = put(
        "uploads.region_names",
        json!({
            "source": "lake",
            "path": upload,
            "columns": [{ "name": "r_regionkey", "type": "bigint" }, { "name": "r_name", "type": "varchar" }]
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{declared}");
    assert_eq!(declared["columns"].as_array().expect("columns").len(), 2);

    // A dataset another one's foreign key references keeps its primary key.
    let (status, problem) = put("tpch.region", json!({ "source": "lake", "path": "region" })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("`tpch.region` declares no primary_key"),
        "{problem}"
    );
    // A dataset tenants are entitled to keeps its columns: other files are refused.
    let (status, problem) = put(
        "tpch.region",
        json!({ "source": "lake", "path": "nation", "primary_key": ["n_nationkey"] }),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("entitled"),
        "{problem}"
    );

    // A configured dataset is repriced by a stored copy; deleting the copy restores it.
    let (status, repriced) = admin
        .call(
            Method::PATCH,
            "/v1/admin/datasets/tpch.region",
            Some(json!({ "price_per_gib": 0.5 })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{repriced}");
    assert_eq!(repriced["configured"], true);
    let (_, entry) = acme.get("/v1/catalog/tpch.region").await;
    assert_eq!(entry["prices"]["currency_per_gib_returned"], 0.5);
    let (status, _) = admin
        .call(Method::DELETE, "/v1/admin/datasets/tpch.region", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, entry) = acme.get("/v1/catalog/tpch.region").await;
    assert_eq!(entry["prices"]["currency_per_gib_returned"], 0.05);
    let (status, problem) = admin
        .call(Method::DELETE, "/v1/admin/datasets/tpch.region", None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");

    // Removal: refused while a tenant is entitled, then the name is gone for the tenant.
    let (status, problem) = admin
        .call(Method::DELETE, "/v1/admin/datasets/uploads.regions", None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert!(
        problem["detail"].as_str().expect("detail").contains("acme"),
        "{problem}"
    );
    let (status, _) = admin
        .call(
            Method::DELETE,
            "/v1/admin/tenants/acme/entitlements/uploads.regions",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = admin
        .call(Method::DELETE, "/v1/admin/datasets/uploads.regions", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, listed) = admin.get("/v1/admin/datasets").await;
    let ids: Vec<&str> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|d| d["id"].as_str().expect("an id"))
        .collect();
    assert!(!ids.contains(&"uploads.regions"), "{ids:?}");
    assert!(ids.contains(&"uploads.region_names"), "{ids:?}");
    let error = client
        .simple_query("SELECT count(*) FROM uploads.regions")
        .await
        .expect_err("no longer served");
    assert_eq!(sqlstate(&error), "42P01", "{}", message(&error));
    let (_, audit) = admin.get("/v1/admin/audit").await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for action in ["dataset.put", "dataset.patch", "dataset.delete"] {
        assert!(actions.contains(&action), "{action} audited: {actions:?}");
    }
    std::fs::remove_dir_all(lake.join(&upload)).expect("remove the upload");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_matches_usage_daily_and_is_grouped_by_channel() {
    let gateway = TestGateway::start().await;
    let admin = Api::new(&gateway, ADMIN);
    let acme = admin.with_key(ACME);
    let globex = admin.with_key(GLOBEX);
    let client = gateway.connect("acme").await;
    for sql in [
        "SELECT count(*) FROM tpch.nation",
        "SELECT * FROM tpch.region",
        "SELECT n_name, r_name FROM tpch.nation JOIN tpch.region ON n_regionkey = r_regionkey",
    ] {
        client.simple_query(sql).await.expect("query");
    }
    let (channel, _, login, password) = ready_channel(&acme).await;
    connect(&gateway, &login, &password)
        .await
        .simple_query("SELECT count(*) FROM tpch.orders")
        .await
        .expect("the channel's query");

    // The same figures as tollgate.usage_daily, line by line.
    let rows = client
        .query(
            "SELECT CAST(day AS TEXT), dataset, queries, rows_scanned, bytes_returned, \
             bytes_scanned, cost FROM tollgate.usage_daily ORDER BY 1, 2",
            &[],
        )
        .await
        .expect("usage_daily");
    let (status, usage) = acme.get("/v1/usage?group_by=day,dataset").await;
    assert_eq!(status, StatusCode::OK, "{usage}");
    let items = usage["items"].as_array().expect("items");
    assert_eq!(items.len(), rows.len(), "{usage}");
    assert!(rows.len() >= 3, "nation, region and orders");
    for (row, item) in rows.iter().zip(items) {
        assert_eq!(item["day"], row.get::<_, String>(0));
        assert_eq!(item["dataset"], row.get::<_, String>(1));
        assert_eq!(item["queries"], row.get::<_, i64>(2));
        assert_eq!(item["rows_scanned"], row.get::<_, i64>(3));
        assert_eq!(item["bytes_returned"], row.get::<_, i64>(4));
        assert_eq!(item["bytes_scanned"], row.get::<_, i64>(5));
        let cost = item["cost"].as_f64().expect("cost");
        assert!((cost - row.get::<_, f64>(6)).abs() <= 1e-12 * cost.max(1.0));
    }

    // By channel: the channel's one query apart from the tenant's own three.
    let (_, by_channel) = acme.get("/v1/usage?group_by=channel").await;
    let queries = |channel: Value| {
        by_channel["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|item| item["channel"] == channel)
            .map(|item| item["queries"].clone())
    };
    assert_eq!(queries(json!(channel)), Some(json!(1)), "{by_channel}");
    assert_eq!(queries(Value::Null), Some(json!(3)), "{by_channel}");
    assert_eq!(by_channel["total"]["queries"], 4);
    let channel_queries: i64 = client
        .query_one(
            "SELECT count(DISTINCT query_id) FROM tollgate.usage_records WHERE channel = $1",
            &[&channel],
        )
        .await
        .expect("usage_records names the channel")
        .get(0);
    assert_eq!(channel_queries, 1);

    // Another tenant's usage is its own; the provider sees every tenant's.
    let (_, theirs) = globex.get("/v1/usage").await;
    assert_eq!(theirs["total"]["queries"], 0, "{theirs}");
    let (status, _) = globex.get("/v1/usage?tenant=acme").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, all) = admin.get("/v1/admin/usage?group_by=tenant").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert!(
        all["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|item| item["tenant"] == "acme" && item["queries"] == 4),
        "{all}"
    );

    // Windows and bad parameters.
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).date_naive();
    let (_, later) = acme.get(&format!("/v1/usage?from={tomorrow}")).await;
    assert_eq!(later["items"], json!([]), "{later}");
    let (_, until) = acme.get(&format!("/v1/usage?to={tomorrow}")).await;
    assert_eq!(until["total"]["queries"], 4, "{until}");
    for bad in [
        "/v1/usage?group_by=colour",
        "/v1/usage?from=yesterday",
        "/v1/usage?group_by=tenant",
    ] {
        let (status, problem) = acme.get(bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {problem}");
    }
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_set_through_the_api_apply_to_the_next_statement() {
    let gateway = TestGateway::start().await;
    let admin = Api::new(&gateway, ADMIN);
    let profile = |name: &str, body: Value| {
        let admin = &admin;
        let path = format!("/v1/admin/profiles/{name}");
        async move { admin.call(Method::PUT, &path, Some(body)).await }
    };
    let (status, created) = profile(
        "XS",
        json!({ "max_result_rows": 3, "parallelism": 1, "price_factor": 2.5 }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, problem) = profile("XS2", json!({ "parallelism": 0 })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let (status, _) = profile("XS2", json!({ "colour": "red" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = profile("no spaces", json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, listed) = admin.get("/v1/admin/profiles").await;
    let find = |name: &str| {
        listed["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .expect("listed")
    };
    assert_eq!(find("XS")["stored"], true);
    assert_eq!(find("XS")["max_result_rows"], 3);
    assert_eq!(find("S")["configured"], true);

    // A tenant moved onto it gets its limits.
    let key = onboard(&admin, "tinyco").await;
    let (status, moved) = admin
        .call(
            Method::PATCH,
            "/v1/admin/tenants/tinyco",
            Some(json!({ "profile": "XS" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    let tinyco = admin.with_key(&key);
    let (_, _, login, password) = ready_channel(&tinyco).await;
    let client = connect(&gateway, &login, &password).await;
    let error = client
        .simple_query("SELECT o_orderkey FROM tpch.orders LIMIT 10")
        .await
        .expect_err("more rows than the profile allows");
    assert_eq!(sqlstate(&error), "54000", "{}", message(&error));
    client
        .simple_query("SELECT o_orderkey FROM tpch.orders LIMIT 3")
        .await
        .expect("within the profile");
    // The provider sees the refusal, and only it, among tinyco's recent refusals.
    let (status, refusals) = admin.get("/v1/admin/refusals?tenant=tinyco").await;
    assert_eq!(status, StatusCode::OK, "{refusals}");
    let items = refusals["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{refusals}");
    assert_eq!(items[0]["sqlstate"], "54000");
    assert_eq!(items[0]["login"], login.as_str());
    assert_eq!(items[0]["datasets"], json!(["tpch.orders"]));
    let (status, _) = tinyco.get("/v1/admin/refusals").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the provider's only");

    // Its prices: the datasets' times its factor.
    let (_, entry) = tinyco.get("/v1/catalog/tpch.orders").await;
    let prices = &entry["prices"];
    let base = prices["currency_per_gib_returned"]
        .as_f64()
        .expect("a price");
    assert_eq!(
        prices["per_profile"]["XS"]["currency_per_gib_returned"].as_f64(),
        Some(base * 2.5),
        "{entry}"
    );
    assert_eq!(
        prices["per_profile"]["S"]["currency_per_gib_returned"].as_f64(),
        Some(base),
        "{entry}"
    );
    let scanned_price = prices["currency_per_gib_scanned"]
        .as_f64()
        .expect("a price");
    let (_, usage) = tinyco.get("/v1/usage?group_by=dataset").await;
    let line = &usage["items"][0];
    let gib = f64::from(1u32 << 30);
    let expected = (line["bytes_returned"].as_f64().expect("bytes") / gib * base
        + line["bytes_scanned"].as_f64().expect("bytes") / gib * scanned_price)
        * 2.5;
    let cost = line["cost"].as_f64().expect("cost");
    assert!(cost > 0.0, "{usage}");
    assert!(
        (cost - expected).abs() <= 1e-9 * expected,
        "billed at 2.5 times the prices: {cost} vs {expected}"
    );

    // In use, it stays; changed, the next statement gets the new limit.
    let (status, problem) = admin
        .call(Method::DELETE, "/v1/admin/profiles/XS", None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("tinyco"),
        "{problem}"
    );
    let (status, _) = profile("XS", json!({ "max_result_rows": 100 })).await;
    assert_eq!(status, StatusCode::OK);
    client
        .simple_query("SELECT o_orderkey FROM tpch.orders LIMIT 10")
        .await
        .expect("the raised limit applies at once");
    let (status, _) = admin
        .call(Method::DELETE, "/v1/admin/profiles/S", None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "a configured profile stays");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_listener_speaks_https_with_a_certificate() {
    let certificate = TestCertificate::generate();
    let gateway = TestGateway::start_with(|options| {
        if let Some(http) = &mut options.http {
            http.tls = Some(certificate.tls_options(false));
        }
    })
    .await;
    let acme = Api::over_tls(gateway.http_addr(), ACME, &certificate.cert_pem());
    let (status, catalog) = acme.get("/v1/catalog").await;
    assert_eq!(status, StatusCode::OK, "{catalog}");
    assert!(catalog["total"].as_u64().expect("total") > 0);
    let plain = reqwest::Client::new()
        .get(format!("http://{}/v1/catalog", gateway.http_addr()))
        .bearer_auth(ACME)
        .send()
        .await;
    assert!(
        plain.is_err(),
        "plain HTTP is not served on an HTTPS listener: {plain:?}"
    );
    // The console's session cookie is never sent in clear.
    let root = reqwest::Certificate::from_pem(certificate.cert_pem().as_bytes()).expect("PEM");
    let browser = reqwest::Client::builder()
        .add_root_certificate(root)
        .build()
        .expect("an HTTPS client");
    let signed_in = browser
        .post(format!(
            "https://localhost:{}/console/session",
            gateway.http_addr().port()
        ))
        .header("content-type", "application/json")
        .body(json!({ "api_key": ACME }).to_string())
        .send()
        .await
        .expect("sign in");
    assert_eq!(signed_in.status(), StatusCode::OK);
    let cookie = signed_in
        .headers()
        .get("set-cookie")
        .and_then(|value| value.to_str().ok())
        .expect("a session cookie")
        .to_owned();
    assert!(
        cookie.contains("; Secure") && cookie.contains("; HttpOnly"),
        "{cookie}"
    );
    // A client that never finishes its handshake holds up no other.
    let _stalled = tokio::net::TcpStream::connect(gateway.http_addr())
        .await
        .expect("connect");
    let (status, _) = acme.get("/v1/catalog").await;
    assert_eq!(status, StatusCode::OK);
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tenant_endpoint_answers_another_tenants_ids_as_missing_ones() {
    let gateway = TestGateway::start().await;
    let admin = Api::new(&gateway, ADMIN);
    let acme = admin.with_key(ACME);
    let globex = admin.with_key(GLOBEX);
    let (channel, order_id, login, _) = ready_channel(&acme).await;
    let (status, _) = acme
        .call(
            Method::PUT,
            "/v1/notifications",
            Some(json!({ "webhook_url": "http://127.0.0.1:9/hook" })),
        )
        .await;
    assert!(status.is_success(), "{status}");
    gateway
        .connect("acme")
        .await
        .simple_query("SELECT count(*) FROM tpch.nation")
        .await
        .expect("query");

    // Ids: acme's and missing ones answer alike for globex, the detail aside from the id.
    let calls: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/v1/orders/{order_id}"), None),
        (Method::GET, format!("/v1/channels/{channel}"), None),
        (Method::DELETE, format!("/v1/channels/{channel}"), None),
        (
            Method::POST,
            format!("/v1/channels/{channel}/credentials"),
            Some(json!({})),
        ),
        (Method::GET, "/v1/catalog/tpch.nation".to_owned(), None),
    ];
    for (method, path, body) in calls {
        let (status, theirs) = globex.call(method.clone(), &path, body.clone()).await;
        let missing_path = path
            .replace(&channel, "ch_missing")
            .replace(&order_id, "ord_missing")
            .replace("tpch.nation", "tpch.nothing");
        let (missing_status, missing) = globex.call(method, &missing_path, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {theirs}");
        assert_eq!(status, missing_status, "{path}");
        assert_eq!(theirs["type"], missing["type"], "{path}");
        let detail = |v: &Value, id: &str, placeholder: &str| {
            v["detail"].as_str().map(|d| d.replace(id, placeholder))
        };
        assert_eq!(
            detail(&theirs, &channel, "X")
                .map(|d| d.replace(&order_id, "X").replace("tpch.nation", "X")),
            detail(&missing, "ch_missing", "X")
                .map(|d| d.replace("ord_missing", "X").replace("tpch.nothing", "X")),
            "{path}"
        );
    }
    // Ordering acme's dataset answers as ordering a missing one.
    let wanting =
        |dataset: &str| json!({ "kind": "postgres", "datasets": [{ "dataset": dataset }] });
    let (status, theirs) = globex.post("/v1/channels", wanting("tpch.nation")).await;
    let (missing_status, missing) = globex.post("/v1/channels", wanting("tpch.nothing")).await;
    assert_eq!(status, missing_status, "{theirs}");
    assert_eq!(theirs["type"], missing["type"]);

    // Lists hold globex's own only.
    let (_, channels) = globex.get("/v1/channels").await;
    assert!(!channels.to_string().contains(&channel), "{channels}");
    let (_, events) = globex.get("/v1/events?after=0").await;
    let events = events.to_string();
    assert!(
        !events.contains(&channel) && !events.contains(&login),
        "{events}"
    );
    let (_, notifications) = globex.get("/v1/notifications").await;
    assert!(
        !notifications.to_string().contains("127.0.0.1:9"),
        "{notifications}"
    );
    let (_, deliveries) = globex.get("/v1/deliveries").await;
    assert!(!deliveries.to_string().contains(&channel), "{deliveries}");
    let (_, usage) = globex.get("/v1/usage").await;
    assert_eq!(usage["total"]["queries"], 0, "{usage}");
    let (_, catalog) = globex.get("/v1/catalog").await;
    assert!(!catalog.to_string().contains(&channel), "{catalog}");

    // acme's channel still works: nothing globex did touched it.
    let (status, view) = acme.get(&format!("/v1/channels/{channel}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view["state"], "active", "{view}");

    // Every admin endpoint refuses a tenant key.
    for (method, path) in [
        (Method::GET, "/v1/admin/tenants"),
        (Method::POST, "/v1/admin/tenants"),
        (Method::GET, "/v1/admin/tenants/acme"),
        (Method::PATCH, "/v1/admin/tenants/acme"),
        (Method::DELETE, "/v1/admin/tenants/acme"),
        (Method::POST, "/v1/admin/tenants/acme/api-keys"),
        (Method::DELETE, "/v1/admin/api-keys/acme"),
        (Method::GET, "/v1/admin/tenants/acme/entitlements"),
        (
            Method::PUT,
            "/v1/admin/tenants/acme/entitlements/tpch.nation",
        ),
        (
            Method::DELETE,
            "/v1/admin/tenants/acme/entitlements/tpch.nation",
        ),
        (Method::GET, "/v1/admin/audit"),
        (Method::GET, "/v1/admin/usage"),
        (Method::GET, "/v1/admin/datasets"),
        (Method::GET, "/v1/admin/datasets/tpch.nation"),
        (Method::PUT, "/v1/admin/datasets/tpch.nation"),
        (Method::PATCH, "/v1/admin/datasets/tpch.nation"),
        (Method::DELETE, "/v1/admin/datasets/tpch.nation"),
        (Method::GET, "/v1/admin/profiles"),
        (Method::PUT, "/v1/admin/profiles/S"),
        (Method::DELETE, "/v1/admin/profiles/S"),
    ] {
        let body = matches!(method, Method::POST | Method::PUT | Method::PATCH).then(|| json!({}));
        let (status, problem) = globex.call(method.clone(), path, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {problem}");
    }
    gateway.stop().await;
}
