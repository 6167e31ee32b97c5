//! Task results scripted per state, for running a workflow with no plugins: fixtures
//! (`orquesta test`) and the engine's own tests. Each Task state has a list of answers,
//! one per attempt, used in order; an attempt with no answer left fails visibly.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::errors::StateError;
use super::executor::{TaskCall, TaskRunner};

/// One scripted attempt: a result, or an error thrown, optionally after a pause.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub outcome: Result<Value, StateError>,
    pub delay: Duration,
}

impl Attempt {
    pub fn ok(value: Value) -> Self {
        Attempt {
            outcome: Ok(value),
            delay: Duration::ZERO,
        }
    }

    pub fn throw(error: &str, cause: &str) -> Self {
        Attempt {
            outcome: Err(StateError::new(error, cause)),
            delay: Duration::ZERO,
        }
    }
}

/// A call the workflow made.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedCall {
    pub state: String,
    pub resource: String,
    pub input: Value,
}

#[derive(Default)]
pub struct ScriptedTasks {
    answers: Mutex<BTreeMap<String, VecDeque<Attempt>>>,
    calls: Mutex<Vec<RecordedCall>>,
}

/// The error of an attempt nothing was scripted for.
pub const UNSCRIPTED: &str = "orquesta.UnscriptedTask";

impl ScriptedTasks {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the answers of a state's next attempts.
    pub fn script(&self, state: &str, attempts: impl IntoIterator<Item = Attempt>) -> &Self {
        self.answers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(state.to_string())
            .or_default()
            .extend(attempts);
        self
    }

    pub fn calls(&self) -> Vec<RecordedCall> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait]
impl TaskRunner for ScriptedTasks {
    fn default_timeout(&self, _: &str, _: &str) -> Duration {
        Duration::from_secs(60)
    }

    async fn run(&self, call: TaskCall) -> Result<Value, StateError> {
        self.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(RecordedCall {
                state: call.state.clone(),
                resource: call.resource.clone(),
                input: call.input.clone(),
            });
        let next = self
            .answers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(&call.state)
            .and_then(VecDeque::pop_front);
        let Some(attempt) = next else {
            return Err(StateError::new(
                UNSCRIPTED,
                format!("no scripted result is left for state {:?}", call.state),
            ));
        };
        if !attempt.delay.is_zero() {
            tokio::time::sleep(attempt.delay).await;
        }
        attempt.outcome
    }
}
