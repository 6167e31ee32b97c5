//! Topic, bus and schedule deliveries to plugins and webhooks, made in the background
//! from the store (`store::delivery`): they survive a restart, and while they wait their
//! bodies are on disk, not in memory. One worker per host claims due deliveries, at most
//! `DELIVERIES_IN_FLIGHT` at once and a tenant's `limits.concurrency` of them per tenant,
//! so a slow target holds only its own share. A failed delivery is tried again after a
//! pause, three attempts in all (as SNS and EventBridge make for asynchronous
//! invocations); one that still fails is logged with its error. At least once: a host
//! that stops mid-delivery leaves it to be made again.

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
use crate::engine::limits::capability::DELIVERIES_IN_FLIGHT;
use crate::store::delivery::ClaimedDelivery;
use crate::store::{Backend, Store};

/// Attempts of a delivery, and the pause before each retry (times the attempts so far).
const ATTEMPTS: u32 = 3;
const RETRY_PAUSE_MS: u64 = 1_000;
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
    while !*stop.borrow() {
        while tasks.try_join_next().is_some() {}
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

/// Makes one delivery, then settles it: done, due again after a pause, or given up.
async fn deliver(app: &App, delivery: ClaimedDelivery) {
    let store = &app.services.store;
    let outcome = match delivery.kind.as_str() {
        "plugin" => to_plugin(app, &delivery).await,
        "webhook" => to_webhook(app, &delivery).await,
        other => Err(Failure::GiveUp(format!("unknown delivery kind `{other}`"))),
    };
    let (tenant, target) = (&delivery.tenant, &delivery.target);
    let settled = match outcome {
        Ok(()) => store.delivery_done(&delivery).await,
        Err(Failure::Retry(error)) if delivery.attempts < ATTEMPTS => {
            let pause = RETRY_PAUSE_MS * u64::from(delivery.attempts);
            store.delivery_retry(&delivery, pause, &error).await
        }
        Err(Failure::Retry(error) | Failure::GiveUp(error)) => {
            tracing::warn!(%tenant, %target, %error,
                "delivery failed after {} attempts", delivery.attempts);
            store.delivery_done(&delivery).await
        }
    };
    if let Err(e) = settled {
        tracing::warn!(%tenant, %target, error = %e, "cannot settle a delivery");
    }
}

enum Failure {
    /// Worth another attempt.
    Retry(String),
    /// Never going to work (the tenant is gone, the row unreadable).
    GiveUp(String),
}

async fn to_plugin(app: &App, delivery: &ClaimedDelivery) -> Result<(), Failure> {
    let (tenant, plugin) = (&delivery.tenant, &delivery.target);
    let runtime = app
        .tenants
        .get(tenant)
        .ok_or_else(|| Failure::GiveUp(format!("tenant `{tenant}` is not serving")))?;
    let pending: Pending = serde_json::from_str(&delivery.event)
        .map_err(|e| Failure::GiveUp(format!("unreadable delivery: {e}")))?;
    let target = runtime.plugins.get(plugin).cloned().zip(
        runtime
            .component_of(plugin)
            .and_then(|c| app.plugins.get(&c)),
    );
    let Some((ctx, component)) = target else {
        return Err(Failure::Retry(format!("plugin `{plugin}` is not deployed")));
    };
    let event = pending.into_event();
    app.engine
        .invoke_in_chain(&component, ctx, &event, delivery.depth)
        .await
        .map(|_| ())
        .map_err(|e| Failure::Retry(e.to_string()))
}

/// POSTs SNS's notification document (the delivery's event) to the webhook.
async fn to_webhook(app: &App, delivery: &ClaimedDelivery) -> Result<(), Failure> {
    let tenant = &delivery.tenant;
    let runtime = app
        .tenants
        .get(tenant)
        .ok_or_else(|| Failure::GiveUp(format!("tenant `{tenant}` is not serving")))?;
    let http = app
        .services
        .http
        .for_tenant(runtime.config.http.allow_private);
    let caller = Caller {
        tenant,
        plugin: "(topic)",
        invocation: "webhook",
        depth: delivery.depth,
    };
    let request = Request {
        method: "POST".into(),
        url: delivery.target.clone(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("x-amz-sns-message-type".into(), "Notification".into()),
        ],
        body: delivery.event.clone().into_bytes(),
        timeout_ms: Some(WEBHOOK_TIMEOUT_MS),
    };
    match http.send(&caller, request).await {
        Ok(r) if r.status < 300 => Ok(()),
        Ok(r) => Err(Failure::Retry(format!("answered {}", r.status))),
        Err(e) => Err(Failure::Retry(e.to_string())),
    }
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
