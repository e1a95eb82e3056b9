//! A raw Postgres protocol session for tests that must send what no well-behaved driver
//! sends (a Bind with the wrong parameter count, a lying length). Messages are encoded and
//! decoded with `postgres-protocol`, the codec under tokio-postgres.

use std::net::SocketAddr;

use bytes::BytesMut;
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::scram::ScramClient;

/// What the server answered, simplified for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// An ErrorResponse with its SQLSTATE.
    Error(String),
    /// A DataRow, with its size on the wire (type byte, length, field count, fields).
    Row(u64),
    /// CommandComplete with its tag.
    Complete(String),
    /// PortalSuspended.
    Suspended,
    /// ReadyForQuery.
    Ready,
    /// Anything else (ParseComplete, BindComplete, RowDescription, …).
    Other,
}

/// How the server reacted to what was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An ErrorResponse with this SQLSTATE.
    Error(String),
    /// ReadyForQuery: the input was taken as harmless.
    Ready,
    /// The server closed the connection.
    Closed,
}

/// The fields of an ErrorResponse that tests look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReport {
    /// Severity (`S`; the gateway does not localize it): `ERROR`, `FATAL`, …
    pub severity: String,
    /// SQLSTATE (`C`).
    pub code: String,
    /// Message (`M`).
    pub message: String,
}

/// What the server sent before it closed the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// An ErrorResponse.
    Error(ErrorReport),
    /// ReadyForQuery.
    Ready,
    /// Anything else.
    Other,
}

/// A connection speaking the protocol by hand.
pub struct RawSession {
    stream: TcpStream,
    read: BytesMut,
}

impl RawSession {
    /// Connects without logging in.
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        Self {
            stream,
            read: BytesMut::new(),
        }
    }

    /// Connects and logs in with SCRAM-SHA-256 (the salted password derived once per
    /// process, see [`ScramClient`]).
    pub async fn login(addr: SocketAddr, user: &str, password: &str) -> Self {
        let mut session = Self::connect(addr).await;
        let mut buf = BytesMut::new();
        frontend::startup_message([("user", user), ("database", "tollgate")], &mut buf)
            .expect("startup");
        session.send(&buf).await;
        let scram = ScramClient::new(password);
        loop {
            match session.next_message().await {
                Message::AuthenticationSasl(_) => {
                    let mut buf = BytesMut::new();
                    frontend::sasl_initial_response(
                        "SCRAM-SHA-256",
                        scram.first_message().as_bytes(),
                        &mut buf,
                    )
                    .expect("sasl");
                    session.send(&buf).await;
                }
                Message::AuthenticationSaslContinue(body) => {
                    let server_first = std::str::from_utf8(body.data()).expect("server-first");
                    let last = scram.final_message(server_first).expect("client-final");
                    let mut buf = BytesMut::new();
                    frontend::sasl_response(last.as_bytes(), &mut buf).expect("sasl");
                    session.send(&buf).await;
                }
                Message::ReadyForQuery(_) => return session,
                Message::ErrorResponse(_) => panic!("login failed"),
                _ => {}
            }
        }
    }

    /// Writes raw bytes.
    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Writes raw bytes, which the server may refuse to read to the end (it closes the
    /// connection after a FATAL).
    ///
    /// # Errors
    /// The write's, once the server has closed the connection.
    pub async fn try_send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Closes the sending half of the connection, as a client that has said all it had to
    /// say (the server reads end of file).
    pub async fn close_sending(&mut self) {
        let _ = self.stream.shutdown().await;
    }

    /// Reads one backend message; panics on EOF.
    pub async fn next_message(&mut self) -> Message {
        loop {
            if let Some(message) = Message::parse(&mut self.read).expect("valid backend message") {
                return message;
            }
            let n = self.stream.read_buf(&mut self.read).await.expect("read");
            assert!(n > 0, "the server closed the connection");
        }
    }

    /// Reads until the server answers with an error, is ready for the next query, or closes
    /// the connection.
    pub async fn outcome(&mut self) -> Outcome {
        loop {
            match Message::parse(&mut self.read) {
                Ok(Some(Message::ErrorResponse(body))) => return Outcome::Error(sqlstate(&body)),
                Ok(Some(Message::ReadyForQuery(_))) => return Outcome::Ready,
                Ok(Some(_)) => continue,
                Ok(None) => {}
                Err(_) => return Outcome::Closed,
            }
            match self.stream.read_buf(&mut self.read).await {
                Ok(0) | Err(_) => return Outcome::Closed,
                Ok(_) => {}
            }
        }
    }

    /// Reads everything the server sends until it closes the connection (a reset counts as a
    /// close); panics on a message that does not parse.
    pub async fn until_closed(&mut self) -> Vec<Sent> {
        let mut sent = Vec::new();
        loop {
            match Message::parse(&mut self.read).expect("valid backend message") {
                Some(Message::ErrorResponse(body)) => sent.push(Sent::Error(error_report(&body))),
                Some(Message::ReadyForQuery(_)) => sent.push(Sent::Ready),
                Some(_) => sent.push(Sent::Other),
                None => match self.stream.read_buf(&mut self.read).await {
                    Ok(0) | Err(_) => return sent,
                    Ok(_) => {}
                },
            }
        }
    }

    /// Reads replies up to and including ReadyForQuery.
    pub async fn until_ready(&mut self) -> Vec<Reply> {
        let mut replies = Vec::new();
        loop {
            let reply = match self.next_message().await {
                Message::ErrorResponse(body) => Reply::Error(sqlstate(&body)),
                Message::DataRow(body) => Reply::Row(7 + body.buffer().len() as u64),
                Message::CommandComplete(body) => {
                    Reply::Complete(body.tag().map(str::to_owned).unwrap_or_default())
                }
                Message::PortalSuspended => Reply::Suspended,
                Message::ReadyForQuery(_) => {
                    replies.push(Reply::Ready);
                    return replies;
                }
                _ => Reply::Other,
            };
            replies.push(reply);
        }
    }
}

fn sqlstate(body: &postgres_protocol::message::backend::ErrorResponseBody) -> String {
    use fallible_iterator::FallibleIterator;
    let mut fields = body.fields();
    while let Ok(Some(field)) = fields.next() {
        if field.type_() == b'C' {
            return String::from_utf8_lossy(field.value_bytes()).into_owned();
        }
    }
    String::new()
}

fn error_report(body: &postgres_protocol::message::backend::ErrorResponseBody) -> ErrorReport {
    use fallible_iterator::FallibleIterator;
    let mut report = ErrorReport {
        severity: String::new(),
        code: String::new(),
        message: String::new(),
    };
    let mut fields = body.fields();
    while let Ok(Some(field)) = fields.next() {
        let value = String::from_utf8_lossy(field.value_bytes()).into_owned();
        match field.type_() {
            b'S' => report.severity = value,
            b'C' => report.code = value,
            b'M' => report.message = value,
            _ => {}
        }
    }
    report
}
