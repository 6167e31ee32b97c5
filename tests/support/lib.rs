//! Shared helpers for the end-to-end tests: the wasm plugins and the `orquesta` binary,
//! built once per test process (cargo makes this a no-op when they are fresh), so a fresh
//! clone passes `cargo test` with nothing built beforehand.

mod built;
pub mod db;
pub mod javascript;
pub mod python;
pub mod raw_http;
pub mod server;
pub mod wait;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root.
pub fn workspace() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
}

/// Every plugin crate under `plugins/` (the SDK is a library, not a plugin).
pub fn plugin_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(workspace().join("plugins"))
        .expect("plugins/ is readable")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "sdk")
        .collect();
    names.sort();
    names
}

fn cargo(args: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(args)
        .current_dir(workspace())
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo {args:?}: {e}"));
    assert!(
        status.success(),
        "cargo {args:?} failed; is the wasm target installed? (rustup target add wasm32-wasip2)"
    );
}

/// The path of plugin `name`'s component, building all plugins on first use. A name
/// ending in `-python` is the Python plugin in `plugins/python/` of the name before it
/// (`ipp-python`: `plugins/python/ipp/`), and one ending in `-ts` the TypeScript plugin
/// in `plugins/typescript/` (`probe-ts`: `plugins/typescript/probe/`).
pub fn plugin(name: &str) -> PathBuf {
    if let Some(base) = name.strip_suffix("-python") {
        return python::plugin(base);
    }
    if let Some(base) = name.strip_suffix("-ts") {
        return javascript::plugin(base);
    }
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let names = plugin_names();
        let mut args = vec!["build", "--quiet", "--target", "wasm32-wasip2", "--release"];
        for n in &names {
            args.extend(["-p", n.as_str()]);
        }
        cargo(&args);
    });
    let path = target_dir()
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", name.replace('-', "_")));
    assert!(
        path.exists(),
        "plugin {name} was not built at {}",
        path.display()
    );
    path
}

/// The `orquesta` binary, built on first use.
pub fn orquesta_bin() -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| cargo(&["build", "--quiet", "-p", "orquesta", "--bin", "orquesta"]));
    target_dir().join("debug/orquesta")
}

/// Runs the `orquesta` binary in `dir` and returns (exit code, stdout, stderr).
pub fn run_orquesta(dir: &Path, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    run_orquesta_env(dir, args, stdin, &[])
}

/// [`run_orquesta`] with extra environment variables.
pub fn run_orquesta_env(
    dir: &Path,
    args: &[&str],
    stdin: Option<&str>,
    env: &[(&str, &str)],
) -> (i32, String, String) {
    use std::io::Write as _;
    let mut child = Command::new(orquesta_bin())
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .env("ORQUESTA_LOG", "warn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("orquesta starts");
    if let Some(mut pipe) = child.stdin.take() {
        pipe.write_all(stdin.unwrap_or("").as_bytes())
            .expect("stdin written");
    }
    let out = child.wait_with_output().expect("orquesta finishes");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
