//! Parallel and Map states: their branches and items run as child executions.

use serde_json::{Value, json};

use crate::store::StoreError;
use crate::store::workflow::{
    ABORTED, Commit, ExecutionRow, NewExecution, RUNNING, SUCCEEDED, TIMED_OUT,
};
use crate::workflow::definition::{Kind, Limit, State};
use crate::workflow::errors::{self, StateError};
use crate::workflow::path::VARIABLES;
use crate::workflow::payload;

use super::cursor::{Cursor, MapLimits, Phase};
use super::{Executor, event, json_text, within_payload_limit};

impl Executor {
    /// Enters a Parallel or Map state: its children start.
    pub(super) fn fan_out(
        &self,
        row: &ExecutionRow,
        cursor: &Cursor,
        state: &State,
        context: &Value,
    ) -> Commit {
        let limits = match map_limits(state, &cursor.input, context) {
            Ok(l) => l,
            Err(e) => return self.failure(row, cursor, state, e, Vec::new()),
        };
        match self.children_inputs(state, &cursor.input, context) {
            Err(e) => self.failure(row, cursor, state, e, Vec::new()),
            Ok((_, inputs)) if inputs.is_empty() => {
                match self.finish(state, &cursor.input, json!([]), context, cursor) {
                    Ok((after, output)) => self.transition(row, &after, state, output, Vec::new()),
                    Err(e) => self.failure(row, cursor, state, e, Vec::new()),
                }
            }
            Ok((machines, inputs)) => {
                let generation = row.version;
                let total = inputs.len() as i64;
                let first = match limits.map_or(0, |l| l.max_concurrency) {
                    0 => total,
                    n => total.min(i64::try_from(n).unwrap_or(i64::MAX)),
                };
                let variables = self.visible_variables(row, cursor);
                let spawn = (0..first)
                    .map(|i| self.child(row, generation, i, &machines, &inputs, &variables))
                    .collect();
                let mut waiting = cursor.clone();
                waiting.phase = Phase::Children {
                    generation,
                    total,
                    spawned: first,
                    limits,
                };
                let kind = if matches!(state.kind, Kind::Map { .. }) {
                    "MapStateStarted"
                } else {
                    "ParallelStateStarted"
                };
                let history = vec![event(
                    kind,
                    Some(&cursor.state),
                    json!({ "children": total }),
                )];
                self.rest(row, &waiting, history, spawn)
            }
        }
    }

    /// The sub-machine (as JSON) and input of each child of a Parallel or Map state.
    fn children_inputs(
        &self,
        state: &State,
        raw: &Value,
        context: &Value,
    ) -> Result<(Vec<String>, Vec<Value>), StateError> {
        match &state.kind {
            Kind::Parallel { branches } => {
                let name = context["State"]["Name"].as_str().unwrap_or_default();
                let input = self.state_input(state, name, raw, context)?;
                Ok((
                    branches.iter().map(|b| b.source.to_string()).collect(),
                    vec![input; branches.len()],
                ))
            }
            Kind::Map {
                items,
                item_template,
                processor,
                ..
            } if state.jsonata.is_some() => {
                let name = context["State"]["Name"].as_str().unwrap_or_default();
                let inputs =
                    self.jsonata_items(name, items.as_ref(), item_template.as_ref(), raw, context)?;
                Ok((vec![processor.source.to_string()], inputs))
            }
            Kind::Map {
                items_path,
                item_selector,
                processor,
                ..
            } => {
                let input = payload::input_path(state, raw)?;
                let items = match items_path.select(&input, context) {
                    Some(Value::Array(items)) => items,
                    _ => {
                        return Err(StateError::new(
                            errors::RUNTIME,
                            format!("ItemsPath {:?} does not select an array", items_path.text()),
                        ));
                    }
                };
                let inputs = match item_selector {
                    None => items,
                    Some(t) => items
                        .into_iter()
                        .enumerate()
                        .map(|(i, item)| {
                            let mut ctx = context.clone();
                            ctx["Map"] = json!({ "Item": { "Index": i, "Value": item } });
                            payload::resolve(t, &input, &ctx)
                        })
                        .collect::<Result<_, _>>()?,
                };
                Ok((vec![processor.source.to_string()], inputs))
            }
            _ => Ok((Vec::new(), Vec::new())),
        }
    }

    fn child(
        &self,
        row: &ExecutionRow,
        generation: i64,
        index: i64,
        machines: &[String],
        inputs: &[Value],
        variables: &Value,
    ) -> NewExecution {
        let id = format!("{}:{generation}:{index}", row.id);
        let definition = machines
            .get(index as usize)
            .or_else(|| machines.first())
            .cloned()
            .unwrap_or_default();
        let input = inputs.get(index as usize).cloned().unwrap_or(Value::Null);
        let start_at = self
            .machine(&definition, true)
            .map(|m| m.start_at.clone())
            .unwrap_or_default();
        NewExecution {
            name: id.clone(),
            id,
            tenant: row.tenant.clone(),
            workflow: row.workflow.clone(),
            root_id: row.root_id.clone(),
            parent: Some((row.id.clone(), generation, index)),
            definition,
            context: if variables.is_object() {
                let mut context: Value =
                    serde_json::from_str(&row.context).unwrap_or_else(|_| json!({}));
                context[VARIABLES] = variables.clone();
                context.to_string()
            } else {
                row.context.clone()
            },
            input: input.to_string(),
            cursor: json_text(&Cursor::enter(&start_at, input)),
            deadline_at: row.deadline_at,
            depth: row.depth,
        }
    }

    /// A Parallel or Map state woken by a child: start more, finish, or fail.
    pub(super) async fn collect(
        &self,
        row: &ExecutionRow,
        cursor: &Cursor,
        state: &State,
    ) -> Result<Option<Commit>, StoreError> {
        let Phase::Children {
            generation,
            total,
            spawned,
            limits,
        } = cursor.phase
        else {
            return Ok(None);
        };
        let limits = match limits.map_or_else(
            || map_limits(state, &cursor.input, &self.context(row, cursor)),
            |l| Ok(Some(l)),
        ) {
            Ok(l) => l,
            Err(e) => return Ok(Some(self.failure(row, cursor, state, e, Vec::new()))),
        };
        let children = self.store.wf_children(&row.id, generation).await?;
        let failed: Vec<_> = children
            .iter()
            .filter(|c| c.status != RUNNING && c.status != SUCCEEDED)
            .collect();
        let running = children.iter().filter(|c| c.status == RUNNING).count() as i64;
        let done = children.len() as i64 - running;
        let context = self.context(row, cursor);
        let child_error = |c: &crate::store::workflow::ChildOutcome| match c.status.as_str() {
            ABORTED => StateError::new(
                errors::BRANCH_FAILED,
                format!(
                    "{} {} was stopped{}",
                    if matches!(state.kind, Kind::Map { .. }) {
                        "item"
                    } else {
                        "branch"
                    },
                    c.index,
                    c.cause
                        .as_deref()
                        .map(|c| format!(": {c}"))
                        .unwrap_or_default()
                ),
            ),
            status => StateError {
                error: c.error.clone().unwrap_or_else(|| match status {
                    TIMED_OUT => errors::TIMEOUT.to_string(),
                    _ => errors::TASK_FAILED.to_string(),
                }),
                cause: c.cause.clone().unwrap_or_default(),
            },
        };
        let exceeded = match limits {
            Some(MapLimits {
                tolerated_count,
                tolerated_percentage,
                ..
            }) if tolerated_count.is_some() || tolerated_percentage.is_some() => {
                let f = failed.len() as f64;
                let over_count = tolerated_count.is_some_and(|c| failed.len() as u64 > c);
                let over_share = tolerated_percentage.is_some_and(|p| f * 100.0 / total as f64 > p);
                (over_count || over_share).then(|| {
                    StateError::new(
                        errors::EXCEED_TOLERATED_FAILURE_THRESHOLD,
                        format!(
                            "The specified tolerated failure threshold was exceeded: {} of {total} items failed",
                            failed.len()
                        ),
                    )
                })
            }
            _ => failed.first().map(|c| child_error(c)),
        };
        if let Some(error) = exceeded {
            self.store.wf_abort_children(&row.id, generation).await?;
            let events = vec![event(
                "ChildFailed",
                Some(&cursor.state),
                json!({ "error": error.error, "cause": error.cause }),
            )];
            return Ok(Some(self.failure(row, cursor, state, error, events)));
        }
        let max_concurrency =
            limits.map_or(0, |l| i64::try_from(l.max_concurrency).unwrap_or(i64::MAX));
        if spawned < total && running < max_concurrency.max(1) {
            let (machines, inputs) = match self.children_inputs(state, &cursor.input, &context) {
                Ok(x) => x,
                Err(e) => return Ok(Some(self.failure(row, cursor, state, e, Vec::new()))),
            };
            let room = max_concurrency - running;
            let more = room.min(total - spawned);
            let variables = self.visible_variables(row, cursor);
            let spawn = (spawned..spawned + more)
                .map(|i| self.child(row, generation, i, &machines, &inputs, &variables))
                .collect();
            let mut next = cursor.clone();
            next.phase = Phase::Children {
                generation,
                total,
                spawned: spawned + more,
                limits,
            };
            return Ok(Some(self.rest(row, &next, Vec::new(), spawn)));
        }
        if done < total {
            let still = cursor.clone();
            return Ok(Some(self.rest(row, &still, Vec::new(), Vec::new())));
        }
        let results: Vec<Value> = children
            .iter()
            .map(|c| match (&c.status[..], &c.output) {
                (SUCCEEDED, Some(o)) => serde_json::from_str(o).unwrap_or(Value::Null),
                _ => child_error(c).to_json(),
            })
            .collect();
        let events = vec![event(
            "ChildrenSucceeded",
            Some(&cursor.state),
            json!({ "children": total }),
        )];
        let results = match within_payload_limit(Value::Array(results), &cursor.state) {
            Ok(r) => r,
            Err(e) => return Ok(Some(self.failure(row, cursor, state, e, events))),
        };
        Ok(Some(
            match self.finish(state, &cursor.input, results, &context, cursor) {
                Ok((after, output)) => self.transition(row, &after, state, output, events),
                Err(e) => self.failure(row, cursor, state, e, events),
            },
        ))
    }
}

/// A Map's limits, each `...Path` read from the state's input (a Parallel has none).
/// A path that selects nothing or a value out of range is `States.Runtime`.
fn map_limits(
    state: &State,
    raw: &Value,
    context: &Value,
) -> Result<Option<MapLimits>, StateError> {
    let Kind::Map {
        max_concurrency,
        tolerated_count,
        tolerated_percentage,
        ..
    } = &state.kind
    else {
        return Ok(None);
    };
    let read = |p: &crate::workflow::path::Path, field: &str, ok: &dyn Fn(&Value) -> bool| match p
        .select(raw, context)
    {
        Some(v) if ok(&v) => Ok(v),
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
    };
    let whole = |v: &Value| v.as_u64().is_some();
    let share = |v: &Value| v.as_f64().is_some_and(|p| (0.0..=100.0).contains(&p));
    let count = |l: &Limit<u64>, field: &str| match l {
        Limit::Fixed(n) => Ok(*n),
        Limit::Path(p) => read(p, field, &whole).map(|v| v.as_u64().unwrap_or(0)),
    };
    Ok(Some(MapLimits {
        max_concurrency: count(max_concurrency, "MaxConcurrencyPath")?,
        tolerated_count: tolerated_count
            .as_ref()
            .map(|l| count(l, "ToleratedFailureCountPath"))
            .transpose()?,
        tolerated_percentage: tolerated_percentage
            .as_ref()
            .map(|l| match l {
                Limit::Fixed(p) => Ok(*p),
                Limit::Path(p) => read(p, "ToleratedFailurePercentagePath", &share)
                    .map(|v| v.as_f64().unwrap_or(0.0)),
            })
            .transpose()?,
    }))
}
