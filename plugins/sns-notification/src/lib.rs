//! `sns-notification`: the SnsNotification task of the `tracking-mok` workflow (FLOWS.md
//! section 1). A `statusCode` of 200 needs nothing; any other publishes the error details
//! to the alerts topic with subject `Tracking Mok Lambda {action}`. A 5xx (MOK down or
//! failing after the TrackingMok retries) is a persistent failure: the original request
//! (`request`, the execution's input) is parked in the dead-letter queue, from which a
//! redrive sends it back through the assistances logger.

use orquesta_sdk::{Event, Failure, Handler, Response, config, messaging, notify, parse_json};
use serde_json::{Value, json};

struct SnsNotification;

impl Handler for SnsNotification {
    fn handle(event: Event) -> Result<Response, Failure> {
        let Event::Task(task) = event else {
            return Err(Failure::new(
                "UnsupportedEvent",
                "sns-notification runs as a workflow task",
            ));
        };
        let input = parse_json(&task.input)?;
        let status = input["statusCode"].as_u64().ok_or_else(|| {
            Failure::new("ValidationError", "the input needs a numeric statusCode")
        })?;
        if status == 200 {
            return Ok(Response::json(
                &json!({ "status_notification": "proceso exitoso, no se notifico" }),
            ));
        }
        let action = input["action"].as_str().unwrap_or_default();
        let topic = config::get("topic").unwrap_or_else(|| "alerts".into());
        let details = match &input["body"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        notify::publish(
            &topic,
            Some(&format!("Tracking Mok Lambda {action}")),
            &details,
            &[
                ("action".into(), action.into()),
                ("statusCode".into(), status.to_string()),
            ],
        )?;
        let mut dead_lettered = false;
        if status >= 500
            && let Some(queue) = config::get("dead_letter_queue")
            && input["request"].is_object()
        {
            messaging::send(
                &queue,
                &input["request"].to_string(),
                &messaging::SendOptions {
                    delay_seconds: 0,
                    attributes: vec![("action".into(), action.into()), ("error".into(), details)],
                    group_id: None,
                    deduplication_id: None,
                },
            )?;
            dead_lettered = true;
        }
        Ok(Response::json(&json!({
            "status_notification": "envio_exitoso",
            "dead_lettered": dead_lettered,
        })))
    }
}

orquesta_sdk::export!(SnsNotification);
