//! Start-up and SCRAM-SHA-256 authentication of Postgres clients.
//!
//! ```text
//! Startup ─▶ shutting down? 57P03 ─▶ listener full? 53300 ─▶ TLS required? 28000
//!         ─▶ database known? 3D000
//!         ─▶ throttled? 28000 ─▶ SCRAM exchange (verifier from the catalog) ─▶ login
//! ```
//!
//! Only SCRAM-SHA-256 is offered, never a cleartext or MD5 password exchange. A wrong
//! password and an unknown user fail with the same 28P01 message after the same exchange:
//! unknown users get a throw-away verifier whose salt is stable per user name, so neither the
//! messages nor the salts tell which users exist.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use futures::sink::Sink;
use pgwire::api::ClientInfo;
use pgwire::api::auth::driver::AuthOutcome;
use pgwire::api::auth::mechanism::AuthMechanismFactory;
use pgwire::api::auth::sasl::scram::{ScramAuth, ScramSecret};
use pgwire::api::auth::{
    AuthDriver, AuthSource, LoginInfo, Password, ServerParameterProvider, StartupHandler,
};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use tollgate_catalog::{ChannelKind, Principal};
use tollgate_planner::QueryService;

use super::PgShared;
use super::connection::{ConnectionState, Login};
use super::errors::fatal;

/// Looks principals' verifiers up in the catalog now served.
#[derive(Debug)]
pub struct CatalogAuthSource {
    service: Arc<QueryService>,
    /// Key for deriving stable salts of unknown users.
    decoy_key: hmac::Key,
}

impl CatalogAuthSource {
    /// # Errors
    /// If the system random generator fails.
    pub fn new(service: Arc<QueryService>) -> Result<Self, ring::error::Unspecified> {
        let decoy_key = hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new())?;
        Ok(Self { service, decoy_key })
    }

    fn decoy_secret(&self, user: &str) -> PgWireResult<ScramSecret> {
        let salt = hmac::sign(&self.decoy_key, user.as_bytes()).as_ref()[..16].to_vec();
        let mut keys = [0u8; 64];
        SystemRandom::new()
            .fill(&mut keys)
            .map_err(|_| fatal("XX000", "cannot draw random bytes"))?;
        Ok(ScramSecret::Verifier {
            salt,
            iterations: tollgate_catalog::scram::DEFAULT_ITERATIONS.get() as usize,
            stored_key: keys[..32].to_vec(),
            server_key: keys[32..].to_vec(),
        })
    }
}

#[async_trait]
impl AuthSource<Arc<Principal>> for CatalogAuthSource {
    async fn get_password(&self, _login: &LoginInfo) -> PgWireResult<Password> {
        // Only SCRAM is offered, which asks for `get_scram_secret`.
        Err(fatal(
            "28000",
            "only SCRAM-SHA-256 authentication is supported",
        ))
    }

    async fn get_scram_secret(
        &self,
        login: &LoginInfo,
    ) -> PgWireResult<(ScramSecret, Option<Arc<Principal>>)> {
        let user = login.user().unwrap_or_default();
        match self.service.principal_on(user, ChannelKind::Postgres) {
            Some(principal) => {
                let verifier = &principal.verifier;
                let secret = ScramSecret::Verifier {
                    salt: verifier.salt.clone(),
                    iterations: verifier.iterations as usize,
                    stored_key: verifier.stored_key.clone(),
                    server_key: verifier.server_key.clone(),
                };
                Ok((secret, Some(principal)))
            }
            None => Ok((self.decoy_secret(user)?, None)),
        }
    }
}

/// Parameters sent to the client once it is authenticated.
#[derive(Debug)]
pub struct SessionParameterProvider {
    connection: Arc<ConnectionState>,
}

impl ServerParameterProvider for SessionParameterProvider {
    fn server_parameters<C: ClientInfo>(&self, _client: &C) -> Option<HashMap<String, String>> {
        self.connection.with_settings(|settings| {
            settings
                .reported()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
    }
}

/// The start-up handler of one connection.
pub struct TollgateStartupHandler {
    shared: Arc<PgShared>,
    connection: Arc<ConnectionState>,
    driver: AuthDriver<SessionParameterProvider, Arc<Principal>>,
}

impl TollgateStartupHandler {
    /// A handler for one connection.
    pub fn new(shared: Arc<PgShared>, connection: Arc<ConnectionState>) -> Self {
        let driver = AuthDriver::new(SessionParameterProvider {
            connection: Arc::clone(&connection),
        });
        Self {
            shared,
            connection,
            driver,
        }
    }

    fn user_and_address<C: ClientInfo>(client: &C) -> (String, IpAddr) {
        let user = client
            .metadata()
            .get(pgwire::api::METADATA_USER)
            .cloned()
            .unwrap_or_default();
        (user, client.socket_addr().ip())
    }

    fn authentication_failed(&self, user: &str, address: IpAddr) -> PgWireError {
        self.shared.throttle.failed(user, address);
        tracing::warn!(target: "tollgate::audit", event = "authentication", outcome = "failure", user, client = %address, protocol = "pgwire");
        fatal(
            "28P01",
            format!("password authentication failed for user \"{user}\""),
        )
    }

    async fn begin<C>(&self, client: &mut C) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if self.shared.service.draining() {
            return Err(fatal("57P03", "the database system is shutting down"));
        }
        if !self.connection.admitted() {
            return Err(fatal("53300", "sorry, too many clients already"));
        }
        if self.shared.require_tls && !client.is_secure() {
            return Err(fatal(
                "28000",
                "this server requires TLS: connect with sslmode=require",
            ));
        }
        let (user, address) = Self::user_and_address(client);
        if user.is_empty() {
            return Err(fatal(
                "28000",
                "no PostgreSQL user name specified in startup packet",
            ));
        }
        let database = client
            .metadata()
            .get(pgwire::api::METADATA_DATABASE)
            .cloned()
            .unwrap_or_else(|| user.clone());
        if database != self.shared.database {
            return Err(fatal(
                "3D000",
                format!("database \"{database}\" does not exist"),
            ));
        }
        if let Some(remaining) = self.shared.throttle.locked(&user, address) {
            return Err(fatal(
                "28000",
                format!(
                    "too many failed login attempts for user \"{user}\" from this address; try again in {} s",
                    remaining.as_secs().max(1)
                ),
            ));
        }
        let mechanism = self
            .shared
            .scram
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .create();
        self.driver
            .begin_authentication(client, mechanism)
            .await
            .map(|_| ())
    }
}

#[async_trait]
impl StartupHandler for TollgateStartupHandler {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                pgwire::api::auth::protocol_negotiation(client, startup).await?;
                pgwire::api::auth::save_startup_parameters_to_metadata(client, startup);
                self.begin(client).await
            }
            PgWireFrontendMessage::PasswordMessageFamily(message) => {
                let (user, address) = Self::user_and_address(client);
                match self.driver.advance_authentication(client, message).await {
                    Ok(AuthOutcome::InProgress) => Ok(()),
                    Ok(AuthOutcome::Authenticated {
                        identity: Some(principal),
                        final_message,
                    }) => {
                        let revoked = self.shared.service.revocation(&principal);
                        let session = self.shared.service.session(&principal);
                        let Some(session) = session.filter(|_| !revoked.is_cancelled()) else {
                            return Err(self.authentication_failed(&user, address));
                        };
                        self.shared.throttle.succeeded(&user, address);
                        let slot = match session.pool().connect() {
                            Ok(slot) => slot,
                            Err(error) => {
                                tracing::warn!(target: "tollgate::audit", event = "connection", outcome = "refused", user, tenant = %principal.tenant, client = %address, protocol = "pgwire", reason = %error);
                                return Err(fatal(error.kind().sqlstate(), error.client_message()));
                            }
                        };
                        tracing::info!(target: "tollgate::audit", event = "authentication", outcome = "success", user, tenant = %principal.tenant, client = %address, protocol = "pgwire");
                        let startup: BTreeMap<String, String> = client
                            .metadata()
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect();
                        self.connection.log_in(
                            Login {
                                principal,
                                session,
                                service: Arc::clone(&self.shared.service),
                                _slot: Arc::new(slot),
                                address: client.socket_addr(),
                                revoked,
                            },
                            &startup,
                            tollgate_planner::SERVER_VERSION,
                        );
                        self.driver
                            .complete_authentication(client, final_message)
                            .await?;
                        // The backend key exists only once authentication completed.
                        let (pid, secret) = client.pid_and_secret_key();
                        self.connection
                            .make_cancellable((pid, secret.to_bytes().to_vec()));
                        Ok(())
                    }
                    Ok(AuthOutcome::Authenticated { identity: None, .. }) | Err(_) => {
                        Err(self.authentication_failed(&user, address))
                    }
                }
            }
            // The frame reader lets only the two above through; should another get here,
            // refuse it as PostgreSQL does rather than leave the client waiting.
            _ => Err(fatal("08P01", "unexpected message during start-up")),
        }
    }
}

/// The SCRAM mechanism shared by all connections of a listener.
pub fn scram_mechanism(
    service: Arc<QueryService>,
    certificate_pem: Option<&[u8]>,
) -> Result<Arc<ScramAuth<Arc<Principal>>>, String> {
    let source =
        CatalogAuthSource::new(service).map_err(|_| "cannot draw random bytes".to_owned())?;
    let mut scram = ScramAuth::new(Arc::new(source));
    scram.set_iterations(tollgate_catalog::scram::DEFAULT_ITERATIONS.get() as usize);
    if let Some(pem) = certificate_pem {
        scram.configure_certificate(pem).map_err(|e| {
            format!("cannot use the TLS certificate for SCRAM channel binding: {e}")
        })?;
    }
    Ok(Arc::new(scram))
}
