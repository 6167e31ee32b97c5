//! Marks the PostgreSQL smoke run ignored when `ORQUESTA_TEST_POSTGRES_URL` is not set,
//! and the S3 one when `ORQUESTA_TEST_S3_SERVER` (an S3-compatible server's binary,
//! `.ci/s3`) is not, so `cargo test` lists them as ignored (with the count) instead of
//! passing having checked nothing. With `ORQUESTA_REQUIRE_DB_TESTS=1` (as `.ci/run`
//! sets) a missing variable fails the build: CI cannot be green with them left out.

/// (variable, cfg set when it is absent, what its run needs)
const SERVERS: [(&str, &str, &str); 2] = [
    ("ORQUESTA_TEST_POSTGRES_URL", "no_postgres", "PostgreSQL"),
    ("ORQUESTA_TEST_S3_SERVER", "no_s3", "S3"),
];
const REQUIRE: &str = "ORQUESTA_REQUIRE_DB_TESTS";

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed={REQUIRE}");
    let required = std::env::var(REQUIRE).is_ok_and(|v| !v.is_empty() && v != "0");
    for (var, cfg, what) in SERVERS {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        println!("cargo::rerun-if-env-changed={var}");
        if std::env::var_os(var).is_none_or(|v| v.is_empty()) {
            if required {
                eprintln!(
                    "error: {REQUIRE} is set but {var} is not: the {what} smoke run would be skipped"
                );
                std::process::exit(1);
            }
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}
