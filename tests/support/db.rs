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
