//! Fired schedule ticks: claiming a tick is an insert that only one host can win.

use super::{Store, StoreError, now_ms};

/// A tick to claim in the transaction that writes what it delivers
/// ([`Store::delivery_add_for_tick`]): a host killed between a claim and its delivery
/// would otherwise lose the tick.
#[derive(Debug, Clone, Copy)]
pub struct TickClaim<'a> {
    pub tenant: &'a str,
    pub schedule: &'a str,
    pub due_at: i64,
}

/// Claims `tick` on `conn`; true when this claim won.
pub(super) async fn claim_on(
    conn: &mut sqlx::AnyConnection,
    tick: TickClaim<'_>,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO schedule_ticks (tenant, schedule, due_at, fired_at)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(tick.tenant)
    .bind(tick.schedule)
    .bind(tick.due_at)
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

impl Store {
    /// Claims the tick due at `due_at`; true for the one caller that gets it.
    pub async fn schedule_claim(
        &self,
        tenant: &str,
        schedule: &str,
        due_at: i64,
    ) -> Result<bool, StoreError> {
        let tick = TickClaim {
            tenant,
            schedule,
            due_at,
        };
        let mut conn = self.writer().await?;
        claim_on(&mut conn, tick).await
    }

    /// The latest tick of a schedule that fired, if any.
    pub async fn schedule_last_fired(
        &self,
        tenant: &str,
        schedule: &str,
    ) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT MAX(due_at) FROM schedule_ticks WHERE tenant = $1 AND schedule = $2",
        )
        .bind(tenant)
        .bind(schedule)
        .fetch_one(&mut *self.reader().await?)
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::testing::{Stores, each_store, store_test, tenant};

    store_test!(a_tick_is_claimed_once);
    async fn a_tick_is_claimed_once(stores: Stores) {
        each_store(stores, |s| async move {
            let t = tenant("s");
            assert_eq!(s.schedule_last_fired(&t, "daily").await.unwrap(), None);
            assert!(s.schedule_claim(&t, "daily", 1000).await.unwrap());
            assert!(!s.schedule_claim(&t, "daily", 1000).await.unwrap());
            assert!(s.schedule_claim(&t, "daily", 2000).await.unwrap());
            assert_eq!(
                s.schedule_last_fired(&t, "daily").await.unwrap(),
                Some(2000)
            );
        })
        .await;
    }

    use super::TickClaim;
    use crate::store::delivery::NewDelivery;

    fn delivery(tenant: &str) -> NewDelivery {
        NewDelivery {
            tenant: tenant.to_string(),
            kind: "plugin".into(),
            target: "p".into(),
            event: "{}".into(),
            depth: 0,
            lease_ms: 1000,
            max_attempts: 1,
            max_age_ms: None,
            dead_letter: None,
            origin: "test".into(),
            retry_schedule: None,
        }
    }

    /// A tick's delivery is written with its claim or not at all: of hosts racing for one
    /// tick, one writes it, and the others write nothing.
    async fn a_ticks_delivery_is_written_once_with_its_claim(stores: Stores) {
        each_store(stores, async |store| {
            let tenant = tenant("tick");
            let tick = TickClaim {
                tenant: &tenant,
                schedule: "every",
                due_at: 1_000,
            };
            let mut won = 0;
            for _ in 0..3 {
                if store
                    .delivery_add_for_tick(delivery(&tenant), tick)
                    .await
                    .unwrap()
                {
                    won += 1;
                }
            }
            assert_eq!(won, 1);
            assert_eq!(store.delivery_pending(&tenant).await.unwrap(), 1);
            assert_eq!(
                store.schedule_last_fired(&tenant, "every").await.unwrap(),
                Some(1_000)
            );
            // A claim made another way (a queue target's) also stops the delivery.
            assert!(store.schedule_claim(&tenant, "every", 2_000).await.unwrap());
            let later = TickClaim {
                due_at: 2_000,
                ..tick
            };
            assert!(
                !store
                    .delivery_add_for_tick(delivery(&tenant), later)
                    .await
                    .unwrap()
            );
            assert_eq!(store.delivery_pending(&tenant).await.unwrap(), 1);
        })
        .await;
    }
    store_test!(a_ticks_delivery_is_written_once_with_its_claim);
}
