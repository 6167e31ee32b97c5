//! `orquesta:plugin/log`: the plugin's log lines go to `tracing`, tagged with tenant,
//! plugin and invocation, with the plugin's secrets redacted, at the plugin's log rate,
//! cut to the line cap and escaped so that no line forges another (see
//! `engine::log_gate`).

use std::fmt::Write as _;

use crate::bindings::log::{Host, Level};
use crate::engine::Invocation;
use crate::engine::limits::capability::LOG_LINE_BYTES;
use crate::text::escape_within;

/// Every plugin logs (at its tenant's `log_lines_per_s`): nothing to grant.
pub const CAPABILITY: super::Capability = super::Capability {
    interface: "log",
    grants: &[],
};

impl Host for Invocation {
    async fn log(&mut self, level: Level, message: String, fields: Vec<(String, String)>) {
        if !self.ctx.logs.admit() {
            return;
        }
        let caps = &self.ctx.capabilities;
        let message = escape_within(&caps.redact(&message), LOG_LINE_BYTES);
        // The line's room left after the message; fields past it are not rendered.
        let room = LOG_LINE_BYTES.saturating_sub(message.len());
        let mut rendered = String::new();
        for (key, value) in &fields {
            if rendered.len() > room {
                break;
            }
            if !rendered.is_empty() {
                rendered.push(' ');
            }
            // Values quoted, and keys unless plain, so one cannot pass for several.
            let plain = !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            let _ = if plain {
                write!(rendered, "{key}={:?}", caps.redact(value))
            } else {
                write!(rendered, "{key:?}={:?}", caps.redact(value))
            };
        }
        let fields = if rendered.is_empty() {
            rendered
        } else {
            escape_within(&rendered, room)
        };
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
