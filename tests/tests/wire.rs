//! The Postgres wire protocol with a real driver (tokio-postgres): authentication, TLS,
//! simple and extended query protocol, text and binary results, portals, cursors, cancel.

use std::time::Duration;

use chrono::NaiveDate;
use tokio_postgres::NoTls;
use tokio_postgres::types::Type;
use tollgate_tests::{TestCertificate, TestGateway, message, sqlstate};

#[tokio::test]
async fn extended_protocol_with_typed_parameters_and_binary_results() {
    let gateway = TestGateway::start().await;
    let acme = gateway.connect("acme").await;
    // tokio-postgres prepares every statement and reads results in binary.
    let statement = acme
        .prepare("SELECT o_orderkey, o_totalprice, o_orderdate, o_orderstatus FROM tpch.orders WHERE o_orderkey = $1")
        .await
        .expect("prepare");
    assert_eq!(statement.params(), &[Type::INT8]);
    let types: Vec<Type> = statement
        .columns()
        .iter()
        .map(|c| c.type_().clone())
        .collect();
    assert_eq!(
        types,
        vec![Type::INT8, Type::NUMERIC, Type::DATE, Type::TEXT]
    );
    let row = acme.query_one(&statement, &[&1i64]).await.expect("order 1");
    let key: i64 = row.get(0);
    let date: NaiveDate = row.get(2);
    assert_eq!(key, 1);
    assert!(date.to_string().starts_with("199"));
    let rows = acme
        .query(&statement, &[&-1i64])
        .await
        .expect("no such order");
    assert!(rows.is_empty());
}

#[tokio::test]
async fn simple_protocol_text_results_and_several_statements() {
    let gateway = TestGateway::start().await;
    let acme = gateway.connect("acme").await;
    let messages = acme
        .simple_query(
            "SELECT r_name FROM tpch.region ORDER BY r_regionkey LIMIT 2; SELECT 1 + 1 AS two",
        )
        .await
        .expect("two statements");
    let rows: Vec<String> = messages
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        })
        .collect();
    assert_eq!(rows, vec!["AFRICA", "AMERICA", "2"]);
    let version = acme
        .simple_query("SELECT version()")
        .await
        .expect("version");
    let tokio_postgres::SimpleQueryMessage::Row(row) = &version[1] else {
        panic!("no row: {version:?}")
    };
    assert!(row.get(0).is_some_and(|v| v.starts_with("PostgreSQL ")));
}

#[tokio::test]
async fn portals_stream_in_pieces() {
    let gateway = TestGateway::start().await;
    let mut acme = gateway.connect("acme").await;
    let transaction = acme.transaction().await.expect("BEGIN");
    let statement = transaction
        .prepare("SELECT l_orderkey FROM tpch.lineitem")
        .await
        .expect("prepare");
    let portal = transaction.bind(&statement, &[]).await.expect("bind");
    let first = transaction
        .query_portal(&portal, 100)
        .await
        .expect("first 100 rows");
    assert_eq!(first.len(), 100);
    let second = transaction
        .query_portal(&portal, 50)
        .await
        .expect("next 50");
    assert_eq!(second.len(), 50);
    transaction.commit().await.expect("COMMIT");
}

#[tokio::test]
async fn session_chatter_is_answered_by_the_front_end() {
    let gateway = TestGateway::start().await;
    let acme = gateway.connect("acme").await;
    acme.batch_execute("SET application_name = 'report'; SET TimeZone TO 'UTC'; BEGIN READ ONLY; COMMIT; DISCARD ALL")
        .await
        .expect("chatter");
    acme.batch_execute("SET extra_float_digits = 3")
        .await
        .expect("JDBC's setting");
    let shown = acme
        .simple_query("SHOW extra_float_digits")
        .await
        .expect("SHOW");
    let tokio_postgres::SimpleQueryMessage::Row(row) = &shown[1] else {
        panic!("{shown:?}")
    };
    assert_eq!(row.get(0), Some("3"));
    let error = acme
        .batch_execute("SET no_such_parameter = 1")
        .await
        .expect_err("unknown");
    assert_eq!(sqlstate(&error), "42704");
}

#[tokio::test]
async fn drivers_connection_housekeeping_is_answered() {
    let gateway = TestGateway::start().await;
    let acme = gateway.connect("acme").await;
    // SQLAlchemy, Metabase and DataGrip ask at connect; over both protocols.
    let shown = acme
        .simple_query("SHOW TRANSACTION ISOLATION LEVEL")
        .await
        .expect("SHOW");
    let tokio_postgres::SimpleQueryMessage::Row(row) = &shown[1] else {
        panic!("{shown:?}")
    };
    assert_eq!(row.columns()[0].name(), "transaction_isolation");
    assert_eq!(row.get(0), Some("read committed"));
    let level: String = acme
        .query_one("show transaction isolation level", &[])
        .await
        .expect("extended SHOW")
        .get(0);
    assert_eq!(level, "read committed");
    // asyncpg resets a pooled connection with this batch; psqlODBC deallocates its plans.
    acme.batch_execute("SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;")
        .await
        .expect("asyncpg's reset");
    acme.batch_execute("DEALLOCATE \"_PLAN0x1\"; DEALLOCATE ALL")
        .await
        .expect("DEALLOCATE");
    let regions: i64 = acme
        .query_one("SELECT count(*) FROM tpch.region", &[])
        .await
        .expect("still serving")
        .get(0);
    assert_eq!(regions, 5);
}

/// The `o_orderkey`s a simple-protocol statement returned.
fn keys(messages: &[tokio_postgres::SimpleQueryMessage]) -> Vec<i64> {
    messages
        .iter()
        .filter_map(|message| match message {
            tokio_postgres::SimpleQueryMessage::Row(row) => {
                Some(row.get(0).expect("a key").parse().expect("an integer"))
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn cursors_fetch_forward_in_pieces_and_close_with_their_transaction() {
    let gateway = TestGateway::start().await;
    let acme = gateway.connect("acme").await;
    let all: Vec<i64> = acme
        .query(
            "SELECT o_orderkey FROM tpch.orders WHERE o_orderkey < 200 ORDER BY o_orderkey",
            &[],
        )
        .await
        .expect("the orders")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(all.len() > 20, "{}", all.len());

    // Simple protocol: pieces of the result, in order, then nothing.
    acme.batch_execute(
        "BEGIN; DECLARE c CURSOR FOR SELECT o_orderkey FROM tpch.orders \
         WHERE o_orderkey < 200 ORDER BY o_orderkey",
    )
    .await
    .expect("DECLARE");
    let first = keys(&acme.simple_query("FETCH 5 FROM c").await.expect("FETCH 5"));
    let next = keys(
        &acme
            .simple_query("FETCH FORWARD 10 FROM c")
            .await
            .expect("FETCH FORWARD 10"),
    );
    // Extended protocol (binary results): one more row.
    let one: Vec<i64> = acme
        .query("FETCH NEXT FROM c", &[])
        .await
        .expect("FETCH NEXT")
        .iter()
        .map(|row| row.get(0))
        .collect();
    let rest = keys(
        &acme
            .simple_query("FETCH ALL IN c")
            .await
            .expect("FETCH ALL"),
    );
    let after = keys(
        &acme
            .simple_query("FETCH 5 FROM c")
            .await
            .expect("at the end"),
    );
    assert_eq!(first, all[..5]);
    assert_eq!(next, all[5..15]);
    assert_eq!(one, all[15..16]);
    assert_eq!(rest, all[16..]);
    assert!(after.is_empty());
    let error = acme
        .simple_query("FETCH BACKWARD 1 FROM c")
        .await
        .expect_err("forward only");
    assert_eq!(sqlstate(&error), "55000");
    acme.batch_execute("ROLLBACK").await.expect("ROLLBACK");

    // A second cursor of the same name is refused; COMMIT closes cursors without hold.
    acme.batch_execute("BEGIN; DECLARE c CURSOR FOR SELECT 1")
        .await
        .expect("DECLARE again");
    let error = acme
        .batch_execute("DECLARE c CURSOR FOR SELECT 2")
        .await
        .expect_err("a duplicate cursor");
    assert_eq!(sqlstate(&error), "42P03");
    acme.batch_execute("ROLLBACK").await.expect("ROLLBACK");
    let error = acme
        .simple_query("FETCH 1 FROM c")
        .await
        .expect_err("closed with its transaction");
    assert_eq!(sqlstate(&error), "34000");

    // WITH HOLD, declared with a bound parameter, outlives COMMIT until CLOSE.
    acme.batch_execute("BEGIN").await.expect("BEGIN");
    acme.execute(
        "DECLARE held CURSOR WITH HOLD FOR \
         SELECT o_orderkey FROM tpch.orders WHERE o_orderkey < $1 ORDER BY o_orderkey",
        &[&40_i64],
    )
    .await
    .expect("DECLARE with a parameter");
    acme.batch_execute("COMMIT").await.expect("COMMIT");
    let held = keys(
        &acme
            .simple_query("FETCH ALL FROM held")
            .await
            .expect("held"),
    );
    let expected: Vec<i64> = all.iter().copied().filter(|key| *key < 40).collect();
    assert_eq!(held, expected);
    acme.batch_execute("CLOSE held").await.expect("CLOSE");
    let error = acme
        .batch_execute("CLOSE held")
        .await
        .expect_err("closed already");
    assert_eq!(sqlstate(&error), "34000");
}

#[tokio::test]
async fn intervals_are_sent_in_postgres_style() {
    let gateway = TestGateway::start().await;
    let acme = gateway.connect("acme").await;
    let rows = acme
        .simple_query("SELECT INTERVAL '1 year 2 months 3 days 4 hours 5 minutes 6.5 seconds'")
        .await
        .expect("an interval");
    let tokio_postgres::SimpleQueryMessage::Row(row) = &rows[1] else {
        panic!("{rows:?}")
    };
    assert_eq!(row.get(0), Some("1 year 2 mons 3 days 04:05:06.5"));
}

#[tokio::test]
async fn parameters_take_the_type_they_are_cast_to() {
    let gateway = TestGateway::start().await;
    let acme = gateway.connect("acme").await;
    let statement = acme
        .prepare("SELECT $1::bigint, $2::date, o_orderkey FROM tpch.orders WHERE o_orderkey = $3")
        .await
        .expect("prepare");
    assert_eq!(statement.params(), &[Type::INT8, Type::DATE, Type::INT8]);
    let date = NaiveDate::from_ymd_opt(2024, 2, 29).expect("a date");
    let row = acme
        .query_one(&statement, &[&7_i64, &date, &1_i64])
        .await
        .expect("bound by their types");
    assert_eq!(row.get::<_, i64>(0), 7);
    assert_eq!(row.get::<_, NaiveDate>(1), date);
}

#[tokio::test]
async fn described_columns_are_the_types_of_the_rows() {
    let gateway = TestGateway::start().await;
    let acme = gateway.connect("acme").await;
    // psqlODBC's SQLColumns: int4 and an integer literal meet in a CASE and come back as
    // int8; the extended protocol describes the column before the rows exist.
    let row = acme
        .query_one(
            "SELECT CASE t.typtype WHEN 'd' THEN t.typbasetype ELSE 0 END AS base \
             FROM pg_catalog.pg_type t WHERE t.typname = 'int4'",
            &[],
        )
        .await
        .expect("described as it is returned");
    assert_eq!(row.get::<_, i64>("base"), 0);
}

#[tokio::test]
async fn writes_and_ddl_are_refused() {
    let gateway = TestGateway::start().await;
    let acme = gateway.connect("acme").await;
    for sql in [
        "INSERT INTO tpch.region VALUES (9, 'MARS', '')",
        "DELETE FROM tpch.orders",
        "CREATE TABLE t (a int)",
        "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '/etc'",
        "COPY tpch.region TO '/tmp/region.csv'",
        "DROP TABLE tpch.region",
    ] {
        let error = acme.simple_query(sql).await.expect_err(sql);
        let code = sqlstate(&error);
        assert!(
            code == "42501" || code == "0A000",
            "{sql}: {code} {error:?}"
        );
    }
    // The connection still works.
    acme.simple_query("SELECT 1").await.expect("still serving");
}

#[tokio::test]
async fn wrong_password_and_unknown_user_fail_alike() {
    let gateway = TestGateway::start().await;
    let addr = gateway.addr();
    let wrong = gateway
        .try_connect(&format!(
            "host=127.0.0.1 port={} dbname=tollgate user=acme password=nope",
            addr.port()
        ))
        .await
        .expect_err("wrong password");
    let unknown = gateway
        .try_connect(&format!(
            "host=127.0.0.1 port={} dbname=tollgate user=nobody password=nope",
            addr.port()
        ))
        .await
        .expect_err("unknown user");
    assert_eq!(sqlstate(&wrong), "28P01");
    assert_eq!(sqlstate(&unknown), "28P01");
    let wrong_message = wrong
        .as_db_error()
        .map(|e| e.message().replace("acme", "U"));
    let unknown_message = unknown
        .as_db_error()
        .map(|e| e.message().replace("nobody", "U"));
    assert_eq!(wrong_message, unknown_message);

    let database = gateway
        .try_connect(&format!(
            "host=127.0.0.1 port={} dbname=other user=acme password=acme",
            addr.port()
        ))
        .await
        .expect_err("unknown database");
    assert_eq!(sqlstate(&database), "3D000");
}

#[tokio::test]
async fn repeated_failures_are_throttled() {
    let gateway = TestGateway::start_with(|options| options.auth.max_failures = 2).await;
    let bad = format!(
        "host=127.0.0.1 port={} dbname=tollgate user=globex password=guess",
        gateway.addr().port()
    );
    for _ in 0..2 {
        let error = gateway.try_connect(&bad).await.expect_err("wrong password");
        assert_eq!(sqlstate(&error), "28P01");
    }
    let locked = gateway
        .try_connect(&gateway.conninfo("globex"))
        .await
        .expect_err("locked out even with the right password");
    assert_eq!(sqlstate(&locked), "28000");
    assert!(
        message(&locked).contains("too many failed login attempts"),
        "{locked:?}"
    );
    // Another user from the same address is not affected.
    gateway.connect("acme").await;
}

#[tokio::test]
async fn the_connection_limit_answers_53300_and_frees_slots() {
    let gateway = TestGateway::start_with(|options| options.pg.max_connections = 2).await;
    let first = gateway.connect("acme").await;
    let _second = gateway.connect("globex").await;
    let refused = gateway
        .try_connect(&gateway.conninfo("acme"))
        .await
        .expect_err("third connection");
    assert_eq!(sqlstate(&refused), "53300");
    drop(first);
    // The slot is freed when the first connection closes.
    let mut attempts = 0;
    loop {
        match gateway.try_connect(&gateway.conninfo("acme")).await {
            Ok(_) => break,
            Err(error) if attempts < 50 => {
                assert_eq!(sqlstate(&error), "53300");
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => panic!("slot never freed: {error}"),
        }
    }
}

#[tokio::test]
async fn cancel_request_stops_a_running_query() {
    let gateway = TestGateway::start().await;
    let acme = gateway.connect("acme").await;
    let cancel = acme.cancel_token();
    let slow = tokio::spawn(async move {
        acme.simple_query("SELECT count(*) FROM tpch.lineitem a CROSS JOIN tpch.lineitem b WHERE a.l_orderkey + b.l_orderkey < 0")
            .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    cancel
        .cancel_query(NoTls)
        .await
        .expect("send CancelRequest");
    let result = tokio::time::timeout(Duration::from_secs(20), slow)
        .await
        .expect("cancelled in time")
        .expect("task");
    let error = result.expect_err("the query was cancelled");
    assert_eq!(sqlstate(&error), "57014");
}

#[tokio::test]
async fn statement_timeout_of_the_profile_applies() {
    let gateway = TestGateway::start_with(|options| {
        if let Some(profile) = options.profiles.get_mut("S") {
            profile.statement_timeout = tollgate_catalog::HumanDuration(Duration::from_millis(300));
        }
    })
    .await;
    let globex = gateway.connect("globex").await;
    let error = globex
        .simple_query("SELECT count(*) FROM tpch.lineitem a CROSS JOIN tpch.lineitem b WHERE a.l_orderkey + b.l_orderkey < 0")
        .await
        .expect_err("times out");
    assert_eq!(sqlstate(&error), "57014");
    assert!(message(&error).contains("statement timeout"), "{error:?}");
    assert!(message(&error).contains("profile S"), "{error:?}");
}

#[tokio::test]
async fn tls_with_scram_and_required_tls() {
    let certificate = TestCertificate::generate();
    let gateway = TestGateway::start_with(|options| {
        options.pg.tls = Some(certificate.tls_options(true));
    })
    .await;

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(certificate.cert_der())
        .expect("trust the test certificate");
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(config);
    let conninfo = format!(
        "host=localhost port={} dbname=tollgate user=acme password=acme sslmode=require",
        gateway.addr().port()
    );
    let (client, connection) = tokio_postgres::connect(&conninfo, tls)
        .await
        .expect("TLS + SCRAM");
    tokio::spawn(connection);
    let row = client
        .query_one("SELECT count(*) FROM tpch.region", &[])
        .await
        .expect("query over TLS");
    assert_eq!(row.get::<_, i64>(0), 5);

    let plain = gateway
        .try_connect(&gateway.conninfo("acme"))
        .await
        .expect_err("plain TCP refused");
    assert_eq!(sqlstate(&plain), "28000");
}

/// The text of `COPY … TO STDOUT` as `user`.
async fn copy_out(
    gateway: &TestGateway,
    user: &str,
    sql: &str,
) -> Result<String, tokio_postgres::Error> {
    use futures::TryStreamExt;
    let client = gateway.connect(user).await;
    let stream = client.copy_out(sql).await?;
    let chunks: Vec<bytes::Bytes> = stream.try_collect().await?;
    Ok(chunks
        .iter()
        .map(|chunk| String::from_utf8_lossy(chunk))
        .collect())
}

#[tokio::test]
async fn a_dataset_is_copied_to_the_client_as_its_query_would_be() {
    let gateway = TestGateway::start().await;
    let whole = copy_out(&gateway, "acme", "COPY tpch.region TO STDOUT")
        .await
        .expect("copy a dataset");
    let query = copy_out(
        &gateway,
        "acme",
        "COPY (SELECT * FROM tpch.region) TO STDOUT",
    )
    .await
    .expect("copy a query");
    let mut whole_lines: Vec<&str> = whole.lines().collect();
    let mut query_lines: Vec<&str> = query.lines().collect();
    whole_lines.sort_unstable();
    query_lines.sort_unstable();
    assert_eq!(whole_lines, query_lines);
    assert_eq!(whole_lines.len(), 5);
    let csv = copy_out(
        &gateway,
        "acme",
        "COPY tpch.region (r_regionkey, r_name) TO STDOUT WITH (FORMAT csv, HEADER)",
    )
    .await
    .expect("copy columns as CSV");
    assert_eq!(csv.lines().next(), Some("r_regionkey,r_name"));
    assert!(csv.lines().any(|line| line == "0,AFRICA"), "{csv}");
    // Scoped as queries are: a hidden column does not exist, another tenant's rows are not copied.
    let hidden = copy_out(&gateway, "globex", "COPY tpch.orders (o_comment) TO STDOUT")
        .await
        .expect_err("o_comment is not granted to globex");
    assert_eq!(sqlstate(&hidden), "42703", "{hidden:?}");
    let globex = copy_out(
        &gateway,
        "globex",
        "COPY tpch.orders (o_orderdate) TO STDOUT",
    )
    .await
    .expect("globex's orders");
    assert!(
        globex.lines().all(|date| date >= "1995-01-01"),
        "globex sees orders from 1995 on"
    );
    // A file is still no target.
    let file = copy_out(&gateway, "acme", "COPY tpch.region TO '/tmp/region.csv'")
        .await
        .expect_err("a file");
    assert_eq!(sqlstate(&file), "42501", "{file:?}");
}

#[tokio::test]
async fn client_encoding_is_normalised_to_utf8_and_other_encodings_are_refused() {
    let gateway = TestGateway::start().await;
    let acme = gateway.connect("acme").await;
    async fn show(client: &tokio_postgres::Client) -> String {
        let row = client
            .query_one("SHOW client_encoding", &[])
            .await
            .expect("show");
        row.get(0)
    }
    for name in ["utf-8", "Unicode", "utf8"] {
        acme.batch_execute(&format!("SET client_encoding = '{name}'"))
            .await
            .expect(name);
        assert_eq!(show(&acme).await, "UTF8", "{name}");
    }
    let error = acme
        .batch_execute("SET client_encoding = 'LATIN1'")
        .await
        .expect_err("only UTF-8 is served");
    assert_eq!(sqlstate(&error), "22023", "{error:?}");
    assert_eq!(show(&acme).await, "UTF8");
}

#[tokio::test]
async fn a_failed_transaction_block_refuses_statements_until_it_ends() {
    let gateway = TestGateway::start().await;
    let acme = gateway.connect("acme").await;
    async fn one(client: &tokio_postgres::Client) -> Result<i64, tokio_postgres::Error> {
        let row = client.query_one("SELECT 1::bigint", &[]).await?;
        Ok(row.get(0))
    }
    // Simple protocol: the error aborts the block; COMMIT then rolls back.
    acme.batch_execute("BEGIN").await.expect("begin");
    let error = acme
        .batch_execute("SELECT * FROM tpch.nosuch")
        .await
        .expect_err("no such dataset");
    assert_eq!(sqlstate(&error), "42P01");
    let aborted = acme.batch_execute("SELECT 1").await.expect_err("aborted");
    assert_eq!(sqlstate(&aborted), "25P02", "{aborted:?}");
    // Extended protocol too.
    let aborted = one(&acme).await.expect_err("aborted");
    assert_eq!(sqlstate(&aborted), "25P02", "{aborted:?}");
    let ended = acme.simple_query("COMMIT").await.expect("commit");
    assert!(
        matches!(
            ended.first(),
            Some(tokio_postgres::SimpleQueryMessage::CommandComplete(_))
        ),
        "{ended:?}"
    );
    assert_eq!(one(&acme).await.expect("out of the block"), 1);
    // A savepoint taken before the failure: the block goes on after ROLLBACK TO.
    acme.batch_execute("BEGIN; SAVEPOINT before_failure")
        .await
        .expect("begin");
    acme.batch_execute("SELECT 1/0")
        .await
        .expect_err("division by zero");
    acme.batch_execute("ROLLBACK TO SAVEPOINT before_failure")
        .await
        .expect("back to the savepoint");
    assert_eq!(one(&acme).await.expect("the block goes on"), 1);
    acme.batch_execute("COMMIT").await.expect("commit");
    // A transaction of tokio-postgres's own rolls back after an error, as against PostgreSQL.
    let mut acme = acme;
    let transaction = acme.transaction().await.expect("a transaction");
    transaction
        .query("SELECT * FROM tpch.nosuch", &[])
        .await
        .expect_err("no such dataset");
    let aborted = transaction
        .query("SELECT 1", &[])
        .await
        .expect_err("aborted");
    assert_eq!(sqlstate(&aborted), "25P02");
    transaction.rollback().await.expect("rollback");
    assert_eq!(one(&acme).await.expect("after the rollback"), 1);
}

#[tokio::test]
async fn relation_names_cast_to_regclass_are_found_as_postgresql_finds_them() {
    let gateway = TestGateway::start().await;
    let acme = gateway.connect("acme").await;
    let oid: i32 = acme
        .query_one("SELECT 'tpch.orders'::regclass::int4", &[])
        .await
        .expect("a granted dataset's oid")
        .get(0);
    let listed: i32 = acme
        .query_one(
            "SELECT c.oid::int4 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n \
             ON n.oid = c.relnamespace WHERE n.nspname = 'tpch' AND c.relname = 'orders'",
            &[],
        )
        .await
        .expect("the oid pg_class lists")
        .get(0);
    assert_eq!(oid, listed);
    // In a catalog query too, and `pg_class` is found in pg_catalog before the path.
    let columns: i64 = acme
        .query_one(
            "SELECT count(*) FROM pg_catalog.pg_attribute \
             WHERE attrelid = 'tpch.orders'::regclass AND attnum > 0",
            &[],
        )
        .await
        .expect("the dataset's columns")
        .get(0);
    assert_eq!(columns, 9);
    let descriptions: i64 = acme
        .query_one(
            "SELECT count(*) FROM pg_catalog.pg_description \
             WHERE classoid = 'pg_class'::regclass AND objoid = 'tpch.orders'::regclass",
            &[],
        )
        .await
        .expect("pg_class's own oid")
        .get(0);
    assert!(descriptions >= 1, "the demo describes tpch.orders");

    // A name that finds no relation is 42P01, in data and catalog queries alike, and so is
    // a dataset of another tenant's or a name off the search path.
    let globex = gateway.connect("globex").await;
    for (client, sql, name) in [
        (&acme, "SELECT 'tpch.nosuch'::regclass", "tpch.nosuch"),
        (
            &acme,
            "SELECT count(*) FROM pg_catalog.pg_attribute WHERE attrelid = 'tpch.nosuch'::regclass",
            "tpch.nosuch",
        ),
        (&globex, "SELECT 'tpch.customer'::regclass", "tpch.customer"),
        (&acme, "SELECT 'orders'::regclass", "orders"),
    ] {
        let error = client.query_one(sql, &[]).await.expect_err(sql);
        assert_eq!(sqlstate(&error), "42P01", "{sql}: {}", message(&error));
        assert_eq!(
            message(&error),
            format!("relation \"{name}\" does not exist"),
            "{sql}"
        );
    }
    acme.batch_execute("SET search_path = tpch")
        .await
        .expect("set");
    let unqualified: i32 = acme
        .query_one("SELECT 'orders'::regclass::int4", &[])
        .await
        .expect("found on the path")
        .get(0);
    assert_eq!(unqualified, oid);
    gateway.stop().await;
}

#[tokio::test]
async fn unqualified_names_and_visibility_follow_the_search_path() {
    let gateway = TestGateway::start().await;
    let acme = gateway.connect("acme").await;
    let error = acme
        .query_one("SELECT count(*) FROM orders", &[])
        .await
        .expect_err("tpch is not on the default search_path");
    assert_eq!(sqlstate(&error), "42P01", "{}", message(&error));
    let schema: Option<String> = acme
        .query_one("SELECT current_schema()", &[])
        .await
        .expect("current_schema")
        .get(0);
    assert_eq!(schema.as_deref(), Some("public"));
    let visible = "SELECT pg_table_is_visible('tpch.orders'::regclass), \
                   pg_table_is_visible('pg_catalog.pg_class'::regclass)";
    let row = acme.query_one(visible, &[]).await.expect("visibility");
    assert_eq!(
        (row.get::<_, bool>(0), row.get::<_, bool>(1)),
        (false, true),
        "tpch is not on the path; pg_catalog always is"
    );

    acme.batch_execute("SET search_path = nosuch, TPCH, public")
        .await
        .expect("set");
    let qualified: i64 = acme
        .query_one("SELECT count(*) FROM tpch.orders", &[])
        .await
        .expect("qualified")
        .get(0);
    let unqualified: i64 = acme
        .query_one("SELECT count(*) FROM orders", &[])
        .await
        .expect("unqualified, in the simple and the extended protocol")
        .get(0);
    assert_eq!(qualified, unqualified);
    let row = acme
        .query_one("SELECT current_schema(), current_schemas(true)", &[])
        .await
        .expect("the path as PostgreSQL reports it");
    assert_eq!(row.get::<_, Option<String>>(0).as_deref(), Some("tpch"));
    assert_eq!(
        row.get::<_, Vec<String>>(1),
        ["pg_catalog", "tpch", "public"]
    );
    let row = acme.query_one(visible, &[]).await.expect("visibility");
    assert!(
        row.get::<_, bool>(0),
        "tpch.orders is found by its name now"
    );
    // Catalog relations still resolve, and a name the tenant is not granted still does not.
    acme.query_one("SELECT count(*) FROM pg_class", &[])
        .await
        .expect("pg_catalog comes first");
    let globex = gateway.connect("globex").await;
    globex
        .batch_execute("SET search_path = tpch")
        .await
        .expect("set");
    let error = globex
        .query_one("SELECT count(*) FROM customer", &[])
        .await
        .expect_err("not granted to globex");
    assert_eq!(sqlstate(&error), "42P01", "{}", message(&error));
    gateway.stop().await;
}

#[tokio::test]
async fn typed_literals_are_named_by_their_type_and_age_is_symbolic() {
    let gateway = TestGateway::start().await;
    let acme = gateway.connect("acme").await;
    let statement = acme
        .prepare("SELECT DATE '2024-01-01', TIMESTAMP '2024-01-01 10:30:00', INTERVAL '1 day'")
        .await
        .expect("typed literals");
    let names: Vec<&str> = statement.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["date", "timestamp", "interval"]);
    // PostgreSQL 15's answers, as text.
    let rows = acme
        .simple_query(
            "SELECT age(TIMESTAMP '2024-03-31 10:00:00', TIMESTAMP '2024-02-29 12:30:15.5'), \
             age(DATE '2024-03-01', DATE '2023-01-31'), \
             age(TIMESTAMP '2023-01-31', TIMESTAMP '2024-03-01'), \
             age(CURRENT_DATE) = INTERVAL '0 days'",
        )
        .await
        .expect("ages");
    let Some(row) = rows.iter().find_map(|message| match message {
        tokio_postgres::SimpleQueryMessage::Row(row) => Some(row),
        _ => None,
    }) else {
        panic!("a row: {rows:?}");
    };
    assert_eq!(row.get(0), Some("1 mon 1 day 21:29:44.5"));
    assert_eq!(row.get(1), Some("1 year 1 mon 1 day"));
    assert_eq!(row.get(2), Some("-1 years -1 mons -1 days"));
    assert_eq!(row.get(3), Some("t"));
}
