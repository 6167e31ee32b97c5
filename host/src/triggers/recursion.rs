//! Recursive loop detection, as Lambda's: every message, event, delivery and execution
//! the host makes on a plugin's behalf carries its place in a chain of invocations (one
//! more than the invocation that sent it; 0 when an HTTP request, a schedule tick or the
//! admin API sent it). The host does not make an invocation past `MAX_CHAIN_DEPTH`: the
//! send was accepted, the invocation it would cause is stopped (a queue message goes to
//! its dead-letter queue, or is dropped), counted in `orquesta_recursion_stopped_total`
//! and logged.

use crate::engine::limits::capability::MAX_CHAIN_DEPTH;

/// The error of a workflow Task not invoked (Lambda's exception has this name too).
pub const STOPPED: &str = "RecursiveInvocationException";

/// Whether an invocation `depth` into its chain is past the bound.
pub fn past_bound(depth: u32) -> bool {
    depth >= MAX_CHAIN_DEPTH
}

/// Counts and logs an invocation not made. `kind`: `topic`, `bus`, `queue` or
/// `workflow`; `target` names what was not invoked.
pub fn stopped(tenant: &str, kind: &'static str, target: &str) {
    metrics::counter!("orquesta_recursion_stopped_total",
        "tenant" => tenant.to_string(), "kind" => kind)
    .increment(1);
    tracing::warn!(%tenant, kind, target,
        "recursive loop stopped: {MAX_CHAIN_DEPTH} invocations in one chain; the next is not made");
}
