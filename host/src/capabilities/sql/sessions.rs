//! Ending a server-side statement that outlives its deadline, from outside its session.
//!
//! The session's own timeout (`statement_timeout`, `max_statement_time`) stops a
//! statement in the normal case, but a plugin can turn it off (`SET statement_timeout =
//! 0`) or catch the cancel (PL/pgSQL `EXCEPTION WHEN query_canceled`, a MySQL handler).
//! So once the host has given up on a statement and it has run its full time in the
//! server, the host ends every session of that pool whose current statement has run past
//! the timeout: by definition statements no one waits for. The session ids are learnt
//! when each connection opens; ending one is allowed to the role that owns it
//! (`pg_terminate_backend`, `KILL`), so this needs no extra privilege.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::mysql::MySqlConnectOptions;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection as _, Executor as _, MySql, Pool, Postgres};

/// Session ids kept per pool: more than a pool's connections (at most 20), since pools
/// replace their connections over time.
const KEPT: usize = 64;

/// A pool's server sessions, newest last.
#[derive(Default)]
pub(super) struct Sessions {
    ids: Mutex<VecDeque<i64>>,
    /// MariaDB reports a statement's time in milliseconds (`TIME_MS`); MySQL in seconds.
    pub(super) mariadb: std::sync::atomic::AtomicBool,
}

impl Sessions {
    pub(super) fn opened(&self, id: i64) {
        if let Ok(mut ids) = self.ids.lock() {
            if ids.len() == KEPT {
                ids.pop_front();
            }
            ids.push_back(id);
        }
    }

    fn ids(&self) -> Vec<i64> {
        self.ids
            .lock()
            .map(|ids| ids.iter().copied().collect())
            .unwrap_or_default()
    }

    /// How long after a statement started to look for it: its timeout, and a margin for
    /// the server to have stopped it itself (a second on MySQL, which counts seconds).
    pub(super) fn grace(&self, timeout: Duration) -> Duration {
        if self.mariadb.load(std::sync::atomic::Ordering::Relaxed) {
            timeout + Duration::from_millis(100)
        } else {
            Duration::from_secs(timeout.as_secs() + 2)
        }
    }
}

/// Ends the sessions of `pool` whose statement has run longer than `timeout`; how many.
pub(super) async fn end_overdue_postgres(
    pool: &Pool<Postgres>,
    sessions: &Sessions,
    timeout: Duration,
) -> Result<usize, sqlx::Error> {
    let ids: Vec<i32> = sessions
        .ids()
        .into_iter()
        .filter_map(|id| i32::try_from(id).ok())
        .collect();
    let overdue = sqlx::query_scalar::<_, bool>(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE pid = ANY($1) AND state = 'active' \
         AND query_start < clock_timestamp() - make_interval(secs => $2)",
    )
    .bind(ids)
    .bind(timeout.as_secs_f64());
    // An idle connection of the pool if there is one, else a connection of its own:
    // the overdue statements may hold them all.
    Ok(match pool.try_acquire() {
        Some(mut conn) => overdue.fetch_all(&mut *conn).await?.len(),
        None => {
            let options: Arc<PgConnectOptions> = pool.connect_options();
            let mut conn = sqlx::PgConnection::connect_with(&options).await?;
            let n = overdue.fetch_all(&mut conn).await?.len();
            conn.close().await?;
            n
        }
    })
}

/// The same on MySQL / MariaDB (`KILL` ends the session).
pub(super) async fn end_overdue_mysql(
    pool: &Pool<MySql>,
    sessions: &Sessions,
    timeout: Duration,
) -> Result<usize, sqlx::Error> {
    let ids = sessions.ids();
    if ids.is_empty() {
        return Ok(0);
    }
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let overdue = if sessions.mariadb.load(std::sync::atomic::Ordering::Relaxed) {
        format!(
            "SELECT CAST(ID AS SIGNED) FROM information_schema.PROCESSLIST WHERE ID IN ({list}) \
             AND COMMAND IN ('Query', 'Execute') AND TIME_MS > {}",
            timeout.as_millis()
        )
    } else {
        format!(
            "SELECT CAST(ID AS SIGNED) FROM information_schema.PROCESSLIST WHERE ID IN ({list}) \
             AND COMMAND IN ('Query', 'Execute') AND TIME > {}",
            timeout.as_secs()
        )
    };
    let mut own;
    let mut pooled;
    let conn: &mut sqlx::MySqlConnection = match pool.try_acquire() {
        Some(conn) => {
            pooled = conn;
            &mut pooled
        }
        None => {
            let options: Arc<MySqlConnectOptions> = pool.connect_options();
            own = sqlx::MySqlConnection::connect_with(&options).await?;
            &mut own
        }
    };
    let ids: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(overdue))
        .fetch_all(&mut *conn)
        .await?;
    for id in &ids {
        conn.execute(sqlx::AssertSqlSafe(format!("KILL {id}")))
            .await?;
    }
    Ok(ids.len())
}
