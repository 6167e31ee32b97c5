//! The `sql` capability: typed values round-trip on SQLite, PostgreSQL and MariaDB (the
//! last two when `ORQUESTA_TEST_POSTGRES_URL` / `ORQUESTA_TEST_MYSQL_URL` are set, as
//! `.ci/run` does, and listed as ignored otherwise); grants, errors and the statement timeout; and through the service.

use orquesta::capabilities::Grants;
use orquesta::tenants::DatabaseConfig;
use orquesta::testing::{Sandbox, TestPlugin};
use orquesta_tests::plugin;
use orquesta_tests::server::TestServer;
use serde_json::{Value, json};

fn steps(database: &str, steps: Value) -> Value {
    json!({ "type": "task", "input": { "attack": "sql", "database": database, "steps": steps } })
}

async fn sandbox() -> Sandbox {
    let hostile = TestPlugin::load(plugin("hostile")).await.unwrap();
    hostile.sandbox().await.unwrap()
}

#[tokio::test]
async fn typed_values_round_trip_on_sqlite() {
    typed_values_round_trip("sqlite", "sqlite://app.db").await;
}

#[tokio::test]
#[cfg_attr(no_postgres, ignore = "ORQUESTA_TEST_POSTGRES_URL is not set")]
async fn typed_values_round_trip_on_postgres() {
    typed_values_round_trip("postgres", &orquesta_tests::db::postgres()).await;
}

#[tokio::test]
#[cfg_attr(no_mysql, ignore = "ORQUESTA_TEST_MYSQL_URL is not set")]
async fn typed_values_round_trip_on_mariadb() {
    typed_values_round_trip("mysql", &orquesta_tests::db::mysql()).await;
}

/// Every column type in and out of `url`, a database of `kind`.
async fn typed_values_round_trip(kind: &str, url: &str) {
    let mut sandbox = sandbox().await;
    sandbox.database("app", url).unwrap();
    let table = format!("t_{}", std::process::id());
    let (real, blob) = match kind {
        "postgres" => ("DOUBLE PRECISION", "BYTEA"),
        "mysql" => ("DOUBLE", "BLOB"),
        _ => ("REAL", "BLOB"),
    };
    let (p1, p2, p3, p4, p5) = if kind == "postgres" {
        ("$1", "$2", "$3", "$4", "$5")
    } else {
        ("?", "?", "?", "?", "?")
    };
    let out = sandbox
        .invoke(steps(
            "app",
            json!([
                { "sql": format!("DROP TABLE IF EXISTS {table}") },
                { "sql": format!("CREATE TABLE {table} (id BIGINT PRIMARY KEY, name VARCHAR(100), score {real}, data {blob}, note VARCHAR(100))") },
                { "sql": format!("INSERT INTO {table} (id, name, score, data, note) VALUES ({p1}, {p2}, {p3}, {p4}, {p5})"),
                  "params": [7, "Ana ñ 'quoted'", 2.5, { "blob": [0, 159, 255] }, null] },
                { "sql": format!("INSERT INTO {table} (id, name) VALUES ({p1}, {p2})"), "params": [8, "Luis"] },
                { "sql": format!("SELECT id, name, score, data, note FROM {table} WHERE id = {p1}"), "params": [7], "query": true },
                { "sql": format!("SELECT count(*) AS n FROM {table}"), "query": true },
                { "sql": format!("DROP TABLE {table}") },
            ]),
        ))
        .await
        .unwrap_or_else(|e| panic!("{kind}: {e}"));
    assert_eq!(out[2], 1, "{kind}: one row inserted");
    assert_eq!(
        out[4]["columns"],
        json!(["id", "name", "score", "data", "note"]),
        "{kind}"
    );
    assert_eq!(
        out[4]["rows"],
        json!([[7, "Ana ñ 'quoted'", 2.5, { "blob": [0, 159, 255] }, null]]),
        "{kind}"
    );
    assert_eq!(out[5]["rows"], json!([[2]]), "{kind}");
}

#[tokio::test]
async fn grants_errors_and_the_statement_timeout() {
    let mut sandbox = sandbox().await;
    sandbox.database("app", "sqlite://app.db").unwrap();
    sandbox
        .database_config(
            "slow",
            DatabaseConfig {
                max_connections: 1,
                statement_timeout_ms: 200,
                ..DatabaseConfig::new("sqlite://slow.db")
            },
        )
        .unwrap();
    sandbox.grants(Grants::default().with(
        orquesta::capabilities::sql::DATABASES,
        &["app", "slow", "ghost"],
    ));
    let one = |db: &str, sql: &str| steps(db, json!([{ "sql": sql, "query": true }]));

    let err = sandbox.invoke(one("other", "SELECT 1")).await.unwrap_err();
    assert_eq!(err.name(), "Denied", "ungranted: {err}");
    let err = sandbox.invoke(one("ghost", "SELECT 1")).await.unwrap_err();
    assert_eq!(err.name(), "Denied", "granted but not declared: {err}");
    assert!(
        err.cause().contains("not one of the tenant's databases"),
        "{err}"
    );

    let err = sandbox.invoke(one("app", "SELEC 1")).await.unwrap_err();
    assert_eq!(err.name(), "HostFailed", "{err}");
    assert!(err.cause().contains("syntax error"), "{err}");
    let err = sandbox
        .invoke(one("app", "SELECT * FROM no_such_table"))
        .await
        .unwrap_err();
    assert!(err.cause().contains("no_such_table"), "{err}");

    let started = std::time::Instant::now();
    let err = sandbox
        .invoke(one(
            "slow",
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 30000000) SELECT count(*) FROM c",
        ))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "Timeout", "{err}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // Past the row cap the query is refused, not loaded whole.
    let err = sandbox
        .invoke(one(
            "app",
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10001) SELECT x FROM c",
        ))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "Invalid", "{err}");
    assert!(err.cause().contains("more than 10000 rows"), "{err}");

    // The plugin still works afterwards on its other database.
    let out = sandbox
        .invoke(one("app", "SELECT 40 + 2 AS n"))
        .await
        .unwrap();
    assert_eq!(out[0]["rows"], json!([[42]]));
}

#[tokio::test]
async fn tenants_reach_their_databases_through_the_service() {
    let tenant = r#"
[databases.app]
url = "sqlite://app.db"

[plugins.hostile]
source = "hostile.wasm"
allow = { databases = ["app"] }

[[routes]]
method = "POST"
path = "/sql"
plugin = "hostile"
"#;
    let s = TestServer::start(&["hostile"], &[("acme", tenant)], |_| {}).await;
    let call = |steps: Value| {
        let body = json!({ "attack": "sql", "database": "app", "steps": steps });
        s.client
            .post(format!("{}/t/acme/sql", s.url))
            .json(&body)
            .send()
    };
    let r = call(json!([
        { "sql": "CREATE TABLE IF NOT EXISTS notes (body TEXT)" },
        { "sql": "INSERT INTO notes VALUES (?)", "params": ["kept"] },
    ]))
    .await
    .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = call(json!([{ "sql": "SELECT body FROM notes", "query": true }]))
        .await
        .unwrap();
    let out: Value = r.json().await.unwrap();
    assert_eq!(out[0]["rows"], json!([["kept"]]));
    assert!(
        s.dir.path().join("data/databases/acme/app.db").is_file(),
        "the tenant's SQLite file is under the data directory"
    );
    s.shutdown().await;
}
