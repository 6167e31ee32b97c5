//! What every tenant's capabilities draw on, built once per host.

use std::ops::Deref;
use std::sync::Arc;

use tokio::sync::Notify;

use crate::capabilities::{BackendError, Backends, HostResources, TenantResources};
use crate::engine::limits::Limits;
use crate::engine::log_gate::LogGate;
use crate::store::TenantBlobs;
use crate::store::usage::Quota;
use crate::tenants::TenantConfig;
use crate::triggers::fanout::{LOG_TARGETS, TenantFanout};
use crate::triggers::queue::QueueWakes;
use crate::workflow::Executor;

/// The backends every tenant's capabilities draw on, built once per host: the host's
/// resources (store, blobs, HTTP client, data directory) and the service's runtimes.
#[derive(Clone)]
pub struct Services {
    pub resources: HostResources,
    /// Wakes this host's consumers of a queue when a message is sent to it here.
    pub wakes: Arc<QueueWakes>,
    /// Wakes this host's delivery worker when a delivery is written here.
    pub deliveries: Arc<Notify>,
    /// Workflow executions on this host.
    pub executor: Arc<Executor>,
}

impl Services {
    /// The backends for one tenant (made once per tenant load and shared by its plugins).
    pub fn backends(&self, name: &str, tenant: &TenantConfig) -> Result<Backends, BackendError> {
        Backends::for_tenant(
            &self.resources,
            &TenantResources {
                name,
                limits: &tenant.limits,
                sections: &tenant.capabilities,
                runtime: Some(self.fanout(name, tenant)),
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
            wakes: self.wakes.clone(),
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

/// The service's resources read as the host's (`services.store`, `services.blobs`).
impl Deref for Services {
    type Target = HostResources;

    fn deref(&self) -> &HostResources {
        &self.resources
    }
}
