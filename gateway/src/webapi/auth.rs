//! Who calls the Web-API: a channel's bearer token (`<login>.<password>`) or HTTP Basic
//! with the same login, checked against the login's SCRAM verifier.
//!
//! ```text
//! Authorization: Bearer <login>.<password> | Basic b64(login:password)
//!     ─▶ throttled? 401 ─▶ principal allowed on `http` ─▶ verified before with this verifier?
//!     ─▶ else PBKDF2 check (then remembered) ─▶ the principal's session
//! ```
//!
//! A web page sends its token on every request, so a successful check is remembered (by
//! the login and the SHA-256 of the password, never the password) for as long as the
//! login keeps the same verifier: a rotated, expired or revoked login fails at once,
//! because the principal is looked up in the live catalog on every request.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use moka::sync::Cache;
use ring::digest::{SHA256, digest};
use tollgate_catalog::scram::Verifier;
use tollgate_catalog::{ChannelKind, LoginRefusal, LoginThrottle, Principal};
use tollgate_planner::metering::{ClientInfo, Protocol};
use tollgate_planner::{QueryService, TenantSession};

use super::WebApi;
use super::errors::WebError;

/// How long a verified password is remembered.
const REMEMBERED: Duration = Duration::from_secs(600);
/// How many verified passwords are remembered.
const REMEMBERED_LOGINS: u64 = 10_000;

/// Checks credentials of the logins of one channel kind.
pub struct WebAuth {
    service: Arc<QueryService>,
    throttle: LoginThrottle,
    kind: ChannelKind,
    protocol: Protocol,
    verified: Cache<(String, [u8; 32]), Verifier>,
}

impl std::fmt::Debug for WebAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebAuth").finish_non_exhaustive()
    }
}

/// An authenticated caller of the Web-API.
#[derive(Debug, Clone)]
pub struct WebCaller {
    /// The login.
    pub principal: Arc<Principal>,
    /// The session it works in: its channel's, or its tenant's.
    pub session: Arc<TenantSession>,
    /// Where the call came from, for usage records.
    pub client: Arc<ClientInfo>,
}

impl WebAuth {
    /// Checks credentials against the principals `service` serves on channels of `kind`
    /// (and tenants' own logins), throttled by `throttle`; their usage is recorded under
    /// `protocol`.
    pub fn new(
        service: Arc<QueryService>,
        throttle: LoginThrottle,
        kind: ChannelKind,
        protocol: Protocol,
    ) -> Self {
        Self {
            service,
            throttle,
            kind,
            protocol,
            verified: Cache::builder()
                .max_capacity(REMEMBERED_LOGINS)
                .time_to_live(REMEMBERED)
                .build(),
        }
    }

    /// The caller of a request with `headers`, from `address`.
    ///
    /// # Errors
    /// [`WebError::Unauthorized`] for missing, malformed, wrong or throttled credentials.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        address: Option<IpAddr>,
    ) -> Result<WebCaller, WebError> {
        let header = headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| {
                WebError::Unauthorized(
                    "credentials required: Authorization: Bearer <token> (from the channel's ready event) or Basic".to_owned(),
                )
            })?
            .to_str()
            .map_err(|_| WebError::Unauthorized("the authorization header is not text".to_owned()))?;
        let (user, password) = credentials(header)?;
        let principal = self.verify(&user, &password, address)?;
        let session = self.service.session(&principal).ok_or_else(|| {
            WebError::Unauthorized(format!(
                "tenant \"{}\" is not served by this gateway",
                principal.tenant
            ))
        })?;
        let client = Arc::new(ClientInfo {
            protocol: self.protocol,
            address: address.map(|address| address.to_string()),
            application_name: headers
                .get(header::USER_AGENT)
                .and_then(|agent| agent.to_str().ok())
                .map(str::to_owned),
        });
        Ok(WebCaller {
            principal,
            session,
            client,
        })
    }

    /// The tenant of the login an `Authorization` header names, unverified: only for
    /// choosing CORS headers of a response whose own check decides what it holds.
    pub fn claimed_tenant(&self, headers: &HeaderMap) -> Option<String> {
        let header = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let (user, _) = credentials(header).ok()?;
        self.service
            .principal_on(&user, self.kind)
            .map(|principal| principal.tenant.clone())
    }

    fn verify(
        &self,
        user: &str,
        password: &str,
        address: Option<IpAddr>,
    ) -> Result<Arc<Principal>, WebError> {
        let address = address.unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let principal = self.service.principal_on(user, self.kind);
        let key = (user.to_owned(), sha256(password));
        if let Some(principal) = &principal
            && self.throttle.locked(user, address).is_none()
            && self
                .verified
                .get(&key)
                .is_some_and(|verifier| verifier == principal.verifier)
        {
            return Ok(Arc::clone(principal));
        }
        let protocol = self.protocol.as_str();
        match self
            .throttle
            .check_password(user, password, principal, address)
        {
            Ok(principal) => {
                self.verified.insert(key, principal.verifier.clone());
                tracing::info!(target: "tollgate::audit", event = "authentication", outcome = "success", user, tenant = %principal.tenant, client = %address, protocol, "login");
                Ok(principal)
            }
            Err(LoginRefusal::LockedOut) => {
                tracing::warn!(target: "tollgate::audit", event = "authentication", outcome = "locked_out", user, client = %address, protocol, "login refused: too many failures");
                Err(WebError::Unauthorized(format!(
                    "too many failed logins for user \"{user}\"; try again later"
                )))
            }
            Err(LoginRefusal::Failed) => {
                tracing::warn!(target: "tollgate::audit", event = "authentication", outcome = "failure", user, client = %address, protocol, "login failed");
                Err(WebError::Unauthorized(format!(
                    "password authentication failed for user \"{user}\""
                )))
            }
        }
    }
}

/// The login and password of an `Authorization` header.
fn credentials(header: &str) -> Result<(String, String), WebError> {
    let malformed = || WebError::Unauthorized("malformed credentials".to_owned());
    let (scheme, rest) = header.split_once(' ').ok_or_else(malformed)?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("Bearer") {
        let (login, password) = rest.rsplit_once('.').ok_or_else(malformed)?;
        return Ok((login.to_owned(), password.to_owned()));
    }
    if scheme.eq_ignore_ascii_case("Basic") {
        let decoded = STANDARD
            .decode(rest)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(malformed)?;
        let (login, password) = decoded.split_once(':').ok_or_else(malformed)?;
        return Ok((login.to_owned(), password.to_owned()));
    }
    Err(WebError::Unauthorized(
        "unsupported authorization scheme; use Bearer or Basic".to_owned(),
    ))
}

fn sha256(text: &str) -> [u8; 32] {
    let mut hash = [0u8; 32];
    hash.copy_from_slice(digest(&SHA256, text.as_bytes()).as_ref());
    hash
}

impl FromRequestParts<Arc<WebApi>> for WebCaller {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<WebApi>,
    ) -> Result<Self, Self::Rejection> {
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip());
        state.auth.authenticate(&parts.headers, address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_split_at_the_last_dot() {
        assert_eq!(
            credentials("Bearer ch_1.2_1.secret").expect("token"),
            ("ch_1.2_1".to_owned(), "secret".to_owned())
        );
        let basic = format!("Basic {}", STANDARD.encode("acme:pass:word"));
        assert_eq!(
            credentials(&basic).expect("basic"),
            ("acme".to_owned(), "pass:word".to_owned())
        );
        assert!(credentials("Bearer nodot").is_err());
        assert!(credentials("Digest x").is_err());
        assert!(credentials("Basic !!!").is_err());
    }
}
