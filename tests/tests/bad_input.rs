//! Bad input gets a clear error with the right SQLSTATE, and the server keeps serving.

use bytes::{BufMut, BytesMut};
use postgres_protocol::IsNull;
use postgres_protocol::message::frontend;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

use tollgate_tests::process::{self, GatewayProcess};
use tollgate_tests::raw::{Outcome, RawSession, Reply};
use tollgate_tests::{TestGateway, demo_options, install_crypto_provider, sqlstate};

#[tokio::test]
async fn malformed_startup_packets_are_refused() {
    let gateway = TestGateway::start().await;
    // A startup packet with an unknown protocol version.
    let mut session = RawSession::connect(gateway.addr()).await;
    let mut packet = BytesMut::new();
    packet.put_i32(8);
    packet.put_i32(0x0009_0000);
    session.send(&packet).await;
    assert_ne!(
        tokio::time::timeout(Duration::from_secs(10), session.outcome())
            .await
            .expect("answered in time"),
        Outcome::Ready
    );
    // Garbage: a length shorter than its own header.
    let mut session = RawSession::connect(gateway.addr()).await;
    session.send(&[0, 0, 0, 2, 0xff, 0xff]).await;
    assert_ne!(
        tokio::time::timeout(Duration::from_secs(10), session.outcome())
            .await
            .expect("answered in time"),
        Outcome::Ready
    );
    gateway.assert_serving().await;
}

#[tokio::test]
async fn a_message_length_that_lies_does_not_hang_or_crash() {
    let gateway = TestGateway::start().await;
    let mut session = RawSession::login(gateway.addr(), "acme", "acme").await;
    // Claims a 1 GB query, sends 5 bytes, hangs up.
    let mut message = BytesMut::new();
    message.put_u8(b'Q');
    message.put_i32(1_000_000_000);
    message.put_slice(b"SELEC");
    session.send(&message).await;
    drop(session);
    // Claims a length below the minimum: refused as a protocol violation, never run.
    let mut session = RawSession::login(gateway.addr(), "acme", "acme").await;
    session.send(&[b'Q', 0, 0, 0, 1]).await;
    let outcome = tokio::time::timeout(Duration::from_secs(10), session.outcome())
        .await
        .expect("answered in time");
    assert_eq!(outcome, Outcome::Error("08P01".to_owned()));
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(10), session.outcome())
            .await
            .expect("closed in time"),
        Outcome::Closed,
        "nothing follows the FATAL"
    );
    gateway.assert_serving().await;
}

#[tokio::test]
async fn oversized_and_deeply_nested_sql_get_clean_errors() {
    let gateway = TestGateway::start().await;
    let client = gateway.connect("acme").await;
    let huge = format!("SELECT '{}'", "x".repeat(10 * 1024 * 1024));
    let error = client.simple_query(&huge).await.expect_err("10 MB of SQL");
    assert_eq!(sqlstate(&error), "54000");
    let nested = format!("SELECT {}1{}", "(".repeat(10_000), ")".repeat(10_000));
    let error = client
        .simple_query(&nested)
        .await
        .expect_err("10,000 levels");
    assert_eq!(sqlstate(&error), "54001");
    let error = client
        .simple_query("SELECT 'unterminated")
        .await
        .expect_err("unterminated quote");
    assert_eq!(sqlstate(&error), "42601");
    client
        .simple_query("SELECT 1")
        .await
        .expect("the same connection still works");
}

#[tokio::test]
async fn bind_errors_and_dropped_portals_are_reported() {
    let gateway = TestGateway::start().await;
    let mut session = RawSession::login(gateway.addr(), "acme", "acme").await;
    let mut buf = BytesMut::new();
    frontend::parse(
        "s",
        "SELECT r_name FROM tpch.region WHERE r_regionkey = $1",
        [20],
        &mut buf,
    )
    .expect("parse");
    // Two parameters for a statement that takes one.
    frontend::bind(
        "p",
        "s",
        [0i16],
        [Some(1i64), Some(2)],
        |value, out| match value {
            Some(v) => {
                out.put_slice(v.to_string().as_bytes());
                Ok(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        },
        [0i16],
        &mut buf,
    )
    .map_err(|_| ())
    .expect("bind");
    frontend::execute("p", 0, &mut buf).expect("execute");
    frontend::sync(&mut buf);
    session.send(&buf).await;
    let replies = session.until_ready().await;
    assert!(
        replies.contains(&Reply::Error("08P01".to_owned())),
        "{replies:?}"
    );

    // Executing a portal that was never bound (or was closed).
    let mut buf = BytesMut::new();
    frontend::execute("gone", 0, &mut buf).expect("execute");
    frontend::sync(&mut buf);
    session.send(&buf).await;
    let replies = session.until_ready().await;
    assert!(
        replies.contains(&Reply::Error("34000".to_owned())),
        "{replies:?}"
    );

    // Unknown parameter type OIDs are read as text.
    let mut buf = BytesMut::new();
    frontend::parse("u", "SELECT $1::text AS v", [987_654], &mut buf).expect("parse");
    frontend::bind(
        "",
        "u",
        [0i16],
        [Some("x")],
        |v: Option<&str>, out| {
            out.put_slice(v.unwrap_or_default().as_bytes());
            Ok(IsNull::No)
        },
        [0i16],
        &mut buf,
    )
    .map_err(|_| ())
    .expect("bind");
    frontend::execute("", 0, &mut buf).expect("execute");
    frontend::sync(&mut buf);
    session.send(&buf).await;
    let replies = session.until_ready().await;
    assert!(
        replies
            .iter()
            .any(|r| matches!(r, Reply::Row(_) | Reply::Error(_))),
        "{replies:?}"
    );
    gateway.assert_serving().await;
}

#[tokio::test]
async fn a_client_that_disconnects_mid_result_is_cleaned_up() {
    let gateway = TestGateway::start().await;
    for _ in 0..3 {
        let mut session = RawSession::login(gateway.addr(), "acme", "acme").await;
        let mut buf = BytesMut::new();
        frontend::query(
            "SELECT * FROM tpch.lineitem a CROSS JOIN tpch.region",
            &mut buf,
        )
        .expect("query");
        session.send(&buf).await;
        // Read a little of the result, then vanish.
        let _ = session.next_message().await;
        drop(session);
    }
    let mut stream = tokio::net::TcpStream::connect(gateway.addr())
        .await
        .expect("connect");
    stream.shutdown().await.expect("half-closed before startup");
    gateway.assert_serving().await;
}

/// A statement far over `pg.max_query_size` is refused as it arrives, in the simple and the
/// extended protocol, without the gateway ever holding it: its peak memory hardly moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_over_the_limit_is_refused_without_being_held() {
    install_crypto_provider();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = process::write_config(dir.path(), &demo_options(dir.path()));
    let gateway = GatewayProcess::spawn(&config, &dir.path().join("gateway.log"));
    let (client, connection) =
        tokio_postgres::connect(&gateway.conninfo("acme"), tokio_postgres::NoTls)
            .await
            .expect("connect");
    tokio::spawn(connection);
    client.simple_query("SELECT 1").await.expect("warm up");
    let before = gateway.peak_memory();
    let huge = format!("SELECT '{}'", "x".repeat(256 << 20));
    let error = client
        .simple_query(&huge)
        .await
        .expect_err("256 MiB of SQL");
    assert_eq!(sqlstate(&error), "54000", "{error:?}");
    let error = client.prepare(&huge).await.expect_err("256 MiB to prepare");
    assert_eq!(sqlstate(&error), "54000", "{error:?}");
    let rows = client
        .query("SELECT $1::bigint + 1", &[&41i64])
        .await
        .expect("the session goes on, in both protocols");
    assert_eq!(rows[0].get::<_, i64>(0), 42);
    let grown = gateway.peak_memory().saturating_sub(before);
    println!("peak memory grew by {} MiB", grown >> 20);
    assert!(grown < 32 << 20, "the gateway held {} MiB", grown >> 20);
}

#[tokio::test]
async fn execute_row_limits_of_any_size_are_answered() {
    let gateway = TestGateway::start().await;
    let mut session = RawSession::login(gateway.addr(), "acme", "acme").await;
    // A limit of two billion rows (pgwire would reserve room for all of them), a negative
    // limit (no limit, as in PostgreSQL), and a small one that suspends the portal.
    for (limit, expected) in [
        (i32::MAX, vec![Reply::Complete("SELECT 5".to_owned())]),
        (-1, vec![Reply::Complete("SELECT 5".to_owned())]),
        (2, vec![Reply::Suspended]),
    ] {
        let mut buf = BytesMut::new();
        frontend::parse("", "SELECT r_name FROM tpch.region", [], &mut buf).expect("parse");
        frontend::bind(
            "",
            "",
            [],
            Vec::<Option<i64>>::new(),
            |_, _| Ok(IsNull::Yes),
            [0i16],
            &mut buf,
        )
        .map_err(|_| ())
        .expect("bind");
        frontend::execute("", limit, &mut buf).expect("execute");
        frontend::sync(&mut buf);
        session.send(&buf).await;
        let replies = session.until_ready().await;
        let rows = replies
            .iter()
            .filter(|reply| matches!(reply, Reply::Row(_)))
            .count();
        let ends: Vec<Reply> = replies
            .into_iter()
            .filter(|reply| matches!(reply, Reply::Complete(_) | Reply::Suspended))
            .collect();
        assert_eq!(ends, expected, "limit {limit}");
        assert_eq!(rows, if limit == 2 { 2 } else { 5 }, "limit {limit}");
    }
    gateway.assert_serving().await;
}
