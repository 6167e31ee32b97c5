//! A state's limits read when it runs: fixed in the definition, selected by a `...Path`
//! field, or a JSONata expression. Parallel and Map children and the distributed Map's
//! reader both read them.

use serde_json::Value;

use crate::workflow::definition::Limit;
use crate::workflow::errors::{self, StateError};
use crate::workflow::jsonata;

use super::jsonata::unexpected;

/// The value a `...Path` field (`field`) selects, if `valid` takes it. One that selects
/// nothing, or a value the field cannot take, is `States.Runtime`, in the cloud's words.
pub(super) fn path_value(
    p: &crate::workflow::path::Path,
    input: &Value,
    context: &Value,
    field: &str,
    valid: &dyn Fn(&Value) -> bool,
) -> Result<Value, StateError> {
    match p.select(input, context) {
        Some(v) if valid(&v) => Ok(v),
        Some(v) => Err(StateError::new(
            errors::RUNTIME,
            format!(
                "The value {v} selected by {field} {:?} is not valid for the field",
                p.text()
            ),
        )),
        None => Err(StateError::new(
            errors::RUNTIME,
            format!(
                "The JSONPath {:?} specified for the field {field} could not be found in the input",
                p.text()
            ),
        )),
    }
}

/// A count limit: fixed, or a whole number read by its `...Path` field.
pub(super) fn read_count(
    limit: &Limit<u64>,
    input: &Value,
    context: &Value,
    field: &str,
) -> Result<u64, StateError> {
    match limit {
        Limit::Fixed(n) => Ok(*n),
        Limit::Path(p) => path_value(p, input, context, field, &|v| v.as_u64().is_some())
            .map(|v| v.as_u64().unwrap_or(0)),
        Limit::Expr(expr) => {
            let v = limit_expression(expr, input, context, field)?;
            // A whole number, written as an integer or not (`3.0`), as `Seconds` takes.
            v.as_u64()
                .or_else(|| {
                    v.as_f64()
                        .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u64::MAX as f64)
                        .map(|f| f as u64)
                })
                .ok_or_else(|| unexpected(expression_field(field), "a non-negative integer", &v))
        }
    }
}

/// The field a JSONata limit is written in: its JSONPath twin's name without `Path`.
pub(super) fn expression_field(field: &str) -> &str {
    field.strip_suffix("Path").unwrap_or(field)
}

/// A limit's expression evaluated against `$states.input` (the state's input) and the
/// context.
pub(super) fn limit_expression(
    expr: &str,
    input: &Value,
    context: &Value,
    field: &str,
) -> Result<Value, StateError> {
    let states = super::jsonata::states(context, input, None);
    let env = super::jsonata::env(context, states);
    jsonata::evaluate_one(expr, &env, expression_field(field))
}
