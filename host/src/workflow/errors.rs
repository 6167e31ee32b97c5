//! Errors inside executions: the spec's predefined `States.*` names, a plugin's typed
//! error names, and the `Retry` / `Catch` fields that match them.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::choice::EvalError;
use super::definition_error::{DefinitionError, Problem};
use super::intrinsics::IntrinsicError;
use super::path::ReferencePath;

pub const ALL: &str = "States.ALL";
pub const RUNTIME: &str = "States.Runtime";
pub const TIMEOUT: &str = "States.Timeout";
pub const HEARTBEAT_TIMEOUT: &str = "States.HeartbeatTimeout";
pub const TASK_FAILED: &str = "States.TaskFailed";
pub const PERMISSIONS: &str = "States.Permissions";
pub const RESULT_PATH_MATCH_FAILURE: &str = "States.ResultPathMatchFailure";
pub const PARAMETER_PATH_FAILURE: &str = "States.ParameterPathFailure";
pub const BRANCH_FAILED: &str = "States.BranchFailed";
pub const NO_CHOICE_MATCHED: &str = "States.NoChoiceMatched";
pub const INTRINSIC_FAILURE: &str = "States.IntrinsicFailure";
pub const EXCEED_TOLERATED_FAILURE_THRESHOLD: &str = "States.ExceedToleratedFailureThreshold";
pub const DATA_LIMIT_EXCEEDED: &str = "States.DataLimitExceeded";
/// A distributed Map's `ItemReader` could not read its items: no such object, not the
/// format it names, past a bound.
pub const ITEM_READER_FAILED: &str = "States.ItemReaderFailed";
/// A distributed Map's `ResultWriter` could not write its results.
pub const RESULT_WRITER_FAILED: &str = "States.ResultWriterFailed";
/// A JSONata expression that failed or gave a value its field cannot take.
pub const QUERY_EVALUATION_ERROR: &str = "States.QueryEvaluationError";

/// Host errors in a Task carry the names the cloud gives a Lambda function's failures
/// (the developer guide, "Handle Lambda service exceptions"), so definitions written
/// for Lambda tasks catch them unchanged. An unhandled failure of the plugin (a trap, its
/// memory limit, its own time limit, a bad answer): as Lambda's out-of-memory errors and
/// function timeouts are reported.
pub const LAMBDA_UNKNOWN: &str = "Lambda.Unknown";
/// The Task's `Resource` is not a plugin the tenant serves: as a missing function.
pub const LAMBDA_RESOURCE_NOT_FOUND: &str = "Lambda.ResourceNotFoundException";
/// The service could not run the task at all (its tenant is not serving, the host is
/// stopping): as Lambda's transient service errors, which retriers are advised to match.
pub const LAMBDA_SERVICE_EXCEPTION: &str = "Lambda.ServiceException";

/// How the cause of an error raised in a state begins ([`StateError::in_state`]).
const IN_STATE: &str = "An error occurred while executing the state";

/// Stands for the number of the history event a state was entered at, in a cause
/// written before the store numbered the event ([`StateError::in_state`]); the commit
/// that writes the cause replaces it. Control characters, so that no text a cause
/// quotes holds it by accident (were one to, it would only read as that number).
pub const ENTERED_MARK: &str = "\u{1}entered\u{1}";

/// An error raised in a state: its name (matched by `ErrorEquals`) and cause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateError {
    pub error: String,
    pub cause: String,
    /// The field whose JSONata evaluation failed (`Arguments/id`), for the history's
    /// `EvaluationFailed` event; set where the evaluation fails, so an error passed on
    /// (a child's, in its parent) has none. Not kept past the step.
    #[serde(skip)]
    pub evaluated: Option<String>,
}

impl StateError {
    pub fn new(error: &str, cause: impl Into<String>) -> Self {
        StateError {
            error: error.to_string(),
            cause: cause.into(),
            evaluated: None,
        }
    }

    /// A failed JSONata evaluation of `field`: `States.QueryEvaluationError`.
    pub fn evaluation(field: &str, cause: impl Into<String>) -> Self {
        StateError {
            evaluated: Some(field.to_string()),
            ..StateError::new(QUERY_EVALUATION_ERROR, cause)
        }
    }

    /// This error as raised while `state` ran. The cloud's causes for the errors its
    /// interpreter raises in a state (a path or expression that fails, an intrinsic
    /// function's error) begin by naming the state and the history event it was
    /// entered at: "An error occurred while executing the state 'Check' (entered at the
    /// event id #2). The JSONPath ...". The event's number is the store's, so the cause
    /// carries [`ENTERED_MARK`] until the executor's commit puts the number in. Other
    /// errors (a Task's, a Fail state's own, a child's passed on) keep their cause.
    pub fn in_state(mut self, state: &str) -> Self {
        let raised_by_interpreter =
            [RUNTIME, QUERY_EVALUATION_ERROR, INTRINSIC_FAILURE].contains(&self.error.as_str());
        if raised_by_interpreter && !self.cause.starts_with(IN_STATE) {
            self.cause = format!(
                "{IN_STATE} '{state}' (entered at the event id #{ENTERED_MARK}). {}",
                self.cause
            );
        }
        self
    }

    /// The error output a `Catch` places at its `ResultPath`.
    pub fn to_json(&self) -> Value {
        json!({ "Error": self.error, "Cause": self.cause })
    }
}

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.cause)
    }
}

/// A Choice rule that cannot be evaluated: `States.Runtime`.
impl From<EvalError> for StateError {
    fn from(e: EvalError) -> Self {
        StateError::new(RUNTIME, e.to_string())
    }
}

/// An intrinsic function that failed: `States.IntrinsicFailure`, its cause naming the
/// function.
impl From<IntrinsicError> for StateError {
    fn from(e: IntrinsicError) -> Self {
        StateError::new(INTRINSIC_FAILURE, e.to_string())
    }
}

/// Whether an `ErrorEquals` list matches `error`. `States.ALL` matches everything and
/// `States.TaskFailed` everything but `States.Timeout`, except the errors the developer
/// guide makes terminal: `States.DataLimitExceeded`, which only its own name matches,
/// and `States.Runtime`, which nothing matches (the cloud neither retries nor catches
/// it, even when a list names it).
pub fn matches(list: &[String], error: &str) -> bool {
    if error == RUNTIME {
        return false;
    }
    let terminal = error == DATA_LIMIT_EXCEEDED;
    list.iter().any(|e| {
        e == error || (!terminal && e == ALL) || (!terminal && e == TASK_FAILED && error != TIMEOUT)
    })
}

#[derive(Debug, Clone)]
pub struct Retrier {
    pub errors: Vec<String>,
    pub interval_seconds: f64,
    pub max_attempts: u32,
    pub backoff_rate: f64,
    pub max_delay_seconds: Option<f64>,
    pub full_jitter: bool,
}

impl Retrier {
    /// The pause before retry number `retries_done + 1` of this retrier, in ms.
    pub fn delay_ms(&self, retries_done: u32) -> u64 {
        let mut seconds = self.interval_seconds * self.backoff_rate.powi(retries_done as i32);
        if let Some(max) = self.max_delay_seconds {
            seconds = seconds.min(max);
        }
        let mut ms = (seconds * 1000.0).min(u64::MAX as f64 / 2.0) as u64;
        if self.full_jitter {
            ms = fastrand::u64(0..=ms);
        }
        ms
    }
}

#[derive(Debug, Clone)]
pub struct Catcher {
    pub errors: Vec<String>,
    pub next: String,
    /// `None` for `"ResultPath": null` (the error is discarded).
    pub result_path: Option<ReferencePath>,
    /// Variables assigned when this catcher catches; `$` is the error output.
    pub assign: Option<super::template::Template>,
    /// A JSONata state's catcher: its `Output` and `Assign` (`ResultPath` is `$`).
    pub jsonata: Option<super::jsonata::JsonataIo>,
}

/// Checks the `ErrorEquals` lists of a Retry or Catch field: non-empty, and
/// `States.ALL` alone in the last entry.
pub fn check_lists(lists: &[&[String]], at: &str) -> Result<(), DefinitionError> {
    for (i, list) in lists.iter().enumerate() {
        let refuse = |problem| DefinitionError::new(format!("{at}[{i}].ErrorEquals"), problem);
        if list.is_empty() {
            return Err(refuse(Problem::NoErrorNames));
        }
        if list.iter().any(|e| e == ALL) && (list.len() > 1 || i + 1 != lists.len()) {
            return Err(refuse(Problem::AllNotAlone));
        }
        if let Some(bad) = list
            .iter()
            .find(|e| e.starts_with("States.") && !PREDEFINED.contains(&e.as_str()))
        {
            return Err(refuse(Problem::UnknownErrorName(bad.clone())));
        }
    }
    Ok(())
}

const PREDEFINED: [&str; 16] = [
    ALL,
    RUNTIME,
    TIMEOUT,
    HEARTBEAT_TIMEOUT,
    TASK_FAILED,
    PERMISSIONS,
    RESULT_PATH_MATCH_FAILURE,
    PARAMETER_PATH_FAILURE,
    BRANCH_FAILED,
    NO_CHOICE_MATCHED,
    INTRINSIC_FAILURE,
    EXCEED_TOLERATED_FAILURE_THRESHOLD,
    DATA_LIMIT_EXCEEDED,
    ITEM_READER_FAILED,
    RESULT_WRITER_FAILED,
    QUERY_EVALUATION_ERROR,
];

#[cfg(test)]
mod tests {
    use super::*;

    fn list(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn error_matching_follows_the_spec() {
        // (ErrorEquals, error, matches)
        let table: &[(&[&str], &str, bool)] = &[
            (&["States.ALL"], "CustomError", true),
            (&["States.ALL"], TIMEOUT, true),
            (&["States.ALL"], TASK_FAILED, true),
            (&["States.ALL"], RUNTIME, false),
            (&["States.ALL"], DATA_LIMIT_EXCEEDED, false),
            (&["States.TaskFailed"], "CustomError", true),
            (&["States.TaskFailed"], HEARTBEAT_TIMEOUT, true),
            (&["States.TaskFailed"], TIMEOUT, false),
            (&["States.TaskFailed"], RUNTIME, false),
            (&["States.Timeout"], TIMEOUT, true),
            (&["States.Timeout"], HEARTBEAT_TIMEOUT, false),
            (&["CustomError"], "CustomError", true),
            (&["CustomError"], "customerror", false),
            (&["A", "B"], "B", true),
            (&["States.Runtime"], RUNTIME, false),
            (&["States.TaskFailed"], RUNTIME, false),
            (&["States.DataLimitExceeded"], DATA_LIMIT_EXCEEDED, true),
            (&["States.TaskFailed"], DATA_LIMIT_EXCEEDED, false),
            (&["Lambda.Unknown"], "Lambda.Unknown", true),
            (&["States.TaskFailed"], "Lambda.Unknown", true),
        ];
        for (errors, error, want) in table {
            assert_eq!(
                matches(&list(errors), error),
                *want,
                "{errors:?} vs {error}"
            );
        }
    }

    #[test]
    fn retry_delays_back_off_up_to_the_cap() {
        let r = Retrier {
            errors: list(&[ALL]),
            interval_seconds: 2.0,
            max_attempts: 5,
            backoff_rate: 3.0,
            max_delay_seconds: Some(10.0),
            full_jitter: false,
        };
        let delays: Vec<u64> = (0..4).map(|n| r.delay_ms(n)).collect();
        assert_eq!(delays, [2000, 6000, 10_000, 10_000]);
        let jittered = Retrier {
            full_jitter: true,
            ..r
        };
        for n in 0..4 {
            assert!(jittered.delay_ms(n) <= delays[n as usize]);
        }
    }

    #[test]
    fn states_all_must_stand_alone_and_last() {
        let all = list(&[ALL]);
        let mixed = list(&[ALL, "X"]);
        let x = list(&["X"]);
        let refused = |at: &str, problem| Err(DefinitionError::new(at, problem));
        assert_eq!(check_lists(&[&x, &all], "Retry"), Ok(()));
        assert_eq!(
            check_lists(&[&all, &x], "Retry"),
            refused("Retry[0].ErrorEquals", Problem::AllNotAlone)
        );
        assert_eq!(
            check_lists(&[&mixed], "Retry"),
            refused("Retry[0].ErrorEquals", Problem::AllNotAlone)
        );
        assert_eq!(
            check_lists(&[&x, &[]], "Retry"),
            refused("Retry[1].ErrorEquals", Problem::NoErrorNames)
        );
        assert_eq!(
            check_lists(&[&list(&["States.Nope"])], "Retry"),
            refused(
                "Retry[0].ErrorEquals",
                Problem::UnknownErrorName("States.Nope".into())
            )
        );
    }
}
