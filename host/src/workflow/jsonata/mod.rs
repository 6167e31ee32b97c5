//! JSONata in state machines (`"QueryLanguage": "JSONata"`), as the cloud has it: the
//! fields of a JSONata state are JSON whose strings written wholly as `{% expr %}` are
//! JSONata expressions, evaluated with `$states` (`input`, `result`, `errorOutput`,
//! `context`) and the workflow's variables (`$name`) bound.
//!
//! The evaluator is the `jsonata-rs` crate; [`eval`] runs it within bounds (stack depth,
//! time, memory, output size) on a thread of its own, since one tenant's expression
//! must neither hang nor exhaust the host the other tenants share.

mod convert;
mod eval;
mod functions;
mod limits;
mod syntax;
mod template;
#[cfg(test)]
mod tests;

pub use eval::{Env, evaluate, evaluate_one};
#[cfg(test)]
use syntax::check_syntax;
pub use template::{JsonataIo, JsonataRule, Tmpl, expression};
