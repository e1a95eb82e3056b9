//! Errors of the Web-API as `application/problem+json`: request errors by HTTP status, and
//! query errors with the SQLSTATE the other front ends send, mapped to a status once here.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tollgate_planner::{ErrorKind, PlannerError};

/// A Web-API error.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// 400: a parameter, filter or body that is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no credentials, or wrong, expired or revoked ones.
    #[error("{0}")]
    Unauthorized(String),
    /// 404: no such dataset or statement for this caller.
    #[error("{0} not found")]
    NotFound(String),
    /// 406: no format of the `Accept` header is offered.
    #[error(
        "none of the formats in Accept is offered; use application/json, application/x-ndjson, text/csv, application/vnd.apache.arrow.stream or application/vnd.apache.parquet"
    )]
    NotAcceptable,
    /// 409: the statement's page is being read by another request, or was passed.
    #[error("{0}")]
    Conflict(String),
    /// 410: the statement ended (read to its end, cancelled or abandoned).
    #[error("statement `{0}` is gone: it was read to its end, cancelled, or idle too long")]
    Gone(String),
    /// The query failed; the status follows its SQLSTATE.
    #[error("{}", .0.client_message())]
    Query(#[from] PlannerError),
    /// 500: an encoder failed.
    #[error("cannot encode the result")]
    Encode(#[source] datafusion::arrow::error::ArrowError),
}

impl WebError {
    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Gone(_) => StatusCode::GONE,
            Self::Query(error) => kind_status(error.kind()),
            Self::Encode(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn type_uri(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "urn:tollgate:problem:bad-request",
            Self::Unauthorized(_) => "urn:tollgate:problem:unauthorized",
            Self::NotFound(_) => "urn:tollgate:problem:not-found",
            Self::NotAcceptable => "urn:tollgate:problem:not-acceptable",
            Self::Conflict(_) => "urn:tollgate:problem:conflict",
            Self::Gone(_) => "urn:tollgate:problem:gone",
            Self::Query(_) => "urn:tollgate:problem:query",
            Self::Encode(_) => "urn:tollgate:problem:internal",
        }
    }
}

/// The HTTP status of a query error, by its kind (so by its SQLSTATE class).
pub fn kind_status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::Syntax
        | ErrorKind::UndefinedColumn
        | ErrorKind::UndefinedFunction
        | ErrorKind::UndefinedObject
        | ErrorKind::InvalidInput
        | ErrorKind::DivisionByZero
        | ErrorKind::TooComplex => StatusCode::BAD_REQUEST,
        ErrorKind::UndefinedTable => StatusCode::NOT_FOUND,
        ErrorKind::Denied => StatusCode::FORBIDDEN,
        ErrorKind::Unsupported => StatusCode::NOT_IMPLEMENTED,
        ErrorKind::ResultTooLarge | ErrorKind::WorkTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::OutOfMemory
        | ErrorKind::DiskFull
        | ErrorKind::Busy
        | ErrorKind::Unavailable
        | ErrorKind::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorKind::Cancelled | ErrorKind::StaleResult => StatusCode::CONFLICT,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The JSON body of a problem (RFC 9457), with the SQLSTATE of a query error.
#[derive(Debug, Serialize)]
struct ProblemBody {
    #[serde(rename = "type")]
    type_uri: &'static str,
    title: String,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sqlstate: Option<&'static str>,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = self.status();
        let sqlstate = match &self {
            Self::Query(error) => {
                if error.kind() == ErrorKind::Internal {
                    tracing::error!(%error, "Web-API query failed");
                }
                Some(error.kind().sqlstate())
            }
            Self::Encode(error) => {
                tracing::error!(%error, "Web-API encoder failed");
                None
            }
            _ => None,
        };
        let body = ProblemBody {
            type_uri: self.type_uri(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: self.to_string(),
            sqlstate,
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match &self {
            Self::Unauthorized(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"tollgate\", Basic realm=\"tollgate\""),
                );
            }
            Self::Query(error)
                if matches!(error.kind(), ErrorKind::RateLimited | ErrorKind::Busy) =>
            {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(Duration::from_secs(1).as_secs()),
                );
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_query_error_kind_has_a_client_or_server_status() {
        for kind in ErrorKind::ALL {
            let status = kind_status(kind);
            assert!(
                status.is_client_error() || status.is_server_error(),
                "{kind:?}"
            );
        }
        assert_eq!(kind_status(ErrorKind::Syntax), StatusCode::BAD_REQUEST);
        assert_eq!(
            kind_status(ErrorKind::Internal),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
