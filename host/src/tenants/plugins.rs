//! `[plugins.NAME]`: a tenant's plugins, their config, secrets and grants.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::{TenantConfig, TenantError};
use crate::capabilities::secrets::{self, SecretRef};
use crate::capabilities::{Grant, Grants, Secret, check_name};
use crate::engine::WarmSettings;

/// One plugin of a tenant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// The component file: absolute, or relative to the plugin directory.
    pub source: PathBuf,
    /// Values the plugin reads through `config::get`. Non-string values are passed as
    /// their TOML text (numbers, booleans) or JSON (arrays, tables).
    #[serde(default)]
    pub config: BTreeMap<String, toml::Value>,
    /// Secrets by the name the plugin asks for, each from an environment variable or a
    /// file: never written in the tenant file itself.
    #[serde(default, deserialize_with = "secrets::deserialize_secrets")]
    pub secrets: BTreeMap<String, SecretRef>,
    /// What the plugin may use besides its private kv bucket.
    #[serde(default)]
    pub allow: Grants,
    /// Warm instances (`[plugins.NAME.warm]`); absent: a fresh instance per invocation.
    #[serde(default)]
    pub warm: Option<WarmConfig>,
}

/// `[plugins.NAME.warm]`: an instance that answered without a fault serves the plugin's
/// next invocations, its globals kept, as a warm Lambda environment does (engine/warm.rs
/// says when it is discarded). Opt-in: state surviving between invocations is a change
/// of semantics a plugin must be written for.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WarmConfig {
    /// Idle instances kept at most (8: a few more than the cores, so a burst that keeps
    /// every core busy finds them warm).
    #[serde(default = "WarmConfig::default_instances")]
    pub instances: u32,
    /// Invocations one instance serves before a fresh one replaces it (1,000,000: a slow
    /// drift in the plugin's globals is cut off now and then; each replacement costs one
    /// invocation a cold start, 10,000 put those in the p99 of a busy Python plugin).
    #[serde(default = "WarmConfig::default_max_uses")]
    pub max_uses: u32,
    /// Seconds an instance waits for an invocation before it is discarded (300).
    #[serde(default = "WarmConfig::default_idle_seconds")]
    pub idle_seconds: u32,
}

impl WarmConfig {
    fn default_instances() -> u32 {
        8
    }

    fn default_max_uses() -> u32 {
        1_000_000
    }

    fn default_idle_seconds() -> u32 {
        300
    }

    pub fn settings(&self) -> WarmSettings {
        WarmSettings {
            instances: self.instances,
            max_uses: self.max_uses,
            idle: std::time::Duration::from_secs(self.idle_seconds.into()),
        }
    }

    fn validate(&self, plugin: &str) -> Result<(), TenantError> {
        use crate::engine::limits::ceiling;
        let checks = [
            ("instances", self.instances, ceiling::WARM_INSTANCES),
            ("max_uses", self.max_uses, ceiling::WARM_MAX_USES),
            ("idle_seconds", self.idle_seconds, ceiling::WARM_IDLE_S),
        ];
        for (what, got, hi) in checks {
            if !(1..=hi).contains(&got) {
                return Err(TenantError::OutOfRange {
                    at: format!("plugins.{plugin}.warm"),
                    what,
                    got,
                    lo: 1,
                    hi,
                });
            }
        }
        Ok(())
    }
}

impl PluginConfig {
    /// The config values as the plugin sees them.
    pub fn config_strings(&self) -> BTreeMap<String, String> {
        self.config
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_) => {
                        v.to_string()
                    }
                    toml::Value::Datetime(d) => d.to_string(),
                    other => serde_json::to_string(other).unwrap_or_default(),
                };
                (k.clone(), text)
            })
            .collect()
    }

    /// Reads every secret now, so a missing one fails the load rather than a request.
    pub fn resolve_secrets(&self, plugin: &str) -> Result<BTreeMap<String, Secret>, TenantError> {
        self.secrets
            .iter()
            .map(|(name, r)| {
                r.resolve()
                    .map(|s| (name.clone(), s))
                    .map_err(|source| TenantError::Secret {
                        at: format!("plugins.{plugin}.secrets.{name}"),
                        source,
                    })
            })
            .collect()
    }
}

/// Plugin names and secret sources.
pub(super) fn validate(tenant: &TenantConfig) -> Result<(), TenantError> {
    for (name, plugin) in &tenant.plugins {
        check_name("plugin", name).map_err(TenantError::name(format!("plugins.{name}")))?;
        if let Some(warm) = &plugin.warm {
            warm.validate(name)?;
        }
        for (secret, r) in &plugin.secrets {
            r.validate().map_err(|source| TenantError::Secret {
                at: format!("plugins.{name}.secrets.{secret}"),
                source,
            })?;
        }
    }
    Ok(())
}

impl TenantConfig {
    /// Every name a plugin is granted is one the tenant declares (or `"*"`).
    pub(super) fn check_grants(&self) -> Result<(), TenantError> {
        for (name, plugin) in &self.plugins {
            for grant in crate::capabilities::grants() {
                let Some((section, declared)) = self.declared(grant) else {
                    continue;
                };
                if let Some(missing) = plugin
                    .allow
                    .list(grant)
                    .iter()
                    .find(|g| *g != "*" && !declared.contains(&g.as_str()))
                {
                    let at = format!("plugins.{name}.allow.{}:", grant.key);
                    return Err(TenantError::undeclared(at, missing, section));
                }
            }
        }
        Ok(())
    }

    /// The section declaring what `grant` names, and the names it declares; `None` when
    /// any name may be granted (outbound hosts, blob buckets). A capability's own
    /// section answers for its grants (`Sections::declared`); the tenant's queues,
    /// topics, buses and workflows, which the messaging capabilities send to, here.
    fn declared(&self, grant: Grant) -> Option<(&'static str, Vec<&str>)> {
        use crate::capabilities::{messaging, notify, workflow_tasks};
        if let Some(declared) = self.capabilities.declared(grant) {
            return Some(declared);
        }
        let (section, names): (_, Vec<&str>) = if grant == messaging::QUEUES {
            ("queues", self.queues.keys().map(String::as_str).collect())
        } else if grant == notify::TOPICS {
            ("topics", self.topics.keys().map(String::as_str).collect())
        } else if grant == messaging::BUSES {
            ("buses", self.buses.keys().map(String::as_str).collect())
        } else if grant == messaging::WORKFLOWS || grant == workflow_tasks::WORKFLOW_TASKS {
            (
                "workflows",
                self.workflows.keys().map(String::as_str).collect(),
            )
        } else {
            return None;
        };
        Some((section, names))
    }
}
