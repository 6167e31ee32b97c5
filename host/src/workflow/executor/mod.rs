//! Durable executions. Every transition is committed to the store before the next state
//! runs, so a host that dies leaves each execution at its last committed transition,
//! and whichever host next holds its lease goes on from there. A Task is recorded as
//! scheduled before its plugin is called; finding that record on resume means the call
//! was interrupted, which counts as a failed attempt (`States.TaskFailed`) under the
//! state's Retry and Catch: tasks run at least once.
//!
//! Parallel branches and Map items run as child executions of their own sub-machine;
//! the parent sleeps until a child finishes and wakes it.

mod callbacks;
mod children;
mod cursor;
mod distributed;
mod jsonata;
mod lease;
mod limits;
mod redrive;
mod simple;
mod step;
mod task;
mod transition;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::definition::Machine;
use super::definition_error::DefinitionError;
use super::errors::{self, StateError};
use super::execution_name::NameError;
use super::payload;
use crate::capabilities::blob::Blobs;
use crate::store::task_tokens::TokenWrite;
use crate::store::workflow::{Commit, HistoryEvent, NewExecution, RUNNING};
use crate::store::{Store, StoreError, now_ms};
use cursor::Cursor;
pub use redrive::RedriveError;
#[cfg(test)]
pub(super) use redrive::redrivable;

/// How long a host keeps an execution between transitions before another may take it.
const LEASE_MS: i64 = 15_000;
/// Added to a task's time limit for the lease held while it runs.
const TASK_LEASE_MARGIN_MS: i64 = 5_000;
/// How long past a plugin's own time limit a Task without `TimeoutSeconds` is stopped
/// by the executor, if the engine has not stopped it.
const PLUGIN_LIMIT_BACKSTOP: Duration = Duration::from_secs(2);
/// "Not due until a child wakes it": far enough, and safe to add to.
const ASLEEP: i64 = i64::MAX / 4;
/// Parsed definitions kept in memory, by text; cleared when it grows past this.
const MACHINE_CACHE: usize = 1024;
/// The largest execution input, task result or Parallel / Map result, as in Step
/// Functions: state data is written to the store on every transition, so large data
/// belongs in blobs, passed by key. Past it: `States.DataLimitExceeded`.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;
/// The most items a Map run reads from its `ItemReader` (before batching). The cloud
/// reads without a bound; here every item is held in memory while the run starts its
/// children, so a bound keeps one tenant's object from filling the host. 100,000 covers
/// a large ERP export (50,000 rows) twice; past it: `States.ItemReaderFailed`.
pub const MAX_MAP_ITEMS: usize = 100_000;
/// The most child executions one Map run starts: 10,000, the most the cloud's
/// distributed Map runs in parallel. Every child is a durable row its parent reads
/// each time a child wakes it, so more would slow every wake and grow the store; more
/// items than this must be batched (`ItemBatcher`: 50,000 rows in batches of 1,000 are
/// 50 children).
pub const MAX_MAP_CHILDREN: usize = 10_000;
/// The most bytes of Map runs' child inputs kept in memory between their rounds, so an
/// object is read once per run rather than once per round of `MaxConcurrency`. A run
/// past it, or evicted, reads its items again when it starts more children.
const MAP_RUN_CACHE_BYTES: usize = 256 << 20;

/// Calls the plugin a Task names.
#[async_trait]
pub trait TaskRunner: Send + Sync {
    /// The plugin's time limit when the state sets no `TimeoutSeconds`.
    fn default_timeout(&self, tenant: &str, resource: &str) -> Duration;
    async fn run(&self, call: TaskCall) -> Result<Value, StateError>;
    /// The blobs of `tenant`, under its quota, for a distributed Map's `ItemReader` and
    /// `ResultWriter` of that tenant's executions (the executor names the executing
    /// tenant's buckets only). `None`: this host has no blobs for it.
    fn blobs(&self, tenant: &str) -> Option<Arc<dyn Blobs>> {
        let _ = tenant;
        None
    }
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
    Definition(DefinitionError),
    #[error("execution `{0}` already exists with a different input")]
    AlreadyExists(String),
    #[error("the input is {0} bytes; an execution's input is at most {MAX_PAYLOAD_BYTES}")]
    InputTooLarge(usize),
    #[error(transparent)]
    Name(NameError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why the definition an execution stored does not parse (the store was changed under
/// it): the execution fails with `States.Runtime`.
#[derive(Debug, thiserror::Error)]
enum StoredDefinitionError {
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Definition(#[from] DefinitionError),
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
    /// The children of Map runs under way, with their size.
    map_runs: Mutex<children::MapRuns>,
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
            map_runs: Mutex::new(HashMap::new()),
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

    /// The parsed machine of an execution; a child's (a branch or item processor) is
    /// parsed as the sub-machine its parent's load checked, not as a whole definition.
    fn machine(
        &self,
        definition: &str,
        child: bool,
    ) -> Result<Arc<Machine>, StoredDefinitionError> {
        let key = (child, definition.to_string());
        let mut cache = self.machines.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = cache.get(&key) {
            return Ok(m.clone());
        }
        let value: Value = serde_json::from_str(definition)?;
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
}

/// The variables an execution had assigned when it was last committed: at its end,
/// every one it assigned (a Parallel branch's or Map item's own stay in the child).
pub fn execution_variables(
    row: &crate::store::workflow::ExecutionRow,
) -> serde_json::Map<String, Value> {
    serde_json::from_str::<Cursor>(&row.cursor)
        .map(|c| c.vars)
        .unwrap_or_default()
}

/// `value`, or `States.DataLimitExceeded` when its JSON is over [`MAX_PAYLOAD_BYTES`]:
/// a task's result, a Parallel or Map state's results, a state's output, a task's input.
fn within_payload_limit(value: Value, state: &str) -> Result<Value, StateError> {
    let size = payload::json_len(&value);
    if size > MAX_PAYLOAD_BYTES {
        return Err(StateError::new(
            errors::DATA_LIMIT_EXCEEDED,
            // Word for word the cloud's cause (the limit, 256 KiB, is in the docs).
            format!(
                "The state/task '{state}' returned a result with a size exceeding the maximum number of bytes service limit."
            ),
        ));
    }
    Ok(value)
}

/// A transition that leaves the execution running at `cursor`, due at `wake_at`, its
/// lease held `lease_ms` more (0: released until it is due).
fn ongoing(cursor: &Cursor, wake_at: i64, lease_ms: i64, history: Vec<HistoryEvent>) -> Commit {
    Commit {
        status: RUNNING,
        cursor: json_text(cursor),
        output: None,
        error: None,
        cause: None,
        wake_at,
        lease_ms,
        history,
        spawn: Vec::new(),
        token: TokenWrite::None,
    }
}

fn json_text<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}
