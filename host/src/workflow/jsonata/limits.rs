//! The bounds of an evaluation: what one tenant's expression may take of the host.

use std::time::Duration;

/// The most text one expression may have: far above what a field holds in practice, and
/// low enough that parsing it stays within the evaluation thread's stack.
pub const MAX_EXPRESSION_BYTES: usize = 16 * 1024;
/// How deep the evaluator may recurse (its own count of nested evaluations): a function
/// that calls itself forever ends here.
pub const MAX_DEPTH: usize = 500;
/// How long one field's expressions may run together.
pub const TIME_LIMIT: Duration = Duration::from_secs(1);
/// What one field's evaluation may allocate in its arena: its inputs, the variables it
/// reads, and every value it builds.
pub const MAX_ARENA_BYTES: usize = 64 * 1024 * 1024;
/// The most a field's value may hold, as state input and output may.
pub const MAX_OUTPUT_BYTES: usize = 256 * 1024;
/// How deeply a value may nest (serde_json's own limit when it reads JSON text).
pub const MAX_OUTPUT_NESTING: usize = 128;
/// The evaluation thread's stack: room for `MAX_DEPTH` nested evaluations in an
/// unoptimised build, and for parsing an expression of the maximum length. Only the
/// pages used are backed by memory.
pub const STACK_BYTES: usize = 256 * 1024 * 1024;
