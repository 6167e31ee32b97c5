//! `orquesta:plugin/log`: the plugin's log lines go to `tracing`, tagged with tenant,
//! plugin and invocation, with the plugin's secrets redacted.

use crate::bindings::log::{Host, Level};
use crate::engine::Invocation;

impl Host for Invocation {
    async fn log(&mut self, level: Level, message: String, fields: Vec<(String, String)>) {
        let caps = &self.ctx.capabilities;
        let message = caps.redact(&message);
        let fields: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{k}={}", caps.redact(v)))
            .collect();
        let fields = fields.join(" ");
        let (tenant, plugin, invocation) = (&self.ctx.tenant, &self.ctx.plugin, &self.id);
        // tracing needs the level at compile time, hence one call per level.
        match level {
            Level::Trace => tracing::trace!(%tenant, %plugin, %invocation, %fields, "{message}"),
            Level::Debug => tracing::debug!(%tenant, %plugin, %invocation, %fields, "{message}"),
            Level::Info => tracing::info!(%tenant, %plugin, %invocation, %fields, "{message}"),
            Level::Warn => tracing::warn!(%tenant, %plugin, %invocation, %fields, "{message}"),
            Level::Error => tracing::error!(%tenant, %plugin, %invocation, %fields, "{message}"),
        }
    }
}
