//! `[buses.NAME]`: EventBridge buses, their rules' patterns and targets.

use serde::Deserialize;

use super::targets::{Compiled, NotOneTarget, PatternRefused};
use super::{DeliveryDeadLetter, DeliveryPolicy, RetryPolicy, Target, TenantConfig, TenantError};
use super::{delivery, transform};
use crate::capabilities::check_name;
use crate::pattern::{Dialect, Pattern};

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
    pub(super) fn check_input(&self, at: &str) -> Result<bool, TenantError> {
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
            _ => Err(TenantError::rule(
                at,
                "give at most one of input, input_path and input_transformer",
            )),
        }
    }

    /// Whether `input`, `input_path` or `input_transformer` is given.
    pub fn transforms(&self) -> bool {
        self.input.is_some() || self.input_path.is_some() || self.input_transformer.is_some()
    }

    /// What the target receives for `event` (`cx` holds the event and the rule); an
    /// input transformation that fills past `cx.max_bytes` is refused.
    pub fn input_for(
        &self,
        cx: &transform::Context<'_>,
    ) -> Result<serde_json::Value, transform::TooLarge> {
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

    pub fn target(&self) -> Result<Target<'_>, NotOneTarget> {
        let workflow = self.workflow.as_deref().map(Target::Workflow);
        let kinds = "queue, plugin, workflow or log";
        Target::one_of(&self.queue, &self.plugin, workflow, self.log, kinds)
    }
}

impl RuleConfig {
    pub fn pattern(&self) -> Result<&Pattern, PatternRefused> {
        self.compiled
            .get("pattern", &self.pattern, Dialect::EventBridge)
    }
}

/// Each rule's pattern parses and each target is one the tenant has, with the settings
/// its kind of target takes.
pub(super) fn validate(tenant: &TenantConfig) -> Result<(), TenantError> {
    for (name, bus) in &tenant.buses {
        check_name("bus", name).map_err(TenantError::name(format!("buses.{name}")))?;
        for (i, rule) in bus.rules.iter().enumerate() {
            let at = format!("buses.{name}.rules[{i}]");
            rule.pattern().map_err(TenantError::pattern(&at))?;
            if rule.targets.is_empty() {
                return Err(TenantError::rule(at, "a rule needs at least one target"));
            }
            for (j, t) in rule.targets.iter().enumerate() {
                let target = t.target().map_err(TenantError::target(&at))?;
                tenant.check_target(&at, &target)?;
                let at = format!("{at}.targets[{j}]");
                t.check_input(&at)?;
                if let Some(policy) = &t.retry_policy {
                    policy
                        .check(delivery::BUS_TARGET)
                        .map_err(TenantError::within(&at))?;
                }
                tenant.check_dead_letter(&at, &target, t.dead_letter.as_ref())?;
            }
        }
    }
    Ok(())
}
