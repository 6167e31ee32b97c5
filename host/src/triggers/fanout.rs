//! Topics and event buses in the service. A publication goes to every subscription whose
//! filter policy matches (SNS); an event goes to the targets of every rule whose pattern
//! matches (EventBridge). Queue targets are written before the call returns; plugin and
//! webhook targets are written to the store as deliveries, which `deliveries` makes in
//! the background. A publication, message or event is at most the tenant's
//! `limits.max_message_kb`, and what it causes carries the sender's chain depth
//! (`Caller::depth`; see `recursion`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::sync::Notify;

use crate::capabilities::CapError;
use crate::capabilities::messaging::OutgoingMessage;
use crate::engine::Limits;
use crate::engine::log_gate::LogGate;
use crate::store::Store;
use crate::store::delivery::NewDelivery;
use crate::tenants::{BusConfig, DeliveryPolicy, QueueConfig, TopicConfig, WorkflowConfig};
use crate::triggers::deliveries::pending::{LEASE_MARGIN_MS, Pending, WEBHOOK_TIMEOUT_MS};
use crate::triggers::queue::QueueWakes;
use crate::triggers::queue::send::Sending;
use crate::triggers::recursion;
use crate::workflow::{Executor, StartError};

/// `notify` and `messaging` for one tenant.
pub struct TenantFanout {
    pub tenant: String,
    pub store: Store,
    pub wakes: Arc<QueueWakes>,
    /// Wakes this host's delivery worker when a delivery is written here.
    pub deliveries: Arc<Notify>,
    pub limits: Limits,
    pub queues: BTreeMap<String, QueueConfig>,
    pub topics: BTreeMap<String, TopicConfig>,
    pub buses: BTreeMap<String, BusConfig>,
    pub workflows: BTreeMap<String, WorkflowConfig>,
    pub executor: Arc<Executor>,
    /// The tenant's topic and bus `log` targets, at its `limits.log_lines_per_s` as its
    /// plugins' own lines: a plugin publishing in a loop must not flood the host's log.
    pub logs: LogGate,
}

/// The `plugin` label of the log gate and dropped-lines metric of `log` targets.
pub const LOG_TARGETS: &str = "(log targets)";

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

impl TenantFanout {
    /// Sends to one of the tenant's queues what something `depth` into its chain sent.
    pub(crate) async fn to_queue(
        &self,
        queue: &str,
        body: String,
        attributes: Vec<(String, String)>,
        depth: u32,
    ) -> Result<(), CapError> {
        self.to_queue_with(queue, body, attributes, self.sending(depth))
            .await
    }

    /// `to_queue`, held to `sending`.
    pub(crate) async fn to_queue_with(
        &self,
        queue: &str,
        body: String,
        attributes: Vec<(String, String)>,
        sending: Sending,
    ) -> Result<(), CapError> {
        self.send_to_queue(queue, body, attributes, sending, None)
            .await
    }

    /// Sends a schedule's tick to a queue under `deduplication_id`, so that every host
    /// that sends the same tick within the queue's deduplication window adds one message.
    pub(crate) async fn to_queue_once(
        &self,
        queue: &str,
        body: String,
        deduplication_id: String,
    ) -> Result<(), CapError> {
        self.send_to_queue(
            queue,
            body,
            Vec::new(),
            self.sending(0),
            Some(deduplication_id),
        )
        .await
    }

    async fn send_to_queue(
        &self,
        queue: &str,
        body: String,
        attributes: Vec<(String, String)>,
        sending: Sending,
        deduplication_id: Option<String>,
    ) -> Result<(), CapError> {
        let message = OutgoingMessage {
            queue: queue.to_string(),
            body,
            delay_seconds: 0,
            attributes,
            group_id: None,
            deduplication_id,
        };
        crate::triggers::queue::send::send(
            &self.store,
            &self.wakes,
            &self.tenant,
            &self.queues,
            queue,
            sending,
            message,
        )
        .await
        .map(|_| ())
    }

    pub(crate) fn sending(&self, depth: u32) -> Sending {
        Sending {
            max_bytes: self.limits.max_message_bytes(),
            max_depth: self.limits.queue_depth,
            depth,
        }
    }

    /// Starts an execution of one of the tenant's workflows, `depth` into its chain; its
    /// id.
    pub(crate) async fn to_workflow(
        &self,
        workflow: &str,
        input: Value,
        name: Option<&str>,
        depth: u32,
    ) -> Result<String, CapError> {
        let config = self.workflows.get(workflow).ok_or_else(|| {
            CapError::Invalid(format!(
                "workflow `{workflow}` is not one of the tenant's workflows"
            ))
        })?;
        match self
            .executor
            .start_in_chain(&self.tenant, workflow, &config.document, input, name, depth)
            .await
        {
            Ok(started) => Ok(started.id),
            Err(
                e @ (StartError::Definition(_)
                | StartError::AlreadyExists(_)
                | StartError::InputTooLarge(_)
                | StartError::Name(_)),
            ) => Err(CapError::Invalid(e.to_string())),
            Err(StartError::Store(e)) => Err(CapError::Failed(e.to_string())),
        }
    }

    /// Writes a delivery of `event` to `plugin`, `depth` into its chain and held to
    /// `policy`, for the delivery worker; past the recursion bound it is not written
    /// (`kind` names the source in the metric).
    pub(crate) async fn to_plugin(
        &self,
        plugin: &str,
        event: &Pending,
        depth: u32,
        kind: &'static str,
        policy: DeliveryPolicy,
    ) -> Result<(), CapError> {
        if recursion::past_bound(depth) {
            recursion::stopped(&self.tenant, kind, plugin);
            return Ok(());
        }
        let lease_ms = self.limits.timeout_ms + LEASE_MARGIN_MS;
        self.deliver("plugin", plugin, event.to_json(), depth, lease_ms, policy)
            .await
    }

    /// Writes the delivery of a schedule's tick to `plugin` with the tick's claim, in one
    /// transaction: true when this host won the tick (and so wrote it).
    pub(crate) async fn to_plugin_for_tick(
        &self,
        plugin: &str,
        event: &Pending,
        policy: DeliveryPolicy,
        tick: crate::store::schedule::TickClaim<'_>,
    ) -> Result<bool, CapError> {
        let lease_ms = self.limits.timeout_ms + LEASE_MARGIN_MS;
        let delivery = self.delivery("plugin", plugin, event.to_json(), 0, lease_ms, policy);
        let won = self
            .store
            .delivery_add_for_tick(delivery, tick)
            .await
            .map_err(|e| CapError::Failed(format!("cannot queue a delivery: {e}")))?;
        if won {
            self.deliveries.notify_one();
        }
        Ok(won)
    }

    /// Writes a delivery of SNS's notification document to `url`.
    pub(crate) async fn to_webhook(
        &self,
        url: &str,
        document: String,
        depth: u32,
        policy: DeliveryPolicy,
    ) -> Result<(), CapError> {
        let lease_ms = u64::from(WEBHOOK_TIMEOUT_MS) + LEASE_MARGIN_MS;
        self.deliver("webhook", url, document, depth, lease_ms, policy)
            .await
    }

    async fn deliver(
        &self,
        kind: &str,
        target: &str,
        event: String,
        depth: u32,
        lease_ms: u64,
        policy: DeliveryPolicy,
    ) -> Result<(), CapError> {
        let delivery = self.delivery(kind, target, event, depth, lease_ms, policy);
        self.store
            .delivery_add(vec![delivery])
            .await
            .map_err(|e| CapError::Failed(format!("cannot queue a delivery: {e}")))?;
        self.deliveries.notify_one();
        Ok(())
    }

    fn delivery(
        &self,
        kind: &str,
        target: &str,
        event: String,
        depth: u32,
        lease_ms: u64,
        policy: DeliveryPolicy,
    ) -> NewDelivery {
        NewDelivery {
            tenant: self.tenant.clone(),
            kind: kind.to_string(),
            target: target.to_string(),
            event,
            depth,
            lease_ms,
            max_attempts: policy.max_attempts,
            max_age_ms: policy.max_age_ms,
            dead_letter: policy.dead_letter,
            origin: policy.origin,
            // A policy of numbers and a name always serializes.
            retry_schedule: policy.schedule.and_then(|s| serde_json::to_string(&s).ok()),
        }
    }
}

/// A logged message or event is cut like a plugin's log line.
pub(crate) const LOG_LINE: usize = crate::engine::limits::capability::LOG_LINE_BYTES;
