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
            } => Event::Bus(BusEvent {
                id,
                bus,
                source,
                detail_type,
                detail,
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
