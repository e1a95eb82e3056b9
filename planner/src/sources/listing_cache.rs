//! A listing cache in front of an object store: listing a dataset's files in S3 costs a round
//! trip per thousand keys, on every query. Listings are kept for the source's
//! `listing_cache_ttl`, so new files appear within that time without a restart.
//!
//! DataFusion's own list-files cache keeps listings forever; it is turned off in every
//! session, and this cache is what a source's TTL governs.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream};
use futures::{StreamExt, TryStreamExt};
use moka::future::Cache;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result as StoreResult,
};

/// Objects listed at most, over all cached listings of one store.
const CACHED_OBJECTS: u64 = 1_000_000;

/// An object store whose listings are reused for a time.
#[derive(Debug)]
pub(crate) struct ListingCache {
    inner: Arc<dyn ObjectStore>,
    /// Recursive listings by prefix.
    objects: Cache<Option<Path>, Arc<[ObjectMeta]>>,
    /// One-level listings (partition directories) by prefix.
    levels: Cache<Option<Path>, Arc<ListResult>>,
}

impl ListingCache {
    /// Caches the listings of `inner` for `ttl`.
    pub fn new(inner: Arc<dyn ObjectStore>, ttl: Duration) -> Self {
        let objects = Cache::builder()
            .time_to_live(ttl)
            .weigher(|_, objects: &Arc<[ObjectMeta]>| {
                u32::try_from(objects.len()).unwrap_or(u32::MAX).max(1)
            })
            .max_capacity(CACHED_OBJECTS)
            .build();
        let levels = Cache::builder()
            .time_to_live(ttl)
            .weigher(|_, level: &Arc<ListResult>| {
                let entries = level.objects.len() + level.common_prefixes.len();
                u32::try_from(entries).unwrap_or(u32::MAX).max(1)
            })
            .max_capacity(CACHED_OBJECTS)
            .build();
        Self {
            inner,
            objects,
            levels,
        }
    }
}

impl fmt::Display for ListingCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ListingCache({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for ListingCache {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        options: PutOptions,
    ) -> StoreResult<PutResult> {
        self.inner.put_opts(location, payload, options).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        options: PutMultipartOptions,
    ) -> StoreResult<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, options).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> StoreResult<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> StoreResult<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, StoreResult<Path>>,
    ) -> BoxStream<'static, StoreResult<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, StoreResult<ObjectMeta>> {
        let prefix = prefix.cloned();
        let inner = Arc::clone(&self.inner);
        let objects = self.objects.clone();
        stream::once(async move {
            if let Some(listed) = objects.get(&prefix).await {
                return Ok::<_, object_store::Error>(listed);
            }
            let listed: Vec<ObjectMeta> = inner.list(prefix.as_ref()).try_collect().await?;
            let listed: Arc<[ObjectMeta]> = listed.into();
            objects.insert(prefix, Arc::clone(&listed)).await;
            Ok(listed)
        })
        .map_ok(|listed| stream::iter((0..listed.len()).map(move |i| Ok(listed[i].clone()))))
        .try_flatten()
        .boxed()
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, StoreResult<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> StoreResult<ListResult> {
        let key = prefix.cloned();
        let level = match self.levels.get(&key).await {
            Some(level) => level,
            None => {
                let level = Arc::new(self.inner.list_with_delimiter(prefix).await?);
                self.levels.insert(key, Arc::clone(&level)).await;
                level
            }
        };
        Ok(ListResult {
            common_prefixes: level.common_prefixes.clone(),
            objects: level.objects.clone(),
        })
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> StoreResult<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> StoreResult<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;

    use super::*;

    async fn listed(store: &dyn ObjectStore, prefix: &str) -> Vec<String> {
        let mut names: Vec<String> = store
            .list(Some(&Path::from(prefix)))
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await
            .expect("lists");
        names.sort();
        names
    }

    #[tokio::test]
    async fn listings_are_reused_until_their_ttl_passes() {
        let inner = Arc::new(InMemory::new());
        inner
            .put(&Path::from("data/a.parquet"), PutPayload::from_static(b"a"))
            .await
            .expect("put");
        let cache = ListingCache::new(
            Arc::clone(&inner) as Arc<dyn ObjectStore>,
            Duration::from_millis(300),
        );
        assert_eq!(listed(&cache, "data").await, ["data/a.parquet"]);

        inner
            .put(&Path::from("data/b.parquet"), PutPayload::from_static(b"b"))
            .await
            .expect("put");
        assert_eq!(listed(&cache, "data").await, ["data/a.parquet"], "cached");
        let level = cache
            .list_with_delimiter(Some(&Path::from("data")))
            .await
            .expect("lists a level");
        assert_eq!(level.objects.len(), 2, "a level listed for the first time");

        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(
            listed(&cache, "data").await,
            ["data/a.parquet", "data/b.parquet"],
            "after the TTL"
        );
    }
}
