//! Task results scripted per state, for running a workflow with no plugins: fixtures
//! (`orquesta test`) and the engine's own tests. Each Task state has a list of answers,
//! one per attempt, used in order (a `repeat` answer is never used up); an attempt with no
//! answer left fails visibly.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::errors::StateError;
use super::executor::{TaskCall, TaskRunner};
use crate::capabilities::blob::Blobs;

/// One scripted attempt: a result, or an error thrown, optionally after a pause.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub outcome: Result<Value, StateError>,
    pub delay: Duration,
    /// Answers every attempt from here on (Map items, loops).
    pub repeat: bool,
    /// A callback task's token is never answered, so its `TimeoutSeconds` or
    /// `HeartbeatSeconds` fire (`outcome` is unused).
    pub no_answer: bool,
}

impl Attempt {
    pub fn ok(value: Value) -> Self {
        Attempt {
            outcome: Ok(value),
            delay: Duration::ZERO,
            repeat: false,
            no_answer: false,
        }
    }

    pub fn throw(error: &str, cause: &str) -> Self {
        Attempt {
            outcome: Err(StateError::new(error, cause)),
            delay: Duration::ZERO,
            repeat: false,
            no_answer: false,
        }
    }
}

/// A call the workflow made.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedCall {
    pub state: String,
    pub resource: String,
    pub input: Value,
    /// False when no scripted answer was left for it.
    pub answered: bool,
}

#[derive(Default)]
pub struct ScriptedTasks {
    answers: Mutex<BTreeMap<String, VecDeque<Attempt>>>,
    calls: Mutex<Vec<RecordedCall>>,
    /// A callback task's scripted answer is its token's (fixtures): the call itself
    /// returns null, and the answer waits here to be sent for the token.
    answer_callbacks: bool,
    callback_answers: Mutex<Vec<(String, Result<Value, StateError>)>>,
    /// The blobs a distributed Map reads and writes (none: it fails as a host without
    /// blobs would).
    blobs: Option<Arc<dyn Blobs>>,
}

/// The error of an attempt nothing was scripted for.
pub const UNSCRIPTED: &str = "orquesta.UnscriptedTask";
/// The error of a plain Task's attempt scripted as `no_answer` (only a callback task's
/// token can go unanswered).
pub const NO_ANSWER_ON_PLAIN_TASK: &str = "orquesta.NoAnswerOnPlainTask";

impl ScriptedTasks {
    pub fn new() -> Self {
        Self::default()
    }

    /// Scripts that answer a callback task's token instead of its plugin call:
    /// [`ScriptedTasks::take_callback_answers`] gives them, to send for their tokens.
    pub fn answering_callbacks() -> Self {
        ScriptedTasks {
            answer_callbacks: true,
            ..Self::default()
        }
    }

    /// These scripts, with blobs for a distributed Map's `ItemReader` and
    /// `ResultWriter`.
    pub fn with_blobs(self, blobs: Arc<dyn Blobs>) -> Self {
        ScriptedTasks {
            blobs: Some(blobs),
            ..self
        }
    }

    /// The answers scripted for the callback tasks called since the last take, with
    /// their tokens.
    pub fn take_callback_answers(&self) -> Vec<(String, Result<Value, StateError>)> {
        std::mem::take(
            &mut *self
                .callback_answers
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        )
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

    /// `(state, attempt number)` of each call that found no answer left: a Catch may
    /// hide the error from the execution, so tests report these on their own.
    pub fn unscripted(&self) -> Vec<(String, usize)> {
        let calls = self.calls();
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        let mut missing = Vec::new();
        for call in &calls {
            let n = seen.entry(call.state.as_str()).or_default();
            *n += 1;
            if !call.answered {
                missing.push((call.state.clone(), *n));
            }
        }
        missing
    }
}

#[async_trait]
impl TaskRunner for ScriptedTasks {
    fn default_timeout(&self, _: &str, _: &str) -> Duration {
        Duration::from_secs(60)
    }

    fn blobs(&self, _: &str) -> Option<Arc<dyn Blobs>> {
        self.blobs.clone()
    }

    async fn run(&self, call: TaskCall) -> Result<Value, StateError> {
        let next = self
            .answers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(&call.state)
            .and_then(|queue| match queue.front() {
                Some(a) if a.repeat => Some(a.clone()),
                _ => queue.pop_front(),
            });
        self.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(RecordedCall {
                state: call.state.clone(),
                resource: call.resource.clone(),
                input: call.input.clone(),
                answered: next.is_some(),
            });
        let Some(attempt) = next else {
            return Err(StateError::new(
                UNSCRIPTED,
                format!("no scripted result is left for state {:?}", call.state),
            ));
        };
        if !attempt.delay.is_zero() {
            tokio::time::sleep(attempt.delay).await;
        }
        let token = call.context["Task"]["Token"].as_str();
        if attempt.no_answer {
            return match token {
                Some(_) => Ok(Value::Null),
                None => Err(StateError::new(
                    NO_ANSWER_ON_PLAIN_TASK,
                    format!(
                        "state {:?} is not a callback task (.waitForTaskToken): only a token can go unanswered; script `delay_ms` past its TimeoutSeconds instead",
                        call.state
                    ),
                )),
            };
        }
        if self.answer_callbacks
            && let Some(token) = token
        {
            self.callback_answers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((token.to_string(), attempt.outcome));
            return Ok(Value::Null);
        }
        attempt.outcome
    }
}
