//! Protocol framing as PostgreSQL: a length the message type cannot have, or a message the
//! phase does not expect, ends the connection at once with a FATAL 08P01, before and after
//! authentication; nothing follows a FATAL, and the gateway keeps serving.

use std::time::Duration;

use bytes::{BufMut, BytesMut};
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;

use tollgate_tests::TestGateway;
use tollgate_tests::raw::{ErrorReport, RawSession, Sent};

/// How long the gateway may take to answer and close.
const AT_ONCE: Duration = Duration::from_secs(2);

/// Reads until the server closes, and asserts that the last thing it sent is one FATAL,
/// with nothing after it.
async fn fatal_then_closed(session: &mut RawSession) -> ErrorReport {
    let sent = tokio::time::timeout(AT_ONCE, session.until_closed())
        .await
        .expect("answered and closed at once");
    match sent.as_slice() {
        [.., Sent::Error(report)] if report.severity == "FATAL" => report.clone(),
        other => panic!("expected a FATAL as the last message before the close: {other:?}"),
    }
}

/// A message with a type byte, a length field saying `length`, and `body`.
fn raw_message(message_type: u8, length: i32, body: &[u8]) -> BytesMut {
    let mut message = BytesMut::new();
    message.put_u8(message_type);
    message.put_i32(length);
    message.put_slice(body);
    message
}

/// A session that sent its startup packet and was asked for SASL authentication.
async fn in_scram_exchange(gateway: &TestGateway) -> RawSession {
    let mut session = RawSession::connect(gateway.addr()).await;
    let mut buf = BytesMut::new();
    frontend::startup_message([("user", "acme"), ("database", "tollgate")], &mut buf)
        .expect("startup");
    session.send(&buf).await;
    loop {
        match session.next_message().await {
            Message::AuthenticationSasl(_) => return session,
            Message::ErrorResponse(_) => panic!("start-up refused"),
            _ => {}
        }
    }
}

#[tokio::test]
async fn query_lengths_below_the_minimum_end_the_connection() {
    let gateway = TestGateway::start().await;
    // 3 is less than the length field itself; 4 leaves no room for the query's terminator.
    for length in [3, 4, -1] {
        let mut session = RawSession::login(gateway.addr(), "acme", "acme").await;
        // The bytes after the header must not be read as a query.
        session
            .send(&raw_message(b'Q', length, b"SELECT 1\0"))
            .await;
        let report = fatal_then_closed(&mut session).await;
        assert_eq!(report.code, "08P01", "length {length}: {report:?}");
        assert!(
            report.message.contains("invalid message length"),
            "{report:?}"
        );
    }
    gateway.assert_serving().await;
}

#[tokio::test]
async fn lengths_above_the_type_maximum_end_the_connection_without_waiting_for_the_body() {
    let gateway = TestGateway::start().await;
    // Above PostgreSQL's 1 GB limit for a Query; the body is never sent.
    let mut session = RawSession::login(gateway.addr(), "acme", "acme").await;
    session.send(&raw_message(b'Q', 0x4000_0000, b"SEL")).await;
    let report = fatal_then_closed(&mut session).await;
    assert_eq!(report.code, "08P01", "{report:?}");
    // A Sync has no body; an Execute is at most 10,000 bytes.
    for message in [
        raw_message(b'S', 5, b"x"),
        raw_message(b'E', 1_000_000, b""),
    ] {
        let mut session = RawSession::login(gateway.addr(), "acme", "acme").await;
        session.send(&message).await;
        let report = fatal_then_closed(&mut session).await;
        assert_eq!(report.code, "08P01", "{report:?}");
    }
    gateway.assert_serving().await;
}

#[tokio::test]
async fn a_query_during_the_scram_exchange_ends_the_connection() {
    let gateway = TestGateway::start().await;
    let mut session = in_scram_exchange(&gateway).await;
    let mut buf = BytesMut::new();
    frontend::query("SELECT 1", &mut buf).expect("query");
    session.send(&buf).await;
    let report = fatal_then_closed(&mut session).await;
    assert_eq!(report.code, "08P01", "{report:?}");
    assert_eq!(
        report.message, "expected SASL response, got message type 81",
        "{report:?}"
    );
    gateway.assert_serving().await;
}

#[tokio::test]
async fn unsolicited_password_messages_end_the_connection() {
    let gateway = TestGateway::start().await;
    // A cleartext password where the SASLInitialResponse is expected (this panicked the
    // SASL decoder), a bare 'p' and one whose response length lies.
    let bodies: [&[u8]; 3] = [b"acme\0", b"", b"SCRAM-SHA-256\0\x00\x00\x10\x00n,,n=,r=x"];
    for body in bodies {
        let mut session = in_scram_exchange(&gateway).await;
        session
            .send(&raw_message(b'p', 4 + body.len() as i32, body))
            .await;
        let report = fatal_then_closed(&mut session).await;
        assert_eq!(report.code, "08P01", "{body:?}: {report:?}");
    }
    // After authentication a password message is no message at all.
    let mut session = RawSession::login(gateway.addr(), "acme", "acme").await;
    session.send(&raw_message(b'p', 9, b"acme\0")).await;
    let report = fatal_then_closed(&mut session).await;
    assert_eq!(report.code, "08P01", "{report:?}");
    assert_eq!(report.message, "invalid frontend message type 112");
    gateway.assert_serving().await;
}

#[tokio::test]
async fn nothing_follows_a_fatal_at_start_up() {
    let gateway = TestGateway::start().await;
    // An unknown database.
    let mut session = RawSession::connect(gateway.addr()).await;
    let mut buf = BytesMut::new();
    frontend::startup_message([("user", "acme"), ("database", "nowhere")], &mut buf)
        .expect("startup");
    session.send(&buf).await;
    let report = fatal_then_closed(&mut session).await;
    assert_eq!(report.code, "3D000", "{report:?}");

    // A wrong password: the SCRAM exchange fails, then the connection closes.
    let mut session = in_scram_exchange(&gateway).await;
    let mut buf = BytesMut::new();
    let mut scram = postgres_protocol::authentication::sasl::ScramSha256::new(
        b"not the password",
        postgres_protocol::authentication::sasl::ChannelBinding::unsupported(),
    );
    frontend::sasl_initial_response("SCRAM-SHA-256", scram.message(), &mut buf).expect("sasl");
    session.send(&buf).await;
    let Message::AuthenticationSaslContinue(body) = session.next_message().await else {
        panic!("expected the server-first message");
    };
    scram.update(body.data()).expect("server-first");
    let mut buf = BytesMut::new();
    frontend::sasl_response(scram.message(), &mut buf).expect("sasl");
    session.send(&buf).await;
    let report = fatal_then_closed(&mut session).await;
    assert_eq!(report.code, "28P01", "{report:?}");
    gateway.assert_serving().await;
}

#[tokio::test]
async fn unknown_message_types_end_the_connection() {
    let gateway = TestGateway::start().await;
    let mut session = RawSession::login(gateway.addr(), "acme", "acme").await;
    session.send(&raw_message(b'z', 4, b"")).await;
    let report = fatal_then_closed(&mut session).await;
    assert_eq!(report.code, "08P01", "{report:?}");
    assert_eq!(report.message, "invalid frontend message type 122");
    gateway.assert_serving().await;
}

#[tokio::test]
async fn messages_whose_fields_overrun_their_body_end_the_connection() {
    let gateway = TestGateway::start().await;
    // A Parse announcing two parameter types and holding one; a Bind cut inside its
    // parameter formats; a Describe of neither a statement nor a portal.
    let mut parse = b"\0SELECT $1\0".to_vec();
    parse.extend_from_slice(&2i16.to_be_bytes());
    parse.extend_from_slice(&23i32.to_be_bytes());
    let bind = b"\0\0\0\x05\0\x01\0\0".to_vec();
    for (message_type, body, message) in [
        (
            b'P',
            parse,
            "invalid message format: message of type \"P\" ends inside its parameter types",
        ),
        (
            b'B',
            bind,
            "invalid message format: message of type \"B\" ends inside its parameter formats",
        ),
        (
            b'D',
            b"X\0".to_vec(),
            "invalid message format: invalid DESCRIBE message subtype 88",
        ),
    ] {
        let mut session = RawSession::login(gateway.addr(), "acme", "acme").await;
        let length = i32::try_from(body.len() + 4).expect("a short body");
        session
            .send(&raw_message(message_type, length, &body))
            .await;
        let report = fatal_then_closed(&mut session).await;
        assert_eq!(report.code, "08P01", "{report:?}");
        assert_eq!(report.message, message);
    }
    gateway.assert_serving().await;
}

#[tokio::test]
async fn a_client_that_closes_within_its_first_four_bytes_is_let_go_at_once() {
    let gateway = TestGateway::start().await;
    for sent in [&b""[..], b"\0", b"\0\0\0"] {
        let mut session = RawSession::connect(gateway.addr()).await;
        session.send(sent).await;
        session.close_sending().await;
        tokio::time::timeout(AT_ONCE, session.until_closed())
            .await
            .expect("the server closes at once");
    }
    gateway.assert_serving().await;
}
