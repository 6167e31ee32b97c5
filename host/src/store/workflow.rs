//! Workflow executions and their history. Every transition is one transaction guarded by
//! the execution's `version` and the writer's lease: a host that lost its lease (it was
//! too slow, or the execution was stopped) cannot overwrite what another host did.

use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{Connection as _, FromRow, Row};

use super::task_tokens::{self, TokenWrite};
use super::{Backend, Store, StoreError, now_ms};

pub const RUNNING: &str = "RUNNING";
pub const SUCCEEDED: &str = "SUCCEEDED";
pub const FAILED: &str = "FAILED";
pub const TIMED_OUT: &str = "TIMED_OUT";
pub const ABORTED: &str = "ABORTED";

/// A new execution (root, or child of a Parallel / Map state).
#[derive(Debug, Clone)]
pub struct NewExecution {
    pub id: String,
    pub tenant: String,
    pub workflow: String,
    pub name: String,
    pub root_id: String,
    /// (parent id, generation, index) for children.
    pub parent: Option<(String, i64, i64)>,
    pub definition: String,
    pub context: String,
    pub input: String,
    pub cursor: String,
    pub deadline_at: Option<i64>,
    /// Its place in a chain of invocations (0 when no plugin started it); children
    /// inherit it.
    pub depth: u32,
}

#[derive(Debug, Clone)]
pub struct ExecutionRow {
    pub id: String,
    pub tenant: String,
    pub workflow: String,
    pub name: String,
    pub root_id: String,
    pub parent_id: Option<String>,
    pub parent_gen: Option<i64>,
    pub parent_index: Option<i64>,
    pub definition: String,
    pub context: String,
    pub input: String,
    pub status: String,
    pub output: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub cursor: String,
    pub version: i64,
    pub started_at: i64,
    pub stopped_at: Option<i64>,
    pub deadline_at: Option<i64>,
    pub wake_at: i64,
    pub depth: u32,
}

/// History rows written by one statement: a transition writes a few; a long one is cut
/// well below both databases' limits on bound parameters (3 per row).
const HISTORY_ROWS_PER_STATEMENT: usize = 100;

const COLUMNS: &str = "id, tenant, workflow, name, root_id, parent_id, parent_gen, parent_index, \
    definition, context, input, status, output, error, cause, cursor, version, started_at, \
    stopped_at, deadline_at, wake_at, depth";

impl FromRow<'_, AnyRow> for ExecutionRow {
    fn from_row(r: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(ExecutionRow {
            id: r.try_get("id")?,
            tenant: r.try_get("tenant")?,
            workflow: r.try_get("workflow")?,
            name: r.try_get("name")?,
            root_id: r.try_get("root_id")?,
            parent_id: r.try_get("parent_id")?,
            parent_gen: r.try_get("parent_gen")?,
            parent_index: r.try_get("parent_index")?,
            definition: r.try_get("definition")?,
            context: r.try_get("context")?,
            input: r.try_get("input")?,
            status: r.try_get("status")?,
            output: r.try_get("output")?,
            error: r.try_get("error")?,
            cause: r.try_get("cause")?,
            cursor: r.try_get("cursor")?,
            version: r.try_get("version")?,
            started_at: r.try_get("started_at")?,
            stopped_at: r.try_get("stopped_at")?,
            deadline_at: r.try_get("deadline_at")?,
            wake_at: r.try_get("wake_at")?,
            depth: u32::try_from(r.try_get::<i64, _>("depth")?).unwrap_or(u32::MAX),
        })
    }
}

/// One event of an execution's history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEvent {
    pub kind: String,
    pub state: Option<String>,
    pub detail: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    pub seq: i64,
    pub at: i64,
    pub event: HistoryEvent,
}

/// What one transition writes.
#[derive(Debug, Clone)]
pub struct Commit {
    pub status: &'static str,
    pub cursor: String,
    pub output: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub wake_at: i64,
    /// How long the writer keeps the lease after this commit (0 releases it).
    pub lease_ms: i64,
    pub history: Vec<HistoryEvent>,
    /// Child executions started by this transition.
    pub spawn: Vec<NewExecution>,
    /// A callback task's token opened or closed by this transition.
    pub token: TokenWrite,
}

/// One execution a redrive runs again (`Store::wf_redrive`).
#[derive(Debug, Clone)]
pub struct Redrive {
    pub id: String,
    /// The version it was read at.
    pub version: i64,
    pub cursor: String,
    pub context: String,
    pub deadline_at: Option<i64>,
    pub history: Vec<HistoryEvent>,
}

/// A child's outcome, as its parent collects it.
#[derive(Debug, Clone)]
pub struct ChildOutcome {
    pub index: i64,
    pub status: String,
    pub output: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

impl Store {
    /// Starts an execution. With a name already used for the tenant's workflow, nothing
    /// is written and the existing execution is returned (`false`).
    pub async fn wf_start(
        &self,
        new: &NewExecution,
        history: &[HistoryEvent],
    ) -> Result<(ExecutionRow, bool), StoreError> {
        let created = {
            // The writer is given back before the read below: the in-memory store's one
            // connection is also its reader.
            let mut conn = self.writer().await?;
            let mut tx = conn.begin().await?;
            let created = insert(&mut tx, new, now_ms()).await?;
            if created {
                append_history(&mut tx, &new.id, history).await?;
            }
            tx.commit().await?;
            created
        };
        let row = self
            .wf_by_name(&new.tenant, &new.workflow, &new.name)
            .await?
            .ok_or_else(|| StoreError::Query(sqlx::Error::RowNotFound))?;
        Ok((row, created))
    }

    async fn wf_by_name(
        &self,
        tenant: &str,
        workflow: &str,
        name: &str,
    ) -> Result<Option<ExecutionRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM wf_executions WHERE tenant = $1 AND workflow = $2 AND name = $3"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(tenant)
            .bind(workflow)
            .bind(name)
            .fetch_optional(&mut *self.reader().await?)
            .await?)
    }

    /// Takes the lease of up to `limit` due executions (of one tenant only, when given).
    pub async fn wf_claim(
        &self,
        owner: &str,
        lease_ms: i64,
        limit: u32,
        tenant: Option<&str>,
    ) -> Result<Vec<ExecutionRow>, StoreError> {
        let now = now_ms();
        let lock = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            // SQLite runs one writer at a time: the UPDATE is already exclusive.
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE wf_executions SET lease_owner = $1, lease_until = $2
             WHERE id IN (
               SELECT id FROM wf_executions
               WHERE status = 'RUNNING' AND wake_at <= $3 AND lease_until <= $3
                 AND (CAST($5 AS TEXT) IS NULL OR tenant = $5)
               ORDER BY wake_at LIMIT $4 {lock})
             RETURNING {COLUMNS}"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(owner)
            .bind(now + lease_ms)
            .bind(now)
            .bind(i64::from(limit))
            .bind(tenant)
            .fetch_all(&mut *self.writer().await?)
            .await?)
    }

    /// Writes a transition if `owner` still holds the lease at `version`; false when
    /// it does not (nothing is written). A finished child wakes its parent.
    pub async fn wf_commit(
        &self,
        row: &ExecutionRow,
        owner: &str,
        commit: Commit,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let finished = commit.status != RUNNING;
        let lease_until = if commit.lease_ms > 0 {
            now + commit.lease_ms
        } else {
            0
        };
        let update = |sql: String| {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(commit.status)
                .bind(&commit.cursor)
                .bind(commit.output.as_deref())
                .bind(commit.error.as_deref())
                .bind(commit.cause.as_deref())
                .bind(commit.wake_at)
                .bind(lease_until)
                .bind(finished.then_some(now))
                .bind(&row.id)
                .bind(row.version)
                .bind(owner)
        };
        let history = &commit.history[..];
        let mut conn = self.writer().await?;
        // The common transition (its history in one statement, no children, no parent to
        // wake) on the held SQLite writer: BEGIN, the UPDATE, the history and COMMIT in
        // one query, one round trip to SQLite's thread instead of three. The UPDATE
        // returns a row if it found the execution at the version and lease it was read
        // with; the history is written only then (`changes()` is the rows the statement
        // before changed), so a lost lease commits nothing.
        let parent_to_wake = finished && row.parent_id.is_some();
        let common = history.len() <= HISTORY_ROWS_PER_STATEMENT
            && commit.spawn.is_empty()
            && commit.token == TokenWrite::None
            && !parent_to_wake;
        if common && let Some(held) = conn.held() {
            let sql = if history.is_empty() {
                format!("{UPDATE_TRANSITION} RETURNING 1")
            } else {
                format!(
                    "BEGIN; {UPDATE_TRANSITION} RETURNING 1; {} WHERE changes() = 1; COMMIT",
                    history_statement(history.len(), 12)
                )
            };
            let updated = held
                .fetch_in_transaction(bind_history(update(sql), &row.id, history))
                .await?;
            return Ok(updated.len() == 1);
        }
        // The same transition on PostgreSQL: one statement, which is a transaction of its
        // own (one round trip instead of four: BEGIN, UPDATE, INSERT, COMMIT). The history
        // INSERT is a data-modifying WITH that writes only if the UPDATE returned its row.
        // Both read one snapshot; the history's numbering cannot race, since a second
        // writer of this execution would have had to move its version first.
        if common && self.backend == Backend::Postgres {
            let sql = if history.is_empty() {
                format!("{UPDATE_TRANSITION} RETURNING 1")
            } else {
                format!(
                    "WITH updated AS ({UPDATE_TRANSITION} RETURNING 1), \
                     history AS ({} WHERE EXISTS (SELECT 1 FROM updated)) \
                     SELECT 1 FROM updated",
                    history_statement(history.len(), 12)
                )
            };
            let updated = bind_history(update(sql), &row.id, history)
                .fetch_all(&mut *conn)
                .await?;
            return Ok(updated.len() == 1);
        }
        let mut chunks = history.chunks(HISTORY_ROWS_PER_STATEMENT);
        let mut tx = conn.begin().await?;
        // Otherwise, on SQLite, the first history rows go in the same round trip as the
        // UPDATE (two statements in one query). Their rows affected add up; anything but
        // the UPDATE's 1 plus the rows means the lease or version was lost, and dropping
        // the transaction undoes the rows.
        let first = match self.backend {
            Backend::Sqlite => chunks.next().unwrap_or_default(),
            Backend::Postgres => &[],
        };
        let sql = if first.is_empty() {
            UPDATE_TRANSITION.to_string()
        } else {
            format!(
                "{UPDATE_TRANSITION}; {}",
                history_statement(first.len(), 12)
            )
        };
        let done = bind_history(update(sql), &row.id, first)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 + first.len() as u64 {
            return Ok(false);
        }
        for chunk in chunks {
            let sql = history_statement(chunk.len(), 1);
            let query = sqlx::query(sqlx::AssertSqlSafe(sql));
            bind_history(query, &row.id, chunk)
                .execute(&mut *tx)
                .await?;
        }
        for child in &commit.spawn {
            insert(&mut tx, child, now).await?;
        }
        task_tokens::apply(&mut tx, &commit.token, now).await?;
        if parent_to_wake && let Some(parent) = &row.parent_id {
            wake(&mut tx, parent, now).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    pub async fn wf_get(&self, tenant: &str, id: &str) -> Result<Option<ExecutionRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM wf_executions WHERE tenant = $1 AND id = $2");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(tenant)
            .bind(id)
            .fetch_optional(&mut *self.reader().await?)
            .await?)
    }

    /// A tenant's root executions, newest first, optionally of one workflow and status.
    pub async fn wf_list(
        &self,
        tenant: &str,
        workflow: Option<&str>,
        status: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ExecutionRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM wf_executions
             WHERE tenant = $1 AND parent_id IS NULL
               AND (CAST($2 AS TEXT) IS NULL OR workflow = $2)
               AND (CAST($3 AS TEXT) IS NULL OR status = $3)
             ORDER BY started_at DESC, id LIMIT $4"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(tenant)
            .bind(workflow)
            .bind(status)
            .bind(i64::from(limit))
            .fetch_all(&mut *self.reader().await?)
            .await?)
    }

    pub async fn wf_history(&self, id: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        let rows: Vec<(i64, i64, String, Option<String>, String)> = sqlx::query_as(
            "SELECT seq, at, kind, state, detail FROM wf_history
             WHERE execution_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&mut *self.reader().await?)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(seq, at, kind, state, detail)| HistoryEntry {
                seq,
                at,
                event: HistoryEvent {
                    kind,
                    state,
                    detail: serde_json::from_str(&detail).unwrap_or(Value::Null),
                },
            })
            .collect())
    }

    /// The number of the last `StateEntered` event of an execution: where its current
    /// state was entered (a retry does not enter again). None before any.
    pub async fn wf_entered_event(&self, id: &str) -> Result<Option<i64>, StoreError> {
        let (seq,): (Option<i64>,) = sqlx::query_as(
            "SELECT MAX(seq) FROM wf_history WHERE execution_id = $1 AND kind = 'StateEntered'",
        )
        .bind(id)
        .fetch_one(&mut *self.reader().await?)
        .await?;
        Ok(seq)
    }

    /// The children of one generation of a Parallel or Map state, by index.
    pub async fn wf_children(
        &self,
        parent: &str,
        generation: i64,
    ) -> Result<Vec<ChildOutcome>, StoreError> {
        type Row = (i64, String, Option<String>, Option<String>, Option<String>);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT parent_index, status, output, error, cause FROM wf_executions
                 WHERE parent_id = $1 AND parent_gen = $2 ORDER BY parent_index",
        )
        .bind(parent)
        .bind(generation)
        .fetch_all(&mut *self.reader().await?)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(index, status, output, error, cause)| ChildOutcome {
                index,
                status,
                output,
                error,
                cause,
            })
            .collect())
    }

    /// The executions of one generation of a Parallel or Map state, whole.
    pub async fn wf_children_rows(
        &self,
        parent: &str,
        generation: i64,
    ) -> Result<Vec<ExecutionRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM wf_executions
             WHERE parent_id = $1 AND parent_gen = $2 ORDER BY parent_index"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(parent)
            .bind(generation)
            .fetch_all(&mut *self.reader().await?)
            .await?)
    }

    /// Redrives an ended execution: each row of `rows` (the root, then the Parallel
    /// branches and Map items to run again) goes back to RUNNING with its new cursor,
    /// context and deadline, if it is still at the version it was read at and not
    /// running; otherwise nothing is written (false). The task tokens of the execution's
    /// tasks still waiting are closed: their tasks run again with new ones.
    pub async fn wf_redrive(&self, root: &str, rows: &[Redrive]) -> Result<bool, StoreError> {
        let now = now_ms();
        let mut conn = self.writer().await?;
        let mut tx = conn.begin().await?;
        for r in rows {
            let done = sqlx::query(
                "UPDATE wf_executions
                 SET status = 'RUNNING', output = NULL, error = NULL, cause = NULL,
                     stopped_at = NULL, cursor = $1, context = $2, deadline_at = $3,
                     wake_at = $4, lease_owner = NULL, lease_until = 0, version = version + 1
                 WHERE id = $5 AND version = $6 AND status <> 'RUNNING' AND status <> 'SUCCEEDED'",
            )
            .bind(&r.cursor)
            .bind(&r.context)
            .bind(r.deadline_at)
            .bind(now)
            .bind(&r.id)
            .bind(r.version)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                return Ok(false);
            }
            append_history(&mut tx, &r.id, &r.history).await?;
        }
        task_tokens::close_all_of_root(&mut tx, root).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Stops the running children of one generation (their results are not needed).
    pub async fn wf_abort_children(
        &self,
        parent: &str,
        generation: i64,
    ) -> Result<u64, StoreError> {
        let mut conn = self.writer().await?;
        let mut tx = conn.begin().await?;
        let aborted = abort_descendants(&mut tx, parent, Some(generation), now_ms()).await?;
        tx.commit().await?;
        Ok(aborted)
    }

    /// Stops a running execution and everything under it; a stopped child wakes its
    /// parent, whose Parallel or Map state then fails with `States.BranchFailed`. False
    /// when it is not running.
    pub async fn wf_stop(
        &self,
        tenant: &str,
        id: &str,
        error: Option<&str>,
        cause: Option<&str>,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let mut conn = self.writer().await?;
        let mut tx = conn.begin().await?;
        let parent: Option<Option<String>> = sqlx::query_scalar(
            "UPDATE wf_executions
             SET status = 'ABORTED', error = $1, cause = $2, stopped_at = $3, version = version + 1
             WHERE tenant = $4 AND id = $5 AND status = 'RUNNING'
             RETURNING parent_id",
        )
        .bind(error)
        .bind(cause)
        .bind(now)
        .bind(tenant)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(parent) = parent else {
            return Ok(false);
        };
        abort_descendants(&mut tx, id, None, now).await?;
        if let Some(parent) = parent {
            wake(&mut tx, &parent, now).await?;
        }
        append_history(
            &mut tx,
            id,
            &[HistoryEvent {
                kind: "ExecutionAborted".into(),
                state: None,
                detail: serde_json::json!({ "error": error, "cause": cause }),
            }],
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Makes every sleeping execution of the tree rooted at `root` due now: fixtures,
    /// which take no time, skip to the next time limit this way (`orquesta test`).
    /// How many were woken.
    pub async fn wf_wake_sleeping(&self, root: &str) -> Result<u64, StoreError> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE wf_executions SET wake_at = $1, lease_until = 0, version = version + 1
             WHERE root_id = $2 AND status = 'RUNNING' AND wake_at > $1",
        )
        .bind(now)
        .bind(root)
        .execute(&mut *self.writer().await?)
        .await?;
        Ok(done.rows_affected())
    }

    /// Frees every lease: on the embedded store only this host works on executions, so
    /// after a restart none of the old leases has an owner.
    pub async fn wf_release_leases(&self) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE wf_executions SET lease_until = 0 WHERE status = 'RUNNING' AND lease_until > 0",
        )
        .execute(&mut *self.writer().await?)
        .await?;
        Ok(done.rows_affected())
    }
}

/// Makes a parent due now for a host to collect its children. The version moves too: a
/// host looking at the parent right now (it saw this child still running) then fails
/// to commit its "asleep until a child wakes me", instead of sleeping past the wake-up.
async fn wake(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    parent: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE wf_executions SET wake_at = $1, lease_until = 0, version = version + 1
         WHERE id = $2 AND status = 'RUNNING'",
    )
    .bind(now)
    .bind(parent)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Stops the running children of `parent` (of one generation, or all) and theirs, level
/// by level; how many.
async fn abort_descendants(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    parent: &str,
    generation: Option<i64>,
    now: i64,
) -> Result<u64, StoreError> {
    let mut aborted = 0;
    let mut parents = vec![(parent.to_string(), generation)];
    while let Some((id, generation)) = parents.pop() {
        let ids: Vec<String> = sqlx::query_scalar(
            "UPDATE wf_executions SET status = 'ABORTED', stopped_at = $1, version = version + 1
             WHERE parent_id = $2 AND (CAST($3 AS BIGINT) IS NULL OR parent_gen = $3) AND status = 'RUNNING'
             RETURNING id",
        )
        .bind(now)
        .bind(&id)
        .bind(generation)
        .fetch_all(&mut **tx)
        .await?;
        aborted += ids.len() as u64;
        parents.extend(ids.into_iter().map(|c| (c, None)));
    }
    Ok(aborted)
}

async fn insert(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    new: &NewExecution,
    now: i64,
) -> Result<bool, StoreError> {
    let (parent_id, parent_gen, parent_index) = match &new.parent {
        Some((id, generation, index)) => (Some(id.as_str()), Some(*generation), Some(*index)),
        None => (None, None, None),
    };
    let done = sqlx::query(
        "INSERT INTO wf_executions
           (id, tenant, workflow, name, root_id, parent_id, parent_gen, parent_index, definition,
            context, input, status, cursor, started_at, deadline_at, wake_at, depth)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'RUNNING', $12, $13, $14, $13, $15)
         ON CONFLICT DO NOTHING",
    )
    .bind(&new.id)
    .bind(&new.tenant)
    .bind(&new.workflow)
    .bind(&new.name)
    .bind(&new.root_id)
    .bind(parent_id)
    .bind(parent_gen)
    .bind(parent_index)
    .bind(&new.definition)
    .bind(&new.context)
    .bind(&new.input)
    .bind(&new.cursor)
    .bind(now)
    .bind(new.deadline_at)
    .bind(i64::from(new.depth))
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

async fn append_history(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
    events: &[HistoryEvent],
) -> Result<(), StoreError> {
    for chunk in events.chunks(HISTORY_ROWS_PER_STATEMENT) {
        let sql = history_statement(chunk.len(), 1);
        bind_history(sqlx::query(sqlx::AssertSqlSafe(sql)), id, chunk)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// A transition, written if its host still holds the lease at the version it read.
const UPDATE_TRANSITION: &str = "UPDATE wf_executions
     SET status = $1, cursor = $2, output = $3, error = $4, cause = $5, wake_at = $6,
         lease_until = $7, stopped_at = $8, version = version + 1
     WHERE id = $9 AND version = $10 AND lease_owner = $11 AND status = 'RUNNING'";

/// One INSERT of `rows` history rows (one round trip to the database for all), its
/// parameters numbered from `$first`: the execution id, the time, then three per row
/// (`bind_history` binds them). The rows are numbered on from the execution's last
/// entry, read in the same statement. A VALUES list names its columns column1,
/// column2... in both databases.
fn history_statement(rows: usize, first: usize) -> String {
    let (id, at) = (first, first + 1);
    let values: Vec<String> = (0..rows)
        .map(|i| {
            let p = first + 2 + 3 * i;
            format!("({}, ${p}, ${}, ${})", i + 1, p + 1, p + 2)
        })
        .collect();
    format!(
        "INSERT INTO wf_history (execution_id, seq, at, kind, state, detail)
         SELECT ${id}, b.last + v.column1, ${at}, v.column2, v.column3, v.column4
         FROM (SELECT COALESCE(MAX(seq), 0) AS last FROM wf_history WHERE execution_id = ${id}) b,
              (VALUES {}) AS v",
        values.join(", ")
    )
}

/// Binds the parameters of `history_statement` after those already bound to `query`.
fn bind_history<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    id: &'q str,
    events: &'q [HistoryEvent],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    if events.is_empty() {
        return query;
    }
    let mut query = query.bind(id).bind(now_ms());
    for e in events {
        query = query
            .bind(&e.kind)
            .bind(e.state.as_deref())
            .bind(e.detail.to_string());
    }
    query
}
