//! The commits that leave a state: to the next, to sleep, to a retry or catcher, or to
//! the end of the execution.

use serde_json::{Value, json};

use crate::store::now_ms;
use crate::store::task_tokens::TokenWrite;
use crate::store::workflow::{
    Commit, ExecutionRow, FAILED, HistoryEvent, NewExecution, SUCCEEDED, TIMED_OUT,
};
use crate::workflow::definition::{Kind, State};
use crate::workflow::errors::{self, StateError, matches};
use crate::workflow::payload;

use super::cursor::{Cursor, Phase};
use super::{ASLEEP, Executor, LEASE_MS, event, iso, json_text, ongoing, within_payload_limit};

impl Executor {
    /// Back to sleep until a child wakes this execution.
    pub(super) fn rest(
        &self,
        row: &ExecutionRow,
        cursor: &Cursor,
        history: Vec<HistoryEvent>,
        spawn: Vec<NewExecution>,
    ) -> Commit {
        Commit {
            spawn,
            ..ongoing(cursor, self.asleep(row), 0, history)
        }
    }

    pub(super) fn asleep(&self, row: &ExecutionRow) -> i64 {
        row.deadline_at.unwrap_or(ASLEEP).min(ASLEEP)
    }

    pub(super) fn sleep(&self, row: &ExecutionRow, cursor: &Cursor, until: i64) -> Commit {
        let history = vec![event(
            "WaitStateEntered",
            Some(&cursor.state),
            json!({ "until": iso(until) }),
        )];
        ongoing(
            cursor,
            row.deadline_at.map_or(until, |d| until.min(d)),
            0,
            history,
        )
    }

    /// Leaves the state with `output` for its `Next` (or the end).
    pub(super) fn transition(
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
    pub(super) fn leave(
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
                let entered = Cursor {
                    vars: cursor.vars.clone(),
                    ..Cursor::enter(next, output)
                };
                ongoing(&entered, now_ms(), LEASE_MS, events)
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
    pub(super) fn failure(
        &self,
        row: &ExecutionRow,
        cursor: &Cursor,
        state: &State,
        error: StateError,
        mut events: Vec<HistoryEvent>,
    ) -> Commit {
        // A Fail state's error is the one it declares (its own failing paths were
        // placed in the state where they failed).
        let error = match state.kind {
            Kind::Fail { .. } => error,
            _ => error.in_state(&cursor.state),
        };
        events.extend(evaluation_failed(&error, &cursor.state));
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
                return ongoing(
                    &again,
                    row.deadline_at.map_or(wake_at, |d| wake_at.min(d)),
                    if delay == 0 { LEASE_MS } else { 0 },
                    events,
                );
            }
        }
        if let Some(catcher) = state
            .catch
            .iter()
            .find(|c| matches(&c.errors, &error.error))
        {
            let context = self.context(row, cursor);
            let placed = match &catcher.jsonata {
                Some(io) => {
                    let states = super::jsonata::states(
                        &context,
                        &cursor.input,
                        Some(("errorOutput", error.to_json())),
                    );
                    self.jsonata_io(io, states, &context, error.to_json(), cursor)
                }
                None => self
                    .assigned(&catcher.assign, &error.to_json(), &context, cursor)
                    .and_then(|after| {
                        payload::place(&catcher.result_path, &cursor.input, error.to_json())
                            .map(|output| (after, output))
                    }),
            };
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
                Err(e) => {
                    // The catcher's own `Output` or `Assign` failed.
                    let e = e.in_state(&cursor.state);
                    events.extend(evaluation_failed(&e, &cursor.state));
                    return self.end_with(row, FAILED, Some(&cursor.state), e, events);
                }
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

    pub(super) fn end_failed(
        &self,
        row: &ExecutionRow,
        state: Option<&str>,
        error: StateError,
    ) -> Commit {
        self.end(row, FAILED, state, error)
    }

    pub(super) fn end(
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

/// The cloud's `EvaluationFailed` history event of a failed JSONata evaluation (its
/// error, cause, the field it was in and the state), recorded before what follows it
/// (a retry, a catch, the execution's failure).
fn evaluation_failed(error: &StateError, state: &str) -> Option<HistoryEvent> {
    let location = error.evaluated.as_deref()?;
    Some(event(
        "EvaluationFailed",
        Some(state),
        json!({
            "error": error.error,
            "cause": error.cause,
            "location": location,
            "state": state,
        }),
    ))
}
