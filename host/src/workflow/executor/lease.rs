//! The lease loop: claiming due executions and driving each through its transitions.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};

use crate::store::workflow::{Commit, ExecutionRow, RUNNING};
use crate::store::{StoreError, now_ms};

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
        commit: Commit,
    ) -> Result<bool, StoreError> {
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
