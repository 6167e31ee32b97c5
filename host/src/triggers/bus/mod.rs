//! The event bus trigger (EventBridge): an event goes to the targets of every rule whose
//! pattern matches. Queue targets are written before the call returns, workflow targets
//! start an execution, plugin targets become deliveries in the store.

use serde_json::{Value, json};

use super::deliveries::pending::Pending;
use super::fanout::{LOG_LINE, TenantFanout, now_ms};
use crate::capabilities::messaging::{OutgoingEvent, check_message_size};
use crate::capabilities::{Caller, CapError};
use crate::pattern::Numbers;
use crate::tenants::Target;

pub(crate) async fn put_event(
    fanout: &TenantFanout,
    caller: &Caller<'_>,
    event: OutgoingEvent,
) -> Result<String, CapError> {
    let bus = fanout.buses.get(&event.bus).ok_or_else(|| {
        CapError::Invalid(format!(
            "bus `{}` is not one of the tenant's buses",
            event.bus
        ))
    })?;
    // EventBridge counts the whole entry: source, detail type and detail.
    let size = event.source.len() + event.detail_type.len() + event.detail.len();
    check_message_size("a bus event", size, fanout.limits.max_message_bytes())?;
    let depth = caller.depth;
    let detail: Value = serde_json::from_str(&event.detail)
        .map_err(|e| CapError::Invalid(format!("an event's detail must be JSON: {e}")))?;
    let id = uuid::Uuid::new_v4().to_string();
    let time = now_ms();
    let envelope = envelope(
        &fanout.tenant,
        &id,
        &event.source,
        &event.detail_type,
        time,
        detail,
    );
    let ingestion_time = chrono::DateTime::from_timestamp_millis(time as i64)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default();
    for rule in &bus.rules {
        let pattern = rule
            .pattern()
            .map_err(|e| CapError::Invalid(e.to_string()))?;
        if !pattern.matches(&envelope, Numbers::Json) {
            continue;
        }
        let labels = [
            ("tenant", fanout.tenant.clone()),
            ("bus", event.bus.clone()),
            ("rule", rule.name.clone()),
        ];
        metrics::counter!("orquesta_bus_matches_total", &labels).increment(1);
        let rule_arn = format!(
            "orquesta:{}:rule/{}/{}",
            fanout.tenant, event.bus, rule.name
        );
        let cx = crate::tenants::transform::Context {
            event: &envelope,
            rule_name: &rule.name,
            rule_arn: &rule_arn,
            ingestion_time: &ingestion_time,
            max_bytes: fanout.limits.max_message_bytes(),
        };
        for target in &rule.targets {
            // What the target receives: the event, or its `input*` transformation.
            let input = target.input_for(&cx).map_err(|e| {
                CapError::Invalid(format!("bus `{}` rule `{}`: {e}", event.bus, rule.name))
            })?;
            let transformed = target.transforms();
            let input_text = match &input {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            match target
                .target()
                .map_err(|e| CapError::Invalid(e.to_string()))?
            {
                Target::Queue(q) => fanout.to_queue(q, input_text, Vec::new(), depth).await?,
                Target::Plugin(p) => {
                    let pending = Pending::Bus {
                        id: id.clone(),
                        bus: event.bus.clone(),
                        source: event.source.clone(),
                        detail_type: event.detail_type.clone(),
                        detail: event.detail.clone(),
                        time,
                        // Always JSON (a string result is a JSON string), as the
                        // contract's `detail` is and as Lambda receives it.
                        input: transformed.then(|| input.to_string()),
                    };
                    let policy = target.delivery_policy(rule_arn.clone());
                    fanout.to_plugin(p, &pending, depth, "bus", policy).await?;
                }
                Target::Log => {
                    if fanout.logs.admit() {
                        tracing::info!(
                            tenant = %fanout.tenant, bus = %event.bus, rule = %rule.name,
                            event = %crate::text::escape_within(&input_text, LOG_LINE),
                            "bus event"
                        );
                    }
                }
                Target::Workflow(w) => {
                    fanout.to_workflow(w, input, None, depth).await?;
                }
                Target::Webhook(_) => {}
            }
        }
    }
    Ok(id)
}

/// EventBridge's envelope of an event, as rules and targets see it (and a dead-letter
/// queue receives it).
pub(crate) fn envelope(
    tenant: &str,
    id: &str,
    source: &str,
    detail_type: &str,
    time: u64,
    detail: Value,
) -> Value {
    json!({
        "version": "0",
        "id": id,
        "detail-type": detail_type,
        "source": source,
        "account": tenant,
        "time": time,
        "region": "local",
        "resources": [],
        "detail": detail,
    })
}

/// The ARN-like id of a rule's plugin target, as a dead letter's `TARGET_ARN` names it.
pub(crate) fn plugin_arn(tenant: &str, plugin: &str) -> String {
    format!("orquesta:{tenant}:plugin/{plugin}")
}

/// Event buses: events are matched as plugins and the admin API put them; what waits is
/// made by `deliveries`.
pub struct Buses;

impl super::Trigger for Buses {
    fn name(&self) -> &'static str {
        "bus"
    }
}
