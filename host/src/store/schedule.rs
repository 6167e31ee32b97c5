//! Fired schedule ticks: claiming a tick is an insert that only one host can win.

use super::{Store, StoreError, now_ms};

impl Store {
    /// Claims the tick due at `due_at`; true for the one caller that gets it.
    pub async fn schedule_claim(
        &self,
        tenant: &str,
        schedule: &str,
        due_at: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO schedule_ticks (tenant, schedule, due_at, fired_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(tenant)
        .bind(schedule)
        .bind(due_at)
        .bind(now_ms())
        .execute(&mut *self.writer().await?)
        .await?;
        Ok(done.rows_affected() == 1)
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
        .fetch_one(self.reader())
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
}
