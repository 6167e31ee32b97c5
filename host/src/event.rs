//! The JSON forms of events and results: what `orquesta invoke --event` reads, what
//! fixtures contain and what the CLI prints. Converted to and from the WIT types here,
//! at the edge, so the engine only sees WIT values.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use crate::bindings::handler::{
    BusEvent, Event, HttpRequest, Identity, Notification, QueueMessage, Response, ScheduledTick,
    TaskInput,
};
use crate::engine::InvokeError;

type Fields = BTreeMap<String, String>;

/// An event as JSON, tagged by `type`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum EventJson {
    Http {
        #[serde(default = "default_method")]
        method: String,
        #[serde(default = "default_path")]
        path: String,
        #[serde(default)]
        params: Fields,
        #[serde(default)]
        query: Fields,
        #[serde(default)]
        headers: Fields,
        #[serde(default)]
        body: Body,
        #[serde(default)]
        identity: Option<IdentityJson>,
    },
    Queue {
        #[serde(default = "default_queue")]
        queue: String,
        messages: Vec<QueueMessageJson>,
    },
    Topic {
        topic: String,
        #[serde(default)]
        id: Option<String>,
        #[serde(default)]
        subject: Option<String>,
        #[serde(default)]
        body: Body,
        #[serde(default)]
        attributes: Fields,
    },
    Bus {
        #[serde(default = "default_bus")]
        bus: String,
        #[serde(default)]
        id: Option<String>,
        source: String,
        detail_type: String,
        #[serde(default)]
        detail: Value,
        #[serde(default)]
        time: Option<u64>,
    },
    Schedule {
        schedule: String,
        #[serde(default)]
        scheduled_at: Option<u64>,
        #[serde(default)]
        input: Value,
    },
    Task {
        #[serde(default)]
        execution_id: Option<String>,
        #[serde(default = "default_state")]
        state: String,
        #[serde(default)]
        input: Value,
        #[serde(default)]
        context: Value,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityJson {
    pub subject: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueMessageJson {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub body: Body,
    #[serde(default)]
    pub attributes: Fields,
    #[serde(default)]
    pub group_id: Option<String>,
    #[serde(default = "one")]
    pub receive_count: u32,
    #[serde(default)]
    pub sent_at: Option<u64>,
}

/// A body given as a string (taken as is) or as any other JSON (serialised).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Body(pub String);

impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Body(match Value::deserialize(d)? {
            Value::Null => String::new(),
            Value::String(s) => s,
            other => other.to_string(),
        }))
    }
}

fn default_method() -> String {
    "GET".into()
}
fn default_path() -> String {
    "/".into()
}
fn default_queue() -> String {
    "queue".into()
}
fn default_bus() -> String {
    "default".into()
}
fn default_state() -> String {
    "Task".into()
}
fn one() -> u32 {
    1
}

fn pairs(fields: Fields) -> Vec<(String, String)> {
    fields.into_iter().collect()
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn json_text(value: Value) -> String {
    match value {
        Value::Null => "{}".into(),
        other => other.to_string(),
    }
}

impl EventJson {
    /// Parses an event document, with a one-line error.
    pub fn parse(text: &str) -> Result<Self, InvokeError> {
        serde_json::from_str(text).map_err(|e| InvokeError::InvalidEvent(e.to_string()))
    }

    /// Reads an event from a JSON value (a fixture's `event`).
    pub fn from_value(value: Value) -> Result<Self, InvokeError> {
        serde_json::from_value(value).map_err(|e| InvokeError::InvalidEvent(e.to_string()))
    }

    pub fn into_event(self) -> Event {
        let now = crate::store::now_ms() as u64;
        match self {
            EventJson::Http {
                method,
                path,
                params,
                query,
                headers,
                body,
                identity,
            } => Event::Http(HttpRequest {
                method: method.to_ascii_uppercase(),
                path,
                params: pairs(params),
                query: pairs(query),
                // Header names are case-insensitive; plugins see them lower-cased.
                headers: headers
                    .into_iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v))
                    .collect(),
                body: body.0.into_bytes(),
                identity: identity.map(|i| Identity {
                    subject: i.subject,
                    email: i.email,
                    name: i.name,
                    groups: i.groups,
                    scopes: i.scopes,
                }),
            }),
            EventJson::Queue { queue, messages } => Event::Queue(
                messages
                    .into_iter()
                    .map(|m| QueueMessage {
                        id: m.id.unwrap_or_else(new_id),
                        queue: queue.clone(),
                        body: m.body.0,
                        attributes: pairs(m.attributes),
                        group_id: m.group_id,
                        receive_count: m.receive_count,
                        sent_at: m.sent_at.unwrap_or(now),
                    })
                    .collect(),
            ),
            EventJson::Topic {
                topic,
                id,
                subject,
                body,
                attributes,
            } => Event::Topic(Notification {
                id: id.unwrap_or_else(new_id),
                topic,
                subject,
                body: body.0,
                attributes: pairs(attributes),
            }),
            EventJson::Bus {
                bus,
                id,
                source,
                detail_type,
                detail,
                time,
            } => Event::Bus(BusEvent {
                id: id.unwrap_or_else(new_id),
                bus,
                source,
                detail_type,
                detail: json_text(detail),
                time: time.unwrap_or(now),
            }),
            EventJson::Schedule {
                schedule,
                scheduled_at,
                input,
            } => Event::Schedule(ScheduledTick {
                schedule,
                scheduled_at: scheduled_at.unwrap_or(now),
                input: json_text(input),
            }),
            EventJson::Task {
                execution_id,
                state,
                input,
                context,
            } => Event::Task(TaskInput {
                execution_id: execution_id.unwrap_or_else(new_id),
                state,
                input: input.to_string(),
                context: json_text(context),
            }),
        }
    }
}

/// The JSON form of a result:
/// - `http`: `{"status", "headers", "body"}`, the body parsed when it is JSON;
/// - `json`: the document itself;
/// - `batch`: `{"batchItemFailures": [{"itemIdentifier": id}]}`, as Lambda reports them;
/// - `none`: `null`.
pub fn response_to_json(response: &Response) -> Result<Value, InvokeError> {
    Ok(match response {
        Response::Http(r) => {
            let headers: serde_json::Map<String, Value> = r
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            json!({ "status": r.status, "headers": headers, "body": body_json(&r.body) })
        }
        Response::Json(text) => serde_json::from_str(text).map_err(|e| {
            InvokeError::InvalidOutput(format!("the plugin's json result is not JSON: {e}"))
        })?,
        Response::Batch(ids) => json!({
            "batchItemFailures": ids.iter().map(|id| json!({ "itemIdentifier": id })).collect::<Vec<_>>()
        }),
        Response::None => Value::Null,
    })
}

/// The JSON text of a batch's failures (as `response_to_json` has them), written
/// straight from the ids rather than built as a JSON value first.
pub fn batch_json(ids: &[String]) -> String {
    #[derive(serde::Serialize)]
    struct Failures<'a> {
        #[serde(rename = "batchItemFailures")]
        items: Vec<Item<'a>>,
    }
    #[derive(serde::Serialize)]
    struct Item<'a> {
        #[serde(rename = "itemIdentifier")]
        id: &'a str,
    }
    let items = ids.iter().map(|id| Item { id }).collect();
    serde_json::to_string(&Failures { items }).unwrap_or_default()
}

/// A body as JSON when it parses as JSON, else as text (lossy UTF-8), `null` when empty.
pub fn body_json(body: &[u8]) -> Value {
    if body.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}
