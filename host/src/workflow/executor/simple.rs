//! Pass, Choice, Wait, Succeed and Fail: the states that call no plugin.

use serde_json::{Value, json};

use crate::store::now_ms;
use crate::store::workflow::{Commit, ExecutionRow};
use crate::workflow::definition::{Kind, Seconds, State, Text, WaitFor};
use crate::workflow::errors::{self, StateError};
use crate::workflow::payload;

use super::cursor::{Cursor, Phase};
use super::{Executor, event, iso};

impl Executor {
    /// Pass, Choice, Wait, Succeed and Fail: no plugin, no children.
    pub(super) fn simple(
        &self,
        row: &ExecutionRow,
        cursor: &Cursor,
        state: &State,
        context: &Value,
    ) -> Commit {
        if let Some(io) = &state.jsonata {
            return self.simple_jsonata(row, cursor, state, io, context);
        }
        let raw = &cursor.input;
        let outcome: Result<Commit, StateError> = (|| match &state.kind {
            Kind::Pass { result } => {
                let result = match result {
                    Some(r) => r.clone(),
                    None => payload::effective_input(state, raw, context)?,
                };
                let after = self.assigned(&state.assign, &result, context, cursor)?;
                let output = payload::state_output(state, raw, result, context)?;
                Ok(self.transition(row, &after, state, output, Vec::new()))
            }
            Kind::Choice {
                choices,
                assigns,
                default,
                ..
            } => {
                let input = payload::input_path(state, raw)?;
                let mut next = None;
                for (i, (rule, target)) in choices.iter().enumerate() {
                    if rule.eval(&input, context)? {
                        next = Some((target, assigns.get(i).and_then(Option::as_ref)));
                        break;
                    }
                }
                let (next, assign) = match (next, default) {
                    (Some((target, assign)), _) => (target, assign.cloned()),
                    (None, Some(d)) => (d, state.assign.clone()),
                    (None, None) => {
                        return Err(StateError::new(errors::NO_CHOICE_MATCHED, "No Matches!"));
                    }
                };
                let after = self.assigned(&assign, &input, context, cursor)?;
                let output = payload::passthrough(state, raw)?;
                Ok(self.leave(row, &after, state, Some(next), output, Vec::new()))
            }
            Kind::Wait(wait) => {
                let input = payload::input_path(state, raw)?;
                let until = wait_until(wait, &input, context, now_ms())?;
                let cursor = &self.assigned(&state.assign, &input, context, cursor)?;
                let output = payload::passthrough(state, raw)?;
                let mut waiting = cursor.clone();
                waiting.phase = Phase::Wait {
                    until,
                    output: output.clone(),
                };
                if until <= now_ms() || self.options.skip_waits {
                    let events = vec![event(
                        "WaitStateEntered",
                        Some(&cursor.state),
                        json!({ "until": iso(until) }),
                    )];
                    return Ok(self.transition(row, cursor, state, output, events));
                }
                Ok(self.sleep(row, &waiting, until))
            }
            Kind::Succeed => {
                let output = payload::passthrough(state, raw)?;
                Ok(self.leave(row, cursor, state, None, output, Vec::new()))
            }
            Kind::Fail { error, cause } => {
                // A path or function that gives no string is `States.Runtime` (the
                // developer guide: it "must select a field that contains a string").
                let read = |t: &Option<Text>, field: &str| -> Result<String, StateError> {
                    let (what, value) = match t {
                        None => return Ok(String::new()),
                        Some(Text::Fixed(s)) => return Ok(s.clone()),
                        Some(Text::Path(p)) => (p.text().to_string(), p.select(raw, context)),
                        Some(Text::Call(c)) => {
                            (c.function.name().to_string(), Some(c.eval(raw, context)?))
                        }
                        // A JSONata state's: simple_jsonata reads it.
                        Some(Text::Expr(_)) => return Ok(String::new()),
                    };
                    match value {
                        Some(Value::String(s)) => Ok(s),
                        Some(other) => Err(StateError::new(
                            errors::RUNTIME,
                            format!(
                                "The value of the field '{field}' ('{what}') is a {}, not a string",
                                crate::workflow::path::kind_of(&other)
                            ),
                        )),
                        None => Err(StateError::new(
                            errors::RUNTIME,
                            format!(
                                "The JSONPath '{what}' specified for the field '{field}' could not be found in the input '{}'",
                                payload::in_cause(raw)
                            ),
                        )),
                    }
                };
                // A path that fails is raised in the state; the error it names is the
                // state's own (`failure` leaves a Fail state's errors as they are).
                let name = cursor.state.as_str();
                Err(StateError {
                    error: read(error, "ErrorPath").map_err(|e| e.in_state(name))?,
                    cause: read(cause, "CausePath").map_err(|e| e.in_state(name))?,
                    evaluated: None,
                })
            }
            _ => Err(StateError::new(errors::RUNTIME, "not a simple state")),
        })();
        outcome.unwrap_or_else(|e| self.failure(row, cursor, state, e, Vec::new()))
    }
}

/// When a Wait state ends, in ms since the epoch.
fn wait_until(wait: &WaitFor, input: &Value, context: &Value, now: i64) -> Result<i64, StateError> {
    let bad = |what: String| StateError::new(errors::RUNTIME, what);
    let at = |text: &str| {
        crate::workflow::choice::wait_timestamp(text)
            .map(|t| t.timestamp_millis())
            .ok_or_else(|| bad(format!("{text:?} is not an RFC 3339 timestamp")))
    };
    match wait {
        WaitFor::Seconds(Seconds::Fixed(s)) => Ok(now + (*s as i64) * 1000),
        WaitFor::Seconds(Seconds::Path(p)) => {
            match p.select(input, context).and_then(|v| v.as_u64()) {
                Some(s) => Ok(now + (s as i64) * 1000),
                None => Err(bad(format!(
                    "SecondsPath {:?} is not a non-negative integer",
                    p.text()
                ))),
            }
        }
        // A JSONata state's: simple_jsonata reads it.
        WaitFor::Seconds(Seconds::Expr(_)) | WaitFor::TimestampExpr(_) => Ok(now),
        WaitFor::Timestamp(t) => at(t),
        WaitFor::TimestampPath(p) => match p.select(input, context) {
            Some(Value::String(t)) => at(&t),
            _ => Err(bad(format!(
                "TimestampPath {:?} is not a timestamp string",
                p.text()
            ))),
        },
    }
}
