//! Fires tenants' schedules. Every host evaluates every schedule; a tick fires on the one
//! host whose claim in the store wins, so it fires once however many hosts run.
//!
//! Missed ticks: a tick is due at its time; if no host ran then, the most recent missed
//! tick fires once when a host comes back, and older ones are skipped (logged). A
//! schedule that has never fired starts with its next tick.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::app::App;
use crate::schedule::ScheduleExpr;
use crate::store::now_ms;
use crate::tenants::{DeliveryPolicy, ScheduleConfig, Target};
use crate::triggers::deliveries::Pending;

/// How often schedules are checked: ticks fire within this of their time.
const CHECK_EVERY: Duration = Duration::from_millis(200);

struct Known {
    config: ScheduleConfig,
    expr: ScheduleExpr,
    /// The latest tick this host has handled (fired, or seen claimed elsewhere).
    last: i64,
}

pub async fn run(app: Arc<App>, mut stop: watch::Receiver<bool>) {
    let mut known: HashMap<(String, String), Known> = HashMap::new();
    while !*stop.borrow() {
        let now = now_ms();
        for tenant in app.tenants.names() {
            let Some(runtime) = app.tenants.get(&tenant) else {
                continue;
            };
            for (name, config) in &runtime.config.schedules {
                if !config.enabled {
                    continue;
                }
                let key = (tenant.clone(), name.clone());
                let fresh = known.get(&key).is_none_or(|k| k.config != *config);
                if fresh {
                    let Ok(expr) = config.parsed() else { continue };
                    let last = match app.services.store.schedule_last_fired(&tenant, name).await {
                        Ok(Some(fired)) => fired,
                        Ok(None) => now,
                        Err(e) => {
                            tracing::warn!(%tenant, schedule = %name, error = %e, "cannot read the schedule's state");
                            continue;
                        }
                    };
                    known.insert(
                        key.clone(),
                        Known {
                            config: config.clone(),
                            expr,
                            last,
                        },
                    );
                }
                let Some(entry) = known.get_mut(&key) else {
                    continue;
                };
                let Some(due) = entry.expr.latest_at_or_before(now) else {
                    continue;
                };
                if due <= entry.last {
                    continue;
                }
                if let Some(skipped_from) = entry.expr.next_after(entry.last).filter(|t| *t < due) {
                    tracing::warn!(%tenant, schedule = %name, skipped_from, up_to = due, "missed ticks skipped; firing the latest once");
                }
                entry.last = due;
                match app.services.store.schedule_claim(&tenant, name, due).await {
                    Ok(true) => fire(&app, &runtime, name, config, due).await,
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(%tenant, schedule = %name, error = %e, "cannot claim a tick")
                    }
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(CHECK_EVERY) => {}
            _ = stop.changed() => {}
        }
    }
}

async fn fire(
    app: &App,
    runtime: &crate::app::tenants::TenantRuntime,
    name: &str,
    config: &ScheduleConfig,
    due: i64,
) {
    let tenant = runtime.name.as_str();
    let labels = [
        ("tenant", tenant.to_string()),
        ("schedule", name.to_string()),
    ];
    metrics::counter!("orquesta_schedule_ticks_total", &labels).increment(1);
    let fanout = app.services.fanout(tenant, &runtime.config);
    let input = config.input.to_string();
    match config.target.target() {
        Ok(Target::Plugin(plugin)) => {
            let tick = Pending::Schedule {
                schedule: name.to_string(),
                scheduled_at: due as u64,
                input,
            };
            // A tick starts a chain.
            let policy = DeliveryPolicy::fixed(format!("orquesta:{tenant}:schedule/{name}"), None);
            if let Err(e) = fanout.to_plugin(plugin, &tick, 0, "schedule", policy).await {
                tracing::warn!(%tenant, schedule = %name, error = %e, "tick not delivered");
            }
        }
        Ok(Target::Queue(queue)) => {
            if let Err(e) = fanout.to_queue(queue, input, Vec::new(), 0).await {
                tracing::warn!(%tenant, schedule = %name, error = %e, "tick not delivered");
            }
        }
        Ok(Target::Workflow(workflow)) => {
            if let Err(e) = fanout
                .to_workflow(
                    workflow,
                    config.input.clone(),
                    Some(&format!("{name}-{due}")),
                    0,
                )
                .await
            {
                tracing::warn!(%tenant, schedule = %name, error = %e, "tick did not start the workflow");
            }
        }
        Ok(_) => tracing::info!(%tenant, schedule = %name, due, "schedule tick"),
        Err(e) => tracing::warn!(%tenant, schedule = %name, error = %e, "tick not delivered"),
    }
}

/// The next tick of a schedule, for the admin API.
pub fn next_tick(config: &ScheduleConfig) -> Option<i64> {
    config.parsed().ok()?.next_after(now_ms())
}

/// Schedule ticks, claimed once across hosts.
pub struct Schedules;

impl super::Trigger for Schedules {
    fn name(&self) -> &'static str {
        "schedule"
    }

    fn run(&self, app: Arc<App>, stop: watch::Receiver<bool>) -> Option<super::Run> {
        Some(Box::pin(run(app, stop)))
    }
}
