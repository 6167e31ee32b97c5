//! `orquesta:plugin/sql`: statements against the databases the tenant names in its config
//! (`[databases.NAME]`) and grants the plugin. Parameters are always bound. One pool per
//! tenant database, shared by every invocation and capped by `max_connections`.
//!
//! Each statement has a deadline (`statement_timeout_ms`) that stops it in the database,
//! not only in the host: a progress handler on SQLite ([`sqlite`]), the session's
//! `statement_timeout` on PostgreSQL and `max_statement_time` / `max_execution_time` on
//! MariaDB / MySQL. A query's rows are converted as they stream in and stop at
//! `SQL_MAX_ROWS` rows or `SQL_MAX_RESULT_BYTES` bytes. On SQLite the connection itself is
//! locked down so SQL reaches no file but the tenant's own; on the servers that is the
//! tenant's database role's business (docs/TENANTS.md).

mod config;
mod sessions;
mod sqlite;

pub use config::{
    DatabaseConfig, DatabaseError, DatabaseUrl, SqlConfigError, read_init_scripts, validate,
};

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::TryStreamExt as _;
use sqlx::any::{AnyRow, AnyTypeInfoKind};
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{
    Arguments as _, AssertSqlSafe, Column as _, Database as SqlxDatabase, Encode, Executor,
    IntoArguments, MySql, Pool, Postgres, Row as _, Sqlite, Type, ValueRef as _,
};
use tokio::time::Instant;

use self::sessions::Sessions;
use super::{CapError, Grant};
use crate::bindings::sql::Host;
use crate::bindings::types::HostError;
use crate::engine::Invocation;
use crate::engine::limits::capability::{
    SQL_IDLE_CLOSE, SQL_INIT_TIMEOUT_S, SQL_MAX_RESULT_BYTES, SQL_MAX_ROWS, SQL_MAX_VALUE_BYTES,
};
use crate::store::held::{Connect, Held};

pub use crate::bindings::sql::{Rows, Value as SqlValue};

/// The tenant's databases (`[databases.NAME]`).
pub const DATABASES: Grant = Grant {
    key: "databases",
    names: "database",
};

pub const CAPABILITY: super::Capability = super::Capability {
    interface: "sql",
    grants: &[DATABASES],
};

/// A tenant's databases, by name.
#[async_trait]
pub trait SqlDatabases: Send + Sync {
    async fn query(
        &self,
        database: &str,
        statement: &str,
        params: Vec<SqlValue>,
    ) -> Result<Rows, CapError>;
    /// Rows affected.
    async fn execute(
        &self,
        database: &str,
        statement: &str,
        params: Vec<SqlValue>,
    ) -> Result<u64, CapError>;
}

/// Checks a database URL's scheme; returns the URL sqlx understands.
pub fn check_url(url: &str) -> Result<String, SqlConfigError> {
    let scheme = url.split(':').next().unwrap_or_default();
    match scheme {
        "sqlite" | "postgres" | "postgresql" | "mysql" => Ok(url.to_string()),
        "mariadb" => Ok(format!("mysql{}", &url["mariadb".len()..])),
        _ => Err(SqlConfigError::UnsupportedScheme(scheme.to_string())),
    }
}

/// Whether the URL carries a password (`scheme://user:password@host`).
pub fn has_password(url: &str) -> bool {
    let Some(rest) = url.split_once("://").map(|(_, r)| r) else {
        return false;
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

/// A tenant database's pool, typed per engine: SQLite's connection handle must be
/// reached to lock it down, and each server gets its own session settings (and its
/// sessions are known, to end a statement that outlives its deadline).
enum Pools {
    /// Held open and lent in turn ([`Held`]): a statement is one round trip to the
    /// connection's thread, where sqlx's pool added two.
    Sqlite(Held<sqlite::Connection>, Arc<AtomicU64>),
    Postgres(Pool<Postgres>, Arc<Sessions>),
    MySql(Pool<MySql>, Arc<Sessions>),
}

struct Database {
    pools: Pools,
    timeout: Duration,
    /// The `init` script, run once before the first statement (again after a failure).
    init: Option<(String, tokio::sync::OnceCell<()>)>,
}

/// The pools of one tenant's databases. Pools connect lazily: a database that is down
/// fails the statements that need it, not the tenant's load.
pub struct TenantDatabases {
    databases: BTreeMap<String, Database>,
}

impl TenantDatabases {
    /// Pools for `configs`; relative SQLite paths live under `data_dir`.
    pub fn new(
        configs: &BTreeMap<String, DatabaseConfig>,
        data_dir: &Path,
    ) -> Result<Self, DatabaseError> {
        let mut databases = BTreeMap::new();
        for (name, config) in configs {
            let timeout = Duration::from_millis(config.statement_timeout_ms);
            let pools = config
                .url
                .resolve()
                .map_err(SqlConfigError::from)
                .and_then(|u| check_url(&u))
                .and_then(|u| sqlite_under(&u, data_dir))
                .and_then(|url| {
                    pools(&url, config.max_connections, timeout)
                        .map_err(|e| SqlConfigError::Pool(e.to_string()))
                })
                .map_err(|reason| DatabaseError {
                    name: name.clone(),
                    reason,
                })?;
            databases.insert(
                name.clone(),
                Database {
                    pools,
                    timeout,
                    init: config
                        .init_sql
                        .clone()
                        .map(|sql| (sql, tokio::sync::OnceCell::new())),
                },
            );
        }
        Ok(TenantDatabases { databases })
    }

    /// The database, its `init` script run.
    async fn database(&self, name: &str) -> Result<&Database, CapError> {
        let db = self.databases.get(name).ok_or_else(|| {
            CapError::Denied(format!(
                "database `{name}` is not one of the tenant's databases"
            ))
        })?;
        if let Some((sql, done)) = &db.init {
            done.get_or_try_init(|| async {
                // The tenant's own file, as trusted as its config, but held to the same
                // guard as the plugins' statements.
                let limit = Duration::from_secs(SQL_INIT_TIMEOUT_S);
                db.run(name, Work::Script, sql.clone(), Vec::new(), limit)
                    .await
                    .map(drop)
                    .map_err(|e| match e {
                        CapError::Timeout(_) => CapError::Timeout(format!(
                            "database `{name}`: its init script ran past {SQL_INIT_TIMEOUT_S} s"
                        )),
                        CapError::Denied(m)
                        | CapError::Unavailable(m)
                        | CapError::Invalid(m)
                        | CapError::Conflict(m)
                        | CapError::Failed(m) => {
                            let m = m
                                .strip_prefix(&format!("database `{name}`: "))
                                .unwrap_or(&m);
                            CapError::Failed(format!(
                                "database `{name}`: its init script failed: {m}"
                            ))
                        }
                    })
            })
            .await?;
        }
        Ok(db)
    }
}

/// A pool for `url` whose connections stop statements at `timeout` in the database.
fn pools(url: &str, max_connections: u32, timeout: Duration) -> Result<Pools, sqlx::Error> {
    let ms = timeout.as_millis();
    Ok(match url.split(':').next().unwrap_or_default() {
        "sqlite" => {
            // A statement waiting for a lock gives up with its deadline.
            let options = SqliteConnectOptions::from_str(url)?.busy_timeout(timeout);
            let connect: Connect<sqlite::Connection> = Arc::new(move || {
                Box::pin(sqlite::Connection::open(
                    options.clone(),
                    SQL_MAX_VALUE_BYTES,
                ))
            });
            // Its connection failures.
            let failures = Arc::new(AtomicU64::new(0));
            let count = failures.clone();
            Pools::Sqlite(
                Held::new(
                    max_connections as usize,
                    connect,
                    Arc::new(move || count.load(Ordering::Acquire)),
                    Some(SQL_IDLE_CLOSE),
                ),
                failures,
            )
        }
        "postgres" | "postgresql" => {
            let sessions = Arc::new(Sessions::default());
            let known = sessions.clone();
            Pools::Postgres(
                PgPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(timeout)
                    .after_connect(move |conn, _| {
                        let known = known.clone();
                        Box::pin(async move {
                            let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
                                .fetch_one(&mut *conn)
                                .await?;
                            known.opened(pid.into());
                            Ok(())
                        })
                    })
                    .connect_lazy_with(
                        PgConnectOptions::from_str(url)?
                            .options([("statement_timeout", format!("{ms}ms"))]),
                    ),
                sessions,
            )
        }
        _ => {
            let sessions = Arc::new(Sessions::default());
            let known = sessions.clone();
            Pools::MySql(
                MySqlPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(timeout)
                    .after_connect(move |conn, _| {
                        let known = known.clone();
                        Box::pin(async move {
                            let (version, id): (String, i64) =
                                sqlx::query_as("SELECT VERSION(), CAST(CONNECTION_ID() AS SIGNED)")
                                    .fetch_one(&mut *conn)
                                    .await?;
                            known.opened(id);
                            // MariaDB bounds every statement (seconds); MySQL only
                            // SELECTs (ms). A little past the host's own deadline, so the
                            // plugin is always told `timeout`: MariaDB ends some statements
                            // (BENCHMARK) at its limit with a result instead of an error.
                            let ms = ms + u128::from(SERVER_DEADLINE_MARGIN_MS);
                            let set = if version.contains("MariaDB") {
                                known
                                    .mariadb
                                    .store(true, std::sync::atomic::Ordering::Relaxed);
                                format!("SET SESSION max_statement_time = {}", ms as f64 / 1000.0)
                            } else {
                                format!("SET SESSION max_execution_time = {ms}")
                            };
                            conn.execute(AssertSqlSafe(set)).await.map(drop)
                        })
                    })
                    .connect_lazy_with(MySqlConnectOptions::from_str(url)?),
                sessions,
            )
        }
    })
}

/// What a statement is run for.
#[derive(Clone, Copy)]
enum Work {
    Query,
    Execute,
    /// Several statements, no parameters (the `init` script).
    Script,
}

enum Done {
    Rows(Rows),
    Affected(u64),
}

/// Why a statement stopped: the database's error, or one of the capability's caps.
enum Stop {
    Sql(sqlx::Error),
    Cap(CapError),
}

impl From<CapError> for Stop {
    fn from(e: CapError) -> Self {
        Stop::Cap(e)
    }
}

impl From<sqlx::Error> for Stop {
    fn from(e: sqlx::Error) -> Self {
        Stop::Sql(e)
    }
}

impl Database {
    /// One statement on a connection of the pool, all within `limit`: the connection's
    /// wait, the statement, and the rows' conversion.
    async fn run(
        &self,
        name: &str,
        work: Work,
        statement: String,
        params: Vec<SqlValue>,
        limit: Duration,
    ) -> Result<Done, CapError> {
        let deadline = Instant::now() + limit;
        // When the statement went to a server, if it did.
        let sent = std::sync::OnceLock::new();
        let run = async {
            match &self.pools {
                Pools::Sqlite(held, failures) => {
                    let args = bind::<Sqlite>(params)?;
                    let mut lent = held
                        .take()
                        .await
                        .inspect_err(|e| sqlite::note_failure(failures, e))?;
                    let mut armed = lent.arm(deadline.into_std()).await?;
                    let done = run_on::<Sqlite>(armed.conn(), work, statement, args, |r| {
                        r.rows_affected()
                    })
                    .await;
                    match &done {
                        Ok(_) => armed.finished(),
                        // A failure or a cap may come while SQLite still steps through
                        // rows: `armed` dropped stops it.
                        Err(Stop::Sql(e)) => sqlite::note_failure(failures, e),
                        Err(Stop::Cap(_)) => {}
                    }
                    done
                }
                Pools::Postgres(pool, _) => {
                    let mut conn = pool.acquire().await?;
                    let _ = sent.set(Instant::now());
                    let args = bind::<Postgres>(params)?;
                    run_on::<Postgres>(&mut conn, work, statement, args, |r| r.rows_affected())
                        .await
                }
                Pools::MySql(pool, _) => {
                    let mut conn = pool.acquire().await?;
                    let _ = sent.set(Instant::now());
                    let args = bind::<MySql>(params)?;
                    run_on::<MySql>(&mut conn, work, statement, args, |r| r.rows_affected()).await
                }
            }
        };
        match tokio::time::timeout_at(deadline, run).await {
            Ok(Ok(done)) => Ok(done),
            Ok(Err(Stop::Cap(e))) => Err(e),
            Ok(Err(Stop::Sql(e))) => Err(failed(name, e, limit)),
            Err(_) => {
                if let Some(&sent) = sent.get() {
                    self.end_if_overdue(name, sent, limit);
                }
                Err(past_deadline(name, limit))
            }
        }
    }

    /// Once a statement sent at `sent` has had its full time in the server, ends it (and
    /// any other of the pool's statements past the timeout) if the server has not.
    fn end_if_overdue(&self, name: &str, sent: Instant, limit: Duration) {
        let name = name.to_string();
        let (ended, grace) = match &self.pools {
            Pools::Sqlite(..) => return,
            Pools::Postgres(pool, sessions) => {
                let (pool, sessions) = (pool.clone(), sessions.clone());
                let grace = sessions.grace(limit);
                let end =
                    async move { sessions::end_overdue_postgres(&pool, &sessions, limit).await };
                (Box::pin(end) as Overdue, grace)
            }
            Pools::MySql(pool, sessions) => {
                let (pool, sessions) = (pool.clone(), sessions.clone());
                let grace = sessions.grace(limit);
                let end = async move { sessions::end_overdue_mysql(&pool, &sessions, limit).await };
                (Box::pin(end) as Overdue, grace)
            }
        };
        tokio::spawn(async move {
            tokio::time::sleep_until(sent + grace).await;
            match ended.await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(
                    database = %name,
                    sessions = n,
                    "ended database sessions whose statements ran past their timeout"
                ),
                Err(e) => tracing::warn!(
                    database = %name,
                    error = %e,
                    "could not end statements past their timeout"
                ),
            }
        });
    }
}

/// Ends a pool's overdue statements; how many it ended.
type Overdue = futures::future::BoxFuture<'static, Result<usize, sqlx::Error>>;

/// `statement` on `conn`; a query's rows converted as they arrive, up to the caps.
async fn run_on<DB>(
    conn: &mut DB::Connection,
    work: Work,
    statement: String,
    args: DB::Arguments,
    affected: fn(&DB::QueryResult) -> u64,
) -> Result<Done, Stop>
where
    DB: SqlxDatabase,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'r> AnyRow: TryFrom<&'r DB::Row, Error = sqlx::Error>,
{
    // The plugin's text is run as given; its values only ever travel as parameters.
    let statement = AssertSqlSafe(statement);
    match work {
        Work::Script => {
            let done = sqlx::raw_sql(statement).execute(conn).await?;
            Ok(Done::Affected(affected(&done)))
        }
        Work::Execute => {
            let done = sqlx::query_with(statement, args).execute(conn).await?;
            Ok(Done::Affected(affected(&done)))
        }
        Work::Query => {
            let mut stream = sqlx::query_with(statement, args).fetch(conn);
            let mut columns = Vec::new();
            let mut rows = Vec::new();
            let mut held = 0;
            while let Some(row) = stream.try_next().await? {
                if rows.len() == SQL_MAX_ROWS {
                    return Err(Stop::Cap(CapError::Invalid(format!(
                        "the query returned more than {SQL_MAX_ROWS} rows; page with LIMIT"
                    ))));
                }
                let row = AnyRow::try_from(&row)?;
                if rows.is_empty() {
                    columns = row.columns().iter().map(|c| c.name().to_string()).collect();
                    held += columns.iter().map(String::len).sum::<usize>();
                }
                let values = (0..row.len())
                    .map(|i| value_of(&row, i))
                    .collect::<Result<Vec<_>, _>>()?;
                held += values.iter().map(held_bytes).sum::<usize>();
                if held > SQL_MAX_RESULT_BYTES {
                    return Err(Stop::Cap(CapError::Invalid(format!(
                        "the query's rows came to more than {SQL_MAX_RESULT_BYTES} bytes \
                         (SQL_MAX_RESULT_BYTES); page with LIMIT or select fewer columns"
                    ))));
                }
                rows.push(values);
            }
            Ok(Done::Rows(Rows { columns, rows }))
        }
    }
}

/// What the host holds for one value.
fn held_bytes(value: &SqlValue) -> usize {
    std::mem::size_of::<SqlValue>()
        + match value {
            SqlValue::Text(t) => t.len(),
            SqlValue::Blob(b) => b.len(),
            _ => 0,
        }
}

fn bind<DB>(params: Vec<SqlValue>) -> Result<DB::Arguments, CapError>
where
    DB: SqlxDatabase,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> f64: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> Vec<u8>: Encode<'q, DB> + Type<DB>,
{
    let mut args = DB::Arguments::default();
    for p in params {
        let added = match p {
            SqlValue::Null => args.add(Option::<String>::None),
            SqlValue::Boolean(b) => args.add(b),
            SqlValue::Integer(i) => args.add(i),
            SqlValue::Real(f) => args.add(f),
            SqlValue::Text(t) => args.add(t),
            SqlValue::Blob(b) => args.add(b),
        };
        added.map_err(|e| CapError::Invalid(format!("cannot bind a parameter: {e}")))?;
    }
    Ok(args)
}

/// A relative SQLite file goes under `data_dir` (created as needed), so tenants share
/// no files by accident; `sqlite::memory:` and absolute paths are kept.
fn sqlite_under(url: &str, data_dir: &Path) -> Result<String, SqlConfigError> {
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return Ok(url.to_string());
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path == ":memory:" || path.starts_with('/') {
        return Ok(url.to_string());
    }
    let file = data_dir.join(path);
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| SqlConfigError::DataDir {
            dir: dir.to_path_buf(),
            error: e.to_string(),
        })?;
    }
    let query = if query.is_empty() { "mode=rwc" } else { query };
    crate::store::sqlite_url(&file, query).map_err(|e| SqlConfigError::SqliteFile {
        error: e.to_string(),
        file,
    })
}

fn value_of(row: &AnyRow, i: usize) -> Result<SqlValue, sqlx::Error> {
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(SqlValue::Null);
    }
    let kind = raw.type_info().kind();
    Ok(match kind {
        AnyTypeInfoKind::Null => SqlValue::Null,
        AnyTypeInfoKind::Bool => SqlValue::Boolean(row.try_get(i)?),
        AnyTypeInfoKind::SmallInt | AnyTypeInfoKind::Integer | AnyTypeInfoKind::BigInt => {
            SqlValue::Integer(row.try_get(i)?)
        }
        AnyTypeInfoKind::Real | AnyTypeInfoKind::Double => SqlValue::Real(row.try_get(i)?),
        AnyTypeInfoKind::Text => SqlValue::Text(row.try_get(i)?),
        AnyTypeInfoKind::Blob => SqlValue::Blob(row.try_get(i)?),
    })
}

/// How long past the host's deadline the MySQL/MariaDB server's own limit stops a
/// statement: the host answers `timeout` first, the server frees the session just after.
const SERVER_DEADLINE_MARGIN_MS: u64 = 200;

/// A database error as the plugin sees it: the driver's message, which names the
/// problem (syntax, constraint, missing table) without the connection details; a
/// statement the database stopped at its deadline is a timeout, one the SQLite guard
/// refused is denied, a value past the size cap is invalid.
fn failed(database: &str, e: sqlx::Error, limit: Duration) -> CapError {
    match e {
        sqlx::Error::Database(db) => {
            let message = db.message();
            // SQLite's code is the extended one; its low byte is the primary code.
            let sqlite_code = db
                .try_downcast_ref::<sqlx::sqlite::SqliteError>()
                .and_then(|_| db.code()?.parse::<i32>().ok())
                .map(|code| code & 0xff);
            let timed_out = sqlite_code == Some(sqlite::INTERRUPTED)
                || db
                    .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                    .is_some_and(|e| e.code() == "57014")
                || db
                    .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                    // max_statement_time (MariaDB), max_execution_time (MySQL).
                    .is_some_and(|e| matches!(e.number(), 1969 | 3024));
            if timed_out {
                past_deadline(database, limit)
            } else if sqlite_code == Some(sqlite::NOT_AUTHORIZED)
                // A refused function is reported as a plain error with this message.
                || (sqlite_code.is_some() && message.starts_with("not authorized"))
            {
                CapError::Denied(format!(
                    "database `{database}`: {message}: SQL may not attach databases, \
                     vacuum, load extensions, call file functions or run this pragma"
                ))
            } else if sqlite_code == Some(sqlite::TOO_BIG) {
                CapError::Invalid(format!(
                    "database `{database}`: {message}: a value may be at most \
                     {SQL_MAX_VALUE_BYTES} bytes (SQL_MAX_VALUE_BYTES)"
                ))
            } else {
                CapError::Failed(format!("database `{database}`: {message}"))
            }
        }
        sqlx::Error::PoolTimedOut => CapError::Timeout(format!(
            "database `{database}`: no connection free within the statement timeout"
        )),
        other => CapError::Failed(format!("database `{database}`: {other}")),
    }
}

fn past_deadline(database: &str, limit: Duration) -> CapError {
    CapError::Timeout(format!(
        "database `{database}`: the statement ran past {} ms",
        limit.as_millis()
    ))
}

#[async_trait]
impl SqlDatabases for TenantDatabases {
    async fn query(
        &self,
        database: &str,
        statement: &str,
        params: Vec<SqlValue>,
    ) -> Result<Rows, CapError> {
        let db = self.database(database).await?;
        let statement = statement.to_string();
        match db
            .run(database, Work::Query, statement, params, db.timeout)
            .await?
        {
            Done::Rows(rows) => Ok(rows),
            Done::Affected(_) => Ok(Rows {
                columns: Vec::new(),
                rows: Vec::new(),
            }),
        }
    }

    async fn execute(
        &self,
        database: &str,
        statement: &str,
        params: Vec<SqlValue>,
    ) -> Result<u64, CapError> {
        let db = self.database(database).await?;
        let statement = statement.to_string();
        match db
            .run(database, Work::Execute, statement, params, db.timeout)
            .await?
        {
            Done::Affected(n) => Ok(n),
            Done::Rows(rows) => Ok(rows.rows.len() as u64),
        }
    }
}

impl Host for Invocation {
    async fn query(
        &mut self,
        database: String,
        statement: String,
        params: Vec<SqlValue>,
    ) -> Result<Rows, HostError> {
        self.ctx.capabilities.grants.check(DATABASES, &database)?;
        let sql = &self.ctx.capabilities.backends.sql;
        Ok(sql.query(&database, &statement, params).await?)
    }

    async fn execute(
        &mut self,
        database: String,
        statement: String,
        params: Vec<SqlValue>,
    ) -> Result<u64, HostError> {
        self.ctx.capabilities.grants.check(DATABASES, &database)?;
        let sql = &self.ctx.capabilities.backends.sql;
        Ok(sql.execute(&database, &statement, params).await?)
    }
}

/// The answer where this host has no sql backend.
#[async_trait]
impl SqlDatabases for super::Unavailable {
    async fn query(&self, _: &str, _: &str, _: Vec<SqlValue>) -> Result<Rows, CapError> {
        super::unavailable::answer("sql")
    }
    async fn execute(&self, _: &str, _: &str, _: Vec<SqlValue>) -> Result<u64, CapError> {
        super::unavailable::answer("sql")
    }
}

/// The tenant's databases, relative SQLite paths under
/// `<data_dir>/databases/<tenant>/`.
pub fn backend(
    host: &super::HostResources,
    tenant: &super::TenantResources,
) -> Result<Arc<dyn SqlDatabases>, DatabaseError> {
    let dir = host.data_dir.join("databases").join(tenant.name);
    Ok(Arc::new(TenantDatabases::new(
        &tenant.sections.databases,
        &dir,
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_passwords_spotted() {
        assert_eq!(check_url("mariadb://u@h/db").unwrap(), "mysql://u@h/db");
        assert_eq!(
            check_url("redis://h"),
            Err(SqlConfigError::UnsupportedScheme("redis".into()))
        );
        assert!(has_password("postgres://u:secret@h/db"));
        assert!(!has_password("postgres://u@h/db"));
        assert!(!has_password("sqlite://data/a:b.db"));
        assert!(!has_password("mysql://root@127.0.0.1:3306/test"));
    }

    /// `to` as a path relative to `from` (both absolute).
    fn pathdiff(to: &Path, from: &Path) -> std::path::PathBuf {
        let mut rel = std::path::PathBuf::new();
        for _ in from.components().skip(1) {
            rel.push("..");
        }
        rel.join(to.strip_prefix("/").unwrap())
    }

    #[test]
    fn relative_sqlite_files_live_under_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let url = sqlite_under("sqlite://acme/app.db", dir.path()).unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(
            url,
            format!("sqlite://{}?mode=rwc", root.join("acme/app.db").display())
        );
        // A data directory given relatively, with `..`, still lands in the right place.
        let cwd = std::env::current_dir().unwrap();
        let relative = pathdiff(&root, &cwd);
        let url = sqlite_under("sqlite://x.db", &relative.join("acme/../b")).unwrap();
        assert_eq!(
            url,
            format!("sqlite://{}?mode=rwc", root.join("b/x.db").display())
        );
        assert_eq!(
            sqlite_under("sqlite::memory:", dir.path()).unwrap(),
            "sqlite::memory:"
        );
        assert_eq!(
            sqlite_under("postgres://h/db", dir.path()).unwrap(),
            "postgres://h/db"
        );
    }
}
