//! Input and output processing, in the spec's order: `InputPath` -> `Parameters` ->
//! (the state's work) -> `ResultSelector` -> `ResultPath` -> `OutputPath`. `$` is the
//! state's input (or the task's result for `ResultSelector`); `$$` the context object.

use serde_json::{Map, Value};

use super::definition::{State, Template};
use super::errors::{
    INTRINSIC_FAILURE, PARAMETER_PATH_FAILURE, RESULT_PATH_MATCH_FAILURE, RUNTIME, StateError,
};
use super::path::{Path, ReferencePath};

/// Fills a template from `input` and the context object.
pub fn resolve(template: &Template, input: &Value, context: &Value) -> Result<Value, StateError> {
    Ok(match template {
        Template::Literal(v) => v.clone(),
        Template::Object(fields) => {
            let mut out = Map::with_capacity(fields.len());
            for (name, t) in fields {
                out.insert(name.clone(), resolve(t, input, context)?);
            }
            Value::Object(out)
        }
        Template::Array(items) => Value::Array(
            items
                .iter()
                .map(|t| resolve(t, input, context))
                .collect::<Result<_, _>>()?,
        ),
        Template::Path(path) => path.select(input, context).ok_or_else(|| {
            StateError::new(
                PARAMETER_PATH_FAILURE,
                format!(
                    "the JSONPath {:?} could not be found in the input",
                    path.text()
                ),
            )
        })?,
        Template::Call(call) => call
            .eval(input, context)
            .map_err(|e| StateError::new(INTRINSIC_FAILURE, e))?,
    })
}

/// `InputPath` or `OutputPath`: `None` (the field was `null`) gives `{}`.
fn select(path: &Option<Path>, doc: &Value, field: &str) -> Result<Value, StateError> {
    match path {
        None => Ok(Value::Object(Map::new())),
        Some(p) => p.select(doc, &Value::Null).ok_or_else(|| {
            StateError::new(
                RUNTIME,
                format!("the {field} {:?} selects nothing", p.text()),
            )
        }),
    }
}

/// `InputPath` then `Parameters`: what the state works on.
pub fn effective_input(state: &State, raw: &Value, context: &Value) -> Result<Value, StateError> {
    let input = select(&state.input_path, raw, "InputPath")?;
    match &state.parameters {
        Some(t) => resolve(t, &input, context),
        None => Ok(input),
    }
}

/// `InputPath` alone (Map: the items and `ItemSelector` read it).
pub fn input_path(state: &State, raw: &Value) -> Result<Value, StateError> {
    select(&state.input_path, raw, "InputPath")
}

/// `ResultSelector`, `ResultPath` and `OutputPath` applied to a state's `result`.
pub fn state_output(
    state: &State,
    raw: &Value,
    result: Value,
    context: &Value,
) -> Result<Value, StateError> {
    let result = match &state.result_selector {
        Some(t) => resolve(t, &result, context)?,
        None => result,
    };
    let combined = place(&state.result_path, raw, result)?;
    select(&state.output_path, &combined, "OutputPath")
}

/// `InputPath` and `OutputPath` alone (Choice, Wait, Succeed).
pub fn passthrough(state: &State, raw: &Value) -> Result<Value, StateError> {
    let input = select(&state.input_path, raw, "InputPath")?;
    select(&state.output_path, &input, "OutputPath")
}

/// Places `result` in the raw input at `ResultPath` (`None`: the input unchanged).
pub fn place(
    path: &Option<ReferencePath>,
    raw: &Value,
    result: Value,
) -> Result<Value, StateError> {
    match path {
        None => Ok(raw.clone()),
        Some(p) => p
            .write(raw.clone(), result)
            .map_err(|e| StateError::new(RESULT_PATH_MATCH_FAILURE, e)),
    }
}
