//! `[queues.NAME]`: SQS-like queues, their dead-letter queues and consumers.

use serde::Deserialize;

use super::{TenantConfig, TenantError};
use crate::capabilities::check_name;

/// One of the tenant's queues (`[queues.NAME]`), with SQS's settings and defaults.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Messages of one `group_id` are delivered in order, one at a time; every message
    /// needs a group id.
    #[serde(default)]
    pub fifo: bool,
    /// How long a delivered message stays invisible before it comes back.
    #[serde(default = "queue_defaults::visibility")]
    pub visibility_timeout_seconds: u32,
    /// The delay of a message sent without one of its own (SQS's `DelaySeconds`): a
    /// message's own delay replaces it.
    #[serde(default)]
    pub delay_seconds: u32,
    #[serde(default = "queue_defaults::retention")]
    pub retention_seconds: u32,
    /// Where a message goes after `max_receive_count` failed deliveries.
    #[serde(default)]
    pub dead_letter: Option<DeadLetterConfig>,
    /// The plugin that receives the queue's messages.
    #[serde(default)]
    pub consumer: Option<ConsumerConfig>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterConfig {
    pub queue: String,
    pub max_receive_count: u32,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConsumerConfig {
    pub plugin: String,
    #[serde(default = "queue_defaults::batch")]
    pub batch_size: u32,
    /// Batches of this queue delivered at once on each host, as Lambda's SQS
    /// `MaximumConcurrency`: one batch claims and settles while another runs.
    #[serde(default = "queue_defaults::concurrency")]
    pub max_concurrency: u32,
}

mod queue_defaults {
    pub fn visibility() -> u32 {
        30
    }
    /// SQS keeps messages 4 days by default.
    pub fn retention() -> u32 {
        4 * 24 * 3600
    }
    /// Two keep the store busy while a batch runs; FIFO order holds at any number
    /// (a group's next message is claimed only once the one before it is done).
    pub fn concurrency() -> u32 {
        2
    }
    pub fn batch() -> u32 {
        10
    }
}

impl QueueConfig {
    /// Checks queue `name` of `tenant`.
    fn validate(&self, name: &str, tenant: &TenantConfig) -> Result<(), TenantError> {
        use crate::engine::limits::capability as l;
        let at = format!("queues.{name}");
        let within = |what: &'static str, got: u32, lo: u32, hi: u32| {
            if (lo..=hi).contains(&got) {
                Ok(())
            } else {
                Err(TenantError::OutOfRange {
                    at: at.clone(),
                    what,
                    got,
                    lo,
                    hi,
                })
            }
        };
        within(
            "visibility_timeout_seconds",
            self.visibility_timeout_seconds,
            1,
            l::QUEUE_MAX_VISIBILITY_S,
        )?;
        within("delay_seconds", self.delay_seconds, 0, l::QUEUE_MAX_DELAY_S)?;
        within(
            "retention_seconds",
            self.retention_seconds,
            60,
            l::QUEUE_MAX_RETENTION_S,
        )?;
        if let Some(dl) = &self.dead_letter {
            within(
                "dead_letter.max_receive_count",
                dl.max_receive_count,
                1,
                1000,
            )?;
            match tenant.queues.get(&dl.queue) {
                None => {
                    let at = format!("{at}: dead_letter.queue");
                    return Err(TenantError::undeclared(at, &dl.queue, "queues"));
                }
                Some(dlq) if dlq.fifo != self.fifo => {
                    return Err(TenantError::rule(
                        at.clone(),
                        "a dead-letter queue must be FIFO exactly when its source is",
                    ));
                }
                Some(_) => {}
            }
        }
        if let Some(c) = &self.consumer {
            within("consumer.batch_size", c.batch_size, 1, l::QUEUE_MAX_BATCH)?;
            within(
                "consumer.max_concurrency",
                c.max_concurrency,
                1,
                l::QUEUE_MAX_CONCURRENCY,
            )?;
            if !tenant.plugins.contains_key(&c.plugin) {
                let at = format!("{at}: consumer.plugin");
                return Err(TenantError::undeclared(at, &c.plugin, "plugins"));
            }
        }
        Ok(())
    }
}

/// Each queue's settings are within bounds and what it names is the tenant's.
pub(super) fn validate(tenant: &TenantConfig) -> Result<(), TenantError> {
    for (name, queue) in &tenant.queues {
        check_name("queue", name).map_err(TenantError::name(format!("queues.{name}")))?;
        queue.validate(name, tenant)?;
        if let Some(dl) = &queue.dead_letter
            && dl.queue == *name
        {
            return Err(TenantError::rule(
                format!("queues.{name}.dead_letter"),
                "a queue cannot be its own dead-letter queue",
            ));
        }
    }
    Ok(())
}
