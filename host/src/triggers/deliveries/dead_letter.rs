//! What a delivery that failed past its policy leaves in its dead-letter queue, as the
//! cloud leaves it: for a bus rule target, the event with EventBridge's error attributes
//! (`ERROR_CODE`, `ERROR_MESSAGE`, `EXHAUSTED_RETRY_CONDITION`, `RETRY_ATTEMPTS`,
//! `RULE_ARN`, `TARGET_ARN`); for a topic subscription, SNS's notification document
//! (SNS's redrive policy dead-letters the envelope, with no attributes of its own).

use serde_json::Value;

use super::pending::Pending;
use crate::store::delivery::ClaimedDelivery;
use crate::triggers::topic::envelope;

/// An error message in a dead letter's attributes is cut to this.
const ERROR_MESSAGE_BYTES: usize = 1024;

/// Why the retries stopped, as EventBridge names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exhausted {
    /// `max_attempts` made (or an error not worth retrying).
    Attempts,
    /// The next attempt would come past the delivery's maximum age.
    Age,
}

impl Exhausted {
    pub fn as_str(self) -> &'static str {
        match self {
            Exhausted::Attempts => "MaximumRetryAttemptsExhausted",
            Exhausted::Age => "MaximumEventAgeExceeded",
        }
    }
}

/// The last attempt's error.
pub struct LastError<'a> {
    pub code: &'a str,
    pub message: &'a str,
    pub exhausted: Exhausted,
}

/// The body and attributes of `delivery`'s dead letter.
pub fn letter(delivery: &ClaimedDelivery, last: &LastError<'_>) -> (String, Vec<(String, String)>) {
    let created = u64::try_from(delivery.created_at).unwrap_or_default();
    if delivery.kind != "plugin" {
        // A webhook's delivery is the notification document itself.
        return (delivery.event.clone(), Vec::new());
    }
    match serde_json::from_str::<Pending>(&delivery.event) {
        Ok(Pending::Topic {
            id,
            topic,
            subject,
            body,
            attributes,
        }) => {
            let doc = envelope::notification(&envelope::Notice {
                id: &id,
                tenant: &delivery.tenant,
                topic: &topic,
                subject: subject.as_deref(),
                body: &body,
                attributes: &attributes,
                time_ms: created,
            });
            (doc.to_string(), Vec::new())
        }
        Ok(Pending::Bus {
            id,
            source,
            detail_type,
            detail,
            time,
            ..
        }) => {
            let detail = serde_json::from_str(&detail).unwrap_or(Value::String(detail));
            let event = crate::triggers::bus::envelope(
                &delivery.tenant,
                &id,
                &source,
                &detail_type,
                time,
                detail,
            );
            let mut message = last.message.to_string();
            crate::text::truncate(&mut message, ERROR_MESSAGE_BYTES);
            let attributes = vec![
                ("ERROR_CODE".to_string(), last.code.to_string()),
                ("ERROR_MESSAGE".to_string(), message),
                (
                    "EXHAUSTED_RETRY_CONDITION".to_string(),
                    last.exhausted.as_str().to_string(),
                ),
                (
                    "RETRY_ATTEMPTS".to_string(),
                    delivery.attempts.saturating_sub(1).to_string(),
                ),
                ("RULE_ARN".to_string(), delivery.origin.clone()),
                (
                    "TARGET_ARN".to_string(),
                    crate::triggers::bus::plugin_arn(&delivery.tenant, &delivery.target),
                ),
            ];
            (event.to_string(), attributes)
        }
        Ok(Pending::Schedule { input, .. }) => (input, Vec::new()),
        // Unreadable: what the store holds, as it is.
        Err(_) => (delivery.event.clone(), Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claimed(kind: &str, event: String) -> ClaimedDelivery {
        ClaimedDelivery {
            seq: 1,
            tenant: "acme".into(),
            kind: kind.into(),
            target: "notifier".into(),
            event,
            depth: 1,
            attempts: 4,
            max_attempts: 4,
            expires_at: None,
            dead_letter: Some("dlq".into()),
            origin: "orquesta:acme:rule/default/paid".into(),
            created_at: 1_700_000_000_123,
            receipt: "r".into(),
            retry_schedule: None,
        }
    }

    #[test]
    fn a_bus_target_letter_is_the_event_with_eventbridges_attributes() {
        let pending = Pending::Bus {
            id: "e-1".into(),
            bus: "default".into(),
            source: "billing".into(),
            detail_type: "Paid".into(),
            detail: r#"{"order": 7}"#.into(),
            time: 5,
            // The target's transformation is what the plugin saw; the letter is the event.
            input: Some(r#"{"transformed": true}"#.into()),
        };
        let last = LastError {
            code: "SDK_CLIENT_ERROR",
            message: &"x".repeat(5000),
            exhausted: Exhausted::Attempts,
        };
        let (body, attributes) = letter(&claimed("plugin", pending.to_json()), &last);
        let event: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(event["detail"], serde_json::json!({ "order": 7 }));
        assert_eq!(event["detail-type"], "Paid");
        assert_eq!(event["account"], "acme");
        let get = |k: &str| {
            attributes
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("no {k}"))
        };
        assert_eq!(get("ERROR_CODE"), "SDK_CLIENT_ERROR");
        assert!(get("ERROR_MESSAGE").len() <= ERROR_MESSAGE_BYTES);
        assert_eq!(
            get("EXHAUSTED_RETRY_CONDITION"),
            "MaximumRetryAttemptsExhausted"
        );
        assert_eq!(get("RETRY_ATTEMPTS"), "3");
        assert_eq!(get("RULE_ARN"), "orquesta:acme:rule/default/paid");
        assert_eq!(get("TARGET_ARN"), "orquesta:acme:plugin/notifier");
    }

    #[test]
    fn a_topic_subscription_letter_is_snss_envelope() {
        let pending = Pending::Topic {
            id: "m-1".into(),
            topic: "news".into(),
            subject: Some("s".into()),
            body: "hello".into(),
            attributes: vec![("k".into(), "v".into())],
        };
        let last = LastError {
            code: "SDK_CLIENT_ERROR",
            message: "boom",
            exhausted: Exhausted::Age,
        };
        let (body, attributes) = letter(&claimed("plugin", pending.to_json()), &last);
        let doc: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(doc["Type"], "Notification");
        assert_eq!(doc["MessageId"], "m-1");
        assert_eq!(doc["TopicArn"], "orquesta:acme:news");
        assert_eq!(doc["Message"], "hello");
        assert_eq!(doc["Timestamp"], "2023-11-14T22:13:20.123Z");
        assert_eq!(doc["MessageAttributes"]["k"]["Value"], "v");
        assert!(attributes.is_empty());
        // A webhook's delivery already is the document.
        let (body, _) = letter(
            &claimed("webhook", "{\"Type\":\"Notification\"}".into()),
            &last,
        );
        assert_eq!(body, "{\"Type\":\"Notification\"}");
    }
}
