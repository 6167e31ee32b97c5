//! Answers to workflow callback tasks (`.waitForTaskToken`), as a Lambda sends them with
//! the cloud's SDK: a task's plugin gets a token in its input (`"token.$":
//! "$$.Task.Token"` in the state's `Parameters`), keeps it, and whatever later knows the
//! result (a queue message, an HTTP route, a schedule) answers with it. The plugin needs
//! `allow.workflow_tasks` naming the workflow (docs/TENANTS.md).
//!
//! ```ignore
//! use orquesta_sdk::tasks;
//! tasks::succeed(&token, &serde_json::json!({ "approved": true }))?;
//! tasks::fail(&token, "Rejected", "over budget")?;
//! tasks::heartbeat(&token)?;
//! ```

use crate::Failure;
use crate::orquesta::plugin::types::HostError;
pub use crate::orquesta::plugin::workflow_tasks::TaskError;
use crate::orquesta::plugin::workflow_tasks::{
    send_task_failure, send_task_heartbeat, send_task_success,
};

/// SendTaskSuccess: the task ends with `output` as its result (at most 256 KiB of JSON).
pub fn succeed(token: &str, output: &serde_json::Value) -> Result<(), TaskError> {
    send_task_success(token, &output.to_string())
}

/// SendTaskFailure: the task fails with `error` (at most 256 characters) and `cause`
/// (at most 32,768), which its state's `Retry` and `Catch` match.
pub fn fail(token: &str, error: &str, cause: &str) -> Result<(), TaskError> {
    send_task_failure(token, Some(error), Some(cause))
}

/// SendTaskHeartbeat: the task's `HeartbeatSeconds` start again.
pub fn heartbeat(token: &str) -> Result<(), TaskError> {
    send_task_heartbeat(token)
}

/// The token a state put in the task's input under `field` (`"token.$":
/// "$$.Task.Token"`), searching nested objects such as a `Payload`.
pub fn token_in<'a>(input: &'a serde_json::Value, field: &str) -> Option<&'a str> {
    if let Some(token) = input.get(field).and_then(serde_json::Value::as_str) {
        return Some(token);
    }
    input
        .as_object()?
        .values()
        .filter(|v| v.is_object())
        .find_map(|v| token_in(v, field))
}

impl TaskError {
    /// The cloud's name for the refusal (`InvalidToken`, `TaskDoesNotExist`,
    /// `TaskTimedOut`, `InvalidOutput`), or the host error's (`Denied`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            TaskError::InvalidToken(_) => "InvalidToken",
            TaskError::TaskDoesNotExist(_) => "TaskDoesNotExist",
            TaskError::TaskTimedOut(_) => "TaskTimedOut",
            TaskError::InvalidOutput(_) => "InvalidOutput",
            TaskError::Host(e) => host_error_name(e),
        }
    }

    /// Why, in the host's words.
    pub fn cause(&self) -> &str {
        match self {
            TaskError::InvalidToken(c)
            | TaskError::TaskDoesNotExist(c)
            | TaskError::TaskTimedOut(c)
            | TaskError::InvalidOutput(c) => c,
            TaskError::Host(
                HostError::Denied(c)
                | HostError::Unavailable(c)
                | HostError::Invalid(c)
                | HostError::Timeout(c)
                | HostError::Failed(c),
            ) => c,
        }
    }
}

fn host_error_name(e: &HostError) -> &'static str {
    match e {
        HostError::Denied(_) => "Denied",
        HostError::Unavailable(_) => "Unavailable",
        HostError::Invalid(_) => "Invalid",
        HostError::Timeout(_) => "Timeout",
        HostError::Failed(_) => "HostFailed",
    }
}

/// A refused answer as the plugin's own typed failure, named as the cloud names it.
impl From<TaskError> for Failure {
    fn from(e: TaskError) -> Self {
        Failure::new(e.name(), e.cause())
    }
}
