//! Key-value items on SQLite or PostgreSQL. An expired item counts as absent everywhere; its next
//! write starts again at version 1.

use async_trait::async_trait;

use super::{Store, now_ms};
use crate::capabilities::CapError;
use crate::capabilities::kv::{Entry, KeyPage, KeyValue, Namespace};

/// Attempts of increment's read-compute-swap loop before reporting contention.
const INCREMENT_ATTEMPTS: usize = 64;

/// Through `StoreError`, so a failed connection is noticed (see `StoreError::from`).
fn failed(e: impl Into<super::StoreError>) -> CapError {
    CapError::Failed(format!("kv store: {}", e.into()))
}

fn expiry(ttl_ms: Option<u64>) -> Option<i64> {
    ttl_ms.map(|ttl| now_ms().saturating_add(ttl.min(i64::MAX as u64) as i64))
}

impl Store {
    /// Value, version and expiry of a live item.
    async fn kv_get_raw(
        &self,
        ns: &Namespace,
        key: &str,
    ) -> Result<Option<(Vec<u8>, i64, Option<i64>)>, CapError> {
        sqlx::query_as(
            "SELECT value, version, expires_at FROM kv_items
             WHERE tenant = $1 AND scope = $2 AND key = $3
               AND (expires_at IS NULL OR expires_at > $4)",
        )
        .bind(&ns.tenant)
        .bind(&ns.scope)
        .bind(key)
        .bind(now_ms())
        .fetch_optional(self.reader())
        .await
        .map_err(failed)
    }

    async fn kv_swap(
        &self,
        ns: &Namespace,
        key: &str,
        expected: u64,
        value: &[u8],
        expires_at: Option<i64>,
    ) -> Result<Option<u64>, CapError> {
        let now = now_ms();
        let version: Option<i64> = if expected == 0 {
            // Absent, or present but expired.
            sqlx::query_scalar(
                "INSERT INTO kv_items (tenant, scope, key, value, version, expires_at)
                 VALUES ($1, $2, $3, $4, 1, $5)
                 ON CONFLICT (tenant, scope, key) DO UPDATE
                   SET value = excluded.value, expires_at = excluded.expires_at, version = 1
                   WHERE kv_items.expires_at IS NOT NULL AND kv_items.expires_at <= $6
                 RETURNING version",
            )
            .bind(&ns.tenant)
            .bind(&ns.scope)
            .bind(key)
            .bind(value)
            .bind(expires_at)
            .bind(now)
            .fetch_optional(&mut *self.writer().await.map_err(failed)?)
            .await
            .map_err(failed)?
        } else {
            sqlx::query_scalar(
                "UPDATE kv_items SET value = $4, expires_at = $5, version = version + 1
                 WHERE tenant = $1 AND scope = $2 AND key = $3 AND version = $6
                   AND (expires_at IS NULL OR expires_at > $7)
                 RETURNING version",
            )
            .bind(&ns.tenant)
            .bind(&ns.scope)
            .bind(key)
            .bind(value)
            .bind(expires_at)
            .bind(i64::try_from(expected).unwrap_or(i64::MAX))
            .bind(now)
            .fetch_optional(&mut *self.writer().await.map_err(failed)?)
            .await
            .map_err(failed)?
        };
        Ok(version.map(|v| v as u64))
    }
}

impl Store {
    /// This host's turn to increment `key` of `ns` (see `Store::increments`).
    async fn increment_turn(&self, ns: &Namespace, key: &str) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{Hash as _, Hasher as _};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (&ns.tenant, &ns.scope, key).hash(&mut h);
        let stripe = (h.finish() as usize) % self.increments.len();
        self.increments[stripe].lock().await
    }
}

#[async_trait]
impl KeyValue for Store {
    async fn get(&self, ns: &Namespace, key: &str) -> Result<Option<Entry>, CapError> {
        Ok(self
            .kv_get_raw(ns, key)
            .await?
            .map(|(value, version, _)| Entry {
                key: key.to_string(),
                value,
                version: version as u64,
            }))
    }

    async fn set(
        &self,
        ns: &Namespace,
        key: &str,
        value: &[u8],
        ttl_ms: Option<u64>,
    ) -> Result<u64, CapError> {
        let version: i64 = sqlx::query_scalar(
            "INSERT INTO kv_items (tenant, scope, key, value, version, expires_at)
             VALUES ($1, $2, $3, $4, 1, $5)
             ON CONFLICT (tenant, scope, key) DO UPDATE
               SET value = excluded.value, expires_at = excluded.expires_at,
                   version = CASE WHEN kv_items.expires_at IS NOT NULL AND kv_items.expires_at <= $6
                                  THEN 1 ELSE kv_items.version + 1 END
             RETURNING version",
        )
        .bind(&ns.tenant)
        .bind(&ns.scope)
        .bind(key)
        .bind(value)
        .bind(expiry(ttl_ms))
        .bind(now_ms())
        .fetch_one(&mut *self.writer().await.map_err(failed)?)
        .await
        .map_err(failed)?;
        Ok(version as u64)
    }

    async fn delete(&self, ns: &Namespace, key: &str) -> Result<bool, CapError> {
        let live: Option<i64> = sqlx::query_scalar(
            "DELETE FROM kv_items WHERE tenant = $1 AND scope = $2 AND key = $3
             RETURNING CAST(CASE WHEN expires_at IS NULL OR expires_at > $4 THEN 1 ELSE 0 END
                            AS BIGINT)",
        )
        .bind(&ns.tenant)
        .bind(&ns.scope)
        .bind(key)
        .bind(now_ms())
        .fetch_optional(&mut *self.writer().await.map_err(failed)?)
        .await
        .map_err(failed)?;
        Ok(live == Some(1))
    }

    async fn list(
        &self,
        ns: &Namespace,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<KeyPage, CapError> {
        // One row past the page says whether there is a next page.
        let mut keys: Vec<String> = sqlx::query_scalar(
            "SELECT key FROM kv_items
             WHERE tenant = $1 AND scope = $2 AND key >= $3 AND substr(key, 1, length($3)) = $3
               AND key > $4 AND (expires_at IS NULL OR expires_at > $5)
             ORDER BY key LIMIT $6",
        )
        .bind(&ns.tenant)
        .bind(&ns.scope)
        .bind(prefix)
        .bind(cursor.unwrap_or(""))
        .bind(now_ms())
        .bind(i64::from(limit) + 1)
        .fetch_all(self.reader())
        .await
        .map_err(failed)?;
        let cursor = if keys.len() > limit as usize {
            keys.truncate(limit as usize);
            keys.last().cloned()
        } else {
            None
        };
        Ok(KeyPage { keys, cursor })
    }

    async fn compare_and_swap(
        &self,
        ns: &Namespace,
        key: &str,
        expected: u64,
        value: &[u8],
        ttl_ms: Option<u64>,
    ) -> Result<Option<u64>, CapError> {
        self.kv_swap(ns, key, expected, value, expiry(ttl_ms)).await
    }

    async fn increment(&self, ns: &Namespace, key: &str, delta: i64) -> Result<i64, CapError> {
        let _turn = self.increment_turn(ns, key).await;
        for attempt in 0..INCREMENT_ATTEMPTS {
            if attempt > 0 {
                // Lost to another host: back off a little, more each time.
                let micros = 50u64 << attempt.min(7);
                tokio::time::sleep(std::time::Duration::from_micros(micros)).await;
            }
            let (current, version, expires_at) = match self.kv_get_raw(ns, key).await? {
                Some((value, version, expires_at)) => {
                    let text = String::from_utf8_lossy(&value);
                    let n: i64 = text.trim().parse().map_err(|_| {
                        CapError::Invalid(format!("the value under `{key}` is not an integer"))
                    })?;
                    (n, version as u64, expires_at)
                }
                None => (0, 0, None),
            };
            let next = current.checked_add(delta).ok_or_else(|| {
                CapError::Invalid(format!("incrementing `{key}` by {delta} overflows"))
            })?;
            let written = self
                .kv_swap(ns, key, version, next.to_string().as_bytes(), expires_at)
                .await?;
            if written.is_some() {
                return Ok(next);
            }
        }
        Err(CapError::Failed(format!(
            "increment of `{key}` lost {INCREMENT_ATTEMPTS} races in a row"
        )))
    }
}

#[cfg(test)]
mod tests {
    //! Every test runs on SQLite, and on PostgreSQL when `ORQUESTA_TEST_POSTGRES_URL` is
    //! set (`.ci/run` sets it). Tenant names are fresh per run, so runs never collide.
    use super::*;
    use crate::store::testing::{each_store, tenant};

    fn ns() -> Namespace {
        Namespace::private(&tenant("acme"), "p")
    }

    #[tokio::test]
    async fn set_get_delete_and_versions() {
        each_store(|s| async move {
            let ns = ns();
            assert_eq!(s.get(&ns, "k").await.unwrap(), None);
            assert_eq!(s.set(&ns, "k", b"a", None).await.unwrap(), 1);
            assert_eq!(s.set(&ns, "k", b"b", None).await.unwrap(), 2);
            let e = s.get(&ns, "k").await.unwrap().unwrap();
            assert_eq!((e.value.as_slice(), e.version), (b"b".as_slice(), 2));
            assert!(s.delete(&ns, "k").await.unwrap());
            assert!(!s.delete(&ns, "k").await.unwrap());
            assert_eq!(s.get(&ns, "k").await.unwrap(), None);
        })
        .await;
    }

    #[tokio::test]
    async fn expired_items_are_absent_and_restart_at_version_1() {
        each_store(|s| async move {
            let ns = ns();
            s.set(&ns, "gone", b"x", Some(150)).await.unwrap();
            s.set(&ns, "kept", b"y", Some(60_000)).await.unwrap();
            assert!(s.get(&ns, "gone").await.unwrap().is_some());
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            assert_eq!(s.get(&ns, "gone").await.unwrap(), None);
            assert!(s.get(&ns, "kept").await.unwrap().is_some());
            assert_eq!(s.list(&ns, "", None, 10).await.unwrap().keys, vec!["kept"]);
            assert!(
                !s.delete(&ns, "gone").await.unwrap(),
                "deleting an expired item finds nothing"
            );
            assert_eq!(s.set(&ns, "kept", b"z", None).await.unwrap(), 2);
            s.set(&ns, "gone", b"x", Some(1)).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            assert_eq!(s.set(&ns, "gone", b"again", None).await.unwrap(), 1);
        })
        .await;
    }

    #[tokio::test]
    async fn list_by_prefix_pages_with_a_cursor() {
        each_store(|s| async move {
            let ns = ns();
            for key in [
                "user:1", "user:2", "user:3", "user:4", "user:5", "order:1", "user", "User:0",
            ] {
                s.set(&ns, key, b"", None).await.unwrap();
            }
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            let mut pages = 0;
            loop {
                let page = s.list(&ns, "user:", cursor.as_deref(), 2).await.unwrap();
                pages += 1;
                assert!(page.keys.len() <= 2);
                seen.extend(page.keys);
                match page.cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            assert_eq!(seen, ["user:1", "user:2", "user:3", "user:4", "user:5"]);
            assert_eq!(pages, 3);
            // Byte order on every backend: upper case sorts first.
            let all = s.list(&ns, "", None, 100).await.unwrap().keys;
            assert_eq!(all[0], "User:0");
            // `%` and `_` are ordinary characters, not patterns.
            s.set(&ns, "a%b", b"", None).await.unwrap();
            assert_eq!(s.list(&ns, "a%", None, 10).await.unwrap().keys, vec!["a%b"]);
            assert!(s.list(&ns, "%", None, 10).await.unwrap().keys.is_empty());
        })
        .await;
    }

    #[tokio::test]
    async fn compare_and_swap_writes_only_on_the_expected_version() {
        each_store(|s| async move {
            let ns = ns();
            let cas = |expected, value: &'static [u8]| {
                let (s, ns) = (s.clone(), ns.clone());
                async move {
                    s.compare_and_swap(&ns, "k", expected, value, None)
                        .await
                        .unwrap()
                }
            };
            assert_eq!(cas(0, b"first").await, Some(1));
            assert_eq!(cas(0, b"again").await, None);
            assert_eq!(cas(7, b"stale").await, None);
            assert_eq!(cas(1, b"second").await, Some(2));
            assert_eq!(s.get(&ns, "k").await.unwrap().unwrap().value, b"second");
        })
        .await;
    }

    #[tokio::test]
    async fn increment_counts_from_zero_refuses_text_and_overflow() {
        each_store(|s| async move {
            let ns = ns();
            assert_eq!(s.increment(&ns, "n", 5).await.unwrap(), 5);
            assert_eq!(s.increment(&ns, "n", -7).await.unwrap(), -2);
            s.set(&ns, "t", b"hello", None).await.unwrap();
            assert!(matches!(
                s.increment(&ns, "t", 1).await,
                Err(CapError::Invalid(_))
            ));
            s.set(&ns, "max", i64::MAX.to_string().as_bytes(), None)
                .await
                .unwrap();
            assert!(matches!(
                s.increment(&ns, "max", 1).await,
                Err(CapError::Invalid(_))
            ));
        })
        .await;
    }

    #[tokio::test]
    async fn concurrent_increments_are_all_counted() {
        // A file, not memory: several connections race for real.
        let dir = tempfile::tempdir().unwrap();
        let file = Store::open_sqlite(&dir.path().join("kv.db")).await.unwrap();
        let mut stores = vec![file];
        stores.extend(crate::store::testing::postgres().await);
        for s in stores {
            let ns = Namespace::shared(&tenant("acme"), "counters");
            let tasks: Vec<_> = (0..40)
                .map(|_| {
                    let (s, ns) = (s.clone(), ns.clone());
                    tokio::spawn(async move { s.increment(&ns, "hits", 1).await })
                })
                .collect();
            for t in tasks {
                t.await.unwrap().unwrap();
            }
            let value = s.get(&ns, "hits").await.unwrap().unwrap().value;
            assert_eq!(value, b"40", "{:?}", s.backend());
        }
    }

    #[tokio::test]
    async fn namespaces_do_not_see_each_other() {
        each_store(|s| async move {
            let (ta, tb) = (tenant("a"), tenant("b"));
            let a = Namespace::private(&ta, "p");
            let b = Namespace::private(&tb, "p");
            let shared = Namespace::shared(&ta, "p");
            s.set(&a, "k", b"a", None).await.unwrap();
            assert_eq!(s.get(&b, "k").await.unwrap(), None);
            assert_eq!(s.get(&shared, "k").await.unwrap(), None);
            assert!(s.list(&b, "", None, 10).await.unwrap().keys.is_empty());
        })
        .await;
    }
}
