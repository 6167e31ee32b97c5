//! A tenant's database as its file declares it (`[databases.NAME]`), and its checks.

use std::path::PathBuf;

use serde::Deserialize;

use crate::capabilities::secrets::SecretRef;

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
    pub fn resolve(&self) -> Result<String, String> {
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

    pub(crate) fn validate(&self) -> Result<(), String> {
        use crate::engine::limits::capability::{SQL_MAX_CONNECTIONS, SQL_MAX_TIMEOUT_MS};
        if self.max_connections == 0 || self.max_connections > SQL_MAX_CONNECTIONS {
            return Err(format!("max_connections must be 1-{SQL_MAX_CONNECTIONS}"));
        }
        if self.statement_timeout_ms == 0 || self.statement_timeout_ms > SQL_MAX_TIMEOUT_MS {
            return Err(format!(
                "statement_timeout_ms must be 1-{SQL_MAX_TIMEOUT_MS}"
            ));
        }
        match &self.url {
            DatabaseUrl::Secret(r) => r.validate(),
            DatabaseUrl::Plain(url) => {
                super::check_url(url)?;
                if super::has_password(url) {
                    return Err(
                        "a URL with a password must come from a secret: url = { env = \"VAR\" }"
                            .into(),
                    );
                }
                Ok(())
            }
        }
    }
}
