//! Topic and bus deliveries to plugins and webhooks that are not yet made. They wait in
//! the store, not in memory, so a restart loses none and a slow target holds no bodies
//! in the host. A host claims due rows for their lease with one UPDATE (`FOR UPDATE SKIP
//! LOCKED` on PostgreSQL, so hosts sharing a database never make one delivery twice at
//! once); a delivery done is deleted, a failed one is due again after a pause.

use super::{Backend, Placeholders, Store, StoreError, now_ms};

/// A delivery to make.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub tenant: String,
    /// `plugin` or `webhook`.
    pub kind: String,
    /// The plugin's name or the webhook's URL.
    pub target: String,
    /// What is delivered, as JSON.
    pub event: String,
    /// The invocation it reaches runs this many invocations into its chain.
    pub depth: u32,
    /// How long a host may take to make it before another may try.
    pub lease_ms: u64,
}

/// A delivery claimed by this host.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub seq: i64,
    pub tenant: String,
    pub kind: String,
    pub target: String,
    pub event: String,
    pub depth: u32,
    /// Attempts so far, this one included.
    pub attempts: u32,
    pub receipt: String,
}

/// Deliveries written by one INSERT: a publication makes one per matching subscription.
const PER_INSERT: usize = 100;

type ClaimedRow = (i64, String, String, String, String, i64, i64);

impl Store {
    /// Writes `deliveries`, due at once, in one transaction.
    pub async fn delivery_add(&self, deliveries: Vec<NewDelivery>) -> Result<(), StoreError> {
        use sqlx::Connection as _;
        if deliveries.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let mut conn = self.writer().await?;
        let mut tx = conn.begin().await?;
        let mut rest = deliveries;
        while !rest.is_empty() {
            let chunk: Vec<NewDelivery> = rest.drain(..rest.len().min(PER_INSERT)).collect();
            let mut params = Placeholders::new(self.backend);
            let values: Vec<String> = chunk
                .iter()
                .map(|_| {
                    let row: Vec<String> = (0..8).map(|_| params.next()).collect();
                    format!("({})", row.join(", "))
                })
                .collect();
            let sql = format!(
                "INSERT INTO deliveries
                   (tenant, kind, target, event, depth, lease_ms, created_at, visible_at)
                 VALUES {}",
                values.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for d in chunk {
                query = query
                    .bind(d.tenant)
                    .bind(d.kind)
                    .bind(d.target)
                    .bind(d.event)
                    .bind(i64::from(d.depth))
                    .bind(i64::try_from(d.lease_ms).unwrap_or(i64::MAX / 4))
                    .bind(now)
                    .bind(now);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Claims up to `limit` due deliveries of `tenants` (those this host serves, with
    /// room for more in flight), oldest first; each for its own lease.
    pub async fn delivery_claim(
        &self,
        limit: u32,
        tenants: &[&str],
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        if tenants.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let now = now_ms();
        let receipt = uuid::Uuid::new_v4().to_string();
        let lock = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            // SQLite runs one writer at a time: the UPDATE is already exclusive.
            Backend::Sqlite => "",
        };
        let list: Vec<String> = (4..tenants.len() + 4).map(|i| format!("${i}")).collect();
        let list = list.join(", ");
        let statement = format!(
            "UPDATE deliveries SET visible_at = $1 + lease_ms, attempts = attempts + 1, receipt = $2
             WHERE seq IN (
               SELECT seq FROM deliveries WHERE visible_at <= $1 AND tenant IN ({list})
               ORDER BY visible_at, seq LIMIT $3 {lock})
             RETURNING seq, tenant, kind, target, event, depth, attempts"
        );
        let mut query = sqlx::query_as(sqlx::AssertSqlSafe(statement))
            .bind(now)
            .bind(&receipt)
            .bind(i64::from(limit));
        for tenant in tenants {
            query = query.bind(*tenant);
        }
        let mut rows: Vec<ClaimedRow> = query.fetch_all(&mut *self.writer().await?).await?;
        rows.sort_by_key(|r| r.0);
        Ok(rows
            .into_iter()
            .map(
                |(seq, tenant, kind, target, event, depth, attempts)| ClaimedDelivery {
                    seq,
                    tenant,
                    kind,
                    target,
                    event,
                    depth: u32::try_from(depth).unwrap_or(u32::MAX),
                    attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                    receipt: receipt.clone(),
                },
            )
            .collect())
    }

    /// A delivery made (or given up): it is gone. Nothing happens when another host
    /// claimed it since (its lease ran out).
    pub async fn delivery_done(&self, delivery: &ClaimedDelivery) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM deliveries WHERE seq = $1 AND receipt = $2")
            .bind(delivery.seq)
            .bind(&delivery.receipt)
            .execute(&mut *self.writer().await?)
            .await?;
        Ok(())
    }

    /// A failed attempt: the delivery is due again in `pause_ms`.
    pub async fn delivery_retry(
        &self,
        delivery: &ClaimedDelivery,
        pause_ms: u64,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE deliveries SET visible_at = $3, receipt = NULL, last_error = $4
             WHERE seq = $1 AND receipt = $2",
        )
        .bind(delivery.seq)
        .bind(&delivery.receipt)
        .bind(now_ms().saturating_add(i64::try_from(pause_ms).unwrap_or(i64::MAX / 4)))
        .bind(error)
        .execute(&mut *self.writer().await?)
        .await?;
        Ok(())
    }

    /// Hands a claimed delivery back untried: due at once, its attempt not counted.
    pub async fn delivery_unclaim(&self, delivery: &ClaimedDelivery) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE deliveries SET visible_at = $3, receipt = NULL, attempts = attempts - 1
             WHERE seq = $1 AND receipt = $2",
        )
        .bind(delivery.seq)
        .bind(&delivery.receipt)
        .bind(now_ms())
        .execute(&mut *self.writer().await?)
        .await?;
        Ok(())
    }

    /// Makes every claimed delivery due now: on the embedded store, claims left by a
    /// previous run of its one host, which is not making them any more.
    pub async fn delivery_release(&self) -> Result<u64, StoreError> {
        let released = sqlx::query(
            "UPDATE deliveries SET visible_at = $1, receipt = NULL WHERE receipt IS NOT NULL",
        )
        .bind(now_ms())
        .execute(&mut *self.writer().await?)
        .await?;
        Ok(released.rows_affected())
    }

    /// Deliveries of `tenant` not yet made.
    pub async fn delivery_pending(&self, tenant: &str) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE tenant = $1")
            .bind(tenant)
            .fetch_one(self.reader())
            .await?;
        Ok(n as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{Stores, each_store, store_test, tenant};

    fn delivery(tenant: &str, target: &str, lease_ms: u64) -> NewDelivery {
        NewDelivery {
            tenant: tenant.to_string(),
            kind: "plugin".into(),
            target: target.into(),
            event: format!("{{\"to\":\"{target}\"}}"),
            depth: 3,
            lease_ms,
        }
    }

    store_test!(claim_retry_done_and_release);
    async fn claim_retry_done_and_release(stores: Stores) {
        each_store(stores, |s| async move {
            let (t, other) = (tenant("d"), tenant("d-other"));
            s.delivery_add(vec![delivery(&t, "a", 60_000), delivery(&t, "b", 60_000)])
                .await
                .unwrap();
            s.delivery_add(vec![delivery(&other, "c", 60_000)])
                .await
                .unwrap();
            assert_eq!(s.delivery_pending(&t).await.unwrap(), 2);

            // Only the tenants named are claimed.
            let ours = s.delivery_claim(1000, &[t.as_str()]).await.unwrap();
            assert_eq!(ours.len(), 2);
            assert!(ours.iter().all(|d| d.tenant == t));
            assert_eq!((ours[0].target.as_str(), ours[0].depth), ("a", 3));
            assert_eq!(ours[0].attempts, 1);
            assert_eq!(ours[0].event, "{\"to\":\"a\"}");
            // Claimed rows are not claimed again while their lease lasts.
            let both = [t.as_str(), other.as_str()];
            let others = s.delivery_claim(1000, &both).await.unwrap();
            assert_eq!(others.len(), 1, "leased");
            assert_eq!(others[0].tenant, other);

            let (a, b) = (ours[0].clone(), ours[1].clone());
            s.delivery_done(&a).await.unwrap();
            s.delivery_retry(&b, 0, "boom").await.unwrap();
            // Handed back untried, it does not count an attempt.
            s.delivery_unclaim(&others[0]).await.unwrap();
            let again = s.delivery_claim(1000, &both).await.unwrap();
            assert_eq!(again.len(), 2);
            assert_eq!(
                (again[1].tenant.as_str(), again[1].attempts),
                (other.as_str(), 1)
            );
            s.delivery_done(&again[1]).await.unwrap();
            assert_eq!((again[0].target.as_str(), again[0].attempts), ("b", 2));
            // A stale receipt changes nothing.
            s.delivery_done(&b).await.unwrap();
            assert_eq!(s.delivery_pending(&t).await.unwrap(), 1);

            // A restart of the embedded store's host makes its claims due again.
            if s.backend() == Backend::Sqlite {
                assert!(s.delivery_release().await.unwrap() >= 1);
                let back = s.delivery_claim(1000, &[t.as_str()]).await.unwrap();
                assert_eq!(back.len(), 1);
                s.delivery_done(&back[0]).await.unwrap();
                assert_eq!(s.delivery_pending(&t).await.unwrap(), 0);
            }
        })
        .await;
    }
}
