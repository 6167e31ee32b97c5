//! Attacks that feed the plugin its own output, for the host's recursive loop detection,
//! picked by the body (or detail) of what it receives, `{"attack": NAME}`: a topic
//! notification `republish` is published again to its topic, a queue message `resend` is
//! sent again to its queue, a bus event `re-put` is put again on its bus. A topic
//! notification `nap` sleeps `ms` first, then is counted as usual: a slow subscriber.

use orquesta_sdk::{Event, Failure, Response, messaging, notify};
use serde_json::Value;

/// The answer when `event` is one of these attacks; `None` lets the plugin go on as usual.
pub fn handle(event: &Event) -> Option<Result<Response, Failure>> {
    let attack = |text: &str| -> (String, Value) {
        let doc: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        (doc["attack"].as_str().unwrap_or_default().to_string(), doc)
    };
    match event {
        Event::Topic(n) => match attack(&n.body) {
            (a, _) if a == "republish" => Some(
                notify::publish(&n.topic, n.subject.as_deref(), &n.body, &n.attributes)
                    .map(|_| Response::None)
                    .map_err(Failure::from),
            ),
            (a, doc) if a == "nap" => {
                let ms = doc["ms"].as_u64().unwrap_or(100);
                std::thread::sleep(std::time::Duration::from_millis(ms));
                None
            }
            _ => None,
        },
        Event::Queue(messages) if messages.iter().any(|m| attack(&m.body).0 == "resend") => {
            for m in messages {
                let options = messaging::SendOptions {
                    delay_seconds: 0,
                    attributes: m.attributes.clone(),
                    group_id: None,
                    deduplication_id: None,
                };
                if let Err(e) = messaging::send(&m.queue, &m.body, &options) {
                    return Some(Err(e.into()));
                }
            }
            Some(Ok(Response::Batch(Vec::new())))
        }
        Event::Bus(e) if attack(&e.detail).0 == "re-put" => Some(
            messaging::put_event(&e.bus, &e.source, &e.detail_type, &e.detail)
                .map(|_| Response::None)
                .map_err(Failure::from),
        ),
        _ => None,
    }
}
