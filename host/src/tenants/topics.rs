//! `[topics.NAME]`: SNS topics and their subscriptions, with filter policies.

use serde::Deserialize;

use super::delivery;
use super::targets::{Compiled, NotOneTarget, PatternRefused};
use super::{DeliveryDeadLetter, DeliveryPolicy, RetryPolicy, Target, TenantConfig, TenantError};
use crate::capabilities::check_name;
use crate::pattern::{Dialect, Pattern};

/// A topic (`[topics.NAME]`): a publication reaches every subscription whose filter
/// policy matches.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TopicConfig {
    #[serde(default)]
    pub subscriptions: Vec<Subscription>,
}

/// One subscription: exactly one of `queue`, `plugin`, `webhook`, `log`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    #[serde(default)]
    pub queue: Option<String>,
    #[serde(default)]
    pub plugin: Option<String>,
    /// An HTTPS endpoint that gets SNS's notification JSON by POST.
    #[serde(default)]
    pub webhook: Option<String>,
    #[serde(default)]
    pub log: bool,
    /// An SNS filter policy (`docs/TENANTS.md`); none lets everything through.
    #[serde(default)]
    pub filter_policy: Option<serde_json::Value>,
    /// What the policy looks at: the message `attributes` (default) or its JSON `body`.
    #[serde(default)]
    pub filter_scope: FilterScope,
    /// SNS's `RawMessageDelivery`, for queue subscriptions: the message body as
    /// published, with its attributes, in place of SNS's notification document.
    #[serde(default)]
    pub raw_message_delivery: bool,
    /// For plugin subscriptions: retries and age (Lambda's asynchronous invocations).
    #[serde(default)]
    pub retry_policy: Option<RetryPolicy>,
    /// SNS's redrive policy: the queue a delivery that failed past its policy goes to.
    #[serde(default)]
    pub dead_letter: Option<DeliveryDeadLetter>,
    /// SNS's `DeliveryPolicy` for HTTP/S endpoints, for webhook subscriptions.
    #[serde(default, rename = "delivery_policy")]
    pub webhook_policy: Option<delivery::WebhookDeliveryPolicy>,
    #[serde(skip)]
    compiled: Compiled,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FilterScope {
    #[default]
    Attributes,
    Body,
}

impl Subscription {
    pub fn target(&self) -> Result<Target<'_>, NotOneTarget> {
        let webhook = self.webhook.as_deref().map(Target::Webhook);
        let kinds = "queue, plugin, webhook or log";
        Target::one_of(&self.queue, &self.plugin, webhook, self.log, kinds)
    }

    /// What a delivery to this subscription is held to; `topic_arn` names its origin.
    pub fn delivery_policy(&self, topic_arn: String) -> DeliveryPolicy {
        match self.target() {
            Ok(Target::Plugin(_)) => DeliveryPolicy::resolve(
                delivery::PLUGIN_SUBSCRIPTION,
                self.retry_policy.as_ref(),
                self.dead_letter.as_ref(),
                topic_arn,
            ),
            Ok(Target::Webhook(_)) => DeliveryPolicy::webhook(
                topic_arn,
                self.webhook_policy.as_ref(),
                self.dead_letter.as_ref(),
            ),
            _ => DeliveryPolicy::fixed(topic_arn, self.dead_letter.as_ref()),
        }
    }

    /// The parsed filter policy, if any.
    pub fn policy(&self) -> Result<Option<&Pattern>, PatternRefused> {
        let Some(policy) = &self.filter_policy else {
            return Ok(None);
        };
        let dialect = match self.filter_scope {
            FilterScope::Attributes => Dialect::SnsAttributes,
            FilterScope::Body => Dialect::SnsBody,
        };
        self.compiled
            .get("filter_policy", policy, dialect)
            .map(Some)
    }
}

/// Each subscription's policy parses and its target is one the tenant has, with the
/// settings its kind of target takes.
pub(super) fn validate(tenant: &TenantConfig) -> Result<(), TenantError> {
    for (name, topic) in &tenant.topics {
        check_name("topic", name).map_err(TenantError::name(format!("topics.{name}")))?;
        for (i, sub) in topic.subscriptions.iter().enumerate() {
            let at = format!("topics.{name}.subscriptions[{i}]");
            sub.policy().map_err(TenantError::pattern(&at))?;
            let target = sub.target().map_err(TenantError::target(&at))?;
            tenant.check_target(&at, &target)?;
            if sub.raw_message_delivery && !matches!(target, Target::Queue(_)) {
                return Err(TenantError::rule(
                    at,
                    "raw_message_delivery applies to queue subscriptions",
                ));
            }
            if let Some(policy) = &sub.retry_policy {
                if !matches!(target, Target::Plugin(_)) {
                    return Err(TenantError::rule(
                        at,
                        "retry_policy applies to plugin subscriptions (a webhook subscription takes SNS's delivery_policy)",
                    ));
                }
                policy
                    .check(delivery::PLUGIN_SUBSCRIPTION)
                    .map_err(TenantError::within(&at))?;
            }
            if sub.webhook_policy.is_some() && !matches!(target, Target::Webhook(_)) {
                return Err(TenantError::rule(
                    at,
                    "delivery_policy applies to webhook subscriptions (SNS's delivery policy for HTTP/S endpoints)",
                ));
            }
            tenant.check_dead_letter(&at, &target, sub.dead_letter.as_ref())?;
        }
    }
    Ok(())
}
