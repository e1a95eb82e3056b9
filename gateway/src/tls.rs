//! TLS server configuration (rustls with the ring provider) from PEM files.

use std::sync::Arc;

use pgwire::tokio::TlsAcceptor;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tollgate_catalog::TlsOptions;

use crate::error::GatewayError;

/// A TLS acceptor for `options` of the listener `listener` (`pg`, `http`: named in errors),
/// offering `alpn` protocols, and the certificate PEM (SCRAM channel binding needs it).
///
/// # Errors
/// [`GatewayError::Tls`] naming the file that cannot be read or used.
pub fn acceptor(
    options: &TlsOptions,
    listener: &str,
    alpn: &[&[u8]],
) -> Result<(TlsAcceptor, Vec<u8>), GatewayError> {
    let pem = std::fs::read(&options.cert).map_err(|e| {
        GatewayError::Tls(format!(
            "cannot read {listener}.tls.cert {}: {e}",
            options.cert.display()
        ))
    })?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            GatewayError::Tls(format!(
                "{listener}.tls.cert {} is not a PEM certificate chain: {e}",
                options.cert.display()
            ))
        })?;
    if chain.is_empty() {
        return Err(GatewayError::Tls(format!(
            "{listener}.tls.cert {} holds no certificate",
            options.cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&options.key).map_err(|e| {
        GatewayError::Tls(format!(
            "{listener}.tls.key {} is not a PEM private key: {e}",
            options.key.display()
        ))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| GatewayError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            GatewayError::Tls(format!(
                "{listener}.tls: certificate and key do not fit: {e}"
            ))
        })?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok((TlsAcceptor::from(Arc::new(config)), pem))
}
