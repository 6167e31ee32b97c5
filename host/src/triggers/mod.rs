//! Triggers: what makes the host invoke a plugin. Each is one module, named for it, that
//! implements [`Trigger`] and is listed once in [`all`]; the service mounts their routes
//! and runs their background work, and knows none of them by name.
//!
//! | trigger | invokes | from |
//! |---|---|---|
//! | `http` | `http-handler` | a request under `/t/{tenant}/` matching a route |
//! | `queue` | `queue-handler` | batches claimed from a queue with a consumer |
//! | `topic` | `topic-handler` | a publication matching a subscription (via `deliveries`) |
//! | `bus` | `bus-handler` | an event matching a rule (via `deliveries`) |
//! | `schedule` | `schedule-handler` | a tick claimed in the store (via `deliveries`) |
//! | `workflow` | `task-handler` | a Task state of an execution |
//!
//! `deliveries` makes the durable deliveries the topic, bus and schedule triggers write;
//! `fanout` is a tenant's messaging backend (the `notify` and `messaging` capabilities),
//! which hands each send to the trigger it starts; `recursion` bounds chains of them.

pub mod bus;
pub mod deliveries;
pub mod fanout;
pub mod http;
mod messaging;
pub mod queue;
pub mod recursion;
pub mod schedule;
pub mod topic;
pub mod workflow;

use std::sync::Arc;

use axum::Router;
use futures::future::BoxFuture;
use tokio::sync::watch;

use crate::app::App;

/// Background work until the receiver turns true; then it finishes what is in flight.
pub type Run = BoxFuture<'static, ()>;

/// A source of invocations.
pub trait Trigger: Send + Sync {
    /// Its name, in logs.
    fn name(&self) -> &'static str;

    /// Routes it serves, merged into the service's router; none by default.
    fn routes(&self) -> Option<Router<Arc<App>>> {
        None
    }

    /// Its background work, started with the service; none by default.
    fn run(&self, _app: Arc<App>, _stop: watch::Receiver<bool>) -> Option<Run> {
        None
    }
}

/// Every trigger the service starts, once each.
pub fn all() -> Vec<Box<dyn Trigger>> {
    vec![
        Box::new(http::Http),
        Box::new(queue::Queues),
        Box::new(topic::Topics),
        Box::new(bus::Buses),
        Box::new(schedule::Schedules),
        Box::new(deliveries::Deliveries),
        Box::new(workflow::Tasks),
    ]
}
