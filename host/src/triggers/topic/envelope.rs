//! SNS's notification document: what a queue subscription receives as its message body
//! (unless `raw_message_delivery`) and what a webhook subscription is POSTed, so a
//! consumer written for the cloud (`JSON.parse(record.body).Message`) reads it unchanged.

use serde_json::{Map, Value, json};

/// orquesta does not sign notifications: they never leave the host (a queue is the
/// tenant's own, a webhook is called by the host itself), and there is no certificate a
/// consumer could fetch. The signature fields are present, as SNS always sends them, with
/// these values; a consumer that verifies SNS signatures must not run against orquesta.
pub const SIGNATURE_VERSION: &str = "1";
pub const SIGNATURE: &str = "";
pub const SIGNING_CERT_URL: &str = "";
/// There is no unsubscribe endpoint: subscriptions live in the tenant file.
pub const UNSUBSCRIBE_URL: &str = "";

/// A topic's ARN-like id: `orquesta:TENANT:TOPIC` (the form of the rule ARNs bus targets
/// see), so a consumer that takes the part after the last `:` gets the topic's name.
pub fn topic_arn(tenant: &str, topic: &str) -> String {
    format!("orquesta:{tenant}:{topic}")
}

/// The most a notification document may take, in bytes: half again the tenant's message
/// cap (`limits.max_message_kb`; 384 KiB by default). The publication was held to the cap;
/// its wrapping adds the fixed keys (about 400 bytes) and JSON escaping, which a body
/// dense with quotes, backslashes or control characters can make up to six times larger.
/// Half again leaves room for the keys and the escaping of ordinary JSON bodies, and
/// keeps what a queue, the store or a webhook receives within a known bound.
pub fn max_document_bytes(max_message_bytes: usize) -> usize {
    max_message_bytes.saturating_add(max_message_bytes / 2)
}

/// `document`'s text, refused when it passes `max_document_bytes`.
pub fn bounded_text(document: &Value, max_message_bytes: usize) -> Result<String, String> {
    let text = document.to_string();
    let max = max_document_bytes(max_message_bytes);
    if text.len() > max {
        return Err(format!(
            "SNS's notification document of this publication would be {} bytes, past {max} \
             (half again limits.max_message_kb): its body or attributes hold too many \
             characters JSON escapes",
            text.len()
        ));
    }
    Ok(text)
}

/// What one publication is about.
pub struct Notice<'a> {
    pub id: &'a str,
    pub tenant: &'a str,
    pub topic: &'a str,
    pub subject: Option<&'a str>,
    pub body: &'a str,
    pub attributes: &'a [(String, String)],
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
}

/// ISO 8601 in UTC with milliseconds, as SNS writes `Timestamp`.
pub fn timestamp(time_ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(i64::try_from(time_ms).unwrap_or(i64::MAX))
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The notification document of `notice`, with SNS's keys: `Subject` only when the
/// publication had one, `MessageAttributes` only when it had attributes (each `{Type,
/// Value}`: `String.Array` for a value holding a JSON array, as filter policies read it,
/// otherwise `String`; the host keeps no other data types).
pub fn notification(notice: &Notice<'_>) -> Value {
    let mut doc = Map::new();
    doc.insert("Type".into(), json!("Notification"));
    doc.insert("MessageId".into(), json!(notice.id));
    doc.insert(
        "TopicArn".into(),
        json!(topic_arn(notice.tenant, notice.topic)),
    );
    if let Some(subject) = notice.subject {
        doc.insert("Subject".into(), json!(subject));
    }
    doc.insert("Message".into(), json!(notice.body));
    doc.insert("Timestamp".into(), json!(timestamp(notice.time_ms)));
    doc.insert("SignatureVersion".into(), json!(SIGNATURE_VERSION));
    doc.insert("Signature".into(), json!(SIGNATURE));
    doc.insert("SigningCertURL".into(), json!(SIGNING_CERT_URL));
    doc.insert("UnsubscribeURL".into(), json!(UNSUBSCRIBE_URL));
    if !notice.attributes.is_empty() {
        let typed = crate::pattern::attributes_document(notice.attributes);
        let attributes: Map<String, Value> = notice
            .attributes
            .iter()
            .map(|(name, value)| {
                let kind = if typed[name].is_array() {
                    "String.Array"
                } else {
                    "String"
                };
                (name.clone(), json!({ "Type": kind, "Value": value }))
            })
            .collect();
        doc.insert("MessageAttributes".into(), Value::Object(attributes));
    }
    Value::Object(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_has_sns_keys_and_types() {
        let attributes = vec![
            ("country".to_string(), "PE".to_string()),
            ("sports".to_string(), r#"["rugby", "tennis"]"#.to_string()),
        ];
        let doc = notification(&Notice {
            id: "m-1",
            tenant: "acme",
            topic: "news",
            subject: Some("hello"),
            body: r#"{"a": 1}"#,
            attributes: &attributes,
            time_ms: 1_700_000_000_123,
        });
        assert_eq!(
            doc,
            json!({
                "Type": "Notification",
                "MessageId": "m-1",
                "TopicArn": "orquesta:acme:news",
                "Subject": "hello",
                "Message": "{\"a\": 1}",
                "Timestamp": "2023-11-14T22:13:20.123Z",
                "SignatureVersion": "1",
                "Signature": "",
                "SigningCertURL": "",
                "UnsubscribeURL": "",
                "MessageAttributes": {
                    "country": { "Type": "String", "Value": "PE" },
                    "sports": { "Type": "String.Array", "Value": "[\"rugby\", \"tennis\"]" },
                },
            })
        );
        // No subject and no attributes: SNS leaves the keys out.
        let bare = notification(&Notice {
            id: "m-2",
            tenant: "acme",
            topic: "news",
            subject: None,
            body: "plain",
            attributes: &[],
            time_ms: 0,
        });
        assert!(bare.get("Subject").is_none(), "{bare}");
        assert!(bare.get("MessageAttributes").is_none(), "{bare}");
        assert_eq!(bare["Timestamp"], "1970-01-01T00:00:00.000Z");
    }

    /// Attack: a publication just under the cap whose every character JSON escapes
    /// (control characters: six bytes each; quotes and backslashes: two) in its body, its
    /// subject or its attributes cannot make a document past the bound; an ordinary
    /// near-cap JSON body still goes through.
    #[test]
    fn a_near_cap_publication_that_escapes_cannot_pass_the_bound() {
        let cap = 256 * 1024;
        let bound = max_document_bytes(cap);
        assert_eq!(bound, 384 * 1024);
        let near = cap - 64;
        let doc = |subject: Option<&str>, body: &str, attributes: &[(String, String)]| {
            notification(&Notice {
                id: "m",
                tenant: "acme",
                topic: "news",
                subject,
                body,
                attributes,
                time_ms: 0,
            })
        };
        for (what, document) in [
            ("control characters", doc(None, &"\u{1}".repeat(near), &[])),
            ("quotes", doc(None, &"\"".repeat(near), &[])),
            ("backslashes", doc(None, &"\\".repeat(near), &[])),
            ("a subject", doc(Some(&"\u{1f}".repeat(near)), "x", &[])),
            (
                "an attribute",
                doc(None, "x", &[("k".to_string(), "\"".repeat(near))]),
            ),
        ] {
            let err = bounded_text(&document, cap).unwrap_err();
            assert!(err.contains("past 393216"), "{what}: {err}");
        }
        // A JSON body of the cap, quotes a fifth of it, passes and stays within the bound.
        let mut body = String::from("[");
        while body.len() < near - 16 {
            body.push_str("\"abcdefgh\",");
        }
        body.push_str("\"z\"]");
        let text = bounded_text(&doc(Some("s"), &body, &[]), cap).expect("within the bound");
        assert!(text.len() <= bound && text.len() > near, "{}", text.len());
        // At the bound exactly, accepted; one byte more is not.
        let exact = doc(None, "", &[]).to_string().len();
        let fill = "x".repeat(bound - exact);
        assert!(bounded_text(&doc(None, &fill, &[]), cap).is_ok());
        let over = "x".repeat(bound - exact + 1);
        assert!(bounded_text(&doc(None, &over, &[]), cap).is_err());
    }
}
