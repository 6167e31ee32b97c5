//! Fixture files for `orquesta test`: cases of event in, world around, expectations out.
//!
//! ```toml
//! [[case]]
//! name = "greets with the configured greeting"
//! event = { type = "task", input = { name = "Ana" } }
//! config = { greeting = "Hola" }
//! kv = [{ key = "greetings", value = "41" }]
//! [case.expect]
//! output = { message = "Hola, Ana!", count = 42 }
//! kv = [{ key = "greetings", value = "42" }]
//! ```
//! See `docs/TESTING.md` for every field.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use serde::Deserialize;
use serde_json::Value;

use super::matching::{MatchMode, matches, subset};
use super::{MockResponse, Sandbox, TestPlugin};
use crate::capabilities::Grants;
use crate::engine::Limits;
use crate::tenants::ConfigError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureFile {
    /// Defaults for every case.
    #[serde(default)]
    pub tenant: Option<String>,
    #[serde(default)]
    pub plugin: Option<String>,
    #[serde(default)]
    pub limits: Option<Limits>,
    /// Grants for every case; absent means everything is granted.
    #[serde(default)]
    pub allow: Option<Grants>,
    #[serde(default)]
    pub config: BTreeMap<String, Value>,
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// Databases every case gets afresh (an SQLite file of its own per case).
    #[serde(default)]
    pub databases: BTreeMap<String, FixtureDatabase>,
    #[serde(rename = "case")]
    pub cases: Vec<Case>,
}

/// A database of the fixture file: a new SQLite file per case with `init` run on it, so
/// SQL written for SQLite (as in the demo) runs as the plugin's statements would.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureDatabase {
    /// A SQL file relative to the fixture file, run before each case's `sql` seeds.
    #[serde(default)]
    pub init: Option<std::path::PathBuf>,
    #[serde(skip)]
    pub init_sql: Option<String>,
}

/// A statement run before a case (`[[case.sql]]`), or a query checked after it
/// (`[[case.expect.sql]]`, with the `rows` it must give, in order).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlStep {
    pub database: String,
    pub statement: String,
    /// Bound to `?` placeholders in order: strings, integers, reals, booleans.
    #[serde(default)]
    pub params: Vec<Value>,
    /// In expectations: each row's values in column order.
    #[serde(default)]
    pub rows: Option<Vec<Vec<Value>>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub event: Value,
    /// Added to (and overriding) the file's config and secrets.
    #[serde(default)]
    pub config: BTreeMap<String, Value>,
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    #[serde(default)]
    pub kv: Vec<KvItem>,
    /// Blobs to seed: `{ bucket, key, value }`.
    #[serde(default)]
    pub blobs: Vec<BlobItem>,
    /// Scripted outbound HTTP answers.
    #[serde(default)]
    pub http: Vec<MockResponse>,
    /// Statements that seed the file's databases.
    #[serde(default)]
    pub sql: Vec<SqlStep>,
    #[serde(default)]
    pub expect: Expect,
}

/// A kv item. `value` is stored as is when a string, as JSON text otherwise.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KvItem {
    #[serde(default = "default_bucket")]
    pub bucket: String,
    pub key: String,
    #[serde(default)]
    pub value: Option<Value>,
    /// In expectations: the key must not exist.
    #[serde(default)]
    pub absent: bool,
}

/// A blob. `value` is stored as is when a string, as JSON text otherwise.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobItem {
    pub bucket: String,
    pub key: String,
    #[serde(default)]
    pub value: Option<Value>,
    /// In expectations: the blob must not exist.
    #[serde(default)]
    pub absent: bool,
}

fn default_bucket() -> String {
    "default".into()
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The result's JSON form (see `orquesta invoke`).
    #[serde(default)]
    pub output: Option<Value>,
    #[serde(default, rename = "match")]
    pub mode: MatchMode,
    /// The error's name (`timeout`, `ValidationError`, ...).
    #[serde(default)]
    pub error: Option<String>,
    /// Text the error's cause must contain.
    #[serde(default)]
    pub cause: Option<String>,
    /// Each list, when given, must match what happened in order and in number; each
    /// element matches as a subset.
    #[serde(default)]
    pub http_calls: Option<Vec<Value>>,
    #[serde(default)]
    pub notifications: Option<Vec<Value>>,
    #[serde(default)]
    pub messages: Option<Vec<Value>>,
    #[serde(default)]
    pub events: Option<Vec<Value>>,
    #[serde(default)]
    pub executions: Option<Vec<Value>>,
    /// Workflow task answers: `{ token, success = OUTPUT }`, `{ token, failure = { error,
    /// cause } }` or `{ token, heartbeat = true }` each.
    #[serde(default)]
    pub task_answers: Option<Vec<Value>>,
    /// kv items after the invocation.
    #[serde(default)]
    pub kv: Vec<KvItem>,
    /// Blobs after the invocation.
    #[serde(default)]
    pub blobs: Vec<BlobItem>,
    /// Queries and the rows they must give after the invocation.
    #[serde(default)]
    pub sql: Vec<SqlStep>,
}

/// One case's outcome: no failures means it passed.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub name: String,
    pub failures: Vec<String>,
}

impl CaseResult {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

impl FixtureFile {
    pub fn load(path: &Path) -> Result<Self, ConfigError<String>> {
        Self::parse(path, &crate::tenants::read::<String>(path)?)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError<String>> {
        let file = crate::tenants::parse_toml::<FixtureFile, String>(path, text)?;
        if let Some(limits) = &file.limits {
            limits
                .validate()
                .map_err(|r| ConfigError::new(path, r.to_string()))?;
        }
        if file.cases.is_empty() {
            return Err(ConfigError::new(
                path,
                "no [[case]] in the file".to_string(),
            ));
        }
        let mut file = file;
        let dir = path.parent().unwrap_or(Path::new("."));
        for (name, db) in &mut file.databases {
            if let Some(init) = &db.init {
                let sql = std::fs::read_to_string(dir.join(init)).map_err(|e| {
                    ConfigError::new(
                        path,
                        format!("databases.{name}.init: cannot read {}: {e}", init.display()),
                    )
                })?;
                db.init_sql = Some(sql);
            }
        }
        for case in &file.cases {
            let steps = case.sql.iter().chain(&case.expect.sql);
            if let Some(step) = steps
                .into_iter()
                .find(|s| !file.databases.contains_key(&s.database))
            {
                return Err(ConfigError::new(
                    path,
                    format!(
                        "case {:?}: database `{}` is not one of the file's [databases]",
                        case.name, step.database
                    ),
                ));
            }
        }
        Ok(file)
    }

    /// Runs every case, each in a fresh sandbox.
    pub async fn run(&self, plugin: &TestPlugin) -> anyhow::Result<Vec<CaseResult>> {
        let mut results = Vec::with_capacity(self.cases.len());
        for case in &self.cases {
            let mut sandbox = plugin.sandbox().await?;
            self.prepare(case, &mut sandbox).await?;
            let failures = run_case(case, &sandbox).await?;
            results.push(CaseResult {
                name: case.name.clone(),
                failures,
            });
        }
        Ok(results)
    }

    async fn prepare(&self, case: &Case, sandbox: &mut Sandbox) -> anyhow::Result<()> {
        sandbox.identity(
            self.tenant.as_deref().unwrap_or("test"),
            self.plugin.as_deref().unwrap_or("plugin"),
        );
        if let Some(limits) = &self.limits {
            sandbox.limits(limits.clone());
        }
        if let Some(grants) = &self.allow {
            sandbox.grants(grants.clone());
        }
        for (k, v) in self.config.iter().chain(&case.config) {
            sandbox.config(k, &text_of(v));
        }
        for (k, v) in self.secrets.iter().chain(&case.secrets) {
            sandbox.secret(k, v);
        }
        for item in &case.kv {
            let value = item.value.as_ref().map(text_of).unwrap_or_default();
            sandbox.seed_kv(&item.bucket, &item.key, value).await?;
        }
        for item in &case.blobs {
            let value = item.value.as_ref().map(text_of).unwrap_or_default();
            sandbox.seed_blob(&item.bucket, &item.key, value).await?;
        }
        for mock in &case.http {
            sandbox.mock(mock.clone());
        }
        for (name, db) in &self.databases {
            let config = crate::tenants::DatabaseConfig {
                init_sql: db.init_sql.clone(),
                ..crate::tenants::DatabaseConfig::new(&format!("sqlite://{name}.db"))
            };
            sandbox.database_config(name, config)?;
        }
        for step in &case.sql {
            sandbox
                .sql_execute(&step.database, &step.statement, &step.params)
                .await
                .with_context(|| format!("case {:?}: seeding {}", case.name, step.database))?;
        }
        Ok(())
    }
}

/// A JSON value as the text a plugin sees: strings as they are, the rest as JSON.
fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn compact(value: &Value) -> String {
    value.to_string()
}

async fn run_case(case: &Case, sandbox: &Sandbox) -> anyhow::Result<Vec<String>> {
    let mut failures = Vec::new();
    let expect = &case.expect;
    match sandbox.invoke(case.event.clone()).await {
        Ok(output) => {
            if let Some(error) = &expect.error {
                failures.push(format!(
                    "error: expected `{error}`\n  actual: success with {}",
                    compact(&output)
                ));
            }
            if let Some(expected) = &expect.output
                && !matches(expect.mode, expected, &output)
            {
                failures.push(format!(
                    "output ({:?} match):\n  expected: {}\n  actual:   {}",
                    expect.mode,
                    compact(expected),
                    compact(&output)
                ));
            }
        }
        Err(err) => match &expect.error {
            Some(name) if name == err.name() => {
                if let Some(cause) = &expect.cause
                    && !err.cause().contains(cause.as_str())
                {
                    failures.push(format!(
                        "error cause:\n  expected to contain: {cause}\n  actual: {}",
                        err.cause()
                    ));
                }
            }
            Some(name) => failures.push(format!("error:\n  expected: `{name}`\n  actual:   {err}")),
            None => failures.push(format!("unexpected error: {err}")),
        },
    }
    let recorded = [
        ("http_calls", &expect.http_calls, calls_json(sandbox)),
        (
            "notifications",
            &expect.notifications,
            sandbox.notifications(),
        ),
        ("messages", &expect.messages, sandbox.messages()),
        ("events", &expect.events, sandbox.events()),
        ("executions", &expect.executions, sandbox.executions()),
        ("task_answers", &expect.task_answers, sandbox.task_answers()),
    ];
    for (what, expected, actual) in recorded {
        if let Some(expected) = expected {
            let ok = expected.len() == actual.len()
                && expected.iter().zip(&actual).all(|(e, a)| subset(e, a));
            if !ok {
                failures.push(format!(
                    "{what}:\n  expected: {}\n  actual:   {}",
                    compact(&Value::Array(expected.clone())),
                    compact(&Value::Array(actual))
                ));
            }
        }
    }
    for item in &expect.kv {
        let actual = sandbox.kv_get(&item.bucket, &item.key).await?;
        let expected = Stored::expected(item.value.as_ref(), item.absent);
        if let Some(failure) = expected.compare(&format!("kv {}/{}", item.bucket, item.key), actual)
        {
            failures.push(failure);
        }
    }
    for item in &expect.blobs {
        let actual = sandbox.blob_get(&item.bucket, &item.key).await?;
        let expected = Stored::expected(item.value.as_ref(), item.absent);
        if let Some(failure) =
            expected.compare(&format!("blob {}/{}", item.bucket, item.key), actual)
        {
            failures.push(failure);
        }
    }
    for step in &expect.sql {
        let rows = sandbox
            .sql_query(&step.database, &step.statement, &step.params)
            .await?;
        if let Some(expected) = &step.rows {
            let expected = Value::Array(expected.iter().cloned().map(Value::Array).collect());
            let actual = Value::Array(rows.into_iter().map(Value::Array).collect());
            if !matches(MatchMode::Exact, &expected, &actual) {
                failures.push(format!(
                    "sql {} `{}`:\n  expected: {}\n  actual:   {}",
                    step.database,
                    step.statement,
                    compact(&expected),
                    compact(&actual)
                ));
            }
        }
    }
    Ok(failures)
}

/// What a kv item or blob should be after the invocation.
enum Stored {
    Absent,
    /// Only its presence was asked for.
    Present,
    Value(String),
}

impl Stored {
    fn expected(value: Option<&Value>, absent: bool) -> Self {
        match (value, absent) {
            (_, true) => Stored::Absent,
            (Some(v), false) => Stored::Value(text_of(v)),
            (None, false) => Stored::Present,
        }
    }

    /// A failure line when `actual` does not match.
    fn compare(&self, what: &str, actual: Option<Vec<u8>>) -> Option<String> {
        let actual = actual.map(|v| String::from_utf8_lossy(&v).into_owned());
        let ok = match (self, &actual) {
            (Stored::Absent, a) => a.is_none(),
            (Stored::Present, a) => a.is_some(),
            (Stored::Value(e), Some(a)) => e == a || json_equal(e, a),
            (Stored::Value(_), None) => false,
        };
        if ok {
            return None;
        }
        let expected = match self {
            Stored::Absent => "(absent)".to_string(),
            Stored::Present => "(present)".to_string(),
            Stored::Value(v) => v.clone(),
        };
        Some(format!(
            "{what}:\n  expected: {expected}\n  actual:   {}",
            actual.unwrap_or_else(|| "(absent)".into())
        ))
    }
}

/// Two texts that are the same JSON document.
fn json_equal(a: &str, b: &str) -> bool {
    match (
        serde_json::from_str::<Value>(a),
        serde_json::from_str::<Value>(b),
    ) {
        (Ok(x), Ok(y)) => matches(MatchMode::Exact, &x, &y),
        _ => false,
    }
}

fn calls_json(sandbox: &Sandbox) -> Vec<Value> {
    sandbox
        .http_calls()
        .into_iter()
        .map(|c| serde_json::to_value(c).unwrap_or(Value::Null))
        .collect()
}
