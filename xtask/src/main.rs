//! `cargo xtask <task>`: project chores that need more than one cargo command.
//!
//! - `plugins`: build every plugin under `plugins/` for wasm32-wasip2 (release).
//! - `demo`: build the plugins and the host, start the fake upstream APIs on loopback and
//!   serve the demo tenants (`examples/orquesta.toml`) until Ctrl-C.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

fn main() -> anyhow::Result<()> {
    let task = std::env::args().nth(1).unwrap_or_default();
    match task.as_str() {
        "plugins" => build_plugins(),
        "demo" => demo(),
        _ => bail!("usage: cargo xtask <plugins|demo>"),
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd
        .current_dir(workspace())
        .status()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn plugin_names() -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(workspace().join("plugins"))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().join("Cargo.toml").exists() && name != "sdk" {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

fn build_plugins() -> anyhow::Result<()> {
    let mut cmd = cargo();
    cmd.args(["build", "--target", "wasm32-wasip2", "--release"]);
    for name in plugin_names()? {
        cmd.args(["-p", &name]);
    }
    run(&mut cmd)
}

/// Builds everything, starts the fake upstream APIs on loopback, then serves the demo
/// tenants in the foreground until Ctrl-C.
fn demo() -> anyhow::Result<()> {
    build_plugins()?;
    run(cargo().args(["build", "--quiet", "-p", "orquesta", "-p", "orquesta-fakes"]))?;
    let bin = workspace().join("target/debug");
    let mut fakes = Command::new(bin.join("orquesta-fakes"))
        .args(["databricks", "--port", "8781"])
        .env("DATABRICKS_TOKEN", DEMO_DATABRICKS_TOKEN)
        .spawn()
        .context("cannot start the fake upstream APIs")?;
    let mut serve = Command::new(bin.join("orquesta"));
    serve
        .args(["serve", "--config", "examples/orquesta.toml"])
        .current_dir(workspace());
    // Demo secrets; a real deployment sets its own.
    for (name, value) in [
        ("ORQUESTA_ADMIN_TOKEN", "demo-admin-token"),
        ("HELLO_CLIENT_SECRET", "demo-secret"),
        ("IPP_DATABRICKS_TOKEN", DEMO_DATABRICKS_TOKEN),
    ] {
        if std::env::var_os(name).is_none() {
            serve.env(name, value);
        }
    }
    let status = serve.status().context("cannot start orquesta serve");
    // The fakes only live as long as the demo.
    let _ = fakes.kill();
    let _ = fakes.wait();
    let status = status?;
    if !status.success() {
        bail!("orquesta serve exited with {status}");
    }
    Ok(())
}

const DEMO_DATABRICKS_TOKEN: &str = "dapi-demo-token";
