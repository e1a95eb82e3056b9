//! Whether a client is still connected while one of its statements runs.
//!
//! While a statement runs, the connection's loop waits for it and reads nothing from the
//! socket, so a client that went away would go unnoticed until the statement ends or times
//! out, its query holding the tenant's cores. A [`PeerWatch`] looks at the socket through a
//! second handle without consuming anything: it is gone when the stream has ended, or when
//! what waits to be read is the client's goodbye (a Terminate message, or a TLS alert such
//! as close_notify).

use std::io;
use std::time::Duration;

use socket2::SockRef;
use tokio::net::TcpStream;

/// How often a running statement's client is looked at.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Message type of a Terminate.
const TERMINATE: u8 = b'X';

/// TLS record type of an alert (close_notify among them).
const TLS_ALERT: u8 = 0x15;

/// A second handle on a client's socket, for looking only.
#[derive(Debug)]
pub struct PeerWatch(std::net::TcpStream);

impl PeerWatch {
    /// Watches the client of `tcp`.
    ///
    /// # Errors
    /// If the socket cannot be duplicated.
    pub fn new(tcp: &TcpStream) -> io::Result<Self> {
        SockRef::from(tcp)
            .try_clone()
            .map(|socket| Self(socket.into()))
    }

    /// Resolves once the client has gone away.
    pub async fn gone(&self) {
        let mut head = [0u8; 1];
        loop {
            tokio::time::sleep(POLL_INTERVAL).await;
            // The socket is non-blocking (it shares the runtime's file description).
            match self.0.peek(&mut head) {
                Ok(0) => return,
                Ok(_) if matches!(head[0], TERMINATE | TLS_ALERT) => return,
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }
}
