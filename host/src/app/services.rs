//! What every tenant's capabilities draw on, built once per host.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::Notify;

use crate::capabilities::outbound::SharedHttpClient;
use crate::capabilities::{BackendError, Backends, HostResources, TenantResources};
use crate::engine::limits::Limits;
use crate::engine::log_gate::LogGate;
use crate::store::usage::Quota;
use crate::store::{BlobBackend, Store, TenantBlobs};
use crate::tenants::TenantConfig;
use crate::triggers::fanout::{LOG_TARGETS, TenantFanout};
use crate::workflow::Executor;

/// The backends every tenant's capabilities draw on, built once per host.
#[derive(Clone)]
pub struct Services {
    pub store: Store,
    pub http: SharedHttpClient,
    /// Where blob bytes live (`[blobs]` in the host config).
    pub blobs: BlobBackend,
    /// Tenants' relative SQLite databases live under `<data_dir>/databases/<tenant>/`.
    pub data_dir: PathBuf,
    /// Wakes this host's queue consumers when a message is sent here.
    pub wake: Arc<Notify>,
    /// Wakes this host's delivery worker when a delivery is written here.
    pub deliveries: Arc<Notify>,
    /// Workflow executions on this host.
    pub executor: Arc<Executor>,
}

impl Services {
    /// The backends for one tenant (made once per tenant load and shared by its plugins).
    pub fn backends(&self, name: &str, tenant: &TenantConfig) -> Result<Backends, BackendError> {
        let fanout = self.fanout(name, tenant);
        Backends::for_tenant(
            &HostResources {
                store: &self.store,
                blobs: &self.blobs,
                http: &self.http,
                data_dir: &self.data_dir,
            },
            &TenantResources {
                name,
                limits: &tenant.limits,
                sections: &tenant.capabilities,
                notify: Some(fanout.clone()),
                messaging: Some(fanout.clone()),
                workflow_tasks: Some(fanout),
            },
        )
    }

    /// A tenant's blobs under its quota, as plugins and the admin API write them.
    pub fn tenant_blobs(&self, limits: &Limits) -> TenantBlobs {
        TenantBlobs {
            backend: self.blobs.clone(),
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
