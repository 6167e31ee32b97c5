//! Host capabilities: one module per WIT interface. Each module checks the caller's
//! grants, then hands the call to a backend behind one small trait, so the real host,
//! the test harness and later stores can plug in their own.

mod addresses;
pub mod blob;
mod config;
pub mod http;
pub mod kv;
mod log;
pub mod messaging;
pub mod notify;
pub mod outbound;
pub mod secrets;
pub mod sql;
mod unavailable;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use thiserror::Error;

use crate::bindings::types::HostError;
use crate::engine::limits::capability::NAME_BYTES;
pub use unavailable::Unavailable;

/// A capability call's failure, as a backend reports it.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CapError {
    #[error("denied: {0}")]
    Denied(String),
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("timeout: {0}")]
    Timeout(String),
    #[error("failed: {0}")]
    Failed(String),
    /// The call clashes with what is stored (a blob key under a key that is an object).
    /// A plugin sees it as `invalid`; the admin API answers 409.
    #[error("invalid: {0}")]
    Conflict(String),
}

impl From<CapError> for HostError {
    fn from(e: CapError) -> Self {
        match e {
            CapError::Denied(m) => HostError::Denied(m),
            CapError::Unavailable(m) => HostError::Unavailable(m),
            CapError::Invalid(m) => HostError::Invalid(m),
            CapError::Timeout(m) => HostError::Timeout(m),
            CapError::Failed(m) => HostError::Failed(m),
            CapError::Conflict(m) => HostError::Invalid(m),
        }
    }
}

/// Who is calling a backend.
#[derive(Debug, Clone)]
pub struct Caller<'a> {
    pub tenant: &'a str,
    pub plugin: &'a str,
    pub invocation: &'a str,
    /// The chain depth of what this caller sends: one more than the calling
    /// invocation's, 0 for the admin API (see `MAX_CHAIN_DEPTH`).
    pub depth: u32,
}

/// What a tenant grants one plugin (`[plugins.NAME.allow]`). Every list is an
/// allow-list; `"*"` allows any name. A plugin always has its private kv bucket
/// `default`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Grants {
    /// Shared kv buckets of the tenant.
    pub kv_buckets: Vec<String>,
    /// Outbound HTTP hosts (`api.example.com`, `*.example.com`).
    pub hosts: Vec<String>,
    pub topics: Vec<String>,
    pub queues: Vec<String>,
    pub buses: Vec<String>,
    pub workflows: Vec<String>,
    pub databases: Vec<String>,
    pub blob_buckets: Vec<String>,
}

impl Grants {
    /// Everything: for testing a plugin in isolation.
    pub fn all() -> Self {
        let any = || vec!["*".to_string()];
        Grants {
            kv_buckets: any(),
            hosts: any(),
            topics: any(),
            queues: any(),
            buses: any(),
            workflows: any(),
            databases: any(),
            blob_buckets: any(),
        }
    }

    /// `Ok` when `list` (the grant called `what`) allows `name`.
    pub(crate) fn check(list: &[String], what: &str, name: &str) -> Result<(), CapError> {
        check_name(what, name)?;
        if list.iter().any(|g| g == "*" || g == name) {
            Ok(())
        } else {
            Err(CapError::Denied(format!(
                "{what} `{name}` is not granted to this plugin"
            )))
        }
    }
}

/// Names of buckets, topics and queues: short, printable, no path tricks.
pub fn check_name(what: &str, name: &str) -> Result<(), CapError> {
    let ok = !name.is_empty()
        && name.len() <= NAME_BYTES
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(CapError::Invalid(format!(
            "{what} name {name:?} must be 1-{NAME_BYTES} characters of A-Z a-z 0-9 - _ . and not start with a dot"
        )))
    }
}

/// A secret value. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The backends that carry out capability calls.
#[derive(Clone)]
pub struct Backends {
    pub kv: Arc<dyn kv::KeyValue>,
    pub blob: Arc<dyn blob::Blobs>,
    pub http: Arc<dyn http::OutboundHttp>,
    pub notify: Arc<dyn notify::Notifier>,
    pub messaging: Arc<dyn messaging::Messaging>,
    pub sql: Arc<dyn sql::SqlDatabases>,
}

impl Backends {
    /// Every backend answers `unavailable`; set the ones the host has.
    pub fn unavailable() -> Self {
        let none = Arc::new(Unavailable);
        Backends {
            kv: none.clone(),
            blob: none.clone(),
            http: none.clone(),
            notify: none.clone(),
            messaging: none.clone(),
            sql: none,
        }
    }
}

/// One plugin's view of the host: its config, secrets, grants and the backends.
#[derive(Clone)]
pub struct Capabilities {
    pub config: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, Secret>,
    pub grants: Grants,
    pub backends: Backends,
}

impl Capabilities {
    /// `text` with every secret value of this plugin replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in self.secrets.values() {
            // Very short secrets would blank out ordinary words; they are not redacted.
            if secret.0.len() >= 4 && out.contains(&secret.0) {
                out = out.replace(&secret.0, "***");
            }
        }
        out
    }
}

impl crate::bindings::types::Host for crate::engine::Invocation {}

/// `events` only declares the records the trigger handlers take: nothing to implement.
impl crate::bindings::events::Host for crate::engine::Invocation {}
