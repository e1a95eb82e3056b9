//! Reloading on SIGHUP, as PostgreSQL does: the configuration file is read again and checked
//! whole (its catalog, every certificate) before anything changes; then the listeners'
//! certificates are swapped and the catalog applied to the live sessions. Sessions stay
//! open: a tenant's next statement sees its new grants, a login that is gone is revoked.
//! Settings read only at start-up (listen addresses, the ledger, the engine) keep their
//! value and are named in the log; a file that does not check out changes nothing.
//!
//! ```text
//! SIGHUP ─▶ ConfigFile::read ─▶ sources unchanged? catalog valid? certificates readable?
//!        ─▶ certificates swapped ─▶ catalog applied (control: with the state store's)
//!   any check fails ─▶ logged, the configuration in use kept
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::Mutex;
use tollgate_catalog::{Catalog, TollgateOptions};
use tollgate_planner::{PlannerError, QueryService};

use crate::control::CatalogSync;
use crate::error::GatewayError;
use crate::pgwire::PgCertificate;
use crate::tls::{CertificateFiles, ListenerCertificate};

/// How the served configuration was read: its file, then the command line's overrides;
/// read the same way again on SIGHUP.
pub struct ConfigFile {
    path: PathBuf,
    overrides: Box<dyn Fn(&mut TollgateOptions) + Send + Sync>,
}

impl ConfigFile {
    /// The file at `path`, with `overrides` applied after each read.
    pub fn new(
        path: PathBuf,
        overrides: impl Fn(&mut TollgateOptions) + Send + Sync + 'static,
    ) -> Self {
        Self {
            path,
            overrides: Box::new(overrides),
        }
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads and parses the file.
    ///
    /// # Errors
    /// [`GatewayError::Config`] if it cannot be read or parsed.
    pub fn read(&self) -> Result<TollgateOptions, GatewayError> {
        let mut options = TollgateOptions::load(&self.path)?;
        (self.overrides)(&mut options);
        Ok(options)
    }
}

/// What a reload changed.
#[derive(Debug, Default)]
pub struct Reloaded {
    /// The listeners whose certificate was read again.
    pub certificates: Vec<&'static str>,
    /// Sections that changed but are read only at start-up: their old values stay.
    pub need_restart: Vec<&'static str>,
    /// Tenants and channels whose sessions do not build from the new catalog, with why.
    pub not_served: Vec<(String, PlannerError)>,
}

/// The certificates a reload may swap: each listener's that has TLS.
pub struct Certificates {
    /// The Postgres listener's (also used for SCRAM channel binding).
    pub pg: Option<PgCertificate>,
    /// The Flight SQL listener's.
    pub flight: Option<Arc<ListenerCertificate>>,
    /// The HTTP listener's.
    pub http: Option<Arc<ListenerCertificate>>,
}

/// What applies a new configuration to a running gateway.
pub struct Reloader {
    current: Mutex<TollgateOptions>,
    service: Arc<QueryService>,
    sync: Option<Arc<CatalogSync>>,
    certificates: Certificates,
}

impl Reloader {
    /// A reloader of a gateway started from `options`; with a control plane, `sync` builds
    /// the catalog from the file and the state store.
    pub fn new(
        options: TollgateOptions,
        service: Arc<QueryService>,
        sync: Option<Arc<CatalogSync>>,
        certificates: Certificates,
    ) -> Self {
        Self {
            current: Mutex::new(options),
            service,
            sync,
            certificates,
        }
    }

    /// Checks `options` whole, then serves them.
    ///
    /// # Errors
    /// [`GatewayError::Reload`] if sources changed, [`GatewayError::Config`] for an invalid
    /// catalog, [`GatewayError::Tls`] for an unusable certificate, [`GatewayError::Store`]
    /// if the state store cannot be read: nothing changed then.
    pub async fn reload(&self, options: TollgateOptions) -> Result<Reloaded, GatewayError> {
        let mut current = self.current.lock().await;
        if section(&current.sources) != section(&options.sources) {
            return Err(GatewayError::Reload(
                "[sources] changed: sources are opened at start-up, restart to change them"
                    .to_owned(),
            ));
        }
        let catalog = match &self.sync {
            Some(sync) => sync.catalog_of(&options).await??,
            None => Catalog::from_options(&options)?,
        };
        let certificates = self.read_certificates(&options)?;

        let mut reloaded = Reloaded {
            need_restart: need_restart(&current, &options),
            ..Reloaded::default()
        };
        for (listener, swap) in certificates {
            swap();
            reloaded.certificates.push(listener);
        }
        match &self.sync {
            Some(sync) => sync.rebase(options.clone()).await?,
            None => reloaded.not_served = self.service.apply(Arc::new(catalog)).await,
        }
        *current = options;
        Ok(reloaded)
    }

    /// Each listener's new certificate, read and checked, as what swaps it in.
    fn read_certificates(&self, options: &TollgateOptions) -> Result<Vec<Swap>, GatewayError> {
        let mut swaps: Vec<Swap> = Vec::new();
        if let (Some(pg), Some(tls)) = (&self.certificates.pg, &options.pg.tls) {
            let swap = pg.prepare(CertificateFiles::read(tls, "pg")?)?;
            swaps.push(("pg", Box::new(move || swap.install())));
        }
        let flight = options.flight.as_ref().and_then(|f| f.tls.as_ref());
        if let (Some(certificate), Some(tls)) = (&self.certificates.flight, flight) {
            let files = CertificateFiles::read(tls, "flight")?;
            let certificate = Arc::clone(certificate);
            swaps.push(("flight", Box::new(move || certificate.replace(files))));
        }
        let http = options.http.as_ref().and_then(|h| h.tls.as_ref());
        if let (Some(certificate), Some(tls)) = (&self.certificates.http, http) {
            let files = CertificateFiles::read(tls, "http")?;
            let certificate = Arc::clone(certificate);
            swaps.push(("http", Box::new(move || certificate.replace(files))));
        }
        Ok(swaps)
    }
}

/// A listener's name and what presents its new certificate.
type Swap = (&'static str, Box<dyn FnOnce() + Send>);

/// A section of the configuration as JSON, to compare two versions of it.
fn section(value: &impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// A listener's section without its certificate's file names, which a reload reads again.
fn listener_section(value: &impl Serialize) -> Value {
    let mut value = section(value);
    if let Some(tls) = value.get_mut("tls").and_then(Value::as_object_mut) {
        tls.remove("cert");
        tls.remove("key");
    }
    value
}

/// The sections read only at start-up that differ between `old` and `new`.
fn need_restart(old: &TollgateOptions, new: &TollgateOptions) -> Vec<&'static str> {
    let sections = [
        ("database", section(&old.database), section(&new.database)),
        ("pg", listener_section(&old.pg), listener_section(&new.pg)),
        (
            "flight",
            listener_section(&old.flight),
            listener_section(&new.flight),
        ),
        (
            "http",
            listener_section(&old.http),
            listener_section(&new.http),
        ),
        ("auth", section(&old.auth), section(&new.auth)),
        ("engine", section(&old.engine), section(&new.engine)),
        ("usage", section(&old.usage), section(&new.usage)),
        ("control", section(&old.control), section(&new.control)),
    ];
    sections
        .into_iter()
        .filter(|(_, old, new)| old != new)
        .map(|(name, _, _)| name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_catalog::TlsOptions;

    fn tls(cert: &str) -> TlsOptions {
        TlsOptions {
            cert: cert.into(),
            key: format!("{cert}.key").into(),
            require: false,
        }
    }

    #[test]
    fn new_certificate_files_and_catalog_changes_need_no_restart() {
        let old = TollgateOptions {
            pg: tollgate_catalog::PgListenerOptions {
                tls: Some(tls("a.pem")),
                ..Default::default()
            },
            ..Default::default()
        };
        let mut new = old.clone();
        new.pg.tls = Some(tls("b.pem"));
        new.tenants = Vec::new();
        assert!(need_restart(&old, &new).is_empty());

        new.pg.max_connections += 1;
        new.engine.isolation = !old.engine.isolation;
        new.pg.tls.as_mut().expect("tls").require = true;
        assert_eq!(need_restart(&old, &new), ["pg", "engine"]);
    }
}
