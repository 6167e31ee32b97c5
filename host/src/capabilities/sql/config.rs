//! A tenant's database as its file declares it (`[databases.NAME]`), and its checks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

use crate::capabilities::secrets::{SecretError, SecretRef};
use crate::capabilities::{CapError, check_name};
use crate::engine::limits::capability::{SQL_MAX_CONNECTIONS, SQL_MAX_TIMEOUT_MS};

/// What is wrong with one of the tenant's databases: `databases.NAME: reason`.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("databases.{name}{}: {reason}", if matches!(reason, SqlConfigError::Init { .. }) { ".init" } else { "" })]
pub struct DatabaseError {
    pub name: String,
    pub reason: SqlConfigError,
}

/// Why a database setting, or the pool made from it, was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SqlConfigError {
    #[error(transparent)]
    Name(CapError),
    #[error("max_connections must be 1-{}", SQL_MAX_CONNECTIONS)]
    MaxConnections,
    #[error("statement_timeout_ms must be 1-{}", SQL_MAX_TIMEOUT_MS)]
    StatementTimeout,
    #[error("unsupported database URL scheme `{0}`: use sqlite, postgres, mysql or mariadb")]
    UnsupportedScheme(String),
    #[error("a URL with a password must come from a secret: url = {{ env = \"VAR\" }}")]
    PasswordInClear,
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The init script could not be read; `error` is the I/O error's text.
    #[error("cannot read {}: {error}", file.display())]
    Init { file: PathBuf, error: String },
    /// The directory of a relative SQLite file could not be made.
    #[error("cannot create {}: {error}", dir.display())]
    DataDir { dir: PathBuf, error: String },
    /// A relative SQLite file's path could not be made absolute.
    #[error("{}: {error}", file.display())]
    SqliteFile { file: PathBuf, error: String },
    /// sqlx refused the URL or its options.
    #[error("{0}")]
    Pool(String),
}

/// One of the tenant's databases (`[databases.NAME]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` (relative paths live under the host's data directory, per tenant),
    /// `postgres://...` or `mysql://...` / `mariadb://...`. A URL with a password must
    /// come from a secret: `{ env = "VAR" }` or `{ file = "PATH" }`.
    pub url: DatabaseUrl,
    /// Connections this tenant may hold open to it.
    #[serde(default = "crate::engine::limits::capability::sql_default_connections")]
    pub max_connections: u32,
    /// Longest a statement may run before the call fails with `timeout`.
    #[serde(default = "crate::engine::limits::capability::sql_default_timeout_ms")]
    pub statement_timeout_ms: u64,
    /// A SQL file (relative to the tenant file) run once per pool before its first
    /// statement, as Spin's `--sqlite` statements are: a schema and seed data written to
    /// be run again (`CREATE TABLE IF NOT EXISTS`, `INSERT OR IGNORE`).
    #[serde(default)]
    pub init: Option<PathBuf>,
    /// The text of `init`, read when the tenant loads.
    #[serde(skip)]
    pub init_sql: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum DatabaseUrl {
    Plain(String),
    Secret(SecretRef),
}

impl DatabaseUrl {
    pub fn resolve(&self) -> Result<String, SecretError> {
        match self {
            DatabaseUrl::Plain(url) => Ok(url.clone()),
            DatabaseUrl::Secret(r) => r.resolve().map(|s| s.expose().to_string()),
        }
    }
}

impl DatabaseConfig {
    /// `url` with the default pool size and statement timeout, and no init script.
    pub fn new(url: &str) -> Self {
        DatabaseConfig {
            url: DatabaseUrl::Plain(url.to_string()),
            max_connections: crate::engine::limits::capability::SQL_DEFAULT_CONNECTIONS,
            statement_timeout_ms: crate::engine::limits::capability::SQL_DEFAULT_TIMEOUT_MS,
            init: None,
            init_sql: None,
        }
    }

    fn validate(&self) -> Result<(), SqlConfigError> {
        if self.max_connections == 0 || self.max_connections > SQL_MAX_CONNECTIONS {
            return Err(SqlConfigError::MaxConnections);
        }
        if self.statement_timeout_ms == 0 || self.statement_timeout_ms > SQL_MAX_TIMEOUT_MS {
            return Err(SqlConfigError::StatementTimeout);
        }
        match &self.url {
            DatabaseUrl::Secret(r) => Ok(r.validate()?),
            DatabaseUrl::Plain(url) => {
                super::check_url(url)?;
                if super::has_password(url) {
                    return Err(SqlConfigError::PasswordInClear);
                }
                Ok(())
            }
        }
    }
}

/// Checks each of the tenant's databases on its own.
pub fn validate(databases: &BTreeMap<String, DatabaseConfig>) -> Result<(), DatabaseError> {
    for (name, db) in databases {
        check_name("database", name)
            .map_err(SqlConfigError::Name)
            .and_then(|()| db.validate())
            .map_err(|reason| DatabaseError {
                name: name.clone(),
                reason,
            })?;
    }
    Ok(())
}

/// Reads each database's `init` script, relative to `dir` (the tenant file's).
pub fn read_init_scripts(
    databases: &mut BTreeMap<String, DatabaseConfig>,
    dir: &Path,
) -> Result<(), DatabaseError> {
    for (name, db) in databases {
        if let Some(init) = &db.init {
            let file = dir.join(init);
            let sql = std::fs::read_to_string(&file).map_err(|e| DatabaseError {
                name: name.clone(),
                reason: SqlConfigError::Init {
                    error: e.to_string(),
                    file,
                },
            })?;
            db.init_sql = Some(sql);
        }
    }
    Ok(())
}
