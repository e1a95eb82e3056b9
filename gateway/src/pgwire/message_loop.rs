//! The message loop of one Postgres connection: pgwire's `process_socket`, with each frame
//! checked before it is decoded ([`framing`](super::framing)), nothing sent after a FATAL,
//! and a panicking handler answered instead of leaving its client waiting.
//!
//! ```text
//! negotiate_tls (pgwire) ─▶ loop { FrameReader::next_frame(phase) ─▶ framing::decode
//!                                  ─▶ process_message (pgwire's dispatch to our handlers) }
//!   violation, FATAL error, panic before login ─▶ ErrorResponse, close
//!   ERROR, panic after login                   ─▶ pgwire's process_error (ReadyForQuery or
//!                                                 skip to Sync), next message
//! ```
//!
//! pgwire's own loop sends ReadyForQuery after every error, FATAL ones included, and ends a
//! connection without a word when its decoder fails; PostgreSQL closes right after a FATAL
//! and says why it does.

use std::any::Any;
use std::io;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, SinkExt};
use pgwire::api::{ClientInfo, ErrorHandler, PgWireServerHandlers};
use pgwire::error::{ErrorInfo, PgWireError};
use pgwire::messages::response::TransactionStatus;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use pgwire::tokio::TlsAcceptor;
use pgwire::tokio::server::{
    MaybeTls, PgWireMessageServerCodec, negotiate_tls, process_error, process_message,
};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

use super::connection::ConnectionState;
use super::errors::{fatal, user_error};
use super::framing::{self, Frame, FrameError, FrameReader, Phase};
use super::peer::PeerWatch;

/// How long a client has from connecting to being authenticated, as pgwire's start-up timeout.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Serves one client connection until it ends, or until `closing` fires (the gateway shuts
/// down: FATAL 57P01); SQL longer than `max_sql` bytes is refused without being kept.
///
/// # Errors
/// A socket error; protocol violations and handler errors are answered, not returned.
pub async fn process_socket<H>(
    tcp: TcpStream,
    tls: Option<TlsAcceptor>,
    handlers: H,
    connection: Arc<ConnectionState>,
    max_sql: usize,
    closing: CancellationToken,
) -> io::Result<()>
where
    H: PgWireServerHandlers,
{
    let startup_deadline = Instant::now() + STARTUP_TIMEOUT;
    // Without it a statement still runs to its end after its client left.
    let peer = PeerWatch::new(&tcp)
        .inspect_err(|error| tracing::warn!(%error, "cannot watch a client's socket"))
        .ok();
    let Ok(negotiated) = tokio::time::timeout_at(startup_deadline, negotiate_tls(tcp, tls)).await
    else {
        return Ok(());
    };
    // `None`: direct TLS negotiation without a TLS configuration.
    let Some(mut socket) = negotiated? else {
        return Ok(());
    };
    // The start-up packet may already be buffered by the TLS negotiation; from here on the
    // frame reader reads the socket and the Framed only writes.
    let mut reader = FrameReader::new(socket.read_buffer_mut().split(), max_sql);

    let startup_handler = handlers.startup_handler();
    let simple_query_handler = handlers.simple_query_handler();
    let extended_query_handler = handlers.extended_query_handler();
    let copy_handler = handlers.copy_handler();
    let cancel_handler = handlers.cancel_handler();
    let error_handler = handlers.error_handler();
    let mut sasl_messages = 0usize;

    let mut revoked = None;
    loop {
        let phase = Phase::of(socket.state(), sasl_messages);
        if phase == Phase::Ready && revoked.is_none() {
            revoked = connection.login().map(|login| login.revoked.clone());
        }
        let next = reader.next_frame(socket.get_mut(), phase);
        let next = if phase == Phase::Ready {
            tokio::select! {
                next = next => next,
                error = ended(revoked.as_ref(), &closing) => return end_with(&mut socket, error).await,
            }
        } else {
            tokio::select! {
                next = tokio::time::timeout_at(startup_deadline, next) => match next {
                    Ok(next) => next,
                    // As pgwire: a client too slow to log in is dropped.
                    Err(_) => return Ok(()),
                },
                () = closing.cancelled() => return end_with(&mut socket, shutdown_error()).await,
            }
        };
        let frame = match next {
            Ok(Some(Frame::Oversized {
                message_type,
                length,
            })) => {
                // Refused as the query handler refuses a long statement; the session goes on
                // (an extended-protocol one after its Sync).
                let error = user_error(
                    "54000",
                    format!(
                        "statement is too long: a {length}-byte message, the limit is {max_sql} bytes of SQL"
                    ),
                );
                process_error(&mut socket, error, message_type == b'P').await?;
                continue;
            }
            Ok(Some(Frame::Whole(frame))) => Ok(Some(frame)),
            Ok(None) => Ok(None),
            Err(error) => Err(error),
        };
        let message = frame.and_then(|frame| {
            frame
                .map(|frame| framing::decode(frame, phase, socket.protocol_version()))
                .transpose()
        });
        let message = match message {
            Ok(Some(message)) => message,
            Ok(None) => return Ok(()),
            Err(FrameError::Io(error)) => return Err(error),
            Err(violation) => {
                tracing::debug!(peer = %socket.socket_addr(), %violation, "protocol violation");
                return end_with(&mut socket, violation.to_client()).await;
            }
        };
        // The client is leaving; PostgreSQL closes without answering.
        if matches!(message, PgWireFrontendMessage::Terminate(_)) {
            return Ok(());
        }
        if matches!(phase, Phase::Sasl { .. }) {
            sasl_messages += 1;
        }
        let is_extended_query = match socket.state() {
            pgwire::api::PgWireConnectionState::CopyInProgress(extended) => extended,
            _ => message.is_extended_query(),
        };
        // A failed transaction block that went back to a savepoint goes on (pgwire knows
        // no way back from `E` but the block's end).
        if connection.recovery().take() && socket.transaction_status() == TransactionStatus::Error {
            socket.set_transaction_status(TransactionStatus::Transaction);
        }
        // `process_message` closes a CancelRequest's dedicated connection.
        let is_cancel_request = matches!(message, PgWireFrontendMessage::CancelRequest(_));
        // Unwind safety: a panicking handler's state for this connection is not used again
        // before login (the connection ends); after login it is the statement's state, which
        // the next statement replaces, as PostgreSQL carries on after an ERROR.
        let dispatch = AssertUnwindSafe(process_message(
            message,
            &mut socket,
            Arc::clone(&startup_handler),
            Arc::clone(&simple_query_handler),
            Arc::clone(&extended_query_handler),
            Arc::clone(&copy_handler),
            Arc::clone(&cancel_handler),
        ))
        .catch_unwind();
        // A client that leaves while its statement runs: dropping the dispatch drops the
        // statement's stream, which stops its query.
        let dispatched = match (&peer, phase) {
            (Some(peer), Phase::Ready) => tokio::select! {
                biased;
                error = ended(revoked.as_ref(), &closing) => return end_with(&mut socket, error).await,
                () = peer.gone() => return Ok(()),
                dispatched = dispatch => dispatched,
            },
            _ => dispatch.await,
        };
        // A statement the revocation or the shutdown stopped ends with their FATAL, not
        // with the cancel it saw.
        if revoked
            .as_ref()
            .is_some_and(CancellationToken::is_cancelled)
        {
            return end_with(&mut socket, revoked_error()).await;
        }
        if closing.is_cancelled() {
            return end_with(&mut socket, shutdown_error()).await;
        }
        let result = dispatched.unwrap_or_else(|panic| {
            tracing::error!(
                peer = %socket.socket_addr(),
                panic = panic_message(panic.as_ref()),
                "a connection's handler panicked"
            );
            Err(match phase {
                Phase::Ready => user_error("XX000", "internal error"),
                Phase::Startup | Phase::Sasl { .. } => fatal("XX000", "internal error"),
            })
        });
        if let Err(mut error) = result {
            error_handler.on_error(&socket, &mut error);
            if error.is_fatal() {
                return end_with(&mut socket, error).await;
            }
            process_error(&mut socket, error, is_extended_query).await?;
        }
        if is_cancel_request {
            return Ok(());
        }
    }
}

/// The FATAL a session gets when its login is revoked: its channel deleted or its tenant
/// suspended. 57P01 is PostgreSQL's `admin_shutdown`, which poolers and drivers treat as
/// "this connection is gone".
fn revoked_error() -> PgWireError {
    fatal(
        "57P01",
        "terminating connection because its login was revoked (channel deleted or tenant suspended)",
    )
}

/// The FATAL every session gets when the gateway shuts down, as PostgreSQL's.
fn shutdown_error() -> PgWireError {
    fatal(
        "57P01",
        "terminating connection due to administrator command",
    )
}

/// Resolves when the server ends a logged-in session: its login `revoked`, or the gateway
/// `closing`; with the FATAL to send.
async fn ended(revoked: Option<&CancellationToken>, closing: &CancellationToken) -> PgWireError {
    let revocation = async {
        match revoked {
            Some(token) => token.cancelled().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = revocation => revoked_error(),
        () = closing.cancelled() => shutdown_error(),
    }
}

/// Sends `error` and closes the connection: nothing follows a FATAL.
///
/// # Errors
/// If the socket fails while sending.
async fn end_with<S>(
    socket: &mut Framed<MaybeTls, PgWireMessageServerCodec<S>>,
    error: PgWireError,
) -> io::Result<()> {
    let info = ErrorInfo::from(error);
    socket
        .send(PgWireBackendMessage::ErrorResponse(info.into()))
        .await?;
    socket.close().await
}

/// The text of a panic payload, for the log.
fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not a string)")
}
