//! `orquesta_invocation_errors_total` by error name. A plugin names its own failures, and
//! every label value is a series kept for the life of the process and served by the
//! unauthenticated `/metrics`: a plugin's names are cut to a short label of a safe
//! charset, and past a few distinct names per plugin they count as `other`. The host's
//! own error names are few and always counted as themselves.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use super::InvokeError;
use super::limits::capability::{METRIC_LABEL_BYTES, METRIC_LABEL_VALUES};

const METRIC: &str = "orquesta_invocation_errors_total";

/// The error counters of one plugin of a tenant.
pub(super) struct ErrorCounters {
    tenant: String,
    plugin: String,
    labels: Mutex<Labels>,
}

#[derive(Default)]
struct Labels {
    /// Label value -> its counter: at most `METRIC_LABEL_VALUES` of the plugin's names,
    /// `other` and the host's names.
    counters: HashMap<String, metrics::Counter>,
    plugin_names: usize,
}

impl ErrorCounters {
    pub(super) fn new(tenant: &str, plugin: &str) -> Self {
        ErrorCounters {
            tenant: tenant.to_string(),
            plugin: plugin.to_string(),
            labels: Mutex::default(),
        }
    }

    pub(super) fn count(&self, error: &InvokeError) {
        let label = match error {
            InvokeError::Plugin { error, .. } => label(error),
            host => host.name().to_string(),
        };
        let mut labels = self.labels.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(counter) = labels.counters.get(&label) {
            counter.increment(1);
            return;
        }
        let label = match error {
            InvokeError::Plugin { .. } if labels.plugin_names >= METRIC_LABEL_VALUES => {
                "other".to_string()
            }
            InvokeError::Plugin { .. } => {
                labels.plugin_names += 1;
                label
            }
            _ => label,
        };
        let counter = labels.counters.entry(label.clone()).or_insert_with(|| {
            metrics::counter!(METRIC, "tenant" => self.tenant.clone(),
                "plugin" => self.plugin.clone(), "error" => label)
        });
        counter.increment(1);
    }
}

/// `name` as a label value: characters outside `A-Z a-z 0-9 _ . : -` become `_`, and
/// it is cut to `METRIC_LABEL_BYTES`.
fn label(name: &str) -> String {
    name.chars()
        .take(METRIC_LABEL_BYTES)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(name: &str) -> InvokeError {
        InvokeError::Plugin {
            error: name.to_string(),
            cause: String::new(),
        }
    }

    #[test]
    fn plugin_names_are_bounded_and_host_names_kept() {
        let handle = crate::metrics::handle().expect("the recorder installs");
        let counters = ErrorCounters::new("labels-test", "p");
        counters.count(&failure("ValidationError"));
        counters.count(&failure(&format!("Bad name\n{}", "x".repeat(100_000))));
        for i in 0..200 {
            counters.count(&failure(&format!("Named{i}")));
        }
        counters.count(&InvokeError::Timeout { limit_ms: 1 });
        let text = handle.render();
        let ours: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with(METRIC) && l.contains("tenant=\"labels-test\""))
            .collect();
        // 16 plugin names, `other` and `timeout`.
        assert_eq!(ours.len(), METRIC_LABEL_VALUES + 2, "{ours:#?}");
        for line in &ours {
            assert!(line.len() < 200, "{line}");
        }
        let has = |label: &str, n: u32| {
            let line =
                format!("{METRIC}{{tenant=\"labels-test\",plugin=\"p\",error=\"{label}\"}} {n}");
            assert!(ours.contains(&line.as_str()), "no {line} in {ours:#?}");
        };
        has("ValidationError", 1);
        has(
            &format!("Bad_name_{}", "x".repeat(METRIC_LABEL_BYTES - 9)),
            1,
        );
        has("other", 200 - (METRIC_LABEL_VALUES as u32 - 2));
        has("timeout", 1);
    }
}
