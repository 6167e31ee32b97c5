//! JSONata states at run time: `$states` for each field, `Output` and `Assign` (read
//! together, before either takes effect, as in the cloud), and the states that call no
//! plugin (Pass, Choice, Wait, Succeed, Fail).

use serde_json::{Map, Value, json};

use crate::store::now_ms;
use crate::store::workflow::{Commit, ExecutionRow};
use crate::workflow::definition::{JsonataIo, Kind, Seconds, State, Text, WaitFor};
use crate::workflow::errors::{self, StateError};
use crate::workflow::jsonata::{self, Env, Tmpl};
use crate::workflow::path::VARIABLES;

use super::cursor::{Cursor, Phase};
use super::{Executor, event, iso};

/// `$states`: the state's input, the context object (without the variables, which are
/// `$name`), and the result or error output where the field may read one.
pub(super) fn states(context: &Value, input: &Value, extra: Option<(&str, Value)>) -> Value {
    let mut context = context.clone();
    if let Some(c) = context.as_object_mut() {
        c.remove(VARIABLES);
    }
    let mut states = json!({ "input": input, "context": context });
    if let Some((name, value)) = extra {
        states[name] = value;
    }
    states
}

/// What an expression reads: `$states` and the variables in scope.
pub(super) fn env(context: &Value, states: Value) -> Env<'_> {
    Env {
        states,
        vars: context.get(VARIABLES).and_then(Value::as_object),
    }
}

/// A value an expression gave that its field cannot take.
pub(super) fn unexpected(field: &str, expected: &str, got: &Value) -> StateError {
    StateError::evaluation(
        field,
        format!(
            "The JSONata expression specified for the field '{field}' returned an unexpected value: expected {expected}, got {}.",
            crate::workflow::payload::in_cause(got)
        ),
    )
}

/// A field that must hold a positive (or, `zero_ok`, non-negative) integer.
pub(super) fn whole_seconds(
    seconds: &Seconds,
    env: &Env,
    field: &str,
    zero_ok: bool,
) -> Result<Option<u64>, StateError> {
    match seconds {
        Seconds::Fixed(n) => Ok(Some(*n)),
        Seconds::Path(_) => Ok(None),
        Seconds::Expr(expr) => {
            let v = jsonata::evaluate_one(expr, env, field)?;
            match v.as_u64().or_else(|| {
                v.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                    .map(|f| f as u64)
            }) {
                Some(n) if n > 0 || zero_ok => Ok(Some(n)),
                _ => Err(unexpected(
                    field,
                    if zero_ok {
                        "a non-negative integer"
                    } else {
                        "a positive integer"
                    },
                    &v,
                )),
            }
        }
    }
}

impl Executor {
    /// `Output` (or `default` without one) and `Assign` of a JSONata state, catcher or
    /// choice rule, both reading `states` and the variables as they were.
    pub(super) fn jsonata_io(
        &self,
        io: &JsonataIo,
        states: Value,
        context: &Value,
        default: Value,
        cursor: &Cursor,
    ) -> Result<(Cursor, Value), StateError> {
        let env = env(context, states);
        let output = match &io.output {
            Some(t) => jsonata::evaluate(t, &env, "Output")?,
            None => default,
        };
        let after = match &io.assign {
            Some(t) => match jsonata::evaluate(t, &env, "Assign")? {
                Value::Object(values) => self.with_variables(values, cursor)?,
                _ => self.with_variables(Map::new(), cursor)?,
            },
            None => cursor.clone(),
        };
        Ok((after, output))
    }

    /// Pass, Choice, Wait, Succeed and Fail in JSONata.
    pub(super) fn simple_jsonata(
        &self,
        row: &ExecutionRow,
        cursor: &Cursor,
        state: &State,
        io: &JsonataIo,
        context: &Value,
    ) -> Commit {
        let raw = &cursor.input;
        let name = cursor.state.as_str();
        let outcome: Result<Commit, StateError> = (|| match &state.kind {
            Kind::Pass { .. } | Kind::Succeed => {
                let states = states(context, raw, None);
                let (after, output) = self.jsonata_io(io, states, context, raw.clone(), cursor)?;
                Ok(self.transition(row, &after, state, output, Vec::new()))
            }
            Kind::Choice {
                conditions,
                default,
                ..
            } => {
                let env = env(context, states(context, raw, None));
                for (i, rule) in conditions.iter().enumerate() {
                    let field = format!("Choices[{i}]/Condition");
                    let matched = match jsonata::evaluate(&rule.condition, &env, &field)? {
                        Value::Bool(b) => b,
                        other => return Err(unexpected(&field, "a boolean", &other)),
                    };
                    if matched {
                        let (after, output) = self.jsonata_io(
                            &rule.io,
                            env.states.clone(),
                            context,
                            raw.clone(),
                            cursor,
                        )?;
                        return Ok(self.leave(
                            row,
                            &after,
                            state,
                            Some(&rule.next),
                            output,
                            Vec::new(),
                        ));
                    }
                }
                let Some(default) = default else {
                    return Err(StateError::new(errors::NO_CHOICE_MATCHED, "No Matches!"));
                };
                let (after, output) =
                    self.jsonata_io(io, env.states.clone(), context, raw.clone(), cursor)?;
                Ok(self.leave(row, &after, state, Some(default), output, Vec::new()))
            }
            Kind::Wait(wait) => {
                let env = env(context, states(context, raw, None));
                let now = now_ms();
                let until = match wait {
                    WaitFor::Seconds(s) => {
                        let n = whole_seconds(s, &env, "Seconds", true)?.unwrap_or(0);
                        now.saturating_add(
                            i64::try_from(n)
                                .unwrap_or(i64::MAX / 2)
                                .saturating_mul(1000),
                        )
                    }
                    WaitFor::Timestamp(t) => timestamp(t, "Timestamp")?,
                    WaitFor::TimestampExpr(expr) => {
                        match jsonata::evaluate_one(expr, &env, "Timestamp")? {
                            Value::String(t) => timestamp(&t, "Timestamp")?,
                            other => {
                                return Err(unexpected("Timestamp", "a timestamp string", &other));
                            }
                        }
                    }
                    WaitFor::TimestampPath(_) => now,
                };
                let (after, output) =
                    self.jsonata_io(io, env.states.clone(), context, raw.clone(), cursor)?;
                if until <= now_ms() || self.options.skip_waits {
                    let events = vec![event(
                        "WaitStateEntered",
                        Some(name),
                        json!({ "until": iso(until) }),
                    )];
                    return Ok(self.transition(row, &after, state, output, events));
                }
                let mut waiting = after;
                waiting.phase = Phase::Wait { until, output };
                Ok(self.sleep(row, &waiting, until))
            }
            Kind::Fail { error, cause } => {
                let env = env(context, states(context, raw, None));
                let read = |t: &Option<Text>, field: &str| -> Result<String, StateError> {
                    match t {
                        None => Ok(String::new()),
                        Some(Text::Fixed(s)) => Ok(s.clone()),
                        Some(Text::Expr(expr)) => match jsonata::evaluate_one(expr, &env, field)? {
                            Value::String(s) => Ok(s),
                            other => Err(unexpected(field, "a string", &other)),
                        },
                        Some(Text::Path(_) | Text::Call(_)) => Ok(String::new()),
                    }
                };
                Err(StateError {
                    error: read(error, "Error").map_err(|e| e.in_state(name))?,
                    cause: read(cause, "Cause").map_err(|e| e.in_state(name))?,
                    evaluated: None,
                })
            }
            _ => Err(StateError::new(errors::RUNTIME, "not a simple state")),
        })();
        outcome.unwrap_or_else(|e| self.failure(row, cursor, state, e, Vec::new()))
    }

    /// A Map's items in JSONata: those its `ItemReader` read (`read`), else `Items`
    /// (the input without it), each through `ItemSelector` with
    /// `$states.context.Map.Item` set.
    pub(super) fn jsonata_items(
        &self,
        items: Option<&Tmpl>,
        selector: Option<&Tmpl>,
        read: Option<Vec<Value>>,
        raw: &Value,
        context: &Value,
    ) -> Result<Vec<Value>, StateError> {
        let list = match (read, items) {
            (Some(read), _) => Value::Array(read),
            (None, Some(t)) => {
                jsonata::evaluate(t, &env(context, states(context, raw, None)), "Items")?
            }
            (None, None) => raw.clone(),
        };
        let Value::Array(list) = list else {
            return Err(unexpected("Items", "an array", &list));
        };
        let Some(selector) = selector else {
            return Ok(list);
        };
        list.into_iter()
            .enumerate()
            .map(|(i, item)| {
                let mut ctx = context.clone();
                ctx["Map"] = json!({ "Item": { "Index": i, "Value": item } });
                let states = states(&ctx, raw, None);
                jsonata::evaluate(selector, &env(&ctx, states), "ItemSelector")
            })
            .collect()
    }
}

/// A Wait's timestamp as ms since the epoch.
fn timestamp(text: &str, field: &str) -> Result<i64, StateError> {
    crate::workflow::choice::wait_timestamp(text)
        .map(|t| t.timestamp_millis())
        .ok_or_else(|| unexpected(field, "an RFC 3339 timestamp", &Value::from(text)))
}
