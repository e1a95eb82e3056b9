//! Per-connection state, and the registry CancelRequests are matched against.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use pgwire::error::PgWireResult;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tollgate_catalog::Principal;
use tollgate_planner::metering::{ClientInfo, Protocol};
use tollgate_planner::pool::ConnectionSlot;
use tollgate_planner::{QueryContext, QueryService, TenantSession};

use super::cursors::Cursors;
use super::errors::user_error;
use super::settings::{SessionSettings, SharedSettings};
use super::transaction_block::Recovery;
use tollgate_planner::session_parameters::SessionParameters;

/// The key a client quotes in a CancelRequest: backend pid and secret key bytes.
pub type CancelKey = (i32, Vec<u8>);

/// Connections by cancel key. A CancelRequest arrives on a fresh connection that never
/// authenticates, so it can only reach the query through this registry.
#[derive(Debug, Default)]
pub struct CancelRegistry {
    connections: Mutex<HashMap<CancelKey, Weak<ConnectionState>>>,
}

impl CancelRegistry {
    fn register(&self, key: CancelKey, connection: &Arc<ConnectionState>) {
        if let Ok(mut map) = self.connections.lock() {
            map.insert(key, Arc::downgrade(connection));
        }
    }

    fn remove(&self, key: &CancelKey) {
        if let Ok(mut map) = self.connections.lock() {
            map.remove(key);
        }
    }

    /// Cancels the running query of the connection with `key`, if any.
    pub fn cancel(&self, key: &CancelKey) {
        let connection = self
            .connections
            .lock()
            .ok()
            .and_then(|map| map.get(key).and_then(Weak::upgrade));
        match connection {
            Some(connection) => connection.cancel_running_query(),
            None => tracing::debug!(pid = key.0, "CancelRequest for no known connection"),
        }
    }
}

/// Who is connected, what they set, the query they are running and their open cursors.
#[derive(Debug)]
pub struct ConnectionState {
    registry: Arc<CancelRegistry>,
    /// Held for the connection's life; `None` when the listener was full.
    permit: Option<OwnedSemaphorePermit>,
    login: OnceLock<Login>,
    settings: SharedSettings,
    running: Mutex<Option<CancellationToken>>,
    cancel_key: OnceLock<CancelKey>,
    cursors: Cursors,
    recovery: Recovery,
}

/// An authenticated principal and its tenant's session.
#[derive(Debug, Clone)]
pub struct Login {
    /// The principal.
    pub principal: Arc<Principal>,
    /// Its tenant's scoped session at login.
    pub session: Arc<TenantSession>,
    /// Where the session of later statements comes from, as the catalog changes.
    pub service: Arc<QueryService>,
    /// The connection's slot under the tenant's `max_connections`, held while it lives.
    pub _slot: Arc<ConnectionSlot>,
    /// The client's address.
    pub address: SocketAddr,
    /// Fires when the principal is revoked: the connection ends then.
    pub revoked: CancellationToken,
}

impl ConnectionState {
    /// State of a new connection; `permit` is its slot under the listener's limit.
    pub fn new(registry: Arc<CancelRegistry>, permit: Option<OwnedSemaphorePermit>) -> Self {
        Self {
            registry,
            permit,
            login: OnceLock::new(),
            settings: SharedSettings::default(),
            running: Mutex::new(None),
            cancel_key: OnceLock::new(),
            cursors: Cursors::default(),
            recovery: Recovery::default(),
        }
    }

    /// Whether the connection got a slot under the listener's connection limit.
    pub fn admitted(&self) -> bool {
        self.permit.is_some()
    }

    /// Records a successful login, with the session parameters of the startup packet.
    pub fn log_in(&self, login: Login, startup: &BTreeMap<String, String>, server_version: &str) {
        self.settings.replace(SessionSettings::new(
            &login.principal.user,
            server_version,
            startup,
        ));
        let _ = self.login.set(login);
    }

    /// Lets CancelRequests quoting `key` (the backend key data sent to the client) reach
    /// this connection's queries.
    pub fn make_cancellable(self: &Arc<Self>, key: CancelKey) {
        self.registry.register(key.clone(), self);
        let _ = self.cancel_key.set(key);
    }

    /// A context for the next query: who runs it, with which session parameters, and a
    /// cancel token a CancelRequest fires.
    ///
    /// # Errors
    /// 08P01 before authentication.
    pub fn query_context(&self) -> PgWireResult<QueryContext> {
        let login = self
            .login()
            .ok_or_else(|| user_error("08P01", "the connection is not authenticated"))?;
        let client = ClientInfo {
            protocol: Protocol::Pgwire,
            address: Some(login.address.to_string()),
            application_name: self
                .settings
                .get("application_name")
                .filter(|name| !name.is_empty()),
        };
        // The catalog may have changed since login (grants, datasets, the profile): each
        // statement runs in the principal's session now. One that is gone is revoked, and
        // its revocation ends the connection.
        let session = login
            .service
            .session(&login.principal)
            .unwrap_or_else(|| Arc::clone(&login.session));
        Ok(QueryContext::new(
            session,
            Arc::clone(&login.principal),
            self.start_query(),
            Arc::new(client),
        )
        .with_settings(Arc::new(self.settings.clone())))
    }

    /// The connection's open SQL cursors.
    pub fn cursors(&self) -> &Cursors {
        &self.cursors
    }

    /// Whether a failed transaction block went on after `ROLLBACK TO SAVEPOINT`.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// The login, once authenticated.
    pub fn login(&self) -> Option<&Login> {
        self.login.get()
    }

    /// Runs `f` on the session settings (present once logged in).
    pub fn with_settings<T>(&self, f: impl FnOnce(&mut SessionSettings) -> T) -> Option<T> {
        self.settings.with(f)
    }

    /// A cancel token for the query about to start; a CancelRequest fires it.
    pub fn start_query(&self) -> CancellationToken {
        let token = CancellationToken::new();
        if let Ok(mut running) = self.running.lock() {
            *running = Some(token.clone());
        }
        token
    }

    fn cancel_running_query(&self) {
        if let Some(token) = self.running.lock().ok().and_then(|running| running.clone()) {
            token.cancel();
        }
    }
}

impl Drop for ConnectionState {
    fn drop(&mut self) {
        if let Some(key) = self.cancel_key.get() {
            self.registry.remove(key);
        }
        // A query still streaming when the client goes away stops with its connection.
        self.cancel_running_query();
    }
}
