//! Shared files over signed URLs, for a delivery directory: the gateway hands out
//! `…/delta-sharing/files/{signed}` naming one file of the directory until an expiry, and
//! serves it (`HEAD`, `GET`, one byte range) to whoever holds the URL, as a presigned
//! object-store URL would. (A delivery bucket presigns its own URLs.)

use std::io::SeekFrom;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tollgate_flight::signing::{Purpose, Signer, now_seconds};

use super::SharingApi;
use crate::webapi::WebError;

/// What a file URL names.
#[derive(Debug, Serialize, Deserialize)]
struct FileClaims {
    /// Path relative to the delivery directory.
    path: String,
    /// Unix seconds after which the URL is refused.
    expires: u64,
}

/// The signed part of a URL for `path`, valid until `expires` (Unix seconds).
///
/// # Errors
/// If the claims cannot be signed.
pub fn sign(signer: &Signer, path: &str, expires: u64) -> Result<String, WebError> {
    let claims = FileClaims {
        path: path.to_owned(),
        expires,
    };
    let sealed = signer.seal(Purpose::FileUrl, &claims).map_err(|e| {
        WebError::Encode(datafusion::arrow::error::ArrowError::ExternalError(
            Box::new(e),
        ))
    })?;
    Ok(URL_SAFE_NO_PAD.encode(sealed))
}

/// The file a signed URL part names, inside `root`.
fn open_claims(signer: &Signer, root: &Path, signed: &str) -> Result<PathBuf, StatusCode> {
    let sealed = URL_SAFE_NO_PAD
        .decode(signed)
        .map_err(|_| StatusCode::FORBIDDEN)?;
    let claims: FileClaims = signer
        .open(Purpose::FileUrl, &sealed)
        .ok_or(StatusCode::FORBIDDEN)?;
    if claims.expires <= now_seconds() {
        return Err(StatusCode::FORBIDDEN);
    }
    // Signed paths are the gateway's own, but never leave the directory all the same.
    let relative = Path::new(&claims.path);
    if !relative
        .components()
        .all(|component| matches!(component, Component::Normal(_)))
    {
        return Err(StatusCode::FORBIDDEN);
    }
    Ok(root.join(relative))
}

/// `GET`/`HEAD /delta-sharing/files/{signed}`: the file, or the one range asked for.
pub async fn file(
    State(api): State<Arc<SharingApi>>,
    UrlPath(signed): UrlPath<String>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let Some(root) = api.delivery.served_directory() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let path = match open_claims(&api.signer, root, &signed) {
        Ok(path) => path,
        Err(status) => {
            return (
                status,
                "the URL is invalid or has expired; query the table again",
            )
                .into_response();
        }
    };
    match serve(&path, &method, &headers).await {
        Ok(response) => response,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            StatusCode::NOT_FOUND.into_response()
        }
        Err(error) => {
            tracing::error!(%error, "cannot serve a shared file");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn serve(path: &Path, method: &Method, headers: &HeaderMap) -> std::io::Result<Response> {
    let mut file = tokio::fs::File::open(path).await?;
    let size = file.metadata().await?.len();
    let range = headers
        .get(header::RANGE)
        .and_then(|value| value.to_str().ok())
        .map(|value| byte_range(value, size));
    let (status, start, length) = match range {
        None => (StatusCode::OK, 0, size),
        Some(Some((start, end))) => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        Some(None) => {
            let mut response = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            insert(
                &mut response,
                header::CONTENT_RANGE,
                &format!("bytes */{size}"),
            );
            return Ok(response);
        }
    };
    let body = if *method == Method::HEAD {
        Body::empty()
    } else {
        file.seek(SeekFrom::Start(start)).await?;
        let reader = file.take(length);
        Body::from_stream(tokio_util::io::ReaderStream::new(reader))
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    insert(&mut response, header::CONTENT_LENGTH, &length.to_string());
    insert(&mut response, header::ACCEPT_RANGES, "bytes");
    insert(
        &mut response,
        header::CONTENT_TYPE,
        "application/vnd.apache.parquet",
    );
    if status == StatusCode::PARTIAL_CONTENT {
        insert(
            &mut response,
            header::CONTENT_RANGE,
            &format!("bytes {start}-{}/{size}", start + length - 1),
        );
    }
    Ok(response)
}

/// The first range of a `Range: bytes=…` header in a file of `size` bytes, inclusive;
/// `None` when it is not satisfiable or not understood.
fn byte_range(header: &str, size: u64) -> Option<(u64, u64)> {
    let spec = header.trim().strip_prefix("bytes=")?;
    let first = spec.split(',').next()?.trim();
    let (start, end) = first.split_once('-')?;
    let (start, end) = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let suffix: u64 = suffix.parse().ok()?;
            (size.checked_sub(suffix.min(size))?, size.checked_sub(1)?)
        }
        (start, "") => (start.parse().ok()?, size.checked_sub(1)?),
        (start, end) => (
            start.parse().ok()?,
            end.parse::<u64>().ok()?.min(size.checked_sub(1)?),
        ),
    };
    (start <= end && end < size).then_some((start, end))
}

fn insert(response: &mut Response, name: header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_ranges_as_http_defines_them() {
        assert_eq!(byte_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(byte_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(byte_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(byte_range("bytes=50-500", 100), Some((50, 99)));
        assert_eq!(byte_range("bytes=100-", 100), None);
        assert_eq!(byte_range("items=0-1", 100), None);
        assert_eq!(byte_range("bytes=9-0", 100), None);
    }

    #[test]
    fn urls_are_refused_when_altered_expired_or_outside_the_directory() {
        let signer = Signer::new(None).expect("a signer");
        let root = Path::new("/srv/delivery");
        let later = now_seconds() + 60;
        let signed = sign(&signer, "acme/ch/tpch.orders/v1/part-0.parquet", later).expect("sign");
        assert_eq!(
            open_claims(&signer, root, &signed),
            Ok(root.join("acme/ch/tpch.orders/v1/part-0.parquet"))
        );
        let mut altered = signed.clone().into_bytes();
        altered[5] ^= 1;
        let altered = String::from_utf8(altered).unwrap_or_default();
        assert_eq!(
            open_claims(&signer, root, &altered),
            Err(StatusCode::FORBIDDEN)
        );
        let expired = sign(&signer, "a.parquet", now_seconds() - 1).expect("sign");
        assert_eq!(
            open_claims(&signer, root, &expired),
            Err(StatusCode::FORBIDDEN)
        );
        let escaping = sign(&signer, "../etc/passwd", later).expect("sign");
        assert_eq!(
            open_claims(&signer, root, &escaping),
            Err(StatusCode::FORBIDDEN)
        );
    }
}
