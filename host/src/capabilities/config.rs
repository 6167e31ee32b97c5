//! `orquesta:plugin/config`: the plugin's config values and granted secrets; and the
//! same config values for the standard `wasi:config/store` (0.2.0-rc.1, wasmtime's
//! `wasmtime-wasi-config`, linked in `engine/mod.rs`).

use std::collections::BTreeMap;

use wasmtime_wasi_config::WasiConfigVariables;

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

/// What `wasi:config/store` answers for one plugin: its config values exactly as
/// `config.get` returns them, and nothing else. Secrets are left out on purpose: the
/// standard interface has no notion of them, and a component written for any host reads
/// everything `get-all` gives, logs included; `config.secret` stays their only door.
pub fn wasi_variables(config: &BTreeMap<String, String>) -> WasiConfigVariables {
    config
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}
