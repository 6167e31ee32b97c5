//! `[schedules.NAME]`: ticks sent to a target, once across the hosts sharing a store.

use serde::Deserialize;

use super::{RuleTarget, TenantConfig, TenantError};
use crate::capabilities::check_name;

/// A schedule (`[schedules.NAME]`): each tick sends `input` to `target`, once across all
/// hosts sharing the store.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// `cron(...)` or `rate(...)`, as EventBridge writes them.
    pub expression: String,
    /// An IANA time zone for cron expressions; UTC by default.
    #[serde(default)]
    pub timezone: Option<String>,
    pub target: RuleTarget,
    /// The tick's fixed input (a plugin's `schedule` event, a queue message's body).
    #[serde(default)]
    pub input: serde_json::Value,
    #[serde(default = "enabled")]
    pub enabled: bool,
}

fn enabled() -> bool {
    true
}

impl ScheduleConfig {
    pub fn parsed(&self) -> Result<crate::schedule::ScheduleExpr, crate::schedule::ScheduleError> {
        crate::schedule::ScheduleExpr::parse(&self.expression, self.timezone.as_deref())
    }
}

/// Each schedule's expression parses and its target is one the tenant has, without the
/// bus targets' input transformation, retries and dead letters.
pub(super) fn validate(tenant: &TenantConfig) -> Result<(), TenantError> {
    for (name, schedule) in &tenant.schedules {
        check_name("schedule", name).map_err(TenantError::name(format!("schedules.{name}")))?;
        schedule.parsed().map_err(|e| TenantError::Schedule {
            name: name.clone(),
            error: e,
        })?;
        let at = format!("schedules.{name}.target");
        let target = schedule.target.target().map_err(TenantError::target(&at))?;
        tenant.check_target(&at, &target)?;
        if schedule.target.check_input(&at)? {
            return Err(TenantError::rule(
                at,
                "input, input_path and input_transformer apply to bus rule targets",
            ));
        }
        if schedule.target.retry_policy.is_some() || schedule.target.dead_letter.is_some() {
            return Err(TenantError::rule(
                at,
                "retry_policy and dead_letter apply to bus rule targets and topic subscriptions",
            ));
        }
    }
    Ok(())
}
