//! A whole result in one streamed body: each batch encoded and sent as it comes, for
//! clients that read a large result as a stream (NDJSON, CSV, Arrow IPC).
//!
//! The first batch (or the query's end) is awaited before the status is sent, so a query
//! that fails at once gets its problem response; a failure after that ends the body early,
//! which the client sees as a truncated transfer.

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use futures::StreamExt;

use super::errors::WebError;
use super::formats::{Encoder, Format};
use super::pages::{PageReader, PageSize};

/// One batch's worth of rows per chunk.
const CHUNK: PageSize = PageSize {
    rows: usize::MAX,
    bytes: 1,
};

/// Streams the rest of `reader` in `format`.
///
/// # Errors
/// The query's error before its first batch.
pub async fn response(mut reader: PageReader, format: Format) -> Result<Response, WebError> {
    let mut encoder = Encoder::new(format, &reader.schema())?;
    let wire = reader.wire_bytes();
    let mut first = Vec::new();
    reader
        .next_page(CHUNK, |batch| {
            first.extend(encoder.batch(batch)?);
            Ok(())
        })
        .await?;
    wire.add(first.len() as u64);
    let rest = futures::stream::unfold(Some((reader, encoder)), move |state| {
        let wire = wire.clone();
        async move {
            let (mut reader, mut encoder) = state?;
            if !reader.has_more() {
                return Some((encoder.finish().map(Bytes::from).map_err(broken), None));
            }
            let mut chunk = Vec::new();
            let read = reader
                .next_page(CHUNK, |batch| {
                    chunk.extend(encoder.batch(batch)?);
                    Ok(())
                })
                .await;
            match read {
                Ok(_) => {
                    wire.add(chunk.len() as u64);
                    Some((Ok(Bytes::from(chunk)), Some((reader, encoder))))
                }
                Err(error) => Some((Err(broken(error)), None)),
            }
        }
    });
    let body = futures::stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(first)) })
        .chain(rest);
    let mut response = Response::new(Body::from_stream(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    Ok(response)
}

/// A failure in the middle of a body, which ends it early.
fn broken(error: WebError) -> std::io::Error {
    tracing::warn!(%error, "Web-API stream ended early");
    std::io::Error::other(error.to_string())
}
