//! TLS server configuration (rustls with the ring provider) from PEM files, with a
//! certificate that can be read again while the listener serves (SIGHUP): handshakes after
//! the swap present the new one, connections already open keep theirs.

use std::sync::{Arc, PoisonError, RwLock};

use pgwire::tokio::TlsAcceptor;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tollgate_catalog::{TlsOptions, TollgateOptions};

use crate::error::GatewayError;

/// A certificate chain and its key, read and checked, with the chain's PEM (SCRAM channel
/// binding hashes the leaf).
#[derive(Debug, Clone)]
pub struct CertificateFiles {
    key: Arc<CertifiedKey>,
    pem: Arc<Vec<u8>>,
}

impl CertificateFiles {
    /// Reads the files of `options` for the listener `listener` (`pg`, `flight`, `http`:
    /// named in errors).
    ///
    /// # Errors
    /// [`GatewayError::Tls`] naming the file that cannot be read or used, or saying that
    /// the key is not the certificate's.
    pub fn read(options: &TlsOptions, listener: &str) -> Result<Self, GatewayError> {
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
        let key = CertifiedKey::from_der(chain, key, &provider()).map_err(|e| {
            GatewayError::Tls(format!(
                "{listener}.tls: certificate and key do not fit: {e}"
            ))
        })?;
        Ok(Self {
            key: Arc::new(key),
            pem: Arc::new(pem),
        })
    }

    /// The certificate chain as PEM.
    pub fn pem(&self) -> &[u8] {
        &self.pem
    }
}

/// The certificate a listener presents now; [`ListenerCertificate::replace`] swaps it.
#[derive(Debug)]
pub struct ListenerCertificate {
    current: RwLock<CertificateFiles>,
}

impl ListenerCertificate {
    /// Presents `files` until replaced.
    pub fn new(files: CertificateFiles) -> Arc<Self> {
        Arc::new(Self {
            current: RwLock::new(files),
        })
    }

    /// The certificate presented now.
    pub fn current(&self) -> CertificateFiles {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Presents `files` from the next handshake on.
    pub fn replace(&self, files: CertificateFiles) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = files;
    }

    /// A rustls configuration presenting this certificate and offering `alpn` protocols.
    ///
    /// # Errors
    /// [`GatewayError::Tls`] if rustls refuses the protocol versions (it does not with ring).
    pub fn server_config(
        self: &Arc<Self>,
        alpn: &[&[u8]],
    ) -> Result<Arc<ServerConfig>, GatewayError> {
        let mut config = ServerConfig::builder_with_provider(Arc::new(provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| GatewayError::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }

    /// A TLS acceptor presenting this certificate, as [`ListenerCertificate::server_config`].
    ///
    /// # Errors
    /// As [`ListenerCertificate::server_config`].
    pub fn acceptor(self: &Arc<Self>, alpn: &[&[u8]]) -> Result<TlsAcceptor, GatewayError> {
        Ok(TlsAcceptor::from(self.server_config(alpn)?))
    }
}

impl ResolvesServerCert for ListenerCertificate {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .key,
        ))
    }
}

/// Tollgate's crypto provider: ring.
fn provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// Each listener's certificate, for those with TLS.
pub struct ListenerCertificates {
    /// `pg.tls`.
    pub pg: Option<Arc<ListenerCertificate>>,
    /// `flight.tls`.
    pub flight: Option<Arc<ListenerCertificate>>,
    /// `http.tls`.
    pub http: Option<Arc<ListenerCertificate>>,
}

impl ListenerCertificates {
    /// Reads the certificates `options` names.
    ///
    /// # Errors
    /// As [`CertificateFiles::read`].
    pub fn read(options: &TollgateOptions) -> Result<Self, GatewayError> {
        let read = |tls: Option<&TlsOptions>, listener: &str| {
            tls.map(|tls| CertificateFiles::read(tls, listener).map(ListenerCertificate::new))
                .transpose()
        };
        Ok(Self {
            pg: read(options.pg.tls.as_ref(), "pg")?,
            flight: read(
                options.flight.as_ref().and_then(|f| f.tls.as_ref()),
                "flight",
            )?,
            http: read(options.http.as_ref().and_then(|h| h.tls.as_ref()), "http")?,
        })
    }
}
