//! The object stores of the catalog's sources, in one registry that the private source
//! session and every tenant's session share.
//!
//! `file://` is always there; each S3 source adds `s3://<bucket>`, an S3 client behind a
//! [`ListingCache`]. Queries see the registry through their scan meter, so bytes read from
//! S3 are billed the same way as bytes read from disk. Their HTTP requests run on the runtime
//! that built the registry (the network runtime), not on the tenants' executor threads.

use std::sync::Arc;
use std::time::Duration;

use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use object_store::aws::AmazonS3Builder;
use object_store::client::SpawnedReqwestConnector;
use object_store::{ClientOptions, ObjectStore, RetryConfig};
use tokio::runtime::Handle;
use tollgate_catalog::{Catalog, SourceOptions};
use url::Url;

use crate::error::PlannerError;
use crate::sources::listing_cache::ListingCache;

/// How long a connection to an object store may take before the source counts as down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Retries of a failed request (a 5xx, a 429, a timeout, a broken connection), with
/// exponential backoff, and the time they may take together, before a query fails.
const RETRIES: usize = 2;
const RETRY_TIMEOUT: Duration = Duration::from_secs(10);

/// A store and the URL it serves.
type UrlStore = (Url, Arc<dyn ObjectStore>);

/// The registry of every source's store.
///
/// # Errors
/// [`PlannerError::SourceStore`] for an S3 source whose settings do not make a client, or
/// whose bucket another source already reads.
pub(crate) fn source_stores(
    catalog: &Catalog,
) -> Result<Arc<dyn ObjectStoreRegistry>, PlannerError> {
    // Queries run on executor threads without an I/O driver; HTTP runs on the caller's
    // runtime, the network one.
    let io_runtime = Handle::try_current().map_err(|e| PlannerError::SourceStore {
        source_name: String::new(),
        message: format!("object stores need a Tokio runtime for their I/O: {e}"),
    })?;
    let registry = DefaultObjectStoreRegistry::new();
    for (name, source) in catalog.sources() {
        let Some((url, store)) =
            s3_store(source, &io_runtime).map_err(|message| PlannerError::SourceStore {
                source_name: name.clone(),
                message,
            })?
        else {
            continue;
        };
        if registry.get_store(&url).is_ok() {
            return Err(PlannerError::SourceStore {
                source_name: name.clone(),
                message: format!("bucket `{url}` is already read by another source"),
            });
        }
        registry.register_store(&url, store);
    }
    Ok(Arc::new(registry))
}

/// The store of an S3 source and the URL it serves (`s3://bucket`), with a listing cache;
/// `None` for other sources. The client uses the source's keys if given, else the AWS chain
/// from the environment.
fn s3_store(source: &SourceOptions, io_runtime: &Handle) -> Result<Option<UrlStore>, String> {
    let SourceOptions::S3 {
        bucket,
        region,
        endpoint,
        access_key_id,
        secret_access_key,
        session_token,
        listing_cache_ttl,
        request_timeout,
        ..
    } = source
    else {
        return Ok(None);
    };
    let url = Url::parse(&format!("s3://{bucket}"))
        .map_err(|e| format!("bucket `{bucket}` does not form a URL: {e}"))?;
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_http_connector(SpawnedReqwestConnector::new(io_runtime.clone()))
        .with_client_options(
            ClientOptions::new()
                .with_connect_timeout(CONNECT_TIMEOUT)
                .with_timeout(request_timeout.duration()),
        )
        .with_retry(RetryConfig {
            max_retries: RETRIES,
            retry_timeout: RETRY_TIMEOUT,
            ..RetryConfig::default()
        });
    if let Some(region) = region {
        builder = builder.with_region(region);
    }
    if let Some(endpoint) = endpoint {
        builder = builder
            .with_endpoint(endpoint)
            .with_allow_http(endpoint.starts_with("http://"));
    }
    if let (Some(key), Some(secret)) = (access_key_id, secret_access_key) {
        builder = builder
            .with_access_key_id(key)
            .with_secret_access_key(secret);
        if let Some(token) = session_token {
            builder = builder.with_token(token);
        }
    }
    let client = builder.build().map_err(|e| e.to_string())?;
    let cached = ListingCache::new(Arc::new(client), listing_cache_ttl.duration());
    Ok(Some((url, Arc::new(cached))))
}
