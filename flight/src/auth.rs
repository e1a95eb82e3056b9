//! Who is calling: HTTP Basic logins against the catalog's principals, and bearer tokens.
//!
//! ```text
//! Handshake / any call with `authorization: Basic b64(user:password)`
//!     ─▶ throttled? UNAUTHENTICATED ─▶ SCRAM verifier check ─▶ bearer token (signed, expiring)
//! any call with `authorization: Bearer <token>` ─▶ signature, expiry, principal still exists
//! ```
//!
//! Passwords are checked against the same SCRAM-SHA-256 verifiers the Postgres front end
//! uses, so one login works on both. A wrong password and an unknown user fail alike (an
//! unknown user still costs one key derivation), and failures count against the same kind
//! of throttle as pgwire logins.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use base64::{Engine, alphabet};
use serde::{Deserialize, Serialize};
use tollgate_catalog::{ChannelKind, LoginRefusal, LoginThrottle, Principal};
use tollgate_planner::QueryService;
use tollgate_planner::metering::{ClientInfo, Protocol};
use tonic::Status;
use tonic::metadata::MetadataMap;

use crate::signing::{Purpose, Signer, expires_in, now_seconds};

/// Base64 for Basic credentials, with or without padding: Go clients (ADBC) omit it.
const BASIC: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The claims of a bearer token.
#[derive(Debug, Serialize, Deserialize)]
struct TokenClaims {
    user: String,
    tenant: String,
    expires: u64,
}

/// Checks logins and tokens.
#[derive(Debug)]
pub struct Authenticator {
    service: Arc<QueryService>,
    signer: Arc<Signer>,
    throttle: LoginThrottle,
    token_ttl: Duration,
}

/// A caller: the principal and, when it logged in with a password on this call, the
/// bearer token to hand back.
#[derive(Debug)]
pub struct Caller {
    /// The authenticated principal.
    pub principal: Arc<Principal>,
    /// A fresh token after a Basic login.
    pub issued_token: Option<String>,
    /// Where the call came from, for usage records.
    pub client: Arc<ClientInfo>,
}

impl Authenticator {
    /// An authenticator over the principals of the catalog `service` serves.
    pub fn new(
        service: Arc<QueryService>,
        signer: Arc<Signer>,
        throttle: LoginThrottle,
        token_ttl: Duration,
    ) -> Self {
        Self {
            service,
            signer,
            throttle,
            token_ttl,
        }
    }

    /// Authenticates the caller of a request from its `authorization` header.
    ///
    /// # Errors
    /// UNAUTHENTICATED for a missing, malformed, wrong, expired or throttled credential;
    /// UNAVAILABLE for a new login while the gateway shuts down.
    pub fn authenticate(
        &self,
        metadata: &MetadataMap,
        address: Option<IpAddr>,
    ) -> Result<Caller, Status> {
        let header = metadata
            .get("authorization")
            .ok_or_else(|| {
                Status::unauthenticated(
                    "authentication required: call Handshake with HTTP Basic credentials, then send `authorization: Bearer <token>`",
                )
            })?
            .to_str()
            .map_err(|_| Status::unauthenticated("the authorization header is not text"))?;
        let client = Arc::new(ClientInfo {
            protocol: Protocol::FlightSql,
            address: address.map(|address| address.to_string()),
            // gRPC clients name themselves in `user-agent` (ADBC, pyarrow, Spark's driver).
            application_name: metadata
                .get("user-agent")
                .and_then(|agent| agent.to_str().ok())
                .map(str::to_owned),
        });
        if let Some(token) = strip_scheme(header, "Bearer") {
            return Ok(Caller {
                principal: self.verify_token(token)?,
                issued_token: None,
                client,
            });
        }
        if let Some(encoded) = strip_scheme(header, "Basic") {
            if self.service.draining() {
                return Err(Status::unavailable("the gateway is shutting down"));
            }
            let principal = self.login(encoded, address)?;
            let token = self.issue_token(&principal)?;
            return Ok(Caller {
                principal,
                issued_token: Some(token),
                client,
            });
        }
        Err(Status::unauthenticated(
            "unsupported authorization scheme; use Basic or Bearer",
        ))
    }

    fn login(&self, encoded: &str, address: Option<IpAddr>) -> Result<Arc<Principal>, Status> {
        let decoded = BASIC
            .decode(encoded.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| Status::unauthenticated("malformed Basic credentials"))?;
        let (user, password) = decoded
            .split_once(':')
            .ok_or_else(|| Status::unauthenticated("malformed Basic credentials"))?;
        let address = address.unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let principal = self.service.principal_on(user, ChannelKind::Flight);
        match self
            .throttle
            .check_password(user, password, principal, address)
        {
            Ok(principal) => {
                tracing::info!(target: "tollgate::audit", event = "authentication", outcome = "success", user, tenant = %principal.tenant, client = %address, protocol = "flight_sql", "login");
                Ok(principal)
            }
            Err(LoginRefusal::LockedOut) => {
                tracing::warn!(target: "tollgate::audit", event = "authentication", outcome = "locked_out", user, client = %address, protocol = "flight_sql", "login refused: too many failures");
                Err(Status::unauthenticated(format!(
                    "too many failed logins for user \"{user}\"; try again later"
                )))
            }
            Err(LoginRefusal::Failed) => {
                tracing::warn!(target: "tollgate::audit", event = "authentication", outcome = "failure", user, client = %address, protocol = "flight_sql", "login failed");
                Err(Status::unauthenticated(format!(
                    "password authentication failed for user \"{user}\""
                )))
            }
        }
    }

    /// A bearer token for `principal`, valid for the configured time.
    ///
    /// # Errors
    /// INTERNAL if the claims cannot be signed.
    pub fn issue_token(&self, principal: &Principal) -> Result<String, Status> {
        let claims = TokenClaims {
            user: principal.user.clone(),
            tenant: principal.tenant.clone(),
            expires: expires_in(self.token_ttl),
        };
        let sealed = self
            .signer
            .seal(Purpose::Token, &claims)
            .map_err(|e| crate::error::internal_status("cannot sign a token", e))?;
        Ok(URL_SAFE_NO_PAD.encode(sealed))
    }

    fn verify_token(&self, token: &str) -> Result<Arc<Principal>, Status> {
        let invalid = || Status::unauthenticated("invalid bearer token; authenticate again");
        let sealed = URL_SAFE_NO_PAD
            .decode(token.trim())
            .map_err(|_| invalid())?;
        let claims: TokenClaims = self
            .signer
            .open(Purpose::Token, &sealed)
            .ok_or_else(invalid)?;
        if claims.expires <= now_seconds() {
            return Err(Status::unauthenticated(
                "the bearer token has expired; authenticate again",
            ));
        }
        // A principal removed from (or moved in) the catalog, or revoked, loses its tokens.
        self.service
            .principal_on(&claims.user, ChannelKind::Flight)
            .filter(|principal| principal.tenant == claims.tenant)
            .ok_or_else(invalid)
    }
}

/// The credentials after `scheme ` (case-insensitive), if the header uses that scheme.
fn strip_scheme<'a>(header: &'a str, scheme: &str) -> Option<&'a str> {
    let (given, rest) = header.split_once(' ')?;
    given.eq_ignore_ascii_case(scheme).then_some(rest)
}
