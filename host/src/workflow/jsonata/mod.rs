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
#[cfg(test)]
mod tests;

use serde_json::Value;

use super::definition_error::{DefinitionError, Problem};

pub use eval::{Env, evaluate, evaluate_one};

/// The most text one expression may have: far above what a field holds in practice, and
/// low enough that parsing it stays within the evaluation thread's stack.
pub const MAX_EXPRESSION_BYTES: usize = 16 * 1024;

/// A JSONata state's field: JSON whose `{% expr %}` strings are expressions.
#[derive(Debug, Clone, PartialEq)]
pub enum Tmpl {
    Literal(Value),
    Object(Vec<(String, Tmpl)>),
    Array(Vec<Tmpl>),
    /// The expression's text, without `{%` and `%}`; its syntax was checked at load.
    Expr(String),
}

/// The expression a string holds: the cloud reads a string as JSONata only when it
/// starts with `{%` and ends with `%}`.
pub fn expression(text: &str) -> Option<&str> {
    text.strip_prefix("{%")?.strip_suffix("%}")
}

impl Tmpl {
    /// Parses the field at `at` (`States.A.Output`), checking every expression's syntax.
    pub fn parse(value: &Value, at: &str) -> Result<Self, DefinitionError> {
        Ok(match value {
            Value::String(s) => match expression(s) {
                Some(expr) => {
                    check_syntax(expr).map_err(|e| {
                        DefinitionError::new(at, Problem::Jsonata(expr.trim().to_string(), e))
                    })?;
                    Tmpl::Expr(expr.to_string())
                }
                None => Tmpl::Literal(value.clone()),
            },
            Value::Object(map) => Tmpl::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), Tmpl::parse(v, &format!("{at}.{k}"))?)))
                    .collect::<Result<_, DefinitionError>>()?,
            ),
            Value::Array(items) => Tmpl::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| Tmpl::parse(v, &format!("{at}[{i}]")))
                    .collect::<Result<_, _>>()?,
            ),
            other => Tmpl::Literal(other.clone()),
        })
    }

    /// The literal value, if the field holds no expression.
    pub fn literal(&self) -> Option<&Value> {
        match self {
            Tmpl::Literal(v) => Some(v),
            _ => None,
        }
    }
}

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
    eval::parse_only(expr)
}
