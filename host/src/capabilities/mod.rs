//! Host capabilities: one module per WIT interface. Each module checks the caller's
//! grants, then hands the call to a backend behind one small trait, so the real host,
//! the test harness and later stores can plug in their own.

mod addresses;
pub mod blob;
pub mod config;
pub mod http;
pub mod kv;
mod log;
pub mod messaging;
pub mod notify;
pub mod outbound;
pub mod secrets;
pub mod sql;
mod unavailable;
pub mod wasi_http;
pub mod workflow_tasks;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use thiserror::Error;

use crate::bindings::types::HostError;
use crate::engine::limits::Limits;
use crate::engine::limits::capability::NAME_BYTES;
use crate::store::{BlobBackend, FsBlobs, Store};
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

/// A host capability: the WIT interface a plugin imports and the grants that open it.
#[derive(Debug, Clone, Copy)]
pub struct Capability {
    /// The interface's name in `orquesta:plugin` (docs/CONTRACT.md).
    pub interface: &'static str,
    /// The allow-lists a tenant gives a plugin for it; none when every plugin has it.
    pub grants: &'static [Grant],
}

/// One allow-list under `[plugins.NAME.allow]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// Its key in the tenant file.
    pub key: &'static str,
    /// What it names, for refusals ("kv bucket").
    pub names: &'static str,
}

/// Every capability the host links, once: the tenant file's `allow` keys, `Grants::all`
/// and the docs' list come from here. Adding one: docs/CONTRIBUTING.md.
pub const CAPABILITIES: &[Capability] = &[
    config::CAPABILITY,
    log::CAPABILITY,
    kv::CAPABILITY,
    blob::CAPABILITY,
    http::CAPABILITY,
    notify::CAPABILITY,
    messaging::CAPABILITY,
    workflow_tasks::CAPABILITY,
    sql::CAPABILITY,
];

/// Every grant of every capability.
pub fn grants() -> impl Iterator<Item = Grant> {
    CAPABILITIES.iter().flat_map(|c| c.grants.iter().copied())
}

/// What a tenant grants one plugin (`[plugins.NAME.allow]`): one allow-list per
/// [`Grant`] of [`CAPABILITIES`], absent ones empty. `"*"` allows any name. A plugin
/// always has its private kv bucket `default`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    lists: BTreeMap<&'static str, Vec<String>>,
}

impl Grants {
    /// Everything: for testing a plugin in isolation.
    pub fn all() -> Self {
        let mut all = Grants::default();
        for grant in grants() {
            all.lists.insert(grant.key, vec!["*".to_string()]);
        }
        all
    }

    /// These grants with `grant` allowing `names`.
    pub fn with(mut self, grant: Grant, names: &[&str]) -> Self {
        self.lists
            .insert(grant.key, names.iter().map(|n| n.to_string()).collect());
        self
    }

    /// The names `grant` allows (`"*"` for any).
    pub fn list(&self, grant: Grant) -> &[String] {
        self.lists.get(grant.key).map_or(&[], Vec::as_slice)
    }

    /// `Ok` when `grant` allows `name`.
    pub fn check(&self, grant: Grant, name: &str) -> Result<(), CapError> {
        check_name(grant.names, name)?;
        if self.list(grant).iter().any(|g| g == "*" || g == name) {
            Ok(())
        } else {
            Err(CapError::Denied(format!(
                "{} `{name}` is not granted to this plugin",
                grant.names
            )))
        }
    }
}

impl<'de> Deserialize<'de> for Grants {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let raw = BTreeMap::<String, Vec<String>>::deserialize(d)?;
        let mut out = Grants::default();
        for (key, names) in raw {
            let Some(grant) = grants().find(|g| g.key == key) else {
                return Err(D::Error::unknown_field(&key, grant_keys()));
            };
            out.lists.insert(grant.key, names);
        }
        Ok(out)
    }
}

/// The grant keys, as serde's `unknown_field` wants them: a `'static` list, made once.
fn grant_keys() -> &'static [&'static str] {
    static KEYS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| grants().map(|g| g.key).collect())
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

/// The backends that carry out capability calls, one per capability of
/// [`CAPABILITIES`] that has one.
#[derive(Clone)]
pub struct Backends {
    pub kv: Arc<dyn kv::KeyValue>,
    pub blob: Arc<dyn blob::Blobs>,
    pub http: Arc<dyn http::OutboundHttp>,
    pub notify: Arc<dyn notify::Notifier>,
    pub messaging: Arc<dyn messaging::Messaging>,
    pub workflow_tasks: Arc<dyn workflow_tasks::WorkflowTasks>,
    pub sql: Arc<dyn sql::SqlDatabases>,
}

/// What a host gives its tenants' capabilities to work on, built once per process by one
/// of the constructors below (the service, `orquesta invoke`/`test` and the test harness
/// each call one), so a resource a new backend needs is added here and nowhere else.
#[derive(Clone)]
pub struct HostResources {
    pub store: Store,
    pub blobs: BlobBackend,
    pub http: outbound::SharedHttpClient,
    /// Tenants' relative SQLite databases live under `<data_dir>/databases/<tenant>/`.
    pub data_dir: PathBuf,
}

impl HostResources {
    /// The service's: the store and the blob backend its config names.
    pub fn new(store: Store, blobs: BlobBackend, data_dir: &Path) -> Result<Self, ResourceError> {
        Ok(HostResources {
            store,
            blobs,
            http: outbound::SharedHttpClient::new(outbound::OutboundConfig::default())
                .map_err(ResourceError::HttpClient)?,
            data_dir: data_dir.to_path_buf(),
        })
    }

    /// A process on its own (`orquesta invoke`, `orquesta test`, the test harness):
    /// `store`, and blobs as files under `<data_dir>/blobs`.
    pub fn local(store: Store, data_dir: &Path) -> Result<Self, ResourceError> {
        let blobs = BlobBackend::Files(FsBlobs::new(data_dir.join("blobs")));
        Self::new(store, blobs, data_dir)
    }
}

/// Why a host's resources could not be made.
#[derive(Debug, Error)]
pub enum ResourceError {
    #[error("cannot build the outbound HTTP client: {0}")]
    HttpClient(reqwest::Error),
}

/// A tenant's own runtimes that capabilities hand calls to: its topics (`notify`), its
/// queues, buses and workflows (`messaging`), its workflows' callback tasks
/// (`workflow-tasks`). The service's fan-out and the harness's outbox implement it; a
/// capability that starts one of the tenant's triggers adds its trait here.
pub trait TenantRuntime:
    notify::Notifier + messaging::Messaging + workflow_tasks::WorkflowTasks
{
}

impl<T: notify::Notifier + messaging::Messaging + workflow_tasks::WorkflowTasks> TenantRuntime
    for T
{
}

/// What capabilities keep for the length of one invocation (a count of calls against a
/// per-invocation cap, say), each under a type of its own module: the engine makes one
/// empty per invocation and knows none of them. Nothing is allocated until a capability
/// first asks.
#[derive(Default)]
pub struct InvocationState {
    slots: Vec<Box<dyn std::any::Any + Send>>,
}

impl InvocationState {
    /// The capability's state of type `T`, made with `T::default()` on first use.
    pub fn get<T: Default + Send + 'static>(&mut self) -> &mut T {
        let at = match self.slots.iter().position(|s| s.is::<T>()) {
            Some(at) => at,
            None => {
                self.slots.push(Box::new(T::default()));
                self.slots.len() - 1
            }
        };
        self.slots[at]
            .downcast_mut::<T>()
            .expect("the slot at `at` holds a `T`: found or pushed just above")
    }
}

/// The tenant file's sections that belong to a capability, one field each: `[kv]`,
/// `[http]`, `[databases.NAME]`. Each section's type and checks live in its
/// capability's module; the tenant file reads them through [`Sections::read`], so a
/// capability's section is added here and in its module, and reaches its backend
/// through [`TenantResources::sections`].
#[derive(Debug, Clone, Default)]
pub struct Sections {
    /// Shared kv buckets plugins may be granted (`allow.kv_buckets`).
    pub kv: kv::KvConfig,
    /// Outbound HTTP and response settings for all of the tenant's plugins.
    pub http: http::HttpConfig,
    /// Databases plugins may be granted (`allow.databases`), by name.
    pub databases: BTreeMap<String, sql::DatabaseConfig>,
}

/// Why a capability's section was refused (each names its keys).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SectionError {
    #[error(transparent)]
    Kv(#[from] kv::KvConfigError),
    #[error(transparent)]
    Sql(#[from] sql::DatabaseError),
}

impl Sections {
    /// Their keys in the tenant file.
    pub const KEYS: &'static [&'static str] = &["kv", "http", "databases"];

    /// Reads the section `key` (one of [`Sections::KEYS`]) from the tenant file; the
    /// deserializer keeps each error's place in the file.
    pub fn read<'de, A: serde::de::MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> Result<(), A::Error> {
        match key {
            "kv" => self.kv = map.next_value()?,
            "http" => self.http = map.next_value()?,
            "databases" => self.databases = map.next_value()?,
            other => return Err(serde::de::Error::unknown_field(other, Self::KEYS)),
        }
        Ok(())
    }

    /// Reads the files sections point to, relative to `dir` (the tenant file's).
    pub fn read_files(&mut self, dir: &Path) -> Result<(), SectionError> {
        sql::read_init_scripts(&mut self.databases, dir)?;
        Ok(())
    }

    /// Checks each section on its own.
    pub fn validate(&self) -> Result<(), SectionError> {
        self.kv.validate()?;
        sql::validate(&self.databases)?;
        Ok(())
    }

    /// For a grant of names a section declares: the section, as errors name it, and
    /// its names. `None` for other grants.
    pub fn declared(&self, grant: Grant) -> Option<(&'static str, Vec<&str>)> {
        if grant == kv::BUCKETS {
            Some((
                "kv.buckets",
                self.kv.buckets.iter().map(String::as_str).collect(),
            ))
        } else if grant == sql::DATABASES {
            Some((
                "databases",
                self.databases.keys().map(String::as_str).collect(),
            ))
        } else {
            None
        }
    }
}

/// Why a tenant's backends could not be made.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BackendError {
    #[error(transparent)]
    Sql(#[from] sql::DatabaseError),
}

/// One tenant's settings the backends follow, and its runtimes where the host has them.
pub struct TenantResources<'a> {
    pub name: &'a str,
    pub limits: &'a Limits,
    /// The tenant file's capability sections.
    pub sections: &'a Sections,
    /// The tenant's topics, queues, buses and workflows; `None` (`orquesta invoke`):
    /// `notify`, `messaging` and `workflow-tasks` are unavailable.
    pub runtime: Option<Arc<dyn TenantRuntime>>,
}

impl Backends {
    /// Every backend answers `unavailable`.
    pub fn unavailable() -> Self {
        let none = Arc::new(Unavailable);
        Backends {
            kv: none.clone(),
            blob: none.clone(),
            http: none.clone(),
            notify: none.clone(),
            messaging: none.clone(),
            workflow_tasks: none.clone(),
            sql: none,
        }
    }

    /// One tenant's backends: its quotas, outbound policy and database pools (made once
    /// per tenant load and shared by its plugins).
    pub fn for_tenant(
        host: &HostResources,
        tenant: &TenantResources,
    ) -> Result<Self, BackendError> {
        let none = Arc::new(Unavailable);
        let runtime = tenant.runtime.clone();
        Ok(Backends {
            kv: kv::backend(host, tenant),
            blob: blob::backend(host, tenant),
            http: host.http.for_tenant(tenant.sections.http.allow_private),
            notify: runtime
                .clone()
                .map_or_else(|| none.clone() as _, |r| r as _),
            messaging: runtime
                .clone()
                .map_or_else(|| none.clone() as _, |r| r as _),
            workflow_tasks: runtime.map_or_else(|| none.clone() as _, |r| r as _),
            sql: sql::backend(host, tenant)?,
        })
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

#[cfg(test)]
mod tests {
    use super::InvocationState;

    #[derive(Default)]
    struct Calls(u32);
    #[derive(Default)]
    struct Bytes(u64);

    /// Each capability's state is its own, kept across calls of one invocation, and a
    /// new invocation's starts empty.
    #[test]
    fn invocation_state_keeps_one_value_per_type() {
        let mut state = InvocationState::default();
        state.get::<Calls>().0 += 1;
        state.get::<Calls>().0 += 1;
        state.get::<Bytes>().0 += 7;
        assert_eq!(state.get::<Calls>().0, 2);
        assert_eq!(state.get::<Bytes>().0, 7);
        assert_eq!(InvocationState::default().get::<Calls>().0, 0);
    }
}
