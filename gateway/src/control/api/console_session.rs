//! Web console sessions: `POST /console/session` signs in with an API key, or with a
//! login and its password (a channel's, or the tenant's own), and sets an HttpOnly,
//! SameSite=Strict cookie (also `Secure` when the listener serves HTTPS); the `/v1` routes
//! then take that cookie as the key or login, and unsafe methods also need the session's
//! `X-CSRF-Token`. The key or login is checked again on every request: revoking it ends its
//! sessions, and so does a change of the login's password (a rotation's old login ends when
//! its overlap does).
//!
//! ```text
//! POST /console/session {api_key} | {login, password}
//!   ─▶ checked (logins throttled like the other front ends')
//!   ─▶ console_session record (by SHA-256 of the cookie) ─▶ Set-Cookie tollgate_console=…;
//!      {role, tenant, csrf}
//! GET  /v1/… (cookie)              ─▶ session ─▶ its key or login ─▶ the caller
//! POST /v1/… (cookie + X-CSRF-Token)
//! ```

use std::sync::Arc;

use std::net::{IpAddr, SocketAddr};

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{Extensions, HeaderMap, Method, header};
use axum::response::{IntoResponse, Response};
use chrono::{Duration, Utc};
use ring::digest::{SHA256, digest};
use serde::Deserialize;
use serde_json::json;
use tollgate_catalog::LoginRefusal;
use tollgate_catalog::store::records::{CONSOLE_SESSION, ConsoleLogin, ConsoleSessionRecord};
use tollgate_catalog::store::{Expect, Write};

use super::{ApiState, Caller, JsonBody};
use crate::control::keys::{PresentedKey, random_text, same_text};
use crate::control::{ControlPlane, Problem};

/// The session cookie's name.
const COOKIE: &str = "tollgate_console";
/// How long a session lasts.
const LIFETIME_HOURS: i64 = 8;

/// Body of `POST /console/session`: an API key, or a login and its password.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// A tenant's or the provider's API key.
    #[serde(default)]
    api_key: Option<String>,
    /// A login's user name (with `password`).
    #[serde(default)]
    login: Option<String>,
    /// The login's password.
    #[serde(default)]
    password: Option<String>,
}

/// The session a request's cookie names, if it names a live one.
///
/// # Errors
/// [`Problem`] when the store cannot be read.
pub(super) async fn of_request(
    headers: &HeaderMap,
    plane: &ControlPlane,
) -> Result<Option<ConsoleSessionRecord>, Problem> {
    let Some(token) = cookie(headers) else {
        return Ok(None);
    };
    let Some(document) = plane.store.get(CONSOLE_SESSION, &token_id(&token)).await? else {
        return Ok(None);
    };
    let session: ConsoleSessionRecord = document.parse()?;
    Ok((session.expires_at > Utc::now()).then_some(session))
}

/// Whether a request of `session` may do what its method asks: safe methods always,
/// others with the session's CSRF token in `X-CSRF-Token`.
pub(super) fn csrf_allows(
    method: &Method,
    headers: &HeaderMap,
    session: &ConsoleSessionRecord,
) -> bool {
    let safe = matches!(method.as_str(), "GET" | "HEAD" | "OPTIONS");
    safe || headers
        .get("x-csrf-token")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|token| same_text(token, &session.csrf))
}

/// `POST /console/session`: signs in with an API key, or with a login and its password.
///
/// # Errors
/// 400 for a body with neither (or both), 401 for a key or password that is not valid (or a
/// login locked out by failures), 403 for a request from another site.
pub async fn sign_in(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    extensions: Extensions,
    JsonBody(body): JsonBody<SignIn>,
) -> Result<Response, Problem> {
    if !same_origin(&headers) {
        return Err(Problem::CrossSite);
    }
    let (caller, key, login) = match body {
        SignIn {
            api_key: Some(api_key),
            login: None,
            password: None,
        } => {
            let presented = PresentedKey::parse(&api_key).ok_or(Problem::Unauthorized)?;
            let caller = super::caller_of_key(&state, &presented.id, Some(&presented)).await?;
            (caller, presented.id, None)
        }
        SignIn {
            api_key: None,
            login: Some(user),
            password: Some(password),
        } => {
            let address = extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(IpAddr::from([0, 0, 0, 0]), |info| info.0.ip());
            let (caller, login) = check_login(&state, &user, &password, address)?;
            (caller, String::new(), Some(login))
        }
        _ => {
            return Err(Problem::BadRequest(
                "give either `api_key`, or `login` and `password`".to_owned(),
            ));
        }
    };
    let token = random_text(32).map_err(|_| Problem::Unavailable)?;
    let now = Utc::now();
    let session = ConsoleSessionRecord {
        key,
        login,
        csrf: random_text(24).map_err(|_| Problem::Unavailable)?,
        created_at: now,
        expires_at: now + Duration::hours(LIFETIME_HOURS),
    };
    let tenant = match &caller {
        Caller::Tenant { tenant, .. } | Caller::Login { tenant, .. } => tenant.clone(),
        Caller::Admin { .. } => String::new(),
    };
    state
        .plane
        .store
        .write(vec![Write::put(
            CONSOLE_SESSION,
            token_id(&token),
            tenant,
            &session,
            Expect::Absent,
        )])
        .await?;
    let cookie = format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        LIFETIME_HOURS * 3600,
        secure_attribute(&state)
    );
    Ok((
        [(header::SET_COOKIE, cookie)],
        Json(describe(&caller, &session)),
    )
        .into_response())
}

/// Checks `password` of login `user` from `address`, counting failures toward the same
/// lockout as the other front ends; the caller it signs in as, and what its session keeps.
fn check_login(
    state: &ApiState,
    user: &str,
    password: &str,
    address: IpAddr,
) -> Result<(Caller, ConsoleLogin), Problem> {
    let principal = state.plane.service.principal(user);
    match state
        .throttle
        .check_password(user, password, principal, address)
    {
        Ok(principal) => {
            tracing::info!(target: "tollgate::audit", event = "authentication", outcome = "success", user, tenant = %principal.tenant, client = %address, protocol = "console", "login");
            let login = ConsoleLogin {
                user: user.to_owned(),
                verifier_sha256: sha256_hex(&principal.verifier.to_string()),
            };
            let caller = Caller::Login {
                user: user.to_owned(),
                tenant: principal.tenant.clone(),
            };
            Ok((caller, login))
        }
        Err(refusal) => {
            let outcome = match refusal {
                LoginRefusal::LockedOut => "locked_out",
                LoginRefusal::Failed => "failure",
            };
            tracing::warn!(target: "tollgate::audit", event = "authentication", outcome, user, client = %address, protocol = "console", "login refused");
            Err(Problem::Unauthorized)
        }
    }
}

/// The caller a live `session` stands for: its key's, checked again, or its login's while
/// the login exists with the password it signed in with.
///
/// # Errors
/// 401 when the key or login no longer is valid.
pub(super) async fn caller(
    state: &ApiState,
    session: &ConsoleSessionRecord,
) -> Result<Caller, Problem> {
    let Some(login) = &session.login else {
        return super::caller_of_key(state, &session.key, None).await;
    };
    let principal = state
        .plane
        .service
        .principal(&login.user)
        .ok_or(Problem::Unauthorized)?;
    if sha256_hex(&principal.verifier.to_string()) != login.verifier_sha256 {
        return Err(Problem::Unauthorized);
    }
    Ok(Caller::Login {
        user: login.user.clone(),
        tenant: principal.tenant.clone(),
    })
}

/// `GET /console/session`: who the session is, and its CSRF token.
///
/// # Errors
/// 401 without a live session.
pub async fn current(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let session = of_request(&headers, &state.plane)
        .await?
        .ok_or(Problem::Unauthorized)?;
    let caller = caller(&state, &session).await?;
    Ok(Json(describe(&caller, &session)).into_response())
}

/// `DELETE /console/session`: signs out (with the CSRF token).
///
/// # Errors
/// 401 without a live session, 403 without its CSRF token.
pub async fn sign_out(
    State(state): State<Arc<ApiState>>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let (Some(token), Some(session)) =
        (cookie(&headers), of_request(&headers, &state.plane).await?)
    else {
        return Err(Problem::Unauthorized);
    };
    if !csrf_allows(&method, &headers, &session) {
        return Err(Problem::CrossSite);
    }
    state
        .plane
        .store
        .write(vec![Write::Delete {
            kind: CONSOLE_SESSION,
            id: token_id(&token),
            expect: Expect::Any,
        }])
        .await?;
    let cleared = format!(
        "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        secure_attribute(&state)
    );
    Ok((
        [(header::SET_COOKIE, cleared)],
        axum::http::StatusCode::NO_CONTENT,
    )
        .into_response())
}

/// What the console is told of its session.
fn describe(caller: &Caller, session: &ConsoleSessionRecord) -> serde_json::Value {
    match caller {
        Caller::Tenant { tenant, .. } => json!({
            "role": "tenant", "tenant": tenant, "csrf": session.csrf,
            "expires_at": session.expires_at,
        }),
        Caller::Admin { .. } => json!({
            "role": "admin", "csrf": session.csrf, "expires_at": session.expires_at,
        }),
        Caller::Login { user, tenant } => json!({
            "role": "login", "tenant": tenant, "login": user, "csrf": session.csrf,
            "expires_at": session.expires_at,
        }),
    }
}

/// `; Secure` when the listener serves HTTPS: the browser then never sends the cookie in
/// clear.
fn secure_attribute(state: &ApiState) -> &'static str {
    let https = state
        .plane
        .endpoints
        .http_base
        .as_deref()
        .is_some_and(|base| base.starts_with("https://"));
    if https { "; Secure" } else { "" }
}

/// The session cookie's value, if the request has one.
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// The document id of a session token: its SHA-256, so the store never holds the cookie.
fn token_id(token: &str) -> String {
    sha256_hex(token)
}

/// SHA-256 of `text`, hex (a login session keeps its verifier's so).
fn sha256_hex(text: &str) -> String {
    digest(&SHA256, text.as_bytes())
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Whether a request comes from a page of this host: its `Origin`, when it has one, names
/// the host it was sent to.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok());
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|origin| origin.split_once("://"))
        .map(|(_, rest)| rest);
    matches!((origin_host, host), (Some(a), Some(b)) if a.eq_ignore_ascii_case(b))
}
