//! Retry policies and dead-letter queues of deliveries: per bus rule target
//! (EventBridge's `RetryPolicy` and `DeadLetterConfig`) and per topic subscription (SNS's
//! redrive policy; a plugin subscription's retries are Lambda's asynchronous-invocation
//! settings, what SNS's delivery to a function comes down to). What a delivery is held to
//! is resolved when it is written and kept with it (`store::delivery`).

use serde::{Deserialize, Serialize};

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
    /// Its own retry schedule (a webhook subscription's SNS delivery policy); `None`:
    /// the host's doubling pause with jitter.
    pub schedule: Option<HealthyRetryPolicy>,
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
            schedule: None,
        }
    }

    /// A webhook subscription's: SNS's `healthyRetryPolicy` (its defaults when none is
    /// given), with no age limit (the policy's retries are bounded to an hour in all).
    pub fn webhook(
        origin: String,
        policy: Option<&WebhookDeliveryPolicy>,
        dead_letter: Option<&DeliveryDeadLetter>,
    ) -> Self {
        let retry = policy
            .and_then(|p| p.healthy_retry_policy)
            .unwrap_or_default();
        DeliveryPolicy {
            max_attempts: retry.num_retries.saturating_add(1),
            max_age_ms: None,
            dead_letter: dead_letter.map(|d| d.queue.clone()),
            origin,
            schedule: Some(retry),
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
            schedule: None,
        }
    }
}

/// `delivery_policy = { healthy_retry_policy = { ... } }` on a webhook subscription: SNS's
/// `DeliveryPolicy` for HTTP/S endpoints. Only its retry policy: SNS's `throttlePolicy`
/// and `requestPolicy` are refused as unknown keys (docs/EVENTS.md says why).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WebhookDeliveryPolicy {
    #[serde(default)]
    pub healthy_retry_policy: Option<HealthyRetryPolicy>,
}

/// SNS's `healthyRetryPolicy` (its keys in snake case): `num_retries` retries in four
/// phases, `num_no_delay_retries` at once, `num_min_delay_retries` `min_delay_target`
/// seconds apart, the backoff phase from `min_delay_target` to `max_delay_target` along
/// `backoff_function`, and `num_max_delay_retries` `max_delay_target` apart. Kept with
/// each delivery (as JSON) when it is written.
/// Checked as it is read, so a policy SNS would refuse is refused with its line.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(try_from = "HealthyRetryKeys")]
pub struct HealthyRetryPolicy {
    pub num_retries: u32,
    pub num_no_delay_retries: u32,
    pub min_delay_target: u32,
    pub max_delay_target: u32,
    pub num_min_delay_retries: u32,
    pub num_max_delay_retries: u32,
    pub backoff_function: Backoff,
}

/// The keys as written, SNS's defaults for those left out.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct HealthyRetryKeys {
    num_retries: u32,
    num_no_delay_retries: u32,
    min_delay_target: u32,
    max_delay_target: u32,
    num_min_delay_retries: u32,
    num_max_delay_retries: u32,
    backoff_function: Backoff,
}

impl Default for HealthyRetryKeys {
    fn default() -> Self {
        let d = HealthyRetryPolicy::default();
        HealthyRetryKeys {
            num_retries: d.num_retries,
            num_no_delay_retries: d.num_no_delay_retries,
            min_delay_target: d.min_delay_target,
            max_delay_target: d.max_delay_target,
            num_min_delay_retries: d.num_min_delay_retries,
            num_max_delay_retries: d.num_max_delay_retries,
            backoff_function: d.backoff_function,
        }
    }
}

impl TryFrom<HealthyRetryKeys> for HealthyRetryPolicy {
    type Error = String;

    fn try_from(k: HealthyRetryKeys) -> Result<Self, String> {
        let policy = HealthyRetryPolicy {
            num_retries: k.num_retries,
            num_no_delay_retries: k.num_no_delay_retries,
            min_delay_target: k.min_delay_target,
            max_delay_target: k.max_delay_target,
            num_min_delay_retries: k.num_min_delay_retries,
            num_max_delay_retries: k.num_max_delay_retries,
            backoff_function: k.backoff_function,
        };
        policy.check()?;
        Ok(policy)
    }
}

/// SNS's defaults: three retries, 20 seconds apart.
impl Default for HealthyRetryPolicy {
    fn default() -> Self {
        HealthyRetryPolicy {
            num_retries: 3,
            num_no_delay_retries: 0,
            min_delay_target: 20,
            max_delay_target: 20,
            num_min_delay_retries: 0,
            num_max_delay_retries: 0,
            backoff_function: Backoff::Linear,
        }
    }
}

/// How the backoff phase's pauses grow from `min_delay_target` to `max_delay_target`.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Backoff {
    #[default]
    Linear,
    Arithmetic,
    Geometric,
    Exponential,
}

/// SNS's limits: at most 100 retries, delays of 1 to 3,600 seconds, and at most 3,600
/// seconds of retrying in all.
const SNS_MAX_RETRIES: u32 = 100;
const SNS_MAX_DELAY_S: u32 = 3600;
const SNS_MAX_TOTAL_S: u64 = 3600;

impl HealthyRetryPolicy {
    /// Refuses what SNS refuses, naming the key.
    pub fn check(&self) -> Result<(), String> {
        let at = "delivery_policy.healthy_retry_policy";
        if self.num_retries > SNS_MAX_RETRIES {
            return Err(format!(
                "{at}.num_retries must be 0-{SNS_MAX_RETRIES}, got {}",
                self.num_retries
            ));
        }
        if !(1..=SNS_MAX_DELAY_S).contains(&self.min_delay_target) {
            return Err(format!(
                "{at}.min_delay_target must be 1-{SNS_MAX_DELAY_S} seconds, got {}",
                self.min_delay_target
            ));
        }
        if !(self.min_delay_target..=SNS_MAX_DELAY_S).contains(&self.max_delay_target) {
            return Err(format!(
                "{at}.max_delay_target must be min_delay_target ({})-{SNS_MAX_DELAY_S} seconds, got {}",
                self.min_delay_target, self.max_delay_target
            ));
        }
        let phases = u64::from(self.num_no_delay_retries)
            + u64::from(self.num_min_delay_retries)
            + u64::from(self.num_max_delay_retries);
        if phases > u64::from(self.num_retries) {
            return Err(format!(
                "{at}: num_no_delay_retries + num_min_delay_retries + num_max_delay_retries ({phases}) must not exceed num_retries ({})",
                self.num_retries
            ));
        }
        let total_ms: u64 = (1..=self.num_retries).map(|k| self.pause_ms(k)).sum();
        if total_ms > SNS_MAX_TOTAL_S * 1000 {
            return Err(format!(
                "{at}: its retries take {} seconds in all; at most {SNS_MAX_TOTAL_S}",
                total_ms.div_ceil(1000)
            ));
        }
        Ok(())
    }

    /// The pause before retry `retry` (1 is the first retry, after the first attempt).
    pub fn pause_ms(&self, retry: u32) -> u64 {
        let (min, max) = (
            f64::from(self.min_delay_target) * 1000.0,
            f64::from(self.max_delay_target) * 1000.0,
        );
        let no_delay = self.num_no_delay_retries;
        let pre = no_delay.saturating_add(self.num_min_delay_retries);
        let post_from = self
            .num_retries
            .saturating_sub(self.num_max_delay_retries)
            .saturating_add(1);
        let backoff = post_from.saturating_sub(pre).saturating_sub(1);
        let pause = if retry <= no_delay {
            0.0
        } else if retry <= pre {
            min
        } else if retry >= post_from {
            max
        } else {
            // The i-th of n backoff retries: from just above min (i = 1) to max (i = n).
            let (i, n) = (f64::from(retry - pre), f64::from(backoff.max(1)));
            let x = i / n;
            let grown = match self.backoff_function {
                Backoff::Linear => x,
                // Pauses whose steps grow by equal amounts.
                Backoff::Arithmetic => i * (i + 1.0) / (n * (n + 1.0)),
                // Pauses that grow by a constant ratio.
                Backoff::Geometric => {
                    return (min * (max / min).powf(x)).round() as u64;
                }
                // Doubling steps.
                Backoff::Exponential => (2f64.powf(i) - 1.0) / (2f64.powf(n) - 1.0),
            };
            min + (max - min) * grown
        };
        pause.round() as u64
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

    fn sns(f: impl FnOnce(&mut HealthyRetryPolicy)) -> HealthyRetryPolicy {
        let mut p = HealthyRetryPolicy::default();
        f(&mut p);
        p
    }

    fn schedule(p: &HealthyRetryPolicy) -> Vec<u64> {
        (1..=p.num_retries)
            .map(|k| (p.pause_ms(k) + 500) / 1000)
            .collect()
    }

    /// SNS's phases in order, each backoff function from min to max.
    #[test]
    fn sns_delivery_policies_pause_in_their_phases() {
        let d = HealthyRetryPolicy::default();
        assert_eq!(schedule(&d), [20, 20, 20]);
        assert_eq!(d.check(), Ok(()));
        let mut p = sns(|p| {
            p.num_retries = 10;
            p.num_no_delay_retries = 2;
            p.num_min_delay_retries = 2;
            p.num_max_delay_retries = 2;
            p.min_delay_target = 2;
            p.max_delay_target = 34;
        });
        assert_eq!(schedule(&p), [0, 0, 2, 2, 10, 18, 26, 34, 34, 34]);
        p.backoff_function = Backoff::Exponential;
        assert_eq!(schedule(&p), [0, 0, 2, 2, 4, 8, 17, 34, 34, 34]);
        p.backoff_function = Backoff::Geometric;
        assert_eq!(schedule(&p), [0, 0, 2, 2, 4, 8, 17, 34, 34, 34]);
        p.backoff_function = Backoff::Arithmetic;
        assert_eq!(schedule(&p), [0, 0, 2, 2, 5, 12, 21, 34, 34, 34]);
        for f in [
            Backoff::Linear,
            Backoff::Arithmetic,
            Backoff::Geometric,
            Backoff::Exponential,
        ] {
            let q = sns(|q| {
                q.backoff_function = f;
                q.num_retries = 6;
                q.min_delay_target = 1;
                q.max_delay_target = 60;
            });
            let s = schedule(&q);
            assert!(s.windows(2).all(|w| w[0] <= w[1]), "{f:?}: {s:?}");
            assert!(s[0] >= 1 && s[5] == 60, "{f:?}: {s:?}");
        }
        // Every retry without delay.
        let now = sns(|p| {
            p.num_retries = 3;
            p.num_no_delay_retries = 3;
        });
        assert_eq!(schedule(&now), [0, 0, 0]);
        let policy = DeliveryPolicy::webhook("t".into(), None, None);
        assert_eq!((policy.max_attempts, policy.max_age_ms), (4, None));
    }

    #[test]
    fn sns_delivery_policies_are_held_to_snss_limits() {
        for (p, reason) in [
            (
                sns(|p| p.num_retries = 101),
                "num_retries must be 0-100, got 101",
            ),
            (
                sns(|p| p.min_delay_target = 0),
                "min_delay_target must be 1-3600 seconds, got 0",
            ),
            (
                sns(|p| p.max_delay_target = 10),
                "max_delay_target must be min_delay_target (20)-3600 seconds, got 10",
            ),
            (
                sns(|p| {
                    p.max_delay_target = 3601;
                }),
                "max_delay_target must be min_delay_target (20)-3600 seconds, got 3601",
            ),
            (
                sns(|p| {
                    p.num_no_delay_retries = 2;
                    p.num_max_delay_retries = 2;
                }),
                "(4) must not exceed num_retries (3)",
            ),
            (
                sns(|p| {
                    p.num_retries = 100;
                    p.max_delay_target = 3600;
                    p.backoff_function = Backoff::Linear;
                }),
                "at most 3600",
            ),
        ] {
            let err = p.check().unwrap_err();
            assert!(err.contains(reason), "{err}");
        }
        // At the hour exactly, accepted; the largest SNS allows otherwise.
        let hour = sns(|p| {
            p.num_retries = 1;
            p.min_delay_target = 3600;
            p.max_delay_target = 3600;
        });
        assert_eq!(hour.check(), Ok(()));
        let many = sns(|p| {
            p.num_retries = 100;
            p.num_no_delay_retries = 100;
        });
        assert_eq!(many.check(), Ok(()));
    }

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
