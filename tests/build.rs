//! Marks the tests that need something the machine may lack as ignored when it is
//! absent, so `cargo test` lists them as ignored (with the count) instead of passing
//! having checked nothing: the database tests without their server's URL, the Python
//! plugins' tests without componentize-py. With `ORQUESTA_REQUIRE_DB_TESTS=1` (as
//! `.ci/run` sets) a missing URL fails the build, with `ORQUESTA_REQUIRE_PYTHON_TESTS=1`
//! a missing componentize-py does, and with `ORQUESTA_REQUIRE_JS_TESTS=1` missing
//! JavaScript tools (esbuild, componentize-js, tsc) do: CI cannot be green with those tests
//! left out.

use std::path::PathBuf;
use std::process::Command;

/// (variable, cfg set when it is absent)
const SERVERS: [(&str, &str); 2] = [
    ("ORQUESTA_TEST_POSTGRES_URL", "no_postgres"),
    ("ORQUESTA_TEST_MYSQL_URL", "no_mysql"),
];

const REQUIRE: &str = "ORQUESTA_REQUIRE_DB_TESTS";
const REQUIRE_PYTHON: &str = "ORQUESTA_REQUIRE_PYTHON_TESTS";
/// Kept in step with `orquesta::python::TOOL_VERSION` and the requirements file.
const TOOL_VERSION: &str = "0.25.1";
const TOOL_ENV: &str = "ORQUESTA_COMPONENTIZE_PY";

fn set(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| !v.is_empty() && v != "0")
}

fn main() {
    println!("cargo::rerun-if-env-changed={REQUIRE}");
    let required = set(REQUIRE);
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
    python();
    javascript();
}

/// Finds componentize-py: `ORQUESTA_COMPONENTIZE_PY`, then the virtualenv `.ci/run`
/// makes (`target/componentize-py`), then `PATH`; the tests get it as
/// `ORQUESTA_TESTS_COMPONENTIZE_PY` (empty, and cfg `no_componentize_py`, without one).
fn python() {
    println!("cargo::rustc-check-cfg=cfg(no_componentize_py)");
    println!("cargo::rerun-if-env-changed={REQUIRE_PYTHON}");
    println!("cargo::rerun-if-env-changed={TOOL_ENV}");
    println!("cargo::rerun-if-env-changed=CARGO_TARGET_DIR");
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    // Reinstalling the tool (by hand or by .ci/run) rechecks it.
    println!(
        "cargo::rerun-if-changed={}",
        workspace
            .join("plugins/sdk-python/requirements.txt")
            .display()
    );
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let venv = target.join("componentize-py/bin/componentize-py");
    if venv.exists() {
        println!("cargo::rerun-if-changed={}", venv.display());
    }
    let candidates = [
        std::env::var_os(TOOL_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
        venv.exists().then_some(venv),
        Some(PathBuf::from("componentize-py")),
    ];
    let mut tried = Vec::new();
    let found = candidates.into_iter().flatten().find(|tool| {
        let version = Command::new(tool)
            .arg("--version")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        tried.push(format!(
            "{}: {}",
            tool.display(),
            version.as_deref().unwrap_or("not found")
        ));
        version.is_some_and(|v| v == format!("componentize-py {TOOL_VERSION}"))
    });
    match found {
        Some(tool) => {
            let tool = std::fs::canonicalize(&tool).unwrap_or(tool);
            println!(
                "cargo::rustc-env=ORQUESTA_TESTS_COMPONENTIZE_PY={}",
                tool.display()
            );
        }
        None => {
            println!("cargo::rustc-env=ORQUESTA_TESTS_COMPONENTIZE_PY=");
            println!("cargo::rustc-cfg=no_componentize_py");
            if set(REQUIRE_PYTHON) {
                eprintln!(
                    "error: {REQUIRE_PYTHON} is set but componentize-py {TOOL_VERSION} is not installed \
                     (tried {}): the Python plugins' tests would be skipped",
                    tried.join("; ")
                );
                std::process::exit(1);
            }
            println!(
                "cargo::warning=componentize-py {TOOL_VERSION} is not installed: the Python plugins' tests are ignored (docs/PLUGINS.md)"
            );
        }
    }
}

const REQUIRE_JS: &str = "ORQUESTA_REQUIRE_JS_TESTS";
/// Kept in step with `orquesta::javascript::TOOL_VERSION` and plugins/sdk-js/tools.
const JS_TOOL_VERSION: &str = "0.23.0";
/// Kept in step with `orquesta::javascript::TYPESCRIPT_VERSION` and plugins/sdk-js/tools.
const TYPESCRIPT_VERSION: &str = "7.0.2";
const JS_TOOLS_ENV: &str = "ORQUESTA_JS_TOOLS";

/// Runs `tool --version`: its output when it succeeds.
fn tool_version(tool: &std::path::Path) -> Option<String> {
    Command::new(tool)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// Finds the TypeScript/JavaScript plugins' tools (esbuild, componentize-js and tsc in
/// one folder's `node_modules/.bin`): `ORQUESTA_JS_TOOLS`, then the folder `.ci/run` installs
/// (`target/js-tools`); the tests get the folder as `ORQUESTA_TESTS_JS_TOOLS` (empty, and
/// cfg `no_componentize_js`, without one).
fn javascript() {
    println!("cargo::rustc-check-cfg=cfg(no_componentize_js)");
    println!("cargo::rerun-if-env-changed={REQUIRE_JS}");
    println!("cargo::rerun-if-env-changed={JS_TOOLS_ENV}");
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    println!(
        "cargo::rerun-if-changed={}",
        workspace
            .join("plugins/sdk-js/tools/package-lock.json")
            .display()
    );
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let installed = target.join("js-tools");
    let lock = installed.join("node_modules/.package-lock.json");
    if lock.exists() {
        // Reinstalling the tools (by hand or by .ci/run) rechecks them.
        println!("cargo::rerun-if-changed={}", lock.display());
    }
    let candidates = [
        std::env::var_os(JS_TOOLS_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
        Some(installed),
    ];
    let mut tried = Vec::new();
    let found = candidates.into_iter().flatten().find(|dir| {
        let bin = dir.join("node_modules/.bin");
        let esbuild = tool_version(&bin.join("esbuild"));
        let componentize = tool_version(&bin.join("componentize-js"));
        let tsc = tool_version(&bin.join("tsc"));
        tried.push(format!(
            "{}: esbuild {}, componentize-js {}, tsc {}",
            dir.display(),
            esbuild.as_deref().unwrap_or("not found"),
            componentize.as_deref().unwrap_or("not found"),
            tsc.as_deref().unwrap_or("not found")
        ));
        esbuild.is_some()
            && componentize.is_some_and(|v| v == JS_TOOL_VERSION)
            && tsc.is_some_and(|v| v == format!("Version {TYPESCRIPT_VERSION}"))
    });
    match found {
        Some(dir) => {
            let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
            println!("cargo::rustc-env=ORQUESTA_TESTS_JS_TOOLS={}", dir.display());
        }
        None => {
            println!("cargo::rustc-env=ORQUESTA_TESTS_JS_TOOLS=");
            println!("cargo::rustc-cfg=no_componentize_js");
            if set(REQUIRE_JS) {
                eprintln!(
                    "error: {REQUIRE_JS} is set but esbuild, componentize-js {JS_TOOL_VERSION} and typescript {TYPESCRIPT_VERSION} are not installed \
                     (tried {}): the TypeScript plugins' tests would be skipped \
                     (npm ci --prefix target/js-tools, with plugins/sdk-js/tools/package*.json copied there)",
                    tried.join("; ")
                );
                std::process::exit(1);
            }
            println!(
                "cargo::warning=componentize-js {JS_TOOL_VERSION} is not installed: the TypeScript plugins' tests are ignored (docs/PLUGINS.md)"
            );
        }
    }
}
