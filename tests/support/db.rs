//! The database servers the tests run on besides the embedded store. A test that needs
//! one is marked `#[cfg_attr(no_postgres, ignore = ...)]` (or `no_mysql`; the build script
//! sets these when the URL is absent), so without a server it is listed as ignored.

/// The PostgreSQL database the tests use (`.ci/run` sets it).
pub const POSTGRES: &str = "ORQUESTA_TEST_POSTGRES_URL";
/// The MariaDB/MySQL database the tests use (`.ci/run` sets it).
pub const MYSQL: &str = "ORQUESTA_TEST_MYSQL_URL";

/// The URL in `var`. The test is ignored when the variable was absent at build time, so
/// reaching here without it means the binary was built with it and run without, or
/// ignored tests were run on purpose (`--ignored`).
pub fn url(var: &str) -> String {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "{var} is not set and this test needs its server; `cargo test` run without \
             the variable lists the test as ignored"
        ),
    }
}

/// `POSTGRES`'s URL.
pub fn postgres() -> String {
    url(POSTGRES)
}

/// `MYSQL`'s URL.
pub fn mysql() -> String {
    url(MYSQL)
}

/// A PostgreSQL database of a test's own on `POSTGRES`'s server: for tests whose hosts
/// must share nothing with other tests' hosts on the shared test database (deploys
/// through the store are applied by every host of a database). Created empty; dropped
/// when this is dropped, connections and all.
pub struct OwnPostgres {
    pub url: String,
    server: String,
    name: String,
}

impl OwnPostgres {
    /// A fresh database named for `tag`; those of the same tag that an earlier run left
    /// (a test process killed before its drop) are dropped once ten minutes old.
    pub async fn create(tag: &str) -> Self {
        let base = postgres();
        let (path, query) = base.split_once('?').unwrap_or((&base, ""));
        let (server_path, _) = path
            .rsplit_once('/')
            .expect("the PostgreSQL URL ends in /DATABASE");
        let with_db = |db: &str| {
            if query.is_empty() {
                format!("{server_path}/{db}")
            } else {
                format!("{server_path}/{db}?{query}")
            }
        };
        let server = with_db("postgres");
        let admin = sqlx::PgPool::connect(&server)
            .await
            .expect("the PostgreSQL server answers");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let prefix = format!("orquesta_{tag}_");
        let earlier: Vec<(String,)> =
            sqlx::query_as("SELECT datname FROM pg_database WHERE starts_with(datname, $1)")
                .bind(&prefix)
                .fetch_all(&admin)
                .await
                .expect("the databases listed");
        for (name,) in earlier {
            let made = name.rsplit('_').next().and_then(|n| n.parse::<u128>().ok());
            if made.is_some_and(|made| made + 600_000_000_000 < now) {
                // Its name is one this function made: a prefix and digits.
                let dropped = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&admin)
                .await;
                if let Err(e) = dropped {
                    eprintln!("could not drop the left-over test database {name}: {e}");
                }
            }
        }
        let name = format!("{prefix}{}_{now}", std::process::id());
        // The name is made above of a tag, a pid and a time: nothing a caller injects.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .expect("a database of the test's own");
        admin.close().await;
        OwnPostgres {
            url: with_db(&name),
            server,
            name,
        }
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop runs inside the test's runtime: the statement gets a runtime of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let admin = sqlx::PgPool::connect(&server).await.ok()?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&admin)
                .await
                .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}
