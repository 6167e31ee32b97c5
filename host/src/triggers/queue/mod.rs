//! Queues in the service: plugins send through `messaging`, the admin API sends and
//! inspects, and for every queue with a `consumer`, `max_concurrency` consumer tasks per
//! host deliver batches to its plugin, as Lambda's SQS event source does: success
//! deletes the batch, a failure (error, trap, timeout) leaves it to come back after the
//! visibility timeout, a `batch` answer fails only the ids it names, and a message
//! received more than `max_receive_count` times moves to the dead-letter queue instead
//! of being delivered.

pub mod send;
mod wakes;

pub use send::{Sending, send, send_many};
pub use wakes::QueueWakes;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::app::App;
use crate::bindings::handler::{Event, QueueMessage, Response};
use crate::store::Store;
use crate::store::queue::Delivered;

/// An idle consumer looks again this often (messages sent on this host wake it at once;
/// this bounds the wait for messages sent by other hosts).
const IDLE_POLL: Duration = Duration::from_millis(200);
/// After a store error, a consumer waits this long before trying again.
const ERROR_BACKOFF: Duration = Duration::from_secs(1);
/// How often a consumer refreshes its queue's depth and age gauges.
const GAUGES_EVERY: Duration = Duration::from_secs(5);
/// How often the supervisor looks for queues that gained a consumer.
const SUPERVISE_EVERY: Duration = Duration::from_millis(500);

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
        // The same sweep frees the chunks of blob writes that died with their host.
        if matches!(app.services.blobs, crate::store::BlobBackend::Store) {
            match app.services.store.blob_sweep_abandoned().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(chunks = n, "dropped abandoned blob chunks"),
                Err(e) => tracing::warn!(error = %e, "cannot drop abandoned blob chunks"),
            }
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
    let sent_here = app.services.wakes.of(&tenant, &queue);
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
        let wake = sent_here.notified();
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
            if crate::triggers::recursion::past_bound(message.depth) {
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
    crate::triggers::recursion::stopped(tenant, "queue", queue);
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
    runtime: &crate::app::tenants::TenantRuntime,
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

/// Queue consumers, and the host's expiry sweeper.
pub struct Queues;

impl super::Trigger for Queues {
    fn name(&self) -> &'static str {
        "queue"
    }

    fn run(&self, app: Arc<App>, stop: watch::Receiver<bool>) -> Option<super::Run> {
        Some(Box::pin(supervise(app, stop)))
    }
}
