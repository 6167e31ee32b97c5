//! Parallel and Map states: their branches and items run as child executions.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::store::StoreError;
use crate::store::workflow::{
    ABORTED, Commit, ExecutionRow, NewExecution, RUNNING, SUCCEEDED, TIMED_OUT,
};
use crate::workflow::definition::{Kind, Limit, Machine, State};
use crate::workflow::distributed::ItemBatcher;
use crate::workflow::errors::{self, StateError};
use crate::workflow::path::VARIABLES;
use crate::workflow::payload;

use super::cursor::{Cursor, MapLimits, Phase};
use super::distributed::{resolve_args, shaped_results};
use super::jsonata::unexpected;
use super::limits::{expression_field, limit_expression, path_value, read_count};
use super::{
    Executor, MAP_RUN_CACHE_BYTES, MAX_MAP_CHILDREN, MAX_PAYLOAD_BYTES, event, json_text,
    within_payload_limit,
};

/// The children of a Parallel or Map run: the sub-machine (as JSON) of each (one for
/// every Map item) and their inputs.
pub(super) struct Children {
    pub(super) machines: Vec<String>,
    pub(super) inputs: Vec<Value>,
}

/// Map runs' children by (execution, generation), with the bytes of their inputs.
pub(super) type MapRuns = std::collections::HashMap<(String, i64), (Arc<Children>, usize)>;

impl Executor {
    /// Enters a Parallel or Map state: its children start.
    pub(super) async fn fan_out(
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
        let generation = row.version;
        // A run whose results are written has an id, naming its folder; one whose
        // `ResultWriter` only shapes them has none.
        let map_run = match &state.kind {
            Kind::Map {
                writer: Some(w), ..
            } if w.export.is_some() => Some(uuid::Uuid::new_v4().to_string()),
            _ => None,
        };
        let children = match self
            .children_of(row, generation, state, &cursor.input, context)
            .await
        {
            Ok(c) => c,
            Err(e) => return self.failure(row, cursor, state, e, Vec::new()),
        };
        if children.inputs.is_empty() {
            self.forget_map_run(row, generation);
            let result = match &map_run {
                Some(id) => self.write_results(row, cursor, state, id, &[], &[]).await,
                None => Ok(json!([])),
            };
            return match result.and_then(|r| self.finish(state, &cursor.input, r, context, cursor))
            {
                Ok((after, output)) => self.transition(row, &after, state, output, Vec::new()),
                Err(e) => self.failure(row, cursor, state, e, Vec::new()),
            };
        }
        let total = children.inputs.len() as i64;
        let first = match limits.map_or(0, |l| l.max_concurrency) {
            0 => total,
            n => total.min(i64::try_from(n).unwrap_or(i64::MAX)),
        };
        let variables = self.visible_variables(row, cursor);
        let spawn = (0..first)
            .map(|i| self.child(row, generation, i, &children, &variables))
            .collect();
        let mut waiting = cursor.clone();
        waiting.phase = Phase::Children {
            generation,
            total,
            spawned: first,
            limits,
            map_run,
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

    /// The children of a run of this state: a Map's are worked out (its items read)
    /// once per run and kept while it runs (`MAP_RUN_CACHE_BYTES`).
    async fn children_of(
        &self,
        row: &ExecutionRow,
        generation: i64,
        state: &State,
        raw: &Value,
        context: &Value,
    ) -> Result<Arc<Children>, StateError> {
        let key = (row.id.clone(), generation);
        if let Some((c, _)) = self.map_runs_cache().get(&key) {
            return Ok(c.clone());
        }
        let children = Arc::new(self.children_inputs(row, state, raw, context).await?);
        if matches!(state.kind, Kind::Map { .. }) {
            let size: usize = children.inputs.iter().map(payload::json_len).sum();
            let mut cache = self.map_runs_cache();
            if size <= MAP_RUN_CACHE_BYTES {
                let mut used: usize = cache.values().map(|(_, s)| s).sum();
                while used + size > MAP_RUN_CACHE_BYTES {
                    let Some(k) = cache.keys().next().cloned() else {
                        break;
                    };
                    used -= cache.remove(&k).map_or(0, |(_, s)| s);
                }
                cache.insert(key, (children.clone(), size));
            }
        }
        Ok(children)
    }

    fn map_runs_cache(&self) -> std::sync::MutexGuard<'_, MapRuns> {
        self.map_runs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn forget_map_run(&self, row: &ExecutionRow, generation: i64) {
        self.map_runs_cache().remove(&(row.id.clone(), generation));
    }

    /// The sub-machine (as JSON) and input of each child of a Parallel or Map state:
    /// a Map's items from `ItemsPath` or its `ItemReader`, through `ItemSelector` and
    /// its `ItemBatcher`.
    async fn children_inputs(
        &self,
        row: &ExecutionRow,
        state: &State,
        raw: &Value,
        context: &Value,
    ) -> Result<Children, StateError> {
        match &state.kind {
            Kind::Parallel { branches } => {
                let input = self.state_input(state, raw, context)?;
                Ok(Children {
                    machines: branches.iter().map(|b| b.source.to_string()).collect(),
                    inputs: vec![input; branches.len()],
                })
            }
            Kind::Map {
                items,
                item_template,
                processor,
                reader,
                batcher,
                ..
            } if state.jsonata.is_some() => {
                let read = match reader {
                    Some(reader) => Some(self.read_items(&row.tenant, reader, raw, context).await?),
                    None => None,
                };
                let inputs =
                    self.jsonata_items(items.as_ref(), item_template.as_ref(), read, raw, context)?;
                map_children(
                    processor,
                    reader.is_some(),
                    batcher.as_deref(),
                    inputs,
                    raw,
                    context,
                )
            }
            Kind::Map {
                items_path,
                item_selector,
                processor,
                reader,
                batcher,
                ..
            } => {
                let input = payload::input_path(state, raw)?;
                let items = match reader {
                    Some(reader) => {
                        self.read_items(&row.tenant, reader, &input, context)
                            .await?
                    }
                    None => match items_path.select(&input, context) {
                        Some(Value::Array(items)) => items,
                        _ => {
                            return Err(StateError::new(
                                errors::RUNTIME,
                                format!(
                                    "ItemsPath {:?} does not select an array",
                                    items_path.text()
                                ),
                            ));
                        }
                    },
                };
                let items = match item_selector {
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
                map_children(
                    processor,
                    reader.is_some(),
                    batcher.as_deref(),
                    items,
                    &input,
                    context,
                )
            }
            _ => Ok(Children {
                machines: Vec::new(),
                inputs: Vec::new(),
            }),
        }
    }

    fn child(
        &self,
        row: &ExecutionRow,
        generation: i64,
        index: i64,
        children: &Children,
        variables: &Value,
    ) -> NewExecution {
        let id = format!("{}:{generation}:{index}", row.id);
        let definition = children
            .machines
            .get(index as usize)
            .or_else(|| children.machines.first())
            .cloned()
            .unwrap_or_default();
        let input = children
            .inputs
            .get(index as usize)
            .cloned()
            .unwrap_or(Value::Null);
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
            ref map_run,
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
                evaluated: None,
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
            if let Some(id) = map_run {
                // The cloud writes a failed run's results too: what succeeded, what
                // failed, and the items never started (PENDING).
                let rows = self.store.wf_children_rows(&row.id, generation).await?;
                let pending = self
                    .children_of(row, generation, state, &cursor.input, &context)
                    .await
                    .map(|c| {
                        c.inputs
                            .get(spawned as usize..)
                            .unwrap_or_default()
                            .to_vec()
                    })
                    .unwrap_or_default();
                if let Err(e) = self
                    .write_results(row, cursor, state, id, &rows, &pending)
                    .await
                {
                    tracing::warn!(execution = %row.id, error = %e, "a failed Map run's results were not written");
                }
            }
            self.forget_map_run(row, generation);
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
            let inputs = match self
                .children_of(row, generation, state, &cursor.input, &context)
                .await
            {
                Ok(x) => x,
                Err(e) => return Ok(Some(self.failure(row, cursor, state, e, Vec::new()))),
            };
            let room = max_concurrency - running;
            let more = room.min(total - spawned);
            let variables = self.visible_variables(row, cursor);
            let spawn = (spawned..spawned + more)
                .map(|i| self.child(row, generation, i, &inputs, &variables))
                .collect();
            let mut next = cursor.clone();
            next.phase = Phase::Children {
                generation,
                total,
                spawned: spawned + more,
                limits,
                map_run: map_run.clone(),
            };
            return Ok(Some(self.rest(row, &next, Vec::new(), spawn)));
        }
        if done < total {
            let still = cursor.clone();
            return Ok(Some(self.rest(row, &still, Vec::new(), Vec::new())));
        }
        self.forget_map_run(row, generation);
        let events = vec![event(
            "ChildrenSucceeded",
            Some(&cursor.state),
            json!({ "children": total }),
        )];
        let results = match (map_run, &state.kind) {
            (Some(id), _) => {
                let rows = self.store.wf_children_rows(&row.id, generation).await?;
                self.write_results(row, cursor, state, id, &rows, &[]).await
            }
            (
                None,
                Kind::Map {
                    writer: Some(writer),
                    label,
                    ..
                },
            ) => {
                let rows = self.store.wf_children_rows(&row.id, generation).await?;
                let shaped = shaped_results(row, &cursor.state, writer, label.as_deref(), &rows);
                within_payload_limit(Value::Array(shaped), &cursor.state)
            }
            (None, _) => {
                let results: Vec<Value> = children
                    .iter()
                    .map(|c| match (&c.status[..], &c.output) {
                        (SUCCEEDED, Some(o)) => serde_json::from_str(o).unwrap_or(Value::Null),
                        _ => child_error(c).to_json(),
                    })
                    .collect();
                within_payload_limit(Value::Array(results), &cursor.state)
            }
        };
        let results = match results {
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

/// A Map's items in batches, each child's input `{"Items": [...]}` with `BatchInput`
/// beside them as `"BatchInput"` (the cloud's shape): at most `MaxItemsPerBatch` items
/// and `MaxInputBytesPerBatch` bytes (and never over an execution's input limit).
fn batches(
    batcher: &ItemBatcher,
    items: Vec<Value>,
    input: &Value,
    context: &Value,
) -> Result<Vec<Value>, StateError> {
    let max_items = batcher
        .max_items
        .as_ref()
        .map(|l| read_count(l, input, context, "MaxItemsPerBatchPath"))
        .transpose()?
        .filter(|n| *n > 0)
        .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
    let max_bytes = batcher
        .max_bytes
        .as_ref()
        .map(|l| read_count(l, input, context, "MaxInputBytesPerBatchPath"))
        .transpose()?
        .filter(|n| *n > 0)
        .map_or(MAX_PAYLOAD_BYTES, |n| {
            usize::try_from(n)
                .unwrap_or(usize::MAX)
                .min(MAX_PAYLOAD_BYTES)
        });
    let batch_input = batcher
        .batch_input
        .as_ref()
        .map(|t| resolve_args(t, input, context, "ItemBatcher/BatchInput"))
        .transpose()?;
    if let Some(b) = &batch_input
        && !b.is_object()
    {
        return Err(unexpected("ItemBatcher/BatchInput", "an object", b));
    }
    let empty = |items: Vec<Value>| {
        let mut batch = serde_json::Map::new();
        if let Some(b) = &batch_input {
            batch.insert("BatchInput".into(), b.clone());
        }
        batch.insert("Items".into(), Value::Array(items));
        Value::Object(batch)
    };
    let base = payload::json_len(&empty(Vec::new()));
    let mut out = Vec::new();
    let mut current = Vec::new();
    let mut bytes = base;
    for (i, item) in items.into_iter().enumerate() {
        let size = payload::json_len(&item);
        if base + size > max_bytes {
            return Err(StateError::new(
                errors::RUNTIME,
                format!(
                    "Map item {i} is {size} bytes: with the batch around it, over the {max_bytes} bytes a batch may hold"
                ),
            ));
        }
        // After the first item, each adds a comma.
        if !current.is_empty() && (current.len() >= max_items || bytes + size + 1 > max_bytes) {
            out.push(empty(std::mem::take(&mut current)));
            bytes = base;
        }
        bytes += size + usize::from(!current.is_empty());
        current.push(item);
    }
    if !current.is_empty() {
        out.push(empty(current));
    }
    Ok(out)
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
    let share = |v: &Value| v.as_f64().is_some_and(|p| (0.0..=100.0).contains(&p));
    let count = |l: &Limit<u64>, field: &str| read_count(l, raw, context, field);
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
                Limit::Path(p) => {
                    path_value(p, raw, context, "ToleratedFailurePercentagePath", &share)
                        .map(|v| v.as_f64().unwrap_or(0.0))
                }
                Limit::Expr(expr) => {
                    let field = "ToleratedFailurePercentagePath";
                    let v = limit_expression(expr, raw, context, field)?;
                    if share(&v) {
                        Ok(v.as_f64().unwrap_or(0.0))
                    } else {
                        Err(unexpected(
                            expression_field(field),
                            "a number between 0 and 100",
                            &v,
                        ))
                    }
                }
            })
            .transpose()?,
    }))
}

/// A Map's children: its items batched (with an `ItemBatcher`) and bounded, each run by
/// the item processor. Too many items read by an `ItemReader` is its own error.
fn map_children(
    processor: &Machine,
    read: bool,
    batcher: Option<&ItemBatcher>,
    items: Vec<Value>,
    input: &Value,
    context: &Value,
) -> Result<Children, StateError> {
    let inputs = match batcher {
        Some(b) => batches(b, items, input, context)?,
        None => items,
    };
    let too_many = if read {
        errors::ITEM_READER_FAILED
    } else {
        errors::RUNTIME
    };
    Ok(Children {
        machines: vec![processor.source.to_string()],
        inputs: bounded_children(inputs, too_many)?,
    })
}

/// A Map run's child inputs within the bounds every Map has: at most
/// [`MAX_MAP_CHILDREN`] children (past it, `too_many` names the error), each input within
/// the payload limit.
fn bounded_children(inputs: Vec<Value>, too_many: &str) -> Result<Vec<Value>, StateError> {
    if inputs.len() > MAX_MAP_CHILDREN {
        return Err(StateError::new(
            too_many,
            format!(
                "the Map has {} items, over the {MAX_MAP_CHILDREN} child executions a Map run starts; batch them with ItemBatcher",
                inputs.len()
            ),
        ));
    }
    for (i, input) in inputs.iter().enumerate() {
        let size = payload::json_len(input);
        if size > MAX_PAYLOAD_BYTES {
            return Err(StateError::new(
                errors::DATA_LIMIT_EXCEEDED,
                format!(
                    "the input of Map item {i} is {size} bytes, over the {MAX_PAYLOAD_BYTES}-byte limit of an execution's input"
                ),
            ));
        }
    }
    Ok(inputs)
}
