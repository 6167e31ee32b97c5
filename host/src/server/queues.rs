//! Queues in the service: plugins send through `messaging`, the admin API sends and
//! inspects, and for every queue with a `consumer`, `max_concurrency` consumer tasks per
//! host deliver batches to its plugin, as Lambda's SQS event source does: success
//! deletes the batch, a failure (error, trap, timeout) leaves it to come back after the
//! visibility timeout, a `batch` answer fails only the ids it names, and a message
//! received more than `max_receive_count` times moves to the dead-letter queue instead
//! of being delivered.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};

use super::state::App;
use crate::bindings::handler::{Event, QueueMessage, Response};
use crate::capabilities::CapError;
use crate::capabilities::messaging::{OutgoingMessage, check_delay, check_message_size};
use crate::store::queue::{Delivered, NewMessage};
use crate::store::{Store, StoreError};
use crate::tenants::QueueConfig;

/// An idle consumer looks again this often (messages sent on this host wake it at once;
/// this bounds the wait for messages sent by other hosts).
const IDLE_POLL: Duration = Duration::from_millis(200);
/// After a store error, a consumer waits this long before trying again.
const ERROR_BACKOFF: Duration = Duration::from_secs(1);
/// How often a consumer refreshes its queue's depth and age gauges.
const GAUGES_EVERY: Duration = Duration::from_secs(5);
/// How often the supervisor looks for queues that gained a consumer.
const SUPERVISE_EVERY: Duration = Duration::from_millis(500);

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
    wake: &Notify,
    tenant: &str,
    queues: &std::collections::BTreeMap<String, QueueConfig>,
    queue: &str,
    sending: Sending,
    message: OutgoingMessage,
) -> Result<String, CapError> {
    let mut ids = send_many(store, wake, tenant, queues, queue, sending, vec![message]).await?;
    Ok(ids.pop().unwrap_or_default())
}

/// Sends `messages` to one queue in one transaction: every message is checked first, and
/// either all are sent or none. Their ids, in order.
pub async fn send_many(
    store: &Store,
    wake: &Notify,
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
    wake.notify_waiters();
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

/// Starts a consumer for every queue with a `consumer`, as tenants come and go, and the
/// host's expiry sweeper, until `stop` turns true; then waits for the batches in flight.
pub async fn supervise(app: Arc<App>, mut stop: watch::Receiver<bool>) {
    let sweeper = tokio::spawn(sweep(app.clone(), stop.clone()));
    let mut workers: HashMap<(String, String, u32), tokio::task::JoinHandle<()>> = HashMap::new();
    while !*stop.borrow() {
        for tenant in app.tenants.names() {
            let Some(runtime) = app.tenants.get(&tenant) else {
                continue;
            };
            for (queue, config) in &runtime.config.queues {
                let Some(consumer) = &config.consumer else {
                    continue;
                };
                for slot in 0..consumer.max_concurrency {
                    let key = (tenant.clone(), queue.clone(), slot);
                    if workers.get(&key).is_none_or(|w| w.is_finished()) {
                        let task = consume(
                            app.clone(),
                            tenant.clone(),
                            queue.clone(),
                            slot,
                            stop.clone(),
                        );
                        workers.insert(key, tokio::spawn(task));
                    }
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(SUPERVISE_EVERY) => {}
            _ = stop.changed() => {}
        }
    }
    for (_, worker) in workers {
        let _ = worker.await;
    }
    let _ = sweeper.await;
}

/// Deletes every queue's messages past their retention (a consumer or not: dead-letter
/// and alert queues too) and deduplication ids past their window, every
/// `queue_sweep_ms`, until `stop`. Each host sweeps; one would do, none is required for
/// correctness: claims, listings and counts already leave expired messages out.
async fn sweep(app: Arc<App>, mut stop: watch::Receiver<bool>) {
    let every = Duration::from_millis(app.config.queue_sweep_ms.max(1));
    while !*stop.borrow() {
        match app.services.store.queue_sweep().await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(messages = n, "dropped queue messages past their retention");
                metrics::counter!("orquesta_queue_expired_total").increment(n);
            }
            Err(e) => tracing::warn!(error = %e, "cannot drop expired queue messages"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => {}
        }
    }
}

/// One of a queue's consumers on this host (`slot` of its `max_concurrency`): claims a
/// batch, delivers it, settles it, repeats. Ends when the queue loses its consumer, the
/// tenant goes or the concurrency drops below `slot` (the supervisor starts it again if
/// they come back). Slot 0 also keeps the queue's gauges.
async fn consume(
    app: Arc<App>,
    tenant: String,
    queue: String,
    slot: u32,
    stop: watch::Receiver<bool>,
) {
    let store = app.services.store.clone();
    let mut last_gauges: Option<Instant> = None;
    let labels = [("tenant", tenant.clone()), ("queue", queue.clone())];
    // Looked up once: a lookup by label allocates its labels on every batch.
    let deliveries = metrics::counter!("orquesta_queue_deliveries_total", &labels);
    let batches = metrics::counter!("orquesta_queue_batches_total", &labels);
    // A batch done whole, deleted in the same step as the next claim (one query on
    // SQLite, one transaction on PostgreSQL).
    let mut done: Option<Done> = None;
    while !*stop.borrow() {
        let Some(runtime) = app.tenants.get(&tenant) else {
            break;
        };
        let Some(config) = runtime.config.queues.get(&queue) else {
            break;
        };
        let Some(consumer) = &config.consumer else {
            break;
        };
        if slot >= consumer.max_concurrency {
            break;
        }
        if slot == 0 && last_gauges.is_none_or(|t| t.elapsed() > GAUGES_EVERY) {
            last_gauges = Some(Instant::now());
            if let Ok(stats) = store.queue_stats(&tenant, &queue).await {
                metrics::gauge!("orquesta_queue_depth", &labels).set(stats.visible as f64);
                metrics::gauge!("orquesta_queue_in_flight", &labels).set(stats.in_flight as f64);
                metrics::gauge!("orquesta_queue_oldest_age_seconds", &labels)
                    .set(stats.oldest_age_ms as f64 / 1000.0);
            }
        }
        let wake = app.services.wake.notified();
        let visibility_ms = u64::from(config.visibility_timeout_seconds) * 1000;
        let done_ids: Vec<&str> = done
            .iter()
            .flat_map(|d| d.ids.iter().map(String::as_str))
            .collect();
        let settle = done
            .as_ref()
            .map(|d| (d.receipt.as_str(), done_ids.as_slice()));
        let batch = match store
            .queue_settle_and_claim(settle, &tenant, &queue, consumer.batch_size, visibility_ms)
            .await
        {
            Ok(batch) => batch,
            Err(e) => {
                // The finished batch stays in `done`: its delete is tried again.
                tracing::warn!(%tenant, %queue, error = %e, "cannot claim messages");
                tokio::time::sleep(ERROR_BACKOFF).await;
                continue;
            }
        };
        done = None;
        if batch.is_empty() {
            tokio::select! {
                _ = wake => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
            }
            continue;
        }
        // The dead-letter queue and its retention: the tenant's validation makes it one of
        // its own queues.
        let dead_letter = config.dead_letter.as_ref().map(|dl| {
            let dlq_config = runtime.config.queues.get(&dl.queue).unwrap_or(config);
            (dl, u64::from(dlq_config.retention_seconds) * 1000)
        });
        let mut deliver = Vec::with_capacity(batch.len());
        for message in batch {
            if super::recursion::past_bound(message.depth) {
                let dlq = dead_letter.map(|(dl, retention)| (dl.queue.as_str(), retention));
                stop_loop(&store, dlq, &tenant, &queue, &message).await;
                continue;
            }
            match dead_letter {
                Some((dl, retention)) if message.receive_count > dl.max_receive_count => {
                    let dlq = (dl.queue.as_str(), retention);
                    match store.queue_dead_letter(&message, &queue, dlq).await {
                        Ok(()) => {
                            tracing::warn!(%tenant, %queue, id = %message.id, dlq = %dl.queue, "message moved to the dead-letter queue");
                            metrics::counter!("orquesta_queue_dead_lettered_total", &labels)
                                .increment(1);
                        }
                        Err(e) => tracing::warn!(%tenant, %queue, error = %e, "cannot dead-letter"),
                    }
                }
                _ => deliver.push(message),
            }
        }
        if deliver.is_empty() {
            continue;
        }
        deliveries.increment(deliver.len() as u64);
        done = deliver_batch(&app, &runtime, &queue, &consumer.plugin, deliver).await;
        batches.increment(1);
    }
    // Stopping (or the queue lost its consumer): a finished batch is still deleted, so
    // it is not delivered again.
    if let Some(d) = done {
        let ids: Vec<&str> = d.ids.iter().map(String::as_str).collect();
        if let Err(e) = store.queue_delete_claim(&d.receipt, &ids).await {
            tracing::warn!(%tenant, %queue, error = %e, "cannot settle a batch");
        }
    }
}

/// A message past the recursion bound is not delivered: it goes to the dead-letter queue
/// if the queue has one (as Lambda does), or is dropped.
async fn stop_loop(
    store: &Store,
    dead_letter: Option<(&str, u64)>,
    tenant: &str,
    queue: &str,
    message: &Delivered,
) {
    super::recursion::stopped(tenant, "queue", queue);
    let settled = match dead_letter {
        Some(dlq) => store.queue_dead_letter(message, queue, dlq).await,
        None => store.queue_delete(message).await.map(|_| ()),
    };
    if let Err(e) = settled {
        tracing::warn!(%tenant, %queue, id = %message.id, error = %e, "cannot settle a message");
    }
}

/// A batch its consumer completed: every message delivered with `receipt` is deleted.
struct Done {
    receipt: String,
    ids: Vec<String>,
}

async fn deliver_batch(
    app: &App,
    runtime: &super::tenants::TenantRuntime,
    queue: &str,
    plugin_name: &str,
    batch: Vec<Delivered>,
) -> Option<Done> {
    let store = &app.services.store;
    let tenant = runtime.name.as_str();
    let target = runtime.plugins.get(plugin_name).cloned().zip(
        runtime
            .component_of(plugin_name)
            .and_then(|c| app.plugins.get(&c)),
    );
    let Some((ctx, plugin)) = target else {
        // Not deployed yet: the messages come back after their visibility timeout.
        for m in &batch {
            let _ = store
                .queue_failed(m, &format!("plugin `{plugin_name}` is not deployed"))
                .await;
        }
        return None;
    };
    // The batch's messages may come from several chains: the longest counts.
    let depth = batch.iter().map(|m| m.depth).max().unwrap_or_default();
    let event = Event::Queue(
        batch
            .iter()
            .map(|m| QueueMessage {
                id: m.id.clone(),
                queue: queue.to_string(),
                body: m.body.clone(),
                attributes: m.attributes.clone(),
                group_id: m.group_id.clone(),
                receive_count: m.receive_count,
                sent_at: m.sent_at,
            })
            .collect(),
    );
    let outcome = app
        .engine
        .invoke_in_chain(&plugin, ctx, &event, depth)
        .await;
    let failed: Result<Vec<String>, String> = match outcome {
        Ok(Response::Batch(ids)) => Ok(ids),
        Ok(_) => Ok(Vec::new()),
        Err(e) => Err(e.to_string()),
    };
    // A batch done whole is deleted in one statement by its claim's receipt, in the
    // same step as the consumer's next claim.
    if let (Ok(ids), Some(first)) = (&failed, batch.first())
        && ids.is_empty()
    {
        return Some(Done {
            receipt: first.receipt.clone(),
            ids: batch.into_iter().map(|m| m.id).collect(),
        });
    }
    for m in &batch {
        let result = match &failed {
            Err(why) => store.queue_failed(m, why).await,
            Ok(ids) if ids.contains(&m.id) => {
                store
                    .queue_failed(m, "reported failed by the consumer")
                    .await
            }
            Ok(_) => store.queue_delete(m).await.map(|_| ()),
        };
        if let Err(e) = result {
            tracing::warn!(%tenant, %queue, id = %m.id, error = %e, "cannot settle a message");
        }
    }
    None
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
