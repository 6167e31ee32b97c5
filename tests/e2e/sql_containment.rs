//! SQL as an attacker writes it (issue 20, items 1-3), through the service: a tenant's
//! SQLite database reaches no other file (another tenant's database, the host's store,
//! new files); a statement past its deadline stops and frees its connection; a result
//! is capped in bytes before the host holds it. On PostgreSQL and MariaDB (when
//! `ORQUESTA_TEST_POSTGRES_URL` / `ORQUESTA_TEST_MYSQL_URL` are set), a tenant role with
//! the privileges docs/TENANTS.md recommends reaches no server file either, and a
//! timed-out statement stops in the server.

use std::time::{Duration, Instant};

use orquesta::tenants::DatabaseConfig;
use orquesta::testing::{Sandbox, TestPlugin};
use orquesta_tests::plugin;
use orquesta_tests::server::TestServer;
use serde_json::{Value, json};
use sqlx::Connection as _;

/// A tenant whose `hostile` plugin runs SQL on its database `app` at `POST /sql`.
fn tenant(database: &str) -> String {
    format!(
        r#"
[databases.app]
url = "sqlite://app.db"
{database}

[plugins.hostile]
source = "hostile.wasm"
allow = {{ databases = ["app"] }}

[[routes]]
method = "POST"
path = "/sql"
plugin = "hostile"
"#
    )
}

/// `sql` run by tenant `t`'s plugin: the status and the body (rows or a problem).
async fn sql(s: &TestServer, t: &str, sql: &str, query: bool) -> (u16, Value) {
    let body =
        json!({ "attack": "sql", "database": "app", "steps": [{ "sql": sql, "query": query }] });
    let r = s
        .client
        .post(format!("{}/t/{t}/sql", s.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_tenants_sqlite_reaches_neither_another_tenant_nor_the_store() {
    let s = TestServer::start(
        &["hostile"],
        &[("a", &tenant("")), ("b", &tenant(""))],
        |_| {},
    )
    .await;
    let data = std::fs::canonicalize(s.dir.path().join("data")).unwrap();
    let (status, out) = sql(&s, "b", "CREATE TABLE secrets (v TEXT)", false).await;
    assert_eq!(status, 200, "{out}");
    sql(&s, "b", "INSERT INTO secrets VALUES ('b-only')", false).await;
    let r = s
        .client
        .post(format!("{}/t/b/sql", s.url))
        .json(&json!({ "attack": "kv-write", "key": "secret", "value": "b-kv" }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    // Tenant a's own database exists once it has run a statement.
    assert_eq!(sql(&s, "a", "CREATE TABLE mine (x)", false).await.0, 200);

    let b_db = data.join("databases/b/app.db");
    let store = data.join("orquesta.db");
    assert!(b_db.is_file() && store.is_file());
    let files_before = files(&data);
    let (b_db, store, data_text) = (b_db.display(), store.display(), data.display());
    let attacks = [
        format!("ATTACH DATABASE '{b_db}' AS b"),
        format!("ATTACH 'file:{b_db}?mode=ro' AS b"),
        format!("ATTACH '{store}' AS store"),
        format!("ATTACH '{data_text}/made.db' AS made"),
        format!("VACUUM INTO '{data_text}/copy.db'"),
        "VACUUM".to_string(),
        "PRAGMA journal_mode = WAL".to_string(),
        "PRAGMA cache_size = -4000000".to_string(),
        "PRAGMA mmap_size = 4000000000".to_string(),
        "PRAGMA hard_heap_limit = 1".to_string(),
        "PRAGMA max_page_count = 1".to_string(),
        "PRAGMA writable_schema = ON".to_string(),
        format!("PRAGMA temp_store_directory = '{data_text}'"),
        "SELECT file FROM pragma_database_list".to_string(),
        "SELECT load_extension('/usr/lib/x86_64-linux-gnu/libm.so.6')".to_string(),
        "SELECT readfile('/etc/passwd')".to_string(),
        format!("SELECT writefile('{data_text}/w.txt', 'x')"),
    ];
    for attack in &attacks {
        let (status, problem) = sql(&s, "a", attack, true).await;
        assert_eq!(status, 500, "{attack}: {problem}");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(
            problem["title"] == "Denied" || detail.contains("no such function"),
            "{attack}: {problem}"
        );
    }
    // What tenant b and the store hold is untouched, and no file appeared.
    let (_, out) = sql(&s, "b", "SELECT v FROM secrets", true).await;
    assert_eq!(out[0]["rows"], json!([["b-only"]]));
    let r = s
        .client
        .post(format!("{}/t/b/sql", s.url))
        .json(&json!({ "attack": "kv-read", "key": "secret" }))
        .send()
        .await
        .unwrap();
    let seen: Value = r.json().await.unwrap();
    assert_eq!(seen["found"]["default/secret"], "b-kv", "{seen}");
    assert_eq!(files(&data), files_before, "a file was made or removed");
    s.shutdown().await;
}

/// The files under `dir`, SQLite's own journals of existing databases aside.
fn files(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let name = p.display().to_string();
                if !["-wal", "-shm", "-journal"]
                    .iter()
                    .any(|j| name.ends_with(j))
                {
                    out.push(name);
                }
            }
        }
    }
    out.sort();
    out
}

/// CPU time (ms) used so far by this process's SQLite connection threads (sqlx names
/// them `sqlx-sqlite-worker-N`; the name is cut to 15 bytes).
fn sqlite_threads_cpu_ms() -> std::collections::HashMap<String, u64> {
    let ticks_per_ms = 10; // USER_HZ is 100 on Linux.
    let mut threads = std::collections::HashMap::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.starts_with("sqlx-sqlite") {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
            .sum();
        threads.insert(
            task.file_name().to_string_lossy().into_owned(),
            ticks * ticks_per_ms,
        );
    }
    threads
}

/// CPU the SQLite threads used between two readings, per thread: a thread that ended in
/// between (another test's connection closing) takes nothing off the total.
fn cpu_spent_since(
    before: &std::collections::HashMap<String, u64>,
    after: &std::collections::HashMap<String, u64>,
) -> u64 {
    after
        .iter()
        .map(|(tid, ms)| ms.saturating_sub(before.get(tid).copied().unwrap_or(0)))
        .sum()
}

#[tokio::test]
async fn timed_out_statements_stop_and_a_neighbour_stays_fast() {
    let slow = "statement_timeout_ms = 300\nmax_connections = 4";
    let s = TestServer::start(
        &["hostile"],
        &[("a", &tenant(slow)), ("b", &tenant(""))],
        |_| {},
    )
    .await;
    let forever =
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
    // Four at once: one for each of tenant a's connections.
    let started = Instant::now();
    let answers = futures::future::join_all((0..4).map(|_| sql(&s, "a", forever, true))).await;
    for (status, problem) in &answers {
        assert_eq!(*status, 500, "{problem}");
        assert_eq!(problem["title"], "Timeout", "{problem}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // None of them runs on: tenant a's four connections take new statements at once...
    let again = futures::future::join_all((0..4).map(|_| sql(&s, "a", "SELECT 1", true))).await;
    for (status, out) in &again {
        assert_eq!(*status, 200, "{out}");
    }
    // ...no SQLite thread spins (four spinning threads would take both cores)...
    let cpu = sqlite_threads_cpu_ms();
    // The measuring period: CPU used over one second.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let spent = cpu_spent_since(&cpu, &sqlite_threads_cpu_ms());
    assert!(spent < 500, "SQLite threads used {spent} ms of CPU in 1 s");
    // ...and the neighbour's statements run fast.
    assert_eq!(sql(&s, "b", "CREATE TABLE t (x)", false).await.0, 200);
    let mut took = Vec::new();
    for i in 0..20 {
        let started = Instant::now();
        let (status, out) = sql(&s, "b", &format!("INSERT INTO t VALUES ({i})"), false).await;
        assert_eq!(status, 200, "{out}");
        took.push(started.elapsed());
    }
    took.sort();
    eprintln!(
        "neighbour after 4 timeouts: p50 {:?}, max {:?}; SQLite threads {spent} ms CPU/s",
        took[10], took[19]
    );
    assert!(took[10] < Duration::from_millis(100), "{took:?}");
    s.shutdown().await;
}

/// This process's resident memory (VmRSS), in MiB.
fn rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        >> 10
}

#[tokio::test]
async fn huge_values_and_results_are_refused_before_the_host_holds_them() {
    use orquesta::engine::limits::capability::{SQL_MAX_RESULT_BYTES, SQL_MAX_VALUE_BYTES};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
    let s = TestServer::start(&["hostile"], &[("a", &tenant(""))], |_| {}).await;
    // The host's memory, sampled while the attacks run.
    let before = rss_mib();
    let peak = std::sync::Arc::new(AtomicU64::new(before));
    let done = std::sync::Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Relaxed) {
                peak.fetch_max(rss_mib(), Relaxed);
                // The sampling period.
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let four = "FROM (VALUES (1), (2), (3), (4))";
    let twenty = "FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20) SELECT x FROM c)";
    let attacks = [
        // One value past the value cap, four rows of it.
        (
            format!("SELECT zeroblob(400000000) {four}"),
            SQL_MAX_VALUE_BYTES as u64,
        ),
        (
            format!("SELECT randomblob(400000000) {four}"),
            SQL_MAX_VALUE_BYTES as u64,
        ),
        (
            format!("SELECT length(zeroblob(400000000)) {four}"),
            SQL_MAX_VALUE_BYTES as u64,
        ),
        // Rows each under the value cap, together past the result cap.
        (
            format!("SELECT randomblob(1000000) {twenty}"),
            SQL_MAX_RESULT_BYTES as u64,
        ),
    ];
    for (attack, cap) in &attacks {
        // Four of each at once.
        let answers = futures::future::join_all((0..4).map(|_| sql(&s, "a", attack, true))).await;
        for (status, problem) in answers {
            let attack = &attack[..attack.len().min(60)];
            assert_eq!(status, 500, "{attack}: {problem}");
            assert_eq!(problem["title"], "Invalid", "{attack}: {problem}");
            let detail = problem["detail"].as_str().unwrap_or_default();
            assert!(detail.contains(&cap.to_string()), "{attack}: {problem}");
        }
    }
    done.store(true, Relaxed);
    sampler.join().unwrap();
    let grew = peak.load(Relaxed) - before;
    eprintln!("peak RSS grew {grew} MiB during 16 oversized queries, 4 at a time");
    assert!(grew < 300, "the host's memory grew by {grew} MiB");
    s.shutdown().await;
}

// --- PostgreSQL and MariaDB: the tenant role recommended in docs/TENANTS.md ---

const ROLE: &str = "orquesta_sql_tenant";

/// `url` with `user` in place of its user (and no password).
fn as_user(url: &str, user: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let rest = rest.rsplit_once('@').map(|(_, r)| r).unwrap_or(rest);
    format!("{scheme}://{user}@{rest}")
}

async fn sandbox(url: &str, timeout_ms: u64) -> Sandbox {
    let hostile = TestPlugin::load(plugin("hostile")).await.unwrap();
    let mut sandbox = hostile.sandbox().await.unwrap();
    sandbox
        .database_config(
            "app",
            DatabaseConfig {
                // One connection: session state (temp tables) holds between statements.
                max_connections: 1,
                statement_timeout_ms: timeout_ms,
                ..DatabaseConfig::new(url)
            },
        )
        .unwrap();
    sandbox
}

async fn one(sandbox: &Sandbox, sql: &str) -> Result<Value, orquesta::engine::InvokeError> {
    let event = json!({ "type": "task", "input": { "attack": "sql", "database": "app", "steps": [{ "sql": sql, "query": true }] } });
    sandbox.invoke(event).await
}

#[tokio::test]
#[cfg_attr(no_postgres, ignore = "ORQUESTA_TEST_POSTGRES_URL is not set")]
async fn a_postgres_tenant_role_reaches_no_server_file_and_its_statements_stop() {
    let admin_url = orquesta_tests::db::postgres();
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    // The role docs/TENANTS.md recommends: login, no superuser, no pg_*_server_files or
    // pg_execute_server_program; its own schema.
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    for statement in [
        format!(
            "DO $$ BEGIN CREATE ROLE {ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        ),
        format!("GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {ROLE}"),
        format!("CREATE SCHEMA IF NOT EXISTS {ROLE} AUTHORIZATION {ROLE}"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&mut admin)
            .await
            .unwrap();
    }
    let sandbox = sandbox(&as_user(&admin_url, ROLE), 300).await;
    one(&sandbox, "CREATE TEMP TABLE lines (line TEXT)")
        .await
        .unwrap();
    let out = format!("/tmp/orquesta-sql-{}.out", std::process::id());
    for attack in [
        format!("COPY (SELECT 1) TO '{out}'"),
        "COPY lines FROM '/etc/passwd'".to_string(),
        "COPY lines FROM PROGRAM 'id'".to_string(),
        format!("COPY (SELECT 1) TO PROGRAM 'touch {out}'"),
        "SELECT pg_read_file('/etc/passwd')".to_string(),
        "SELECT pg_read_binary_file('/etc/passwd')".to_string(),
        "SELECT pg_ls_dir('.')".to_string(),
        "SELECT lo_import('/etc/passwd')".to_string(),
        format!("SELECT lo_export(1, '{out}')"),
        "CREATE EXTENSION IF NOT EXISTS dblink".to_string(),
        "CREATE EXTENSION IF NOT EXISTS file_fdw".to_string(),
        "ALTER SYSTEM SET statement_timeout = 0".to_string(),
    ] {
        let err = one(&sandbox, &attack).await.expect_err(&attack);
        assert_eq!(err.name(), "HostFailed", "{attack}: {err}");
        assert!(
            ["permission denied", "must be superuser", "not allowed"]
                .iter()
                .any(|m| err.cause().contains(m)),
            "{attack}: {err}"
        );
    }
    assert!(!std::path::Path::new(&out).exists());

    // A statement past its deadline stops in the server, not only in the host.
    let forever =
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
    for _ in 0..2 {
        let err = one(&sandbox, forever).await.unwrap_err();
        assert_eq!(err.name(), "Timeout", "{err}");
    }
    let active = "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND state = 'active'";
    let running = wait_until_zero(|| {
        let admin_url = admin_url.clone();
        async move {
            let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
            sqlx::query_scalar::<_, i64>(active)
                .bind(ROLE)
                .fetch_one(&mut admin)
                .await
                .unwrap()
        }
    })
    .await;
    assert_eq!(running, 0, "the role still has an active statement");
    // And the connection is free for the next one.
    let rows = one(&sandbox, "SELECT 1 AS one").await.unwrap();
    assert_eq!(rows[0]["rows"], json!([[1]]));

    // A plugin that turns its session's timeout off, or catches the cancel, has its
    // statement ended from outside once it has run its time.
    let catch = "DO $$ BEGIN LOOP BEGIN PERFORM pg_sleep(1); \
                 EXCEPTION WHEN query_canceled THEN NULL; END; END LOOP; END $$";
    for (setup, attack) in [(Some("SET statement_timeout = 0"), forever), (None, catch)] {
        if let Some(setup) = setup {
            one(&sandbox, setup).await.unwrap();
        }
        let err = one(&sandbox, attack).await.unwrap_err();
        assert_eq!(err.name(), "Timeout", "{attack}: {err}");
        let running = wait_until_zero(|| {
            let admin_url = admin_url.clone();
            async move {
                let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
                sqlx::query_scalar::<_, i64>(active)
                    .bind(ROLE)
                    .fetch_one(&mut admin)
                    .await
                    .unwrap()
            }
        })
        .await;
        assert_eq!(running, 0, "{attack}: still running");
        let rows = one(&sandbox, "SELECT 1 AS one").await.unwrap();
        assert_eq!(rows[0]["rows"], json!([[1]]), "{attack}");
    }
}

#[tokio::test]
#[cfg_attr(no_mysql, ignore = "ORQUESTA_TEST_MYSQL_URL is not set")]
async fn a_mariadb_tenant_user_reaches_no_server_file_and_its_statements_stop() {
    let admin_url = orquesta_tests::db::mysql();
    let mut admin = sqlx::MySqlConnection::connect(&admin_url).await.unwrap();
    let db: String = sqlx::query_scalar("SELECT DATABASE()")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    // The user docs/TENANTS.md recommends: data and schema privileges on its own
    // database only; no FILE, PROCESS, SUPER or global privileges.
    for host in ["%", "localhost"] {
        for statement in [
            format!("CREATE USER IF NOT EXISTS '{ROLE}'@'{host}'"),
            format!(
                "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER, \
                 CREATE TEMPORARY TABLES, CREATE VIEW, SHOW VIEW ON `{db}`.* TO '{ROLE}'@'{host}'"
            ),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                .execute(&mut admin)
                .await
                .unwrap();
        }
    }
    let sandbox = sandbox(&as_user(&admin_url, ROLE), 300).await;
    one(&sandbox, "CREATE TEMPORARY TABLE loaded (line TEXT)")
        .await
        .unwrap();
    let out = format!("/tmp/orquesta-sql-{}.out", std::process::id());
    for attack in [
        "LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE loaded".to_string(),
        "LOAD DATA INFILE '/etc/passwd' INTO TABLE loaded".to_string(),
        format!("SELECT 'x' INTO OUTFILE '{out}'"),
        format!("SELECT 'x' INTO DUMPFILE '{out}'"),
        "SET GLOBAL max_statement_time = 0".to_string(),
    ] {
        let err = one(&sandbox, &attack).await.expect_err(&attack);
        assert_eq!(err.name(), "HostFailed", "{attack}: {err}");
        assert!(
            ["denied", "not allowed", "privilege"]
                .iter()
                .any(|m| err.cause().contains(m)),
            "{attack}: {err}"
        );
    }
    assert!(!std::path::Path::new(&out).exists());
    // LOAD_FILE without the FILE privilege reads nothing.
    let rows = one(&sandbox, "SELECT LOAD_FILE('/etc/passwd') AS f")
        .await
        .unwrap();
    assert_eq!(rows[0]["rows"], json!([[null]]));

    // A statement past its deadline stops in the server (max_statement_time).
    let forever = "SELECT BENCHMARK(100000000000, MD5('x'))";
    for _ in 0..2 {
        let err = one(&sandbox, forever).await.unwrap_err();
        assert_eq!(err.name(), "Timeout", "{err}");
    }
    let running = wait_until_zero(|| {
        let admin_url = admin_url.clone();
        async move {
            let mut admin = sqlx::MySqlConnection::connect(&admin_url).await.unwrap();
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM information_schema.PROCESSLIST WHERE USER = ? AND COMMAND <> 'Sleep'",
            )
            .bind(ROLE)
            .fetch_one(&mut admin)
            .await
            .unwrap()
        }
    })
    .await;
    assert_eq!(running, 0, "the user still has a running statement");
    let rows = one(&sandbox, "SELECT 1 AS one").await.unwrap();
    assert_eq!(rows[0]["rows"], json!([[1]]));

    // A plugin that turns its session's timeout off has its statement ended from
    // outside once it has run its time.
    one(&sandbox, "SET SESSION max_statement_time = 0")
        .await
        .unwrap();
    let err = one(&sandbox, forever).await.unwrap_err();
    assert_eq!(err.name(), "Timeout", "{err}");
    let running = wait_until_zero(|| {
        let admin_url = admin_url.clone();
        async move {
            let mut admin = sqlx::MySqlConnection::connect(&admin_url).await.unwrap();
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM information_schema.PROCESSLIST WHERE USER = ? AND COMMAND <> 'Sleep'",
            )
            .bind(ROLE)
            .fetch_one(&mut admin)
            .await
            .unwrap()
        }
    })
    .await;
    assert_eq!(
        running, 0,
        "the user's statement still runs with its timeout off"
    );
    let rows = one(&sandbox, "SELECT 1 AS one").await.unwrap();
    assert_eq!(rows[0]["rows"], json!([[1]]));
}

/// Polls `count` for up to 3 s; its last value.
async fn wait_until_zero<F, Fut>(count: F) -> i64
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = i64>,
{
    let started = Instant::now();
    loop {
        let n = count().await;
        if n == 0 || started.elapsed() > Duration::from_secs(3) {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
