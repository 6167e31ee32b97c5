//! What the service shares across requests.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tokio::sync::Notify;

use super::config::HostConfig;
use super::fanout::{AppHandle, LOG_TARGETS, TenantFanout};
use super::plugins::PluginCatalog;
use super::tenants::TenantRegistry;
use crate::capabilities::Backends;
use crate::capabilities::outbound::SharedHttpClient;
use crate::capabilities::sql::TenantDatabases;
use crate::engine::Engine;
use crate::engine::limits::Limits;
use crate::engine::log_gate::LogGate;
use crate::store::usage::Quota;
use crate::store::{FsBlobs, Store, TenantBlobs, TenantKv};
use crate::tenants::TenantConfig;
use crate::workflow::Executor;

/// The backends every tenant's capabilities draw on, built once per host.
#[derive(Clone)]
pub struct Services {
    pub store: Store,
    pub http: SharedHttpClient,
    pub blobs: FsBlobs,
    /// Tenants' relative SQLite databases live under `<data_dir>/databases/<tenant>/`.
    pub data_dir: PathBuf,
    /// Wakes this host's queue consumers when a message is sent here.
    pub wake: Arc<Notify>,
    /// Wakes this host's delivery worker when a delivery is written here.
    pub deliveries: Arc<Notify>,
    /// The service, for deliveries to plugins (set once it exists).
    pub app: AppHandle,
    /// Workflow executions on this host.
    pub executor: Arc<Executor>,
}

impl Services {
    /// The backends for one tenant, with its own outbound policy and database pools
    /// (made once per tenant load and shared by its plugins).
    pub fn backends(&self, name: &str, tenant: &TenantConfig) -> Result<Backends, String> {
        let mut backends = Backends::unavailable();
        backends.kv = Arc::new(TenantKv {
            store: self.store.clone(),
            quota: Quota::kv(&tenant.limits),
        });
        backends.blob = Arc::new(self.tenant_blobs(&tenant.limits));
        backends.http = self.http.for_tenant(tenant.http.allow_private);
        let databases = self.data_dir.join("databases").join(name);
        backends.sql = Arc::new(TenantDatabases::new(&tenant.databases, &databases)?);
        let fanout = self.fanout(name, tenant);
        backends.messaging = fanout.clone();
        backends.notify = fanout;
        Ok(backends)
    }

    /// A tenant's blobs under its quota, as plugins and the admin API write them.
    pub fn tenant_blobs(&self, limits: &Limits) -> TenantBlobs {
        TenantBlobs {
            files: self.blobs.clone(),
            store: self.store.clone(),
            quota: Quota::blob(limits),
        }
    }

    /// A tenant's queues, topics and buses as plugins and the admin API reach them.
    pub fn fanout(&self, name: &str, tenant: &TenantConfig) -> Arc<TenantFanout> {
        Arc::new(TenantFanout {
            tenant: name.to_string(),
            store: self.store.clone(),
            wake: self.wake.clone(),
            deliveries: self.deliveries.clone(),
            limits: tenant.limits.clone(),
            queues: tenant.queues.clone(),
            topics: tenant.topics.clone(),
            buses: tenant.buses.clone(),
            workflows: tenant.workflows.clone(),
            executor: self.executor.clone(),
            logs: LogGate::new(name, LOG_TARGETS, tenant.limits.log_lines_per_s),
        })
    }
}

pub struct App {
    pub config: HostConfig,
    pub engine: Engine,
    pub services: Services,
    pub plugins: PluginCatalog,
    pub tenants: TenantRegistry,
    /// SHA-256 of the admin token; `None` turns the admin API off.
    pub admin_token_hash: Option<String>,
    /// Set once the first scan of plugins and tenants is done.
    pub ready: AtomicBool,
}

impl App {
    /// Loads new and changed plugins, then tenants (whose routes name plugins).
    pub async fn reload(&self) {
        self.plugins.scan().await;
        self.tenants.scan(&self.services, &self.plugins);
    }
}
