//! Task states: the plugin call, its time limits, and the Lambda integration.

use std::borrow::Cow;
use std::time::Duration;

use serde_json::{Value, json};

use crate::store::task_tokens;
use crate::store::workflow::{Commit, ExecutionRow};
use crate::store::{StoreError, now_ms};
use crate::workflow::definition::{Kind, Seconds, State};
use crate::workflow::errors::{self, StateError};
use crate::workflow::path::VARIABLES;
use crate::workflow::payload;

use super::cursor::{Cursor, Phase};
use super::{
    Executor, PLUGIN_LIMIT_BACKSTOP, TASK_LEASE_MARGIN_MS, TaskCall, event, ongoing,
    within_payload_limit,
};

impl Executor {
    /// A task whose plugin call was interrupted by a host that stopped: a failed attempt.
    pub(super) fn interrupted(&self, row: &ExecutionRow, cursor: &Cursor, state: &State) -> Commit {
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

    /// A task's result recorded (`TaskSucceeded`), then within the payload limit and
    /// through the state's output processing to its next state.
    pub(super) fn task_succeeded(
        &self,
        row: &ExecutionRow,
        cursor: &Cursor,
        state: &State,
        context: &Value,
        result: Value,
    ) -> Commit {
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

    /// A task's failure recorded (`kind`: `TaskFailed` or `TaskTimedOut`), then
    /// retried, caught or the end of the execution.
    pub(super) fn task_failed(
        &self,
        row: &ExecutionRow,
        cursor: &Cursor,
        state: &State,
        kind: &str,
        error: StateError,
    ) -> Commit {
        let events = vec![event(
            kind,
            Some(&cursor.state),
            json!({ "error": error.error, "cause": error.cause }),
        )];
        self.failure(row, cursor, state, error, events)
    }

    pub(super) async fn run_task(
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
        let input = match self
            .state_input(state, raw, context)
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
        let limit = |s: &Option<Seconds>, field: &str| -> Result<Option<Duration>, StateError> {
            match s {
                None => Ok(None),
                Some(Seconds::Fixed(n)) => Ok(Some(Duration::from_secs(*n))),
                Some(s @ Seconds::Expr(_)) => {
                    let states = super::jsonata::states(context, raw, None);
                    let env = super::jsonata::env(context, states);
                    Ok(super::jsonata::whole_seconds(s, &env, field, false)?
                        .map(Duration::from_secs))
                }
                Some(Seconds::Path(p)) => match p.select(raw, context).and_then(|v| v.as_u64()) {
                    Some(n) if n > 0 => Ok(Some(Duration::from_secs(n))),
                    _ => Err(StateError::new(
                        errors::RUNTIME,
                        format!("{:?} is not a positive number of seconds", p.text()),
                    )),
                },
            }
        };
        let (timeout, heartbeat) = match (
            limit(timeout, "TimeoutSeconds"),
            limit(heartbeat, "HeartbeatSeconds"),
        ) {
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
        let scheduled = scheduled(&running, cursor, resource, &input, now_ms(), limit, false);
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
            Ok(result) => self.task_succeeded(row, cursor, state, context, result),
            Err(e) => self.task_failed(row, cursor, state, "TaskFailed", e),
        }))
    }
}

/// The call a Task on the Lambda integration makes: the plugin its resolved
/// `Parameters.FunctionName` names, with `Parameters.Payload` (`{}` without one) as input.
fn lambda_call(parameters: Value) -> Result<(String, Value), StateError> {
    let name = parameters
        .get("FunctionName")
        .and_then(Value::as_str)
        .and_then(crate::workflow::definition::function_name)
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

/// The transition that records a Task as scheduled, before its plugin is called
/// (`at` is where the execution waits meanwhile); its lease lasts the call's time
/// `limit` and a margin.
pub(super) fn scheduled(
    at: &Cursor,
    cursor: &Cursor,
    resource: &str,
    input: &Value,
    now: i64,
    limit: Duration,
    callback: bool,
) -> Commit {
    let mut detail = json!({ "resource": resource, "input": input, "attempt": cursor.retries.iter().sum::<u32>() + 1 });
    if callback {
        detail["callback"] = json!(true);
    }
    let history = vec![event("TaskScheduled", Some(&cursor.state), detail)];
    ongoing(
        at,
        now,
        limit.as_millis() as i64 + TASK_LEASE_MARGIN_MS,
        history,
    )
}

/// The plugin call of a Task: the context object without the execution's variables.
pub(super) fn task_call(
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
