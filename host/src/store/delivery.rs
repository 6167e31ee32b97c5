//! Topic and bus deliveries to plugins and webhooks that are not yet made. They wait in
//! the store, not in memory, so a restart loses none and a slow target holds no bodies
//! in the host. A host claims due rows for their lease with one UPDATE (`FOR UPDATE SKIP
//! LOCKED` on PostgreSQL, so hosts sharing a database never make one delivery twice at
//! once); a delivery done is deleted, a failed one is due again after a pause. One that
//! failed past its policy (its attempts, its age) is marked failed: never claimed again,
//! listed for the admin API until `delivery_prune_failed` deletes it.

use serde::Serialize;

use super::{Backend, Placeholders, Store, StoreError, now_ms};

/// `visible_at` of a failed delivery: never due.
const NEVER: i64 = i64::MAX / 4;

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
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Past this age it is not tried again; `None`: no limit.
    pub max_age_ms: Option<u64>,
    /// The tenant's queue it goes to when it fails past its policy.
    pub dead_letter: Option<String>,
    /// What it comes from (a rule's or topic's ARN-like id).
    pub origin: String,
    /// Its own retry schedule (JSON, `tenants::delivery::HealthyRetryPolicy`); `None`:
    /// the host's.
    pub retry_schedule: Option<String>,
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
    pub max_attempts: u32,
    /// Milliseconds since the Unix epoch past which it is not tried again.
    pub expires_at: Option<i64>,
    pub dead_letter: Option<String>,
    pub origin: String,
    /// When it was written, milliseconds since the Unix epoch.
    pub created_at: i64,
    pub receipt: String,
    pub retry_schedule: Option<String>,
}

/// Which deliveries a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Not yet made: due, leased or waiting for a retry.
    Pending,
    /// Failed past their policy.
    Failed,
}

/// A delivery as the admin API lists it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ListedDelivery {
    #[schema(example = 42)]
    pub seq: i64,
    /// `plugin` or `webhook`.
    #[schema(example = "plugin")]
    pub kind: String,
    /// The plugin's name or the webhook's URL.
    #[schema(example = "notifier")]
    pub target: String,
    /// The rule's or topic's ARN-like id.
    #[schema(example = "orquesta:acme:rule/default/confirmed")]
    pub origin: String,
    #[schema(example = "failed")]
    pub state: String,
    pub attempts: u32,
    pub max_attempts: u32,
    pub last_error: Option<String>,
    /// Where it went when it failed (or, pending, where it would go).
    pub dead_letter: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    pub failed_at: Option<i64>,
    /// What is delivered, as the store keeps it (JSON).
    pub event: String,
}

/// Deliveries written by one INSERT: a publication makes one per matching subscription.
const PER_INSERT: usize = 100;

type ClaimedRow = (
    i64,
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    String,
    i64,
    Option<String>,
);

type ListedRow = (
    i64,
    String,
    String,
    String,
    i64,
    i64,
    Option<String>,
    Option<String>,
    i64,
    Option<i64>,
    String,
);

impl Store {
    /// Writes `deliveries`, due at once, in one transaction.
    pub async fn delivery_add(&self, deliveries: Vec<NewDelivery>) -> Result<(), StoreError> {
        if deliveries.is_empty() {
            return Ok(());
        }
        self.delivery_add_claiming(deliveries, None)
            .await
            .map(|_| ())
    }

    /// Writes `delivery` only with the claim of `tick`, in one transaction: false (and
    /// nothing written) when another host claimed the tick.
    pub async fn delivery_add_for_tick(
        &self,
        delivery: NewDelivery,
        tick: super::schedule::TickClaim<'_>,
    ) -> Result<bool, StoreError> {
        self.delivery_add_claiming(vec![delivery], Some(tick)).await
    }

    async fn delivery_add_claiming(
        &self,
        deliveries: Vec<NewDelivery>,
        tick: Option<super::schedule::TickClaim<'_>>,
    ) -> Result<bool, StoreError> {
        use sqlx::Connection as _;
        let now = now_ms();
        let mut conn = self.writer().await?;
        let mut tx = conn.begin().await?;
        if let Some(tick) = tick
            && !super::schedule::claim_on(&mut tx, tick).await?
        {
            tx.rollback().await?;
            return Ok(false);
        }
        let mut rest = deliveries;
        while !rest.is_empty() {
            let chunk: Vec<NewDelivery> = rest.drain(..rest.len().min(PER_INSERT)).collect();
            let mut params = Placeholders::new(self.backend);
            let values: Vec<String> = chunk
                .iter()
                .map(|_| {
                    let row: Vec<String> = (0..13).map(|_| params.next()).collect();
                    format!("({})", row.join(", "))
                })
                .collect();
            let sql = format!(
                "INSERT INTO deliveries
                   (tenant, kind, target, event, depth, lease_ms, created_at, visible_at,
                    max_attempts, expires_at, dead_letter, origin, retry_schedule)
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
                    .bind(now)
                    .bind(i64::from(d.max_attempts))
                    .bind(
                        d.max_age_ms
                            .map(|age| now.saturating_add(i64::try_from(age).unwrap_or(NEVER))),
                    )
                    .bind(d.dead_letter)
                    .bind(d.origin)
                    .bind(d.retry_schedule);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(true)
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
               SELECT seq FROM deliveries
               WHERE visible_at <= $1 AND failed_at IS NULL AND tenant IN ({list})
               ORDER BY visible_at, seq LIMIT $3 {lock})
             RETURNING seq, tenant, kind, target, event, depth, attempts, max_attempts,
               expires_at, dead_letter, origin, created_at, retry_schedule"
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
            .map(|row| {
                let (seq, tenant, kind, target, event, depth, attempts, max_attempts) =
                    (row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7);
                ClaimedDelivery {
                    seq,
                    tenant,
                    kind,
                    target,
                    event,
                    depth: u32::try_from(depth).unwrap_or(u32::MAX),
                    attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                    max_attempts: u32::try_from(max_attempts).unwrap_or(u32::MAX),
                    expires_at: row.8,
                    dead_letter: row.9,
                    origin: row.10,
                    created_at: row.11,
                    receipt: receipt.clone(),
                    retry_schedule: row.12,
                }
            })
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

    /// A delivery failed past its policy: kept with its error and where it went
    /// (`dead_letter`, or `None` when it was dropped), never claimed again.
    pub async fn delivery_fail(
        &self,
        delivery: &ClaimedDelivery,
        error: &str,
        dead_letter: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE deliveries SET visible_at = $3, receipt = NULL, last_error = $4,
               dead_letter = $5, failed_at = $6
             WHERE seq = $1 AND receipt = $2",
        )
        .bind(delivery.seq)
        .bind(&delivery.receipt)
        .bind(NEVER)
        .bind(error)
        .bind(dead_letter)
        .bind(now_ms())
        .execute(&mut *self.writer().await?)
        .await?;
        Ok(())
    }

    /// Deletes the failed deliveries that failed before `before_ms`; how many.
    pub async fn delivery_prune_failed(&self, before_ms: i64) -> Result<u64, StoreError> {
        let pruned =
            sqlx::query("DELETE FROM deliveries WHERE failed_at IS NOT NULL AND failed_at < $1")
                .bind(before_ms)
                .execute(&mut *self.writer().await?)
                .await?;
        Ok(pruned.rows_affected())
    }

    /// Up to `limit` of `tenant`'s deliveries in `state`, oldest first, from `after` (a
    /// `seq`, exclusive).
    pub async fn delivery_list(
        &self,
        tenant: &str,
        state: DeliveryState,
        after: i64,
        limit: u32,
    ) -> Result<Vec<ListedDelivery>, StoreError> {
        let (condition, name) = match state {
            DeliveryState::Pending => ("failed_at IS NULL", "pending"),
            DeliveryState::Failed => ("failed_at IS NOT NULL", "failed"),
        };
        let statement = format!(
            "SELECT seq, kind, target, origin, attempts, max_attempts, last_error, dead_letter,
               created_at, failed_at, event
             FROM deliveries WHERE tenant = $1 AND seq > $2 AND {condition}
             ORDER BY seq LIMIT $3"
        );
        let rows: Vec<ListedRow> = sqlx::query_as(sqlx::AssertSqlSafe(statement))
            .bind(tenant)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&mut *self.reader().await?)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| ListedDelivery {
                seq: r.0,
                kind: r.1,
                target: r.2,
                origin: r.3,
                state: name.to_string(),
                attempts: u32::try_from(r.4).unwrap_or(u32::MAX),
                max_attempts: u32::try_from(r.5).unwrap_or(u32::MAX),
                last_error: r.6,
                dead_letter: r.7,
                created_at: r.8,
                failed_at: r.9,
                event: r.10,
            })
            .collect())
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

    /// Deliveries of `tenant` not yet made (failed ones left out).
    pub async fn delivery_pending(&self, tenant: &str) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM deliveries WHERE tenant = $1 AND failed_at IS NULL",
        )
        .bind(tenant)
        .fetch_one(&mut *self.reader().await?)
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
            max_attempts: 3,
            max_age_ms: None,
            dead_letter: None,
            origin: "orquesta:t:topic".into(),
            retry_schedule: None,
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

    store_test!(failed_deliveries_stay_listed_per_tenant_until_pruned);
    async fn failed_deliveries_stay_listed_per_tenant_until_pruned(stores: Stores) {
        each_store(stores, |s| async move {
            let (t, other) = (tenant("f"), tenant("f-other"));
            let mut held = delivery(&t, "a", 60_000);
            held.max_attempts = 5;
            held.max_age_ms = Some(60_000);
            held.dead_letter = Some("dlq".into());
            held.origin = "orquesta:f:rule/default/r".into();
            held.retry_schedule = Some("{\"num_retries\":3}".into());
            s.delivery_add(vec![held, delivery(&t, "b", 60_000)])
                .await
                .unwrap();
            s.delivery_add(vec![delivery(&other, "c", 60_000)])
                .await
                .unwrap();
            let claimed = s.delivery_claim(1000, &[t.as_str()]).await.unwrap();
            let a = claimed.iter().find(|d| d.target == "a").unwrap().clone();
            // The policy comes back with the claim.
            assert_eq!((a.max_attempts, a.dead_letter.as_deref()), (5, Some("dlq")));
            assert_eq!(a.origin, "orquesta:f:rule/default/r");
            assert_eq!(a.retry_schedule.as_deref(), Some("{\"num_retries\":3}"));
            let b = claimed.iter().find(|d| d.target == "b").unwrap();
            assert_eq!(b.retry_schedule, None);
            let expires = a.expires_at.expect("an age limit");
            assert_eq!(expires - a.created_at, 60_000);
            s.delivery_fail(&a, "boom", Some("dlq")).await.unwrap();
            for d in claimed.iter().filter(|d| d.target != "a") {
                s.delivery_retry(d, 0, "later").await.unwrap();
            }
            s.delivery_claim(1000, &[other.as_str()]).await.unwrap();
            let c = s.delivery_claim(1000, &[other.as_str()]).await.unwrap();
            assert!(c.is_empty(), "leased");

            // Failed: never claimed again, not counted as pending, listed per tenant.
            let again = s.delivery_claim(1000, &[t.as_str()]).await.unwrap();
            assert_eq!(again.len(), 1);
            assert_eq!(again[0].target, "b");
            s.delivery_retry(&again[0], 0, "later").await.unwrap();
            assert_eq!(s.delivery_pending(&t).await.unwrap(), 1);
            let failed = s
                .delivery_list(&t, DeliveryState::Failed, 0, 100)
                .await
                .unwrap();
            assert_eq!(failed.len(), 1);
            let f = &failed[0];
            assert_eq!((f.target.as_str(), f.state.as_str()), ("a", "failed"));
            assert_eq!(f.last_error.as_deref(), Some("boom"));
            assert_eq!(f.dead_letter.as_deref(), Some("dlq"));
            assert_eq!((f.attempts, f.max_attempts), (1, 5));
            assert!(f.failed_at.is_some());
            let pending = s
                .delivery_list(&t, DeliveryState::Pending, 0, 100)
                .await
                .unwrap();
            assert_eq!(pending.len(), 1);
            assert_eq!(pending[0].target, "b");
            assert_eq!(pending[0].last_error.as_deref(), Some("later"));
            // Another tenant's deliveries are not listed, nor this one's in theirs.
            let theirs = s
                .delivery_list(&other, DeliveryState::Failed, 0, 100)
                .await
                .unwrap();
            assert!(theirs.is_empty(), "{theirs:?}");
            // Paged from a seq.
            let past = s
                .delivery_list(&t, DeliveryState::Failed, f.seq, 100)
                .await
                .unwrap();
            assert!(past.is_empty());

            // Pruned once old enough, the pending ones left.
            assert_eq!(s.delivery_prune_failed(0).await.unwrap(), 0);
            assert!(s.delivery_prune_failed(now_ms() + 1).await.unwrap() >= 1);
            assert!(
                s.delivery_list(&t, DeliveryState::Failed, 0, 100)
                    .await
                    .unwrap()
                    .is_empty()
            );
            assert_eq!(s.delivery_pending(&t).await.unwrap(), 1);
        })
        .await;
    }
}
