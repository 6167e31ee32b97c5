//! An expression's syntax, checked when its definition loads.

use bumpalo::Bump;
use jsonata_rs::JsonAta;

use super::limits::{MAX_ARENA_BYTES, MAX_EXPRESSION_BYTES, STACK_BYTES};

/// Whether `expr` is a JSONata expression, parsed as the evaluator will parse it.
pub fn check_syntax(expr: &str) -> Result<(), String> {
    if expr.len() > MAX_EXPRESSION_BYTES {
        return Err(format!(
            "the expression has {} bytes, over the limit of {MAX_EXPRESSION_BYTES}",
            expr.len()
        ));
    }
    if expr.trim().is_empty() {
        return Err("the expression is empty".to_string());
    }
    parse_only(expr)
}

/// Parses `expr` on an evaluation thread: the parser recurses as deep as the text nests.
fn parse_only(expr: &str) -> Result<(), String> {
    std::thread::scope(|scope| {
        let spawned = std::thread::Builder::new()
            .name("jsonata".into())
            .stack_size(STACK_BYTES)
            .spawn_scoped(scope, || {
                let arena = Bump::new();
                arena.set_allocation_limit(Some(MAX_ARENA_BYTES));
                JsonAta::new(expr, &arena)
                    .map(|_| ())
                    .map_err(|e| format!("{}: {e}", e.code()))
            });
        match spawned {
            Ok(handle) => handle.join().unwrap_or_else(|p| Err(panic_text(&p))),
            Err(e) => Err(format!("the parser could not start: {e}")),
        }
    })
}

/// What a panic of the evaluator says (the arena's "out of memory" is its memory limit).
pub(super) fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    // bumpalo's words for its limit: "out of memory", "encountered allocation error".
    if text.contains("out of memory") || text.contains("allocation error") {
        format!(
            "it used more than the {} MiB an evaluation may allocate",
            MAX_ARENA_BYTES / (1024 * 1024)
        )
    } else {
        format!("the evaluator failed: {text}")
    }
}
