//! `cargo xtask <task>`: project chores that need more than one cargo command.
//!
//! - `plugins`: build every plugin under `plugins/` for wasm32-wasip2 (release).
//! - `demo`: build the plugins and the host, then run the demo tenant's plugin and its
//!   fixtures, so a newcomer sees orquesta work with one command.

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

fn demo() -> anyhow::Result<()> {
    build_plugins()?;
    let hello = "target/wasm32-wasip2/release/hello.wasm";
    let orquesta = |args: &[&str]| {
        let mut cmd = cargo();
        cmd.args(["run", "--quiet", "-p", "orquesta", "--"])
            .args(args);
        cmd.env("HELLO_CLIENT_SECRET", "demo-secret");
        cmd
    };
    println!("== orquesta invoke: the hello plugin with the demo tenant");
    run(&mut orquesta(&[
        "invoke",
        hello,
        "--event",
        "examples/hello/event.json",
        "--config",
        "examples/hello/tenant.toml",
    ]))?;
    println!("== orquesta test: the hello plugin against its fixtures");
    run(&mut orquesta(&[
        "test",
        hello,
        "examples/hello/fixtures.toml",
    ]))
}
