//! Retry policies and dead-letter queues of deliveries: per bus rule target
//! (EventBridge's `RetryPolicy` and `DeadLetterConfig`) and per topic subscription (SNS's
//! redrive policy; a plugin subscription's retries are Lambda's asynchronous-invocation
//! settings, what SNS's delivery to a function comes down to). What a delivery is held to
//! is resolved when it is written and kept with it (`store::delivery`).

use serde::Deserialize;

/// `retry_policy = { maximum_event_age_seconds, maximum_retry_attempts }`; an absent key
/// takes the default of what it is on.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    #[serde(default)]
    pub maximum_event_age_seconds: Option<u32>,
    #[serde(default)]
    pub maximum_retry_attempts: Option<u32>,
}

/// `dead_letter = { queue = "..." }`: where a delivery that failed past its policy goes.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DeliveryDeadLetter {
    pub queue: String,
}

/// The allowed ranges and defaults of one kind of target's retry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub age_s: (u32, u32),
    pub default_age_s: u32,
    pub retries: (u32, u32),
    pub default_retries: u32,
}

/// A bus rule target, as EventBridge: 24 hours and 185 retries by default.
pub const BUS_TARGET: Bounds = Bounds {
    age_s: (60, 86_400),
    default_age_s: 86_400,
    retries: (0, 185),
    default_retries: 185,
};

/// A plugin subscription, as Lambda's asynchronous invocations (`MaximumEventAgeInSeconds`
/// 60-21600, `MaximumRetryAttempts` 0-2; 6 hours and 2 by default).
pub const PLUGIN_SUBSCRIPTION: Bounds = Bounds {
    age_s: (60, 21_600),
    default_age_s: 21_600,
    retries: (0, 2),
    default_retries: 2,
};

/// What a delivery is held to: its attempts, its age, where it goes when it fails.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Past this age (from when it was written) it is not tried again.
    pub max_age_ms: Option<u64>,
    pub dead_letter: Option<String>,
    /// What the delivery comes from: a rule's or topic's ARN-like id.
    pub origin: String,
}

/// Attempts of deliveries without a policy of their own (webhook subscriptions, schedule
/// ticks): three, as SNS and EventBridge make for asynchronous invocations by default.
pub const DEFAULT_ATTEMPTS: u32 = 3;

impl DeliveryPolicy {
    /// The fixed policy of deliveries that have none of their own.
    pub fn fixed(origin: String, dead_letter: Option<&DeliveryDeadLetter>) -> Self {
        DeliveryPolicy {
            max_attempts: DEFAULT_ATTEMPTS,
            max_age_ms: None,
            dead_letter: dead_letter.map(|d| d.queue.clone()),
            origin,
        }
    }

    /// `policy` (defaults for what it leaves out) within `bounds`.
    pub fn resolve(
        bounds: Bounds,
        policy: Option<&RetryPolicy>,
        dead_letter: Option<&DeliveryDeadLetter>,
        origin: String,
    ) -> Self {
        let policy = policy.copied().unwrap_or_default();
        let retries = policy
            .maximum_retry_attempts
            .unwrap_or(bounds.default_retries);
        let age = policy
            .maximum_event_age_seconds
            .unwrap_or(bounds.default_age_s);
        DeliveryPolicy {
            max_attempts: retries.saturating_add(1),
            max_age_ms: Some(u64::from(age) * 1000),
            dead_letter: dead_letter.map(|d| d.queue.clone()),
            origin,
        }
    }
}

impl RetryPolicy {
    /// Refuses values outside `bounds`, naming the key and the range.
    pub fn check(&self, bounds: Bounds) -> Result<(), String> {
        let within = |key: &str, v: Option<u32>, (lo, hi): (u32, u32)| match v {
            Some(v) if !(lo..=hi).contains(&v) => {
                Err(format!("retry_policy.{key} must be {lo}-{hi}, got {v}"))
            }
            _ => Ok(()),
        };
        within(
            "maximum_event_age_seconds",
            self.maximum_event_age_seconds,
            bounds.age_s,
        )?;
        within(
            "maximum_retry_attempts",
            self.maximum_retry_attempts,
            bounds.retries,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds_are_the_clouds() {
        let bus = DeliveryPolicy::resolve(BUS_TARGET, None, None, "r".into());
        assert_eq!((bus.max_attempts, bus.max_age_ms), (186, Some(86_400_000)));
        let sub = DeliveryPolicy::resolve(PLUGIN_SUBSCRIPTION, None, None, "t".into());
        assert_eq!((sub.max_attempts, sub.max_age_ms), (3, Some(21_600_000)));
        let set = RetryPolicy {
            maximum_event_age_seconds: Some(60),
            maximum_retry_attempts: Some(0),
        };
        let dl = DeliveryDeadLetter {
            queue: "dlq".into(),
        };
        let once = DeliveryPolicy::resolve(BUS_TARGET, Some(&set), Some(&dl), "r".into());
        assert_eq!(once.max_attempts, 1);
        assert_eq!(once.dead_letter.as_deref(), Some("dlq"));
        assert!(set.check(BUS_TARGET).is_ok());
        for (policy, bounds, reason) in [
            (
                RetryPolicy {
                    maximum_event_age_seconds: Some(59),
                    maximum_retry_attempts: None,
                },
                BUS_TARGET,
                "retry_policy.maximum_event_age_seconds must be 60-86400, got 59",
            ),
            (
                RetryPolicy {
                    maximum_event_age_seconds: Some(86_401),
                    maximum_retry_attempts: None,
                },
                BUS_TARGET,
                "must be 60-86400, got 86401",
            ),
            (
                RetryPolicy {
                    maximum_event_age_seconds: None,
                    maximum_retry_attempts: Some(186),
                },
                BUS_TARGET,
                "retry_policy.maximum_retry_attempts must be 0-185, got 186",
            ),
            (
                RetryPolicy {
                    maximum_event_age_seconds: None,
                    maximum_retry_attempts: Some(3),
                },
                PLUGIN_SUBSCRIPTION,
                "maximum_retry_attempts must be 0-2, got 3",
            ),
            (
                RetryPolicy {
                    maximum_event_age_seconds: Some(21_601),
                    maximum_retry_attempts: None,
                },
                PLUGIN_SUBSCRIPTION,
                "maximum_event_age_seconds must be 60-21600, got 21601",
            ),
        ] {
            let err = policy.check(bounds).unwrap_err();
            assert!(err.contains(reason), "{err}");
        }
    }
}
