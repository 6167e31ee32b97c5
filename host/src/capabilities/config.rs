//! `orquesta:plugin/config`: the plugin's config values and granted secrets.

use crate::bindings::config::Host;
use crate::engine::Invocation;

/// Every plugin reads its own config: nothing to grant.
pub const CAPABILITY: super::Capability = super::Capability {
    interface: "config",
    grants: &[],
};

impl Host for Invocation {
    async fn get(&mut self, key: String) -> Option<String> {
        self.ctx.capabilities.config.get(&key).cloned()
    }

    async fn get_all(&mut self) -> Vec<(String, String)> {
        let config = &self.ctx.capabilities.config;
        config.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    async fn secret(&mut self, name: String) -> Option<String> {
        let secret = self.ctx.capabilities.secrets.get(&name)?;
        Some(secret.expose().to_string())
    }
}
