//! What SQL on a tenant's SQLite connection may reach: its own database file and nothing
//! else. Each new connection gets an authorizer (no ATTACH/DETACH, no file or extension
//! functions, only the pragmas in [`PRAGMAS`]), `SQLITE_LIMIT_ATTACHED = 0` (so `VACUUM`,
//! which attaches a scratch database, is refused too), extension loading off, defensive
//! mode and an untrusted schema; and a progress handler that stops each statement at its
//! deadline, so a timed-out statement frees its connection and its thread.
//!
//! Raw FFI through `libsqlite3-sys`, the same copy sqlx-sqlite links (`links = "sqlite3"`
//! makes a second copy a resolution error), on the handle sqlx lends while it is locked.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::ptr;
use std::sync::Arc;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use libsqlite3_sys as ffi;
use sqlx::ConnectOptions as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

/// VM instructions between two deadline checks: a check is one clock read, and a few
/// thousand instructions take microseconds, so a statement stops within about a
/// millisecond of its deadline. (SQLite checks only at jumps: straight-line code, such
/// as one row's values, runs whole.)
const PROGRESS_OPS: i32 = 1000;

/// Pragmas a plugin may run, and whether it may give them a value. Schema introspection,
/// and settings that only concern the tenant's own database. Everything else is refused:
/// pragmas that touch files (`journal_mode`, `temp_store_directory`, `wal_checkpoint`,
/// `locking_mode`), memory or limits (`cache_size`, `mmap_size`, `hard_heap_limit`,
/// `max_page_count`, `threads`), or the schema's integrity (`writable_schema`,
/// `schema_version`, `trusted_schema`), or that reveal the host's paths (`database_list`).
const PRAGMAS: &[(&str, Use)] = &[
    ("table_info", Use::Any),
    ("table_xinfo", Use::Any),
    ("table_list", Use::Any),
    ("index_list", Use::Any),
    ("index_info", Use::Any),
    ("index_xinfo", Use::Any),
    ("foreign_key_list", Use::Any),
    ("foreign_key_check", Use::Any),
    ("integrity_check", Use::Any),
    ("quick_check", Use::Any),
    ("foreign_keys", Use::Any),
    ("defer_foreign_keys", Use::Any),
    ("user_version", Use::Any),
    ("application_id", Use::Any),
    ("page_count", Use::Read),
    ("freelist_count", Use::Read),
    ("data_version", Use::Read),
];

#[derive(Clone, Copy, PartialEq)]
enum Use {
    /// With or without an argument (a table name, or a new value of the tenant's own).
    Any,
    /// Only read.
    Read,
}

/// Functions refused wherever they appear. `load_extension` is off anyway (below);
/// `fts3_tokenizer` with two arguments registers a C pointer; the file functions exist
/// only in SQLite's shell, refused in case a later build links them.
const FUNCTIONS: &[&str] = &[
    "load_extension",
    "fts3_tokenizer",
    "readfile",
    "writefile",
    "edit",
    "fsdir",
];

/// Modules `CREATE VIRTUAL TABLE` may use: full-text search and R-trees, which keep
/// their data in the tenant's own database.
const MODULES: &[&str] = &["fts3", "fts4", "fts5", "fts5vocab", "rtree", "rtree_i32"];

/// A tenant's SQLite connection, locked down, and the deadline its progress handler
/// reads. The handler is set once, when the connection opens: setting it per statement
/// took a round trip to the connection's thread each time.
pub(super) struct Connection {
    conn: SqliteConnection,
    /// When the statement running must stop, in nanoseconds since [`EPOCH`]; 0 before
    /// the first, so nothing runs unarmed.
    deadline: Arc<AtomicU64>,
    /// A statement was started and its caller did not see it end (its future was
    /// dropped at its deadline or with its invocation, or a cap stopped reading its
    /// rows): it may still be running.
    unfinished: bool,
}

/// The origin of the deadlines the progress handlers read.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn since_epoch(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(*EPOCH).as_nanos()).unwrap_or(u64::MAX)
}

/// Counts in `failures` (one database's) if `e` says the connection or its file failed
/// rather than the statement, by the store's own test of that: the database's held
/// connections opened before it are opened again when next lent (see `store::held`).
/// Per database, so what one tenant's SQL provokes reopens no other tenant's.
pub(super) fn note_failure(failures: &AtomicU64, e: &sqlx::Error) {
    if crate::store::connection_failed(e) {
        failures.fetch_add(1, Ordering::AcqRel);
    }
}

impl Connection {
    /// Opens and locks down a connection (see [`guard`]).
    pub(super) async fn open(
        options: SqliteConnectOptions,
        max_value_bytes: usize,
    ) -> Result<Self, sqlx::Error> {
        let mut conn = options.connect().await?;
        let deadline = Arc::new(AtomicU64::new(0));
        guard(&mut conn, max_value_bytes, deadline.clone()).await?;
        Ok(Connection {
            conn,
            deadline,
            unfinished: false,
        })
    }

    /// The connection, for one statement that must stop at `deadline` (SQLite answers it
    /// `SQLITE_INTERRUPT`).
    pub(super) async fn arm(&mut self, deadline: Instant) -> Result<Armed<'_>, sqlx::Error> {
        if self.unfinished {
            // Moving the deadline now could extend a statement left running. Taking the
            // handle is a command queued behind it: it returns once that one has stopped.
            drop(self.conn.lock_handle().await?);
        }
        self.deadline
            .store(since_epoch(deadline), Ordering::Release);
        self.unfinished = true;
        Ok(Armed(self))
    }
}

/// A connection armed for one statement. Dropped before [`Armed::finished`] (its
/// caller left), it stops the statement at SQLite's next progress check.
pub(super) struct Armed<'a>(&'a mut Connection);

impl Armed<'_> {
    pub(super) fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.0.conn
    }

    /// The statement has ended in SQLite (all its rows were read).
    pub(super) fn finished(self) {
        self.0.unfinished = false;
    }
}

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        if self.0.unfinished {
            self.0.deadline.store(0, Ordering::Release);
        }
    }
}

/// Locks down a new connection: see the module doc. `max_value_bytes` becomes
/// `SQLITE_LIMIT_LENGTH`, so no larger string, blob or row is ever made. Statements stop
/// once the clock passes `deadline`.
async fn guard(
    conn: &mut SqliteConnection,
    max_value_bytes: usize,
    deadline: Arc<AtomicU64>,
) -> Result<(), sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    // The store of the deadline happens before the statement is sent to the
    // connection's thread (a channel send), so the handler sees it.
    handle.set_progress_handler(PROGRESS_OPS, move || {
        since_epoch(Instant::now()) < deadline.load(Ordering::Acquire)
    });
    let db = handle.as_raw_handle().as_ptr();
    let length = c_int::try_from(max_value_bytes).unwrap_or(c_int::MAX);
    // SAFETY: `db` is a valid connection, and locked: sqlx's worker makes no call on it
    // until `handle` is dropped. `authorize` matches `sqlite3_set_authorizer`'s callback
    // type, needs no user data, and never unwinds.
    unsafe {
        check(
            db,
            ffi::sqlite3_set_authorizer(db, Some(authorize), ptr::null_mut()),
        )?;
        ffi::sqlite3_limit(db, ffi::SQLITE_LIMIT_ATTACHED, 0);
        ffi::sqlite3_limit(db, ffi::SQLITE_LIMIT_LENGTH, length);
        ffi::sqlite3_limit(db, ffi::SQLITE_LIMIT_WORKER_THREADS, 0);
        for (option, value) in [
            (ffi::SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0),
            (ffi::SQLITE_DBCONFIG_DEFENSIVE, 1),
            (ffi::SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0),
            (ffi::SQLITE_DBCONFIG_ENABLE_ATTACH_CREATE, 0),
            (ffi::SQLITE_DBCONFIG_ENABLE_ATTACH_WRITE, 0),
        ] {
            let rc = ffi::sqlite3_db_config(db, option, value as c_int, ptr::null_mut::<c_int>());
            check(db, rc)?;
        }
    }
    Ok(())
}

/// SQLite's primary result codes the capability reports as such.
pub(super) const INTERRUPTED: i32 = ffi::SQLITE_INTERRUPT;
pub(super) const NOT_AUTHORIZED: i32 = ffi::SQLITE_AUTH;
pub(super) const TOO_BIG: i32 = ffi::SQLITE_TOOBIG;

fn check(db: *mut ffi::sqlite3, rc: c_int) -> Result<(), sqlx::Error> {
    if rc == ffi::SQLITE_OK {
        return Ok(());
    }
    // SAFETY: `db` is valid (see `guard`); the message is copied before the next call.
    let message = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db)) };
    Err(sqlx::Error::Protocol(format!(
        "cannot lock down the SQLite connection: {} (code {rc})",
        message.to_string_lossy()
    )))
}

/// The authorizer: SQLite calls it while preparing each statement (and the statements
/// inside triggers and views), once per action.
unsafe extern "C" fn authorize(
    _: *mut c_void,
    action: c_int,
    first: *const c_char,
    second: *const c_char,
    _database: *const c_char,
    _trigger: *const c_char,
) -> c_int {
    // SAFETY: SQLite passes NUL-terminated strings or nulls, valid during the call.
    let (first, second) = unsafe { (text(first), text(second)) };
    if allowed(action, first, second) {
        ffi::SQLITE_OK
    } else {
        ffi::SQLITE_DENY
    }
}

/// # Safety
/// `p` is null or a NUL-terminated string that outlives the returned reference.
unsafe fn text<'a>(p: *const c_char) -> Option<&'a str> {
    if p.is_null() {
        return None;
    }
    // SAFETY: as the caller promises.
    unsafe { CStr::from_ptr(p) }.to_str().ok()
}

fn allowed(action: c_int, first: Option<&str>, second: Option<&str>) -> bool {
    let named = |list: &[&str], name: Option<&str>| {
        name.is_some_and(|n| list.iter().any(|l| l.eq_ignore_ascii_case(n)))
    };
    match action {
        ffi::SQLITE_ATTACH | ffi::SQLITE_DETACH => false,
        ffi::SQLITE_PRAGMA => pragma_allowed(first, second.is_some()),
        // Table-valued pragmas (`SELECT * FROM pragma_database_list`) are read as tables.
        ffi::SQLITE_READ => match first.and_then(|t| strip_prefix_ci(t, "pragma_")) {
            Some(pragma) => pragma_allowed(Some(pragma), false),
            None => true,
        },
        ffi::SQLITE_FUNCTION => !named(FUNCTIONS, second),
        ffi::SQLITE_CREATE_VTABLE | ffi::SQLITE_DROP_VTABLE => named(MODULES, second),
        _ => true,
    }
}

fn pragma_allowed(name: Option<&str>, with_value: bool) -> bool {
    let Some(name) = name else { return false };
    PRAGMAS
        .iter()
        .any(|(p, use_)| p.eq_ignore_ascii_case(name) && (*use_ == Use::Any || !with_value))
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::time::Duration;

    use crate::capabilities::CapError;
    use crate::capabilities::sql::DatabaseConfig;
    use crate::capabilities::sql::{SqlDatabases, TenantDatabases};
    use crate::engine::limits::capability::SQL_MAX_VALUE_BYTES;

    /// Tenant `acme`'s database `app` (a file under `dir/acme`), as the host opens it.
    fn tenant(dir: &Path, timeout_ms: u64, connections: u32) -> TenantDatabases {
        let config = DatabaseConfig {
            max_connections: connections,
            statement_timeout_ms: timeout_ms,
            ..DatabaseConfig::new("sqlite://app.db")
        };
        TenantDatabases::new(&BTreeMap::from([("app".into(), config)]), &dir.join("acme")).unwrap()
    }

    /// A statement that never ends by itself.
    const FOREVER: &str =
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";

    async fn run(db: &TenantDatabases, sql: &str) -> Result<u64, CapError> {
        db.execute("app", sql, Vec::new()).await
    }

    /// Another tenant's file, written without any guard.
    async fn neighbour(dir: &Path) -> std::path::PathBuf {
        use sqlx::Connection as _;
        let file = dir.join("other/x.db");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        let url = format!("sqlite://{}?mode=rwc", file.display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::raw_sql("CREATE TABLE secrets (v TEXT); INSERT INTO secrets VALUES ('b-only')")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        file
    }

    #[tokio::test]
    async fn sql_reaches_no_file_but_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let other = neighbour(&root).await;
        let db = tenant(&root, 5_000, 2);
        run(&db, "CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
            .await
            .unwrap();
        let other = other.display();
        let copy = root.join("copy.db");
        let copy = copy.display();
        let refused = [
            format!("ATTACH DATABASE '{other}' AS b"),
            format!("ATTACH 'file:{other}?mode=ro' AS b"),
            format!("ATTACH '{}/new.db' AS n", root.display()),
            "ATTACH ':memory:' AS m".into(),
            "DETACH DATABASE main".into(),
            format!("VACUUM INTO '{copy}'"),
            "VACUUM".into(),
            "PRAGMA journal_mode = WAL".into(),
            "PRAGMA cache_size = -10000000".into(),
            "PRAGMA mmap_size = 1000000000".into(),
            "PRAGMA hard_heap_limit = 1".into(),
            "PRAGMA soft_heap_limit = 1".into(),
            "PRAGMA max_page_count = 1".into(),
            "PRAGMA threads = 8".into(),
            format!("PRAGMA temp_store_directory = '{}'", root.display()),
            "PRAGMA writable_schema = ON".into(),
            "PRAGMA trusted_schema = ON".into(),
            "PRAGMA locking_mode = EXCLUSIVE".into(),
            "PRAGMA wal_checkpoint".into(),
            "PRAGMA database_list".into(),
            "PRAGMA page_count = 5".into(),
            "SELECT * FROM pragma_database_list".into(),
            "SELECT file FROM pragma_database_list()".into(),
            "SELECT load_extension('/tmp/libevil.so')".into(),
            "SELECT fts3_tokenizer('simple')".into(),
            "SELECT readfile('/etc/passwd')".into(),
            format!("SELECT writefile('{copy}', 'x')"),
            "CREATE VIRTUAL TABLE s USING dbstat".into(),
        ];
        for sql in &refused {
            let err = run(&db, sql).await.expect_err(sql);
            assert!(
                matches!(err, CapError::Denied(_) | CapError::Failed(_)),
                "{sql}: {err}"
            );
        }
        // Inside a trigger or a view, the statement that runs it is refused.
        run(&db, "CREATE TABLE u (x)").await.unwrap();
        let trigger = format!(
            "CREATE TRIGGER tr AFTER INSERT ON u BEGIN SELECT load_extension('{copy}'); END"
        );
        let _ = run(&db, &trigger).await;
        let _ = run(&db, "CREATE VIEW v AS SELECT * FROM pragma_database_list").await;
        let err = run(&db, "INSERT INTO u VALUES (1)").await.unwrap_err();
        assert!(matches!(err, CapError::Denied(_)), "{err}");
        // (A schema is untrusted: its views may not use pragma tables at all.)
        let err = run(&db, "SELECT * FROM v").await.unwrap_err();
        assert!(err.to_string().contains("unsafe use"), "{err}");
        // The authorizer's refusals say so.
        let err = run(&db, &refused[0]).await.unwrap_err();
        assert!(matches!(err, CapError::Denied(_)), "{err}");
        assert!(err.to_string().contains("not authorized"), "{err}");
        assert!(!root.join("copy.db").exists() && !root.join("new.db").exists());

        // What a plugin may need still works.
        for sql in [
            "PRAGMA foreign_keys = ON",
            "PRAGMA user_version = 7",
            "PRAGMA table_info(t)",
            "PRAGMA index_list('t')",
            "PRAGMA integrity_check",
            "PRAGMA page_count",
            "CREATE VIRTUAL TABLE notes USING fts5(body)",
            "CREATE INDEX t_body ON t (body)",
            "INSERT INTO t (body) VALUES ('kept')",
        ] {
            run(&db, sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        let rows = db
            .query(
                "app",
                "SELECT name FROM pragma_table_info('t') ORDER BY cid",
                Vec::new(),
            )
            .await
            .unwrap();
        assert_eq!(rows.rows.len(), 2);
        let rows = db
            .query("app", "PRAGMA user_version", Vec::new())
            .await
            .unwrap();
        assert_eq!(rows.rows, vec![vec![super::super::SqlValue::Integer(7)]]);
    }

    #[tokio::test]
    async fn a_statement_past_its_deadline_stops_and_frees_its_connection() {
        let dir = tempfile::tempdir().unwrap();
        // One connection: the next statement runs only if the first one let go of it.
        let db = tenant(dir.path(), 200, 1);
        for _ in 0..3 {
            let started = std::time::Instant::now();
            let err = db.query("app", FOREVER, Vec::new()).await.unwrap_err();
            assert!(matches!(err, CapError::Timeout(_)), "{err}");
            assert!(
                started.elapsed() < Duration::from_millis(600),
                "{:?}",
                started.elapsed()
            );
            let started = std::time::Instant::now();
            // Were the statement still running, this would wait for the connection
            // and time out.
            let rows = db.query("app", "SELECT 42", Vec::new()).await.unwrap();
            assert_eq!(rows.rows.len(), 1);
            assert!(
                started.elapsed() < Duration::from_millis(200),
                "the next statement waited {:?}",
                started.elapsed()
            );
        }
    }

    #[tokio::test]
    async fn a_statement_its_caller_left_stops_and_the_next_one_runs() {
        let dir = tempfile::tempdir().unwrap();
        let db = tenant(dir.path(), 5_000, 1);
        for _ in 0..3 {
            // The caller goes away after 50 ms (its invocation ended), long before the
            // statement's deadline.
            let left = tokio::time::timeout(
                Duration::from_millis(50),
                db.query("app", FOREVER, Vec::new()),
            )
            .await;
            assert!(left.is_err());
            // The next statement on the one connection runs at once: the one left stopped
            // (it would otherwise hold the connection to its deadline, 5 s), and arming
            // this one did not hand it this one's deadline (which would have run it on
            // and timed this one out).
            let started = std::time::Instant::now();
            let rows = db.query("app", "SELECT 42", Vec::new()).await.unwrap();
            assert_eq!(rows.rows.len(), 1);
            assert!(
                started.elapsed() < Duration::from_millis(1_000),
                "{:?}",
                started.elapsed()
            );
        }
    }

    #[tokio::test]
    async fn no_value_or_result_larger_than_the_cap_is_made() {
        let dir = tempfile::tempdir().unwrap();
        let db = tenant(dir.path(), 5_000, 2);
        let four = "(VALUES (1), (2), (3), (4))";
        for sql in [
            format!("SELECT zeroblob(400000000) FROM {four}"),
            format!("SELECT randomblob(400000000) FROM {four}"),
            format!(
                "SELECT length(zeroblob({})) FROM {four}",
                SQL_MAX_VALUE_BYTES + 1
            ),
        ] {
            let err = db.query("app", &sql, Vec::new()).await.unwrap_err();
            assert!(matches!(err, CapError::Invalid(_)), "{sql}: {err}");
            assert!(
                err.to_string().contains(&SQL_MAX_VALUE_BYTES.to_string()),
                "{err}"
            );
        }
        // printf gives up past the limit: NULL, not 400 MB.
        let sql = format!("SELECT printf('%.*c', 400000000, 'x') FROM {four}");
        match db.query("app", &sql, Vec::new()).await {
            Err(CapError::Invalid(_)) => {}
            Ok(rows) => assert!(
                rows.rows
                    .iter()
                    .flatten()
                    .all(|v| *v == super::super::SqlValue::Null),
                "{sql}"
            ),
            Err(e) => panic!("{sql}: {e}"),
        }
        // Rows each under the cap, together over it, stop as they stream in.
        let sql = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20) \
                   SELECT randomblob(1000000) FROM c";
        let err = db.query("app", sql, Vec::new()).await.unwrap_err();
        assert!(matches!(err, CapError::Invalid(_)), "{err}");
        assert!(err.to_string().contains("SQL_MAX_RESULT_BYTES"), "{err}");
        let rows = db
            .query("app", "SELECT length(randomblob(1000000))", Vec::new())
            .await
            .unwrap();
        assert_eq!(rows.rows.len(), 1);
    }
}
