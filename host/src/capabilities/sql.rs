//! `orquesta:plugin/sql`: statements against the databases the tenant names in its config
//! (`[databases.NAME]`) and grants the plugin. Parameters are always bound. One pool per
//! tenant database, shared by every invocation and capped by `max_connections`; every
//! statement runs under the database's `statement_timeout_ms`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::any::{AnyArguments, AnyPoolOptions, AnyRow, AnyTypeInfoKind};
use sqlx::{AnyPool, Arguments as _, AssertSqlSafe, Column as _, Row as _, ValueRef as _};

use super::{CapError, Grants};
use crate::bindings::sql::Host;
use crate::bindings::types::HostError;
use crate::engine::Invocation;
use crate::engine::limits::capability::{SQL_INIT_TIMEOUT_S, SQL_MAX_ROWS};
use crate::tenants::DatabaseConfig;

pub use crate::bindings::sql::{Rows, Value as SqlValue};

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
pub fn check_url(url: &str) -> Result<String, String> {
    let scheme = url.split(':').next().unwrap_or_default();
    match scheme {
        "sqlite" | "postgres" | "postgresql" | "mysql" => Ok(url.to_string()),
        "mariadb" => Ok(format!("mysql{}", &url["mariadb".len()..])),
        _ => Err(format!(
            "unsupported database URL scheme `{scheme}`: use sqlite, postgres, mysql or mariadb"
        )),
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

struct Database {
    pool: AnyPool,
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
    ) -> Result<Self, String> {
        sqlx::any::install_default_drivers();
        let mut databases = BTreeMap::new();
        for (name, config) in configs {
            let url = config
                .url
                .resolve()
                .and_then(|u| check_url(&u))
                .map_err(|e| format!("databases.{name}: {e}"))?;
            let url = sqlite_under(&url, data_dir).map_err(|e| format!("databases.{name}: {e}"))?;
            let pool = AnyPoolOptions::new()
                .max_connections(config.max_connections)
                .acquire_timeout(Duration::from_millis(config.statement_timeout_ms))
                .connect_lazy(&url)
                .map_err(|e| format!("databases.{name}: {e}"))?;
            databases.insert(
                name.clone(),
                Database {
                    pool,
                    timeout: Duration::from_millis(config.statement_timeout_ms),
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
                // The tenant's own file, as trusted as its config.
                let run = sqlx::raw_sql(AssertSqlSafe(sql.clone())).execute(&db.pool);
                let limit = Duration::from_secs(SQL_INIT_TIMEOUT_S);
                match tokio::time::timeout(limit, run).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(sqlx::Error::Database(e))) => Err(CapError::Failed(format!(
                        "database `{name}`: its init script failed: {}",
                        e.message()
                    ))),
                    Ok(Err(e)) => Err(CapError::Failed(format!(
                        "database `{name}`: its init script failed: {e}"
                    ))),
                    Err(_) => Err(CapError::Timeout(format!(
                        "database `{name}`: its init script ran past {SQL_INIT_TIMEOUT_S} s"
                    ))),
                }
            })
            .await?;
        }
        Ok(db)
    }
}

/// A relative SQLite file goes under `data_dir` (created as needed), so tenants share
/// no files by accident; `sqlite::memory:` and absolute paths are kept.
fn sqlite_under(url: &str, data_dir: &Path) -> Result<String, String> {
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
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let query = if query.is_empty() { "mode=rwc" } else { query };
    crate::store::sqlite_url(&file, query).map_err(|e| format!("{}: {e}", file.display()))
}

fn bind(params: Vec<SqlValue>) -> Result<AnyArguments, CapError> {
    let mut args = AnyArguments::default();
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

/// A database error as the plugin sees it: the driver's message, which names the
/// problem (syntax, constraint, missing table) without the connection details.
fn failed(database: &str, e: sqlx::Error) -> CapError {
    match e {
        sqlx::Error::Database(db) => {
            CapError::Failed(format!("database `{database}`: {}", db.message()))
        }
        sqlx::Error::PoolTimedOut => CapError::Timeout(format!(
            "database `{database}`: no connection free within the statement timeout"
        )),
        other => CapError::Failed(format!("database `{database}`: {other}")),
    }
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
        let args = bind(params)?;
        // Rows are read one by one so a query past the cap stops there, not in memory.
        let read = async {
            use futures::TryStreamExt as _;
            // The plugin's text is run as given; its values only ever travel as parameters.
            let mut stream =
                sqlx::query_with(AssertSqlSafe(statement.to_string()), args).fetch(&db.pool);
            let mut rows = Vec::new();
            while let Some(row) = stream.try_next().await? {
                if rows.len() == SQL_MAX_ROWS {
                    return Ok(None);
                }
                rows.push(row);
            }
            Ok(Some(rows))
        };
        let Some(rows) = timed(database, db, read).await? else {
            return Err(CapError::Invalid(format!(
                "the query returned more than {SQL_MAX_ROWS} rows; page with LIMIT"
            )));
        };
        let columns = rows
            .first()
            .map(|r| r.columns().iter().map(|c| c.name().to_string()).collect())
            .unwrap_or_default();
        let rows = rows
            .iter()
            .map(|row| (0..row.len()).map(|i| value_of(row, i)).collect())
            .collect::<Result<Vec<Vec<SqlValue>>, _>>()
            .map_err(|e| failed(database, e))?;
        Ok(Rows { columns, rows })
    }

    async fn execute(
        &self,
        database: &str,
        statement: &str,
        params: Vec<SqlValue>,
    ) -> Result<u64, CapError> {
        let db = self.database(database).await?;
        let args = bind(params)?;
        let run = sqlx::query_with(AssertSqlSafe(statement.to_string()), args).execute(&db.pool);
        Ok(timed(database, db, run).await?.rows_affected())
    }
}

/// `work` within the database's statement timeout, its errors as the plugin sees them.
async fn timed<T>(
    name: &str,
    db: &Database,
    work: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, CapError> {
    match tokio::time::timeout(db.timeout, work).await {
        Ok(done) => done.map_err(|e| failed(name, e)),
        Err(_) => Err(CapError::Timeout(format!(
            "database `{name}`: the statement ran past {} ms",
            db.timeout.as_millis()
        ))),
    }
}

impl Host for Invocation {
    async fn query(
        &mut self,
        database: String,
        statement: String,
        params: Vec<SqlValue>,
    ) -> Result<Rows, HostError> {
        Grants::check(
            &self.ctx.capabilities.grants.databases,
            "database",
            &database,
        )?;
        let sql = &self.ctx.capabilities.backends.sql;
        Ok(sql.query(&database, &statement, params).await?)
    }

    async fn execute(
        &mut self,
        database: String,
        statement: String,
        params: Vec<SqlValue>,
    ) -> Result<u64, HostError> {
        Grants::check(
            &self.ctx.capabilities.grants.databases,
            "database",
            &database,
        )?;
        let sql = &self.ctx.capabilities.backends.sql;
        Ok(sql.execute(&database, &statement, params).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_passwords_spotted() {
        assert_eq!(check_url("mariadb://u@h/db").unwrap(), "mysql://u@h/db");
        assert!(check_url("redis://h").is_err());
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
