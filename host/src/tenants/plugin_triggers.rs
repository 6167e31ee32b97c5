//! Which trigger kinds a tenant file sends to each of its plugins, so a plugin that does
//! not export a kind's handler is refused when the file loads, not at its first event.

use super::{Target, TenantConfig};

/// One trigger reaching one plugin, and where the tenant file says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginTrigger {
    pub plugin: String,
    /// As the engine names trigger kinds (`Plugin::triggers`): `http`, `queue`, ...
    pub kind: &'static str,
    /// The setting, as an error names it (`queues.jobs.consumer`).
    pub at: String,
    /// Its keys in the file, for the error's line.
    pub keys: Vec<String>,
}

impl TenantConfig {
    /// Every trigger that reaches a plugin, in file order within each section.
    pub fn plugin_triggers(&self) -> Vec<PluginTrigger> {
        let mut out = Vec::new();
        let mut add = |plugin: &str, kind, at: String, keys: &[&str]| {
            out.push(PluginTrigger {
                plugin: plugin.to_string(),
                kind,
                at,
                keys: keys.iter().map(|k| k.to_string()).collect(),
            })
        };
        for (i, route) in self.routes.iter().enumerate() {
            add(&route.plugin, "http", format!("routes[{i}]"), &["routes"]);
        }
        for (name, queue) in &self.queues {
            if let Some(consumer) = &queue.consumer {
                let at = format!("queues.{name}.consumer");
                add(&consumer.plugin, "queue", at, &["queues", name, "consumer"]);
            }
        }
        for (name, topic) in &self.topics {
            for (i, s) in topic.subscriptions.iter().enumerate() {
                if let Ok(Target::Plugin(p)) = s.target() {
                    let at = format!("topics.{name}.subscriptions[{i}]");
                    add(p, "topic", at, &["topics", name, "subscriptions"]);
                }
            }
        }
        for (name, bus) in &self.buses {
            for (i, rule) in bus.rules.iter().enumerate() {
                for (j, t) in rule.targets.iter().enumerate() {
                    if let Ok(Target::Plugin(p)) = t.target() {
                        let at = format!("buses.{name}.rules[{i}].targets[{j}]");
                        add(p, "bus", at, &["buses", name, "rules"]);
                    }
                }
            }
        }
        for (name, schedule) in &self.schedules {
            if let Ok(Target::Plugin(p)) = schedule.target.target() {
                let at = format!("schedules.{name}.target");
                add(p, "schedule", at, &["schedules", name, "target"]);
            }
        }
        for (name, workflow) in &self.workflows {
            // A definition that does not parse is refused by `validate` with its reason.
            let Ok(machine) = crate::workflow::Machine::parse(&workflow.document) else {
                continue;
            };
            let mut tasks = machine.resources();
            tasks.sort_unstable();
            tasks.dedup();
            for plugin in tasks {
                let at = format!("workflows.{name}: Task resource `{plugin}`");
                add(plugin, "task", at, &["workflows", name]);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn every_section_that_names_a_plugin_is_listed_with_its_kind() {
        let text = r#"
            [plugins.api]
            source = "api.wasm"
            [plugins.worker]
            source = "worker.wasm"
            [[routes]]
            method = "GET"
            path = "/x"
            plugin = "api"
            [queues.jobs]
            consumer = { plugin = "worker" }
            [queues.parked]
            [topics.news]
            subscriptions = [{ queue = "jobs" }, { plugin = "worker" }]
            [[buses.main.rules]]
            name = "r"
            pattern = { source = ["x"] }
            targets = [{ log = true }, { plugin = "api" }]
            [schedules.nightly]
            expression = "rate(1 hour)"
            target = { plugin = "worker" }
        "#;
        let config = TenantConfig::parse(Path::new("t.toml"), text).unwrap();
        let found: Vec<(String, &str, String)> = config
            .plugin_triggers()
            .into_iter()
            .map(|t| (t.plugin, t.kind, t.at))
            .collect();
        let expected = [
            ("api", "http", "routes[0]"),
            ("worker", "queue", "queues.jobs.consumer"),
            ("worker", "topic", "topics.news.subscriptions[1]"),
            ("api", "bus", "buses.main.rules[0].targets[1]"),
            ("worker", "schedule", "schedules.nightly.target"),
        ];
        let expected: Vec<(String, &str, String)> = expected
            .into_iter()
            .map(|(p, k, at)| (p.to_string(), k, at.to_string()))
            .collect();
        assert_eq!(found, expected);
    }
}
