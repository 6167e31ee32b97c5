//! Topics and event buses in the service. A publication goes to every subscription whose
//! filter policy matches (SNS); an event goes to the targets of every rule whose pattern
//! matches (EventBridge). Queue targets are written before the call returns; plugin and
//! webhook targets are written to the store as deliveries, which `deliveries` makes in
//! the background. A publication, message or event is at most the tenant's
//! `limits.max_message_kb`, and what it causes carries the sender's chain depth
//! (`Caller::depth`; see `recursion`).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::deliveries::{LEASE_MARGIN_MS, Pending, WEBHOOK_TIMEOUT_MS};
use super::queues::Sending;
use super::recursion;
use super::state::App;
use crate::capabilities::messaging::{
    Messaging, OutgoingEvent, OutgoingMessage, check_message_size,
};
use crate::capabilities::notify::{Notifier, Publication};
use crate::capabilities::{Caller, CapError};
use crate::engine::Limits;
use crate::engine::log_gate::LogGate;
use crate::pattern::Numbers;
use crate::store::Store;
use crate::store::delivery::NewDelivery;
use crate::tenants::{BusConfig, FilterScope, QueueConfig, Target, TopicConfig, WorkflowConfig};
use crate::workflow::{Executor, StartError};

/// The service, reached from a tenant's backends once it exists (backends are built
/// before the `App` that holds them).
pub type AppHandle = Arc<OnceLock<Weak<App>>>;

/// `notify` and `messaging` for one tenant.
pub struct TenantFanout {
    pub tenant: String,
    pub store: Store,
    pub wake: Arc<Notify>,
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

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

impl TenantFanout {
    /// Sends to one of the tenant's queues what something `depth` into its chain sent.
    pub(super) async fn to_queue(
        &self,
        queue: &str,
        body: String,
        attributes: Vec<(String, String)>,
        depth: u32,
    ) -> Result<(), CapError> {
        let message = OutgoingMessage {
            queue: queue.to_string(),
            body,
            delay_seconds: 0,
            attributes,
            group_id: None,
            deduplication_id: None,
        };
        super::queues::send(
            &self.store,
            &self.wake,
            &self.tenant,
            &self.queues,
            queue,
            self.sending(depth),
            message,
        )
        .await
        .map(|_| ())
    }

    fn sending(&self, depth: u32) -> Sending {
        Sending {
            max_bytes: self.limits.max_message_bytes(),
            max_depth: self.limits.queue_depth,
            depth,
        }
    }

    /// Starts an execution of one of the tenant's workflows, `depth` into its chain; its
    /// id.
    pub(super) async fn to_workflow(
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

    /// Writes a delivery of `event` to `plugin`, `depth` into its chain, for the
    /// delivery worker; past the recursion bound it is not written (`kind` names the
    /// source in the metric).
    pub(super) async fn to_plugin(
        &self,
        plugin: &str,
        event: &Pending,
        depth: u32,
        kind: &'static str,
    ) -> Result<(), CapError> {
        if recursion::past_bound(depth) {
            recursion::stopped(&self.tenant, kind, plugin);
            return Ok(());
        }
        let lease_ms = self.limits.timeout_ms + LEASE_MARGIN_MS;
        self.deliver("plugin", plugin, event.to_json(), depth, lease_ms)
            .await
    }

    /// Writes a delivery of SNS's notification document to `url`.
    async fn to_webhook(&self, url: &str, document: &Value, depth: u32) -> Result<(), CapError> {
        let lease_ms = u64::from(WEBHOOK_TIMEOUT_MS) + LEASE_MARGIN_MS;
        self.deliver("webhook", url, document.to_string(), depth, lease_ms)
            .await
    }

    async fn deliver(
        &self,
        kind: &str,
        target: &str,
        event: String,
        depth: u32,
        lease_ms: u64,
    ) -> Result<(), CapError> {
        let delivery = NewDelivery {
            tenant: self.tenant.clone(),
            kind: kind.to_string(),
            target: target.to_string(),
            event,
            depth,
            lease_ms,
        };
        self.store
            .delivery_add(vec![delivery])
            .await
            .map_err(|e| CapError::Failed(format!("cannot queue a delivery: {e}")))?;
        self.deliveries.notify_one();
        Ok(())
    }
}

#[async_trait]
impl Notifier for TenantFanout {
    async fn publish(
        &self,
        caller: &Caller<'_>,
        publication: Publication,
    ) -> Result<String, CapError> {
        let topic = self.topics.get(&publication.topic).ok_or_else(|| {
            CapError::Invalid(format!(
                "topic `{}` is not one of the tenant's topics",
                publication.topic
            ))
        })?;
        // As SNS counts: the message, its subject and every attribute's name and value.
        let size = publication.body.len()
            + publication.subject.as_ref().map_or(0, String::len)
            + publication
                .attributes
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>();
        check_message_size("a topic publication", size, self.limits.max_message_bytes())?;
        let depth = caller.depth;
        let id = uuid::Uuid::new_v4().to_string();
        let attributes: serde_json::Map<String, Value> = publication
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let attributes = Value::Object(attributes);
        // What attribute policies read: JSON-array values are SNS `String.Array`s.
        let policy_attributes = crate::pattern::attributes_document(&publication.attributes);
        // A body policy needs a JSON body; a body that is not JSON matches none.
        let body_doc: Option<Value> = serde_json::from_str(&publication.body).ok();
        let mut delivered = 0u32;
        for sub in &topic.subscriptions {
            let policy = sub.policy().map_err(CapError::Invalid)?;
            let passes = match (&policy, sub.filter_scope) {
                (None, _) => true,
                (Some(p), FilterScope::Attributes) => {
                    p.matches(&policy_attributes, Numbers::FromStrings)
                }
                (Some(p), FilterScope::Body) => body_doc
                    .as_ref()
                    .is_some_and(|d| p.matches(d, Numbers::Json)),
            };
            if !passes {
                continue;
            }
            delivered += 1;
            match sub.target().map_err(CapError::Invalid)? {
                Target::Queue(q) => {
                    // Raw message delivery: the body as published, with its attributes.
                    self.to_queue(
                        q,
                        publication.body.clone(),
                        publication.attributes.clone(),
                        depth,
                    )
                    .await?;
                }
                Target::Plugin(p) => {
                    let event = Pending::Topic {
                        id: id.clone(),
                        topic: publication.topic.clone(),
                        subject: publication.subject.clone(),
                        body: publication.body.clone(),
                        attributes: publication.attributes.clone(),
                    };
                    self.to_plugin(p, &event, depth, "topic").await?;
                }
                Target::Webhook(url) => {
                    let document = json!({
                        "Type": "Notification",
                        "MessageId": id,
                        "TopicArn": format!("orquesta:{}:{}", self.tenant, publication.topic),
                        "Subject": publication.subject,
                        "Message": publication.body,
                        "Timestamp": now_ms(),
                        "MessageAttributes": attributes,
                    });
                    self.to_webhook(url, &document, depth).await?;
                }
                // A subscription cannot name a workflow (as with SNS).
                Target::Workflow(_) => {}
                Target::Log => {
                    if self.logs.admit() {
                        tracing::info!(
                            tenant = %self.tenant, topic = %publication.topic, id = %id,
                            subject = ?publication.subject,
                            body = %crate::text::escape_within(&publication.body, LOG_LINE),
                            "topic message"
                        );
                    }
                }
            }
        }
        let labels = [
            ("tenant", self.tenant.clone()),
            ("topic", publication.topic.clone()),
        ];
        metrics::counter!("orquesta_topic_published_total", &labels).increment(1);
        metrics::counter!("orquesta_topic_deliveries_total", &labels)
            .increment(u64::from(delivered));
        Ok(id)
    }
}

#[async_trait]
impl Messaging for TenantFanout {
    async fn send(
        &self,
        caller: &Caller<'_>,
        message: OutgoingMessage,
    ) -> Result<String, CapError> {
        let queue = message.queue.clone();
        super::queues::send(
            &self.store,
            &self.wake,
            &self.tenant,
            &self.queues,
            &queue,
            self.sending(caller.depth),
            message,
        )
        .await
    }

    async fn put_event(
        &self,
        caller: &Caller<'_>,
        event: OutgoingEvent,
    ) -> Result<String, CapError> {
        let bus = self.buses.get(&event.bus).ok_or_else(|| {
            CapError::Invalid(format!(
                "bus `{}` is not one of the tenant's buses",
                event.bus
            ))
        })?;
        // EventBridge counts the whole entry: source, detail type and detail.
        let size = event.source.len() + event.detail_type.len() + event.detail.len();
        check_message_size("a bus event", size, self.limits.max_message_bytes())?;
        let depth = caller.depth;
        let detail: Value = serde_json::from_str(&event.detail)
            .map_err(|e| CapError::Invalid(format!("an event's detail must be JSON: {e}")))?;
        let id = uuid::Uuid::new_v4().to_string();
        let time = now_ms();
        // EventBridge's envelope, as rules and targets see it.
        let envelope = json!({
            "version": "0",
            "id": id,
            "detail-type": event.detail_type,
            "source": event.source,
            "account": self.tenant,
            "time": time,
            "region": "local",
            "resources": [],
            "detail": detail,
        });
        let ingestion_time = chrono::DateTime::from_timestamp_millis(time as i64)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default();
        for rule in &bus.rules {
            let pattern = rule.pattern().map_err(CapError::Invalid)?;
            if !pattern.matches(&envelope, Numbers::Json) {
                continue;
            }
            let labels = [
                ("tenant", self.tenant.clone()),
                ("bus", event.bus.clone()),
                ("rule", rule.name.clone()),
            ];
            metrics::counter!("orquesta_bus_matches_total", &labels).increment(1);
            let rule_arn = format!("orquesta:{}:rule/{}/{}", self.tenant, event.bus, rule.name);
            let cx = crate::tenants::transform::Context {
                event: &envelope,
                rule_name: &rule.name,
                rule_arn: &rule_arn,
                ingestion_time: &ingestion_time,
            };
            for target in &rule.targets {
                // What the target receives: the event, or its `input*` transformation.
                let input = target.input_for(&cx);
                let input_text = match &input {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                match target.target().map_err(CapError::Invalid)? {
                    Target::Queue(q) => self.to_queue(q, input_text, Vec::new(), depth).await?,
                    Target::Plugin(p) => {
                        let pending = Pending::Bus {
                            id: id.clone(),
                            bus: event.bus.clone(),
                            source: event.source.clone(),
                            detail_type: event.detail_type.clone(),
                            detail: event.detail.clone(),
                            time,
                        };
                        self.to_plugin(p, &pending, depth, "bus").await?;
                    }
                    Target::Log => {
                        if self.logs.admit() {
                            tracing::info!(
                                tenant = %self.tenant, bus = %event.bus, rule = %rule.name,
                                event = %crate::text::escape_within(&input_text, LOG_LINE),
                                "bus event"
                            );
                        }
                    }
                    Target::Workflow(w) => {
                        self.to_workflow(w, input, None, depth).await?;
                    }
                    Target::Webhook(_) => {}
                }
            }
        }
        Ok(id)
    }

    async fn start_execution(
        &self,
        caller: &Caller<'_>,
        workflow: &str,
        input: &str,
        name: Option<&str>,
    ) -> Result<String, CapError> {
        let input: Value = serde_json::from_str(input)
            .map_err(|e| CapError::Invalid(format!("execution input must be JSON: {e}")))?;
        self.to_workflow(workflow, input, name, caller.depth).await
    }
}

/// A logged message or event is cut like a plugin's log line.
const LOG_LINE: usize = crate::engine::limits::capability::LOG_LINE_BYTES;
