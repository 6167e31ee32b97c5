//! `queue-send`: sends `body` to `queue` with `delay_seconds`, `group_id` and
//! `deduplication_id` as given, and answers `{"id": ...}`, or the host's refusal as
//! `{"error": NAME, "cause": ...}` so a test can read it.

use orquesta_sdk::{Failure, Response, messaging};
use serde_json::{Value, json};

pub fn send(input: &Value) -> Result<Response, Failure> {
    let body = match &input["body"] {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    let options = messaging::SendOptions {
        // A delay past u32 is sent as the largest one: the host must refuse it anyway.
        delay_seconds: input["delay_seconds"]
            .as_u64()
            .map_or(0, |d| u32::try_from(d).unwrap_or(u32::MAX)),
        attributes: Vec::new(),
        group_id: input["group_id"].as_str().map(String::from),
        deduplication_id: input["deduplication_id"].as_str().map(String::from),
    };
    let queue = input["queue"].as_str().unwrap_or_default();
    Ok(Response::json(
        &match messaging::send(queue, &body, &options) {
            Ok(id) => json!({ "id": id }),
            Err(e) => {
                let refused = Failure::from(e);
                json!({ "error": refused.error, "cause": refused.cause })
            }
        },
    ))
}
