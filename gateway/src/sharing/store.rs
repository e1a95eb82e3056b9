//! The delivery store: where `file` channels' Parquet files are written, and how a client
//! is handed a URL for one. A local directory (the embedded default) gets URLs the gateway
//! signs and serves itself; an S3 bucket gets presigned S3 URLs, so the files travel from
//! the bucket to the client without passing through the gateway.
//!
//! ```text
//! delivery_path = "dir"        ─▶ dir/{relative}         ─▶ …/delta-sharing/files/{signed}
//! delivery_s3 = { bucket, … }  ─▶ s3://bucket/{prefix}/{relative} ─▶ presigned GET URL
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use futures::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::client::SpawnedReqwestConnector;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::signer::Signer as _;
use object_store::{ClientOptions, ObjectStore};
use tollgate_catalog::{ControlOptions, S3DeliveryOptions};

use crate::error::GatewayError;

/// How long one request to the store may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
/// How long connecting to the store may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where `file` channels' files live.
#[derive(Debug)]
pub struct DeliveryStore {
    objects: Arc<dyn ObjectStore>,
    /// Prepended to every relative path (empty, or ending in `/`).
    prefix: String,
    urls: FileUrls,
}

/// How a client gets to a file.
#[derive(Debug)]
enum FileUrls {
    /// The gateway serves the files of this directory under URLs it signs.
    Gateway(PathBuf),
    /// The bucket's presigned URLs.
    Presigned(Arc<AmazonS3>),
}

impl DeliveryStore {
    /// The store `control` configures: its S3 bucket if `delivery_s3` is set, else its
    /// delivery directory (created if missing). S3 requests run on the current runtime.
    ///
    /// # Errors
    /// [`GatewayError::Delivery`] if the directory cannot be made or the S3 settings do not
    /// make a client.
    pub fn new(control: &ControlOptions) -> Result<Self, GatewayError> {
        match &control.delivery_s3 {
            Some(s3) => {
                let bucket = Arc::new(s3_client(s3).map_err(GatewayError::Delivery)?);
                let prefix = s3.prefix.trim_matches('/');
                Ok(Self {
                    objects: Arc::clone(&bucket) as Arc<dyn ObjectStore>,
                    prefix: if prefix.is_empty() {
                        String::new()
                    } else {
                        format!("{prefix}/")
                    },
                    urls: FileUrls::Presigned(bucket),
                })
            }
            None => {
                let root = &control.delivery_path;
                let cannot = |e: &dyn std::fmt::Display| {
                    GatewayError::Delivery(format!(
                        "cannot use the delivery directory {}: {e}",
                        root.display()
                    ))
                };
                std::fs::create_dir_all(root).map_err(|e| cannot(&e))?;
                let objects = LocalFileSystem::new_with_prefix(root)
                    .map_err(|e| cannot(&e))?
                    .with_automatic_cleanup(true);
                Ok(Self {
                    objects: Arc::new(objects),
                    prefix: String::new(),
                    urls: FileUrls::Gateway(root.clone()),
                })
            }
        }
    }

    /// The store files are written to.
    pub fn objects(&self) -> &Arc<dyn ObjectStore> {
        &self.objects
    }

    /// Where the file at `relative` is in [`Self::objects`].
    pub fn location(&self, relative: &str) -> ObjectPath {
        ObjectPath::from(format!("{}{relative}", self.prefix))
    }

    /// The directory the gateway serves files from; `None` when a bucket presigns them.
    pub fn served_directory(&self) -> Option<&Path> {
        match &self.urls {
            FileUrls::Gateway(root) => Some(root),
            FileUrls::Presigned(_) => None,
        }
    }

    /// A presigned `GET` URL of the file at `relative`, valid for `ttl`; `None` when the
    /// gateway serves the files itself.
    pub async fn presigned_url(
        &self,
        relative: &str,
        ttl: Duration,
    ) -> Option<Result<String, object_store::Error>> {
        let FileUrls::Presigned(bucket) = &self.urls else {
            return None;
        };
        let signed = bucket
            .signed_url(Method::GET, &self.location(relative), ttl)
            .await;
        Some(signed.map(String::from))
    }

    /// Deletes the files at `relative` paths (of a version that was not kept), logging
    /// what could not be deleted.
    pub async fn remove(&self, relative: impl IntoIterator<Item = String>) {
        let locations = futures::stream::iter(
            relative
                .into_iter()
                .map(|path| Ok(self.location(&path)))
                .collect::<Vec<_>>(),
        )
        .boxed();
        let mut deleted = self.objects.delete_stream(locations);
        while let Some(result) = deleted.next().await {
            if let Err(error) = result {
                tracing::warn!(%error, "cannot delete a file of an abandoned version");
            }
        }
    }
}

/// An S3 client of the bucket `s3` names; its keys if given, else the AWS chain.
fn s3_client(s3: &S3DeliveryOptions) -> Result<AmazonS3, String> {
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|e| format!("the delivery store needs a Tokio runtime: {e}"))?;
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(&s3.bucket)
        .with_http_connector(SpawnedReqwestConnector::new(runtime))
        .with_client_options(
            ClientOptions::new()
                .with_connect_timeout(CONNECT_TIMEOUT)
                .with_timeout(REQUEST_TIMEOUT),
        );
    if let Some(region) = &s3.region {
        builder = builder.with_region(region);
    }
    if let Some(endpoint) = &s3.endpoint {
        builder = builder
            .with_endpoint(endpoint)
            .with_allow_http(endpoint.starts_with("http://"));
    }
    if let (Some(key), Some(secret)) = (&s3.access_key_id, &s3.secret_access_key) {
        builder = builder
            .with_access_key_id(key)
            .with_secret_access_key(secret);
        if let Some(token) = &s3.session_token {
            builder = builder.with_token(token);
        }
    }
    builder
        .build()
        .map_err(|e| format!("the delivery bucket `{}`: {e}", s3.bucket))
}
