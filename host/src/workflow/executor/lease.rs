//! The lease loop: claiming due executions and driving each through its transitions.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};

use serde_json::Value;

use crate::store::workflow::{Commit, ExecutionRow, RUNNING};
use crate::store::{StoreError, now_ms};
use crate::workflow::errors::ENTERED_MARK;

use super::{Executor, LEASE_MS};

/// How often idle workers look for due executions (they are also woken directly).
const POLL: Duration = Duration::from_millis(100);

impl Executor {
    /// Runs this host's workers until `stop` turns true.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        if self.store.backend() == crate::store::Backend::Sqlite {
            // The embedded store has one host: leases of a previous run have no owner.
            if let Err(e) = self.store.wf_release_leases().await {
                tracing::warn!(error = %e, "cannot release old workflow leases");
            }
        }
        let permits = Arc::new(Semaphore::new(self.options.concurrency));
        while !*stop.borrow() {
            let free = permits.available_permits() as u32;
            let claimed = if free == 0 {
                Vec::new()
            } else {
                match self
                    .store
                    .wf_claim(&self.owner, LEASE_MS, free, self.options.tenant.as_deref())
                    .await
                {
                    Ok(rows) => rows,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot claim workflow executions");
                        Vec::new()
                    }
                }
            };
            let idle = claimed.is_empty();
            for row in claimed {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                let me = self.clone();
                tokio::spawn(async move {
                    me.drive(row).await;
                    drop(permit);
                });
            }
            if idle {
                tokio::select! {
                    _ = tokio::time::sleep(POLL) => {}
                    _ = self.wake.notified() => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }

    /// Claims and drives every due execution once, in turn; the number driven.
    /// `orquesta test` runs workflows this way, with no background workers.
    pub async fn work_once(&self) -> Result<usize, StoreError> {
        let rows = self
            .store
            .wf_claim(&self.owner, LEASE_MS, 64, self.options.tenant.as_deref())
            .await?;
        let n = rows.len();
        for row in rows {
            self.drive(row).await;
        }
        Ok(n)
    }

    /// Works on due executions until `id` (a root of `tenant`) has ended, for at most
    /// `limit`. `orquesta test` and the engine's tests run executions this way.
    pub async fn run_to_end(
        &self,
        tenant: &str,
        id: &str,
        limit: Duration,
    ) -> Result<ExecutionRow, StoreError> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let row = self
                .store
                .wf_get(tenant, id)
                .await?
                .ok_or(StoreError::Query(sqlx::Error::RowNotFound))?;
            if row.status != RUNNING || tokio::time::Instant::now() >= deadline {
                return Ok(row);
            }
            if self.work_once().await? == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    /// Runs an execution from its committed cursor for as long as it has work now.
    async fn drive(&self, mut row: ExecutionRow) {
        loop {
            let commit = match self.step(&mut row).await {
                Ok(Some(commit)) => commit,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(execution = %row.id, error = %e, "workflow step failed; it will be retried");
                    return;
                }
            };
            let go_on =
                commit.status == RUNNING && commit.lease_ms > 0 && commit.wake_at <= now_ms();
            let spawned = !commit.spawn.is_empty();
            let finished = commit.status != RUNNING;
            match self.commit(&mut row, commit).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    tracing::warn!(execution = %row.id, error = %e, "cannot commit a transition; it will be retried");
                    return;
                }
            }
            if spawned || (finished && row.parent_id.is_some()) {
                // Children, or a parent, are due now: wake an idle worker.
                self.wake.notify_waiters();
                self.wake.notify_one();
            }
            if finished {
                self.record_end(&row);
            }
            if !go_on {
                return;
            }
        }
    }

    fn record_end(&self, row: &ExecutionRow) {
        if row.parent_id.is_none() {
            let labels = [
                ("tenant", row.tenant.clone()),
                ("workflow", row.workflow.clone()),
                ("status", row.status.clone()),
            ];
            metrics::counter!("orquesta_workflow_executions_total", &labels).increment(1);
        }
    }

    pub(super) async fn commit(
        &self,
        row: &mut ExecutionRow,
        mut commit: Commit,
    ) -> Result<bool, StoreError> {
        if names_entry(&commit) {
            let entered = self.store.wf_entered_event(&row.id).await?;
            number_entry(&mut commit, entered);
        }
        let status = commit.status;
        let cursor = commit.cursor.clone();
        let wake_at = commit.wake_at;
        let transitions = commit
            .history
            .iter()
            .filter(|e| e.kind == "StateEntered")
            .count() as u64;
        if !self.store.wf_commit(row, &self.owner, commit).await? {
            return Ok(false);
        }
        row.version += 1;
        row.cursor = cursor;
        row.status = status.to_string();
        row.wake_at = wake_at;
        let labels = [
            ("tenant", row.tenant.clone()),
            ("workflow", row.workflow.clone()),
        ];
        metrics::counter!("orquesta_workflow_transitions_total", &labels).increment(transitions);
        Ok(true)
    }
}

/// Whether a cause in `commit` waits for the number of the event its state was entered
/// at (`StateError::in_state`): only failures, so a plain transition reads nothing more.
fn names_entry(commit: &Commit) -> bool {
    let marked = |cause: Option<&str>| cause.is_some_and(|c| c.contains(ENTERED_MARK));
    marked(commit.cause.as_deref())
        || commit
            .history
            .iter()
            .any(|e| marked(e.detail.get("cause").and_then(Value::as_str)))
}

/// Puts `entered` wherever `commit` holds the mark: the causes, and the error output
/// a `Catch` placed in the state's output, variables or history, as text or as JSON
/// text (where the mark is escaped). Without a number (a store that lost the event)
/// the parenthesis is left out.
fn number_entry(commit: &mut Commit, entered: Option<i64>) {
    let (with, mark, json_mark) = match entered {
        Some(n) => (
            n.to_string(),
            ENTERED_MARK.to_string(),
            json_escaped(ENTERED_MARK),
        ),
        None => {
            let gap = format!(" (entered at the event id #{ENTERED_MARK})");
            (String::new(), gap.clone(), json_escaped(&gap))
        }
    };
    let fill = |text: &mut String| {
        if text.contains(&mark) {
            *text = text.replace(&mark, &with);
        }
    };
    let fill_json = |text: &mut String| {
        if text.contains(&json_mark) {
            *text = text.replace(&json_mark, &with);
        }
    };
    if let Some(cause) = &mut commit.cause {
        fill(cause);
    }
    fill_json(&mut commit.cursor);
    if let Some(output) = &mut commit.output {
        fill_json(output);
    }
    for event in &mut commit.history {
        each_string(&mut event.detail, &fill);
    }
}

/// `text` as it reads inside a JSON string.
fn json_escaped(text: &str) -> String {
    let quoted = Value::from(text).to_string();
    quoted[1..quoted.len() - 1].to_string()
}

fn each_string(value: &mut Value, f: &impl Fn(&mut String)) {
    match value {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter_mut().for_each(|v| each_string(v, f)),
        Value::Object(fields) => fields.values_mut().for_each(|v| each_string(v, f)),
        _ => {}
    }
}
