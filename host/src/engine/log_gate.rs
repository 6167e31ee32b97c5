//! A plugin's log lines, through the `log` capability or its stdout and stderr, let
//! through at its tenant's `limits.log_lines_per_s`: logs are the host's disk and the
//! operator's attention, shared by every tenant. A line over the rate is dropped and
//! counted in `orquesta_log_lines_dropped_total`, and a plugin whose lines are being
//! dropped gets one line saying how many per `LOG_DROP_SUMMARY_S`. Each line is cut to
//! `LOG_LINE_BYTES` and escaped.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use super::PluginContext;
use super::limits::capability::{LOG_DROP_SUMMARY_S, LOG_LINE_BYTES};
use crate::text::escape_within;

/// The log rate of one plugin of a tenant.
pub struct LogGate {
    tenant: String,
    plugin: String,
    lines_per_s: u32,
    /// A burst of one second's lines, refilled at the rate.
    limiter: DefaultDirectRateLimiter,
    /// Registered at the first drop: most plugins never drop a line, and a counter per
    /// plugin of a thousand tenants is memory for nothing.
    dropped_total: OnceLock<metrics::Counter>,
    /// Dropped since the last summary line.
    unreported: AtomicU64,
    last_summary: Mutex<Option<Instant>>,
}

impl LogGate {
    pub fn new(tenant: &str, plugin: &str, lines_per_s: u32) -> Self {
        let rate = NonZeroU32::new(lines_per_s).unwrap_or(NonZeroU32::MIN);
        LogGate {
            tenant: tenant.to_string(),
            plugin: plugin.to_string(),
            lines_per_s: rate.get(),
            limiter: RateLimiter::direct(Quota::per_second(rate)),
            dropped_total: OnceLock::new(),
            unreported: AtomicU64::new(0),
            last_summary: Mutex::new(None),
        }
    }

    /// Whether one more line may be written now; a line refused is counted.
    pub fn admit(&self) -> bool {
        let admitted = self.limiter.check().is_ok();
        if !admitted {
            self.dropped_total
                .get_or_init(|| {
                    metrics::counter!("orquesta_log_lines_dropped_total",
                        "tenant" => self.tenant.clone(), "plugin" => self.plugin.clone())
                })
                .increment(1);
            self.unreported.fetch_add(1, Ordering::Relaxed);
        }
        if self.unreported.load(Ordering::Relaxed) > 0 {
            self.summarise();
        }
        admitted
    }

    /// Says how many lines were dropped, at most once a period.
    fn summarise(&self) {
        let mut last = self
            .last_summary
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let period = Duration::from_secs(LOG_DROP_SUMMARY_S);
        if last.is_some_and(|t| t.elapsed() < period) {
            return;
        }
        *last = Some(Instant::now());
        let dropped = self.unreported.swap(0, Ordering::Relaxed);
        let (tenant, plugin) = (&self.tenant, &self.plugin);
        tracing::warn!(%tenant, %plugin, dropped, limit_per_s = self.lines_per_s,
            "log lines dropped: the plugin writes more than its tenant's limits.log_lines_per_s");
    }
}

/// A guest's captured stdout and stderr, a log line per line, through the plugin's gate.
pub(super) fn guest_output(ctx: &PluginContext, id: &str, stdout: &[u8], stderr: &[u8]) {
    let (tenant, plugin) = (&ctx.tenant, &ctx.plugin);
    for (stream, bytes) in [("stdout", stdout), ("stderr", stderr)] {
        for line in String::from_utf8_lossy(bytes).lines() {
            if line.trim().is_empty() || !ctx.logs.admit() {
                continue;
            }
            let line = escape_within(&ctx.capabilities.redact(line), LOG_LINE_BYTES);
            if stream == "stdout" {
                tracing::info!(%tenant, %plugin, invocation = %id, stream, "{line}");
            } else {
                // A guest writes to stderr when something is wrong (Rust's panic hook does).
                tracing::warn!(%tenant, %plugin, invocation = %id, stream, "{line}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_past_the_burst_are_dropped_and_counted() {
        let gate = LogGate::new("gate-test", "p", 50);
        let admitted = (0..10_000).filter(|_| gate.admit()).count();
        // One second's burst, and what the rate refilled meanwhile.
        assert!((50..=60).contains(&admitted), "{admitted}");
        // The first drop was reported at once; the rest wait for the next period.
        assert_eq!(
            gate.unreported.load(Ordering::Relaxed),
            (10_000 - admitted - 1) as u64
        );
    }
}
