//! The host's own config file (`orquesta serve --config orquesta.toml`). Every field has a
//! default, so `orquesta serve` alone starts on the embedded store.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::capabilities::secrets::SecretError;
use crate::tenants::{ConfigError, SecretRef, parse_toml, read};

/// Why a host config that parses was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum HostConfigError {
    #[error("store: unsupported URL scheme in {0:?}; use sqlite://PATH or postgres://...")]
    StoreScheme(String),
    #[error("max_body_kb, request_timeout_ms and instance_slots must be at least 1")]
    Zero,
    #[error("admin_token: {0}")]
    AdminToken(SecretError),
    #[error("{0}")]
    Blobs(crate::store::BlobsConfigError),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HostConfig {
    /// Where the HTTP service listens. Loopback by default: exposing it is a decision.
    pub listen: SocketAddr,
    /// The embedded store, compiled plugins and blobs live here.
    pub data_dir: PathBuf,
    /// The durable store's URL: `sqlite://PATH` (relative to this file) or
    /// `postgres://USER@HOST/DB`, which several hosts can share. Default: SQLite in
    /// `data_dir`. Keep passwords out of this file: `--store` / `ORQUESTA_STORE_URL`.
    pub store: Option<String>,
    /// Drop-in `.wasm` files; watched.
    pub plugin_dir: PathBuf,
    /// One `NAME.toml` per tenant; watched.
    pub tenant_dir: PathBuf,
    /// Bearer token for `/admin/v1`; without one the admin API is off.
    pub admin_token: Option<SecretRef>,
    /// Largest request body. API Gateway and Lambda stop at 6 MB (10 MB at most).
    pub max_body_kb: u32,
    /// Longest time a request may take, plugin included (API Gateway: 29 s by default).
    pub request_timeout_ms: u64,
    /// How long SIGTERM waits for requests in flight before the process exits anyway.
    pub shutdown_grace_ms: u64,
    /// Instances alive at once across tenants (the pooling allocator's slots).
    pub instance_slots: u32,
    /// How often this host deletes queue messages past their retention and deduplication
    /// ids past their window, in every queue. Expired messages are never delivered,
    /// listed or counted meanwhile; this only frees their space.
    pub queue_sweep_ms: u64,
    /// Where blob bytes live (`[blobs]`): by default files in `data_dir` on SQLite and
    /// chunks in the store on PostgreSQL, so hosts sharing a database share blobs.
    pub blobs: crate::store::BlobsConfig,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from(".orquesta"),
            plugin_dir: PathBuf::from(".orquesta/plugins"),
            tenant_dir: PathBuf::from(".orquesta/tenants"),
            store: None,
            admin_token: None,
            max_body_kb: 6 * 1024,
            request_timeout_ms: 29_000,
            shutdown_grace_ms: 30_000,
            instance_slots: 256,
            queue_sweep_ms: 60_000,
            blobs: crate::store::BlobsConfig::default(),
        }
    }
}

impl HostConfig {
    /// Reads a host config; relative directories and files are relative to the file's
    /// directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError<HostConfigError>> {
        let text = read::<HostConfigError>(path)?;
        let mut config = parse_toml::<HostConfig, HostConfigError>(path, &text)?;
        let base = path.parent().unwrap_or(Path::new("."));
        for dir in [
            &mut config.data_dir,
            &mut config.plugin_dir,
            &mut config.tenant_dir,
        ] {
            if dir.is_relative() {
                *dir = base.join(&*dir);
            }
        }
        if let Some(url) = &config.store {
            config.store =
                Some(resolve_store_url(url, base).map_err(|e| ConfigError::new(path, e))?);
        }
        if config.max_body_kb == 0 || config.request_timeout_ms == 0 || config.instance_slots == 0 {
            return Err(ConfigError::new(path, HostConfigError::Zero));
        }
        if let Some(file) = config.admin_token.as_mut().and_then(|t| t.file.as_mut())
            && file.is_relative()
        {
            *file = base.join(&*file);
        }
        if let Some(token) = &config.admin_token {
            token
                .validate()
                .map_err(|e| ConfigError::new(path, HostConfigError::AdminToken(e)))?;
        }
        config.blobs.resolve_paths(base);
        config
            .blobs
            .validate()
            .map_err(|e| ConfigError::new(path, HostConfigError::Blobs(e)))?;
        Ok(config)
    }
}

/// A SQLite URL's relative path made relative to `base`; other supported URLs unchanged.
fn resolve_store_url(url: &str, base: &Path) -> Result<String, HostConfigError> {
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        let file = Path::new(path);
        return Ok(if file.is_relative() {
            format!("sqlite://{}", base.join(file).display())
        } else {
            url.to_string()
        });
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(url.to_string());
    }
    Err(HostConfigError::StoreScheme(
        url.split("://").next().unwrap_or(url).to_string(),
    ))
}
