//! This host in the host registry (`store::hosts`): its heartbeat, written every
//! `heartbeat_ms` from the service's start to its shutdown, says where it is reached,
//! what it serves and how many invocations it runs. Any host of the store lists them all
//! (`GET /admin/v1/hosts`). The registry only shows: leases (queue batches, workflow
//! executions, deliveries) pass between hosts by their own expiry, as before.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::App;
use crate::store::hosts::{HostBeat, KEEP_MS, ServedPlugin, ServedTenant};
use crate::store::{StoreError, now_ms};

/// How often a host deletes the hosts gone or stopped for longer than `KEEP_MS`: every
/// host does, so once in a while each is plenty.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Who this process is in the registry: a new id every start, since a restarted host
/// serves afresh (its leases were taken over or expire).
#[derive(Debug, Clone)]
pub struct ThisHost {
    pub id: String,
    /// Milliseconds since the Unix epoch.
    pub started_at: i64,
}

impl ThisHost {
    pub fn new() -> Self {
        ThisHost {
            id: uuid::Uuid::new_v4().to_string(),
            started_at: now_ms(),
        }
    }
}

impl Default for ThisHost {
    fn default() -> Self {
        Self::new()
    }
}

/// The tenants this host serves now and the component each of their plugins runs.
pub fn served(app: &App) -> Vec<ServedTenant> {
    app.tenants
        .names()
        .into_iter()
        .filter_map(|name| {
            let runtime = app.tenants.get(&name)?;
            let plugins = runtime
                .config
                .plugins
                .keys()
                .map(|plugin| {
                    let component = runtime.component_of(plugin).unwrap_or_default();
                    ServedPlugin {
                        name: plugin.clone(),
                        hash: app.plugins.get(&component).map(|p| p.hash),
                        component,
                    }
                })
                .collect();
            Some(ServedTenant { name, plugins })
        })
        .collect()
}

/// The heartbeat: what it wrote last, so an unchanged tenant list is not written again.
pub struct Heartbeat {
    app: Arc<App>,
    address: String,
    written: Option<String>,
}

impl Heartbeat {
    /// This host's heartbeat, advertising `address`.
    pub fn new(app: Arc<App>, address: String) -> Self {
        Heartbeat {
            app,
            address,
            written: None,
        }
    }

    /// Writes one heartbeat now.
    pub async fn beat(&mut self) -> Result<(), StoreError> {
        let app = &self.app;
        // A list of plain strings: it serializes.
        let tenants = serde_json::to_string(&served(app)).unwrap_or_else(|_| "[]".into());
        let mut beat = HostBeat {
            id: app.host.id.clone(),
            address: self.address.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: app.host.started_at,
            heartbeat_ms: app.config.heartbeat_ms,
            in_flight: app.engine.in_flight(),
            tenants: (self.written.as_deref() != Some(tenants.as_str())).then(|| tenants.clone()),
        };
        let store = &app.services.store;
        let now = now_ms();
        if !store.host_beat(&beat, now).await? {
            beat.tenants = Some(tenants.clone());
            store.host_beat(&beat, now).await?;
        }
        self.written = Some(tenants);
        Ok(())
    }

    /// Beats every `heartbeat_ms` until `stop` turns true (or its sender is gone), then
    /// records the host as stopped. Also prunes the hosts gone for longer than `KEEP_MS`.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let every = Duration::from_millis(self.app.config.heartbeat_ms.max(1));
        let mut pruned: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                changed = stop.changed() => if changed.is_err() { break },
            }
            if *stop.borrow() {
                break;
            }
            if let Err(e) = self.beat().await {
                tracing::warn!(error = %e, "cannot write this host's heartbeat");
            }
            if pruned.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                pruned = Some(Instant::now());
                match self.app.services.store.host_prune(now_ms() - KEEP_MS).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(hosts = n, "pruned hosts gone for a day"),
                    Err(e) => tracing::warn!(error = %e, "cannot prune gone hosts"),
                }
            }
        }
        let store = &self.app.services.store;
        if let Err(e) = store.host_stopped(&self.app.host.id, now_ms()).await {
            tracing::warn!(error = %e, "cannot record this host as stopped");
        }
    }
}
