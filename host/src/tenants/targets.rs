//! Where subscriptions, rules and schedules send: a target resolved from its keys, the
//! checks that it names something the tenant has, and the patterns that choose it.

use thiserror::Error;

use super::{DeliveryDeadLetter, TenantConfig, TenantError};
use crate::pattern::{Dialect, Pattern};

/// A pattern or policy compiled on first use (checking one, wildcards' complexity
/// included, is too costly to repeat for every message); not part of the config's
/// identity: copies start empty and compare equal.
#[derive(Debug, Default)]
pub(super) struct Compiled(std::sync::OnceLock<Result<Pattern, PatternRefused>>);

impl Compiled {
    /// `value` (the setting `key`) compiled under `dialect`'s rules, once.
    pub(super) fn get(
        &self,
        key: &'static str,
        value: &serde_json::Value,
        dialect: Dialect,
    ) -> Result<&Pattern, PatternRefused> {
        self.0
            .get_or_init(|| {
                Pattern::parse(value, dialect).map_err(|e| PatternRefused {
                    key,
                    path: e.path,
                    reason: e.reason,
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

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

/// A rule's `pattern` or a subscription's `filter_policy` that is not one.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("{key}{path}: {reason}")]
pub struct PatternRefused {
    /// `pattern` or `filter_policy`.
    pub key: &'static str,
    /// Where in it, as [`crate::pattern::PatternError`] names it.
    pub path: String,
    pub reason: String,
}

/// A subscription or target given none or more than one of its kinds of target.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
#[error("give exactly one of {0} = true")]
pub struct NotOneTarget(pub &'static str);

/// A target of a subscription or rule, resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum Target<'a> {
    Queue(&'a str),
    Plugin(&'a str),
    Webhook(&'a str),
    Workflow(&'a str),
    Log,
}

impl<'a> Target<'a> {
    /// The one target given: `third` is a webhook or a workflow, as `kinds` names them.
    pub(super) fn one_of(
        queue: &'a Option<String>,
        plugin: &'a Option<String>,
        third: Option<Target<'a>>,
        log: bool,
        kinds: &'static str,
    ) -> Result<Self, NotOneTarget> {
        match (queue, plugin, third, log) {
            (Some(q), None, None, false) => Ok(Target::Queue(q)),
            (None, Some(p), None, false) => Ok(Target::Plugin(p)),
            (None, None, Some(t), false) => Ok(t),
            (None, None, None, true) => Ok(Target::Log),
            _ => Err(NotOneTarget(kinds)),
        }
    }
}

impl TenantConfig {
    /// A delivery's dead-letter queue is one of the tenant's standard queues, as SNS and
    /// EventBridge require; a log target has none (it cannot fail). `at` is the
    /// delivery's setting.
    pub(super) fn check_dead_letter(
        &self,
        at: &str,
        target: &Target<'_>,
        dead_letter: Option<&DeliveryDeadLetter>,
    ) -> Result<(), TenantError> {
        let Some(dl) = dead_letter else {
            return Ok(());
        };
        let at = format!("{at}.dead_letter");
        match (target, self.queues.get(&dl.queue)) {
            (Target::Log, _) => Err(TenantError::rule(at, "a log target cannot fail")),
            (_, None) => Err(TenantError::undeclared(
                format!("{at}.queue"),
                &dl.queue,
                "queues",
            )),
            (_, Some(q)) if q.fifo => Err(TenantError::Fifo {
                at: format!("{at}.queue"),
                queue: dl.queue.clone(),
                why: "a delivery's dead-letter queue is a standard queue",
            }),
            _ => Ok(()),
        }
    }

    /// A subscription or rule target (the setting `at`) must name something the tenant
    /// has.
    pub(super) fn check_target(&self, at: &str, target: &Target<'_>) -> Result<(), TenantError> {
        match target {
            Target::Queue(q) => match self.queues.get(*q) {
                None => Err(TenantError::undeclared(
                    format!("{at}: queue"),
                    *q,
                    "queues",
                )),
                Some(c) if c.fifo => Err(TenantError::Fifo {
                    at: format!("{at}: queue"),
                    queue: q.to_string(),
                    why: "topics and buses deliver to standard queues",
                }),
                Some(_) => Ok(()),
            },
            Target::Plugin(p) if !self.plugins.contains_key(*p) => Err(TenantError::undeclared(
                format!("{at}: plugin"),
                *p,
                "plugins",
            )),
            Target::Workflow(w) if !self.workflows.contains_key(*w) => Err(
                TenantError::undeclared(format!("{at}: workflow"), *w, "workflows"),
            ),
            Target::Webhook(url) => match url::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
                _ => Err(TenantError::Webhook {
                    at: at.to_string(),
                    url: url.to_string(),
                }),
            },
            _ => Ok(()),
        }
    }
}
