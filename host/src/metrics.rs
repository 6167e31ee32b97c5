//! Prometheus metrics. One recorder per process (the `metrics` facade is global), so every
//! server in a process, tests included, renders the same registry.

use std::sync::{OnceLock, RwLock};
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::engine::limits::capability::METRIC_STATUS_VALUES;

/// Seconds: from 50 µs (a warm instantiation) to 30 s (a slow upstream).
const LATENCY_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0, 30.0,
];

/// How often recorded histogram samples are folded into their buckets. Until then each
/// sample is kept (8 bytes and more): at 2,500 requests/s with nothing scraping
/// `/metrics`, RSS grew 63% in 5 minutes. A second's worth is a few hundred KiB at most.
const UPKEEP_EVERY: Duration = Duration::from_secs(1);

/// The process's metrics handle, installing the recorder (and its upkeep) on first use.
pub fn handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new().set_buckets(LATENCY_BUCKETS).ok()?;
            match builder.install_recorder() {
                Ok(handle) => {
                    start_upkeep(handle.clone());
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .clone()
}

/// Runs the recorder's upkeep for the life of the process, on a thread of its own: the
/// recorder is global and outlives any one tokio runtime (tests start many).
fn start_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                handle.run_upkeep();
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no metrics upkeep: histogram samples are kept until /metrics is scraped");
    }
}

/// The HTTP trigger's metrics for one plugin of a tenant. Each series is looked up in the
/// registry once (on its first request), then counted through its handle: a lookup by
/// label builds and hashes the key, allocating its labels, on every request.
pub struct HttpMetrics {
    tenant: String,
    plugin: String,
    duration: OnceLock<metrics::Histogram>,
    /// By response status; a plugin can answer any of a few hundred.
    requests: RwLock<Vec<(u16, metrics::Counter)>>,
}

impl HttpMetrics {
    pub fn new(tenant: &str, plugin: &str) -> Self {
        HttpMetrics {
            tenant: tenant.to_string(),
            plugin: plugin.to_string(),
            duration: OnceLock::new(),
            requests: RwLock::new(Vec::new()),
        }
    }

    pub fn record(&self, status: u16, seconds: f64) {
        self.duration
            .get_or_init(|| {
                metrics::histogram!(HTTP_DURATION, "tenant" => self.tenant.clone(), "plugin" => self.plugin.clone())
            })
            .record(seconds);
        {
            let requests = self.requests.read().unwrap_or_else(|p| p.into_inner());
            if let Some((_, counter)) = requests.iter().find(|(s, _)| *s == status) {
                counter.increment(1);
                return;
            }
        }
        let mut requests = self.requests.write().unwrap_or_else(|p| p.into_inner());
        if let Some((_, counter)) = requests.iter().find(|(s, _)| *s == status) {
            counter.increment(1);
            return;
        }
        // The plugin chooses its statuses: past a few, they share one series.
        if requests.len() >= METRIC_STATUS_VALUES {
            http_requests(&self.tenant, &self.plugin, "other").increment(1);
            return;
        }
        let counter = http_requests(&self.tenant, &self.plugin, &status.to_string());
        counter.increment(1);
        requests.push((status, counter));
    }
}

/// A request no plugin answered (no tenant, no route, refused by auth), counted by label:
/// its plugin is "".
pub fn record_unrouted(tenant: &str, status: u16, seconds: f64) {
    http_requests(tenant, "", &status.to_string()).increment(1);
    metrics::histogram!(HTTP_DURATION, "tenant" => tenant.to_string(), "plugin" => "")
        .record(seconds);
}

const HTTP_DURATION: &str = "orquesta_http_request_duration_seconds";

fn http_requests(tenant: &str, plugin: &str, status: &str) -> metrics::Counter {
    metrics::counter!("orquesta_http_requests_total",
        "tenant" => tenant.to_string(), "plugin" => plugin.to_string(), "status" => status.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn http_requests_are_counted_by_status_through_the_held_handles() {
        let handle = handle().expect("the recorder installs");
        let m = HttpMetrics::new("metrics-test", "p");
        m.record(200, 0.001);
        m.record(200, 0.002);
        m.record(503, 0.1);
        record_unrouted("metrics-test", 404, 0.0001);
        let text = handle.render();
        for line in [
            "orquesta_http_requests_total{tenant=\"metrics-test\",plugin=\"p\",status=\"200\"} 2",
            "orquesta_http_requests_total{tenant=\"metrics-test\",plugin=\"p\",status=\"503\"} 1",
            "orquesta_http_requests_total{tenant=\"metrics-test\",plugin=\"\",status=\"404\"} 1",
            "orquesta_http_request_duration_seconds_count{tenant=\"metrics-test\",plugin=\"p\"} 3",
            "orquesta_http_request_duration_seconds_count{tenant=\"metrics-test\",plugin=\"\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
        assert_eq!(m.requests.read().unwrap().len(), 2, "one handle per status");
        for status in 200..600 {
            m.record(status, 0.001);
        }
        let text = handle.render();
        let series = text
            .lines()
            .filter(|l| {
                l.starts_with("orquesta_http_requests_total{tenant=\"metrics-test\",plugin=\"p\"")
            })
            .count();
        assert_eq!(series, METRIC_STATUS_VALUES + 1, "{text}");
        let other = "orquesta_http_requests_total{tenant=\"metrics-test\",plugin=\"p\",status=\"other\"} 368";
        assert!(
            text.lines().any(|l| l == other),
            "missing {other} in\n{text}"
        );
    }
}
