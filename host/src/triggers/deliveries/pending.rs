//! A delivery as the trigger that writes it and the worker that makes it agree on it.

use serde::{Deserialize, Serialize};

use crate::bindings::handler::{BusEvent, Event, Notification, ScheduledTick};

/// A webhook's answer must come within this.
pub const WEBHOOK_TIMEOUT_MS: u32 = 10_000;
/// Added to a delivery's time limit for its lease: an invocation may first wait for its
/// tenant's turn.
pub const LEASE_MARGIN_MS: u64 = 60_000;
/// What a plugin delivery carries, as the store keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Pending {
    Topic {
        id: String,
        topic: String,
        subject: Option<String>,
        body: String,
        attributes: Vec<(String, String)>,
    },
    Bus {
        id: String,
        bus: String,
        source: String,
        detail_type: String,
        detail: String,
        time: u64,
        /// What the rule target's `input`, `input_path` or `input_transformer` made of
        /// the event (JSON text): the plugin receives it as the event's `detail`, as a
        /// Lambda target receives the transformed JSON as its event. A dead letter still
        /// carries the event itself. Absent in deliveries written before it existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input: Option<String>,
    },
    Schedule {
        schedule: String,
        scheduled_at: u64,
        input: String,
    },
}

impl Pending {
    pub fn to_json(&self) -> String {
        // A value of strings and numbers always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub(crate) fn into_event(self) -> Event {
        match self {
            Pending::Topic {
                id,
                topic,
                subject,
                body,
                attributes,
            } => Event::Topic(Notification {
                id,
                topic,
                subject,
                body,
                attributes,
            }),
            Pending::Bus {
                id,
                bus,
                source,
                detail_type,
                detail,
                time,
                input,
            } => Event::Bus(BusEvent {
                id,
                bus,
                source,
                detail_type,
                detail: input.unwrap_or(detail),
                time,
            }),
            Pending::Schedule {
                schedule,
                scheduled_at,
                input,
            } => Event::Schedule(ScheduledTick {
                schedule,
                scheduled_at,
                input,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A transformed bus delivery reaches the plugin as a bus event whose `detail` is
    /// the transformation; the other fields are the event's. One written before `input`
    /// existed still reads.
    #[test]
    fn a_bus_delivery_carries_its_targets_input_as_detail() {
        let pending = Pending::Bus {
            id: "e-1".into(),
            bus: "default".into(),
            source: "billing".into(),
            detail_type: "Paid".into(),
            detail: r#"{"order":7}"#.into(),
            time: 5,
            input: Some(r#""order 7""#.into()),
        };
        let Event::Bus(e) = pending.into_event() else {
            panic!("not a bus event");
        };
        assert_eq!(
            (e.id.as_str(), e.source.as_str(), e.detail_type.as_str()),
            ("e-1", "billing", "Paid")
        );
        assert_eq!(e.detail, r#""order 7""#);
        let old = r#"{"type":"bus","id":"e","bus":"b","source":"s","detail_type":"d","detail":"{}","time":1}"#;
        let Ok(Pending::Bus { input: None, .. }) = serde_json::from_str::<Pending>(old) else {
            panic!("an old delivery does not read");
        };
        let plain = Pending::Bus {
            id: "e".into(),
            bus: "b".into(),
            source: "s".into(),
            detail_type: "d".into(),
            detail: "{}".into(),
            time: 1,
            input: None,
        };
        assert_eq!(plain.to_json(), old);
    }
}
