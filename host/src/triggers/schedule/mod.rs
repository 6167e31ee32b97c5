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
use crate::store::schedule::TickClaim;
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
                fire(&app, &runtime, name, config, due).await;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(CHECK_EVERY) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Fires the tick due at `due` if this host wins its claim. The claim and what the tick
/// delivers are written so that a host killed between them loses nothing and repeats
/// nothing: a plugin's delivery in the claim's transaction; a workflow's execution
/// first, named for the tick (a second start is refused), then the claim; a queue's
/// message first, under a deduplication id of the tick (a second send adds nothing),
/// then the claim. Only the claim's winner counts the tick.
async fn fire(
    app: &App,
    runtime: &crate::app::tenants::TenantRuntime,
    name: &str,
    config: &ScheduleConfig,
    due: i64,
) {
    let tenant = runtime.name.as_str();
    let tick = TickClaim {
        tenant,
        schedule: name,
        due_at: due,
    };
    let fanout = app.services.fanout(tenant, &runtime.config);
    let input = config.input.to_string();
    let claim = async || match app.services.store.schedule_claim(tenant, name, due).await {
        Ok(won) => won,
        Err(e) => {
            tracing::warn!(%tenant, schedule = %name, error = %e, "cannot claim a tick");
            false
        }
    };
    let won = match config.target.target() {
        Ok(Target::Plugin(plugin)) => {
            let event = Pending::Schedule {
                schedule: name.to_string(),
                scheduled_at: due as u64,
                input,
            };
            // A tick starts a chain.
            let policy = DeliveryPolicy::fixed(format!("orquesta:{tenant}:schedule/{name}"), None);
            match fanout
                .to_plugin_for_tick(plugin, &event, policy, tick)
                .await
            {
                Ok(won) => won,
                Err(e) => {
                    tracing::warn!(%tenant, schedule = %name, error = %e, "tick not delivered");
                    false
                }
            }
        }
        Ok(Target::Workflow(workflow)) => {
            let execution = format!("{name}-{due}");
            let started = fanout
                .to_workflow(workflow, config.input.clone(), Some(&execution), 0)
                .await;
            let won = claim().await;
            if let (true, Err(e)) = (won, started) {
                tracing::warn!(%tenant, schedule = %name, error = %e, "tick did not start the workflow (or another host started it)");
            }
            won
        }
        Ok(Target::Queue(queue)) => {
            let once = format!("orquesta-schedule-{name}-{due}");
            let sent = fanout.to_queue_once(queue, input, once).await;
            let won = claim().await;
            if let (true, Err(e)) = (won, sent) {
                tracing::warn!(%tenant, schedule = %name, error = %e, "tick not delivered");
            }
            won
        }
        Ok(_) => {
            let won = claim().await;
            if won {
                tracing::info!(%tenant, schedule = %name, due, "schedule tick");
            }
            won
        }
        Err(e) => {
            let won = claim().await;
            if won {
                tracing::warn!(%tenant, schedule = %name, error = %e, "tick not delivered");
            }
            won
        }
    };
    if won {
        let labels = [
            ("tenant", tenant.to_string()),
            ("schedule", name.to_string()),
        ];
        metrics::counter!("orquesta_schedule_ticks_total", &labels).increment(1);
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
