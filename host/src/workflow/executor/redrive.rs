//! RedriveExecution: an ended execution runs again from the state that did not succeed.

use serde_json::{Value, json};

use crate::store::workflow::{RUNNING, Redrive, SUCCEEDED};
use crate::store::{StoreError, now_ms};

use super::cursor::{Cursor, Phase};
use super::{Executor, event, iso, json_text};

/// How long after its end an execution may be redriven, and how long after its start
/// (Step Functions' 14 days and one year).
const REDRIVABLE_MS: i64 = 14 * 24 * 3600 * 1000;
const MAX_EXECUTION_MS: i64 = 365 * 24 * 3600 * 1000;

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

impl Executor {
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
}

/// Whether an execution may be redriven, by the cloud's rules (and its reasons, word
/// for word, from `DescribeExecution`'s `redriveStatusReason`).
pub(in crate::workflow) fn redrivable(
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
