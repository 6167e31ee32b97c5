//! `orquesta:plugin/kv`. A plugin's bucket `default` is private to it; other buckets are
//! the tenant's shared buckets the plugin was granted. Either way the tenant is part of
//! every key the backend sees, so no name a plugin chooses reaches another tenant.

use async_trait::async_trait;
use serde::Deserialize;

use super::{CapError, Grant, Grants};
use crate::bindings::kv::Host;
pub use crate::bindings::kv::{Entry, KeyPage};
use crate::bindings::types::HostError;
use crate::engine::Invocation;
use crate::engine::limits::capability::{KV_KEY_BYTES, KV_PAGE, KV_VALUE_BYTES};

/// Shared buckets of the tenant (`kv.buckets`); the private bucket `default` needs none.
pub const BUCKETS: Grant = Grant {
    key: "kv_buckets",
    names: "kv bucket",
};

pub const CAPABILITY: super::Capability = super::Capability {
    interface: "kv",
    grants: &[BUCKETS],
};

/// `[kv]`: the tenant's shared buckets, which plugins are granted by `allow.kv_buckets`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KvConfig {
    #[serde(default)]
    pub buckets: Vec<String>,
}

/// Why `[kv]` was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum KvConfigError {
    #[error("kv.buckets: {0}")]
    Name(CapError),
    #[error("kv.buckets: `default` is each plugin's private bucket")]
    Private,
}

impl KvConfig {
    pub fn validate(&self) -> Result<(), KvConfigError> {
        for bucket in &self.buckets {
            super::check_name(BUCKETS.names, bucket).map_err(KvConfigError::Name)?;
            if bucket == "default" {
                return Err(KvConfigError::Private);
            }
        }
        Ok(())
    }
}

/// Where a key lives: the tenant, and either a plugin's private bucket or a shared one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    pub tenant: String,
    /// `plugin:NAME` for a plugin's `default` bucket, `bucket:NAME` for a shared one.
    pub scope: String,
}

impl Namespace {
    pub fn private(tenant: &str, plugin: &str) -> Self {
        Namespace {
            tenant: tenant.to_string(),
            scope: format!("plugin:{plugin}"),
        }
    }

    pub fn shared(tenant: &str, bucket: &str) -> Self {
        Namespace {
            tenant: tenant.to_string(),
            scope: format!("bucket:{bucket}"),
        }
    }

    /// The namespace `bucket` names for `plugin` of `tenant`, if granted.
    pub fn resolve(
        tenant: &str,
        plugin: &str,
        grants: &Grants,
        bucket: &str,
    ) -> Result<Self, CapError> {
        if bucket == "default" {
            return Ok(Self::private(tenant, plugin));
        }
        grants.check(BUCKETS, bucket)?;
        Ok(Self::shared(tenant, bucket))
    }
}

/// A key-value backend. TTLs are milliseconds from now; versions start at 1.
#[async_trait]
pub trait KeyValue: Send + Sync {
    async fn get(&self, ns: &Namespace, key: &str) -> Result<Option<Entry>, CapError>;
    async fn set(
        &self,
        ns: &Namespace,
        key: &str,
        value: &[u8],
        ttl_ms: Option<u64>,
    ) -> Result<u64, CapError>;
    async fn delete(&self, ns: &Namespace, key: &str) -> Result<bool, CapError>;
    async fn list(
        &self,
        ns: &Namespace,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<KeyPage, CapError>;
    /// Writes only if the current version is `expected` (0: absent). `None` on mismatch.
    async fn compare_and_swap(
        &self,
        ns: &Namespace,
        key: &str,
        expected: u64,
        value: &[u8],
        ttl_ms: Option<u64>,
    ) -> Result<Option<u64>, CapError>;
    async fn increment(&self, ns: &Namespace, key: &str, delta: i64) -> Result<i64, CapError>;
}

fn check_key(key: &str) -> Result<(), CapError> {
    if key.is_empty() || key.len() > KV_KEY_BYTES {
        return Err(CapError::Invalid(format!(
            "kv keys are 1-{KV_KEY_BYTES} bytes, got {}",
            key.len()
        )));
    }
    Ok(())
}

fn check_value(value: &[u8]) -> Result<(), CapError> {
    if value.len() > KV_VALUE_BYTES {
        return Err(CapError::Invalid(format!(
            "kv values are at most {KV_VALUE_BYTES} bytes, got {}; keep large data in blobs",
            value.len()
        )));
    }
    Ok(())
}

impl Invocation {
    fn kv_namespace(&self, bucket: &str) -> Result<Namespace, CapError> {
        Namespace::resolve(
            &self.ctx.tenant,
            &self.ctx.plugin,
            &self.ctx.capabilities.grants,
            bucket,
        )
    }
}

impl Host for Invocation {
    async fn get(&mut self, bucket: String, key: String) -> Result<Option<Entry>, HostError> {
        let ns = self.kv_namespace(&bucket)?;
        check_key(&key)?;
        Ok(self.ctx.capabilities.backends.kv.get(&ns, &key).await?)
    }

    async fn set(
        &mut self,
        bucket: String,
        key: String,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> Result<u64, HostError> {
        let ns = self.kv_namespace(&bucket)?;
        check_key(&key)?;
        check_value(&value)?;
        Ok(self
            .ctx
            .capabilities
            .backends
            .kv
            .set(&ns, &key, &value, ttl_ms)
            .await?)
    }

    async fn delete(&mut self, bucket: String, key: String) -> Result<bool, HostError> {
        let ns = self.kv_namespace(&bucket)?;
        check_key(&key)?;
        Ok(self.ctx.capabilities.backends.kv.delete(&ns, &key).await?)
    }

    async fn list_keys(
        &mut self,
        bucket: String,
        prefix: String,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<KeyPage, HostError> {
        let ns = self.kv_namespace(&bucket)?;
        let limit = limit.clamp(1, KV_PAGE);
        let kv = &self.ctx.capabilities.backends.kv;
        Ok(kv.list(&ns, &prefix, cursor.as_deref(), limit).await?)
    }

    async fn compare_and_swap(
        &mut self,
        bucket: String,
        key: String,
        expected: u64,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> Result<Option<u64>, HostError> {
        let ns = self.kv_namespace(&bucket)?;
        check_key(&key)?;
        check_value(&value)?;
        let kv = &self.ctx.capabilities.backends.kv;
        Ok(kv
            .compare_and_swap(&ns, &key, expected, &value, ttl_ms)
            .await?)
    }

    async fn increment(
        &mut self,
        bucket: String,
        key: String,
        delta: i64,
    ) -> Result<i64, HostError> {
        let ns = self.kv_namespace(&bucket)?;
        check_key(&key)?;
        Ok(self
            .ctx
            .capabilities
            .backends
            .kv
            .increment(&ns, &key, delta)
            .await?)
    }
}

/// The answer where this host has no kv backend.
#[async_trait]
impl KeyValue for super::Unavailable {
    async fn get(&self, _: &Namespace, _: &str) -> Result<Option<Entry>, CapError> {
        super::unavailable::answer("kv")
    }
    async fn set(&self, _: &Namespace, _: &str, _: &[u8], _: Option<u64>) -> Result<u64, CapError> {
        super::unavailable::answer("kv")
    }
    async fn delete(&self, _: &Namespace, _: &str) -> Result<bool, CapError> {
        super::unavailable::answer("kv")
    }
    async fn list(
        &self,
        _: &Namespace,
        _: &str,
        _: Option<&str>,
        _: u32,
    ) -> Result<KeyPage, CapError> {
        super::unavailable::answer("kv")
    }
    async fn compare_and_swap(
        &self,
        _: &Namespace,
        _: &str,
        _: u64,
        _: &[u8],
        _: Option<u64>,
    ) -> Result<Option<u64>, CapError> {
        super::unavailable::answer("kv")
    }
    async fn increment(&self, _: &Namespace, _: &str, _: i64) -> Result<i64, CapError> {
        super::unavailable::answer("kv")
    }
}

/// The tenant's kv in the host's store, under its `kv_items` and `kv_mb` quota.
pub fn backend(
    host: &super::HostResources,
    tenant: &super::TenantResources,
) -> std::sync::Arc<dyn KeyValue> {
    std::sync::Arc::new(crate::store::TenantKv {
        store: host.store.clone(),
        quota: crate::store::usage::Quota::kv(tenant.limits),
    })
}
