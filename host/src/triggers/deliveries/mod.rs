//! Topic, bus and schedule deliveries to plugins and webhooks, made in the background
//! from the store (`store::delivery`): they survive a restart, and while they wait their
//! bodies are on disk, not in memory. One worker per host claims due deliveries, at most
//! `DELIVERIES_IN_FLIGHT` at once and a tenant's `limits.concurrency` of them per tenant,
//! so a slow target holds only its own share. A failed delivery is tried again after a
//! pause that doubles each time (1 s, 2 s, 4 s, ... at most 5 minutes, each drawn
//! between half and all of that: EventBridge's jitter), or on its own schedule (a
//! webhook subscription's SNS delivery policy), as its policy allows (`tenants::delivery`: attempts and maximum age, kept with the delivery); one
//! that fails past it goes to its dead-letter queue (`dead_letter`) or is dropped, with a
//! log line and `orquesta_deliveries_failed_total`, and stays listed as failed for the
//! admin API for `FAILED_KEPT_MS`. At least once: a host that stops mid-delivery leaves it
//! to be made again.

pub mod dead_letter;
pub mod pending;

pub use pending::{LEASE_MARGIN_MS, Pending, WEBHOOK_TIMEOUT_MS};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::app::App;
use crate::capabilities::Caller;
use crate::capabilities::http::Request;
use crate::capabilities::messaging::OutgoingMessage;
use crate::engine::InvokeError;
use crate::engine::limits::capability::DELIVERIES_IN_FLIGHT;
use crate::store::delivery::ClaimedDelivery;
use crate::store::{Backend, Store, now_ms};
use crate::tenants::delivery::HealthyRetryPolicy;
use dead_letter::{Exhausted, LastError};

/// The pause before the first retry; it doubles with each one, up to the most.
const RETRY_PAUSE_MS: u64 = 1_000;
const MAX_RETRY_PAUSE_MS: u64 = 300_000;
/// A failed delivery stays listed this long (SQS's default retention).
const FAILED_KEPT_MS: i64 = 4 * 24 * 3600 * 1000;
/// How often a host deletes failed deliveries past `FAILED_KEPT_MS`.
const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// Deliveries claimed at once: a tenant may get a few past its share, handed back at once.
const CLAIM_BATCH: usize = 16;
/// An idle worker looks again this often (deliveries written on this host wake it at
/// once; this bounds the wait for those written by other hosts and for retries).
const IDLE_POLL: Duration = Duration::from_millis(200);
/// After a store error, the worker waits this long before trying again.
const ERROR_BACKOFF: Duration = Duration::from_secs(1);

/// Deliveries in flight on this host, per tenant.
type InFlight = Arc<Mutex<HashMap<String, u32>>>;

/// Makes due deliveries until `stop` turns true; then waits for those in flight.
pub async fn run(app: Arc<App>, mut stop: watch::Receiver<bool>) {
    let store = app.services.store.clone();
    if store.backend() == Backend::Sqlite {
        // The embedded store has one host: claims of a previous run have no owner.
        if let Err(e) = store.delivery_release().await {
            tracing::warn!(error = %e, "cannot release old delivery claims");
        }
    }
    let in_flight: InFlight = Arc::default();
    let mut tasks = JoinSet::new();
    let mut pruned_at: Option<std::time::Instant> = None;
    while !*stop.borrow() {
        while tasks.try_join_next().is_some() {}
        if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            pruned_at = Some(std::time::Instant::now());
            match store.delivery_prune_failed(now_ms() - FAILED_KEPT_MS).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deliveries = n, "deleted old failed deliveries"),
                Err(e) => tracing::warn!(error = %e, "cannot delete old failed deliveries"),
            }
        }
        let wake = app.services.deliveries.notified();
        let free = DELIVERIES_IN_FLIGHT.saturating_sub(tasks.len());
        let mut claimed = Vec::new();
        if free > 0 {
            match claim(&app, &store, &in_flight, free.min(CLAIM_BATCH)).await {
                Ok(c) => claimed = c,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim deliveries");
                    tokio::time::sleep(ERROR_BACKOFF).await;
                    continue;
                }
            }
        }
        let idle = claimed.is_empty();
        for delivery in claimed {
            let (app, in_flight) = (app.clone(), in_flight.clone());
            tasks.spawn(async move {
                let tenant = delivery.tenant.clone();
                deliver(&app, delivery).await;
                let mut counts = in_flight.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(n) = counts.get_mut(&tenant) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        counts.remove(&tenant);
                    }
                }
            });
        }
        if idle {
            tokio::select! {
                _ = wake => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
                _ = stop.changed() => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
    }
    // Those in flight finish within the shutdown grace, or are made again later.
    while tasks.join_next().await.is_some() {}
}

/// Claims up to `limit` due deliveries of the tenants this host serves, none for a
/// tenant with its share in flight (another host may serve a tenant this one does not
/// know yet); any claimed past a tenant's share are handed back at once.
async fn claim(
    app: &App,
    store: &Store,
    in_flight: &InFlight,
    limit: usize,
) -> Result<Vec<ClaimedDelivery>, crate::store::StoreError> {
    let share = |tenant: &str| {
        app.tenants
            .get(tenant)
            .map_or(1, |t| t.config.limits.concurrency)
    };
    let room: Vec<String> = {
        let counts = in_flight.lock().unwrap_or_else(PoisonError::into_inner);
        app.tenants
            .names()
            .into_iter()
            .filter(|tenant| counts.get(tenant).copied().unwrap_or(0) < share(tenant))
            .collect()
    };
    let room: Vec<&str> = room.iter().map(String::as_str).collect();
    let claimed = store.delivery_claim(limit as u32, &room).await?;
    let mut taken = Vec::with_capacity(claimed.len());
    let mut excess = Vec::new();
    {
        let mut counts = in_flight.lock().unwrap_or_else(PoisonError::into_inner);
        for delivery in claimed {
            let n = counts.entry(delivery.tenant.clone()).or_default();
            if *n >= share(&delivery.tenant) {
                excess.push(delivery);
            } else {
                *n += 1;
                taken.push(delivery);
            }
        }
    }
    for delivery in &excess {
        store.delivery_unclaim(delivery).await?;
    }
    Ok(taken)
}

/// The pause after attempt `attempts` failed on the host's schedule: 1 s, doubled for
/// each attempt before it (at most 5 minutes), with jitter as EventBridge retries: its
/// upper half is `jitter` (0 to 1) of the way, so the pause is between half the doubled
/// pause and all of it, and retries of deliveries that failed together spread out.
fn retry_pause_ms(attempts: u32, jitter: f64) -> u64 {
    let doublings = attempts.saturating_sub(1).min(20);
    let full = (RETRY_PAUSE_MS << doublings).min(MAX_RETRY_PAUSE_MS);
    let half = full / 2;
    half + ((full - half) as f64 * jitter.clamp(0.0, 1.0)).round() as u64
}

/// Whether `delivery`, whose attempt just failed, may be tried again, and when; or why
/// not. `jitter` (0 to 1) places the pause within its bounds on the host's schedule; a
/// delivery with its own (SNS's delivery policy) follows that, without jitter.
fn next_attempt(delivery: &ClaimedDelivery, now: i64, jitter: f64) -> Result<u64, Exhausted> {
    if delivery.attempts >= delivery.max_attempts {
        return Err(Exhausted::Attempts);
    }
    let own = delivery
        .retry_schedule
        .as_deref()
        .and_then(|s| serde_json::from_str::<HealthyRetryPolicy>(s).ok());
    let pause = match own {
        Some(policy) => policy.pause_ms(delivery.attempts),
        None => retry_pause_ms(delivery.attempts, jitter),
    };
    match delivery.expires_at {
        Some(at) if now.saturating_add(pause as i64) > at => Err(Exhausted::Age),
        _ => Ok(pause),
    }
}

/// Makes one delivery, then settles it: done, due again after a pause, or failed.
async fn deliver(app: &App, delivery: ClaimedDelivery) {
    let store = &app.services.store;
    let outcome = match delivery.kind.as_str() {
        "plugin" => to_plugin(app, &delivery).await,
        "webhook" => to_webhook(app, &delivery).await,
        other => Err(Failure::give_up(
            "INVALID_PARAMETER",
            format!("unknown delivery kind `{other}`"),
        )),
    };
    let (tenant, target) = (&delivery.tenant, &delivery.target);
    let settled = match outcome {
        Ok(()) => store.delivery_done(&delivery).await,
        Err(failure) => {
            let next = if failure.retry {
                next_attempt(&delivery, now_ms(), fastrand::f64())
            } else {
                Err(Exhausted::Attempts)
            };
            match next {
                Ok(pause) => {
                    store
                        .delivery_retry(&delivery, pause, &failure.message)
                        .await
                }
                Err(exhausted) => {
                    let last = LastError {
                        code: failure.code,
                        message: &failure.message,
                        exhausted,
                    };
                    fail(app, &delivery, &last).await
                }
            }
        }
    };
    if let Err(e) = settled {
        tracing::warn!(%tenant, %target, error = %e, "cannot settle a delivery");
    }
}

/// A delivery failed past its policy: to its dead-letter queue if it has one (and the
/// queue takes it), otherwise dropped; either way logged, counted and kept as failed.
async fn fail(
    app: &App,
    delivery: &ClaimedDelivery,
    last: &LastError<'_>,
) -> Result<(), crate::store::StoreError> {
    let (tenant, target) = (&delivery.tenant, &delivery.target);
    let mut error = format!("{}: {}", last.code, last.message);
    let dead_lettered = match &delivery.dead_letter {
        None => None,
        Some(queue) => match to_dead_letter(app, delivery, queue, last).await {
            Ok(()) => Some(queue.as_str()),
            Err(e) => {
                error.push_str(&format!(" (not dead-lettered: {e})"));
                None
            }
        },
    };
    let outcome = if dead_lettered.is_some() {
        "dead_lettered"
    } else {
        "dropped"
    };
    tracing::warn!(%tenant, %target, origin = %delivery.origin, %error,
        dead_letter = ?dead_lettered, condition = last.exhausted.as_str(),
        "delivery failed after {} attempts", delivery.attempts);
    metrics::counter!("orquesta_deliveries_failed_total",
        "tenant" => tenant.clone(), "kind" => delivery.kind.clone(), "outcome" => outcome)
    .increment(1);
    app.services
        .store
        .delivery_fail(delivery, &error, dead_lettered)
        .await
}

/// Sends `delivery`'s dead letter to `queue`, one of its tenant's queues.
async fn to_dead_letter(
    app: &App,
    delivery: &ClaimedDelivery,
    queue: &str,
    last: &LastError<'_>,
) -> Result<(), String> {
    let tenant = &delivery.tenant;
    let runtime = app
        .tenants
        .get(tenant)
        .ok_or_else(|| format!("tenant `{tenant}` is not serving"))?;
    let (body, attributes) = dead_letter::letter(delivery, last);
    let limits = &runtime.config.limits;
    // What failed was held to the size limit when it was sent; its wrapping (SNS's
    // document, EventBridge's envelope and attributes) is held to the bound of a topic's
    // document, as a queue subscription's is: past it the letter is refused (and the
    // delivery dropped, saying why).
    let sending = crate::triggers::queue::Sending {
        max_bytes: crate::triggers::topic::envelope::max_document_bytes(limits.max_message_bytes()),
        max_depth: limits.queue_depth,
        depth: delivery.depth,
    };
    let message = OutgoingMessage {
        queue: queue.to_string(),
        body,
        delay_seconds: 0,
        attributes,
        group_id: None,
        deduplication_id: None,
    };
    crate::triggers::queue::send(
        &app.services.store,
        &app.services.wakes,
        tenant,
        &runtime.config.queues,
        queue,
        sending,
        message,
    )
    .await
    .map(|_| ())
    .map_err(|e| e.to_string())
}

/// Why an attempt failed: EventBridge's error code and the error, and whether another
/// attempt may do better.
struct Failure {
    code: &'static str,
    message: String,
    retry: bool,
}

impl Failure {
    fn retry(code: &'static str, message: String) -> Self {
        Failure {
            code,
            message,
            retry: true,
        }
    }

    /// Never going to work (the tenant is gone, the row unreadable).
    fn give_up(code: &'static str, message: String) -> Self {
        Failure {
            code,
            message,
            retry: false,
        }
    }

    fn of_invocation(e: &InvokeError) -> Self {
        let code = match e {
            InvokeError::Timeout { .. } => "TIMEOUT",
            _ => "SDK_CLIENT_ERROR",
        };
        Failure::retry(code, e.to_string())
    }
}

async fn to_plugin(app: &App, delivery: &ClaimedDelivery) -> Result<(), Failure> {
    let (tenant, plugin) = (&delivery.tenant, &delivery.target);
    let runtime = app.tenants.get(tenant).ok_or_else(|| {
        Failure::give_up("NO_RESOURCE", format!("tenant `{tenant}` is not serving"))
    })?;
    let pending: Pending = serde_json::from_str(&delivery.event)
        .map_err(|e| Failure::give_up("INVALID_JSON", format!("unreadable delivery: {e}")))?;
    let target = runtime.plugins.get(plugin).cloned().zip(
        runtime
            .component_of(plugin)
            .and_then(|c| app.plugins.get(&c)),
    );
    let Some((ctx, component)) = target else {
        return Err(Failure::retry(
            "NO_RESOURCE",
            format!("plugin `{plugin}` is not deployed"),
        ));
    };
    let event = pending.into_event();
    app.engine
        .invoke_in_chain(&component, ctx, &event, delivery.depth)
        .await
        .map(|_| ())
        .map_err(|e| Failure::of_invocation(&e))
}

/// POSTs SNS's notification document (the delivery's event) to the webhook.
async fn to_webhook(app: &App, delivery: &ClaimedDelivery) -> Result<(), Failure> {
    let tenant = &delivery.tenant;
    let runtime = app.tenants.get(tenant).ok_or_else(|| {
        Failure::give_up("NO_RESOURCE", format!("tenant `{tenant}` is not serving"))
    })?;
    let http = app
        .services
        .http
        .for_tenant(runtime.config.capabilities.http.allow_private);
    let caller = Caller {
        tenant,
        plugin: "(topic)",
        invocation: "webhook",
        depth: delivery.depth,
    };
    let request = Request {
        method: "POST".into(),
        url: delivery.target.clone(),
        headers: webhook_headers(&delivery.event),
        body: delivery.event.clone().into_bytes(),
        timeout_ms: Some(WEBHOOK_TIMEOUT_MS),
    };
    match http.send(&caller, request).await {
        Ok(r) if r.status < 300 => Ok(()),
        Ok(r) => Err(Failure::retry(
            "SDK_CLIENT_ERROR",
            format!("answered {}", r.status),
        )),
        Err(e) => Err(Failure::retry("SDK_CLIENT_ERROR", e.to_string())),
    }
}

/// The headers SNS sends with a notification to an HTTP/S endpoint, so a receiver
/// written for the cloud reads them unchanged: the document goes as `text/plain`, and the
/// message's id and topic are repeated from it.
fn webhook_headers(document: &str) -> Vec<(String, String)> {
    let mut headers = vec![
        ("content-type".into(), "text/plain; charset=UTF-8".into()),
        (
            "user-agent".into(),
            "Amazon Simple Notification Service Agent".into(),
        ),
        ("x-amz-sns-message-type".into(), "Notification".into()),
    ];
    let doc: serde_json::Value = serde_json::from_str(document).unwrap_or_default();
    for (key, header) in [
        ("MessageId", "x-amz-sns-message-id"),
        ("TopicArn", "x-amz-sns-topic-arn"),
    ] {
        if let Some(value) = doc.get(key).and_then(|v| v.as_str()) {
            headers.push((header.into(), value.into()));
        }
    }
    headers
}

/// The delivery worker of the topic, bus and schedule triggers.
pub struct Deliveries;

impl super::Trigger for Deliveries {
    fn name(&self) -> &'static str {
        "deliveries"
    }

    fn run(&self, app: Arc<App>, stop: watch::Receiver<bool>) -> Option<super::Run> {
        Some(Box::pin(run(app, stop)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claimed(attempts: u32, max_attempts: u32, expires_at: Option<i64>) -> ClaimedDelivery {
        ClaimedDelivery {
            seq: 1,
            tenant: "acme".into(),
            kind: "plugin".into(),
            target: "p".into(),
            event: String::new(),
            depth: 0,
            attempts,
            max_attempts,
            expires_at,
            dead_letter: None,
            origin: String::new(),
            created_at: 0,
            receipt: String::new(),
            retry_schedule: None,
        }
    }

    #[test]
    fn retries_back_off_and_stop_at_the_policy() {
        // At the top of the jitter: the doubled pause itself.
        let pauses: Vec<u64> = (1..=12).map(|a| retry_pause_ms(a, 1.0)).collect();
        assert_eq!(&pauses[..4], [1_000, 2_000, 4_000, 8_000]);
        assert_eq!(pauses[11], MAX_RETRY_PAUSE_MS);
        assert_eq!(retry_pause_ms(185, 1.0), MAX_RETRY_PAUSE_MS);
        // Attempts: three in all means two retries.
        assert_eq!(next_attempt(&claimed(1, 3, None), 0, 1.0), Ok(1_000));
        assert_eq!(next_attempt(&claimed(2, 3, None), 0, 1.0), Ok(2_000));
        assert_eq!(
            next_attempt(&claimed(3, 3, None), 0, 1.0),
            Err(Exhausted::Attempts)
        );
        assert_eq!(
            next_attempt(&claimed(1, 1, None), 0, 1.0),
            Err(Exhausted::Attempts)
        );
        // Age: no retry that would come past it.
        assert_eq!(
            next_attempt(&claimed(1, 186, Some(1_000)), 0, 1.0),
            Ok(1_000)
        );
        assert_eq!(
            next_attempt(&claimed(1, 186, Some(999)), 0, 1.0),
            Err(Exhausted::Age)
        );
        // With less jitter the same retry comes sooner, so within the age.
        assert_eq!(next_attempt(&claimed(1, 186, Some(999)), 0, 0.0), Ok(500));
    }

    /// Jitter keeps every pause between half the doubled pause and all of it, whatever
    /// the source gives (out-of-range values included), and spreads the pauses out.
    #[test]
    fn jitter_is_bounded_and_spreads_retries() {
        for attempts in [1, 2, 5, 9, 30, 185] {
            let full = retry_pause_ms(attempts, 1.0);
            assert_eq!(retry_pause_ms(attempts, 0.0), full / 2);
            for jitter in [-1.0, 0.0, 0.25, 0.5, 0.999, 1.0, 7.0, f64::NAN] {
                let pause = retry_pause_ms(attempts, jitter);
                assert!(
                    (full / 2..=full).contains(&pause),
                    "{attempts}: {jitter}: {pause}"
                );
            }
        }
        let mut rng = fastrand::Rng::with_seed(24);
        let pauses: std::collections::BTreeSet<u64> =
            (0..50).map(|_| retry_pause_ms(4, rng.f64())).collect();
        assert!(pauses.len() > 25, "{pauses:?}");
        assert!(pauses.iter().all(|p| (4_000..=8_000).contains(p)));
    }

    /// A delivery with SNS's delivery policy follows its phases, without jitter.
    #[test]
    fn an_sns_delivery_policy_sets_the_pauses() {
        let policy = HealthyRetryPolicy {
            num_retries: 3,
            num_no_delay_retries: 1,
            min_delay_target: 2,
            max_delay_target: 2,
            num_min_delay_retries: 0,
            num_max_delay_retries: 0,
            backoff_function: crate::tenants::delivery::Backoff::Linear,
        };
        let mut d = claimed(1, 4, None);
        d.retry_schedule = Some(serde_json::to_string(&policy).unwrap());
        for (attempts, pause) in [(1, 0), (2, 2_000), (3, 2_000)] {
            d.attempts = attempts;
            assert_eq!(next_attempt(&d, 0, 0.3), Ok(pause), "{attempts}");
        }
        d.attempts = 4;
        assert_eq!(next_attempt(&d, 0, 0.3), Err(Exhausted::Attempts));
    }
}
