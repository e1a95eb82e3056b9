//! Errors of the control API as `application/problem+json` (RFC 9457), each with a stable
//! `type` a client can branch on.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tollgate_catalog::store::StoreError;
use utoipa::IntoResponses;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::response::{Response as ApiResponse, ResponseBuilder};
use utoipa::openapi::{Ref, RefOr};

/// An API error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// 400: the request is malformed (bad JSON, an unknown field, a bad parameter).
    #[error("{0}")]
    BadRequest(String),
    /// 401: no key, or a key that is unknown, revoked or of a suspended tenant.
    #[error("a valid API key is required (Authorization: Bearer tg_…)")]
    Unauthorized,
    /// 403: a tenant key on an admin endpoint.
    #[error("this endpoint needs an admin key")]
    Forbidden,
    /// 403: a console request that changes something without its session's CSRF token,
    /// or a sign-in from a page of another site.
    #[error("the request lacks the console session's X-CSRF-Token, or comes from another site")]
    CrossSite,
    /// 404: nothing of that name that the caller may see.
    #[error("{0} not found")]
    NotFound(String),
    /// 409: it exists already, or changed concurrently.
    #[error("{0}")]
    Conflict(String),
    /// 413: the body is larger than allowed.
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    /// 415: not JSON.
    #[error("the request body must be application/json")]
    UnsupportedMediaType,
    /// 422: well-formed but not acceptable (a column outside the entitlement, …).
    #[error("{0}")]
    Unprocessable(String),
    /// 429: too many requests for this key.
    #[error("too many requests; retry after {} s", .0.as_secs().max(1))]
    TooManyRequests(Duration),
    /// 503: the state store cannot be reached.
    #[error("the control plane's state store is unavailable; retry later")]
    Unavailable,
}

impl Problem {
    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::CrossSite => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The stable problem type.
    pub fn type_uri(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "urn:tollgate:problem:bad-request",
            Self::Unauthorized => "urn:tollgate:problem:unauthorized",
            Self::Forbidden => "urn:tollgate:problem:forbidden",
            Self::CrossSite => "urn:tollgate:problem:cross-site",
            Self::NotFound(_) => "urn:tollgate:problem:not-found",
            Self::Conflict(_) => "urn:tollgate:problem:conflict",
            Self::TooLarge(_) => "urn:tollgate:problem:body-too-large",
            Self::UnsupportedMediaType => "urn:tollgate:problem:unsupported-media-type",
            Self::Unprocessable(_) => "urn:tollgate:problem:unprocessable",
            Self::TooManyRequests(_) => "urn:tollgate:problem:rate-limited",
            Self::Unavailable => "urn:tollgate:problem:unavailable",
        }
    }
}

impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict { kind, id } => {
                Self::Conflict(format!("the {kind} `{id}` changed concurrently; retry"))
            }
            StoreError::Unavailable(_) | StoreError::Corrupt { .. } => {
                tracing::error!(%error, "control state store");
                Self::Unavailable
            }
        }
    }
}

/// The JSON body of a problem (RFC 9457).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProblemBody {
    /// Stable problem type, e.g. `urn:tollgate:problem:not-found`.
    #[serde(rename = "type")]
    type_uri: &'static str,
    /// The HTTP status text.
    title: String,
    /// The HTTP status code.
    status: u16,
    /// What went wrong, for people.
    detail: String,
}

/// The problems any route may answer, whoever calls: no valid key (401), a key that may
/// not use the route (403), too many requests (429), the state store or the ledger
/// unavailable (503).
/// Named in the routes' OpenAPI annotations.
#[derive(Debug)]
pub enum CallerProblems {}

impl IntoResponses for CallerProblems {
    fn responses() -> BTreeMap<String, RefOr<ApiResponse>> {
        problem_responses(&[
            ("401", "No valid API key"),
            (
                "403",
                "The key may not use this route (a tenant key on the provider's)",
            ),
            ("429", "Too many requests for this key"),
            (
                "503",
                "The state store or the usage ledger is unavailable; retry later",
            ),
        ])
    }
}

/// The problems of a route that reads a JSON body: malformed or with an unknown field
/// (400), too large (413), not JSON (415).
#[derive(Debug)]
pub enum BodyProblems {}

impl IntoResponses for BodyProblems {
    fn responses() -> BTreeMap<String, RefOr<ApiResponse>> {
        problem_responses(&[
            ("400", "Malformed body or unknown field"),
            ("413", "Body too large"),
            ("415", "Not JSON"),
        ])
    }
}

/// `application/problem+json` responses with [`ProblemBody`], by status.
fn problem_responses(statuses: &[(&str, &str)]) -> BTreeMap<String, RefOr<ApiResponse>> {
    statuses
        .iter()
        .map(|(status, description)| {
            let content = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ProblemBody")))
                .build();
            let response = ResponseBuilder::new()
                .description(*description)
                .content("application/problem+json", content)
                .build();
            ((*status).to_owned(), RefOr::T(response))
        })
        .collect()
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = ProblemBody {
            type_uri: self.type_uri(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: self.to_string(),
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Self::TooManyRequests(wait) = &self
            && let Ok(value) = HeaderValue::from_str(&wait.as_secs().max(1).to_string())
        {
            headers.insert(header::RETRY_AFTER, value);
        }
        response
    }
}
