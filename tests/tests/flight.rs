//! Arrow Flight SQL end to end, with arrow-flight's own client against a gateway on port 0:
//! logins and tokens, statements over parallel endpoints, tickets that only their principal
//! can redeem, every metadata command, `ListFlights`, prepared statements, cancel and error
//! codes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_flight::error::FlightError;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{
    ActionCancelQueryRequest, Any, CommandGetDbSchemas, CommandGetExportedKeys,
    CommandGetImportedKeys, CommandGetPrimaryKeys, CommandGetTables, CommandGetXdbcTypeInfo,
    CommandStatementQuery, ProstMessageExt, SqlInfo, TicketStatementQuery,
};
use arrow_flight::{
    Action, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus, Criteria, FlightInfo,
    IpcMessage, Ticket,
};
use futures::TryStreamExt;
use prost::Message;
use tollgate_catalog::HumanDuration;
use tollgate_planner::datafusion::arrow::array::{
    Array, AsArray, BinaryArray, Date32Array, RecordBatch, StringArray,
};
use tollgate_planner::datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema};
use tollgate_tests::{TestCertificate, TestGateway};
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

type Client = FlightSqlServiceClient<Channel>;

async fn connect(gateway: &TestGateway) -> Client {
    let channel = Channel::from_shared(format!("http://{}", gateway.flight_addr()))
        .expect("uri")
        .connect()
        .await
        .expect("connect to Flight SQL");
    FlightSqlServiceClient::new(channel)
}

/// A client logged in as demo user `user` (password = user name).
async fn login(gateway: &TestGateway, user: &str) -> Client {
    let mut client = connect(gateway).await;
    client.handshake(user, user).await.expect("handshake");
    assert!(
        client.token().is_some(),
        "the handshake returns a bearer token"
    );
    client
}

fn code(error: &FlightError) -> Code {
    match error {
        FlightError::Tonic(status) => status.code(),
        other => panic!("expected a gRPC status, got {other}"),
    }
}

fn message(error: &FlightError) -> String {
    match error {
        FlightError::Tonic(status) => status.message().to_owned(),
        other => other.to_string(),
    }
}

async fn fetch(client: &mut Client, ticket: &Ticket) -> Result<Vec<RecordBatch>, FlightError> {
    client.do_get(ticket.clone()).await?.try_collect().await
}

/// Every batch of every endpoint, fetched one endpoint after the other.
async fn fetch_all(client: &mut Client, info: &FlightInfo) -> Vec<RecordBatch> {
    let mut batches = Vec::new();
    for endpoint in &info.endpoint {
        let ticket = endpoint
            .ticket
            .as_ref()
            .expect("every endpoint has a ticket");
        batches.extend(fetch(client, ticket).await.expect("do_get"));
    }
    batches
}

fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

fn strings(batches: &[RecordBatch], column: &str) -> Vec<String> {
    batches
        .iter()
        .flat_map(|batch| {
            let array = batch
                .column_by_name(column)
                .unwrap_or_else(|| panic!("column {column}"));
            let array = array.as_any().downcast_ref::<StringArray>().expect("utf8");
            array
                .iter()
                .map(|v| v.unwrap_or_default().to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Runs Flight action `kind` with `body` as the logged-in client.
async fn action(
    client: &mut Client,
    kind: &str,
    body: Vec<u8>,
) -> Result<Vec<arrow_flight::Result>, FlightError> {
    let results = client.do_action(Action::new(kind, body)).await?;
    Ok(results.try_collect().await?)
}

async fn cancel_flight_info(
    client: &mut Client,
    info: &FlightInfo,
) -> Result<CancelStatus, FlightError> {
    let body = CancelFlightInfoRequest::new(info.clone()).encode_to_vec();
    let results = action(client, "CancelFlightInfo", body).await?;
    let result = CancelFlightInfoResult::decode(results[0].body.clone()).expect("result");
    Ok(result.status())
}

async fn single_count(client: &mut Client, sql: &str) -> i64 {
    let info = client.execute(sql.to_owned(), None).await.expect(sql);
    let batches = fetch_all(client, &info).await;
    assert_eq!(rows(&batches), 1, "{sql}");
    batches[0].column(0).as_primitive::<Int64Type>().value(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_and_tokens() {
    let gateway = TestGateway::start().await;

    let mut wrong = connect(&gateway).await;
    let error = wrong
        .handshake("acme", "globex")
        .await
        .expect_err("wrong password");
    assert!(
        error.to_string().contains("password authentication failed"),
        "{error}"
    );
    let error = wrong
        .handshake("nobody", "nobody")
        .await
        .expect_err("unknown user");
    assert!(
        error.to_string().contains("password authentication failed"),
        "{error}"
    );

    let mut anonymous = connect(&gateway).await;
    let error = anonymous.get_catalogs().await.expect_err("no token");
    assert_eq!(code(&error), Code::Unauthenticated);

    anonymous.set_token("bm90IGEgdG9rZW4".to_owned());
    let error = anonymous.get_catalogs().await.expect_err("forged token");
    assert_eq!(code(&error), Code::Unauthenticated);

    // HTTP Basic on an ordinary call also authenticates it.
    let mut basic = connect(&gateway).await;
    basic.set_header("authorization", "Basic Z2xvYmV4Omdsb2JleA");
    let info = basic
        .get_catalogs()
        .await
        .expect("Basic credentials without padding");
    assert_eq!(info.endpoint.len(), 1);

    let mut acme = login(&gateway, "acme").await;
    assert_eq!(
        single_count(&mut acme, "SELECT count(*) FROM tpch.region").await,
        5
    );
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_expire() {
    let gateway = TestGateway::start_with(|options| {
        let flight = options.flight.as_mut().expect("flight is configured");
        flight.token_ttl = HumanDuration(Duration::from_secs(1));
    })
    .await;
    let mut client = login(&gateway, "acme").await;
    client.get_catalogs().await.expect("a fresh token works");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let error = client.get_catalogs().await.expect_err("expired");
    assert_eq!(code(&error), Code::Unauthenticated);
    assert!(message(&error).contains("expired"), "{}", message(&error));
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_stream_over_parallel_endpoints_and_match_pgwire() {
    let gateway = TestGateway::start().await;
    let pg = gateway.connect("acme").await;
    let expected: i64 = pg
        .query_one(
            "SELECT count(*) FROM tpch.lineitem WHERE l_quantity > 10",
            &[],
        )
        .await
        .expect("pgwire count")
        .get(0);
    let mut client = login(&gateway, "acme").await;
    let info = client
        .execute(
            "SELECT l_orderkey, l_quantity, l_shipdate FROM tpch.lineitem WHERE l_quantity > 10"
                .to_owned(),
            None,
        )
        .await
        .expect("flight info");
    // acme's profile M has parallelism 2 and lineitem is several files: two endpoints.
    assert_eq!(info.endpoint.len(), 2, "{info:?}");
    let schema = info.clone().try_decode_schema().expect("schema");
    assert_eq!(schema.field(2).data_type(), &DataType::Date32);

    // Fetch the endpoints in parallel, as a distributed reader would.
    let mut tasks = Vec::new();
    for endpoint in info.endpoint.clone() {
        let mut reader = client.clone();
        tasks.push(tokio::spawn(async move {
            let ticket = endpoint.ticket.expect("ticket");
            fetch(&mut reader, &ticket).await.expect("do_get")
        }));
    }
    let mut total = 0;
    for task in tasks {
        let batches = task.await.expect("reader");
        assert!(
            batches
                .iter()
                .all(|b| b.schema().fields() == schema.fields())
        );
        total += rows(&batches);
    }
    assert_eq!(i64::try_from(total).expect("rows"), expected);

    // Ordered results come as one endpoint.
    let info = client
        .execute(
            "SELECT n_name FROM tpch.nation ORDER BY n_name DESC LIMIT 3".to_owned(),
            None,
        )
        .await
        .expect("ordered");
    assert_eq!(info.endpoint.len(), 1);
    assert!(info.ordered);
    let names = strings(&fetch_all(&mut client, &info).await, "n_name");
    assert_eq!(names, ["VIETNAM", "UNITED STATES", "UNITED KINGDOM"]);
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickets_only_serve_their_principal() {
    let gateway = TestGateway::start().await;
    let mut acme = login(&gateway, "acme").await;
    let mut globex = login(&gateway, "globex").await;
    let info = acme
        .execute("SELECT c_name FROM tpch.customer".to_owned(), None)
        .await
        .expect("acme's query");
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");

    let error = fetch(&mut globex, &ticket)
        .await
        .expect_err("another tenant's ticket");
    assert_eq!(code(&error), Code::PermissionDenied);
    let error = cancel_flight_info(&mut globex, &info)
        .await
        .expect_err("another tenant's FlightInfo");
    assert_eq!(code(&error), Code::PermissionDenied);

    // An altered ticket is refused: the signature covers every byte of the claims.
    let any = Any::decode(ticket.ticket.clone()).expect("any");
    let statement: TicketStatementQuery = any.unpack().expect("unpack").expect("statement");
    let mut handle = statement.statement_handle.to_vec();
    let position = handle
        .windows(6)
        .position(|w| w == b"\"acme\"")
        .expect("claims name the user");
    handle[position + 1] = b'b';
    let forged = Ticket::new(
        TicketStatementQuery {
            statement_handle: handle.into(),
        }
        .as_any()
        .encode_to_vec(),
    );
    let error = fetch(&mut acme, &forged).await.expect_err("forged");
    assert_eq!(code(&error), Code::PermissionDenied);

    // The rightful principal can redeem a ticket more than once (a retried Spark task).
    for _ in 0..2 {
        assert!(rows(&fetch(&mut acme, &ticket).await.expect("own ticket")) > 0);
    }
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_is_scoped_and_matches_pgwire() {
    let gateway = TestGateway::start().await;
    let mut globex = login(&gateway, "globex").await;

    let info = globex.get_catalogs().await.expect("catalogs");
    let catalogs = strings(&fetch_all(&mut globex, &info).await, "catalog_name");
    assert_eq!(catalogs, ["tollgate"]);

    let pg = gateway.connect("globex").await;
    let pg_schemas: Vec<String> = pg
        .query("SELECT schema_name FROM information_schema.schemata", &[])
        .await
        .expect("schemata")
        .iter()
        .map(|row| row.get(0))
        .collect();
    let info = globex
        .get_db_schemas(CommandGetDbSchemas {
            catalog: None,
            db_schema_filter_pattern: None,
        })
        .await
        .expect("schemas");
    let mut schemas = strings(&fetch_all(&mut globex, &info).await, "db_schema_name");
    let mut expected = pg_schemas.clone();
    schemas.sort();
    expected.sort();
    assert_eq!(schemas, expected);

    let pg_tables: Vec<String> = pg
        .query(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables ORDER BY 1",
            &[],
        )
        .await
        .expect("tables")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(pg_tables, ["tpch.lineitem", "tpch.orders"]);
    let info = globex
        .get_tables(CommandGetTables {
            catalog: Some("tollgate".to_owned()),
            db_schema_filter_pattern: Some("tp%".to_owned()),
            table_name_filter_pattern: None,
            table_types: vec!["TABLE".to_owned()],
            include_schema: true,
        })
        .await
        .expect("tables");
    let batches = fetch_all(&mut globex, &info).await;
    let names: Vec<String> = strings(&batches, "db_schema_name")
        .into_iter()
        .zip(strings(&batches, "table_name"))
        .map(|(schema, table)| format!("{schema}.{table}"))
        .collect();
    assert_eq!(names, pg_tables);
    let schemas = batches[0]
        .column_by_name("table_schema")
        .expect("include_schema")
        .as_any()
        .downcast_ref::<BinaryArray>()
        .expect("binary");
    let orders = Schema::try_from(IpcMessage(schemas.value(1).to_vec().into())).expect("schema");
    assert!(orders.field_with_name("o_orderdate").is_ok());
    assert!(
        orders.field_with_name("o_comment").is_err(),
        "globex is not granted o_comment"
    );

    let info = globex.get_table_types().await.expect("table types");
    assert_eq!(
        strings(&fetch_all(&mut globex, &info).await, "table_type"),
        ["TABLE", "VIEW"]
    );

    let info = globex
        .get_sql_info(vec![
            SqlInfo::FlightSqlServerName,
            SqlInfo::FlightSqlServerReadOnly,
            SqlInfo::SqlIdentifierQuoteChar,
            SqlInfo::SqlKeywords,
        ])
        .await
        .expect("sql info");
    let batches = fetch_all(&mut globex, &info).await;
    assert_eq!(rows(&batches), 4);

    let info = globex
        .get_xdbc_type_info(CommandGetXdbcTypeInfo { data_type: None })
        .await
        .expect("types");
    let types = strings(&fetch_all(&mut globex, &info).await, "type_name");
    for name in ["bigint", "numeric", "text", "date", "timestamp"] {
        assert!(types.iter().any(|t| t == name), "{name} in {types:?}");
    }

    // The keys globex sees: orders' primary key, and lineitem's key to orders; its key to
    // customer (not granted to globex) is not shown.
    let info = globex
        .get_primary_keys(CommandGetPrimaryKeys {
            catalog: None,
            db_schema: Some("tpch".to_owned()),
            table: "orders".to_owned(),
        })
        .await
        .expect("primary keys");
    let keys = fetch_all(&mut globex, &info).await;
    assert_eq!(strings(&keys, "column_name"), ["o_orderkey"]);
    assert_eq!(strings(&keys, "key_name"), ["orders_pkey"]);
    let schema = info.try_decode_schema().expect("schema");
    assert_eq!(schema.field(5).name(), "key_sequence");
    let imported = globex
        .get_imported_keys(CommandGetImportedKeys {
            catalog: None,
            db_schema: Some("tpch".to_owned()),
            table: "orders".to_owned(),
        })
        .await
        .expect("imported keys");
    assert_eq!(rows(&fetch_all(&mut globex, &imported).await), 0);
    let exported = globex
        .get_exported_keys(CommandGetExportedKeys {
            catalog: None,
            db_schema: Some("tpch".to_owned()),
            table: "orders".to_owned(),
        })
        .await
        .expect("exported keys");
    let exported_rows = fetch_all(&mut globex, &exported).await;
    assert_eq!(strings(&exported_rows, "fk_table_name"), ["lineitem"]);
    assert_eq!(strings(&exported_rows, "fk_column_name"), ["l_orderkey"]);
    assert_eq!(strings(&exported_rows, "pk_column_name"), ["o_orderkey"]);
    assert_eq!(
        strings(&exported_rows, "fk_key_name"),
        ["lineitem_l_orderkey_fkey"]
    );
    for info in [imported, exported] {
        let schema = info.try_decode_schema().expect("schema");
        assert_eq!(schema.fields().len(), 13);
    }
    gateway.stop().await;
}

/// `ListFlights` of the caller with `token` (none: anonymous), flights whose name starts
/// with `prefix`.
async fn list_flights(
    gateway: &TestGateway,
    token: Option<&str>,
    prefix: &str,
) -> Result<Vec<FlightInfo>, tonic::Status> {
    let channel = Channel::from_shared(format!("http://{}", gateway.flight_addr()))
        .expect("uri")
        .connect()
        .await
        .expect("connect to Flight");
    let mut request = tonic::Request::new(Criteria {
        expression: prefix.as_bytes().to_vec().into(),
    });
    if let Some(token) = token {
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("ASCII"),
        );
    }
    FlightServiceClient::new(channel)
        .list_flights(request)
        .await?
        .into_inner()
        .try_collect()
        .await
}

/// The query a listed flight's descriptor holds.
fn listed_query(info: &FlightInfo) -> String {
    let descriptor = info.flight_descriptor.as_ref().expect("a descriptor");
    Any::decode(&*descriptor.cmd)
        .expect("an Any")
        .unpack::<CommandStatementQuery>()
        .expect("a statement")
        .expect("a query")
        .query
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_flights_offers_the_callers_datasets_as_the_queries_that_read_them() {
    let gateway = TestGateway::start().await;
    let mut globex = login(&gateway, "globex").await;
    let token = globex.token().expect("a token").clone();
    let flights = list_flights(&gateway, Some(&token), "")
        .await
        .expect("listed");
    let mut queries: Vec<String> = flights.iter().map(listed_query).collect();
    queries.sort();
    assert_eq!(
        queries,
        [
            "SELECT * FROM \"tpch\".\"lineitem\"",
            "SELECT * FROM \"tpch\".\"orders\""
        ],
        "globex's grants only"
    );
    let orders = flights
        .iter()
        .find(|info| listed_query(info).contains("orders"))
        .expect("orders");
    let schema = orders.clone().try_decode_schema().expect("a schema");
    assert!(schema.field_with_name("o_orderkey").is_ok());
    assert!(
        schema.field_with_name("o_comment").is_err(),
        "a column globex is not granted"
    );
    // The descriptor's query reads the dataset.
    let info = globex
        .execute(listed_query(orders), None)
        .await
        .expect("flight info");
    let rows: usize = fetch_all(&mut globex, &info)
        .await
        .iter()
        .map(RecordBatch::num_rows)
        .sum();
    let counted = single_count(&mut globex, "SELECT count(*) FROM tpch.orders").await;
    assert_eq!(rows as i64, counted);

    let prefixed = list_flights(&gateway, Some(&token), "tpch.o")
        .await
        .expect("listed");
    assert_eq!(prefixed.len(), 1);
    let anonymous = list_flights(&gateway, None, "").await.expect_err("refused");
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_bind_parameters() {
    let gateway = TestGateway::start().await;
    let mut client = login(&gateway, "globex").await;
    let literal = single_count(
        &mut client,
        "SELECT count(*) FROM tpch.orders WHERE o_orderdate >= DATE '1997-01-01'",
    )
    .await;
    assert!(literal > 0);

    let mut prepared = client
        .prepare(
            "SELECT count(*) FROM tpch.orders WHERE o_orderdate >= $1".to_owned(),
            None,
        )
        .await
        .expect("prepare");
    assert_eq!(
        prepared.parameter_schema().expect("schema").fields().len(),
        1
    );
    assert_eq!(
        prepared.dataset_schema().expect("schema").field(0).name(),
        "count"
    );
    let parameters = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("0", DataType::Date32, true)])),
        // 1997-01-01
        vec![Arc::new(Date32Array::from(vec![9862]))],
    )
    .expect("parameters");
    prepared.set_parameters(parameters).expect("bind");
    let info = prepared.execute().await.expect("execute");
    let batches = fetch_all(&mut client, &info).await;
    assert_eq!(
        batches[0].column(0).as_primitive::<Int64Type>().value(0),
        literal
    );
    prepared.close().await.expect("close");
    gateway.stop().await;
}

/// A query being read in a task: its FlightInfo and the reader.
type Running = (
    FlightInfo,
    tokio::task::JoinHandle<Result<Vec<RecordBatch>, FlightError>>,
);

/// Starts a query with minutes of work (in small steps that each yield) and reads its one
/// endpoint in a task; returns once it runs.
async fn start_endless(client: &mut Client) -> Running {
    start_reading(
        client,
        "SELECT count(*) FROM generate_series(1, 100000000000)",
        Duration::from_millis(500),
    )
    .await
}

/// Starts `sql` and reads its one endpoint in a task; returns after `under_way`.
async fn start_reading(client: &mut Client, sql: &str, under_way: Duration) -> Running {
    let info = client
        .execute(sql.to_owned(), None)
        .await
        .expect("flight info");
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let mut reader = client.clone();
    let running = tokio::spawn(async move { fetch(&mut reader, &ticket).await });
    tokio::time::sleep(under_way).await;
    (info, running)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_flight_info_stops_a_join_that_rejects_every_pair_within_a_second() {
    let gateway = TestGateway::start().await;
    let mut client = login(&gateway, "acme").await;
    let (info, running) = start_reading(
        &mut client,
        "SELECT count(*) FROM tpch.lineitem a, tpch.lineitem b \
         WHERE a.l_quantity + b.l_quantity > 1000",
        Duration::from_secs(1),
    )
    .await;
    let stopped = Instant::now();
    let status = cancel_flight_info(&mut client, &info)
        .await
        .expect("cancel");
    assert_eq!(status, CancelStatus::Cancelled);
    let error = running.await.expect("reader").expect_err("cancelled");
    assert_eq!(code(&error), Code::Cancelled, "{error}");
    let idle = tollgate_tests::cpu::idle_after(stopped).await;
    assert!(idle <= Duration::from_millis(1_200), "busy for {idle:?}");
    let pg = gateway.connect("acme").await;
    assert_eq!(listed_queries(&pg).await, 0);
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_flight_info_stops_the_query() {
    let gateway = TestGateway::start().await;
    let mut client = login(&gateway, "acme").await;
    let (info, running) = start_endless(&mut client).await;
    let started = Instant::now();
    let status = cancel_flight_info(&mut client, &info)
        .await
        .expect("cancel");
    assert_eq!(status, CancelStatus::Cancelled);
    let error = running
        .await
        .expect("reader")
        .expect_err("the query is cancelled");
    assert_eq!(code(&error), Code::Cancelled, "{error}");
    assert!(started.elapsed() < Duration::from_secs(10));

    // Endpoints of a cancelled query are refused.
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let error = fetch(&mut client, &ticket).await.expect_err("cancelled");
    assert_eq!(code(&error), Code::Cancelled);

    // The older CancelQuery action works the same way.
    let (info, running) = start_endless(&mut client).await;
    let request = ActionCancelQueryRequest {
        info: info.encode_to_vec().into(),
    };
    action(&mut client, "CancelQuery", request.as_any().encode_to_vec())
        .await
        .expect("cancel query");
    let error = running.await.expect("reader").expect_err("cancelled");
    assert_eq!(code(&error), Code::Cancelled);
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_fetched_after_its_query_was_cancelled_is_recorded_as_cancelled() {
    let gateway = TestGateway::start_with(|options| options.usage.record_sql_text = true).await;
    let mut client = login(&gateway, "acme").await;
    let info = client
        .execute(
            "SELECT count(*) AS cancelled_before_fetch FROM tpch.lineitem".to_owned(),
            None,
        )
        .await
        .expect("flight info");
    let status = cancel_flight_info(&mut client, &info)
        .await
        .expect("cancel");
    assert_eq!(status, CancelStatus::Cancelled);
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let error = fetch(&mut client, &ticket).await.expect_err("cancelled");
    assert_eq!(code(&error), Code::Cancelled, "{error}");
    assert!(message(&error).contains("canceling statement"), "{error}");

    // Like any cancelled query, it has its record: cancelled, nothing returned or scanned.
    let pg = gateway.connect("acme").await;
    let rows = pg
        .query(
            "SELECT outcome, sqlstate, rows_returned, bytes_scanned FROM tollgate.usage_records \
             WHERE protocol = 'flight_sql' AND sql_text LIKE '%cancelled_before_fetch%'",
            &[],
        )
        .await
        .expect("usage records");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, String>(0), "cancelled");
    assert_eq!(
        rows[0].get::<_, Option<String>>(1).as_deref(),
        Some("57014")
    );
    assert_eq!(rows[0].get::<_, i64>(2), 0);
    assert_eq!(rows[0].get::<_, i64>(3), 0);
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_map_to_grpc_codes() {
    let gateway = TestGateway::start().await;
    let mut globex = login(&gateway, "globex").await;
    let cases = [
        ("SELEC 1", Code::InvalidArgument, "syntax"),
        (
            "SELECT * FROM tpch.customer",
            Code::NotFound,
            "relation \"tpch.customer\" does not exist",
        ),
        (
            "SELECT o_comment FROM tpch.orders",
            Code::NotFound,
            "o_comment",
        ),
        ("DELETE FROM tpch.orders", Code::PermissionDenied, "DELETE"),
        (
            "SELECT 1; SELECT 2",
            Code::InvalidArgument,
            "exactly one statement",
        ),
    ];
    for (sql, expected, text) in cases {
        let error = globex.execute(sql.to_owned(), None).await.expect_err(sql);
        assert_eq!(code(&error), expected, "{sql}: {error}");
        assert!(message(&error).contains(text), "{sql}: {}", message(&error));
    }
    let info = globex
        .execute(
            "SELECT 1 / (o_orderkey - o_orderkey) FROM tpch.orders".to_owned(),
            None,
        )
        .await
        .expect("plans");
    let error = fetch(
        &mut globex,
        info.endpoint[0].ticket.as_ref().expect("ticket"),
    )
    .await
    .expect_err("division by zero");
    assert_eq!(code(&error), Code::InvalidArgument, "{error}");
    let error = globex
        .execute_update("DELETE FROM tpch.orders".to_owned(), None)
        .await
        .expect_err("updates");
    assert_eq!(code(&error), Code::PermissionDenied);
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_from_the_configuration() {
    let certificate = TestCertificate::generate();
    let gateway = TestGateway::start_with(|options| {
        let flight = options.flight.as_mut().expect("flight is configured");
        flight.tls = Some(certificate.tls_options(true));
    })
    .await;
    let uri = format!("https://localhost:{}", gateway.flight_addr().port());

    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(certificate.cert_pem()))
        .domain_name("localhost");
    let channel = Channel::from_shared(uri.clone())
        .expect("uri")
        .tls_config(tls)
        .expect("tls config")
        .connect()
        .await
        .expect("connect over TLS");
    let mut client = FlightSqlServiceClient::new(channel);
    client.handshake("acme", "acme").await.expect("handshake");
    assert_eq!(
        single_count(&mut client, "SELECT count(*) FROM tpch.region").await,
        5
    );

    // A plaintext client gets nowhere.
    let plain = Channel::from_shared(format!("http://{}", gateway.flight_addr()))
        .expect("uri")
        .connect()
        .await;
    if let Ok(channel) = plain {
        let mut client = FlightSqlServiceClient::new(channel);
        assert!(client.handshake("globex", "globex").await.is_err());
    }
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_sharing_a_signing_key_accept_each_others_tokens_and_tickets() {
    let key = "c2hhcmVkIGtleSBvZiB0d28gZ2F0ZXdheXMsIDMyIGJ5dGVzIG9yIG1vcmU=";
    let with_key = |options: &mut tollgate_catalog::TollgateOptions| {
        let flight = options.flight.as_mut().expect("flight is configured");
        flight.signing_key = Some(key.to_owned());
    };
    let first = TestGateway::start_with(with_key).await;
    let second = TestGateway::start_with(with_key).await;
    let third = TestGateway::start().await;

    let mut on_first = login(&first, "acme").await;
    let info = on_first
        .execute("SELECT r_name FROM tpch.region".to_owned(), None)
        .await
        .expect("flight info");
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let token = on_first.token().cloned().expect("token");

    let mut on_second = connect(&second).await;
    on_second.set_token(token.clone());
    let batches = fetch(&mut on_second, &ticket)
        .await
        .expect("redeemed on another node");
    assert_eq!(rows(&batches), 5);

    let mut on_third = connect(&third).await;
    on_third.set_token(token);
    let error = on_third.get_catalogs().await.expect_err("another key");
    assert_eq!(code(&error), Code::Unauthenticated);
    for gateway in [first, second, third] {
        gateway.stop().await;
    }
}

/// How many queries the tenant of `pg` has running or queued.
async fn listed_queries(pg: &tokio_postgres::Client) -> i64 {
    pg.query_one("SELECT count(*) FROM tollgate.queries", &[])
        .await
        .expect("tollgate.queries")
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_do_get_stream_stops_its_query() {
    let gateway = TestGateway::start().await;
    let mut client = login(&gateway, "acme").await;
    let pg = gateway.connect("acme").await;
    let (_, reader) = start_endless(&mut client).await;
    assert_eq!(listed_queries(&pg).await, 1, "the DoGet's query is listed");
    reader.abort();
    let started = Instant::now();
    while listed_queries(&pg).await != 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the query ends when its stream is dropped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gateway.stop().await;
}
