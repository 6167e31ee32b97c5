//! Key-value items on SQLite or PostgreSQL. An expired item counts as absent everywhere; its next
//! write starts again at version 1. It still takes room until it is overwritten or
//! deleted: a write refused by the tenant's quota first drops the tenant's expired items.

use async_trait::async_trait;
use sqlx::{AnyConnection, Connection as _};

use super::usage::{self, Kind, Quota, Usage};
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

/// A write of one item.
enum Write<'a> {
    /// Whatever is there; returns the new version.
    Set {
        value: &'a [u8],
        expires_at: Option<i64>,
    },
    /// Only over version `expected` (0: absent); `None` on a mismatch.
    Swap {
        expected: u64,
        value: &'a [u8],
        expires_at: Option<i64>,
    },
}

impl Write<'_> {
    fn value(&self) -> &[u8] {
        match self {
            Write::Set { value, .. } | Write::Swap { value, .. } => value,
        }
    }
}

/// A tenant's kv as its plugins reach it: the store, under the tenant's quota.
#[derive(Clone, Debug)]
pub struct TenantKv {
    pub store: Store,
    pub quota: Quota,
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
        .fetch_optional(&mut *self.reader().await.map_err(failed)?)
        .await
        .map_err(failed)
    }

    /// Writes one item under `quota`. `shrinks`: the caller knows the write replaces an
    /// item at least as large, so it cannot grow the usage and is not checked.
    async fn kv_write(
        &self,
        ns: &Namespace,
        key: &str,
        write: Write<'_>,
        quota: Quota,
        shrinks: bool,
    ) -> Result<Option<u64>, CapError> {
        if quota.is_unlimited() || shrinks {
            let mut conn = self.writer().await.map_err(failed)?;
            return kv_write_on(&mut conn, ns, key, &write, None).await;
        }
        if self.backend() == super::Backend::Sqlite {
            // One statement checks and writes: SQLite runs it alone, and it is one round
            // trip to the writer's thread where the transaction below is five. A write it
            // does not make (refused, or a swap's version mismatch) takes the long way,
            // which says why and makes room by dropping expired items.
            let mut conn = self.writer().await.map_err(failed)?;
            if let Some(version) = kv_write_on(&mut conn, ns, key, &write, Some(quota)).await? {
                return Ok(Some(version));
            }
        }
        let mut purged = false;
        loop {
            let mut conn = self.writer().await.map_err(failed)?;
            let mut tx = conn.begin().await.map_err(failed)?;
            // The item first, then the usage row: the order every write locks them in.
            let old: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT CAST(octet_length(key) + octet_length(value) AS BIGINT) FROM kv_items
                 WHERE tenant = $1 AND scope = $2 AND key = $3{}",
                self.row_lock()
            )))
            .bind(&ns.tenant)
            .bind(&ns.scope)
            .bind(key)
            .fetch_optional(&mut *tx)
            .await
            .map_err(failed)?;
            let usage = usage::lock(&mut tx, &ns.tenant, Kind::Kv)
                .await
                .map_err(failed)?;
            let added = Usage {
                items: i64::from(old.is_none()),
                bytes: (key.len() + write.value().len()) as i64 - old.unwrap_or(0),
            };
            match usage::admit(Kind::Kv, quota, usage, added) {
                Ok(()) => {
                    let written = kv_write_on(&mut tx, ns, key, &write, None).await?;
                    tx.commit().await.map_err(failed)?;
                    return Ok(written);
                }
                Err(refused) => {
                    drop(tx);
                    drop(conn);
                    // Expired items still take room: drop them, then look again.
                    if purged || self.kv_purge_expired(&ns.tenant).await? == 0 {
                        return Err(refused);
                    }
                    purged = true;
                }
            }
        }
    }

    /// Deletes `tenant`'s expired items; how many.
    async fn kv_purge_expired(&self, tenant: &str) -> Result<u64, CapError> {
        let gone = sqlx::query(
            "DELETE FROM kv_items WHERE tenant = $1 AND expires_at IS NOT NULL AND expires_at <= $2",
        )
        .bind(tenant)
        .bind(now_ms())
        .execute(&mut *self.writer().await.map_err(failed)?)
        .await
        .map_err(failed)?;
        Ok(gone.rows_affected())
    }

    async fn kv_set(
        &self,
        ns: &Namespace,
        key: &str,
        value: &[u8],
        ttl_ms: Option<u64>,
        quota: Quota,
    ) -> Result<u64, CapError> {
        let write = Write::Set {
            value,
            expires_at: expiry(ttl_ms),
        };
        let version = self.kv_write(ns, key, write, quota, false).await?;
        version.ok_or_else(|| CapError::Failed("kv store: the write returned no version".into()))
    }

    async fn kv_increment(
        &self,
        ns: &Namespace,
        key: &str,
        delta: i64,
        quota: Quota,
        cap: Option<i64>,
    ) -> Result<Option<i64>, CapError> {
        let _turn = self.increment_turn(ns, key).await;
        for attempt in 0..INCREMENT_ATTEMPTS {
            if attempt > 0 {
                // Lost to another host: back off a little, more each time.
                let micros = 50u64 << attempt.min(7);
                tokio::time::sleep(std::time::Duration::from_micros(micros)).await;
            }
            let (current, version, expires_at, old_len) = match self.kv_get_raw(ns, key).await? {
                Some((value, version, expires_at)) => {
                    let text = String::from_utf8_lossy(&value);
                    let n: i64 = text.trim().parse().map_err(|_| {
                        CapError::Invalid(format!("the value under `{key}` is not an integer"))
                    })?;
                    (n, version as u64, expires_at, Some(value.len()))
                }
                None => (0, 0, None, None),
            };
            let next = current.checked_add(delta).ok_or_else(|| {
                CapError::Invalid(format!("incrementing `{key}` by {delta} overflows"))
            })?;
            if cap.is_some_and(|cap| next > cap) {
                return Ok(None);
            }
            let text = next.to_string();
            // The swap replaces exactly the value read: a counter that keeps its length
            // adds nothing to the usage.
            let shrinks = old_len.is_some_and(|len| text.len() <= len);
            let write = Write::Swap {
                expected: version,
                value: text.as_bytes(),
                expires_at,
            };
            if self
                .kv_write(ns, key, write, quota, shrinks)
                .await?
                .is_some()
            {
                return Ok(Some(next));
            }
        }
        Err(CapError::Failed(format!(
            "increment of `{key}` lost {INCREMENT_ATTEMPTS} races in a row"
        )))
    }

    /// This host's turn to increment `key` of `ns` (see `Store::increments`).
    async fn increment_turn(&self, ns: &Namespace, key: &str) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{Hash as _, Hasher as _};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (&ns.tenant, &ns.scope, key).hash(&mut h);
        let stripe = (h.finish() as usize) % self.increments.len();
        self.increments[stripe].lock().await
    }

    /// Adds `delta` to the integer under `key` unless the sum would pass `cap`; the sum,
    /// or `None` (nothing written) when it would. The read-compute-swap loop makes the
    /// check and the write one step across hosts sharing the store: a usage count
    /// held to its quota this way never counts the requests it refuses.
    pub async fn increment_capped(
        &self,
        ns: &Namespace,
        key: &str,
        delta: i64,
        cap: Option<i64>,
    ) -> Result<Option<i64>, CapError> {
        // The host's own counters are not the tenant's storage.
        self.kv_increment(ns, key, delta, Quota::UNLIMITED, cap)
            .await
    }
}

/// The condition under which a write of `key` (`size` bytes with its value, bound at
/// `$first + 2`) stays within `quota` (`$first`, `$first + 1`: items and bytes, NULL for
/// none), as `usage::admit` decides it: only what the write adds is checked. SQLite
/// only, where the statement it guards runs alone, so the usage it reads cannot move.
fn admit_sql(first: usize) -> String {
    let (items, bytes, size) = (first, first + 1, first + 2);
    format!(
        "(SELECT (o.size IS NOT NULL OR ${items} IS NULL OR u.items + 1 <= ${items})
             AND (${bytes} IS NULL OR ${size} <= COALESCE(o.size, 0)
                  OR u.bytes + ${size} - COALESCE(o.size, 0) <= ${bytes})
          FROM (SELECT (SELECT octet_length(key) + octet_length(value) FROM kv_items
                        WHERE tenant = $1 AND scope = $2 AND key = $3) AS size) AS o,
               (SELECT COALESCE(MAX(items), 0) AS items, COALESCE(MAX(bytes), 0) AS bytes
                FROM storage_usage WHERE tenant = $1 AND kind = 'kv') AS u)"
    )
}

/// Runs `write` on the writer's connection or inside a transaction. With `admit` (SQLite
/// only), the write is made only if it keeps the tenant within that quota; `None` then
/// also means refused.
async fn kv_write_on(
    conn: &mut AnyConnection,
    ns: &Namespace,
    key: &str,
    write: &Write<'_>,
    admit: Option<Quota>,
) -> Result<Option<u64>, CapError> {
    let now = now_ms();
    // An insert that may be refused selects its row under the condition; one that may
    // not keeps the plain VALUES (PostgreSQL types a VALUES row by its columns).
    let (insert, update_admit) = match admit {
        None => ("VALUES ($1, $2, $3, $4, 1, $5)".to_string(), String::new()),
        Some(_) => (
            format!("SELECT $1, $2, $3, $4, 1, $5 WHERE {}", admit_sql(7)),
            format!(" AND {}", admit_sql(8)),
        ),
    };
    // The statement, and the swap's expected version (bound as `$6`, before `now`).
    let (sql, value, expires_at, expected) = match *write {
        Write::Set { value, expires_at } => (
            format!(
                "INSERT INTO kv_items (tenant, scope, key, value, version, expires_at)
                 {insert}
                 ON CONFLICT (tenant, scope, key) DO UPDATE
                   SET value = excluded.value, expires_at = excluded.expires_at,
                       version = CASE WHEN kv_items.expires_at IS NOT NULL AND kv_items.expires_at <= $6
                                      THEN 1 ELSE kv_items.version + 1 END
                 RETURNING version"
            ),
            value,
            expires_at,
            None,
        ),
        // Absent, or present but expired.
        Write::Swap {
            expected: 0,
            value,
            expires_at,
        } => (
            format!(
                "INSERT INTO kv_items (tenant, scope, key, value, version, expires_at)
                 {insert}
                 ON CONFLICT (tenant, scope, key) DO UPDATE
                   SET value = excluded.value, expires_at = excluded.expires_at, version = 1
                   WHERE kv_items.expires_at IS NOT NULL AND kv_items.expires_at <= $6
                 RETURNING version"
            ),
            value,
            expires_at,
            None,
        ),
        Write::Swap {
            expected,
            value,
            expires_at,
        } => (
            format!(
                "UPDATE kv_items SET value = $4, expires_at = $5, version = version + 1
                 WHERE tenant = $1 AND scope = $2 AND key = $3 AND version = $6
                   AND (expires_at IS NULL OR expires_at > $7){update_admit}
                 RETURNING version"
            ),
            value,
            expires_at,
            Some(i64::try_from(expected).unwrap_or(i64::MAX)),
        ),
    };
    let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(&ns.tenant)
        .bind(&ns.scope)
        .bind(key)
        .bind(value)
        .bind(expires_at);
    if let Some(expected) = expected {
        query = query.bind(expected);
    }
    let version: Option<i64> = bind_admit(query.bind(now), admit, key, value)
        .fetch_optional(&mut *conn)
        .await
        .map_err(failed)?;
    Ok(version.map(|v| v as u64))
}

type ScalarQuery<'q> = sqlx::query::QueryScalar<'q, sqlx::Any, i64, sqlx::any::AnyArguments>;

/// Binds `admit_sql`'s three parameters after the statement's own.
fn bind_admit<'q>(
    query: ScalarQuery<'q>,
    admit: Option<Quota>,
    key: &str,
    value: &[u8],
) -> ScalarQuery<'q> {
    let Some(quota) = admit else { return query };
    let limit = |n: Option<u64>| n.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
    query
        .bind(limit(quota.items))
        .bind(limit(quota.bytes))
        .bind((key.len() + value.len()) as i64)
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
        self.kv_set(ns, key, value, ttl_ms, Quota::UNLIMITED).await
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
        .fetch_all(&mut *self.reader().await.map_err(failed)?)
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
        let write = Write::Swap {
            expected,
            value,
            expires_at: expiry(ttl_ms),
        };
        self.kv_write(ns, key, write, Quota::UNLIMITED, false).await
    }

    async fn increment(&self, ns: &Namespace, key: &str, delta: i64) -> Result<i64, CapError> {
        self.kv_increment(ns, key, delta, Quota::UNLIMITED, None)
            .await?
            .ok_or_else(|| CapError::Failed(format!("increment of `{key}` was not written")))
    }
}

#[async_trait]
impl KeyValue for TenantKv {
    async fn get(&self, ns: &Namespace, key: &str) -> Result<Option<Entry>, CapError> {
        self.store.get(ns, key).await
    }

    async fn set(
        &self,
        ns: &Namespace,
        key: &str,
        value: &[u8],
        ttl_ms: Option<u64>,
    ) -> Result<u64, CapError> {
        self.store.kv_set(ns, key, value, ttl_ms, self.quota).await
    }

    async fn delete(&self, ns: &Namespace, key: &str) -> Result<bool, CapError> {
        self.store.delete(ns, key).await
    }

    async fn list(
        &self,
        ns: &Namespace,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<KeyPage, CapError> {
        self.store.list(ns, prefix, cursor, limit).await
    }

    async fn compare_and_swap(
        &self,
        ns: &Namespace,
        key: &str,
        expected: u64,
        value: &[u8],
        ttl_ms: Option<u64>,
    ) -> Result<Option<u64>, CapError> {
        let write = Write::Swap {
            expected,
            value,
            expires_at: expiry(ttl_ms),
        };
        self.store.kv_write(ns, key, write, self.quota, false).await
    }

    async fn increment(&self, ns: &Namespace, key: &str, delta: i64) -> Result<i64, CapError> {
        self.store
            .kv_increment(ns, key, delta, self.quota, None)
            .await?
            .ok_or_else(|| CapError::Failed(format!("increment of `{key}` was not written")))
    }
}

#[cfg(test)]
mod tests {
    //! Every test runs on SQLite, and on PostgreSQL when `ORQUESTA_TEST_POSTGRES_URL` is
    //! set (`.ci/run` sets it; without it those runs are listed as ignored). Tenant names
    //! are fresh per run, so runs never collide.
    use super::*;
    use crate::store::testing::{Stores, each_store, postgres, store_test, tenant};

    fn ns() -> Namespace {
        Namespace::private(&tenant("acme"), "p")
    }

    store_test!(set_get_delete_and_versions);
    async fn set_get_delete_and_versions(stores: Stores) {
        each_store(stores, |s| async move {
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

    store_test!(expired_items_are_absent_and_restart_at_version_1);
    async fn expired_items_are_absent_and_restart_at_version_1(stores: Stores) {
        each_store(stores, |s| async move {
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

    store_test!(list_by_prefix_pages_with_a_cursor);
    async fn list_by_prefix_pages_with_a_cursor(stores: Stores) {
        each_store(stores, |s| async move {
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

    store_test!(compare_and_swap_writes_only_on_the_expected_version);
    async fn compare_and_swap_writes_only_on_the_expected_version(stores: Stores) {
        each_store(stores, |s| async move {
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

    store_test!(increment_counts_from_zero_refuses_text_and_overflow);
    async fn increment_counts_from_zero_refuses_text_and_overflow(stores: Stores) {
        each_store(stores, |s| async move {
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

    store_test!(concurrent_increments_are_all_counted);
    async fn concurrent_increments_are_all_counted(stores: Stores) {
        // A file, not memory: several connections race for real.
        let dir = tempfile::tempdir().unwrap();
        let s = match stores {
            Stores::Embedded => Store::open_sqlite(&dir.path().join("kv.db")).await.unwrap(),
            Stores::Postgres => postgres().await,
        };
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

    store_test!(capped_increments_stop_at_the_cap_across_hosts);
    /// A usage quota's count: two hosts on one database racing past the cap count up to
    /// it and no further, and a refused increment writes nothing.
    async fn capped_increments_stop_at_the_cap_across_hosts(stores: Stores) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.db");
        let (a, b) = match stores {
            Stores::Embedded => (
                Store::open_sqlite(&path).await.unwrap(),
                Store::open_sqlite(&path).await.unwrap(),
            ),
            Stores::Postgres => (postgres().await, postgres().await),
        };
        let ns = Namespace::shared(&tenant("acme"), "usage");
        let tasks: Vec<_> = (0..40)
            .map(|i| {
                let s = if i % 2 == 0 { a.clone() } else { b.clone() };
                let ns = ns.clone();
                tokio::spawn(async move { s.increment_capped(&ns, "m", 1, Some(25)).await })
            })
            .collect();
        let mut counted = Vec::new();
        for t in tasks {
            counted.extend(t.await.unwrap().unwrap());
        }
        counted.sort();
        assert_eq!(counted, (1..=25).collect::<Vec<i64>>(), "{:?}", a.backend());
        let value = b.get(&ns, "m").await.unwrap().unwrap().value;
        assert_eq!(value, b"25", "{:?}", a.backend());
        // A higher cap lets the count go on from where it stopped.
        assert_eq!(
            a.increment_capped(&ns, "m", 1, Some(26)).await.unwrap(),
            Some(26)
        );
    }

    store_test!(namespaces_do_not_see_each_other);
    async fn namespaces_do_not_see_each_other(stores: Stores) {
        each_store(stores, |s| async move {
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

    fn quota(items: u64, bytes: u64) -> Quota {
        Quota {
            items: Some(items),
            bytes: Some(bytes),
        }
    }

    /// The usage row says what the table holds.
    async fn assert_usage_is_the_tables(s: &Store, tenant: &str) -> Usage {
        let (items, bytes): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), CAST(SUM(octet_length(key) + octet_length(value)) AS BIGINT)
             FROM kv_items WHERE tenant = $1 AND substr(scope, 1, 6) <> 'usage:'",
        )
        .bind(tenant)
        .fetch_one(&mut *s.reader().await.unwrap())
        .await
        .unwrap();
        let usage = s.storage_usage(tenant, Kind::Kv).await.unwrap();
        assert_eq!((usage.items, usage.bytes), (items, bytes.unwrap_or(0)));
        usage
    }

    store_test!(the_kv_quota_refuses_growth_and_deletes_free_room);
    async fn the_kv_quota_refuses_growth_and_deletes_free_room(stores: Stores) {
        each_store(stores, |s| async move {
            let ns = ns();
            let kv = TenantKv {
                store: s.clone(),
                quota: quota(2, 100),
            };
            kv.set(&ns, "a", b"1", None).await.unwrap();
            kv.set(&ns, "b", b"1", None).await.unwrap();
            let err = kv.set(&ns, "c", b"1", None).await.unwrap_err();
            assert!(matches!(err, CapError::Denied(_)), "{err}");
            assert!(err.to_string().contains("limits.kv_items = 2"), "{err}");
            for refused in [
                kv.compare_and_swap(&ns, "c", 0, b"1", None)
                    .await
                    .map(|_| 0),
                kv.increment(&ns, "c", 1).await,
            ] {
                assert!(matches!(refused, Err(CapError::Denied(_))), "{refused:?}");
            }
            assert_eq!(s.get(&ns, "c").await.unwrap(), None, "nothing written");
            // What is there may change at the limit; an increment that grows the value is
            // checked too.
            kv.set(&ns, "a", b"22", None).await.unwrap();
            assert_eq!(kv.increment(&ns, "b", 8).await.unwrap(), 9);
            assert_eq!(kv.increment(&ns, "b", 1).await.unwrap(), 10);
            let err = kv.set(&ns, "a", &[0; 100], None).await.unwrap_err();
            assert!(err.to_string().contains("limits.kv_mb"), "{err}");
            // A swap is checked as a set is; one over another version is a mismatch.
            let version = s.get(&ns, "b").await.unwrap().unwrap().version;
            let err = kv
                .compare_and_swap(&ns, "b", version, &[0; 100], None)
                .await
                .unwrap_err();
            assert!(err.to_string().contains("limits.kv_mb"), "{err}");
            let stale = kv.compare_and_swap(&ns, "b", version + 1, b"11", None);
            assert_eq!(stale.await.unwrap(), None);
            let swapped = kv.compare_and_swap(&ns, "b", version, b"11", None);
            assert_eq!(swapped.await.unwrap(), Some(version + 1));
            // The host's usage-plan counters are not the tenant's.
            let plan = Namespace {
                tenant: ns.tenant.clone(),
                scope: "usage:standard:partner".into(),
            };
            s.increment(&plan, "2026-12", 1).await.unwrap();
            assert_eq!(
                assert_usage_is_the_tables(&s, &ns.tenant).await,
                Usage {
                    items: 2,
                    bytes: 1 + 2 + 1 + 2
                }
            );
            assert!(kv.delete(&ns, "a").await.unwrap());
            kv.set(&ns, "c", b"1", None).await.unwrap();
            assert_eq!(assert_usage_is_the_tables(&s, &ns.tenant).await.items, 2);
        })
        .await;
    }

    store_test!(expired_items_make_room_for_a_refused_write);
    async fn expired_items_make_room_for_a_refused_write(stores: Stores) {
        each_store(stores, |s| async move {
            let ns = ns();
            let kv = TenantKv {
                store: s.clone(),
                quota: quota(1, 1000),
            };
            kv.set(&ns, "old", b"x", Some(50)).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            kv.set(&ns, "new", b"y", None).await.unwrap();
            let err = kv.set(&ns, "newer", b"z", None).await.unwrap_err();
            assert!(matches!(err, CapError::Denied(_)), "{err}");
            assert_eq!(assert_usage_is_the_tables(&s, &ns.tenant).await.items, 1);
        })
        .await;
    }

    /// Two hosts on one PostgreSQL database writing at once stop at the quota exactly.
    #[tokio::test]
    #[cfg_attr(no_postgres, ignore = "ORQUESTA_TEST_POSTGRES_URL is not set")]
    async fn the_kv_quota_holds_across_hosts_on_postgres() {
        let (a, b) = (postgres().await, postgres().await);
        let ns = ns();
        let tasks: Vec<_> = (0..40)
            .map(|i| {
                let kv = TenantKv {
                    store: if i % 2 == 0 { a.clone() } else { b.clone() },
                    quota: quota(10, 1 << 20),
                };
                let ns = ns.clone();
                tokio::spawn(async move { kv.set(&ns, &format!("k{i}"), b"v", None).await })
            })
            .collect();
        let mut written = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => written += 1,
                Err(CapError::Denied(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(written, 10);
        assert_eq!(assert_usage_is_the_tables(&a, &ns.tenant).await.items, 10);
    }
}
