//! Marks the database tests ignored when their server's URL is not set, so `cargo test`
//! lists them as ignored (with the count) instead of passing having checked nothing.
//! With `ORQUESTA_REQUIRE_DB_TESTS=1` (as `.ci/run` sets) a missing URL fails the build:
//! CI cannot be green with the database tests left out.

/// (variable, cfg set when it is absent)
const SERVERS: [(&str, &str); 2] = [
    ("ORQUESTA_TEST_POSTGRES_URL", "no_postgres"),
    ("ORQUESTA_TEST_MYSQL_URL", "no_mysql"),
];

const REQUIRE: &str = "ORQUESTA_REQUIRE_DB_TESTS";

fn main() {
    println!("cargo::rerun-if-env-changed={REQUIRE}");
    let required = std::env::var(REQUIRE).is_ok_and(|v| !v.is_empty() && v != "0");
    let mut missing = Vec::new();
    for (var, cfg) in SERVERS {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        println!("cargo::rerun-if-env-changed={var}");
        if std::env::var_os(var).is_none_or(|v| v.is_empty()) {
            println!("cargo::rustc-cfg={cfg}");
            missing.push(var);
        }
    }
    if required && !missing.is_empty() {
        let verb = if missing.len() == 1 { "is" } else { "are" };
        eprintln!(
            "error: {REQUIRE} is set but {} {verb} not: the database tests would be skipped",
            missing.join(" and ")
        );
        std::process::exit(1);
    }
}
