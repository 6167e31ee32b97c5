//! The running host: deployed plugins, live tenants and the services they share. The HTTP
//! service (`server`) and the triggers (`triggers`) both work on an [`App`]; it knows
//! neither.

pub mod config;
pub mod deploys;
pub mod plugins;
pub mod registry;
mod services;
pub mod tenants;
pub mod watch;

use std::sync::atomic::AtomicBool;

pub use services::Services;

use crate::engine::Engine;
use config::HostConfig;
use plugins::PluginCatalog;
use tenants::TenantRegistry;

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
    /// This process in the host registry.
    pub host: registry::ThisHost,
    /// The deploys through the store this host applied.
    pub deploys: deploys::Deploys,
}

impl App {
    /// Loads new and changed plugins, then tenants (whose routes name plugins).
    pub async fn reload(&self) {
        self.plugins.scan().await;
        self.tenants.scan(&self.services, &self.plugins);
    }
}
