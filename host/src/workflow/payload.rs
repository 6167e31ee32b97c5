//! Input and output processing, in the spec's order: `InputPath` -> `Parameters` ->
//! (the state's work) -> `ResultSelector` -> `ResultPath` -> `OutputPath`. `$` is the
//! state's input (or the task's result for `ResultSelector`); `$$` the context object.

use serde_json::{Map, Value};

use super::definition::{State, Template};
use super::errors::{RESULT_PATH_MATCH_FAILURE, RUNTIME, StateError};
use super::path::{Path, ReferencePath};

/// Fills a template from `input` and the context object. A `.$` path that selects
/// nothing is `States.Runtime`, as the cloud raises it for `Parameters`,
/// `ResultSelector` and `ItemSelector` alike (the spec's `States.ParameterPathFailure`
/// is never what it reports).
pub fn resolve(template: &Template, input: &Value, context: &Value) -> Result<Value, StateError> {
    Ok(match template {
        Template::Literal(v) => v.clone(),
        Template::Object(fields) => {
            let mut out = Map::with_capacity(fields.len());
            for (name, t) in fields {
                let value = match t {
                    Template::Path(path) => path.select(input, context).ok_or_else(|| {
                        StateError::new(
                            RUNTIME,
                            format!(
                                "The JSONPath '{}' specified for the field '{name}.$' could not be found in the input '{}'",
                                path.text(),
                                in_cause(if path.text().starts_with("$$") { context } else { input })
                            ),
                        )
                    })?,
                    t => resolve(t, input, context)?,
                };
                out.insert(name.clone(), value);
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
                RUNTIME,
                format!(
                    "The JSONPath '{}' could not be found in the input '{}'",
                    path.text(),
                    in_cause(input)
                ),
            )
        })?,
        Template::Call(call) => call.eval(input, context)?,
    })
}

/// A document quoted in an error's cause, cut short: a cause holds at most 32,768
/// characters in the cloud.
pub fn in_cause(doc: &Value) -> String {
    const MAX: usize = 16 * 1024;
    let mut text = doc.to_string();
    if text.len() > MAX {
        let mut end = MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("...");
    }
    text
}

/// The length of `value`'s JSON text, without building it.
pub fn json_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a Value to a sink that never fails cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// `InputPath` or `OutputPath`: `None` (the field was `null`) gives `{}`.
fn select(path: &Option<Path>, doc: &Value, field: &str) -> Result<Value, StateError> {
    match path {
        None => Ok(Value::Object(Map::new())),
        Some(p) => p.select(doc, &Value::Null).ok_or_else(|| {
            StateError::new(
                RUNTIME,
                format!(
                    "Invalid path '{}' : the {field} selects nothing in '{}'",
                    p.text(),
                    in_cause(doc)
                ),
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
    let result = selected_result(state, result, context)?;
    output_of(state, raw, result)
}

/// `ResultSelector` applied to a state's result (what `Assign` reads as `$`).
pub fn selected_result(state: &State, result: Value, context: &Value) -> Result<Value, StateError> {
    match &state.result_selector {
        Some(t) => resolve(t, &result, context),
        None => Ok(result),
    }
}

/// `ResultPath` and `OutputPath` applied to a selected result.
pub fn output_of(state: &State, raw: &Value, selected: Value) -> Result<Value, StateError> {
    let combined = place(&state.result_path, raw, selected)?;
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
        Some(p) => p.write(raw.clone(), result).map_err(|e| {
            StateError::new(
                RESULT_PATH_MATCH_FAILURE,
                format!(
                    "Unable to apply ReferencePath {} to input {}: {e}",
                    p.text,
                    in_cause(raw)
                ),
            )
        }),
    }
}
