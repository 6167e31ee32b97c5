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
        files: host.blobs.clone(),
        store: host.store.clone(),
        quota: crate::store::usage::Quota::blob(tenant.limits),
    })
}
