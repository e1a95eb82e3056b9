//! TLS handshakes of a listener's connections, each in a task of its own so that a client
//! that stalls in one holds up no other; the finished ones come out in the order they
//! finish. The Flight SQL listener serves them, and so does the gateway's HTTPS listener.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

/// How long a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection whose handshake is done, and its client's address.
pub type Handshaken = (TlsStream<TcpStream>, SocketAddr);

/// Accepts connections on `listener` until `shutdown` fires and hands over those whose
/// handshake with `acceptor` completed. `name` names the listener in the log.
pub fn handshakes(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shutdown: CancellationToken,
    name: &'static str,
) -> mpsc::Receiver<Handshaken> {
    let (sender, ready) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = shutdown.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors and the like: wait rather than spin.
                    tracing::warn!(%error, "{name} accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let acceptor = acceptor.clone();
            let sender = sender.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => {
                        let _ = sender.send((stream, peer)).await;
                    }
                    Ok(Err(error)) => tracing::debug!(%peer, %error, "{name} handshake failed"),
                    Err(_) => tracing::debug!(%peer, "{name} handshake timed out"),
                }
            });
        }
    });
    ready
}
