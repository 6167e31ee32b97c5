//! `[buses.NAME]`: EventBridge buses, their rules' patterns and targets.

use serde::Deserialize;

use super::targets::Compiled;
use super::{DeliveryDeadLetter, DeliveryPolicy, RetryPolicy, Target, TenantConfig};
use super::{delivery, transform};
use crate::capabilities::check_name;

/// An event bus (`[buses.NAME]`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BusConfig {
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
}

/// A rule: events matching `pattern` (an EventBridge event pattern) go to `targets`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub name: String,
    pub pattern: serde_json::Value,
    pub targets: Vec<RuleTarget>,
    #[serde(skip)]
    compiled: Compiled,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleTarget {
    #[serde(default)]
    pub queue: Option<String>,
    #[serde(default)]
    pub plugin: Option<String>,
    /// Starts an execution of the tenant's workflow with the event (or tick input).
    #[serde(default)]
    pub workflow: Option<String>,
    #[serde(default)]
    pub log: bool,
    /// EventBridge's `Input`: this JSON in place of the event.
    #[serde(default)]
    pub input: Option<serde_json::Value>,
    /// EventBridge's `InputPath`: the part of the event this JSONPath selects.
    #[serde(default)]
    pub input_path: Option<transform::InputPath>,
    /// EventBridge's `InputTransformer`.
    #[serde(default)]
    pub input_transformer: Option<transform::InputTransformer>,
    /// EventBridge's `RetryPolicy` (bus rule targets).
    #[serde(default)]
    pub retry_policy: Option<RetryPolicy>,
    /// EventBridge's `DeadLetterConfig` (bus rule targets).
    #[serde(default)]
    pub dead_letter: Option<DeliveryDeadLetter>,
}

impl RuleTarget {
    /// Whether the target changes what it receives (`input`, `input_path`,
    /// `input_transformer`); at most one may be given.
    pub(super) fn check_input(&self) -> Result<bool, String> {
        let given = [
            self.input.is_some(),
            self.input_path.is_some(),
            self.input_transformer.is_some(),
        ]
        .into_iter()
        .filter(|g| *g)
        .count();
        match given {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err("give at most one of input, input_path and input_transformer".into()),
        }
    }

    /// What the target receives for `event` (`cx` holds the event and the rule); an
    /// input transformation that fills past `cx.max_bytes` is refused.
    pub fn input_for(&self, cx: &transform::Context<'_>) -> Result<serde_json::Value, String> {
        transform::target_input(
            self.input.as_ref(),
            self.input_path.as_ref(),
            self.input_transformer.as_ref(),
            cx,
        )
    }

    /// What a delivery to this bus rule target is held to; `rule_arn` names its rule.
    pub fn delivery_policy(&self, rule_arn: String) -> DeliveryPolicy {
        DeliveryPolicy::resolve(
            delivery::BUS_TARGET,
            self.retry_policy.as_ref(),
            self.dead_letter.as_ref(),
            rule_arn,
        )
    }

    pub fn target(&self) -> Result<Target<'_>, String> {
        match (&self.queue, &self.plugin, &self.workflow, self.log) {
            (Some(q), None, None, false) => Ok(Target::Queue(q)),
            (None, Some(p), None, false) => Ok(Target::Plugin(p)),
            (None, None, Some(w), false) => Ok(Target::Workflow(w)),
            (None, None, None, true) => Ok(Target::Log),
            _ => Err("give exactly one of queue, plugin, workflow or log = true".into()),
        }
    }
}

impl RuleConfig {
    pub fn pattern(&self) -> Result<&crate::pattern::Pattern, String> {
        self.compiled
            .0
            .get_or_init(|| {
                crate::pattern::Pattern::parse(&self.pattern, crate::pattern::Dialect::EventBridge)
                    .map_err(|e| format!("pattern{e}"))
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// Each rule's pattern parses and each target is one the tenant has, with the settings
/// its kind of target takes.
pub(super) fn validate(tenant: &TenantConfig) -> Result<(), String> {
    for (name, bus) in &tenant.buses {
        check_name("bus", name).map_err(|e| format!("buses.{name}: {e}"))?;
        for (i, rule) in bus.rules.iter().enumerate() {
            let at = format!("buses.{name}.rules[{i}]");
            rule.pattern().map_err(|e| format!("{at}.{e}"))?;
            if rule.targets.is_empty() {
                return Err(format!("{at}: a rule needs at least one target"));
            }
            for (j, t) in rule.targets.iter().enumerate() {
                let target = t.target().map_err(|e| format!("{at}: {e}"))?;
                tenant
                    .check_target(&target)
                    .map_err(|e| format!("{at}: {e}"))?;
                let transformed = t
                    .check_input()
                    .map_err(|e| format!("{at}.targets[{j}]: {e}"))?;
                if let Some(policy) = &t.retry_policy {
                    policy
                        .check(delivery::BUS_TARGET)
                        .map_err(|e| format!("{at}.targets[{j}].{e}"))?;
                }
                tenant
                    .check_dead_letter(&target, t.dead_letter.as_ref())
                    .map_err(|e| format!("{at}.targets[{j}].{e}"))?;
                // A plugin's bus handler takes a bus event, not any JSON.
                if transformed && matches!(target, Target::Plugin(_)) {
                    return Err(format!(
                        "{at}.targets[{j}]: input, input_path and input_transformer apply to queue, workflow and log targets; a plugin target receives the bus event"
                    ));
                }
            }
        }
    }
    Ok(())
}
