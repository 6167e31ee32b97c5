//! The host's durable state over sqlx. The embedded default is a SQLite file (WAL) in the
//! data directory; the schema lives in `host/migrations` and is applied on open.

mod blob;
pub mod delivery;
pub mod deploys;
pub(crate) mod held;
pub mod hosts;
mod kv;
pub mod queue;
pub mod schedule;
pub mod task_tokens;
pub mod usage;
pub mod workflow;

pub use blob::{
    BlobBackend, BlobBackendKind, BlobsConfig, BlobsConfigError, FsBlobs, S3Blobs, TenantBlobs,
};
pub use kv::TenantKv;

use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Connection as _, Executor as _};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("cannot open the store at {location}: {source}")]
    Open {
        location: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("unsupported store URL {0:?}: use sqlite://PATH or postgres://...")]
    Scheme(String),
    #[error("cannot apply the store's migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("store query failed: {0}")]
    Query(sqlx::Error),
    /// A send the queue's depth quota refuses: the reason.
    #[error("{0}")]
    QueueFull(String),
}

/// Connection-level failures seen in this process, counted as statements' errors become
/// `StoreError`s. The held SQLite writer compares the count with the one it last saw
/// when a caller takes it, and reconnects if it moved: a connection whose file failed
/// under it (an I/O error, the file replaced) would otherwise fail every write until a
/// restart. Counted for the whole process, since an error does not say which store it
/// came from: another store's failure costs this one a needless reconnect, rarely.
static CONNECTION_FAILURES: AtomicU64 = AtomicU64::new(0);

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if connection_failed(&e) {
            CONNECTION_FAILURES.fetch_add(1, Ordering::AcqRel);
            tracing::warn!(error = %e, "store connection failed; the SQLite writer reconnects on its next use");
        }
        StoreError::Query(e)
    }
}

/// Whether `e` says the connection (or its file) failed, rather than the statement.
pub(crate) fn connection_failed(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => {
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_none() {
                return false;
            }
            // SQLite's extended result code, as text.
            let code: i32 = db.code().and_then(|c| c.parse().ok()).unwrap_or(0);
            // SQLITE_IOERR, SQLITE_CANTOPEN, SQLITE_NOTADB (and their extended codes), and
            // SQLITE_READONLY_DBMOVED: the file was unlinked or replaced.
            matches!(code & 0xff, 10 | 14 | 26) || code == 1032
        }
        _ => false,
    }
}

/// The durable store: SQLite (the embedded default) or PostgreSQL (several hosts on one
/// database). Queries are written once, in the SQL both accept, with `$N` parameters.
/// Cheap to clone (connection pools and a shared connection).
#[derive(Clone, Debug)]
pub struct Store {
    /// Every statement that writes. On SQLite, one connection: SQLite runs one writer at
    /// a time, and writers waiting for this connection are woken in turn, where writers
    /// on separate connections would sleep in SQLite's busy handler (a millisecond and
    /// up) or fail a read-then-write transaction outright.
    writer: Writer,
    /// Statements that only read. On SQLite, connections of their own (WAL lets them read
    /// beside the writer, seeing everything committed); on PostgreSQL, the same pool.
    reader: Reader,
    backend: Backend,
    /// Increments of one key on this host take turns (by the key's stripe), so a hot
    /// counter (a usage plan's monthly quota) is not lost to compare-and-swap races
    /// between this host's own requests; other hosts are still met by the swap.
    increments: std::sync::Arc<[tokio::sync::Mutex<()>]>,
}

/// Where the statements that write go.
#[derive(Clone)]
enum Writer {
    /// PostgreSQL, and the in-memory store (whose one connection also reads).
    Pool(AnyPool),
    /// A SQLite file: one connection held for the store's life, writers taking turns on
    /// its lock. From a pool, every statement cost two more round trips to the thread
    /// sqlx runs the connection on (sqlx pings a connection when it is acquired and again
    /// when it is released): 40% of the queue benchmark's claim time.
    Held(Arc<tokio::sync::Mutex<HeldWriter>>),
}

/// Where the statements that only read go.
#[derive(Clone)]
enum Reader {
    /// PostgreSQL (the writers' pool), and the in-memory store.
    Pool(AnyPool),
    /// A SQLite file: `SQLITE_READERS` connections held open and lent in turn.
    Held(Arc<held::Held<AnyConnection>>),
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reader::Pool(pool) => f.debug_tuple("Pool").field(pool).finish(),
            Reader::Held(_) => f.write_str("Held"),
        }
    }
}

/// A reader's connection for one statement.
enum ReaderConn {
    Pooled(PoolConnection<Any>),
    Held(held::Lent<AnyConnection>),
}

impl Deref for ReaderConn {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        match self {
            ReaderConn::Pooled(conn) => conn,
            ReaderConn::Held(conn) => conn,
        }
    }
}

impl DerefMut for ReaderConn {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match self {
            ReaderConn::Pooled(conn) => conn,
            ReaderConn::Held(conn) => conn,
        }
    }
}

/// The held SQLite writer.
struct HeldWriter {
    conn: AnyConnection,
    /// How to open it again after it failed.
    options: AnyConnectOptions,
    /// `CONNECTION_FAILURES` when this connection was last known good.
    failures_seen: u64,
    /// Set while a query that begins and commits its own transaction runs. If that
    /// query's future is dropped midway, sqlx's thread stops between its statements and
    /// the transaction stays open; the writer's next user rolls it back first.
    open_transaction: bool,
}

impl HeldWriter {
    /// Runs `query`, a `BEGIN; ...; COMMIT` of its own, in one round trip to the thread
    /// sqlx runs SQLite on (a sqlx transaction costs a round trip each for BEGIN and
    /// COMMIT), and returns the rows its statements return. A statement that fails leaves
    /// the transaction open: it is rolled back. (Its rows affected cannot be trusted:
    /// sqlx counts `sqlite3_changes` after every statement, and BEGIN and COMMIT repeat
    /// the last INSERT's, UPDATE's or DELETE's.)
    async fn fetch_in_transaction<'q>(
        &mut self,
        query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
    ) -> Result<Vec<sqlx::any::AnyRow>, StoreError> {
        self.open_transaction = true;
        let rows = query.fetch_all(&mut self.conn).await;
        if rows.is_err() {
            self.rollback().await;
        }
        self.open_transaction = false;
        Ok(rows?)
    }

    /// Replaces the connection with a new one to the same file.
    async fn reconnect(&mut self) -> Result<(), StoreError> {
        let mut conn = AnyConnection::connect_with(&self.options).await?;
        conn.execute(SQLITE_PRAGMAS).await?;
        let old = std::mem::replace(&mut self.conn, conn);
        // The old connection failed already; whatever closing it says changes nothing.
        let _ = old.close_hard().await;
        self.open_transaction = false;
        tracing::info!("the SQLite writer reconnected");
        Ok(())
    }

    /// Its error is not the caller's: "no transaction is active" when the query got as
    /// far as its COMMIT, and the next statement reports a connection that failed.
    async fn rollback(&mut self) {
        if let Err(e) = self.conn.execute("ROLLBACK").await {
            tracing::debug!(error = %e, "rolling back the SQLite writer's open transaction");
        }
    }
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Writer::Pool(pool) => f.debug_tuple("Pool").field(pool).finish(),
            Writer::Held(_) => f.write_str("Held"),
        }
    }
}

/// The writer's connection for one statement or transaction.
enum WriterConn<'a> {
    Pooled(PoolConnection<Any>),
    Held(tokio::sync::MutexGuard<'a, HeldWriter>),
}

impl WriterConn<'_> {
    /// The held SQLite writer, which can run a transaction in one query; `None` for a
    /// pooled connection (a pool cannot roll back what a dropped query left open).
    fn held(&mut self) -> Option<&mut HeldWriter> {
        match self {
            WriterConn::Held(held) => Some(held),
            WriterConn::Pooled(_) => None,
        }
    }
}

impl Deref for WriterConn<'_> {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        match self {
            WriterConn::Pooled(conn) => conn,
            WriterConn::Held(held) => &held.conn,
        }
    }
}

impl DerefMut for WriterConn<'_> {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match self {
            WriterConn::Pooled(conn) => conn,
            WriterConn::Held(held) => &mut held.conn,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Per SQLite connection. Concurrent writers wait up to 5 s for the write lock before
/// failing (`busy_timeout`). WAL lets readers run beside the writer; NORMAL sync is
/// durable in WAL mode across process crashes.
const SQLITE_PRAGMAS: &str =
    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;";
/// SQLite readers beside the one writer, so admin listings, kv reads and workflow
/// lookups do not queue behind writes. Reads are short; two was not measured against
/// more.
const SQLITE_READERS: u32 = 2;
/// Per host: PostgreSQL's default `max_connections` (100) leaves room for several hosts.
const POSTGRES_CONNECTIONS: u32 = 16;

/// Locks for increments: enough that unrelated counters rarely share one.
const INCREMENT_STRIPES: usize = 64;

impl Store {
    /// Opens the store a URL names: `sqlite://PATH` (created if needed) or
    /// `postgres://...` (the database must exist). Applies the migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            return Self::open_sqlite(Path::new(path.split('?').next().unwrap_or(path))).await;
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = Self::connect(url, Backend::Postgres, POSTGRES_CONNECTIONS, url).await?;
            migrate(&mut *pool.acquire().await?, Backend::Postgres).await?;
            return Ok(Self::new(
                Writer::Pool(pool.clone()),
                Reader::Pool(pool),
                Backend::Postgres,
            ));
        }
        Err(StoreError::Scheme(redact(url)))
    }

    /// Opens (creating if needed) the SQLite store at `path`.
    pub async fn open_sqlite(path: &Path) -> Result<Self, StoreError> {
        let location = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
                location: location.clone(),
                source: sqlx::Error::Io(e),
            })?;
        }
        let url = sqlite_url(path, "mode=rwc").map_err(|e| StoreError::Open {
            location: location.clone(),
            source: sqlx::Error::Io(e),
        })?;
        sqlx::any::install_default_drivers();
        let open_error = |source| StoreError::Open {
            location: location.clone(),
            source,
        };
        let options: AnyConnectOptions = url.parse().map_err(open_error)?;
        let mut writer = AnyConnection::connect_with(&options)
            .await
            .map_err(open_error)?;
        writer.execute(SQLITE_PRAGMAS).await.map_err(open_error)?;
        migrate(&mut writer, Backend::Sqlite).await?;
        let reader_options = options.clone();
        let connect: held::Connect<AnyConnection> = Arc::new(move || {
            let options = reader_options.clone();
            Box::pin(async move {
                let mut conn = AnyConnection::connect_with(&options).await?;
                conn.execute(SQLITE_PRAGMAS).await?;
                Ok(conn)
            })
        });
        // Always in use: never closed for idleness.
        let reader = Arc::new(held::Held::new(
            SQLITE_READERS as usize,
            connect,
            Arc::new(|| CONNECTION_FAILURES.load(Ordering::Acquire)),
            None,
        ));
        // One opened now, so a store that cannot be read fails to open.
        drop(reader.take().await.map_err(open_error)?);
        let reader = Reader::Held(reader);
        let writer = Writer::Held(Arc::new(tokio::sync::Mutex::new(HeldWriter {
            conn: writer,
            options,
            failures_seen: CONNECTION_FAILURES.load(Ordering::Acquire),
            open_transaction: false,
        })));
        Ok(Self::new(writer, reader, Backend::Sqlite))
    }

    /// A private in-memory store: for tests and `orquesta test`.
    pub async fn in_memory() -> Result<Self, StoreError> {
        // Every connection to `:memory:` is a separate database: keep exactly one.
        let pool = Self::connect("sqlite::memory:", Backend::Sqlite, 1, "sqlite::memory:").await?;
        migrate(&mut *pool.acquire().await?, Backend::Sqlite).await?;
        Ok(Self::new(
            Writer::Pool(pool.clone()),
            Reader::Pool(pool),
            Backend::Sqlite,
        ))
    }

    async fn connect(
        url: &str,
        backend: Backend,
        connections: u32,
        location: &str,
    ) -> Result<AnyPool, StoreError> {
        sqlx::any::install_default_drivers();
        let open_error = |source| StoreError::Open {
            location: redact(location),
            source,
        };
        let options: AnyConnectOptions = url.parse().map_err(open_error)?;
        let mut pool = AnyPoolOptions::new().max_connections(connections);
        if backend == Backend::Sqlite {
            // The in-memory store's one connection, kept.
            pool = pool
                .min_connections(connections.min(1))
                .test_before_acquire(false)
                .idle_timeout(None)
                .max_lifetime(None)
                .after_connect(|conn, _| {
                    Box::pin(async move { conn.execute(SQLITE_PRAGMAS).await.map(drop) })
                });
        }
        pool.connect_with(options).await.map_err(open_error)
    }

    fn new(writer: Writer, reader: Reader, backend: Backend) -> Self {
        Store {
            writer,
            reader,
            backend,
            increments: (0..INCREMENT_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The connection for statements that write (or read and then write), once it is
    /// this caller's turn.
    async fn writer(&self) -> Result<WriterConn<'_>, StoreError> {
        Ok(match &self.writer {
            Writer::Pool(pool) => WriterConn::Pooled(pool.acquire().await?),
            Writer::Held(held) => {
                let mut held = held.lock().await;
                let failures = CONNECTION_FAILURES.load(Ordering::Acquire);
                if held.failures_seen != failures {
                    // Until a reconnect succeeds, each use tries again.
                    held.reconnect().await?;
                    held.failures_seen = failures;
                }
                if held.open_transaction {
                    held.rollback().await;
                    held.open_transaction = false;
                }
                WriterConn::Held(held)
            }
        })
    }

    /// A connection for statements that only read.
    async fn reader(&self) -> Result<ReaderConn, sqlx::Error> {
        Ok(match &self.reader {
            Reader::Pool(pool) => ReaderConn::Pooled(pool.acquire().await?),
            Reader::Held(held) => ReaderConn::Held(held.take().await?),
        })
    }
}

/// Numbers the parameters of a statement built at run time, in the order they appear in
/// its text. SQLite gets anonymous `?`: sqlx resolves each `$N` by name, SQLite finds a
/// name by a linear search, and a statement of thousands of `$N` then spent most of its
/// time there (perf: `sqlite3_bind_parameter_name`, docs/BENCHMARKS.md).
struct Placeholders {
    backend: Backend,
    last: usize,
}

impl Placeholders {
    fn new(backend: Backend) -> Self {
        Placeholders { backend, last: 0 }
    }

    fn next(&mut self) -> String {
        self.last += 1;
        match self.backend {
            Backend::Sqlite => "?".to_string(),
            Backend::Postgres => format!("${}", self.last),
        }
    }
}

async fn migrate(conn: &mut AnyConnection, backend: Backend) -> Result<(), StoreError> {
    match backend {
        Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(conn).await?,
        Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(conn).await?,
    }
    Ok(())
}

/// The URL of the SQLite file at `path` (its folder must exist). The driver reads URLs
/// through a URL parser, which would take a relative path's first folder for a host and
/// fold `..` away, so the path is made absolute and canonical, and escaped.
pub(crate) fn sqlite_url(path: &Path, query: &str) -> std::io::Result<String> {
    use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
    const ESCAPE: &AsciiSet = &CONTROLS.add(b' ').add(b'?').add(b'#').add(b'%');
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file = path.file_name().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path names no file")
    })?;
    let absolute = std::fs::canonicalize(dir)?.join(file);
    let text = absolute.to_string_lossy();
    Ok(format!(
        "sqlite://{}?{query}",
        utf8_percent_encode(&text, ESCAPE)
    ))
}

/// A URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn count(store: &Store, schedule: &str) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM schedule_ticks WHERE schedule = $1")
            .bind(schedule)
            .fetch_one(&mut *store.reader().await.unwrap())
            .await
            .unwrap()
    }

    /// A query that began its own transaction and was dropped before its COMMIT (its
    /// future cancelled) must not leave the writer inside that transaction: the next
    /// writes would then stay invisible and be lost with it.
    #[tokio::test]
    async fn a_transaction_left_open_by_a_dropped_query_is_rolled_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("store.db"))
            .await
            .unwrap();
        {
            let mut conn = store.writer().await.unwrap();
            let held = conn.held().expect("a SQLite file's writer is held");
            // What sqlx's thread leaves when a query's receiver is gone after BEGIN.
            held.open_transaction = true;
            held.conn
                .execute(
                    "BEGIN; INSERT INTO schedule_ticks (tenant, schedule, due_at, fired_at)
                     VALUES ('t', 'abandoned', 1, 1)",
                )
                .await
                .unwrap();
        }
        assert!(store.schedule_claim("t", "after", 1).await.unwrap());
        assert_eq!(
            count(&store, "after").await,
            1,
            "the next write is committed"
        );
        assert_eq!(
            count(&store, "abandoned").await,
            0,
            "the open one is undone"
        );

        // And a transaction of one query that fails midway is undone at once.
        let mut conn = store.writer().await.unwrap();
        let held = conn.held().unwrap();
        let failed = held
            .fetch_in_transaction(sqlx::query(
                "BEGIN; INSERT INTO schedule_ticks (tenant, schedule, due_at, fired_at)
                 VALUES ('t', 'failed', 1, 1); INSERT INTO no_such_table VALUES (1); COMMIT",
            ))
            .await;
        assert!(failed.is_err());
        assert!(!held.open_transaction);
        drop(conn);
        assert_eq!(count(&store, "failed").await, 0);
        assert!(store.schedule_claim("t", "later", 1).await.unwrap());
        assert_eq!(count(&store, "later").await, 1);
    }

    /// The tests that fail a connection on purpose: each counts in the process's
    /// `CONNECTION_FAILURES`, which would make the other's broken connection reopen
    /// before it is used.
    static FAILING_CONNECTIONS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    /// A connection to a store file of its own, `doomed.db` in `dir`, to be broken.
    async fn doomed(dir: &Path) -> (AnyConnection, std::path::PathBuf) {
        let file = dir.join("doomed.db");
        let url = sqlite_url(&file, "mode=rwc").unwrap();
        let mut conn = AnyConnection::connect(&url).await.unwrap();
        migrate(&mut conn, Backend::Sqlite).await.unwrap();
        (conn, file)
    }

    /// A writer connection whose file failed under it must not fail every write after:
    /// the next use reconnects. The failure here is a real one: the connection's file is
    /// unlinked, so SQLite refuses its writes (SQLITE_READONLY_DBMOVED) from then on.
    #[tokio::test]
    async fn the_writer_reconnects_after_its_connection_failed() {
        let _one_at_a_time = FAILING_CONNECTIONS.lock().await;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("store.db"))
            .await
            .unwrap();
        assert!(store.schedule_claim("t", "before", 1).await.unwrap());
        {
            let mut conn = store.writer().await.unwrap();
            let held = conn.held().expect("a SQLite file's writer is held");
            let (broken, doomed) = doomed(dir.path()).await;
            std::fs::remove_file(&doomed).unwrap();
            let old = std::mem::replace(&mut held.conn, broken);
            old.close().await.unwrap();
        }
        let failed = store.schedule_claim("t", "during", 1).await;
        assert!(
            matches!(&failed, Err(StoreError::Query(e)) if connection_failed(e)),
            "the write on the failed connection fails as a connection failure: {failed:?}"
        );
        assert!(
            store.schedule_claim("t", "after", 1).await.unwrap(),
            "the next write reconnects and succeeds"
        );
        assert_eq!(count(&store, "after").await, 1);
        assert_eq!(count(&store, "before").await, 1, "the same database");
    }

    #[tokio::test]
    async fn a_reader_reconnects_after_its_connection_failed() {
        use usage::Kind;
        let _one_at_a_time = FAILING_CONNECTIONS.lock().await;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("store.db"))
            .await
            .unwrap();
        store.storage_usage("t", Kind::Kv).await.unwrap();
        {
            let Reader::Held(held) = &store.reader else {
                panic!("a SQLite file's readers are held");
            };
            // The connection the next read takes (the first free one), onto a file that
            // is then overwritten with something that is not a database.
            let mut lent = held.take().await.unwrap();
            let (broken, doomed) = doomed(dir.path()).await;
            let old = std::mem::replace(&mut *lent, broken);
            old.close().await.unwrap();
            std::fs::write(&doomed, vec![7u8; 8192]).unwrap();
            let _ = std::fs::remove_file(dir.path().join("doomed.db-wal"));
            let _ = std::fs::remove_file(dir.path().join("doomed.db-shm"));
        }
        let failed = store.storage_usage("t", Kind::Kv).await;
        assert!(
            matches!(&failed, Err(StoreError::Query(e)) if connection_failed(e)),
            "the read on the failed connection fails as a connection failure: {failed:?}"
        );
        store
            .storage_usage("t", Kind::Kv)
            .await
            .expect("the next read reconnects and succeeds");
    }
}

/// Stores for tests: each store test runs twice, on the embedded stores and on
/// PostgreSQL; the PostgreSQL run is ignored (and listed so by `cargo test`) when
/// `ORQUESTA_TEST_POSTGRES_URL` was not set at build time (`build.rs` sets `no_postgres`).
#[cfg(test)]
pub mod testing {
    use std::future::Future;

    use super::Store;

    /// The PostgreSQL database the store tests use (`.ci/run` sets it).
    pub const POSTGRES_URL_VAR: &str = "ORQUESTA_TEST_POSTGRES_URL";

    /// Which stores a run of a store test uses.
    #[derive(Clone, Copy, Debug)]
    pub enum Stores {
        /// An in-memory SQLite store and a SQLite file (the embedded default).
        Embedded,
        /// The PostgreSQL database of [`POSTGRES_URL_VAR`].
        Postgres,
    }

    /// Runs `check` on each store of the kind `stores` names.
    pub async fn each_store<F, Fut>(stores: Stores, check: F)
    where
        F: Fn(Store) -> Fut,
        Fut: Future<Output = ()>,
    {
        match stores {
            Stores::Embedded => {
                check(Store::in_memory().await.expect("in-memory store")).await;
                // A file's writer is a connection of its own.
                let dir = tempfile::tempdir().expect("a temporary directory");
                let file = Store::open_sqlite(&dir.path().join("store.db"))
                    .await
                    .expect("SQLite file store");
                check(file).await;
            }
            Stores::Postgres => check(postgres().await).await,
        }
    }

    /// The PostgreSQL store. Only runs that are not ignored call this, so a missing
    /// variable means the tests were built with it and run without, or ignored tests were
    /// run on purpose.
    pub async fn postgres() -> Store {
        let url = match std::env::var(POSTGRES_URL_VAR) {
            Ok(url) if !url.is_empty() => url,
            _ => panic!(
                "{POSTGRES_URL_VAR} is not set and this run needs PostgreSQL; `cargo test` \
                 run without the variable lists the PostgreSQL runs as ignored"
            ),
        };
        Store::open(&url)
            .await
            .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR} is set but unusable: {e}"))
    }

    /// Held by the tests that sweep expired rows: a sweep takes every tenant's, so on the
    /// shared PostgreSQL database one test's sweep would take rows another still counts.
    pub async fn sweeping() -> tokio::sync::MutexGuard<'static, ()> {
        static SWEEPING: std::sync::LazyLock<tokio::sync::Mutex<()>> =
            std::sync::LazyLock::new(|| tokio::sync::Mutex::new(()));
        SWEEPING.lock().await
    }

    /// Declares `async fn NAME(stores: Stores)` (defined beside it) as two tests,
    /// `NAME::embedded` and `NAME::postgres`.
    macro_rules! store_test {
        ($name:ident) => {
            mod $name {
                use $crate::store::testing::Stores;

                #[tokio::test]
                async fn embedded() {
                    super::$name(Stores::Embedded).await;
                }

                #[tokio::test]
                #[cfg_attr(no_postgres, ignore = "ORQUESTA_TEST_POSTGRES_URL is not set")]
                async fn postgres() {
                    super::$name(Stores::Postgres).await;
                }
            }
        };
    }
    pub(crate) use store_test;

    /// A tenant name no other test run uses.
    pub fn tenant(base: &str) -> String {
        format!("{base}-{}", uuid::Uuid::new_v4().simple())
    }
}
