//! Task tokens of callback tasks (`.waitForTaskToken`): opened and closed by the
//! executor's transitions (`TokenWrite` in a `Commit`), answered by SendTaskSuccess,
//! SendTaskFailure and SendTaskHeartbeat. Only a token's SHA-256 is stored; a token is
//! looked up with its tenant, so another tenant's token is as unknown as a made-up one.

use sha2::{Digest, Sha256};
use sqlx::Connection as _;

use super::{Store, StoreError, now_ms};

pub const WAITING: &str = "WAITING";
pub const ANSWERED_SUCCESS: &str = "SUCCEEDED";
pub const ANSWERED_FAILURE: &str = "FAILED";
pub const CLOSED: &str = "CLOSED";

/// What a transition does to a task token, in its own transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum TokenWrite {
    #[default]
    None,
    /// A callback task starts waiting on this token (by its hash).
    Open {
        hash: String,
        tenant: String,
        execution_id: String,
        state: String,
    },
    /// The task is over (answered, timed out, interrupted): no answer is taken after.
    Close(String),
}

/// A token's answer, as the executor reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenState {
    pub status: String,
    pub output: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub heartbeat_at: i64,
}

/// An answer to a task.
#[derive(Debug, Clone)]
pub enum Answer {
    Success(String),
    Failure { error: String, cause: String },
    Heartbeat,
}

/// Why an answer was refused, by the names Step Functions gives these errors.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    /// Not a token: empty, too long, or with characters no token has.
    #[error("InvalidToken: the task token is not valid")]
    InvalidToken,
    /// No task of this tenant has this token: made up, or another tenant's, which is
    /// refused exactly alike so that a token's existence elsewhere does not show.
    #[error("TaskDoesNotExist: no task of this tenant has this token")]
    TaskDoesNotExist,
    /// The task is no longer waiting: answered, timed out, or its execution ended.
    #[error("TaskTimedOut: the task of this token is no longer waiting for an answer")]
    TaskTimedOut,
    /// An output, error or cause the cloud would refuse (not JSON, too long).
    #[error("InvalidOutput: {0}")]
    InvalidOutput(String),
    /// The task is the tenant's, in a workflow the caller may not answer for (a
    /// plugin's `allow.workflow_tasks`).
    #[error("denied: workflow `{0}` is not granted to this plugin (allow.workflow_tasks)")]
    Denied(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// SendTaskSuccess / SendTaskFailure limits, as in Step Functions' API: an output of at
/// most 256 KiB, an error of at most 256 characters, a cause of at most 32,768, a token
/// of at most 1,024.
pub const MAX_TOKEN_CHARS: usize = 1024;
pub const MAX_OUTPUT_BYTES: usize = 256 * 1024;
pub const MAX_ERROR_CHARS: usize = 256;
pub const MAX_CAUSE_CHARS: usize = 32_768;

/// Checks an answer before anything is looked up: the token's shape (what
/// [`new_token`] makes: URL-safe base64) and the limits above; a success's output must
/// be JSON.
pub fn check_answer(token: &str, answer: &Answer) -> Result<(), AnswerError> {
    let token_like = !token.is_empty()
        && token.len() <= MAX_TOKEN_CHARS
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !token_like {
        return Err(AnswerError::InvalidToken);
    }
    match answer {
        Answer::Success(output) => {
            if output.len() > MAX_OUTPUT_BYTES {
                return Err(AnswerError::InvalidOutput(format!(
                    "the output is {} bytes, over {MAX_OUTPUT_BYTES}",
                    output.len()
                )));
            }
            serde_json::from_str::<serde::de::IgnoredAny>(output)
                .map_err(|e| AnswerError::InvalidOutput(format!("the output must be JSON: {e}")))?;
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
    Ok(())
}

impl From<sqlx::Error> for AnswerError {
    fn from(e: sqlx::Error) -> Self {
        AnswerError::Store(StoreError::from(e))
    }
}

/// A new task token: 256 bits from the OS's random source (two v4 UUIDs' random bytes,
/// 244 bits of them random), URL-safe base64.
pub fn new_token() -> String {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What the store keeps of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Writes `write` in a transition's transaction.
pub(super) async fn apply(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    write: &TokenWrite,
    now: i64,
) -> Result<(), StoreError> {
    match write {
        TokenWrite::None => {}
        TokenWrite::Open {
            hash,
            tenant,
            execution_id,
            state,
        } => {
            sqlx::query(
                "INSERT INTO wf_task_tokens
                   (token_hash, tenant, execution_id, state, status, created_at, heartbeat_at)
                 VALUES ($1, $2, $3, $4, 'WAITING', $5, $5)",
            )
            .bind(hash)
            .bind(tenant)
            .bind(execution_id)
            .bind(state)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
        TokenWrite::Close(hash) => {
            sqlx::query("UPDATE wf_task_tokens SET status = 'CLOSED' WHERE token_hash = $1")
                .bind(hash)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}

impl Store {
    /// The answer (or none yet) of the token with this hash.
    pub async fn wf_token(&self, hash: &str) -> Result<Option<TokenState>, StoreError> {
        type Row = (String, Option<String>, Option<String>, Option<String>, i64);
        let row: Option<Row> = sqlx::query_as(
            "SELECT status, output, error, cause, heartbeat_at FROM wf_task_tokens
             WHERE token_hash = $1",
        )
        .bind(hash)
        .fetch_optional(&mut *self.reader().await?)
        .await?;
        Ok(
            row.map(|(status, output, error, cause, heartbeat_at)| TokenState {
                status,
                output,
                error,
                cause,
                heartbeat_at,
            }),
        )
    }

    /// Answers the task waiting on `token` for `tenant`: a success or failure is taken
    /// once, and wakes the execution; a heartbeat restarts the task's heartbeat time.
    /// Refused when no task of the tenant has the token (`TaskDoesNotExist`), when its
    /// workflow is not one `workflow_allowed` accepts (`Denied`), or when the task no
    /// longer waits (`TaskTimedOut`: answered, timed out, execution ended).
    pub async fn wf_answer_task(
        &self,
        tenant: &str,
        token: &str,
        answer: &Answer,
        workflow_allowed: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<(), AnswerError> {
        let hash = token_hash(token);
        let now = now_ms();
        let mut conn = self.writer().await?;
        let mut tx = conn.begin().await?;
        let found: Option<(String, String, Option<String>)> = sqlx::query_as(
            "SELECT t.execution_id, t.status, e.workflow FROM wf_task_tokens t
             LEFT JOIN wf_executions e ON e.id = t.execution_id
             WHERE t.token_hash = $1 AND t.tenant = $2",
        )
        .bind(&hash)
        .bind(tenant)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((execution, status, workflow)) = found else {
            return Err(AnswerError::TaskDoesNotExist);
        };
        let workflow = workflow.unwrap_or_default();
        if !workflow_allowed(&workflow) {
            return Err(AnswerError::Denied(workflow));
        }
        if status != WAITING {
            return Err(AnswerError::TaskTimedOut);
        }
        // The execution's row first, then the token's, as a transition writes them: two
        // writers never wait on each other's second row. A success or failure wakes the
        // execution (and moves its version, so a host about to put it to sleep fails to);
        // a heartbeat only checks that it still runs.
        let running = match answer {
            Answer::Heartbeat => sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM wf_executions WHERE id = $1 AND status = 'RUNNING'",
            )
            .bind(&execution)
            .fetch_one(&mut *tx)
            .await?
            .max(0) as u64,
            _ => sqlx::query(
                "UPDATE wf_executions SET wake_at = $1, lease_until = 0, version = version + 1
                 WHERE id = $2 AND status = 'RUNNING'",
            )
            .bind(now)
            .bind(&execution)
            .execute(&mut *tx)
            .await?
            .rows_affected(),
        };
        if running != 1 {
            return Err(AnswerError::TaskTimedOut);
        }
        let (status, output, error, cause) = match answer {
            Answer::Success(output) => (ANSWERED_SUCCESS, Some(output.as_str()), None, None),
            Answer::Failure { error, cause } => (
                ANSWERED_FAILURE,
                None,
                Some(error.as_str()),
                Some(cause.as_str()),
            ),
            Answer::Heartbeat => (WAITING, None, None, None),
        };
        let updated = sqlx::query(
            "UPDATE wf_task_tokens
             SET status = $1, output = $2, error = $3, cause = $4, heartbeat_at = $5
             WHERE token_hash = $6 AND status = 'WAITING'",
        )
        .bind(status)
        .bind(output)
        .bind(error)
        .bind(cause)
        .bind(now)
        .bind(&hash)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated != 1 {
            // Closed since it was read: dropping the transaction undoes the wake-up.
            return Err(AnswerError::TaskTimedOut);
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Closes every waiting token of an execution and its children (a redrive starts their
/// tasks again, with new tokens).
pub(super) async fn close_all_of_root(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    root: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE wf_task_tokens SET status = 'CLOSED'
         WHERE status = 'WAITING'
           AND execution_id IN (SELECT id FROM wf_executions WHERE root_id = $1)",
    )
    .bind(root)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
