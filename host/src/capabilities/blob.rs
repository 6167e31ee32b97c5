//! `orquesta:plugin/blob`: objects by bucket and key, per tenant, in the buckets the
//! tenant granted the plugin.

use async_trait::async_trait;

use super::{CapError, Grant};
use crate::bindings::blob::{Host, ObjectPage};
use crate::bindings::types::HostError;
use crate::engine::Invocation;
use crate::engine::limits::capability::{BLOB_KEY_BYTES, BLOB_OBJECT_BYTES, BLOB_PAGE};

/// The tenant's blob buckets.
pub const BUCKETS: Grant = Grant {
    key: "blob_buckets",
    names: "blob bucket",
};

pub const CAPABILITY: super::Capability = super::Capability {
    interface: "blob",
    grants: &[BUCKETS],
};

/// A tenant's bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobBucket {
    pub tenant: String,
    pub bucket: String,
}

/// What a listing tells of an object without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    /// When it was last written, in ms since the epoch (0: not known).
    pub modified_ms: i64,
}

/// An object's bytes as they arrive, a piece at a time: what the admin API streams in
/// and out, so a backend that can (the store's chunks, S3) never holds a whole object.
pub type BlobChunks = futures::stream::BoxStream<'static, Result<bytes::Bytes, CapError>>;

/// An object opened for reading: its size, then its bytes.
pub struct BlobRead {
    pub bytes: u64,
    pub chunks: BlobChunks,
}

#[async_trait]
pub trait Blobs: Send + Sync {
    async fn get(&self, at: &BlobBucket, key: &str) -> Result<Option<Vec<u8>>, CapError>;
    /// The object's size and time, without reading it (`None`: no object). A backend
    /// that cannot tell reads it.
    async fn head(&self, at: &BlobBucket, key: &str) -> Result<Option<ObjectInfo>, CapError> {
        Ok(self.get(at, key).await?.map(|data| ObjectInfo {
            size: data.len() as u64,
            modified_ms: 0,
        }))
    }
    async fn put(&self, at: &BlobBucket, key: &str, data: &[u8]) -> Result<(), CapError>;
    /// The object as a stream. By default read whole, for backends that hold it so.
    async fn open(&self, at: &BlobBucket, key: &str) -> Result<Option<BlobRead>, CapError> {
        Ok(self.get(at, key).await?.map(|data| BlobRead {
            bytes: data.len() as u64,
            chunks: Box::pin(futures::stream::once(async move {
                Ok(bytes::Bytes::from(data))
            })),
        }))
    }
    /// Stores exactly `bytes` bytes from `chunks` as `key`; a stream that ends early,
    /// runs long or fails leaves the key as it was. By default gathered whole (at most
    /// the announced size), for backends that write whole objects.
    async fn put_stream(
        &self,
        at: &BlobBucket,
        key: &str,
        bytes: u64,
        chunks: BlobChunks,
    ) -> Result<(), CapError> {
        let data = gather(bytes, chunks).await?;
        self.put(at, key, &data).await
    }
    async fn delete(&self, at: &BlobBucket, key: &str) -> Result<bool, CapError>;
    /// Keys starting with `prefix`, in order, after `cursor`, at most `limit`.
    async fn list(
        &self,
        at: &BlobBucket,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<ObjectPage, CapError>;
}

/// The whole of a stream that announced `bytes` bytes, refused if it ends early or runs
/// long.
pub async fn gather(bytes: u64, mut chunks: BlobChunks) -> Result<Vec<u8>, CapError> {
    use futures::StreamExt as _;
    let mut data = Vec::with_capacity(usize::try_from(bytes).unwrap_or(0).min(BLOB_OBJECT_BYTES));
    while let Some(piece) = chunks.next().await {
        let piece = piece?;
        data.extend_from_slice(&piece);
        if data.len() as u64 > bytes {
            return Err(too_long(bytes));
        }
    }
    if (data.len() as u64) < bytes {
        return Err(too_short(data.len() as u64, bytes));
    }
    Ok(data)
}

/// A stream past the size it announced.
pub fn too_long(bytes: u64) -> CapError {
    CapError::Invalid(format!(
        "the object is longer than the {bytes} bytes announced; nothing was stored"
    ))
}

/// A stream that ended before the size it announced.
pub fn too_short(got: u64, bytes: u64) -> CapError {
    CapError::Invalid(format!(
        "the object ended after {got} of the {bytes} bytes announced; nothing was stored"
    ))
}

/// A key and size a put may write.
pub fn check_object(key: &str, len: usize) -> Result<(), CapError> {
    check_key(key)?;
    if len > BLOB_OBJECT_BYTES {
        return Err(CapError::Invalid(format!(
            "blobs are at most {BLOB_OBJECT_BYTES} bytes, got {len}"
        )));
    }
    Ok(())
}

/// Keys are paths of non-empty segments (`raw/2026/job.json`).
pub fn check_key(key: &str) -> Result<(), CapError> {
    if key.is_empty() || key.len() > BLOB_KEY_BYTES {
        return Err(CapError::Invalid(format!(
            "blob keys are 1-{BLOB_KEY_BYTES} bytes, got {}",
            key.len()
        )));
    }
    // PostgreSQL's text cannot hold NUL, and S3 advises against control bytes: refused
    // on every backend alike, so a key that works on one works on all.
    if key.contains('\0') {
        return Err(CapError::Invalid(format!(
            "blob key {key:?} contains a NUL byte"
        )));
    }
    if key.split('/').any(str::is_empty) {
        return Err(CapError::Invalid(format!(
            "blob key {key:?} has an empty segment (leading, trailing or doubled `/`)"
        )));
    }
    Ok(())
}

impl Invocation {
    fn blob_bucket(&self, bucket: &str) -> Result<BlobBucket, CapError> {
        self.ctx.capabilities.grants.check(BUCKETS, bucket)?;
        Ok(BlobBucket {
            tenant: self.ctx.tenant.clone(),
            bucket: bucket.to_string(),
        })
    }
}

impl Host for Invocation {
    async fn get(&mut self, bucket: String, key: String) -> Result<Option<Vec<u8>>, HostError> {
        let at = self.blob_bucket(&bucket)?;
        check_key(&key)?;
        Ok(self.ctx.capabilities.backends.blob.get(&at, &key).await?)
    }

    async fn put(&mut self, bucket: String, key: String, data: Vec<u8>) -> Result<(), HostError> {
        let at = self.blob_bucket(&bucket)?;
        check_object(&key, data.len())?;
        Ok(self
            .ctx
            .capabilities
            .backends
            .blob
            .put(&at, &key, &data)
            .await?)
    }

    async fn delete(&mut self, bucket: String, key: String) -> Result<bool, HostError> {
        let at = self.blob_bucket(&bucket)?;
        check_key(&key)?;
        Ok(self
            .ctx
            .capabilities
            .backends
            .blob
            .delete(&at, &key)
            .await?)
    }

    async fn list_keys(
        &mut self,
        bucket: String,
        prefix: String,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<ObjectPage, HostError> {
        let at = self.blob_bucket(&bucket)?;
        let limit = limit.clamp(1, BLOB_PAGE);
        let blobs = &self.ctx.capabilities.backends.blob;
        Ok(blobs.list(&at, &prefix, cursor.as_deref(), limit).await?)
    }
}

/// The answer where this host has no blob backend.
#[async_trait]
impl Blobs for super::Unavailable {
    async fn get(&self, _: &BlobBucket, _: &str) -> Result<Option<Vec<u8>>, CapError> {
        super::unavailable::answer("blob")
    }
    async fn put(&self, _: &BlobBucket, _: &str, _: &[u8]) -> Result<(), CapError> {
        super::unavailable::answer("blob")
    }
    async fn delete(&self, _: &BlobBucket, _: &str) -> Result<bool, CapError> {
        super::unavailable::answer("blob")
    }
    async fn list(
        &self,
        _: &BlobBucket,
        _: &str,
        _: Option<&str>,
        _: u32,
    ) -> Result<crate::bindings::blob::ObjectPage, CapError> {
        super::unavailable::answer("blob")
    }
}

/// The tenant's blobs on the host's blob store, under its `blob_mb` quota.
pub fn backend(
    host: &super::HostResources,
    tenant: &super::TenantResources,
) -> std::sync::Arc<dyn Blobs> {
    std::sync::Arc::new(crate::store::TenantBlobs {
        backend: host.blobs.clone(),
        store: host.store.clone(),
        quota: crate::store::usage::Quota::blob(tenant.limits),
    })
}
