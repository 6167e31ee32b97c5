//! Testing one pattern or filter policy against one event, as EventBridge's
//! `TestEventPattern` does: the admin API's `POST /admin/v1/test-event-pattern` and
//! `orquesta test-pattern` share this, so both answer as a rule or subscription would.

use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::{Dialect, Numbers, Pattern, PatternError, attributes_document};

/// What is tested.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(example = "event_pattern")]
pub enum Kind {
    /// An EventBridge event pattern, against an event with EventBridge's envelope.
    #[default]
    EventPattern,
    /// An SNS filter policy on message attributes (`{"name": "value", ...}`).
    FilterPolicy,
    /// An SNS filter policy on the message body (`filter_scope = "body"`).
    FilterPolicyBody,
}

/// Why a test has no answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TestError {
    #[error("Event pattern is not valid. Reason: {}", located(.0))]
    Pattern(PatternError),
    #[error("Invalid parameter: FilterPolicy: {}", located(.0))]
    Policy(PatternError),
    #[error("Parameter Event is not valid: {0}")]
    Event(String),
}

/// The reason, after the path within the pattern when there is one.
fn located(e: &PatternError) -> String {
    if e.path.is_empty() {
        e.reason.clone()
    } else {
        e.to_string()
    }
}

/// The fields `TestEventPattern` requires of its event.
const ENVELOPE: [&str; 7] = [
    "id",
    "account",
    "source",
    "time",
    "region",
    "resources",
    "detail-type",
];

/// A JSON value, or a string holding one (the cloud's APIs take both as strings).
fn document(v: &Value, what: &str) -> Result<Value, String> {
    match v {
        Value::String(text) => {
            serde_json::from_str(text).map_err(|e| format!("the {what} is not JSON: {e}"))
        }
        other => Ok(other.clone()),
    }
}

/// Whether `event` matches `pattern`.
pub fn test_event(kind: Kind, pattern: &Value, event: &Value) -> Result<bool, TestError> {
    let dialect = match kind {
        Kind::EventPattern => Dialect::EventBridge,
        Kind::FilterPolicy => Dialect::SnsAttributes,
        Kind::FilterPolicyBody => Dialect::SnsBody,
    };
    let refuse = |e: PatternError| match kind {
        Kind::EventPattern => TestError::Pattern(e),
        _ => TestError::Policy(e),
    };
    let pattern = document(pattern, "pattern").map_err(|reason| {
        refuse(PatternError {
            path: String::new(),
            reason,
        })
    })?;
    let compiled = Pattern::parse(&pattern, dialect).map_err(refuse)?;
    match kind {
        Kind::EventPattern => {
            let event = document(event, "event").map_err(TestError::Event)?;
            let Value::Object(fields) = &event else {
                return Err(TestError::Event("the event is a JSON object".into()));
            };
            if let Some(missing) = ENVELOPE.iter().find(|f| !fields.contains_key(**f)) {
                return Err(TestError::Event(format!(
                    "the event has no `{missing}` (required: {})",
                    ENVELOPE.join(", ")
                )));
            }
            Ok(compiled.matches(&event, Numbers::Json))
        }
        Kind::FilterPolicy => {
            let attributes = attributes_of(event).map_err(TestError::Event)?;
            Ok(compiled.matches(&attributes_document(&attributes), Numbers::FromStrings))
        }
        // A body that is not JSON matches no body policy, as in delivery.
        Kind::FilterPolicyBody => Ok(document(event, "message body")
            .is_ok_and(|body| compiled.matches(&body, Numbers::Json))),
    }
}

/// Message attributes from `{"name": value}`: a string; a number or boolean (its text);
/// an array (a `String.Array`); or SNS's own `{"Type": .., "Value": ..}`.
fn attributes_of(event: &Value) -> Result<Vec<(String, String)>, String> {
    let Value::Object(map) = event else {
        return Err("message attributes are a JSON object of names and values".into());
    };
    map.iter()
        .map(|(name, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(_) | Value::Bool(_) | Value::Array(_) => v.to_string(),
                Value::Object(o) => match o.get("Value") {
                    Some(Value::String(s)) => s.clone(),
                    _ => {
                        return Err(format!(
                            "attribute `{name}`: an object gives its \"Value\" as a string"
                        ));
                    }
                },
                Value::Null => return Err(format!("attribute `{name}` has no value")),
            };
            Ok((name.clone(), text))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ec2(state: &str) -> Value {
        json!({"version": "0", "id": "6a7e8feb", "detail-type": "EC2 Instance State-change Notification",
            "source": "aws.ec2", "account": "111122223333", "time": "2017-12-22T18:43:48Z",
            "region": "us-west-1", "resources": [], "detail": {"state": state}})
    }

    #[test]
    fn answers_as_the_rule_or_subscription_would() {
        let pattern = json!({"source": ["aws.ec2"], "detail": {"state": ["terminated"]}});
        for (kind, pattern, event, want) in [
            (Kind::EventPattern, pattern.clone(), ec2("terminated"), true),
            (Kind::EventPattern, pattern.clone(), ec2("running"), false),
            // Strings hold JSON, as in the cloud's API.
            (
                Kind::EventPattern,
                Value::String(pattern.to_string()),
                Value::String(ec2("terminated").to_string()),
                true,
            ),
            (
                Kind::FilterPolicy,
                json!({"customer_interests": ["rugby"]}),
                json!({"customer_interests": {"Type": "String.Array", "Value": "[\"soccer\", \"rugby\"]"}}),
                true,
            ),
            (
                Kind::FilterPolicy,
                json!({"price_usd": [{"numeric": [">", 100]}]}),
                json!({"price_usd": 210.75}),
                true,
            ),
            (
                Kind::FilterPolicy,
                json!({"customer_interests": ["rugby"]}),
                json!({"customer_interests": ["tennis"]}),
                false,
            ),
            (
                Kind::FilterPolicyBody,
                json!({"store": ["example_corp"]}),
                json!({"store": "example_corp"}),
                true,
            ),
            (
                Kind::FilterPolicyBody,
                json!({"store": ["example_corp"]}),
                json!("not json"),
                false,
            ),
        ] {
            assert_eq!(
                test_event(kind, &pattern, &event),
                Ok(want),
                "{kind:?} {pattern} {event}"
            );
        }
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        let e = test_event(Kind::EventPattern, &json!({"a": "x"}), &ec2("x")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Event pattern is not valid. Reason: .a: \"a\" must be an object or an array"
        );
        let e = test_event(
            Kind::FilterPolicy,
            &json!({"a": [{"wildcard": "*"}]}),
            &json!({}),
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with(
                "Invalid parameter: FilterPolicy: .a: Unrecognized match type wildcard"
            ),
            "{e}"
        );
        let e =
            test_event(Kind::EventPattern, &json!({"a": ["x"]}), &json!({"a": "x"})).unwrap_err();
        assert!(
            matches!(&e, TestError::Event(m) if m.contains("no `id`")),
            "{e}"
        );
        let e = test_event(Kind::EventPattern, &json!("{not json"), &ec2("x")).unwrap_err();
        assert!(matches!(e, TestError::Pattern(_)), "{e}");
        let e = test_event(
            Kind::FilterPolicy,
            &json!({"a": ["x"]}),
            &json!({"a": null}),
        )
        .unwrap_err();
        assert!(matches!(e, TestError::Event(_)), "{e}");
    }
}
