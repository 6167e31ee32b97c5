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
    #[error("advertise: {0}")]
    Advertise(&'static str),
    #[error("heartbeat_ms must be at least {MIN_HEARTBEAT_MS}")]
    Heartbeat,
    #[error("deploy_poll_ms must be at least {MIN_DEPLOY_POLL_MS}")]
    DeployPoll,
}

/// The shortest heartbeat interval: each beat is a write to the store shared by every
/// host, and a tenth of a second already tells a host gone within a second.
pub const MIN_HEARTBEAT_MS: u64 = 100;

/// The shortest interval between two looks for new deploys: each is a read of the store
/// shared by every host.
pub const MIN_DEPLOY_POLL_MS: u64 = 100;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HostConfig {
    /// Where the HTTP service listens. Loopback by default: exposing it is a decision.
    pub listen: SocketAddr,
    /// Where the other hosts and operators reach this one (a URL or `HOST:PORT`), as the
    /// host registry lists it (`GET /admin/v1/hosts`). Default: the address it listens
    /// on, which says little when that is `0.0.0.0`: set the pod's or VM's address
    /// (`--advertise`, `ORQUESTA_ADVERTISE`).
    pub advertise: Option<String>,
    /// How often this host writes its heartbeat to the store (the host registry). 5 s:
    /// a killed host is listed as gone within 15 s (three missed beats), about when a
    /// Kubernetes liveness probe gives up on it, for one small write every 5 s per host.
    pub heartbeat_ms: u64,
    /// Whether this host applies the deploys made through the admin API (or `orquesta
    /// deploy`) on any host of its store, and records its own there for the others.
    /// `false`: it serves its directories alone, and an upload to it stays on it.
    pub deploys_from_store: bool,
    /// How often this host looks in the store for deploys made through another host. Half
    /// a second: every host serves a deploy within about a second (within 2 s is the
    /// promise), for one small read per host twice a second.
    pub deploy_poll_ms: u64,
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
            advertise: None,
            heartbeat_ms: 5_000,
            deploys_from_store: true,
            deploy_poll_ms: 500,
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
        config
            .validate_registry()
            .map_err(|e| ConfigError::new(path, e))?;
        config.blobs.resolve_paths(base);
        config
            .blobs
            .validate()
            .map_err(|e| ConfigError::new(path, HostConfigError::Blobs(e)))?;
        Ok(config)
    }
}

impl HostConfig {
    /// Where this host keeps the plugins and tenant files deployed through the store
    /// (`plugins/`, `tenants/`): a copy of the store's, in the data directory because it
    /// is the one directory a host always writes (the plugin and tenant directories may
    /// be an image's or a read-only ConfigMap).
    pub fn deployed_dir(&self) -> PathBuf {
        self.data_dir.join("deployed")
    }

    /// The host registry's settings: an advertised address is one short line of text
    /// (it is shown to operators and other hosts), and beats are not too frequent.
    pub fn validate_registry(&self) -> Result<(), HostConfigError> {
        if let Some(address) = &self.advertise {
            if address.is_empty() {
                return Err(HostConfigError::Advertise("empty"));
            }
            if address.len() > 256 {
                return Err(HostConfigError::Advertise("longer than 256 bytes"));
            }
            if address.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(HostConfigError::Advertise(
                    "holds whitespace or control characters",
                ));
            }
        }
        if self.heartbeat_ms < MIN_HEARTBEAT_MS {
            return Err(HostConfigError::Heartbeat);
        }
        if self.deploy_poll_ms < MIN_DEPLOY_POLL_MS {
            return Err(HostConfigError::DeployPoll);
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<HostConfig, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orquesta.toml");
        std::fs::write(&path, text).unwrap();
        HostConfig::load(&path).map_err(|e| e.to_string())
    }

    #[test]
    fn the_registry_settings_default_and_are_checked() {
        let config = load("").unwrap();
        assert_eq!((config.advertise, config.heartbeat_ms), (None, 5_000));
        let config = load("advertise = \"http://10.0.3.17:8080\"\nheartbeat_ms = 250\n").unwrap();
        assert_eq!(config.advertise.as_deref(), Some("http://10.0.3.17:8080"));
        assert_eq!(config.heartbeat_ms, 250);
        for (text, reason) in [
            ("advertise = \"\"", "advertise: empty"),
            ("advertise = \"a b\"", "whitespace"),
            ("advertise = \"a\\nb\"", "whitespace"),
            ("heartbeat_ms = 10", "heartbeat_ms must be at least 100"),
        ] {
            let refused = load(text).expect_err(text);
            assert!(refused.contains(reason), "{text}: {refused}");
        }
        let long = format!("advertise = \"{}\"", "a".repeat(257));
        assert!(load(&long).unwrap_err().contains("256 bytes"));
    }
}
