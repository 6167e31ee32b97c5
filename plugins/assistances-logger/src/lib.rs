//! `assistances-logger`: the AssistancesLoggerWriter of seed 002. It consumes the
//! `AssistancesLoggerSQS` queue (batch 1): each message is an assistance log entry
//! `{logData, PK, SK}`, stored as the logger item `PK#SK` in the shared kv bucket
//! (DynamoDB's AssistancesLoggerDB in the seed) and handed to the `tracking-mok`
//! workflow. A message it cannot take fails, comes back, and after the queue's
//! `max_receive_count` lands in the dead-letter queue.

use orquesta_sdk::{Event, Failure, Handler, QueueMessage, Response, config, kv, log, messaging};
use serde_json::Value;

struct AssistancesLogger;

impl Handler for AssistancesLogger {
    fn handle(event: Event) -> Result<Response, Failure> {
        let Event::Queue(messages) = event else {
            return Err(Failure::new(
                "UnsupportedEvent",
                "assistances-logger consumes a queue",
            ));
        };
        let mut failed = Vec::new();
        for m in messages {
            if let Err(f) = write(&m) {
                log::log(
                    log::Level::Warn,
                    "assistance log entry refused",
                    &[
                        ("id".into(), m.id.clone()),
                        ("error".into(), format!("{}: {}", f.error, f.cause)),
                    ],
                );
                failed.push(m.id);
            }
        }
        Ok(Response::Batch(failed))
    }
}

orquesta_sdk::export!(AssistancesLogger);

fn write(m: &QueueMessage) -> Result<(), Failure> {
    let entry: Value = serde_json::from_str(&m.body)
        .map_err(|e| Failure::new("InvalidMessage", format!("not JSON: {e}")))?;
    let (Some(pk), Some(sk)) = (entry["PK"].as_str(), entry["SK"].as_str()) else {
        return Err(Failure::new("InvalidMessage", "PK and SK are required"));
    };
    if !entry["logData"].is_object() {
        return Err(Failure::new("InvalidMessage", "logData is required"));
    }
    let key = format!("{pk}#{sk}");
    let bucket = config::get("bucket").unwrap_or_else(|| "assistances-logger".into());
    let workflow = config::get("workflow").unwrap_or_else(|| "tracking-mok".into());
    // The item keeps what TrackingMok adds later (client_id) if it was written before.
    let mut item = match kv::get(&bucket, &key)? {
        Some(old) => serde_json::from_slice(&old.value).unwrap_or(Value::Null),
        None => Value::Null,
    };
    if let (Value::Object(item), Value::Object(new)) = (&mut item, &entry) {
        item.extend(new.clone());
    } else {
        item = entry.clone();
    }
    item["message_id"] = Value::String(m.id.clone());
    kv::set(&bucket, &key, item.to_string().as_bytes(), None)?;
    messaging::start_execution(&workflow, &entry.to_string(), None)?;
    Ok(())
}
