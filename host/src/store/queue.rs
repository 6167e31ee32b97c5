//! Durable queues in the store (at-least-once). Claiming a batch is one UPDATE over the
//! oldest visible messages, with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so hosts sharing
//! a database never hand one message to two consumers at once. A FIFO group yields only
//! its oldest message, and only while no earlier message of the group remains.

use serde::Serialize;
use serde_json::{Value, json};
use sqlx::Connection as _;

use super::{Backend, Placeholders, Store, StoreError, now_ms};

/// A message to enqueue.
#[derive(Debug, Clone, Default)]
pub struct NewMessage {
    pub body: String,
    pub attributes: Vec<(String, String)>,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
    pub delay_ms: u64,
    /// Its place in a chain of invocations (see `MAX_CHAIN_DEPTH`): 0 when no plugin
    /// sent it.
    pub depth: u32,
}

/// A message handed to a consumer, with the receipt that acknowledges it.
#[derive(Debug, Clone, Serialize)]
pub struct Delivered {
    pub id: String,
    pub body: String,
    pub attributes: Vec<(String, String)>,
    pub group_id: Option<String>,
    pub sent_at: u64,
    pub receive_count: u32,
    #[serde(skip)]
    pub receipt: String,
    pub history: Vec<Value>,
    /// The invocation it reaches runs this many invocations into its chain.
    pub depth: u32,
}

/// A message as the admin API lists it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Listed {
    #[schema(example = "0193a6f2-4b8e-7c1d-9f00-2a4d5e6f7a8b")]
    pub id: String,
    #[schema(example = "{\"order\":42}")]
    pub body: String,
    /// Its attributes, name to value.
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub attributes: Value,
    pub group_id: Option<String>,
    /// Milliseconds since the Unix epoch.
    #[schema(example = 1_795_305_600_000_u64)]
    pub sent_at: u64,
    pub receive_count: u32,
    /// For a dead letter: the queue it came from.
    #[schema(example = "orders")]
    pub source_queue: Option<String>,
    /// Failed deliveries (with the error) and dead-lettering, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub history: Value,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct QueueStats {
    /// Visible now.
    pub visible: u64,
    /// Delivered and not yet acknowledged or back.
    pub in_flight: u64,
    /// Sent with a delay that has not passed.
    pub delayed: u64,
    /// Age of the oldest message, in milliseconds.
    pub oldest_age_ms: u64,
}

type ClaimedRow = (
    i64,
    String,
    String,
    String,
    Option<String>,
    i64,
    i64,
    String,
    i64,
);

/// A FIFO deduplication id is remembered this long, as SQS does.
const DEDUP_WINDOW_MS: i64 = 5 * 60 * 1000;
/// Rows one sweep statement deletes.
const SWEEP_BATCH: i64 = 1000;
/// Messages written by one INSERT: 11 bound parameters each, well below both
/// databases' limits (32,766 for SQLite, 65,535 for PostgreSQL).
const MESSAGES_PER_INSERT: usize = 200;

impl Store {
    /// Enqueues `message`; returns its id (for a repeated FIFO deduplication id within
    /// five minutes, the first message's id, and nothing is added).
    pub async fn queue_send(
        &self,
        tenant: &str,
        queue: &str,
        message: NewMessage,
        retention_ms: u64,
    ) -> Result<String, StoreError> {
        let mut ids = self
            .queue_send_many(tenant, queue, vec![message], retention_ms, None)
            .await?;
        Ok(ids.pop().unwrap_or_default())
    }

    /// Enqueues `messages` in one transaction: all or none. Returns their ids in order.
    /// Messages are written many to a statement (a round trip to the database each
    /// saved); one with a deduplication id first claims it for the window in
    /// `queue_dedup`, and a repeat within the window answers the first message's id and
    /// adds nothing, even once that message was consumed.
    /// With `max_depth`, refused (`QueueFull`) if the queue would then hold more.
    pub async fn queue_send_many(
        &self,
        tenant: &str,
        queue: &str,
        messages: Vec<NewMessage>,
        retention_ms: u64,
        max_depth: Option<u64>,
    ) -> Result<Vec<String>, StoreError> {
        let now = now_ms();
        let rows: Vec<Row> = messages
            .into_iter()
            .map(|m| Row::new(tenant, queue, m, now, retention_ms))
            .collect();
        let mut conn = self.writer().await?;
        // Most sends, on SQLite: one statement that checks the depth counter and writes,
        // where a transaction took four round trips to the single writer (BEGIN, the
        // count, the insert, COMMIT). A send the counter would refuse, or one that must
        // claim deduplication ids or take several statements, takes the transaction.
        if self.backend == Backend::Sqlite
            && !rows.is_empty()
            && rows.len() <= MESSAGES_PER_INSERT
            && rows.iter().all(|r| r.dedup_id.is_none())
            && insert_admitted(&mut conn, &rows, max_depth).await?
        {
            return Ok(rows.into_iter().map(|r| r.id).collect());
        }
        let mut tx = conn.begin().await?;
        if let Some(max) = max_depth {
            check_depth(&mut tx, self.backend, (tenant, queue), rows.len(), max).await?;
        }
        let mut ids = Vec::with_capacity(rows.len());
        let mut pending: Vec<Row> = Vec::new();
        for row in rows {
            if let Some(dedup) = &row.dedup_id {
                let first = claim_dedup_id(&mut tx, (tenant, queue, dedup), &row.id, now).await?;
                if first != row.id {
                    ids.push(first);
                    continue;
                }
            }
            ids.push(row.id.clone());
            pending.push(row);
            if pending.len() == MESSAGES_PER_INSERT {
                insert_rows(&mut tx, self.backend, std::mem::take(&mut pending)).await?;
            }
        }
        insert_rows(&mut tx, self.backend, pending).await?;
        tx.commit().await?;
        Ok(ids)
    }

    /// Claims up to `limit` visible messages for `visibility_ms`, in the order they became
    /// visible (so the index answers the claim without sorting the queue).
    pub async fn queue_claim(
        &self,
        tenant: &str,
        queue: &str,
        limit: u32,
        visibility_ms: u64,
    ) -> Result<Vec<Delivered>, StoreError> {
        self.queue_settle_and_claim(None, tenant, queue, limit, visibility_ms)
            .await
    }

    /// Acknowledges a finished claim (as `queue_delete_claim`) and claims the next batch
    /// (as `queue_claim`) in one step: one round trip to SQLite's thread, one transaction
    /// (one commit) on PostgreSQL, where there were two of each. If the claim fails, the
    /// call can simply be repeated: a delete by receipt is idempotent.
    pub async fn queue_settle_and_claim(
        &self,
        settle: Option<(&str, &[&str])>,
        tenant: &str,
        queue: &str,
        limit: u32,
        visibility_ms: u64,
    ) -> Result<Vec<Delivered>, StoreError> {
        let settle = settle.filter(|(_, ids)| !ids.is_empty());
        let mut conn = self.writer().await?;
        let (backend, claim_args) = (self.backend, (tenant, queue, limit, visibility_ms));
        match (backend, settle) {
            // PostgreSQL: one transaction, so one commit (a flush of its log) for both.
            (Backend::Postgres, Some((receipt, ids))) => {
                let mut tx = conn.begin().await?;
                delete_claim(&mut tx, receipt, ids).await?;
                let batch = claim(&mut tx, backend, None, claim_args).await?;
                tx.commit().await?;
                Ok(batch)
            }
            // SQLite runs the delete, if any, in the claim's own query.
            _ => claim(&mut conn, backend, settle, claim_args).await,
        }
    }

    /// Acknowledges a delivered message: it is done. False when the receipt is stale
    /// (the message came back and was delivered again).
    pub async fn queue_delete(&self, message: &Delivered) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM queue_messages WHERE id = $1 AND receipt = $2")
            .bind(&message.id)
            .bind(&message.receipt)
            .execute(&mut *self.writer().await?)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Acknowledges the messages of one claim (all delivered with `receipt`) in one
    /// statement: a batch the consumer completed. Messages that came back and were
    /// delivered again carry another receipt and stay. Returns how many were deleted.
    pub async fn queue_delete_claim(&self, receipt: &str, ids: &[&str]) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut conn = self.writer().await?;
        delete_claim(&mut conn, receipt, ids).await
    }

    /// Records a failed delivery; the message comes back when its visibility ends.
    pub async fn queue_failed(&self, message: &Delivered, error: &str) -> Result<(), StoreError> {
        let history = with_entry(
            &message.history,
            json!({ "at": now_ms(), "event": "failed", "receive_count": message.receive_count,
                    "error": error }),
        );
        sqlx::query("UPDATE queue_messages SET history = $3 WHERE id = $1 AND receipt = $2")
            .bind(&message.id)
            .bind(&message.receipt)
            .bind(history)
            .execute(&mut *self.writer().await?)
            .await?;
        Ok(())
    }

    /// Moves a delivered message to `dlq`, visible at once, keeping its history. It then
    /// expires `retention_ms` (the dead-letter queue's) after it was first sent, as SQS
    /// counts a dead-lettered message's retention from its original enqueue time.
    pub async fn queue_dead_letter(
        &self,
        message: &Delivered,
        queue: &str,
        (dlq, retention_ms): (&str, u64),
    ) -> Result<(), StoreError> {
        let history = with_entry(
            &message.history,
            json!({ "at": now_ms(), "event": "dead-lettered", "from": queue,
                    "receive_count": message.receive_count - 1 }),
        );
        sqlx::query(
            "UPDATE queue_messages
             SET queue = $3, source_queue = $4, receive_count = 0, receipt = NULL,
                 visible_at = $5, history = $6, expires_at = sent_at + $7
             WHERE id = $1 AND receipt = $2",
        )
        .bind(&message.id)
        .bind(&message.receipt)
        .bind(dlq)
        .bind(queue)
        .bind(now_ms())
        .bind(history)
        .bind(i64::try_from(retention_ms).unwrap_or(i64::MAX))
        .execute(&mut *self.writer().await?)
        .await?;
        Ok(())
    }

    /// Moves a dead-letter queue's messages back to the queues they came from; messages
    /// sent to it directly (a flow parking a request it could not complete) go to
    /// `fallback`, the queue whose dead-letter queue it is, when there is one. Messages
    /// past their retention stay, for the sweeper.
    pub async fn queue_redrive(
        &self,
        tenant: &str,
        dlq: &str,
        fallback: Option<&str>,
    ) -> Result<u64, StoreError> {
        let moved = sqlx::query(
            "UPDATE queue_messages
             SET queue = COALESCE(source_queue, $4), source_queue = NULL, receive_count = 0,
                 receipt = NULL, visible_at = $3
             WHERE tenant = $1 AND queue = $2 AND COALESCE(source_queue, $4) IS NOT NULL
               AND expires_at > $3",
        )
        .bind(tenant)
        .bind(dlq)
        .bind(now_ms())
        .bind(fallback)
        .execute(&mut *self.writer().await?)
        .await?;
        Ok(moved.rows_affected())
    }

    /// A queue's counts, messages past their retention left out (they wait for the
    /// sweeper, and no claim takes them).
    pub async fn queue_stats(&self, tenant: &str, queue: &str) -> Result<QueueStats, StoreError> {
        let now = now_ms();
        let (visible, in_flight, delayed, oldest): (i64, i64, i64, Option<i64>) =
            sqlx::query_as(
                "SELECT
                   CAST(COALESCE(SUM(CASE WHEN visible_at <= $3 THEN 1 ELSE 0 END), 0) AS BIGINT),
                   CAST(COALESCE(SUM(CASE WHEN visible_at > $3 AND receive_count > 0 THEN 1 ELSE 0 END), 0) AS BIGINT),
                   CAST(COALESCE(SUM(CASE WHEN visible_at > $3 AND receive_count = 0 THEN 1 ELSE 0 END), 0) AS BIGINT),
                   MIN(sent_at)
                 FROM queue_messages WHERE tenant = $1 AND queue = $2 AND expires_at > $3",
            )
            .bind(tenant)
            .bind(queue)
            .bind(now)
            .fetch_one(&mut *self.reader().await?)
            .await?;
        Ok(QueueStats {
            visible: visible as u64,
            in_flight: in_flight as u64,
            delayed: delayed as u64,
            oldest_age_ms: oldest.map_or(0, |t| now.saturating_sub(t) as u64),
        })
    }

    /// The oldest `limit` messages of a queue (within their retention), without
    /// delivering them.
    pub async fn queue_peek(
        &self,
        tenant: &str,
        queue: &str,
        limit: u32,
    ) -> Result<Vec<Listed>, StoreError> {
        type Row = (
            String,
            String,
            String,
            Option<String>,
            i64,
            i64,
            Option<String>,
            String,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, body, attributes, group_id, sent_at, receive_count, source_queue, history
             FROM queue_messages WHERE tenant = $1 AND queue = $2 AND expires_at > $4
             ORDER BY seq LIMIT $3",
        )
        .bind(tenant)
        .bind(queue)
        .bind(i64::from(limit))
        .bind(now_ms())
        .fetch_all(&mut *self.reader().await?)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(
                    id,
                    body,
                    attributes,
                    group_id,
                    sent_at,
                    receive_count,
                    source_queue,
                    history,
                )| {
                    Listed {
                        id,
                        body,
                        attributes: serde_json::from_str(&attributes).unwrap_or_default(),
                        group_id,
                        sent_at: sent_at as u64,
                        receive_count: receive_count as u32,
                        source_queue,
                        history: serde_json::from_str(&history).unwrap_or_default(),
                    }
                },
            )
            .collect())
    }

    /// Deletes the messages past their retention and the deduplication ids past their
    /// window, of every tenant and queue, `SWEEP_BATCH` rows to a statement so the
    /// writer is never held long. Returns how many messages. Hosts sharing PostgreSQL may
    /// sweep at once: each skips the rows another has locked.
    pub async fn queue_sweep(&self) -> Result<u64, StoreError> {
        let lock = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        // Without an index on `expires_at` (one more to update on every send and
        // delete), finding expired messages scans the table: once a sweep, not per queue.
        let messages = format!(
            "DELETE FROM queue_messages WHERE seq IN (
               SELECT seq FROM queue_messages WHERE expires_at <= $1 LIMIT $2 {lock})"
        );
        let ids = format!(
            "DELETE FROM queue_dedup WHERE (tenant, queue, dedup_id) IN (
               SELECT tenant, queue, dedup_id FROM queue_dedup WHERE expires_at <= $1
               LIMIT $2 {lock})"
        );
        let now = now_ms();
        let mut swept = 0;
        for (statement, counted) in [(messages, true), (ids, false)] {
            loop {
                let gone = sqlx::query(sqlx::AssertSqlSafe(statement.as_str()))
                    .bind(now)
                    .bind(SWEEP_BATCH)
                    .execute(&mut *self.writer().await?)
                    .await?
                    .rows_affected();
                if counted {
                    swept += gone;
                }
                if gone < SWEEP_BATCH as u64 {
                    break;
                }
            }
        }
        Ok(swept)
    }
}

/// Refuses a send of `adding` messages that would leave more than `max` in the queue.
/// On SQLite, the queue's counter (`queue_depths`, kept by triggers) answers first: it
/// also counts expired messages not yet swept, so it is never below the live count, and
/// a send it admits is admitted. Otherwise the count reads the queue's index and stops
/// at `max`. On PostgreSQL, sends to one queue take turns on an advisory lock held to
/// the end of the transaction, so hosts sharing the database count one after another;
/// consumers, which only delete, never wait for it.
async fn check_depth(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    (tenant, queue): (&str, &str),
    adding: usize,
    max: u64,
) -> Result<(), StoreError> {
    match backend {
        Backend::Postgres => {
            sqlx::query_scalar::<_, i64>(
                "SELECT CAST(1 AS BIGINT) FROM pg_advisory_xact_lock(hashtextextended($1, 0))",
            )
            .bind(format!("queue-depth/{tenant}/{queue}"))
            .fetch_one(&mut **tx)
            .await?;
        }
        Backend::Sqlite => {
            let held: Option<i64> = sqlx::query_scalar(
                "SELECT messages FROM queue_depths WHERE tenant = $1 AND queue = $2",
            )
            .bind(tenant)
            .bind(queue)
            .fetch_optional(&mut **tx)
            .await?;
            if (held.unwrap_or(0).max(0) as u64).saturating_add(adding as u64) <= max {
                return Ok(());
            }
        }
    }
    // Expired messages are neither delivered nor counted anywhere, only not yet swept.
    let waiting: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (
           SELECT 1 FROM queue_messages
           WHERE tenant = $1 AND queue = $2 AND expires_at > $3 LIMIT $4) AS waiting",
    )
    .bind(tenant)
    .bind(queue)
    .bind(now_ms())
    .bind(i64::try_from(max).unwrap_or(i64::MAX))
    .fetch_one(&mut **tx)
    .await?;
    if waiting as u64 + adding as u64 > max {
        return Err(StoreError::QueueFull(format!(
            "queue depth quota: `{queue}` holds {waiting} messages; {adding} more would pass \
             limits.queue_depth = {max}; consume some to free room"
        )));
    }
    Ok(())
}

/// The claim of `queue_claim`, on a connection or inside a transaction. With `settle`
/// (SQLite only), a finished batch's delete runs first in the same query: two statements
/// in one round trip to the thread sqlx runs SQLite on. Each commits on its own, which is
/// safe: a delete by receipt can be repeated, and it is, if the claim then fails.
async fn claim(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    settle: Option<(&str, &[&str])>,
    (tenant, queue, limit, visibility_ms): (&str, &str, u32, u64),
) -> Result<Vec<Delivered>, StoreError> {
    let now = now_ms();
    let receipt = uuid::Uuid::new_v4().to_string();
    let lock = match backend {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        // SQLite runs one writer at a time: the UPDATE is already exclusive.
        Backend::Sqlite => "",
    };
    let settle = settle.filter(|(_, ids)| !ids.is_empty());
    let (delete, skip) = match settle {
        Some((_, ids)) => (
            format!("{}; ", delete_claim_statement(ids.len())),
            ids.len() + 1,
        ),
        None => (String::new(), 0),
    };
    let p = |n: usize| format!("${}", skip + n);
    let statement = format!(
        "{delete}UPDATE queue_messages
         SET visible_at = {}, receive_count = receive_count + 1, receipt = {}
         WHERE seq IN (
           SELECT m.seq FROM queue_messages m
           WHERE m.tenant = {} AND m.queue = {} AND m.visible_at <= {now}
             AND m.expires_at > {now}
             AND (m.group_id IS NULL OR NOT EXISTS (
               SELECT 1 FROM queue_messages e
               WHERE e.tenant = m.tenant AND e.queue = m.queue
                 AND e.group_id = m.group_id AND e.seq < m.seq AND e.expires_at > {now}))
           ORDER BY m.visible_at, m.seq LIMIT {} {lock})
         RETURNING seq, id, body, attributes, group_id, sent_at, receive_count, history, depth",
        p(4),
        p(5),
        p(1),
        p(2),
        p(6),
        now = p(3),
    );
    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(statement));
    if let Some((done, ids)) = settle {
        query = query.bind(done);
        for id in ids {
            query = query.bind(*id);
        }
    }
    let mut rows: Vec<ClaimedRow> = query
        .bind(tenant)
        .bind(queue)
        .bind(now)
        .bind(now.saturating_add(visibility_ms as i64))
        .bind(&receipt)
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await?;
    rows.sort_by_key(|r| r.0);
    Ok(rows
        .into_iter()
        .map(
            |(_, id, body, attributes, group_id, sent_at, receive_count, history, depth)| {
                Delivered {
                    id,
                    body,
                    attributes: parse_attributes(&attributes),
                    group_id,
                    sent_at: sent_at as u64,
                    receive_count: receive_count as u32,
                    receipt: receipt.clone(),
                    history: serde_json::from_str(&history).unwrap_or_default(),
                    depth: u32::try_from(depth).unwrap_or(u32::MAX),
                }
            },
        )
        .collect())
}

/// The delete of `queue_delete_claim` (`ids` not empty), on a connection or in a transaction.
async fn delete_claim(
    conn: &mut sqlx::AnyConnection,
    receipt: &str,
    ids: &[&str],
) -> Result<u64, StoreError> {
    let statement = delete_claim_statement(ids.len());
    let mut query = sqlx::query(sqlx::AssertSqlSafe(statement)).bind(receipt);
    for id in ids {
        query = query.bind(*id);
    }
    Ok(query.execute(&mut *conn).await?.rows_affected())
}

/// The DELETE of a claim's `ids` messages: `$1` the receipt, `$2`... the ids. At most
/// `QUEUE_MAX_BATCH` + 1 parameters, so numbered ones cost SQLite little to look up.
fn delete_claim_statement(ids: usize) -> String {
    let list: Vec<String> = (2..ids + 2).map(|i| format!("${i}")).collect();
    format!(
        "DELETE FROM queue_messages WHERE receipt = $1 AND id IN ({})",
        list.join(", ")
    )
}

/// Records `dedup` (tenant, queue, id) for the window as `message_id`'s, unless a
/// message sent within the window already has it: returns the id that holds it (then
/// that earlier message's). One statement: on PostgreSQL a concurrent send of the same
/// id on another host waits for this transaction and then sees its row, so each id is
/// taken once across hosts.
async fn claim_dedup_id(
    tx: &mut sqlx::AnyConnection,
    (tenant, queue, dedup): (&str, &str, &str),
    message_id: &str,
    now: i64,
) -> Result<String, StoreError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO queue_dedup (tenant, queue, dedup_id, message_id, expires_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tenant, queue, dedup_id) DO UPDATE SET
           message_id = CASE WHEN queue_dedup.expires_at <= $6
                             THEN excluded.message_id ELSE queue_dedup.message_id END,
           expires_at = CASE WHEN queue_dedup.expires_at <= $6
                             THEN excluded.expires_at ELSE queue_dedup.expires_at END
         RETURNING message_id",
    )
    .bind(tenant)
    .bind(queue)
    .bind(dedup)
    .bind(message_id)
    .bind(now.saturating_add(DEDUP_WINDOW_MS))
    .bind(now)
    .fetch_one(&mut *tx)
    .await?)
}

/// A message row as `queue_send_many` writes it.
struct Row {
    id: String,
    tenant: String,
    queue: String,
    body: String,
    attributes: String,
    group_id: Option<String>,
    dedup_id: Option<String>,
    sent_at: i64,
    visible_at: i64,
    expires_at: i64,
    depth: u32,
}

impl Row {
    /// `message`, sent at `now`, with a new id.
    fn new(tenant: &str, queue: &str, message: NewMessage, now: i64, retention_ms: u64) -> Row {
        let attributes: serde_json::Map<String, Value> = message
            .attributes
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        Row {
            id: uuid::Uuid::new_v4().to_string(),
            tenant: tenant.to_string(),
            queue: queue.to_string(),
            body: message.body,
            attributes: Value::Object(attributes).to_string(),
            group_id: message.group_id,
            dedup_id: message.dedup_id,
            sent_at: now,
            visible_at: now.saturating_add(message.delay_ms as i64),
            expires_at: now.saturating_add(retention_ms as i64),
            depth: message.depth,
        }
    }
}

/// The statement inserting `rows`, each row's values from `values`: the VALUES rows, or
/// a SELECT over them.
fn insert_sql(
    rows: &[Row],
    params: &mut Placeholders,
    values: impl FnOnce(String) -> String,
) -> String {
    let tuples: Vec<String> = rows
        .iter()
        .map(|_| {
            let row: Vec<String> = (0..11).map(|_| params.next()).collect();
            format!("({})", row.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO queue_messages
           (id, tenant, queue, body, attributes, group_id, dedup_id, sent_at, visible_at,
            expires_at, depth)
         {}",
        values(format!("VALUES {}", tuples.join(", ")))
    )
}

type SendQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Binds `rows` in the order `insert_sql` lists their columns.
fn bind_rows<'q>(query: SendQuery<'q>, rows: &'q [Row]) -> SendQuery<'q> {
    rows.iter().fold(query, |query, row| {
        query
            .bind(&row.id)
            .bind(&row.tenant)
            .bind(&row.queue)
            .bind(&row.body)
            .bind(&row.attributes)
            .bind(row.group_id.as_deref())
            .bind(row.dedup_id.as_deref())
            .bind(row.sent_at)
            .bind(row.visible_at)
            .bind(row.expires_at)
            .bind(i64::from(row.depth))
    })
}

/// Writes `rows` in one INSERT (nothing for none).
async fn insert_rows(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    rows: Vec<Row>,
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let sql = insert_sql(&rows, &mut Placeholders::new(backend), |values| values);
    bind_rows(sqlx::query(sqlx::AssertSqlSafe(sql)), &rows)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// SQLite only: writes `rows` (of one queue, at least one) in one statement if the
/// queue's depth counter leaves room for them under `max_depth`; whether it did. The
/// statement runs alone on the single writer, so the counter it reads cannot move
/// before it writes. The counter also counts expired messages not yet swept: a refusal
/// here is checked again by the exact count.
async fn insert_admitted(
    conn: &mut sqlx::AnyConnection,
    rows: &[Row],
    max_depth: Option<u64>,
) -> Result<bool, StoreError> {
    let Some(first) = rows.first() else {
        return Ok(true);
    };
    let admit = max_depth.is_some();
    let sql = insert_sql(rows, &mut Placeholders::new(Backend::Sqlite), |values| {
        if admit {
            format!(
                "SELECT * FROM ({values})
                 WHERE COALESCE((SELECT MAX(messages, 0) FROM queue_depths
                                 WHERE tenant = ? AND queue = ?), 0) + ? <= ?"
            )
        } else {
            values
        }
    });
    let mut query = bind_rows(sqlx::query(sqlx::AssertSqlSafe(sql)), rows);
    if let Some(max) = max_depth {
        query = query
            .bind(&first.tenant)
            .bind(&first.queue)
            .bind(rows.len() as i64)
            .bind(i64::try_from(max).unwrap_or(i64::MAX));
    }
    let written = query.execute(&mut *conn).await?.rows_affected();
    Ok(written == rows.len() as u64)
}

fn parse_attributes(text: &str) -> Vec<(String, String)> {
    match serde_json::from_str::<serde_json::Map<String, Value>>(text) {
        Ok(map) => map
            .into_iter()
            .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string()))
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn with_entry(history: &[Value], entry: Value) -> String {
    let mut all = history.to_vec();
    all.push(entry);
    Value::Array(all).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{Stores, each_store, store_test, sweeping, tenant};

    fn msg(body: &str, group: Option<&str>) -> NewMessage {
        NewMessage {
            body: body.into(),
            group_id: group.map(String::from),
            ..NewMessage::default()
        }
    }

    store_test!(claim_ack_fail_and_come_back);
    async fn claim_ack_fail_and_come_back(stores: Stores) {
        each_store(stores, |s| async move {
            let t = tenant("q");
            for body in ["a", "b", "c"] {
                s.queue_send(&t, "jobs", msg(body, None), 60_000)
                    .await
                    .unwrap();
            }
            let first = s.queue_claim(&t, "jobs", 2, 200).await.unwrap();
            assert_eq!(
                first.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
                ["a", "b"]
            );
            assert_eq!(first[0].receive_count, 1);
            let stats = s.queue_stats(&t, "jobs").await.unwrap();
            assert_eq!((stats.visible, stats.in_flight), (1, 2));
            assert!(s.queue_delete(&first[0]).await.unwrap());
            s.queue_failed(&first[1], "boom").await.unwrap();
            let next = s.queue_claim(&t, "jobs", 10, 200).await.unwrap();
            assert_eq!(next.len(), 1, "b is invisible until its timeout");
            assert_eq!(next[0].body, "c");
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            let again = s.queue_claim(&t, "jobs", 10, 200).await.unwrap();
            let b = again.iter().find(|m| m.body == "b").unwrap();
            assert_eq!(b.receive_count, 2);
            assert_eq!(b.history[0]["error"], "boom");
            assert!(
                !s.queue_delete(&first[1]).await.unwrap(),
                "a stale receipt acks nothing"
            );
        })
        .await;
    }

    store_test!(fifo_groups_deliver_in_order_one_at_a_time);
    async fn fifo_groups_deliver_in_order_one_at_a_time(stores: Stores) {
        each_store(stores, |s| async move {
            let t = tenant("q");
            for (body, group) in [
                ("a1", "a"),
                ("b1", "b"),
                ("a2", "a"),
                ("b2", "b"),
                ("a3", "a"),
            ] {
                s.queue_send(&t, "f", msg(body, Some(group)), 60_000)
                    .await
                    .unwrap();
            }
            let batch = s.queue_claim(&t, "f", 10, 60_000).await.unwrap();
            let bodies: Vec<_> = batch.iter().map(|m| m.body.as_str()).collect();
            assert_eq!(bodies, ["a1", "b1"], "one head per group");
            assert!(s.queue_claim(&t, "f", 10, 60_000).await.unwrap().is_empty());
            s.queue_delete(&batch[0]).await.unwrap();
            let next = s.queue_claim(&t, "f", 10, 60_000).await.unwrap();
            assert_eq!(next[0].body, "a2");
        })
        .await;
    }

    store_test!(a_claim_is_deleted_in_one_statement_but_not_a_later_delivery);
    async fn a_claim_is_deleted_in_one_statement_but_not_a_later_delivery(stores: Stores) {
        each_store(stores, |s| async move {
            let t = tenant("q");
            for body in ["a", "b", "c"] {
                s.queue_send(&t, "jobs", msg(body, None), 60_000)
                    .await
                    .unwrap();
            }
            let claim = s.queue_claim(&t, "jobs", 3, 0).await.unwrap();
            // With no visibility they all came back; `a` was delivered again, newly.
            let again = s.queue_claim(&t, "jobs", 1, 60_000).await.unwrap();
            assert_eq!(again[0].body, "a");
            let ids: Vec<&str> = claim.iter().map(|m| m.id.as_str()).collect();
            assert_eq!(
                s.queue_delete_claim(&claim[0].receipt, &ids).await.unwrap(),
                2
            );
            let left = s.queue_peek(&t, "jobs", 10).await.unwrap();
            assert_eq!(left.len(), 1);
            assert_eq!(left[0].body, "a");
            assert_eq!(s.queue_delete_claim("none", &[]).await.unwrap(), 0);
        })
        .await;
    }

    store_test!(a_send_over_several_inserts_keeps_order_and_dedups_between_them);
    async fn a_send_over_several_inserts_keeps_order_and_dedups_between_them(stores: Stores) {
        each_store(stores, |s| async move {
            let t = tenant("q");
            let n = 2 * MESSAGES_PER_INSERT + 50;
            // Index 210 repeats 199's deduplication id: 199 ends the first INSERT's rows,
            // so the check must see rows written by an earlier statement of this send.
            let messages: Vec<NewMessage> = (0..n)
                .map(|i| NewMessage {
                    dedup_id: matches!(i, 199 | 210).then(|| "same".to_string()),
                    ..msg(&format!("m{i}"), None)
                })
                .collect();
            let ids = s
                .queue_send_many(&t, "big", messages, 60_000, None)
                .await
                .unwrap();
            assert_eq!(ids.len(), n);
            assert_eq!(ids[199], ids[210], "the repeat answers the first id");
            let distinct: std::collections::HashSet<&String> = ids.iter().collect();
            assert_eq!(distinct.len(), n - 1);
            let claimed = s.queue_claim(&t, "big", n as u32, 60_000).await.unwrap();
            let bodies: Vec<String> = claimed.into_iter().map(|m| m.body).collect();
            let expected: Vec<String> = (0..n)
                .filter(|&i| i != 210)
                .map(|i| format!("m{i}"))
                .collect();
            assert_eq!(bodies, expected);
        })
        .await;
    }

    store_test!(settling_a_batch_and_claiming_the_next_is_one_step);
    async fn settling_a_batch_and_claiming_the_next_is_one_step(stores: Stores) {
        each_store(stores, |s| async move {
            let t = tenant("q");
            for (body, group) in [("a1", "a"), ("a2", "a"), ("b1", "b")] {
                s.queue_send(&t, "f", msg(body, Some(group)), 60_000)
                    .await
                    .unwrap();
            }
            let first = s
                .queue_settle_and_claim(None, &t, "f", 10, 60_000)
                .await
                .unwrap();
            let bodies: Vec<_> = first.iter().map(|m| m.body.as_str()).collect();
            assert_eq!(bodies, ["a1", "b1"]);
            // Settling a1 and b1 frees group a in the same step: a2 is claimed.
            let ids: Vec<&str> = first.iter().map(|m| m.id.as_str()).collect();
            let next = s
                .queue_settle_and_claim(Some((&first[0].receipt, &ids)), &t, "f", 10, 60_000)
                .await
                .unwrap();
            assert_eq!(next.len(), 1);
            assert_eq!(next[0].body, "a2");
            assert_eq!(s.queue_stats(&t, "f").await.unwrap().in_flight, 1);
            // A stale receipt deletes nothing, and the claim still happens.
            s.queue_send(&t, "f", msg("c1", Some("c")), 60_000)
                .await
                .unwrap();
            let stale = [next[0].id.as_str()];
            let last = s
                .queue_settle_and_claim(Some(("stale", &stale)), &t, "f", 10, 60_000)
                .await
                .unwrap();
            assert_eq!(last[0].body, "c1");
            assert_eq!(s.queue_peek(&t, "f", 10).await.unwrap().len(), 2);
        })
        .await;
    }

    store_test!(dead_letters_redrive_delay_dedup_and_retention);
    async fn dead_letters_redrive_delay_dedup_and_retention(stores: Stores) {
        let _sweeping = sweeping().await;
        each_store(stores, |s| async move {
            let t = tenant("q");
            s.queue_send(&t, "jobs", msg("x", None), 60_000)
                .await
                .unwrap();
            let m = s
                .queue_claim(&t, "jobs", 1, 60_000)
                .await
                .unwrap()
                .remove(0);
            s.queue_dead_letter(&m, "jobs", ("jobs-dlq", 60_000))
                .await
                .unwrap();
            let dead = s.queue_peek(&t, "jobs-dlq", 10).await.unwrap();
            assert_eq!(dead[0].source_queue.as_deref(), Some("jobs"));
            assert_eq!(dead[0].history[0]["event"], "dead-lettered");
            // A message sent straight to the dead-letter queue stays without a fallback.
            s.queue_send(&t, "jobs-dlq", msg("parked", None), 60_000)
                .await
                .unwrap();
            assert_eq!(s.queue_redrive(&t, "jobs-dlq", None).await.unwrap(), 1);
            assert_eq!(s.queue_peek(&t, "jobs-dlq", 10).await.unwrap().len(), 1);
            assert_eq!(
                s.queue_claim(&t, "jobs", 1, 60_000).await.unwrap()[0].body,
                "x"
            );
            // With one, it goes to the queue whose dead-letter queue this is.
            assert_eq!(
                s.queue_redrive(&t, "jobs-dlq", Some("jobs")).await.unwrap(),
                1
            );
            assert!(s.queue_peek(&t, "jobs-dlq", 10).await.unwrap().is_empty());
            assert_eq!(
                s.queue_claim(&t, "jobs", 1, 60_000).await.unwrap()[0].body,
                "parked"
            );

            let delayed = NewMessage {
                delay_ms: 60_000,
                ..msg("later", None)
            };
            s.queue_send(&t, "d", delayed, 60_000).await.unwrap();
            assert!(s.queue_claim(&t, "d", 1, 1000).await.unwrap().is_empty());
            assert_eq!(s.queue_stats(&t, "d").await.unwrap().delayed, 1);

            let dedup = || NewMessage {
                dedup_id: Some("k".into()),
                ..msg("once", None)
            };
            let a = s.queue_send(&t, "dd", dedup(), 60_000).await.unwrap();
            let b = s.queue_send(&t, "dd", dedup(), 60_000).await.unwrap();
            assert_eq!(a, b);
            assert_eq!(s.queue_peek(&t, "dd", 10).await.unwrap().len(), 1);

            let t = tenant("q");
            s.queue_send(&t, "r", msg("old", None), 1).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            // The sweep is host-wide: another test's may have taken it first.
            s.queue_sweep().await.unwrap();
            assert_eq!(rows(&s, "queue_messages", &t).await, 0);
        })
        .await;
    }

    /// Rows of `table` for `tenant`, expired or not.
    async fn rows(s: &Store, table: &str, tenant: &str) -> i64 {
        let statement = format!("SELECT COUNT(*) FROM {table} WHERE tenant = $1");
        sqlx::query_scalar(sqlx::AssertSqlSafe(statement))
            .bind(tenant)
            .fetch_one(&mut *s.writer().await.unwrap())
            .await
            .unwrap()
    }

    /// On SQLite, each queue's depth counter says what its rows are (PostgreSQL counts).
    async fn assert_depths_are_the_rows(s: &Store, tenant: &str) {
        if s.backend() != Backend::Sqlite {
            return;
        }
        let pairs: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT d.queue, d.messages,
                    (SELECT COUNT(*) FROM queue_messages m
                     WHERE m.tenant = d.tenant AND m.queue = d.queue)
             FROM queue_depths d WHERE d.tenant = $1",
        )
        .bind(tenant)
        .fetch_all(&mut *s.writer().await.unwrap())
        .await
        .unwrap();
        assert!(!pairs.is_empty(), "no counters for {tenant}");
        for (queue, counted, held) in pairs {
            assert_eq!(counted, held, "depth counter of `{queue}`");
        }
    }

    /// Moves `tenant`'s deduplication ids past their window, as if it had passed.
    async fn end_dedup_window(s: &Store, tenant: &str) {
        sqlx::query("UPDATE queue_dedup SET expires_at = $2 WHERE tenant = $1")
            .bind(tenant)
            .bind(now_ms() - 1)
            .execute(&mut *s.writer().await.unwrap())
            .await
            .unwrap();
    }

    store_test!(a_dedup_id_is_remembered_for_its_window_after_its_message_is_consumed);
    async fn a_dedup_id_is_remembered_for_its_window_after_its_message_is_consumed(stores: Stores) {
        let _sweeping = sweeping().await;
        each_store(stores, |s| async move {
            let t = tenant("q");
            let dedup = |body: &str| NewMessage {
                dedup_id: Some("order-1".into()),
                ..msg(body, Some("g"))
            };
            let first = s.queue_send(&t, "f", dedup("a"), 60_000).await.unwrap();
            let claimed = s.queue_claim(&t, "f", 10, 60_000).await.unwrap();
            assert!(s.queue_delete(&claimed[0]).await.unwrap());
            // Consumed and deleted: the id is still within its window.
            let again = s.queue_send(&t, "f", dedup("b"), 60_000).await.unwrap();
            assert_eq!(again, first, "a repeat answers the first message's id");
            assert!(s.queue_peek(&t, "f", 10).await.unwrap().is_empty());
            assert!(s.queue_claim(&t, "f", 10, 60_000).await.unwrap().is_empty());
            // Another queue has windows of its own.
            let other = s.queue_send(&t, "g", dedup("c"), 60_000).await.unwrap();
            assert_ne!(other, first);

            end_dedup_window(&s, &t).await;
            let later = s.queue_send(&t, "f", dedup("d"), 60_000).await.unwrap();
            assert_ne!(later, first, "past the window the id is new again");
            assert_eq!(s.queue_peek(&t, "f", 10).await.unwrap()[0].body, "d");
            // The window restarted at that send: a repeat is dropped again.
            let repeat = s.queue_send(&t, "f", dedup("e"), 60_000).await.unwrap();
            assert_eq!(repeat, later);

            end_dedup_window(&s, &t).await;
            assert_eq!(rows(&s, "queue_dedup", &t).await, 2);
            s.queue_sweep().await.unwrap();
            assert_eq!(rows(&s, "queue_dedup", &t).await, 0, "swept");
        })
        .await;
    }

    store_test!(concurrent_sends_of_one_dedup_id_queue_one_message);
    async fn concurrent_sends_of_one_dedup_id_queue_one_message(stores: Stores) {
        each_store(stores, |s| async move {
            let t = tenant("q");
            // On PostgreSQL each send runs on a connection of its own, as on separate hosts.
            let sends = (0..8).map(|i| {
                let (s, t) = (s.clone(), t.clone());
                tokio::spawn(async move {
                    let m = NewMessage {
                        dedup_id: Some("once".into()),
                        ..msg(&format!("m{i}"), None)
                    };
                    s.queue_send(&t, "jobs", m, 60_000).await.unwrap()
                })
            });
            let ids: std::collections::HashSet<String> = futures::future::join_all(sends)
                .await
                .into_iter()
                .map(Result::unwrap)
                .collect();
            assert_eq!(ids.len(), 1, "every send answers one id: {ids:?}");
            assert_eq!(s.queue_peek(&t, "jobs", 10).await.unwrap().len(), 1);
        })
        .await;
    }

    store_test!(expired_messages_are_not_claimed_listed_counted_or_redriven_and_are_swept);
    async fn expired_messages_are_not_claimed_listed_counted_or_redriven_and_are_swept(
        stores: Stores,
    ) {
        let _sweeping = sweeping().await;
        each_store(stores, |s| async move {
            let t = tenant("q");
            // A dead-letter queue without a consumer: one message parked past its
            // retention, one dead-lettered past the dead-letter queue's, one fresh.
            s.queue_send(&t, "dlq", msg("old", None), 1).await.unwrap();
            s.queue_send(&t, "jobs", msg("failed", None), 60_000)
                .await
                .unwrap();
            let m = s
                .queue_claim(&t, "jobs", 1, 60_000)
                .await
                .unwrap()
                .remove(0);
            s.queue_dead_letter(&m, "jobs", ("dlq", 1)).await.unwrap();
            s.queue_send(&t, "dlq", msg("fresh", None), 60_000)
                .await
                .unwrap();
            // A FIFO group whose head expired: the next message is not held behind it.
            s.queue_send(&t, "f", msg("head", Some("g")), 1)
                .await
                .unwrap();
            s.queue_send(&t, "f", msg("next", Some("g")), 60_000)
                .await
                .unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;

            let listed = s.queue_peek(&t, "dlq", 10).await.unwrap();
            let bodies: Vec<&str> = listed.iter().map(|m| m.body.as_str()).collect();
            assert_eq!(bodies, ["fresh"], "listed");
            let stats = s.queue_stats(&t, "dlq").await.unwrap();
            assert_eq!((stats.visible, stats.in_flight, stats.delayed), (1, 0, 0));
            let claimed = s.queue_claim(&t, "f", 10, 60_000).await.unwrap();
            let bodies: Vec<&str> = claimed.iter().map(|m| m.body.as_str()).collect();
            assert_eq!(bodies, ["next"], "claimed");
            assert_eq!(
                s.queue_redrive(&t, "dlq", Some("jobs")).await.unwrap(),
                1,
                "only the fresh message is redriven"
            );
            assert!(
                s.queue_claim(&t, "dlq", 10, 60_000)
                    .await
                    .unwrap()
                    .is_empty()
            );

            assert_eq!(rows(&s, "queue_messages", &t).await, 5);
            assert_depths_are_the_rows(&s, &t).await;
            // The depth quota counts only live messages: `dlq` holds one expired.
            s.queue_send_many(&t, "dlq", vec![msg("room", None)], 60_000, Some(1))
                .await
                .unwrap();
            s.queue_sweep().await.unwrap();
            // Left: `fresh`, redriven to jobs, `next`, in flight, and `room`.
            assert_eq!(rows(&s, "queue_messages", &t).await, 3, "swept");
            assert_depths_are_the_rows(&s, &t).await;
            assert_eq!(s.queue_peek(&t, "jobs", 10).await.unwrap()[0].body, "fresh");
        })
        .await;
    }

    store_test!(sends_past_the_depth_quota_are_refused_until_messages_are_deleted);
    async fn sends_past_the_depth_quota_are_refused_until_messages_are_deleted(stores: Stores) {
        each_store(stores, |s| async move {
            let t = tenant("acme");
            let send = |n: usize| {
                let (s, t) = (s.clone(), t.clone());
                async move {
                    let messages = (0..n).map(|i| msg(&format!("m{i}"), None)).collect();
                    s.queue_send_many(&t, "jobs", messages, 60_000, Some(3))
                        .await
                }
            };
            send(2).await.unwrap();
            let err = send(2).await.unwrap_err();
            assert!(matches!(err, StoreError::QueueFull(_)), "{err}");
            assert!(
                err.to_string().contains(
                    "quota: `jobs` holds 2 messages; 2 more would pass limits.queue_depth = 3"
                ),
                "{err}"
            );
            assert_eq!(
                s.queue_peek(&t, "jobs", 10).await.unwrap().len(),
                2,
                "all or none"
            );
            send(1).await.unwrap();
            // In flight still waits; deleted does not.
            let claimed = s.queue_claim(&t, "jobs", 2, 60_000).await.unwrap();
            assert!(send(1).await.is_err());
            for m in &claimed {
                assert!(s.queue_delete(m).await.unwrap());
            }
            send(2).await.unwrap();
            assert!(send(1).await.is_err());
            assert_depths_are_the_rows(&s, &t).await;
            // Other queues and tenants have their own room.
            let other = s
                .queue_send_many(&t, "other", vec![msg("x", None)], 60_000, Some(3))
                .await;
            assert!(other.is_ok());
        })
        .await;
    }
}
