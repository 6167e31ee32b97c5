//! Sending to a tenant's queue, from a plugin, the admin API, a topic subscription or a
//! bus rule: the queue's settings applied, the tenant's limits checked, then the store.

use super::wakes::QueueWakes;

use crate::capabilities::CapError;
use crate::capabilities::messaging::{OutgoingMessage, check_delay, check_message_size};
use crate::store::queue::NewMessage;
use crate::store::{Store, StoreError};
use crate::tenants::QueueConfig;

/// What a send is held to and marked with.
#[derive(Debug, Clone, Copy)]
pub struct Sending {
    /// The tenant's `limits.max_message_bytes()`.
    pub max_bytes: usize,
    /// The tenant's `limits.queue_depth`: messages one queue may hold.
    pub max_depth: u32,
    /// The chain depth of what is sent (0 when no plugin sends it).
    pub depth: u32,
}

/// Sends a message to one of `tenant`'s queues, with its settings applied.
pub async fn send(
    store: &Store,
    wakes: &QueueWakes,
    tenant: &str,
    queues: &std::collections::BTreeMap<String, QueueConfig>,
    queue: &str,
    sending: Sending,
    message: OutgoingMessage,
) -> Result<String, CapError> {
    let mut ids = send_many(store, wakes, tenant, queues, queue, sending, vec![message]).await?;
    Ok(ids.pop().unwrap_or_default())
}

/// Sends `messages` to one queue in one transaction: every message is checked first, and
/// either all are sent or none. Their ids, in order.
pub async fn send_many(
    store: &Store,
    wakes: &QueueWakes,
    tenant: &str,
    queues: &std::collections::BTreeMap<String, QueueConfig>,
    queue: &str,
    sending: Sending,
    messages: Vec<OutgoingMessage>,
) -> Result<Vec<String>, CapError> {
    let config = queues.get(queue).ok_or_else(|| {
        CapError::Invalid(format!("queue `{queue}` is not one of the tenant's queues"))
    })?;
    let count = messages.len();
    let new = messages
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            prepare(config, queue, sending, m).map_err(|e| match (e, count) {
                (e, 1) => e,
                (CapError::Invalid(why), _) => CapError::Invalid(format!("message {i}: {why}")),
                (e, _) => e,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let retention_ms = u64::from(config.retention_seconds) * 1000;
    let ids = store
        .queue_send_many(
            tenant,
            queue,
            new,
            retention_ms,
            Some(sending.max_depth.into()),
        )
        .await
        .map_err(|e| match e {
            StoreError::QueueFull(why) => CapError::Denied(why),
            e => CapError::Failed(format!("queue `{queue}`: {e}")),
        })?;
    metrics::counter!("orquesta_queue_sent_total", "tenant" => tenant.to_string(), "queue" => queue.to_string())
        .increment(ids.len() as u64);
    wakes.wake(tenant, queue);
    Ok(ids)
}

/// A message checked against its queue's settings, ready for the store.
fn prepare(
    config: &QueueConfig,
    queue: &str,
    sending: Sending,
    message: OutgoingMessage,
) -> Result<NewMessage, CapError> {
    // As SQS counts: the body and every attribute's name and value.
    let size = message.body.len()
        + message
            .attributes
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>();
    check_message_size("a queue message", size, sending.max_bytes)?;
    // SQS refuses U+0000 too, and PostgreSQL's text cannot hold it.
    let texts = [&message.body]
        .into_iter()
        .chain(message.attributes.iter().flat_map(|(k, v)| [k, v]))
        .chain(message.group_id.as_ref())
        .chain(message.deduplication_id.as_ref());
    for text in texts {
        if text.contains('\0') {
            return Err(CapError::Invalid(
                "message bodies, attributes and ids cannot hold the NUL character (U+0000)".into(),
            ));
        }
    }
    match (config.fifo, &message.group_id) {
        (true, None) => {
            return Err(CapError::Invalid(format!(
                "queue `{queue}` is FIFO: every message needs a group id"
            )));
        }
        (false, Some(_)) => {
            return Err(CapError::Invalid(format!(
                "queue `{queue}` is not FIFO: group ids order FIFO queues only"
            )));
        }
        _ => {}
    }
    check_delay(message.delay_seconds)?;
    // As SQS: a message's own delay replaces the queue's default. The WIT's delay is a
    // plain u32, so 0 stands for "none given" and takes the queue's (docs/DECISIONS.md).
    let delay_s = match message.delay_seconds {
        0 => config.delay_seconds,
        own => own,
    };
    let delay_s = u64::from(delay_s);
    Ok(NewMessage {
        body: message.body,
        attributes: message.attributes,
        group_id: message.group_id,
        dedup_id: message.deduplication_id,
        delay_ms: delay_s * 1000,
        depth: sending.depth,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delayed(own: u32, queue: u32) -> Result<u64, CapError> {
        let config: QueueConfig = toml::from_str(&format!("delay_seconds = {queue}")).unwrap();
        let message = OutgoingMessage {
            queue: "q".into(),
            body: "x".into(),
            delay_seconds: own,
            attributes: Vec::new(),
            group_id: None,
            deduplication_id: None,
        };
        let sending = Sending {
            max_bytes: 256 << 10,
            max_depth: 10,
            depth: 0,
        };
        prepare(&config, "q", sending, message).map(|m| m.delay_ms)
    }

    #[test]
    fn a_messages_own_delay_replaces_the_queues_up_to_15_minutes() {
        assert_eq!(delayed(5, 60).unwrap(), 5_000, "shorter than the queue's");
        assert_eq!(
            delayed(120, 60).unwrap(),
            120_000,
            "longer than the queue's"
        );
        assert_eq!(delayed(0, 60).unwrap(), 60_000, "none given: the queue's");
        assert_eq!(delayed(900, 0).unwrap(), 900_000);
        for refused in [901, 99_999_999, u32::MAX] {
            match delayed(refused, 0) {
                Err(CapError::Invalid(why)) => assert!(why.contains("at most 900"), "{why}"),
                other => panic!("a delay of {refused} s: {other:?}"),
            }
        }
    }
}
