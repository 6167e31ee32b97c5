//! Topics and event buses in the service. A publication goes to every subscription whose
//! filter policy matches (SNS); an event goes to the targets of every rule whose pattern
//! matches (EventBridge). Queue targets are written before the call returns; plugin and
//! webhook targets are delivered in the background with retries (two more attempts, as
//! SNS and EventBridge do for asynchronous invocations), and a delivery that still fails
//! is logged with its error.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::state::App;
use crate::bindings::handler::{BusEvent, Event, Notification};
use crate::capabilities::http::{OutboundHttp, Request};
use crate::capabilities::messaging::{Messaging, OutgoingEvent, OutgoingMessage};
use crate::capabilities::notify::{Notifier, Publication};
use crate::capabilities::{Caller, CapError};
use crate::pattern::Numbers;
use crate::store::Store;
use crate::tenants::{BusConfig, FilterScope, QueueConfig, Target, TopicConfig, WorkflowConfig};
use crate::workflow::{Executor, StartError};

/// Attempts of a background delivery, and the pause before each retry.
const ATTEMPTS: u32 = 3;
const RETRY_PAUSE: Duration = Duration::from_secs(1);
/// A webhook's answer must come within this.
const WEBHOOK_TIMEOUT_MS: u32 = 10_000;

/// The service, reached from a tenant's backends once it exists (backends are built
/// before the `App` that holds them).
pub type AppHandle = Arc<OnceLock<Weak<App>>>;

/// `notify` and `messaging` for one tenant.
pub struct TenantFanout {
    pub tenant: String,
    pub store: Store,
    pub wake: Arc<Notify>,
    pub http: Arc<dyn OutboundHttp>,
    pub app: AppHandle,
    pub queues: BTreeMap<String, QueueConfig>,
    pub topics: BTreeMap<String, TopicConfig>,
    pub buses: BTreeMap<String, BusConfig>,
    pub workflows: BTreeMap<String, WorkflowConfig>,
    pub executor: Arc<Executor>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

impl TenantFanout {
    pub(super) async fn to_queue(
        &self,
        queue: &str,
        body: String,
        attributes: Vec<(String, String)>,
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
            message,
        )
        .await
        .map(|_| ())
    }

    /// Starts an execution of one of the tenant's workflows; its id.
    pub(super) async fn to_workflow(
        &self,
        workflow: &str,
        input: Value,
        name: Option<&str>,
    ) -> Result<String, CapError> {
        let config = self.workflows.get(workflow).ok_or_else(|| {
            CapError::Invalid(format!(
                "workflow `{workflow}` is not one of the tenant's workflows"
            ))
        })?;
        match self
            .executor
            .start(&self.tenant, workflow, &config.document, input, name)
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

    /// Invokes `plugin` with `event` in the background, retrying failures.
    pub(super) fn to_plugin(&self, plugin: &str, event: Event) {
        let Some(app) = self.app.get().and_then(Weak::upgrade) else {
            tracing::warn!(tenant = %self.tenant, %plugin, "the service is stopping; delivery dropped");
            return;
        };
        let (tenant, plugin) = (self.tenant.clone(), plugin.to_string());
        tokio::spawn(async move {
            let mut last = String::new();
            for attempt in 1..=ATTEMPTS {
                if attempt > 1 {
                    tokio::time::sleep(RETRY_PAUSE * (attempt - 1)).await;
                }
                let Some(runtime) = app.tenants.get(&tenant) else {
                    return;
                };
                let target = runtime.plugins.get(&plugin).cloned().zip(
                    runtime
                        .component_of(&plugin)
                        .and_then(|c| app.plugins.get(&c)),
                );
                let Some((ctx, component)) = target else {
                    last = format!("plugin `{plugin}` is not deployed");
                    continue;
                };
                let outcome = app.engine.invoke(&component, ctx, &event).await;
                match outcome {
                    Ok(_) => return,
                    Err(e) => last = e.to_string(),
                }
            }
            tracing::warn!(%tenant, %plugin, error = %last, "delivery failed after {ATTEMPTS} attempts");
        });
    }

    /// POSTs SNS's notification document to `url` in the background, retrying failures.
    fn to_webhook(&self, url: &str, document: Value) {
        let (http, tenant, url) = (self.http.clone(), self.tenant.clone(), url.to_string());
        tokio::spawn(async move {
            let caller = Caller {
                tenant: &tenant,
                plugin: "(topic)",
                invocation: "webhook",
            };
            let mut last = String::new();
            for attempt in 1..=ATTEMPTS {
                if attempt > 1 {
                    tokio::time::sleep(RETRY_PAUSE * (attempt - 1)).await;
                }
                let request = Request {
                    method: "POST".into(),
                    url: url.clone(),
                    headers: vec![
                        ("content-type".into(), "application/json".into()),
                        ("x-amz-sns-message-type".into(), "Notification".into()),
                    ],
                    body: document.to_string().into_bytes(),
                    timeout_ms: Some(WEBHOOK_TIMEOUT_MS),
                };
                match http.send(&caller, request).await {
                    Ok(r) if r.status < 300 => return,
                    Ok(r) => last = format!("answered {}", r.status),
                    Err(e) => last = e.to_string(),
                }
            }
            tracing::warn!(%tenant, %url, error = %last, "webhook delivery failed after {ATTEMPTS} attempts");
        });
    }
}

#[async_trait]
impl Notifier for TenantFanout {
    async fn publish(
        &self,
        _caller: &Caller<'_>,
        publication: Publication,
    ) -> Result<String, CapError> {
        let topic = self.topics.get(&publication.topic).ok_or_else(|| {
            CapError::Invalid(format!(
                "topic `{}` is not one of the tenant's topics",
                publication.topic
            ))
        })?;
        let id = uuid::Uuid::new_v4().to_string();
        let attributes: serde_json::Map<String, Value> = publication
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let attributes = Value::Object(attributes);
        // A body policy needs a JSON body; a body that is not JSON matches none.
        let body_doc: Option<Value> = serde_json::from_str(&publication.body).ok();
        let mut delivered = 0u32;
        for sub in &topic.subscriptions {
            let policy = sub.policy().map_err(CapError::Invalid)?;
            let passes = match (&policy, sub.filter_scope) {
                (None, _) => true,
                (Some(p), FilterScope::Attributes) => p.matches(&attributes, Numbers::FromStrings),
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
                    self.to_queue(q, publication.body.clone(), publication.attributes.clone())
                        .await?;
                }
                Target::Plugin(p) => self.to_plugin(
                    p,
                    Event::Topic(Notification {
                        id: id.clone(),
                        topic: publication.topic.clone(),
                        subject: publication.subject.clone(),
                        body: publication.body.clone(),
                        attributes: publication.attributes.clone(),
                    }),
                ),
                Target::Webhook(url) => self.to_webhook(
                    url,
                    json!({
                        "Type": "Notification",
                        "MessageId": id,
                        "TopicArn": format!("orquesta:{}:{}", self.tenant, publication.topic),
                        "Subject": publication.subject,
                        "Message": publication.body,
                        "Timestamp": now_ms(),
                        "MessageAttributes": attributes,
                    }),
                ),
                // A subscription cannot name a workflow (as with SNS).
                Target::Workflow(_) => {}
                Target::Log => tracing::info!(
                    tenant = %self.tenant, topic = %publication.topic, id = %id,
                    subject = ?publication.subject, body = %publication.body, "topic message"
                ),
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
    async fn send(&self, _: &Caller<'_>, message: OutgoingMessage) -> Result<String, CapError> {
        let queue = message.queue.clone();
        super::queues::send(
            &self.store,
            &self.wake,
            &self.tenant,
            &self.queues,
            &queue,
            message,
        )
        .await
    }

    async fn put_event(&self, _: &Caller<'_>, event: OutgoingEvent) -> Result<String, CapError> {
        let bus = self.buses.get(&event.bus).ok_or_else(|| {
            CapError::Invalid(format!(
                "bus `{}` is not one of the tenant's buses",
                event.bus
            ))
        })?;
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
            for target in &rule.targets {
                match target.target().map_err(CapError::Invalid)? {
                    Target::Queue(q) => self.to_queue(q, envelope.to_string(), Vec::new()).await?,
                    Target::Plugin(p) => self.to_plugin(
                        p,
                        Event::Bus(BusEvent {
                            id: id.clone(),
                            bus: event.bus.clone(),
                            source: event.source.clone(),
                            detail_type: event.detail_type.clone(),
                            detail: event.detail.clone(),
                            time,
                        }),
                    ),
                    Target::Log => tracing::info!(
                        tenant = %self.tenant, bus = %event.bus, rule = %rule.name, event = %envelope,
                        "bus event"
                    ),
                    Target::Workflow(w) => {
                        self.to_workflow(w, envelope.clone(), None).await?;
                    }
                    Target::Webhook(_) => {}
                }
            }
        }
        Ok(id)
    }

    async fn start_execution(
        &self,
        _: &Caller<'_>,
        workflow: &str,
        input: &str,
        name: Option<&str>,
    ) -> Result<String, CapError> {
        let input: Value = serde_json::from_str(input)
            .map_err(|e| CapError::Invalid(format!("execution input must be JSON: {e}")))?;
        self.to_workflow(workflow, input, name).await
    }
}
