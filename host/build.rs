//! Marks the store tests' PostgreSQL runs ignored when `ORQUESTA_TEST_POSTGRES_URL` is
//! not set, so `cargo test` lists them as ignored (with the count) instead of passing
//! having checked nothing. With `ORQUESTA_REQUIRE_DB_TESTS=1` (as `.ci/run` sets) a
//! missing URL fails the build: CI cannot be green with those runs left out.

const URL: &str = "ORQUESTA_TEST_POSTGRES_URL";
const REQUIRE: &str = "ORQUESTA_REQUIRE_DB_TESTS";

fn main() {
    println!("cargo::rustc-check-cfg=cfg(no_postgres)");
    println!("cargo::rerun-if-env-changed={URL}");
    println!("cargo::rerun-if-env-changed={REQUIRE}");
    if std::env::var_os(URL).is_none_or(|v| v.is_empty()) {
        if std::env::var(REQUIRE).is_ok_and(|v| !v.is_empty() && v != "0") {
            eprintln!(
                "error: {REQUIRE} is set but {URL} is not: the PostgreSQL tests would be skipped"
            );
            std::process::exit(1);
        }
        println!("cargo::rustc-cfg=no_postgres");
    }
}
