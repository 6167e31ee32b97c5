//! The workflow parsers' fuzz targets (see `crate::fuzz`), here to reach the private
//! path, intrinsic, choice and payload modules.

use serde_json::{Value, json};

use super::definition::{Kind, Machine};
use super::intrinsics::{Call, is_call};
use super::path::{Path, ReferencePath};
use super::payload;

/// The context object paths starting `$$` read.
fn context() -> Value {
    json!({
        "Execution": {"Id": "e-1", "Name": "fuzz", "Input": {"a": 1}},
        "State": {"Name": "S", "EnteredTime": "2026-12-05T00:00:00Z", "RetryCount": 0},
        "StateMachine": {"Name": "m"},
        "Map": {"Item": {"Index": 0, "Value": "x"}}
    })
}

/// A state's input when the fuzzed bytes give none.
fn default_input() -> Value {
    json!({"a": {"b": [1, 2, {"c": "x"}]}, "n": 5, "s": "text", "t": "2026-12-05T00:00:00Z",
           "list": [{"k": 1}, {"k": 2}], "flag": true, "none": null})
}

/// A definition (JSON). One that loads serialises back to the same JSON and loads the
/// same; its states' input processing and Choice rules run on an input without panic.
pub fn asl_definition(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(machine) = Machine::parse(&value) else {
        return;
    };
    let text = match serde_json::to_string(&machine.source) {
        Ok(t) => t,
        Err(e) => panic!("a loaded definition does not serialise: {e}"),
    };
    let again: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => panic!("a loaded definition serialises to {text}, not JSON: {e}"),
    };
    assert_eq!(again, value, "the definition changed through {text}");
    match Machine::parse(&again) {
        Ok(m) => assert_eq!(format!("{m:?}"), format!("{machine:?}")),
        Err(e) => panic!("{text} loaded, then was refused: {e}"),
    }
    run_states(&machine, &default_input(), &context());
}

/// Every state's input and output processing, Choice rules and intrinsics, on `input`.
fn run_states(machine: &Machine, input: &Value, context: &Value) {
    for state in machine.states.values() {
        if let Ok(effective) = payload::effective_input(state, input, context) {
            let _ = payload::state_output(state, input, effective, context);
        }
        let _ = payload::passthrough(state, input);
        match &state.kind {
            Kind::Choice { choices, .. } => {
                for (rule, _) in choices {
                    let _ = rule.eval(input, context);
                }
            }
            Kind::Parallel { branches } => {
                for branch in branches {
                    run_states(branch, input, context);
                }
            }
            Kind::Map { processor, .. } => run_states(processor, input, context),
            _ => {}
        }
    }
}

/// Splits `PATH-OR-CALL\nINPUT-JSON`; the input is the default one when absent or not
/// JSON.
fn text_and_input(data: &[u8]) -> Option<(&str, Value)> {
    let text = std::str::from_utf8(data).ok()?;
    Some(match text.split_once('\n') {
        Some((first, rest)) => (
            first,
            serde_json::from_str(rest).unwrap_or_else(|_| default_input()),
        ),
        None => (text, default_input()),
    })
}

/// A path, then optionally a newline and an input document. A path that is also a valid
/// reference path (`ResultPath`) reads back what was written there.
pub fn json_path(data: &[u8]) {
    let Some((text, input)) = text_and_input(data) else {
        return;
    };
    let context = context();
    let path = Path::parse(text).ok();
    if let Some(p) = &path {
        p.select(&input, &context);
    }
    let Ok(reference) = ReferencePath::parse(text) else {
        return;
    };
    let marker = json!({"written": [text]});
    let Ok(written) = reference.write(input, marker.clone()) else {
        return;
    };
    if let Some(p) = path {
        assert_eq!(
            p.select(&written, &context),
            Some(marker),
            "{text} reads elsewhere than it writes, in {written}"
        );
    }
}

/// An intrinsic call, then optionally a newline and an input document. A call that parses
/// is recognised as one, and evaluates without panic.
pub fn intrinsic(data: &[u8]) {
    let Some((text, input)) = text_and_input(data) else {
        return;
    };
    if let Ok(call) = Call::parse(text) {
        assert!(
            is_call(text),
            "{text} parsed as a call but is not taken for one"
        );
        let _ = call.eval(&input, &context());
    }
}
