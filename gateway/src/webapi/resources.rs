//! `GET /v1/data/{schema}/{table}`: one page of a granted dataset in PostgREST's
//! conventions, with `Content-Range`, a `next` link and an `ETag`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ring::digest::{SHA256, digest};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::auth::WebCaller;
use super::errors::WebError;
use super::formats::{Encoder, Format};
use super::pages::{PageReader, PageSize};
use super::resource_query::ResourceQuery;
use super::{WebApi, query};

/// Rows of a page when the request gives no `limit`.
const DEFAULT_PAGE_ROWS: u64 = 1_000;
/// Most rows of a page.
const MAX_PAGE_ROWS: u64 = 100_000;

/// `GET /v1/data/{schema}/{table}?select=&{column}={op}.{value}&order=&limit=&offset=`.
///
/// # Errors
/// 404 for a dataset the caller is not granted, 400 for a malformed filter, 406 for an
/// `Accept` with no offered format, the query's errors by SQLSTATE.
pub async fn resource(
    State(api): State<Arc<WebApi>>,
    caller: WebCaller,
    Path((schema, table)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let format = Format::negotiate(headers.get(header::ACCEPT))?;
    let granted = caller
        .session
        .tables()
        .iter()
        .find(|t| t.schema == schema && t.table == table)
        .cloned()
        .ok_or_else(|| WebError::NotFound(format!("dataset `{schema}.{table}`")))?;
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(raw.as_deref().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let request = ResourceQuery::parse(&pairs)?;
    let rows = request
        .limit
        .unwrap_or(DEFAULT_PAGE_ROWS)
        .min(MAX_PAGE_ROWS);
    let page = request.page_sql(&granted, rows)?;
    let parameters = page.parameters.into_iter().map(Value::String).collect();
    let stream = query::start(
        &api.service,
        &caller,
        &page.sql,
        parameters,
        CancellationToken::new(),
    )
    .await?;
    let mut reader = PageReader::new(stream);
    let mut encoder = Encoder::new(format, &reader.schema())?;
    let wire = reader.wire_bytes();
    let mut body = Vec::new();
    let size = PageSize {
        rows: usize::try_from(rows).unwrap_or(usize::MAX),
        bytes: usize::MAX,
    };
    let given = reader
        .next_page(size, |batch| {
            let bytes = encoder.batch(batch)?;
            wire.add(bytes.len() as u64);
            body.extend(bytes);
            Ok(())
        })
        .await?;
    // The one row asked for beyond the page tells that a next page exists; reading it
    // ends the query, so its record is durable before the page is answered.
    let more = reader.has_more();
    while reader.has_more() {
        reader.next_page(size, |_| Ok(())).await?;
    }
    body.extend(encoder.finish()?);
    let etag = format!("\"{}\"", hex(&digest(&SHA256, &body).as_ref()[..16]));
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .any(|tag| tag.trim().trim_start_matches("W/") == etag)
        })
    {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        insert(&mut response, header::ETAG, &etag);
        return Ok(response);
    }
    let mut response = Response::new(Body::from(body));
    insert(&mut response, header::CONTENT_TYPE, format.content_type());
    insert(&mut response, header::ETAG, &etag);
    insert(&mut response, header::CACHE_CONTROL, "private, no-cache");
    insert(&mut response, header::VARY, "Accept, Authorization, Origin");
    let offset = request.offset;
    let range = if given == 0 {
        "*/*".to_owned()
    } else {
        format!("{offset}-{}/*", offset + given as u64 - 1)
    };
    response
        .extensions_mut()
        .insert(ItemRange(format!("items {range}")));
    if more {
        let next = next_link(
            &api.base_url(&headers),
            &schema,
            &table,
            &pairs,
            offset + rows,
            rows,
        );
        insert(
            &mut response,
            header::LINK,
            &format!("<{next}>; rel=\"next\""),
        );
    }
    Ok(response)
}

/// The rows a page holds, `items first-last/*`: set as `Content-Range` outside the
/// compression layer, which leaves any response with that header (taken for a byte range)
/// uncompressed.
#[derive(Debug, Clone)]
pub struct ItemRange(String);

/// Moves a page's [`ItemRange`] into its `Content-Range` header.
pub async fn item_range_header(mut response: Response) -> Response {
    if let Some(ItemRange(range)) = response.extensions_mut().remove::<ItemRange>() {
        insert(&mut response, header::CONTENT_RANGE, &range);
    }
    response
}

/// The URL of the page after this one: the same query with `offset` moved on.
fn next_link(
    base: &str,
    schema: &str,
    table: &str,
    pairs: &[(String, String)],
    offset: u64,
    limit: u64,
) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs {
        if key != "offset" && key != "limit" {
            query.append_pair(key, value);
        }
    }
    query.append_pair("limit", &limit.to_string());
    query.append_pair("offset", &offset.to_string());
    let path: String = url::form_urlencoded::byte_serialize(schema.as_bytes()).collect();
    let table: String = url::form_urlencoded::byte_serialize(table.as_bytes()).collect();
    format!("{base}/v1/data/{path}/{table}?{}", query.finish())
}

fn insert(response: &mut Response, name: header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_links_keep_the_query_and_move_the_offset() {
        let pairs = vec![
            ("select".to_owned(), "a,b".to_owned()),
            ("a".to_owned(), "in.(1,\"x y\")".to_owned()),
            ("offset".to_owned(), "10".to_owned()),
        ];
        assert_eq!(
            next_link("http://h:1", "tpch", "orders", &pairs, 20, 10),
            "http://h:1/v1/data/tpch/orders?select=a%2Cb&a=in.%281%2C%22x+y%22%29&limit=10&offset=20"
        );
    }
}
