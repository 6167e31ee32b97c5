//! One step of an execution: the next transition of its current state, and the data
//! every state reads (the context object, variables, a result's way to the output).

use serde_json::{Value, json};

use crate::store::workflow::{Commit, ExecutionRow, TIMED_OUT};
use crate::store::{StoreError, now_ms};
use crate::workflow::definition::{Kind, State, Template};
use crate::workflow::errors::{self, StateError};
use crate::workflow::jsonata;
use crate::workflow::path::VARIABLES;
use crate::workflow::payload;

use super::cursor::{Cursor, Phase};
use super::{Executor, iso};

/// The most a single variable, or one `Assign`'s variables together, may hold, and
/// the most all of an execution's variables may hold (the developer guide's limits).
const MAX_VARIABLE_BYTES: usize = 256 * 1024;
const MAX_VARIABLES_BYTES: usize = 10 * 1024 * 1024;

impl Executor {
    /// Works out the next transition of `row`. `None`: nothing to write now.
    pub(super) async fn step(&self, row: &mut ExecutionRow) -> Result<Option<Commit>, StoreError> {
        let now = now_ms();
        let cursor: Cursor = match serde_json::from_str(&row.cursor) {
            Ok(c) => c,
            Err(e) => {
                return Ok(Some(self.end_failed(
                    row,
                    None,
                    StateError::new(errors::RUNTIME, format!("unreadable execution cursor: {e}")),
                )));
            }
        };
        if row.deadline_at.is_some_and(|d| d <= now) {
            return Ok(Some(self.end(
                row,
                TIMED_OUT,
                Some(&cursor.state),
                StateError::new(errors::TIMEOUT, "the execution ran past its TimeoutSeconds"),
            )));
        }
        let machine = match self.machine(&row.definition, row.parent_id.is_some()) {
            Ok(m) => m,
            Err(e) => {
                return Ok(Some(self.end_failed(
                    row,
                    Some(&cursor.state),
                    StateError::new(errors::RUNTIME, format!("invalid definition: {e}")),
                )));
            }
        };
        let Some(state) = machine.state(&cursor.state) else {
            return Ok(Some(self.end_failed(
                row,
                Some(&cursor.state),
                StateError::new(errors::RUNTIME, format!("no state {:?}", cursor.state)),
            )));
        };
        let context = self.context(row, &cursor);
        Ok(Some(match (&state.kind, &cursor.phase) {
            (_, Phase::Wait { until, output }) => {
                if *until > now && !self.options.skip_waits {
                    return Ok(Some(self.sleep(row, &cursor, *until)));
                }
                self.transition(row, &cursor, state, output.clone(), Vec::new())
            }
            (Kind::Task { .. }, Phase::Task) => self.interrupted(row, &cursor, state),
            (Kind::Task { .. }, Phase::Callback { .. }) => {
                return self.callback(row, &cursor, state, &context).await;
            }
            (Kind::Task { .. }, _) => match self.run_task(row, &cursor, state, &context).await? {
                Some(commit) => commit,
                None => return Ok(None),
            },
            (Kind::Parallel { .. } | Kind::Map { .. }, Phase::Children { .. }) => {
                return self.collect(row, &cursor, state).await;
            }
            (Kind::Parallel { .. } | Kind::Map { .. }, _) => {
                self.fan_out(row, &cursor, state, &context).await
            }
            _ => self.simple(row, &cursor, state, &context),
        }))
    }

    /// The context object (`$$`) of the state the cursor is in: every field the
    /// developer guide lists, so a path to any of them selects something. Before a
    /// redrive, `RedriveCount` is 0 and `RedriveTime` null (a redrive writes both into
    /// the stored context); `Task.Token` is null here, set only while a callback task's
    /// `Parameters` are read.
    pub(super) fn context(&self, row: &ExecutionRow, cursor: &Cursor) -> Value {
        let mut context: Value = serde_json::from_str(&row.context).unwrap_or_else(|_| json!({}));
        if !context.is_object() {
            context = json!({});
        }
        if !context["Execution"].is_object() {
            context["Execution"] = json!({});
        }
        let execution = &mut context["Execution"];
        for (field, value) in [
            ("Id", json!(row.root_id)),
            ("Name", json!(row.name)),
            ("Input", Value::Null),
            ("StartTime", Value::Null),
            (
                "RoleArn",
                json!(format!(
                    "arn:orquesta:iam::{}:role/{}",
                    row.tenant, row.workflow
                )),
            ),
            ("RedriveCount", json!(0)),
            ("RedriveTime", Value::Null),
        ] {
            if execution.get(field).is_none() {
                execution[field] = value;
            }
        }
        if !context["StateMachine"].is_object() {
            context["StateMachine"] =
                json!({ "Id": format!("{}:{}", row.tenant, row.workflow), "Name": row.workflow });
        }
        context["State"] = json!({
            "Name": cursor.state,
            "EnteredTime": iso(cursor.entered_at),
            "RetryCount": cursor.retries.iter().sum::<u32>(),
        });
        context["Task"] = json!({ "Token": null });
        // Variables in scope: the outer scopes' (fixed when a child started) under this
        // execution's own.
        if !cursor.vars.is_empty() {
            if !context[VARIABLES].is_object() {
                context[VARIABLES] = json!({});
            }
            if let Some(vars) = context[VARIABLES].as_object_mut() {
                vars.extend(cursor.vars.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        context
    }

    /// `cursor` with the variables `assign` sets, read against `doc` (`$`) and the
    /// context; every value is read before any is set, as in the cloud.
    pub(super) fn assigned(
        &self,
        assign: &Option<Template>,
        doc: &Value,
        context: &Value,
        cursor: &Cursor,
    ) -> Result<Cursor, StateError> {
        let Some(template) = assign else {
            return Ok(cursor.clone());
        };
        let Value::Object(values) = payload::resolve(template, doc, context)? else {
            return Ok(cursor.clone());
        };
        self.with_variables(values, cursor)
    }

    /// `cursor` with `values` set as variables, within the developer guide's limits.
    pub(super) fn with_variables(
        &self,
        values: serde_json::Map<String, Value>,
        cursor: &Cursor,
    ) -> Result<Cursor, StateError> {
        let too_big = |what: String| StateError::new(errors::DATA_LIMIT_EXCEEDED, what);
        for (name, value) in &values {
            let size = payload::json_len(value);
            if size > MAX_VARIABLE_BYTES {
                return Err(too_big(format!(
                    "The variable ${name} is {size} bytes, over the {MAX_VARIABLE_BYTES}-byte limit of a variable"
                )));
            }
        }
        let size = payload::json_len(&Value::Object(values.clone()));
        if size > MAX_VARIABLE_BYTES {
            return Err(too_big(format!(
                "The variables assigned by state '{}' are {size} bytes, over the {MAX_VARIABLE_BYTES}-byte limit of one Assign",
                cursor.state
            )));
        }
        let mut next = cursor.clone();
        next.vars.extend(values);
        let total = payload::json_len(&Value::Object(next.vars.clone()));
        if total > MAX_VARIABLES_BYTES {
            return Err(too_big(format!(
                "The execution's variables are {total} bytes, over the {MAX_VARIABLES_BYTES}-byte limit"
            )));
        }
        Ok(next)
    }

    /// A Task's, Parallel's or Map's result through `ResultSelector`, its `Assign`
    /// (reading the selected result as `$`), `ResultPath` and `OutputPath`.
    pub(super) fn finish(
        &self,
        state: &State,
        raw: &Value,
        result: Value,
        context: &Value,
        cursor: &Cursor,
    ) -> Result<(Cursor, Value), StateError> {
        if let Some(io) = &state.jsonata {
            let states = super::jsonata::states(context, raw, Some(("result", result.clone())));
            return self.jsonata_io(io, states, context, result, cursor);
        }
        let selected = payload::selected_result(state, result, context)?;
        let after = self.assigned(&state.assign, &selected, context, cursor)?;
        Ok((after, payload::output_of(state, raw, selected)?))
    }

    /// What a Task or Parallel works on: its `Arguments` (JSONata; the input without
    /// them), or its input through `InputPath` and `Parameters` (JSONPath).
    pub(super) fn state_input(
        &self,
        state: &State,
        raw: &Value,
        context: &Value,
    ) -> Result<Value, StateError> {
        match &state.jsonata {
            Some(io) => match &io.arguments {
                Some(t) => {
                    let states = super::jsonata::states(context, raw, None);
                    jsonata::evaluate(t, &super::jsonata::env(context, states), "Arguments")
                }
                None => Ok(raw.clone()),
            },
            None => payload::effective_input(state, raw, context),
        }
    }

    /// The variables a child execution sees, read-only: every one in scope here.
    pub(super) fn visible_variables(&self, row: &ExecutionRow, cursor: &Cursor) -> Value {
        self.context(row, cursor)
            .get(VARIABLES)
            .cloned()
            .unwrap_or(Value::Null)
    }
}
