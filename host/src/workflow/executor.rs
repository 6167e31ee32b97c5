//! Durable executions. Every transition is committed to the store before the next state
//! runs, so a host that dies leaves each execution at its last committed transition,
//! and whichever host next holds its lease goes on from there. A Task is recorded as
//! scheduled before its plugin is called; finding that record on resume means the call
//! was interrupted, which counts as a failed attempt (`States.TaskFailed`) under the
//! state's Retry and Catch: tasks run at least once.
//!
//! Parallel branches and Map items run as child executions of their own sub-machine;
//! the parent sleeps until a child finishes and wakes it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{Notify, Semaphore, watch};

use super::definition::{Kind, Limit, Machine, Seconds, State, Template, Text, WaitFor};
use super::errors::{self, StateError, matches};
use super::path::VARIABLES;
use super::payload;
use crate::store::task_tokens::{
    self, ANSWERED_FAILURE, ANSWERED_SUCCESS, Answer, AnswerError, TokenWrite,
};
use crate::store::workflow::{
    ABORTED, Commit, ExecutionRow, FAILED, HistoryEvent, NewExecution, RUNNING, Redrive, SUCCEEDED,
    TIMED_OUT,
};
use crate::store::{Store, StoreError, now_ms};

/// How long a host keeps an execution between transitions before another may take it.
const LEASE_MS: i64 = 15_000;
/// Added to a task's time limit for the lease held while it runs.
const TASK_LEASE_MARGIN_MS: i64 = 5_000;
/// How long past a plugin's own time limit a Task without `TimeoutSeconds` is stopped
/// by the executor, if the engine has not stopped it.
const PLUGIN_LIMIT_BACKSTOP: Duration = Duration::from_secs(2);
/// How often idle workers look for due executions (they are also woken directly).
const POLL: Duration = Duration::from_millis(100);
/// "Not due until a child wakes it": far enough, and safe to add to.
const ASLEEP: i64 = i64::MAX / 4;
/// Parsed definitions kept in memory, by text; cleared when it grows past this.
const MACHINE_CACHE: usize = 1024;
/// The most a single variable, or one `Assign`'s variables together, may hold, and
/// the most all of an execution's variables may hold (the developer guide's limits).
const MAX_VARIABLE_BYTES: usize = 256 * 1024;
const MAX_VARIABLES_BYTES: usize = 10 * 1024 * 1024;
/// The largest execution input, task result or Parallel / Map result, as in Step
/// Functions: state data is written to the store on every transition, so large data
/// belongs in blobs, passed by key. Past it: `States.DataLimitExceeded`.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;
/// How long after its end an execution may be redriven, and how long after its start
/// (Step Functions' 14 days and one year).
const REDRIVABLE_MS: i64 = 14 * 24 * 3600 * 1000;
const MAX_EXECUTION_MS: i64 = 365 * 24 * 3600 * 1000;
/// SendTaskSuccess / SendTaskFailure limits, as in Step Functions' API.
const MAX_TOKEN_CHARS: usize = 1024;
const MAX_ERROR_CHARS: usize = 256;
const MAX_CAUSE_CHARS: usize = 32_768;

/// Calls the plugin a Task names.
#[async_trait]
pub trait TaskRunner: Send + Sync {
    /// The plugin's time limit when the state sets no `TimeoutSeconds`.
    fn default_timeout(&self, tenant: &str, resource: &str) -> Duration;
    async fn run(&self, call: TaskCall) -> Result<Value, StateError>;
}

#[derive(Debug, Clone)]
pub struct TaskCall {
    pub tenant: String,
    pub resource: String,
    pub execution_id: String,
    pub state: String,
    pub input: Value,
    pub context: Value,
    /// The execution's place in a chain of invocations: the task runs this deep.
    pub depth: u32,
}

#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// Executions driven at once by this host.
    pub concurrency: usize,
    /// Waits and retry pauses take no time (fixtures): they are recorded, not slept.
    pub skip_waits: bool,
    /// Works on this tenant's executions only: for tests that share one database.
    pub tenant: Option<String>,
}

impl Default for ExecutorOptions {
    fn default() -> Self {
        ExecutorOptions {
            concurrency: 64,
            skip_waits: false,
            tenant: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid definition: {0}")]
    Definition(String),
    #[error("execution `{0}` already exists with a different input")]
    AlreadyExists(String),
    #[error("the input is {0} bytes; an execution's input is at most {MAX_PAYLOAD_BYTES}")]
    InputTooLarge(usize),
    #[error("{0}")]
    Name(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why an execution was not redriven.
#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    #[error("no such execution")]
    NotFound,
    /// The cloud's `ExecutionNotRedrivable`, with its reason.
    #[error("ExecutionNotRedrivable: {0}")]
    NotRedrivable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where an execution is: the state, its raw input, and how far the state got.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cursor {
    state: String,
    input: Value,
    entered_at: i64,
    /// Retries used, per entry of the state's `Retry`.
    #[serde(default)]
    retries: Vec<u32>,
    /// The variables this execution assigned (a branch's or Map item's own: those of
    /// the scopes around it are in its context object, read-only).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    vars: serde_json::Map<String, Value>,
    #[serde(flatten)]
    phase: Phase,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
enum Phase {
    Enter,
    /// The task's plugin was called and no result was committed.
    Task,
    /// A callback task (`.waitForTaskToken`) waits for the answer to its token (kept
    /// as its hash): its plugin is being called (`invoked` false) or was called.
    Callback {
        token: String,
        invoked: bool,
        /// When `TimeoutSeconds` runs out.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_at: Option<i64>,
        /// `HeartbeatSeconds`, in ms: the longest time between heartbeats.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        heartbeat_ms: Option<i64>,
    },
    Wait {
        until: i64,
        output: Value,
    },
    Children {
        generation: i64,
        total: i64,
        spawned: i64,
        /// A Map's limits as read when it started (its `...Path` fields read the input
        /// then); absent in cursors written before they were kept.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limits: Option<MapLimits>,
    },
}

/// How many of a Map's items run at once (0: no limit) and how many may fail.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct MapLimits {
    max_concurrency: u64,
    #[serde(default)]
    tolerated_count: Option<u64>,
    #[serde(default)]
    tolerated_percentage: Option<f64>,
}

impl Cursor {
    fn enter(state: &str, input: Value) -> Self {
        Cursor {
            state: state.to_string(),
            input,
            entered_at: now_ms(),
            retries: Vec::new(),
            vars: serde_json::Map::new(),
            phase: Phase::Enter,
        }
    }
}

fn event(kind: &str, state: Option<&str>, detail: Value) -> HistoryEvent {
    HistoryEvent {
        kind: kind.to_string(),
        state: state.map(str::to_string),
        detail,
    }
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

pub struct Executor {
    store: Store,
    runner: Arc<dyn TaskRunner>,
    options: ExecutorOptions,
    owner: String,
    wake: Notify,
    /// By (is a child, definition text).
    machines: Mutex<HashMap<(bool, String), Arc<Machine>>>,
}

/// What a started execution is.
#[derive(Debug, Clone)]
pub struct Started {
    pub id: String,
    /// False when an execution of that name existed already (same input).
    pub created: bool,
}

impl Executor {
    pub fn new(store: Store, runner: Arc<dyn TaskRunner>, options: ExecutorOptions) -> Arc<Self> {
        Arc::new(Executor {
            store,
            runner,
            options,
            owner: uuid::Uuid::new_v4().to_string(),
            wake: Notify::new(),
            machines: Mutex::new(HashMap::new()),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Starts an execution of `definition` (already checked by the tenant's load). A
    /// `name` makes the start idempotent: the same name with the same input returns the
    /// existing execution; with another input it is refused.
    pub async fn start(
        &self,
        tenant: &str,
        workflow: &str,
        definition: &Value,
        input: Value,
        name: Option<&str>,
    ) -> Result<Started, StartError> {
        self.start_in_chain(tenant, workflow, definition, input, name, 0)
            .await
    }

    /// [`Executor::start`] for an execution a plugin started, `depth` invocations into
    /// its chain.
    pub async fn start_in_chain(
        &self,
        tenant: &str,
        workflow: &str,
        definition: &Value,
        input: Value,
        name: Option<&str>,
        depth: u32,
    ) -> Result<Started, StartError> {
        if let Some(name) = name {
            super::execution_name::check(name).map_err(StartError::Name)?;
        }
        let machine = Machine::parse(definition).map_err(StartError::Definition)?;
        let input_text = input.to_string();
        if input_text.len() > MAX_PAYLOAD_BYTES {
            return Err(StartError::InputTooLarge(input_text.len()));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let name = name.map_or_else(|| id.clone(), str::to_string);
        let now = now_ms();
        let context = json!({
            "Execution": { "Id": id, "Name": name, "StartTime": iso(now), "Input": input },
            "StateMachine": { "Id": format!("{tenant}:{workflow}"), "Name": workflow },
        });
        let new = NewExecution {
            id: id.clone(),
            tenant: tenant.to_string(),
            workflow: workflow.to_string(),
            name: name.clone(),
            root_id: id.clone(),
            parent: None,
            definition: definition.to_string(),
            context: context.to_string(),
            input: input_text,
            cursor: json_text(&Cursor::enter(&machine.start_at, input.clone())),
            deadline_at: machine
                .timeout_seconds
                .map(|s| now.saturating_add((s as i64).saturating_mul(1000))),
            depth,
        };
        let history = [
            event("ExecutionStarted", None, json!({ "input": input })),
            event(
                "StateEntered",
                Some(&machine.start_at),
                json!({ "input": input }),
            ),
        ];
        let (row, created) = self.store.wf_start(&new, &history).await?;
        if !created && row.input != new.input {
            return Err(StartError::AlreadyExists(name));
        }
        self.wake.notify_one();
        Ok(Started {
            id: row.id,
            created,
        })
    }

    /// SendTaskSuccess, SendTaskFailure or SendTaskHeartbeat for the callback task
    /// waiting on `token` in one of `tenant`'s executions, with the cloud's limits: an
    /// output of at most 256 KiB, an error of at most 256 characters, a cause of at
    /// most 32,768, a token of at most 1,024.
    pub async fn answer_task(
        &self,
        tenant: &str,
        token: &str,
        answer: &Answer,
    ) -> Result<(), AnswerError> {
        if token.is_empty() || token.len() > MAX_TOKEN_CHARS {
            return Err(AnswerError::InvalidToken);
        }
        match answer {
            Answer::Success(output) if output.len() > MAX_PAYLOAD_BYTES => {
                return Err(AnswerError::InvalidOutput(format!(
                    "the output is {} bytes, over {MAX_PAYLOAD_BYTES}",
                    output.len()
                )));
            }
            Answer::Failure { error, cause }
                if error.chars().count() > MAX_ERROR_CHARS
                    || cause.chars().count() > MAX_CAUSE_CHARS =>
            {
                return Err(AnswerError::InvalidOutput(format!(
                    "an error is at most {MAX_ERROR_CHARS} characters and a cause {MAX_CAUSE_CHARS}"
                )));
            }
            _ => {}
        }
        self.store.wf_answer_task(tenant, token, answer).await?;
        if !matches!(answer, Answer::Heartbeat) {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// RedriveExecution: runs an ended execution of `tenant` again from the state that
    /// did not succeed, with that state's input, its variables, and `$$.Execution.
    /// RedriveCount` one more; of its Parallel and Map states, only the branches and
    /// items that did not succeed run again. As in the cloud: a SUCCEEDED or RUNNING
    /// execution is not redriven, nor one stopped over 14 days ago or started over a
    /// year ago; its `TimeoutSeconds` counts from the redrive. The new redrive count.
    pub async fn redrive(&self, tenant: &str, id: &str) -> Result<u64, RedriveError> {
        let root = self
            .store
            .wf_get(tenant, id)
            .await?
            .filter(|r| r.parent_id.is_none())
            .ok_or(RedriveError::NotFound)?;
        let now = now_ms();
        redrivable(&root.status, root.started_at, root.stopped_at, now)
            .map_err(|why| RedriveError::NotRedrivable(why.to_string()))?;
        let context: Value = serde_json::from_str(&root.context).unwrap_or_else(|_| json!({}));
        let count = context["Execution"]["RedriveCount"].as_u64().unwrap_or(0) + 1;
        let deadline_at = self
            .machine(&root.definition, false)
            .ok()
            .and_then(|m| m.timeout_seconds)
            .map(|s| now.saturating_add((s as i64).saturating_mul(1000)));
        let mut rows = Vec::new();
        let mut pending = vec![root.clone()];
        while let Some(row) = pending.pop() {
            let mut cursor: Cursor = serde_json::from_str(&row.cursor).map_err(|e| {
                RedriveError::NotRedrivable(format!("its cursor is unreadable: {e}"))
            })?;
            let mut history = vec![event(
                "ExecutionRedriven",
                None,
                json!({ "redriveCount": count }),
            )];
            if let Phase::Children { generation, .. } = cursor.phase {
                // The branches or items that did not succeed run again; the state
                // collects them as before and starts those it had not started.
                let children = self.store.wf_children_rows(&row.id, generation).await?;
                pending.extend(
                    children
                        .into_iter()
                        .filter(|c| c.status != SUCCEEDED && c.status != RUNNING),
                );
            } else {
                cursor = Cursor {
                    vars: cursor.vars,
                    ..Cursor::enter(&cursor.state, cursor.input)
                };
                history.push(event(
                    "StateEntered",
                    Some(&cursor.state),
                    json!({ "input": cursor.input }),
                ));
            }
            let mut context: Value =
                serde_json::from_str(&row.context).unwrap_or_else(|_| json!({}));
            if !context["Execution"].is_object() {
                context["Execution"] = json!({});
            }
            context["Execution"]["RedriveCount"] = json!(count);
            context["Execution"]["RedriveTime"] = json!(iso(now));
            rows.push(Redrive {
                id: row.id.clone(),
                version: row.version,
                cursor: json_text(&cursor),
                context: context.to_string(),
                deadline_at,
                history,
            });
        }
        if !self.store.wf_redrive(&root.id, &rows).await? {
            return Err(RedriveError::NotRedrivable(
                "the execution changed while it was being redriven; try again".into(),
            ));
        }
        self.wake.notify_one();
        Ok(count)
    }

    /// Runs this host's workers until `stop` turns true.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        if self.store.backend() == crate::store::Backend::Sqlite {
            // The embedded store has one host: leases of a previous run have no owner.
            if let Err(e) = self.store.wf_release_leases().await {
                tracing::warn!(error = %e, "cannot release old workflow leases");
            }
        }
        let permits = Arc::new(Semaphore::new(self.options.concurrency));
        while !*stop.borrow() {
            let free = permits.available_permits() as u32;
            let claimed = if free == 0 {
                Vec::new()
            } else {
                match self
                    .store
                    .wf_claim(&self.owner, LEASE_MS, free, self.options.tenant.as_deref())
                    .await
                {
                    Ok(rows) => rows,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot claim workflow executions");
                        Vec::new()
                    }
                }
            };
            let idle = claimed.is_empty();
            for row in claimed {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                let me = self.clone();
                tokio::spawn(async move {
                    me.drive(row).await;
                    drop(permit);
                });
            }
            if idle {
                tokio::select! {
                    _ = tokio::time::sleep(POLL) => {}
                    _ = self.wake.notified() => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }

    /// Claims and drives every due execution once, in turn; the number driven.
    /// `orquesta test` runs workflows this way, with no background workers.
    pub async fn work_once(&self) -> Result<usize, StoreError> {
        let rows = self
            .store
            .wf_claim(&self.owner, LEASE_MS, 64, self.options.tenant.as_deref())
            .await?;
        let n = rows.len();
        for row in rows {
            self.drive(row).await;
        }
        Ok(n)
    }

    /// Works on due executions until `id` (a root of `tenant`) has ended, for at most
    /// `limit`. `orquesta test` and the engine's tests run executions this way.
    pub async fn run_to_end(
        &self,
        tenant: &str,
        id: &str,
        limit: Duration,
    ) -> Result<ExecutionRow, StoreError> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let row = self
                .store
                .wf_get(tenant, id)
                .await?
                .ok_or(StoreError::Query(sqlx::Error::RowNotFound))?;
            if row.status != RUNNING || tokio::time::Instant::now() >= deadline {
                return Ok(row);
            }
            if self.work_once().await? == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    /// The parsed machine of an execution; a child's (a branch or item processor) is
    /// parsed as the sub-machine its parent's load checked, not as a whole definition.
    fn machine(&self, definition: &str, child: bool) -> Result<Arc<Machine>, String> {
        let key = (child, definition.to_string());
        let mut cache = self.machines.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = cache.get(&key) {
            return Ok(m.clone());
        }
        let value: Value = serde_json::from_str(definition).map_err(|e| e.to_string())?;
        let machine = Arc::new(if child {
            Machine::parse_child(&value)?
        } else {
            Machine::parse(&value)?
        });
        if cache.len() >= MACHINE_CACHE {
            cache.clear();
        }
        cache.insert(key, machine.clone());
        Ok(machine)
    }

    /// Runs an execution from its committed cursor for as long as it has work now.
    async fn drive(&self, mut row: ExecutionRow) {
        loop {
            let commit = match self.step(&mut row).await {
                Ok(Some(commit)) => commit,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(execution = %row.id, error = %e, "workflow step failed; it will be retried");
                    return;
                }
            };
            let go_on =
                commit.status == RUNNING && commit.lease_ms > 0 && commit.wake_at <= now_ms();
            let spawned = !commit.spawn.is_empty();
            let finished = commit.status != RUNNING;
            match self.commit(&mut row, commit).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    tracing::warn!(execution = %row.id, error = %e, "cannot commit a transition; it will be retried");
                    return;
                }
            }
            if spawned || (finished && row.parent_id.is_some()) {
                // Children, or a parent, are due now: wake an idle worker.
                self.wake.notify_waiters();
                self.wake.notify_one();
            }
            if finished {
                self.record_end(&row);
            }
            if !go_on {
                return;
            }
        }
    }

    fn record_end(&self, row: &ExecutionRow) {
        if row.parent_id.is_none() {
            let labels = [
                ("tenant", row.tenant.clone()),
                ("workflow", row.workflow.clone()),
                ("status", row.status.clone()),
            ];
            metrics::counter!("orquesta_workflow_executions_total", &labels).increment(1);
        }
    }

    async fn commit(&self, row: &mut ExecutionRow, commit: Commit) -> Result<bool, StoreError> {
        let status = commit.status;
        let cursor = commit.cursor.clone();
        let wake_at = commit.wake_at;
        let transitions = commit
            .history
            .iter()
            .filter(|e| e.kind == "StateEntered")
            .count() as u64;
        if !self.store.wf_commit(row, &self.owner, commit).await? {
            return Ok(false);
        }
        row.version += 1;
        row.cursor = cursor;
        row.status = status.to_string();
        row.wake_at = wake_at;
        let labels = [
            ("tenant", row.tenant.clone()),
            ("workflow", row.workflow.clone()),
        ];
        metrics::counter!("orquesta_workflow_transitions_total", &labels).increment(transitions);
        Ok(true)
    }

    /// Works out the next transition of `row`. `None`: nothing to write now.
    async fn step(&self, row: &mut ExecutionRow) -> Result<Option<Commit>, StoreError> {
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
                self.fan_out(row, &cursor, state, &context)
            }
            _ => self.simple(row, &cursor, state, &context),
        }))
    }

    /// The context object (`$$`) of the state the cursor is in: every field the
    /// developer guide lists, so a path to any of them selects something. Before a
    /// redrive, `RedriveCount` is 0 and `RedriveTime` null (a redrive writes both into
    /// the stored context); `Task.Token` is null here, set only while a callback task's
    /// `Parameters` are read.
    fn context(&self, row: &ExecutionRow, cursor: &Cursor) -> Value {
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
    fn assigned(
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
    fn finish(
        &self,
        state: &State,
        raw: &Value,
        result: Value,
        context: &Value,
        cursor: &Cursor,
    ) -> Result<(Cursor, Value), StateError> {
        let selected = payload::selected_result(state, result, context)?;
        let after = self.assigned(&state.assign, &selected, context, cursor)?;
        Ok((after, payload::output_of(state, raw, selected)?))
    }

    /// The variables a child execution sees, read-only: every one in scope here.
    fn visible_variables(&self, row: &ExecutionRow, cursor: &Cursor) -> Value {
        self.context(row, cursor)
            .get(VARIABLES)
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// Pass, Choice, Wait, Succeed and Fail: no plugin, no children.
    fn simple(
        &self,
        row: &ExecutionRow,
        cursor: &Cursor,
        state: &State,
        context: &Value,
    ) -> Commit {
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
            } => {
                let input = payload::input_path(state, raw)?;
                let mut next = None;
                for (i, (rule, target)) in choices.iter().enumerate() {
                    if rule
                        .eval(&input, context)
                        .map_err(|e| StateError::new(errors::RUNTIME, e))?
                    {
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
                        Some(Text::Call(c)) => (
                            c.function.name().to_string(),
                            Some(
                                c.eval(raw, context)
                                    .map_err(|e| StateError::new(errors::INTRINSIC_FAILURE, e))?,
                            ),
                        ),
                    };
                    match value {
                        Some(Value::String(s)) => Ok(s),
                        Some(other) => Err(StateError::new(
                            errors::RUNTIME,
                            format!(
                                "The value of the field '{field}' ('{what}') is a {}, not a string",
                                super::path::kind_of(&other)
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
                Err(StateError {
                    error: read(error, "ErrorPath")?,
                    cause: read(cause, "CausePath")?,
                })
            }
            _ => Err(StateError::new(errors::RUNTIME, "not a simple state")),
        })();
        outcome.unwrap_or_else(|e| self.failure(row, cursor, state, e, Vec::new()))
    }

    /// A task whose plugin call was interrupted by a host that stopped: a failed attempt.
    fn interrupted(&self, row: &ExecutionRow, cursor: &Cursor, state: &State) -> Commit {
        let error = StateError::new(
            errors::TASK_FAILED,
            "the host stopped while the task ran; the task may have completed",
        );
        let events = vec![event(
            "TaskFailed",
            Some(&cursor.state),
            json!({ "error": error.error, "cause": error.cause, "interrupted": true }),
        )];
        self.failure(row, cursor, state, error, events)
    }

    async fn run_task(
        &self,
        row: &mut ExecutionRow,
        cursor: &Cursor,
        state: &State,
        context: &Value,
    ) -> Result<Option<Commit>, StoreError> {
        let Kind::Task {
            resource,
            lambda,
            callback,
            timeout,
            heartbeat,
        } = &state.kind
        else {
            return Ok(None);
        };
        let raw = &cursor.input;
        // A callback task's token, in `$$.Task.Token` while its `Parameters` are read.
        let token = callback.then(task_tokens::new_token);
        let with_token;
        let context = match &token {
            Some(token) => {
                let mut c = context.clone();
                c["Task"] = json!({ "Token": token });
                with_token = c;
                &with_token
            }
            None => context,
        };
        let input = match payload::effective_input(state, raw, context)
            .and_then(|i| within_payload_limit(i, &cursor.state))
        {
            Ok(i) => i,
            Err(e) => return Ok(Some(self.failure(row, cursor, state, e, Vec::new()))),
        };
        let (resource, input) = if *lambda {
            match lambda_call(input) {
                Ok((name, payload)) => (Cow::Owned(name), payload),
                Err(e) => return Ok(Some(self.failure(row, cursor, state, e, Vec::new()))),
            }
        } else {
            (Cow::Borrowed(resource.as_str()), input)
        };
        let resource: &str = &resource;
        let limit = |s: &Option<Seconds>| -> Result<Option<Duration>, StateError> {
            match s {
                None => Ok(None),
                Some(Seconds::Fixed(n)) => Ok(Some(Duration::from_secs(*n))),
                Some(Seconds::Path(p)) => match p.select(raw, context).and_then(|v| v.as_u64()) {
                    Some(n) if n > 0 => Ok(Some(Duration::from_secs(n))),
                    _ => Err(StateError::new(
                        errors::RUNTIME,
                        format!("{:?} is not a positive number of seconds", p.text()),
                    )),
                },
            }
        };
        let (timeout, heartbeat) = match (limit(timeout), limit(heartbeat)) {
            (Ok(t), Ok(h)) => (t, h),
            (Err(e), _) | (_, Err(e)) => {
                return Ok(Some(self.failure(row, cursor, state, e, Vec::new())));
            }
        };
        if *callback {
            let token = token.unwrap_or_default();
            return self
                .start_callback(
                    row,
                    cursor,
                    state,
                    resource,
                    input,
                    context,
                    token,
                    (timeout, heartbeat),
                )
                .await;
        }
        // A synchronous call sends no heartbeats: it must finish within the heartbeat.
        let (limit, limit_error) = match (timeout, heartbeat) {
            (Some(t), Some(h)) if h >= t => (t, errors::TIMEOUT),
            (_, Some(h)) => (h, errors::HEARTBEAT_TIMEOUT),
            (Some(t), None) => (t, errors::TIMEOUT),
            // No limit of the state's own: the plugin's time limit applies, and running
            // past it is the plugin's failure (`Lambda.Unknown`, as a Lambda function's
            // timeout), reported by the engine; this is a backstop a little later.
            (None, None) => (
                self.runner.default_timeout(&row.tenant, resource) + PLUGIN_LIMIT_BACKSTOP,
                errors::LAMBDA_UNKNOWN,
            ),
        };
        let limit = match row.deadline_at {
            Some(d) => limit.min(Duration::from_millis((d - now_ms()).max(0) as u64)),
            None => limit,
        };
        let mut running = cursor.clone();
        running.phase = Phase::Task;
        let scheduled = Commit {
            status: RUNNING,
            cursor: json_text(&running),
            output: None,
            error: None,
            cause: None,
            wake_at: now_ms(),
            lease_ms: limit.as_millis() as i64 + TASK_LEASE_MARGIN_MS,
            history: vec![event(
                "TaskScheduled",
                Some(&cursor.state),
                json!({ "resource": resource, "input": input, "attempt": cursor.retries.iter().sum::<u32>() + 1 }),
            )],
            spawn: Vec::new(),
            token: TokenWrite::None,
        };
        let lambda = *lambda;
        if !self.commit(row, scheduled).await? {
            return Ok(None);
        }
        let call = task_call(row, cursor, resource, input, context);
        let result = match tokio::time::timeout(limit, self.runner.run(call)).await {
            // The Lambda integration's answer: the function's in `Payload`.
            Ok(r) if lambda => r
                .map(|v| json!({ "ExecutedVersion": "$LATEST", "Payload": v, "StatusCode": 200 }))
                .and_then(|v| within_payload_limit(v, &cursor.state)),
            Ok(r) => r.and_then(|v| within_payload_limit(v, &cursor.state)),
            Err(_) if limit_error == errors::LAMBDA_UNKNOWN => Err(StateError::new(
                limit_error,
                format!(
                    "timeout: the plugin ran past its time limit ({} s)",
                    limit.as_secs_f64()
                ),
            )),
            Err(_) => Err(StateError::new(
                limit_error,
                format!("the task did not finish within {} s", limit.as_secs_f64()),
            )),
        };
        Ok(Some(match result {
            Ok(result) => {
                let events = vec![event(
                    "TaskSucceeded",
                    Some(&cursor.state),
                    json!({ "output": result }),
                )];
                match self.finish(state, raw, result, context, cursor) {
                    Ok((after, output)) => self.transition(row, &after, state, output, events),
                    Err(e) => self.failure(row, cursor, state, e, events),
                }
            }
            Err(e) => {
                let events = vec![event(
                    "TaskFailed",
                    Some(&cursor.state),
                    json!({ "error": e.error, "cause": e.cause }),
                )];
                self.failure(row, cursor, state, e, events)
            }
        }))
    }

    /// Starts a callback task: its token is stored (as a hash) and the task recorded as
    /// scheduled in one transition, then its plugin is called once with the token. The
    /// execution then sleeps, holding nothing, until an answer wakes it or a time limit.
    #[allow(clippy::too_many_arguments)]
    async fn start_callback(
        &self,
        row: &mut ExecutionRow,
        cursor: &Cursor,
        state: &State,
        resource: &str,
        input: Value,
        context: &Value,
        token: String,
        (timeout, heartbeat): (Option<Duration>, Option<Duration>),
    ) -> Result<Option<Commit>, StoreError> {
        let now = now_ms();
        let hash = task_tokens::token_hash(&token);
        let timeout_at = timeout.map(|t| now.saturating_add(t.as_millis() as i64));
        let heartbeat_ms = heartbeat.map(|h| h.as_millis() as i64);
        // The call itself has the plugin's time limit, within the task's and execution's.
        let mut limit = self.runner.default_timeout(&row.tenant, resource) + PLUGIN_LIMIT_BACKSTOP;
        let mut limit_error = errors::LAMBDA_UNKNOWN;
        for (end, error) in [
            (timeout_at, errors::TIMEOUT),
            (row.deadline_at, errors::TIMEOUT),
        ] {
            if let Some(end) = end {
                let left = Duration::from_millis((end - now).max(0) as u64);
                if left < limit {
                    (limit, limit_error) = (left, error);
                }
            }
        }
        let mut waiting = cursor.clone();
        waiting.phase = Phase::Callback {
            token: hash.clone(),
            invoked: false,
            timeout_at,
            heartbeat_ms,
        };
        let scheduled = Commit {
            status: RUNNING,
            cursor: json_text(&waiting),
            output: None,
            error: None,
            cause: None,
            wake_at: now,
            lease_ms: limit.as_millis() as i64 + TASK_LEASE_MARGIN_MS,
            history: vec![event(
                "TaskScheduled",
                Some(&cursor.state),
                json!({ "resource": resource, "input": input, "attempt": cursor.retries.iter().sum::<u32>() + 1, "callback": true }),
            )],
            spawn: Vec::new(),
            token: TokenWrite::Open {
                hash: hash.clone(),
                tenant: row.tenant.clone(),
                execution_id: row.id.clone(),
                state: cursor.state.clone(),
            },
        };
        if !self.commit(row, scheduled).await? {
            return Ok(None);
        }
        let call = task_call(row, cursor, resource, input, context);
        let outcome = match tokio::time::timeout(limit, self.runner.run(call)).await {
            Ok(r) => r,
            Err(_) => Err(StateError::new(
                limit_error,
                format!(
                    "timeout: the plugin ran past its time limit ({} s)",
                    limit.as_secs_f64()
                ),
            )),
        };
        let mut commit = match outcome {
            Ok(answer) => {
                // The call's own answer is not the task's result (the token's answer
                // is): it is kept in the history, as the cloud's TaskSubmitted.
                let Phase::Callback { invoked, .. } = &mut waiting.phase else {
                    return Ok(None);
                };
                *invoked = true;
                let history = vec![event(
                    "TaskSubmitted",
                    Some(&cursor.state),
                    json!({ "output": answer }),
                )];
                let wake_at = self.callback_due(row, timeout_at, heartbeat_ms.map(|h| now + h));
                let mut asleep = self.rest(row, &waiting, history, Vec::new());
                asleep.wake_at = wake_at;
                return Ok(Some(asleep));
            }
            Err(e) => {
                let events = vec![event(
                    "TaskFailed",
                    Some(&cursor.state),
                    json!({ "error": e.error, "cause": e.cause }),
                )];
                self.failure(row, cursor, state, e, events)
            }
        };
        commit.token = TokenWrite::Close(hash);
        Ok(Some(commit))
    }

    /// When a waiting callback task is next due: its timeout, its heartbeat's, or the
    /// execution's, whichever is first.
    fn callback_due(
        &self,
        row: &ExecutionRow,
        timeout_at: Option<i64>,
        heartbeat_due: Option<i64>,
    ) -> i64 {
        [timeout_at, heartbeat_due, row.deadline_at]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(ASLEEP)
            .min(ASLEEP)
    }

    /// A callback task woken: by its token's answer, a time limit, or a heartbeat
    /// that moved its heartbeat time on (then it sleeps again).
    async fn callback(
        &self,
        row: &ExecutionRow,
        cursor: &Cursor,
        state: &State,
        context: &Value,
    ) -> Result<Option<Commit>, StoreError> {
        let Phase::Callback {
            token,
            invoked,
            timeout_at,
            heartbeat_ms,
        } = &cursor.phase
        else {
            return Ok(None);
        };
        let answer = self.store.wf_token(token).await?;
        let now = now_ms();
        let task_event = |kind: &str, e: &StateError| {
            vec![event(
                kind,
                Some(&cursor.state),
                json!({ "error": e.error, "cause": e.cause }),
            )]
        };
        let mut commit = match answer {
            Some(a) if a.status == ANSWERED_SUCCESS => {
                let result = a.output.as_deref().map_or(Value::Null, |o| {
                    serde_json::from_str(o).unwrap_or(Value::Null)
                });
                let events = vec![event(
                    "TaskSucceeded",
                    Some(&cursor.state),
                    json!({ "output": result }),
                )];
                match within_payload_limit(result, &cursor.state)
                    .and_then(|r| self.finish(state, &cursor.input, r, context, cursor))
                {
                    Ok((after, output)) => self.transition(row, &after, state, output, events),
                    Err(e) => self.failure(row, cursor, state, e, events),
                }
            }
            Some(a) if a.status == ANSWERED_FAILURE => {
                let e = StateError {
                    error: a.error.unwrap_or_default(),
                    cause: a.cause.unwrap_or_default(),
                };
                let events = task_event("TaskFailed", &e);
                self.failure(row, cursor, state, e, events)
            }
            // Called by a host that stopped before it knew the call's outcome.
            _ if !invoked => self.interrupted(row, cursor, state),
            None => self.interrupted(row, cursor, state),
            Some(_) if timeout_at.is_some_and(|t| t <= now) => {
                let e = StateError::new(
                    errors::TIMEOUT,
                    "the task was not answered within its TimeoutSeconds",
                );
                let events = task_event("TaskTimedOut", &e);
                self.failure(row, cursor, state, e, events)
            }
            Some(a) if heartbeat_ms.is_some_and(|h| a.heartbeat_at + h <= now) => {
                let e = StateError::new(
                    errors::HEARTBEAT_TIMEOUT,
                    "no heartbeat or answer came within the task's HeartbeatSeconds",
                );
                let events = task_event("TaskTimedOut", &e);
                self.failure(row, cursor, state, e, events)
            }
            Some(a) => {
                // Woken early (a heartbeat moved its time on): asleep again, no event.
                let due =
                    self.callback_due(row, *timeout_at, heartbeat_ms.map(|h| a.heartbeat_at + h));
                let mut asleep = self.rest(row, cursor, Vec::new(), Vec::new());
                asleep.wake_at = due;
                return Ok(Some(asleep));
            }
        };
        commit.token = TokenWrite::Close(token.clone());
        Ok(Some(commit))
    }

    /// Enters a Parallel or Map state: its children start.
    fn fan_out(
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
                Commit {
                    status: RUNNING,
                    cursor: json_text(&waiting),
                    output: None,
                    error: None,
                    cause: None,
                    wake_at: self.asleep(row),
                    lease_ms: 0,
                    history: vec![event(
                        kind,
                        Some(&cursor.state),
                        json!({ "children": total }),
                    )],
                    spawn,
                    token: TokenWrite::None,
                }
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
                let input = payload::effective_input(state, raw, context)?;
                Ok((
                    branches.iter().map(|b| b.source.to_string()).collect(),
                    vec![input; branches.len()],
                ))
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
    async fn collect(
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

    /// Back to sleep until a child wakes this execution.
    fn rest(
        &self,
        row: &ExecutionRow,
        cursor: &Cursor,
        history: Vec<HistoryEvent>,
        spawn: Vec<NewExecution>,
    ) -> Commit {
        Commit {
            status: RUNNING,
            cursor: json_text(cursor),
            output: None,
            error: None,
            cause: None,
            wake_at: self.asleep(row),
            lease_ms: 0,
            history,
            spawn,
            token: TokenWrite::None,
        }
    }

    fn asleep(&self, row: &ExecutionRow) -> i64 {
        row.deadline_at.unwrap_or(ASLEEP).min(ASLEEP)
    }

    fn sleep(&self, row: &ExecutionRow, cursor: &Cursor, until: i64) -> Commit {
        Commit {
            status: RUNNING,
            cursor: json_text(cursor),
            output: None,
            error: None,
            cause: None,
            wake_at: row.deadline_at.map_or(until, |d| until.min(d)),
            lease_ms: 0,
            history: vec![event(
                "WaitStateEntered",
                Some(&cursor.state),
                json!({ "until": iso(until) }),
            )],
            spawn: Vec::new(),
            token: TokenWrite::None,
        }
    }

    /// Leaves the state with `output` for its `Next` (or the end).
    fn transition(
        &self,
        row: &ExecutionRow,
        cursor: &Cursor,
        state: &State,
        output: Value,
        events: Vec<HistoryEvent>,
    ) -> Commit {
        self.leave(row, cursor, state, state.next.as_ref(), output, events)
    }

    /// Leaves the state for `next` (or the end), unless its output is over the payload
    /// limit: every state output is, as in the cloud (`States.DataLimitExceeded`).
    fn leave(
        &self,
        row: &ExecutionRow,
        cursor: &Cursor,
        state: &State,
        next: Option<&String>,
        output: Value,
        events: Vec<HistoryEvent>,
    ) -> Commit {
        match within_payload_limit(output, &cursor.state) {
            Ok(output) => self.go_to(cursor, next, output, events),
            Err(e) => self.failure(row, cursor, state, e, events),
        }
    }

    fn go_to(
        &self,
        cursor: &Cursor,
        next: Option<&String>,
        output: Value,
        mut events: Vec<HistoryEvent>,
    ) -> Commit {
        events.push(event(
            "StateExited",
            Some(&cursor.state),
            json!({ "output": output }),
        ));
        match next {
            Some(next) => {
                events.push(event(
                    "StateEntered",
                    Some(next),
                    json!({ "input": output }),
                ));
                Commit {
                    status: RUNNING,
                    cursor: json_text(&Cursor {
                        vars: cursor.vars.clone(),
                        ..Cursor::enter(next, output)
                    }),
                    output: None,
                    error: None,
                    cause: None,
                    wake_at: now_ms(),
                    lease_ms: LEASE_MS,
                    history: events,
                    spawn: Vec::new(),
                    token: TokenWrite::None,
                }
            }
            None => {
                events.push(event(
                    "ExecutionSucceeded",
                    None,
                    json!({ "output": output }),
                ));
                Commit {
                    status: SUCCEEDED,
                    cursor: json_text(cursor),
                    output: Some(output.to_string()),
                    error: None,
                    cause: None,
                    wake_at: now_ms(),
                    lease_ms: 0,
                    history: events,
                    spawn: Vec::new(),
                    token: TokenWrite::None,
                }
            }
        }
    }

    /// An error in a state: retried, caught, or the end of the execution.
    fn failure(
        &self,
        row: &ExecutionRow,
        cursor: &Cursor,
        state: &State,
        error: StateError,
        mut events: Vec<HistoryEvent>,
    ) -> Commit {
        if let Some((i, retrier)) = state
            .retry
            .iter()
            .enumerate()
            .find(|(_, r)| matches(&r.errors, &error.error))
        {
            let done = cursor.retries.get(i).copied().unwrap_or(0);
            if done < retrier.max_attempts {
                let delay = if self.options.skip_waits {
                    0
                } else {
                    retrier.delay_ms(done) as i64
                };
                let mut again = cursor.clone();
                again.retries.resize(state.retry.len(), 0);
                again.retries[i] = done + 1;
                again.phase = Phase::Enter;
                events.push(event(
                    "StateRetryScheduled",
                    Some(&cursor.state),
                    json!({ "error": error.error, "cause": error.cause, "retry": done + 1, "delay_ms": delay }),
                ));
                let wake_at = now_ms() + delay;
                return Commit {
                    status: RUNNING,
                    cursor: json_text(&again),
                    output: None,
                    error: None,
                    cause: None,
                    wake_at: row.deadline_at.map_or(wake_at, |d| wake_at.min(d)),
                    lease_ms: if delay == 0 { LEASE_MS } else { 0 },
                    history: events,
                    spawn: Vec::new(),
                    token: TokenWrite::None,
                };
            }
        }
        if let Some(catcher) = state
            .catch
            .iter()
            .find(|c| matches(&c.errors, &error.error))
        {
            let context = self.context(row, cursor);
            let placed = self
                .assigned(&catcher.assign, &error.to_json(), &context, cursor)
                .and_then(|after| {
                    payload::place(&catcher.result_path, &cursor.input, error.to_json())
                        .map(|output| (after, output))
                });
            match placed {
                Ok((after, output)) => {
                    let cursor = &after;
                    events.push(event(
                        "ErrorCaught",
                        Some(&cursor.state),
                        json!({ "error": error.error, "cause": error.cause, "next": catcher.next }),
                    ));
                    return match within_payload_limit(output, &cursor.state) {
                        Ok(output) => self.go_to(cursor, Some(&catcher.next), output, events),
                        Err(e) => self.end_with(row, FAILED, Some(&cursor.state), e, events),
                    };
                }
                Err(e) => return self.end_with(row, FAILED, Some(&cursor.state), e, events),
            }
        }
        let status =
            if error.error == errors::TIMEOUT && row.deadline_at.is_some_and(|d| d <= now_ms()) {
                TIMED_OUT
            } else {
                FAILED
            };
        self.end_with(row, status, Some(&cursor.state), error, events)
    }

    fn end_failed(&self, row: &ExecutionRow, state: Option<&str>, error: StateError) -> Commit {
        self.end(row, FAILED, state, error)
    }

    fn end(
        &self,
        row: &ExecutionRow,
        status: &'static str,
        state: Option<&str>,
        error: StateError,
    ) -> Commit {
        self.end_with(row, status, state, error, Vec::new())
    }

    fn end_with(
        &self,
        row: &ExecutionRow,
        status: &'static str,
        state: Option<&str>,
        error: StateError,
        mut events: Vec<HistoryEvent>,
    ) -> Commit {
        let kind = if status == TIMED_OUT {
            "ExecutionTimedOut"
        } else {
            "ExecutionFailed"
        };
        events.push(event(
            kind,
            state,
            json!({ "error": error.error, "cause": error.cause }),
        ));
        Commit {
            status,
            cursor: row.cursor.clone(),
            output: None,
            error: Some(error.error),
            cause: Some(error.cause),
            wake_at: now_ms(),
            lease_ms: 0,
            history: events,
            spawn: Vec::new(),
            token: TokenWrite::None,
        }
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
    let read = |p: &super::path::Path, field: &str, ok: &dyn Fn(&Value) -> bool| match p
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

/// Whether an execution may be redriven, by the cloud's rules (and its reasons, word
/// for word, from `DescribeExecution`'s `redriveStatusReason`).
pub(super) fn redrivable(
    status: &str,
    started_at: i64,
    stopped_at: Option<i64>,
    now: i64,
) -> Result<(), &'static str> {
    match status {
        RUNNING => return Err("Execution is RUNNING and cannot be redriven."),
        SUCCEEDED => return Err("Execution is SUCCEEDED and cannot be redriven."),
        _ => {}
    }
    if stopped_at.is_some_and(|t| now - t > REDRIVABLE_MS) {
        return Err("Execution redrivable period exceeded.");
    }
    if now - started_at > MAX_EXECUTION_MS {
        return Err("Execution has exceeded the max execution time.");
    }
    Ok(())
}

/// The call a Task on the Lambda integration makes: the plugin its resolved
/// `Parameters.FunctionName` names, with `Parameters.Payload` (`{}` without one) as input.
fn lambda_call(parameters: Value) -> Result<(String, Value), StateError> {
    let name = parameters
        .get("FunctionName")
        .and_then(Value::as_str)
        .and_then(super::definition::function_name)
        .ok_or_else(|| {
            StateError::new(
                errors::RUNTIME,
                format!(
                    "The field 'FunctionName' of the parameters '{}' is not a function name",
                    payload::in_cause(&parameters)
                ),
            )
        })?;
    let payload = parameters
        .get("Payload")
        .cloned()
        .unwrap_or_else(|| json!({}));
    Ok((name, payload))
}

/// The plugin call of a Task: the context object without the execution's variables.
fn task_call(
    row: &ExecutionRow,
    cursor: &Cursor,
    resource: &str,
    input: Value,
    context: &Value,
) -> TaskCall {
    let mut plugin_context = context.clone();
    if let Some(c) = plugin_context.as_object_mut() {
        c.remove(VARIABLES);
    }
    TaskCall {
        tenant: row.tenant.clone(),
        resource: resource.to_string(),
        execution_id: row.root_id.clone(),
        state: cursor.state.clone(),
        input,
        context: plugin_context,
        depth: row.depth,
    }
}

/// `value`, or `States.DataLimitExceeded` when its JSON is over [`MAX_PAYLOAD_BYTES`]:
/// a task's result, a Parallel or Map state's results, a state's output, a task's input.
fn within_payload_limit(value: Value, state: &str) -> Result<Value, StateError> {
    let size = payload::json_len(&value);
    if size > MAX_PAYLOAD_BYTES {
        return Err(StateError::new(
            errors::DATA_LIMIT_EXCEEDED,
            format!(
                "The state/task '{state}' returned a result with a size exceeding the maximum number of bytes service limit ({size} bytes, over {MAX_PAYLOAD_BYTES}); keep large data in blobs"
            ),
        ));
    }
    Ok(value)
}

fn json_text<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

/// When a Wait state ends, in ms since the epoch.
fn wait_until(wait: &WaitFor, input: &Value, context: &Value, now: i64) -> Result<i64, StateError> {
    let bad = |what: String| StateError::new(errors::RUNTIME, what);
    let at = |text: &str| {
        super::choice::wait_timestamp(text)
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
