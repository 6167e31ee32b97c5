//! Durable queues in the store (at-least-once). Claiming a batch is one UPDATE over the
//! oldest visible messages, with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so hosts sharing
//! a database never hand one message to two consumers at once. A FIFO group yields only
//! its oldest message, and only while no earlier message of the group remains.

use serde::Serialize;
use serde_json::{Value, json};

use super::{Backend, Placeholders, Store, StoreError, now_ms};

/// A message to enqueue.
#[derive(Debug, Clone, Default)]
pub struct NewMessage {
    pub body: String,
    pub attributes: Vec<(String, String)>,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
    pub delay_ms: u64,
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
}

/// A message as the admin API lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    pub id: String,
    pub body: String,
    pub attributes: Value,
    pub group_id: Option<String>,
    pub sent_at: u64,
    pub receive_count: u32,
    pub source_queue: Option<String>,
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
);

/// A FIFO deduplication id is remembered this long, as SQS does.
const DEDUP_WINDOW_MS: i64 = 5 * 60 * 1000;
/// Messages written by one INSERT: 10 bound parameters each, well below both
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
            .queue_send_many(tenant, queue, vec![message], retention_ms)
            .await?;
        Ok(ids.pop().unwrap_or_default())
    }

    /// Enqueues `messages` in one transaction: all or none. Returns their ids in order.
    /// Messages without a deduplication id are written many to a statement (a round trip
    /// to the database each saved); one with an id is checked against the window first.
    pub async fn queue_send_many(
        &self,
        tenant: &str,
        queue: &str,
        messages: Vec<NewMessage>,
        retention_ms: u64,
    ) -> Result<Vec<String>, StoreError> {
        let now = now_ms();
        let mut tx = self.writer().begin().await?;
        let mut ids = Vec::with_capacity(messages.len());
        let mut pending: Vec<Row> = Vec::new();
        for message in messages {
            if let Some(dedup) = &message.dedup_id {
                // Earlier messages of this batch first: the check must see them.
                insert_rows(&mut tx, self.backend, std::mem::take(&mut pending)).await?;
                let seen: Option<String> = sqlx::query_scalar(
                    "SELECT id FROM queue_messages
                     WHERE tenant = $1 AND queue = $2 AND dedup_id = $3 AND sent_at > $4",
                )
                .bind(tenant)
                .bind(queue)
                .bind(dedup)
                .bind(now - DEDUP_WINDOW_MS)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(id) = seen {
                    ids.push(id);
                    continue;
                }
            }
            let id = uuid::Uuid::new_v4().to_string();
            let attributes: serde_json::Map<String, Value> = message
                .attributes
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            let dedup = message.dedup_id.is_some();
            pending.push(Row {
                id: id.clone(),
                tenant: tenant.to_string(),
                queue: queue.to_string(),
                body: message.body,
                attributes: Value::Object(attributes).to_string(),
                group_id: message.group_id,
                dedup_id: message.dedup_id,
                sent_at: now,
                visible_at: now.saturating_add(message.delay_ms as i64),
                expires_at: now.saturating_add(retention_ms as i64),
            });
            if dedup || pending.len() == MESSAGES_PER_INSERT {
                insert_rows(&mut tx, self.backend, std::mem::take(&mut pending)).await?;
            }
            ids.push(id);
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
        let now = now_ms();
        let receipt = uuid::Uuid::new_v4().to_string();
        let lock = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            // SQLite runs one writer at a time: the UPDATE is already exclusive.
            Backend::Sqlite => "",
        };
        let statement = format!(
            "UPDATE queue_messages
             SET visible_at = $4, receive_count = receive_count + 1, receipt = $5
             WHERE seq IN (
               SELECT m.seq FROM queue_messages m
               WHERE m.tenant = $1 AND m.queue = $2 AND m.visible_at <= $3
                 AND (m.group_id IS NULL OR NOT EXISTS (
                   SELECT 1 FROM queue_messages e
                   WHERE e.tenant = m.tenant AND e.queue = m.queue
                     AND e.group_id = m.group_id AND e.seq < m.seq))
               ORDER BY m.visible_at, m.seq LIMIT $6 {lock})
             RETURNING seq, id, body, attributes, group_id, sent_at, receive_count, history"
        );
        let mut rows: Vec<ClaimedRow> = sqlx::query_as(sqlx::AssertSqlSafe(statement))
            .bind(tenant)
            .bind(queue)
            .bind(now)
            .bind(now.saturating_add(visibility_ms as i64))
            .bind(&receipt)
            .bind(i64::from(limit))
            .fetch_all(self.writer())
            .await?;
        rows.sort_by_key(|r| r.0);
        Ok(rows
            .into_iter()
            .map(
                |(_, id, body, attributes, group_id, sent_at, receive_count, history)| Delivered {
                    id,
                    body,
                    attributes: parse_attributes(&attributes),
                    group_id,
                    sent_at: sent_at as u64,
                    receive_count: receive_count as u32,
                    receipt: receipt.clone(),
                    history: serde_json::from_str(&history).unwrap_or_default(),
                },
            )
            .collect())
    }

    /// Acknowledges a delivered message: it is done. False when the receipt is stale
    /// (the message came back and was delivered again).
    pub async fn queue_delete(&self, message: &Delivered) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM queue_messages WHERE id = $1 AND receipt = $2")
            .bind(&message.id)
            .bind(&message.receipt)
            .execute(self.writer())
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
        let placeholders: Vec<String> = (2..ids.len() + 2).map(|i| format!("${i}")).collect();
        let statement = format!(
            "DELETE FROM queue_messages WHERE receipt = $1 AND id IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(statement)).bind(receipt);
        for id in ids {
            query = query.bind(*id);
        }
        Ok(query.execute(self.writer()).await?.rows_affected())
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
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// Moves a delivered message to `dlq`, visible at once, keeping its history.
    pub async fn queue_dead_letter(
        &self,
        message: &Delivered,
        queue: &str,
        dlq: &str,
    ) -> Result<(), StoreError> {
        let history = with_entry(
            &message.history,
            json!({ "at": now_ms(), "event": "dead-lettered", "from": queue,
                    "receive_count": message.receive_count - 1 }),
        );
        sqlx::query(
            "UPDATE queue_messages
             SET queue = $3, source_queue = $4, receive_count = 0, receipt = NULL,
                 visible_at = $5, history = $6
             WHERE id = $1 AND receipt = $2",
        )
        .bind(&message.id)
        .bind(&message.receipt)
        .bind(dlq)
        .bind(queue)
        .bind(now_ms())
        .bind(history)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Moves a dead-letter queue's messages back to the queues they came from; messages
    /// sent to it directly (a flow parking a request it could not complete) go to
    /// `fallback`, the queue whose dead-letter queue it is, when there is one.
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
             WHERE tenant = $1 AND queue = $2 AND COALESCE(source_queue, $4) IS NOT NULL",
        )
        .bind(tenant)
        .bind(dlq)
        .bind(now_ms())
        .bind(fallback)
        .execute(self.writer())
        .await?;
        Ok(moved.rows_affected())
    }

    pub async fn queue_stats(&self, tenant: &str, queue: &str) -> Result<QueueStats, StoreError> {
        let now = now_ms();
        let (visible, in_flight, delayed, oldest): (i64, i64, i64, Option<i64>) =
            sqlx::query_as(
                "SELECT
                   CAST(COALESCE(SUM(CASE WHEN visible_at <= $3 THEN 1 ELSE 0 END), 0) AS BIGINT),
                   CAST(COALESCE(SUM(CASE WHEN visible_at > $3 AND receive_count > 0 THEN 1 ELSE 0 END), 0) AS BIGINT),
                   CAST(COALESCE(SUM(CASE WHEN visible_at > $3 AND receive_count = 0 THEN 1 ELSE 0 END), 0) AS BIGINT),
                   MIN(sent_at)
                 FROM queue_messages WHERE tenant = $1 AND queue = $2",
            )
            .bind(tenant)
            .bind(queue)
            .bind(now)
            .fetch_one(self.reader())
            .await?;
        Ok(QueueStats {
            visible: visible as u64,
            in_flight: in_flight as u64,
            delayed: delayed as u64,
            oldest_age_ms: oldest.map_or(0, |t| now.saturating_sub(t) as u64),
        })
    }

    /// The oldest `limit` messages of a queue, without delivering them.
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
             FROM queue_messages WHERE tenant = $1 AND queue = $2 ORDER BY seq LIMIT $3",
        )
        .bind(tenant)
        .bind(queue)
        .bind(i64::from(limit))
        .fetch_all(self.reader())
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

    /// Drops messages past their retention. Returns how many.
    pub async fn queue_expire(&self, tenant: &str, queue: &str) -> Result<u64, StoreError> {
        let gone = sqlx::query(
            "DELETE FROM queue_messages WHERE tenant = $1 AND queue = $2 AND expires_at <= $3",
        )
        .bind(tenant)
        .bind(queue)
        .bind(now_ms())
        .execute(self.writer())
        .await?;
        Ok(gone.rows_affected())
    }
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
    let mut params = Placeholders::new(backend);
    let values: Vec<String> = (0..rows.len())
        .map(|_| {
            let row: Vec<String> = (0..10).map(|_| params.next()).collect();
            format!("({})", row.join(", "))
        })
        .collect();
    let sql = format!(
        "INSERT INTO queue_messages
           (id, tenant, queue, body, attributes, group_id, dedup_id, sent_at, visible_at,
            expires_at)
         VALUES {}",
        values.join(", ")
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for row in rows {
        query = query
            .bind(row.id)
            .bind(row.tenant)
            .bind(row.queue)
            .bind(row.body)
            .bind(row.attributes)
            .bind(row.group_id)
            .bind(row.dedup_id)
            .bind(row.sent_at)
            .bind(row.visible_at)
            .bind(row.expires_at);
    }
    query.execute(&mut **tx).await?;
    Ok(())
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
    use crate::store::testing::{each_store, tenant};

    fn msg(body: &str, group: Option<&str>) -> NewMessage {
        NewMessage {
            body: body.into(),
            group_id: group.map(String::from),
            ..NewMessage::default()
        }
    }

    #[tokio::test]
    async fn claim_ack_fail_and_come_back() {
        each_store(|s| async move {
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

    #[tokio::test]
    async fn fifo_groups_deliver_in_order_one_at_a_time() {
        each_store(|s| async move {
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

    #[tokio::test]
    async fn a_claim_is_deleted_in_one_statement_but_not_a_later_delivery() {
        each_store(|s| async move {
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

    #[tokio::test]
    async fn dead_letters_redrive_delay_dedup_and_retention() {
        each_store(|s| async move {
            let t = tenant("q");
            s.queue_send(&t, "jobs", msg("x", None), 60_000)
                .await
                .unwrap();
            let m = s
                .queue_claim(&t, "jobs", 1, 60_000)
                .await
                .unwrap()
                .remove(0);
            s.queue_dead_letter(&m, "jobs", "jobs-dlq").await.unwrap();
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

            s.queue_send(&t, "r", msg("old", None), 1).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            assert_eq!(s.queue_expire(&t, "r").await.unwrap(), 1);
        })
        .await;
    }
}
