//! The Web-API with a real HTTP client: an `http` channel ordered, rotated and revoked
//! through the control API; PostgREST resources with every operator, compared with the
//! same SQL over pgwire; a million rows paged by `next` links and by `nextUri` in JSON, CSV
//! and Arrow; abandoned and cancelled statements recorded; formats, ETags, compression and
//! CORS; and another tenant's rows and hidden columns out of reach through every parameter.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{self, HeaderMap};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tollgate_catalog::{DatasetOptions, GrantOptions, SourceOptions};
use tollgate_planner::datafusion::arrow::array::{Float64Array, Int64Array, StringArray};
use tollgate_planner::datafusion::arrow::datatypes::{DataType, Field, Schema};
use tollgate_planner::datafusion::arrow::record_batch::RecordBatch;
use tollgate_planner::datafusion::parquet::arrow::ArrowWriter;
use tollgate_tests::api::{ACME, Api, event};
use tollgate_tests::{TestGateway, data_dir};

/// Rows of the `web.million` dataset.
const MILLION: i64 = 1_000_000;
/// The web origin acme allows.
const ACME_ORIGIN: &str = "https://dashboard.acme.example";

/// A directory holding one Parquet file of `MILLION` rows (`id`, `label`, `value`),
/// written once per machine.
fn million_rows() -> PathBuf {
    let dir = data_dir().join("web-million");
    let file = dir.join("part-0.parquet");
    if file.exists() {
        return dir;
    }
    std::fs::create_dir_all(&dir).expect("create the directory");
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("label", DataType::Utf8, false),
        Field::new("value", DataType::Float64, false),
    ]));
    let partial = dir.join(format!("part-0.{}.tmp", std::process::id()));
    let mut writer = ArrowWriter::try_new(
        std::fs::File::create(&partial).expect("create the file"),
        Arc::clone(&schema),
        None,
    )
    .expect("a writer");
    for start in (0..MILLION).step_by(100_000) {
        let ids: Vec<i64> = (start..start + 100_000).collect();
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from(ids.clone())),
                Arc::new(StringArray::from_iter_values(
                    ids.iter().map(|id| format!("row-{id}")),
                )),
                Arc::new(Float64Array::from_iter_values(
                    ids.iter().map(|id| *id as f64 / 2.0),
                )),
            ],
        )
        .expect("a batch");
        writer.write(&batch).expect("write");
    }
    writer.close().expect("close");
    std::fs::rename(&partial, &file).expect("publish the file");
    dir
}

/// The demo gateway with `web.million` granted to acme, acme's web origin allowed, and
/// statements abandoned after two idle seconds.
async fn gateway() -> TestGateway {
    let million = million_rows();
    TestGateway::start_with(|options| {
        options
            .sources
            .insert("web".to_owned(), SourceOptions::Local { path: million });
        let dataset: DatasetOptions =
            toml::from_str("id = \"web.million\"\nsource = \"web\"\npath = \"\"\n")
                .expect("a dataset");
        options.datasets.push(dataset);
        options.grants.push(GrantOptions {
            tenant: "acme".to_owned(),
            dataset: "web.million".to_owned(),
            columns: None,
            row_filter: None,
            source: None,
        });
        for tenant in &mut options.tenants {
            if tenant.id == "acme" {
                tenant.allowed_origins = vec![ACME_ORIGIN.to_owned()];
            }
        }
        if let Some(http) = &mut options.http {
            http.statement_idle = tollgate_catalog::HumanDuration(Duration::from_secs(2));
        }
    })
    .await
}

/// A Web-API client with fixed credentials.
struct Web {
    client: reqwest::Client,
    base: String,
    authorization: String,
}

impl Web {
    fn bearer(base: &str, token: &str) -> Self {
        Self {
            client: reqwest::Client::new(),
            base: base.to_owned(),
            authorization: format!("Bearer {token}"),
        }
    }

    /// The demo login `user` (password = name) by HTTP Basic.
    fn basic(gateway: &TestGateway, user: &str) -> Self {
        use base64::Engine;
        let encode = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
        Self {
            client: reqwest::Client::new(),
            base: format!("http://{}", gateway.http_addr()),
            authorization: format!("Basic {}", encode(&format!("{user}:{user}"))),
        }
    }

    async fn request(
        &self,
        method: Method,
        path_or_url: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (StatusCode, HeaderMap, bytes::Bytes) {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_owned()
        } else {
            format!("{}{path_or_url}", self.base)
        };
        let mut request = self
            .client
            .request(method, url)
            .header(header::AUTHORIZATION, &self.authorization);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("a response");
        let status = response.status();
        let headers = response.headers().clone();
        (status, headers, response.bytes().await.expect("a body"))
    }

    async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, HeaderMap, Value) {
        let (status, headers, bytes) = self.request(method, path, &[], body).await;
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, headers, value)
    }

    async fn get(&self, path: &str) -> (StatusCode, HeaderMap, Value) {
        self.json(Method::GET, path, None).await
    }
}

/// The `rel="next"` URL of a `Link` header.
fn next_link(headers: &HeaderMap) -> Option<String> {
    let link = headers.get(header::LINK)?.to_str().ok()?;
    let (url, rel) = link.split_once(';')?;
    rel.contains("rel=\"next\"").then(|| {
        url.trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_owned()
    })
}

/// Orders an `http` channel of `datasets` for the tenant of `tenant`'s key and waits for
/// its ready event.
async fn order_http(tenant: &Api, datasets: Value) -> Value {
    let (_, events) = tenant.get("/v1/events?after=0").await;
    let after = events["next_after"].as_i64().unwrap_or(0);
    let (status, body) = tenant
        .post(
            "/v1/channels",
            json!({ "kind": "http", "datasets": datasets }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    event(tenant, after, "channel.ready").await
}

/// One column of integers of every row of a JSON array.
fn column(rows: &Value, name: &str) -> Vec<i64> {
    rows.as_array()
        .expect("an array of rows")
        .iter()
        .map(|row| row[name].as_i64().expect("an integer"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_channel_is_ordered_read_rotated_and_revoked() {
    let gateway = gateway().await;
    let acme = Api::new(&gateway, ACME);
    let ready = order_http(
        &acme,
        json!([{
            "dataset": "tpch.orders",
            "columns": ["o_orderkey", "o_totalprice"],
            "row_filter": "o_totalprice > 300000"
        }]),
    )
    .await;
    let connection = &ready["connection"];
    let base = connection["base_url"].as_str().expect("a base URL");
    let token = connection["token"].as_str().expect("a token shown once");
    let web = Web::bearer(base, token);
    let (status, headers, rows) = web
        .get("/v1/data/tpch/orders?order=o_orderkey.desc&limit=5")
        .await;
    assert_eq!(status, StatusCode::OK, "{rows}");
    assert_eq!(rows.as_array().map(Vec::len), Some(5), "{rows}");
    for row in rows.as_array().expect("rows") {
        let keys: Vec<&String> = row.as_object().expect("an object").keys().collect();
        assert_eq!(
            keys,
            ["o_orderkey", "o_totalprice"],
            "only the channel's columns"
        );
        assert!(
            row["o_totalprice"].as_f64().expect("a price") > 300_000.0,
            "{row}"
        );
    }
    assert_eq!(headers[header::CONTENT_RANGE], "items 0-4/*");
    assert!(next_link(&headers).is_some(), "more than five big orders");
    // The same rows as the channel's model over pgwire.
    let client = gateway.connect("acme").await;
    let expected: Vec<i64> = client
        .query(
            "SELECT o_orderkey FROM tpch.orders WHERE o_totalprice > 300000 ORDER BY o_orderkey DESC LIMIT 5",
            &[],
        )
        .await
        .expect("query")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(column(&rows, "o_orderkey"), expected);
    // The channel's token reads nothing outside the channel.
    let (status, _, problem) = web.get("/v1/data/tpch/lineitem").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    // A rotation gives a new token; the old one works for the overlap.
    let channel = ready["channel"].as_str().expect("a channel");
    let (status, rotated) = acme
        .post(&format!("/v1/channels/{channel}/credentials"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rotated}");
    let rotated_web = Web::bearer(
        base,
        rotated["connection"]["token"].as_str().expect("a token"),
    );
    assert_eq!(
        rotated_web.get("/v1/data/tpch/orders?limit=1").await.0,
        StatusCode::OK
    );
    assert_eq!(
        web.get("/v1/data/tpch/orders?limit=1").await.0,
        StatusCode::OK
    );
    // A wrong password is refused like a missing login.
    let (status, headers, problem) = Web::bearer(
        base,
        &format!("{}.wrong", rotated["login"].as_str().expect("login")),
    )
    .get("/v1/data/tpch/orders")
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{problem}");
    assert!(headers.contains_key(header::WWW_AUTHENTICATE));
    assert_eq!(problem["type"], "urn:tollgate:problem:unauthorized");
    // Revoked: both tokens stop at once.
    let (status, _) = acme
        .call(Method::DELETE, &format!("/v1/channels/{channel}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        web.get("/v1/data/tpch/orders").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        rotated_web.get("/v1/data/tpch/orders").await.0,
        StatusCode::UNAUTHORIZED
    );
    // An http login cannot be used on the Postgres wire protocol.
    let conninfo = format!(
        "host={} port={} dbname=tollgate user={} password=x",
        gateway.addr().ip(),
        gateway.addr().port(),
        rotated["login"].as_str().expect("login")
    );
    assert!(gateway.try_connect(&conninfo).await.is_err());
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_postgrest_operator_filters_as_sql_would() {
    let gateway = gateway().await;
    let web = Web::basic(&gateway, "acme");
    let client = gateway.connect("acme").await;
    let cases = [
        ("o_orderkey=eq.7", "o_orderkey = 7"),
        (
            "o_orderkey=neq.7&o_orderkey=lt.40",
            "o_orderkey <> 7 AND o_orderkey < 40",
        ),
        ("o_orderkey=lte.35", "o_orderkey <= 35"),
        ("o_orderkey=gt.59000", "o_orderkey > 59000"),
        ("o_orderkey=gte.59990", "o_orderkey >= 59990"),
        (
            "o_orderdate=gte.1998-07-01",
            "o_orderdate >= DATE '1998-07-01'",
        ),
        ("o_clerk=like.*00001", "o_clerk LIKE '%00001'"),
        (
            "o_orderpriority=ilike.1-u*&o_orderkey=lt.200",
            "o_orderpriority ILIKE '1-u%' AND o_orderkey < 200",
        ),
        (
            "o_orderkey=in.(1,2,3,7,99999)",
            "o_orderkey IN (1, 2, 3, 7, 99999)",
        ),
        (
            "o_orderkey=not.in.(1,2)&o_orderkey=lt.10",
            "o_orderkey NOT IN (1, 2) AND o_orderkey < 10",
        ),
        (
            "o_orderstatus=in.(\"F\",\"P\")&o_orderkey=lt.100",
            "o_orderstatus IN ('F', 'P') AND o_orderkey < 100",
        ),
        ("o_comment=is.null", "o_comment IS NULL"),
        (
            "o_comment=is.not_null&o_orderkey=lt.20",
            "o_comment IS NOT NULL AND o_orderkey < 20",
        ),
        ("o_orderkey=not.gte.30", "NOT (o_orderkey >= 30)"),
    ];
    for (filter, condition) in cases {
        let (status, headers, rows) = web
            .get(&format!(
                "/v1/data/tpch/orders?select=o_orderkey&{filter}&order=o_orderkey&limit=100000"
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{filter}: {rows}");
        assert!(next_link(&headers).is_none(), "{filter}: one page");
        let expected: Vec<i64> = client
            .query(
                &format!(
                    "SELECT o_orderkey FROM tpch.orders WHERE {condition} ORDER BY o_orderkey"
                ),
                &[],
            )
            .await
            .expect("query")
            .iter()
            .map(|row| row.get(0))
            .collect();
        assert_eq!(column(&rows, "o_orderkey"), expected, "{filter}");
    }
    // `is.true`/`is.false` on a boolean expression column are covered by SQL's own IS;
    // a boolean column comes from a statement.
    let (status, _, page) = web
        .json(
            Method::POST,
            "/v1/statements",
            Some(json!({ "sql": "SELECT count(*) AS n FROM tpch.orders WHERE (o_orderkey < $1) IS TRUE", "parameters": [10] })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["data"][0]["n"], 7, "{page}");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_rows_page_by_next_links_and_by_next_uri() {
    let gateway = gateway().await;
    let web = Web::basic(&gateway, "acme");
    // Resources, by `next` links, in JSON.
    let mut url = Some("/v1/data/web/million?select=id,label&limit=100000".to_owned());
    let mut seen = HashSet::new();
    let mut pages = 0;
    while let Some(next) = url {
        let (status, headers, rows) = web.get(&next).await;
        assert_eq!(status, StatusCode::OK, "{rows}");
        for row in rows.as_array().expect("rows") {
            let id = row["id"].as_i64().expect("an id");
            assert_eq!(row["label"], format!("row-{id}"));
            assert!(seen.insert(id), "row {id} came twice");
        }
        pages += 1;
        url = next_link(&headers);
    }
    assert_eq!((seen.len() as i64, pages), (MILLION, 10));
    // Statements, by `nextUri`, as JSON documents.
    let (status, _, mut page) = web
        .json(
            Method::POST,
            "/v1/statements?rows=250000",
            Some(json!({ "sql": "SELECT id, value FROM web.million WHERE id >= $1", "parameters": [0] })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let mut total = 0i64;
    let mut sum = 0i64;
    loop {
        for row in page["data"].as_array().expect("data") {
            total += 1;
            sum += row["id"].as_i64().expect("an id");
        }
        let Some(next) = page["nextUri"].as_str().map(str::to_owned) else {
            break;
        };
        page = web.get(&next).await.2;
    }
    assert_eq!(page["stats"]["state"], "FINISHED");
    assert_eq!((total, sum), (MILLION, MILLION * (MILLION - 1) / 2));
    // The same in CSV and Arrow: pages in the body, the next one in `Link`.
    for accept in ["text/csv", "application/vnd.apache.arrow.stream"] {
        let (status, mut headers, mut body) = web
            .request(
                Method::POST,
                "/v1/statements?rows=400000",
                &[("accept", accept)],
                Some(json!({ "sql": "SELECT id FROM web.million" })),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let mut rows = 0usize;
        loop {
            rows += if accept == "text/csv" {
                let text = std::str::from_utf8(&body).expect("utf-8");
                assert!(text.starts_with("id\n"), "a header on every page");
                text.lines().count() - 1
            } else {
                tollgate_planner::datafusion::arrow::ipc::reader::StreamReader::try_new(
                    &body[..],
                    None,
                )
                .expect("an Arrow stream")
                .map(|batch| batch.expect("a batch").num_rows())
                .sum()
            };
            let Some(next) = next_link(&headers) else {
                break;
            };
            (_, headers, body) = web
                .request(Method::GET, &next, &[("accept", accept)], None)
                .await;
        }
        assert_eq!(rows as i64, MILLION, "{accept}");
    }
    gateway.stop().await;
}

/// acme's `http` usage records, newest first: (outcome, rows returned).
async fn http_records(gateway: &TestGateway) -> Vec<(String, i64)> {
    let client = gateway.connect("acme").await;
    client
        .query(
            "SELECT outcome, rows_returned FROM tollgate.usage_records WHERE protocol = 'http' ORDER BY started_at DESC",
            &[],
        )
        .await
        .expect("usage records")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_and_cancelled_statements_stop_and_are_recorded() {
    let gateway = gateway().await;
    let web = Web::basic(&gateway, "acme");
    let start = || async {
        let (status, _, page) = web
            .json(
                Method::POST,
                "/v1/statements?rows=10",
                Some(json!({ "sql": "SELECT id FROM web.million" })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["data"].as_array().map(Vec::len), Some(10));
        page
    };
    // Cancelled by DELETE: gone at once.
    let page = start().await;
    let id = page["id"].as_str().expect("an id");
    let (status, _, _) = web
        .request(Method::DELETE, &format!("/v1/statements/{id}"), &[], None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, problem) = web
        .get(page["nextUri"].as_str().expect("a next page"))
        .await;
    assert_eq!(status, StatusCode::GONE, "{problem}");
    // Abandoned: nobody asks for the next page; swept after the idle time.
    let page = start().await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (status, _, problem) = web
        .get(page["nextUri"].as_str().expect("a next page"))
        .await;
    assert_eq!(status, StatusCode::GONE, "{problem}");
    // A client that goes away while its page is being read: the statement goes with the
    // request, and is then gone (410), not busy (409).
    let (status, _, page) = web
        .json(
            Method::POST,
            "/v1/statements?rows=10",
            Some(json!({ "sql": "SELECT value FROM generate_series(1, 20) UNION ALL SELECT value FROM generate_series(1, 100000000000) WHERE value < 0" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let next = page["nextUri"].as_str().expect("a next page");
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .expect("a client");
    let gave_up = impatient
        .get(next)
        .header(header::AUTHORIZATION, &web.authorization)
        .send()
        .await;
    assert!(gave_up.is_err(), "the page should still be being read");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (status, _, problem) = web.get(next).await;
        if status == StatusCode::GONE {
            break;
        }
        assert_eq!(status, StatusCode::CONFLICT, "{problem}");
        assert!(
            std::time::Instant::now() < deadline,
            "still busy: {problem}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The three queries are recorded as cancelled, with the rows they gave.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let records = http_records(&gateway).await;
        let cancelled = records
            .iter()
            .filter(|(outcome, _)| outcome == "cancelled")
            .count();
        if cancelled >= 3 {
            assert!(records.iter().all(|(_, rows)| *rows >= 10), "{records:?}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{records:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn formats_etags_compression_and_cors() {
    let gateway = gateway().await;
    let web = Web::basic(&gateway, "acme");
    let path = "/v1/data/tpch/nation?select=n_nationkey,n_name&order=n_nationkey&limit=5";
    let (status, headers, body) = web
        .request(Method::GET, path, &[("accept", "text/csv")], None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .expect("text")
            .starts_with("text/csv")
    );
    assert_eq!(
        std::str::from_utf8(&body).expect("utf-8"),
        "n_nationkey,n_name\n0,ALGERIA\n1,ARGENTINA\n2,BRAZIL\n3,CANADA\n4,EGYPT\n"
    );
    let (_, _, body) = web
        .request(
            Method::GET,
            path,
            &[("accept", "application/x-ndjson")],
            None,
        )
        .await;
    assert_eq!(
        std::str::from_utf8(&body).expect("utf-8").lines().count(),
        5
    );
    let (_, _, body) = web
        .request(
            Method::GET,
            path,
            &[("accept", "application/vnd.apache.parquet")],
            None,
        )
        .await;
    let reader = tollgate_planner::datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(body, 1024)
        .expect("a Parquet file");
    assert_eq!(
        reader
            .map(|b| b.expect("a batch").num_rows())
            .sum::<usize>(),
        5
    );
    let (status, _, problem) = web
        .request(Method::GET, path, &[("accept", "image/png")], None)
        .await;
    assert_eq!(status, StatusCode::NOT_ACCEPTABLE, "{problem:?}");
    // ETag: an unchanged page is not sent again.
    let (_, headers, _) = web.request(Method::GET, path, &[], None).await;
    let etag = headers[header::ETAG].to_str().expect("an etag").to_owned();
    let (status, _, body) = web
        .request(Method::GET, path, &[("if-none-match", &etag)], None)
        .await;
    assert_eq!((status, body.len()), (StatusCode::NOT_MODIFIED, 0));
    // gzip and zstd on request.
    for encoding in ["gzip", "zstd"] {
        let (status, headers, _) = web
            .request(
                Method::GET,
                "/v1/data/tpch/orders?limit=2000",
                &[("accept-encoding", encoding)],
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_ENCODING], encoding);
    }
    // CORS: a preflight from acme's origin is allowed; the answer names the origin for
    // acme's login only.
    let client = reqwest::Client::new();
    let preflight = client
        .request(
            Method::OPTIONS,
            format!("http://{}{path}", gateway.http_addr()),
        )
        .header("origin", ACME_ORIGIN)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .expect("a preflight");
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        ACME_ORIGIN
    );
    let (_, headers, _) = web
        .request(Method::GET, path, &[("origin", ACME_ORIGIN)], None)
        .await;
    assert_eq!(headers["access-control-allow-origin"], ACME_ORIGIN);
    let globex = Web::basic(&gateway, "globex");
    let (status, headers, _) = globex
        .request(
            Method::GET,
            "/v1/data/tpch/orders?limit=1",
            &[("origin", ACME_ORIGIN)],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!headers.contains_key("access-control-allow-origin"));
    let (_, headers, _) = web
        .request(
            Method::GET,
            path,
            &[("origin", "https://evil.example")],
            None,
        )
        .await;
    assert!(!headers.contains_key("access-control-allow-origin"));
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn globex_never_reaches_acme_rows_or_hidden_columns() {
    let gateway = gateway().await;
    let globex = Web::basic(&gateway, "globex");
    let acme = Web::basic(&gateway, "acme");
    // Datasets it is not granted do not exist.
    for path in [
        "/v1/data/tpch/customer",
        "/v1/data/web/million",
        "/v1/data/tollgate/usage_records",
    ] {
        let (status, _, problem) = globex.get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {problem}");
    }
    // A hidden column cannot be selected, filtered on or ordered by.
    for query in [
        "select=o_comment",
        "o_comment=is.null",
        "order=o_comment",
        "o_comment=like.*",
    ] {
        let (status, headers, problem) = globex.get(&format!("/v1/data/tpch/orders?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {problem}");
        assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    }
    let (status, _, problem) = globex
        .json(
            Method::POST,
            "/v1/statements",
            Some(json!({ "sql": "SELECT o_comment FROM tpch.orders" })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(problem["sqlstate"], "42703", "{problem}");
    // Rows its grant hides stay hidden whatever the filter.
    let (status, _, rows) = globex
        .get("/v1/data/tpch/orders?select=o_orderkey&o_orderdate=lt.1995-01-01")
        .await;
    assert_eq!((status, rows), (StatusCode::OK, json!([])));
    let (_, _, page) = globex
        .json(
            Method::POST,
            "/v1/statements",
            Some(json!({ "sql": "SELECT min(o_orderdate) AS first FROM tpch.orders" })),
        )
        .await;
    assert!(
        page["data"][0]["first"].as_str().expect("a date") >= "1995-01-01",
        "{page}"
    );
    // acme's statement is gone for globex.
    let (_, _, page) = acme
        .json(
            Method::POST,
            "/v1/statements?rows=1",
            Some(json!({ "sql": "SELECT id FROM web.million" })),
        )
        .await;
    let next = page["nextUri"].as_str().expect("a next page");
    let (status, _, problem) = globex.get(next).await;
    assert_eq!(status, StatusCode::GONE, "{problem}");
    let id = page["id"].as_str().expect("an id");
    let (status, _, _) = globex
        .request(Method::DELETE, &format!("/v1/statements/{id}"), &[], None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(acme.get(next).await.0, StatusCode::OK, "still acme's");
    // Bad filters, bodies and SQL are problems, never 500.
    for (method, path, body) in [
        (
            Method::GET,
            "/v1/data/tpch/orders?o_orderkey=eq.notanumber",
            None,
        ),
        (
            Method::GET,
            "/v1/data/tpch/orders?o_orderkey=between.1",
            None,
        ),
        (Method::GET, "/v1/data/tpch/orders?limit=-1", None),
        (
            Method::POST,
            "/v1/statements",
            Some(json!({ "sql": "SELEC 1" })),
        ),
        (
            Method::POST,
            "/v1/statements",
            Some(json!({ "sql": "SELECT 1; SELECT 2" })),
        ),
        (
            Method::POST,
            "/v1/statements",
            Some(json!({ "sql": "SELECT $1 + 1", "parameters": [[1]] })),
        ),
        (
            Method::POST,
            "/v1/statements",
            Some(json!({ "query": "SELECT 1" })),
        ),
        (
            Method::POST,
            "/v1/statements?rows=many",
            Some(json!({ "sql": "SELECT 1" })),
        ),
    ] {
        let (status, headers, problem) = globex.json(method, path, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {problem}");
        assert_eq!(
            headers[header::CONTENT_TYPE],
            "application/problem+json",
            "{path}"
        );
    }
    let (status, _, problem) = globex
        .json(
            Method::POST,
            "/v1/statements",
            Some(json!({ "sql": "DELETE FROM tpch.orders" })),
        )
        .await;
    assert_eq!(
        (status, &problem["sqlstate"]),
        (StatusCode::FORBIDDEN, &json!("42501")),
        "{problem}"
    );
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_example_pages_with_python_requests() {
    let gateway = gateway().await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../bi-examples/web/page_dataset.py"
    );
    let base = format!("http://{}", gateway.http_addr());
    let python = tollgate_tests::moto::venv_python();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(script)
            .arg(base)
            .arg("tg_globex.demo-globex")
            .output()
    })
    .await
    .expect("the script's thread")
    .expect("run python");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let client = gateway.connect("globex").await;
    let big: i64 = client
        .query_one(
            "SELECT count(*) FROM tpch.orders WHERE o_orderdate >= DATE '1997-01-01' AND o_totalprice >= 200000",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert!(
        stdout.contains(&format!("resource rows: {big} in")),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("{big} orders")), "{stdout}");
    gateway.stop().await;
}
