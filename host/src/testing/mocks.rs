//! Stand-ins for the outside world while a plugin runs in isolation: scripted HTTP
//! answers, and an outbox that records what the plugin published or sent.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::bindings::workflow_tasks::TaskError;
use crate::capabilities::http::{OutboundHttp, Request, Response};
use crate::capabilities::messaging::{Messaging, OutgoingEvent, OutgoingMessage};
use crate::capabilities::notify::{Notifier, Publication};
use crate::capabilities::workflow_tasks::{WorkflowAllowed, WorkflowTasks};
use crate::capabilities::{Caller, CapError};
use crate::event::{Body, body_json};
use crate::store::task_tokens::Answer;

/// One scripted answer, matched on method and URL. Answers for the same request are
/// used in the order given ("401 then 200"); a `repeat` answer is never used up.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MockResponse {
    pub method: String,
    pub url: String,
    #[serde(default = "ok")]
    pub status: u16,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Body,
    #[serde(default)]
    pub repeat: bool,
    /// Answer this late, to script a slow upstream.
    #[serde(default)]
    pub delay_ms: u64,
}

fn ok() -> u16 {
    200
}

impl MockResponse {
    pub fn new(method: &str, url: &str) -> Self {
        MockResponse {
            method: method.to_string(),
            url: url.to_string(),
            status: 200,
            headers: BTreeMap::new(),
            body: Body::default(),
            repeat: false,
            delay_ms: 0,
        }
    }

    pub fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    pub fn json(mut self, body: Value) -> Self {
        self.headers
            .insert("content-type".into(), "application/json".into());
        self.body = Body(body.to_string());
        self
    }

    pub fn body(mut self, body: &str) -> Self {
        self.body = Body(body.to_string());
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.insert(name.to_string(), value.to_string());
        self
    }

    pub fn repeat(mut self) -> Self {
        self.repeat = true;
        self
    }

    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay_ms = delay.as_millis() as u64;
        self
    }

    fn matches(&self, request: &Request) -> bool {
        self.method.eq_ignore_ascii_case(&request.method) && self.url == request.url
    }
}

/// A request the plugin made.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordedRequest {
    pub method: String,
    pub url: String,
    pub headers: BTreeMap<String, String>,
    pub body: Value,
}

/// Answers outbound HTTP from scripted responses and records every request.
#[derive(Default)]
pub struct MockHttp {
    /// Each mock with whether it was used.
    mocks: Mutex<Vec<(MockResponse, bool)>>,
    calls: Mutex<Vec<RecordedRequest>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Recorders hold plain data: a panic elsewhere cannot leave it half-written.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl MockHttp {
    pub fn add(&self, mock: MockResponse) {
        lock(&self.mocks).push((mock, false));
    }

    pub fn calls(&self) -> Vec<RecordedRequest> {
        lock(&self.calls).clone()
    }
}

#[async_trait]
impl OutboundHttp for MockHttp {
    async fn send(&self, _caller: &Caller<'_>, request: Request) -> Result<Response, CapError> {
        lock(&self.calls).push(RecordedRequest {
            method: request.method.to_ascii_uppercase(),
            url: request.url.clone(),
            headers: request
                .headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect(),
            body: body_json(&request.body),
        });
        let answer = {
            let mut mocks = lock(&self.mocks);
            let found = mocks
                .iter_mut()
                .find(|(m, used)| !*used && m.matches(&request));
            found.map(|(mock, used)| {
                *used = !mock.repeat;
                mock.clone()
            })
        };
        let Some(mock) = answer else {
            return Err(CapError::Failed(format!(
                "no mocked answer left for {} {}",
                request.method, request.url
            )));
        };
        if mock.delay_ms > 0 {
            // A slow answer past the request's own timeout fails as the real client's does.
            let delay = Duration::from_millis(mock.delay_ms);
            match request
                .timeout_ms
                .map(|ms| Duration::from_millis(u64::from(ms)))
            {
                Some(limit) if limit < delay => {
                    tokio::time::sleep(limit).await;
                    return Err(CapError::Timeout(format!(
                        "the request timed out after {} ms",
                        limit.as_millis()
                    )));
                }
                _ => tokio::time::sleep(delay).await,
            }
        }
        Ok(Response {
            status: mock.status,
            headers: mock.headers.into_iter().collect(),
            body: mock.body.0.into_bytes(),
        })
    }
}

/// Records what the plugin published, sent and started.
#[derive(Default)]
pub struct Outbox {
    notifications: Mutex<Vec<Publication>>,
    messages: Mutex<Vec<OutgoingMessage>>,
    events: Mutex<Vec<OutgoingEvent>>,
    executions: Mutex<Vec<Value>>,
    task_answers: Mutex<Vec<Value>>,
}

fn fields_json(fields: &[(String, String)]) -> Value {
    Value::Object(
        fields
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

impl Outbox {
    /// `{topic, subject, body, attributes}` per publication, bodies parsed when JSON.
    pub fn notifications(&self) -> Vec<Value> {
        lock(&self.notifications)
            .iter()
            .map(|p| {
                json!({
                    "topic": p.topic, "subject": p.subject,
                    "body": body_json(p.body.as_bytes()), "attributes": fields_json(&p.attributes),
                })
            })
            .collect()
    }

    /// `{queue, body, attributes, group_id, delay_seconds}` per message.
    pub fn messages(&self) -> Vec<Value> {
        lock(&self.messages)
            .iter()
            .map(|m| {
                json!({
                    "queue": m.queue, "body": body_json(m.body.as_bytes()),
                    "attributes": fields_json(&m.attributes), "group_id": m.group_id,
                    "delay_seconds": m.delay_seconds,
                })
            })
            .collect()
    }

    /// `{bus, source, detail_type, detail}` per event.
    pub fn events(&self) -> Vec<Value> {
        lock(&self.events)
            .iter()
            .map(|e| {
                json!({
                    "bus": e.bus, "source": e.source, "detail_type": e.detail_type,
                    "detail": body_json(e.detail.as_bytes()),
                })
            })
            .collect()
    }

    /// `{workflow, input, name}` per started execution.
    pub fn executions(&self) -> Vec<Value> {
        lock(&self.executions).clone()
    }

    /// `{token, success}`, `{token, failure: {error, cause}}` or `{token, heartbeat:
    /// true}` per workflow task answer, outputs parsed.
    pub fn task_answers(&self) -> Vec<Value> {
        lock(&self.task_answers).clone()
    }
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[async_trait]
impl Notifier for Outbox {
    async fn publish(&self, _: &Caller<'_>, publication: Publication) -> Result<String, CapError> {
        lock(&self.notifications).push(publication);
        Ok(new_id())
    }
}

#[async_trait]
impl Messaging for Outbox {
    async fn send(&self, _: &Caller<'_>, message: OutgoingMessage) -> Result<String, CapError> {
        lock(&self.messages).push(message);
        Ok(new_id())
    }

    async fn put_event(&self, _: &Caller<'_>, event: OutgoingEvent) -> Result<String, CapError> {
        lock(&self.events).push(event);
        Ok(new_id())
    }

    async fn start_execution(
        &self,
        _: &Caller<'_>,
        workflow: &str,
        input: &str,
        name: Option<&str>,
    ) -> Result<String, CapError> {
        lock(&self.executions).push(json!({
            "workflow": workflow, "input": body_json(input.as_bytes()), "name": name,
        }));
        Ok(new_id())
    }
}

/// Records answers (checked by the capability as the service checks them): no workflow
/// runs here, so each is taken.
#[async_trait]
impl WorkflowTasks for Outbox {
    async fn answer(
        &self,
        _: &Caller<'_>,
        token: &str,
        answer: &Answer,
        _: &WorkflowAllowed<'_>,
    ) -> Result<(), TaskError> {
        let recorded = match answer {
            Answer::Success(output) => {
                json!({ "token": token, "success": body_json(output.as_bytes()) })
            }
            Answer::Failure { error, cause } => {
                json!({ "token": token, "failure": { "error": error, "cause": cause } })
            }
            Answer::Heartbeat => json!({ "token": token, "heartbeat": true }),
        };
        lock(&self.task_answers).push(recorded);
        Ok(())
    }
}
