//! The web console at `/console`: one page, its script and its style sheet, compiled into
//! the binary. The page calls the same `/v1` API scripts use, signed in with an API key
//! (`POST /console/session`, which sets an HttpOnly, SameSite=Strict cookie); changes carry
//! the session's CSRF token. Every answer forbids framing and any script, style or
//! connection from elsewhere.
//!
//! ```text
//! GET /console ─▶ index.html ─▶ app.js ─▶ fetch /v1/… (cookie, X-CSRF-Token)
//!                                          draws catalog, channels, usage charts (SVG)
//! ```

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");

/// What the console's answers allow: its own files and API, nothing inline, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
     base-uri 'none'; frame-ancestors 'none'";

/// The console's routes.
pub fn router() -> Router {
    Router::new()
        .route(
            "/console",
            get(|| async { file(INDEX, "text/html; charset=utf-8") }),
        )
        .route(
            "/console/",
            get(|| async { Redirect::permanent("/console") }),
        )
        .route(
            "/console/app.js",
            get(|| async { file(SCRIPT, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/console/app.css",
            get(|| async { file(STYLE, "text/css; charset=utf-8") }),
        )
}

/// `body` as `content_type`, with the console's security headers.
fn file(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, content_type),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-cache"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
