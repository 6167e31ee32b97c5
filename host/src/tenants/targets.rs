//! Where subscriptions, rules and schedules send: a target resolved from its keys, and
//! the checks that it names something the tenant has.

use super::{DeliveryDeadLetter, TenantConfig};

/// A pattern or policy compiled on first use (checking one, wildcards' complexity
/// included, is too costly to repeat for every message); not part of the config's
/// identity: copies start empty and compare equal.
#[derive(Debug, Default)]
pub(super) struct Compiled(pub(super) std::sync::OnceLock<Result<crate::pattern::Pattern, String>>);

impl Clone for Compiled {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl PartialEq for Compiled {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// A target of a subscription or rule, resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum Target<'a> {
    Queue(&'a str),
    Plugin(&'a str),
    Webhook(&'a str),
    Workflow(&'a str),
    Log,
}

pub(super) fn target<'a>(
    queue: &'a Option<String>,
    plugin: &'a Option<String>,
    webhook: &'a Option<String>,
    log: bool,
) -> Result<Target<'a>, String> {
    match (queue, plugin, webhook, log) {
        (Some(q), None, None, false) => Ok(Target::Queue(q)),
        (None, Some(p), None, false) => Ok(Target::Plugin(p)),
        (None, None, Some(w), false) => Ok(Target::Webhook(w)),
        (None, None, None, true) => Ok(Target::Log),
        _ => Err("give exactly one of queue, plugin, webhook or log = true".into()),
    }
}

impl TenantConfig {
    /// A delivery's dead-letter queue is one of the tenant's standard queues, as SNS and
    /// EventBridge require; a log target has none (it cannot fail).
    pub(super) fn check_dead_letter(
        &self,
        target: &Target<'_>,
        dead_letter: Option<&DeliveryDeadLetter>,
    ) -> Result<(), String> {
        let Some(dl) = dead_letter else {
            return Ok(());
        };
        match (target, self.queues.get(&dl.queue)) {
            (Target::Log, _) => Err("dead_letter: a log target cannot fail".into()),
            (_, None) => Err(format!(
                "dead_letter.queue `{}` is not one of the tenant's queues",
                dl.queue
            )),
            (_, Some(q)) if q.fifo => Err(format!(
                "dead_letter.queue `{}` is FIFO; a delivery's dead-letter queue is a standard queue",
                dl.queue
            )),
            _ => Ok(()),
        }
    }

    /// A subscription or rule target must name something the tenant has.
    pub(super) fn check_target(&self, target: &Target<'_>) -> Result<(), String> {
        match target {
            Target::Queue(q) => match self.queues.get(*q) {
                None => Err(format!("queue `{q}` is not one of the tenant's queues")),
                Some(c) if c.fifo => Err(format!(
                    "queue `{q}` is FIFO; topics and buses deliver to standard queues"
                )),
                Some(_) => Ok(()),
            },
            Target::Plugin(p) if !self.plugins.contains_key(*p) => {
                Err(format!("plugin `{p}` is not one of the tenant's plugins"))
            }
            Target::Workflow(w) if !self.workflows.contains_key(*w) => Err(format!(
                "workflow `{w}` is not one of the tenant's workflows"
            )),
            Target::Webhook(url) => match url::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
                _ => Err(format!("webhook `{url}` is not an http(s) URL")),
            },
            _ => Ok(()),
        }
    }
}
