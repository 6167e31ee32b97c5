//! Callback tasks (`.waitForTaskToken`): the token, its answers, and waiting for them.

use std::time::Duration;

use serde_json::{Value, json};

use crate::store::task_tokens::{
    self, ANSWERED_FAILURE, ANSWERED_SUCCESS, Answer, AnswerError, TokenWrite, WAITING,
};
use crate::store::workflow::{Commit, ExecutionRow, TIMED_OUT};
use crate::store::{StoreError, now_ms};
use crate::workflow::definition::State;
use crate::workflow::errors::{self, StateError};

use super::cursor::{Cursor, Phase};
use super::task::{scheduled, task_call};
use super::{ASLEEP, Executor, PLUGIN_LIMIT_BACKSTOP, event};

impl Executor {
    /// SendTaskSuccess, SendTaskFailure or SendTaskHeartbeat for the callback task
    /// waiting on `token` in one of `tenant`'s executions, with the cloud's limits
    /// ([`task_tokens::check_answer`]).
    pub async fn answer_task(
        &self,
        tenant: &str,
        token: &str,
        answer: &Answer,
    ) -> Result<(), AnswerError> {
        self.answer_task_in(tenant, token, answer, &|_| true).await
    }

    /// [`Executor::answer_task`] for a caller that may answer only the tasks of the
    /// workflows `workflow_allowed` accepts (a plugin's `allow.workflow_tasks`).
    pub async fn answer_task_in(
        &self,
        tenant: &str,
        token: &str,
        answer: &Answer,
        workflow_allowed: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<(), AnswerError> {
        task_tokens::check_answer(token, answer)?;
        self.store
            .wf_answer_task(tenant, token, answer, workflow_allowed)
            .await?;
        if !matches!(answer, Answer::Heartbeat) {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Starts a callback task: its token is stored (as a hash) and the task recorded as
    /// scheduled in one transition, then its plugin is called once with the token. The
    /// execution then sleeps, holding nothing, until an answer wakes it or a time limit.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn start_callback(
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
            token: TokenWrite::Open {
                hash: hash.clone(),
                tenant: row.tenant.clone(),
                execution_id: row.id.clone(),
                state: cursor.state.clone(),
            },
            ..scheduled(&waiting, cursor, resource, &input, now, limit, true)
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
            Err(e) => self.task_failed(row, cursor, state, "TaskFailed", e),
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
    pub(super) async fn callback(
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
        let mut now = now_ms();
        if self.options.skip_waits
            && *invoked
            && let Some(a) = answer.as_ref().filter(|a| a.status == WAITING)
        {
            // Fixtures take no time: woken with no answer, the task is at the first of
            // its limits (the runner wakes it when nothing else is left to do).
            let heartbeat_due = heartbeat_ms.map(|h| a.heartbeat_at + h);
            if let Some(first) = [*timeout_at, heartbeat_due, row.deadline_at]
                .into_iter()
                .flatten()
                .min()
            {
                now = now.max(first);
            }
        }
        let mut commit = match answer {
            Some(a) if a.status == ANSWERED_SUCCESS => {
                let result = a.output.as_deref().map_or(Value::Null, |o| {
                    serde_json::from_str(o).unwrap_or(Value::Null)
                });
                self.task_succeeded(row, cursor, state, context, result)
            }
            Some(a) if a.status == ANSWERED_FAILURE => {
                let e = StateError {
                    error: a.error.unwrap_or_default(),
                    cause: a.cause.unwrap_or_default(),
                    evaluated: None,
                };
                self.task_failed(row, cursor, state, "TaskFailed", e)
            }
            // Called by a host that stopped before it knew the call's outcome.
            _ if !invoked => self.interrupted(row, cursor, state),
            None => self.interrupted(row, cursor, state),
            Some(_) if timeout_at.is_some_and(|t| t <= now) => {
                let e = StateError::new(
                    errors::TIMEOUT,
                    "the task was not answered within its TimeoutSeconds",
                );
                self.task_failed(row, cursor, state, "TaskTimedOut", e)
            }
            Some(a) if heartbeat_ms.is_some_and(|h| a.heartbeat_at + h <= now) => {
                let e = StateError::new(
                    errors::HEARTBEAT_TIMEOUT,
                    "no heartbeat or answer came within the task's HeartbeatSeconds",
                );
                self.task_failed(row, cursor, state, "TaskTimedOut", e)
            }
            // Only where time is skipped: a host that is on time ends the execution
            // before it steps it.
            Some(_) if row.deadline_at.is_some_and(|d| d <= now) => self.end(
                row,
                TIMED_OUT,
                Some(&cursor.state),
                StateError::new(errors::TIMEOUT, "the execution ran past its TimeoutSeconds"),
            ),
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
}
