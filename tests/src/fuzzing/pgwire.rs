//! `pgwire_startup` and `pgwire_session`: bytes a client sends to the Postgres listener over
//! loopback TCP, before and after logging in. The client then closes its sending half, and
//! the server must answer and close the connection within [`CLOSE_WAIT`]; after the login,
//! everything it sends must parse as backend messages.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Harness;
use crate::raw::RawSession;

/// How long the server may take to finish answering once the client has nothing more to
/// say: a statement whose client left stops within a second, so this is far beyond any
/// answer and only a connection the server forgot takes it.
const CLOSE_WAIT: Duration = Duration::from_secs(20);

/// Sends `data` as a connection's first bytes and reads whatever comes back until the
/// server closes.
pub(super) async fn startup(harness: &Harness, data: &[u8]) {
    let mut stream = TcpStream::connect(harness.gateway.addr())
        .await
        .expect("connect to the Postgres listener");
    // The server may close before it has read everything (a first packet it refuses).
    let _ = stream.write_all(data).await;
    let _ = stream.shutdown().await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(CLOSE_WAIT, async {
        let mut buffer = [0u8; 8192];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the server kept the connection open {CLOSE_WAIT:?} after the client's end of file, \
         having sent {} bytes",
        answer.len()
    );
}

/// Logs in as acme, sends `data`, and reads every backend message until the server closes.
pub(super) async fn session(harness: &Harness, data: &[u8]) {
    let mut session = RawSession::login(harness.gateway.addr(), "acme", "acme").await;
    // The server may close before it has read everything (after a FATAL).
    let _ = session.try_send(data).await;
    session.close_sending().await;
    let sent = tokio::time::timeout(CLOSE_WAIT, session.until_closed()).await;
    assert!(
        sent.is_ok(),
        "the server kept a logged-in connection open {CLOSE_WAIT:?} after the client's end \
         of file"
    );
}
