//! `cargo xtask <task>`: project chores that need more than one cargo command.
//!
//! - `plugins`: build every plugin under `plugins/` for wasm32-wasip2 (release), and each
//!   Python plugin in `plugins/python/NAME/` as `NAME-python.wasm` beside them when
//!   componentize-py is installed, and each TypeScript plugin in `plugins/typescript/NAME/`
//!   as `NAME-ts.wasm` when the JavaScript tools are (docs/PLUGINS.md).
//! - `demo`: build the plugins and the host, start the fake upstream APIs (Databricks,
//!   MOK, Siesa, Kong, WMS) on loopback, seed the Siesa clients' field mappings and serve
//!   the demo tenants (`examples/orquesta.toml`) until Ctrl-C.

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
    run(&mut cmd)?;
    build_python_plugins()?;
    build_typescript_plugins()
}

/// `orquesta build` on each `plugins/typescript/NAME/app.ts`, into the demo's plugin
/// directory as `NAME-ts.wasm`. Without the JavaScript tools (`$ORQUESTA_JS_TOOLS`, else
/// `target/js-tools`) they are left out, saying so.
fn build_typescript_plugins() -> anyhow::Result<()> {
    let tools = std::env::var_os("ORQUESTA_JS_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/js-tools"));
    let componentize = tools.join("node_modules/.bin/componentize-js");
    if Command::new(&componentize)
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!(
            "note: the JavaScript tools are not installed in {}: the TypeScript plugins are not built (docs/PLUGINS.md)",
            tools.display()
        );
        return Ok(());
    }
    build_each(
        "typescript",
        "app.ts",
        "ts",
        ["--js-tools".as_ref(), tools.as_os_str()],
    )
}

/// `orquesta build` on each `plugins/python/NAME/app.py`, into the demo's plugin
/// directory as `NAME-python.wasm`. Without componentize-py they are left out, saying so:
/// the demo tenants use the Rust plugins.
fn build_python_plugins() -> anyhow::Result<()> {
    let venv = workspace().join("target/componentize-py/bin/componentize-py");
    let tool = std::env::var_os("ORQUESTA_COMPONENTIZE_PY")
        .map(PathBuf::from)
        .or_else(|| venv.exists().then_some(venv))
        .unwrap_or_else(|| PathBuf::from("componentize-py"));
    if Command::new(&tool).arg("--version").output().is_err() {
        eprintln!(
            "note: componentize-py is not installed: the Python plugins are not built (docs/PLUGINS.md)"
        );
        return Ok(());
    }
    build_each(
        "python",
        "app.py",
        "python",
        ["--componentize-py".as_ref(), tool.as_os_str()],
    )
}

/// `orquesta build` on each `plugins/FOLDER/NAME/APP` with `tool_args`, into the demo's
/// plugin directory as `NAME-SUFFIX.wasm`.
fn build_each(
    folder: &str,
    app: &str,
    suffix: &str,
    tool_args: [&std::ffi::OsStr; 2],
) -> anyhow::Result<()> {
    run(cargo().args(["build", "--quiet", "-p", "orquesta", "--bin", "orquesta"]))?;
    let out = workspace().join("target/wasm32-wasip2/release");
    let mut names: Vec<String> = std::fs::read_dir(workspace().join("plugins").join(folder))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join(app).is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        run(Command::new(workspace().join("target/debug/orquesta"))
            .arg("build")
            .arg(format!("plugins/{folder}/{name}/{app}"))
            .arg("-o")
            .arg(out.join(format!("{name}-{suffix}.wasm")))
            .args(tool_args))?;
    }
    Ok(())
}

/// Builds everything, starts the fake upstream APIs on loopback, seeds the Siesa clients'
/// field mappings, then serves the demo tenants in the foreground until Ctrl-C.
fn demo() -> anyhow::Result<()> {
    build_plugins()?;
    run(cargo().args(["build", "--quiet", "-p", "orquesta", "-p", "orquesta-fakes"]))?;
    let bin = workspace().join("target/debug");
    let mut fakes = Vec::new();
    for args in FAKES {
        let child = Command::new(bin.join("orquesta-fakes"))
            .args(*args)
            .env("DATABRICKS_TOKEN", DEMO_DATABRICKS_TOKEN)
            .spawn()
            .with_context(|| format!("cannot start the fake API {}", args[0]))?;
        fakes.push(child);
    }
    let served = seed_blobs(&bin).and_then(|()| serve(&bin));
    // The fakes only live as long as the demo.
    for mut fake in fakes {
        let _ = fake.kill();
        let _ = fake.wait();
    }
    served
}

/// The fake upstream APIs, each on its own port as the demo tenants expect.
const FAKES: &[&[&str]] = &[
    &["databricks", "--port", "8781"],
    // Event 1002's open provider works on OT 15252900 of case 321321 (examples/mok).
    &["mok", "--port", "8782", "--ot", "15252900:321321"],
    &["siesa", "--port", "8783", "--products", "500"],
    &["kong", "--port", "8784"],
    &["wms", "--port", "8785"],
];

/// Each Siesa client's field mappings, into its tenant's `siesa-config` bucket (kept if
/// an operator changed them since).
fn seed_blobs(bin: &Path) -> anyhow::Result<()> {
    for (tenant, mapping) in [("siesa-cliente-a", "kong"), ("siesa-cliente-b", "wms")] {
        run(Command::new(bin.join("orquesta"))
            .args([
                "blob-put",
                "--config",
                "examples/orquesta.toml",
                "--if-absent",
            ])
            .args([tenant, "siesa-config", "field-mappings.json"])
            .arg(format!("examples/siesa/mappings/{mapping}.json")))?;
    }
    Ok(())
}

fn serve(bin: &Path) -> anyhow::Result<()> {
    let mut serve = Command::new(bin.join("orquesta"));
    serve
        .args(["serve", "--config", "examples/orquesta.toml"])
        .current_dir(workspace());
    // Demo secrets, matching the fakes'; a real deployment sets its own.
    for (name, value) in DEMO_SECRETS {
        if std::env::var_os(name).is_none() {
            serve.env(name, value);
        }
    }
    let status = serve.status().context("cannot start orquesta serve")?;
    if !status.success() {
        bail!("orquesta serve exited with {status}");
    }
    Ok(())
}

const DEMO_SECRETS: [(&str, &str); 9] = [
    ("ORQUESTA_ADMIN_TOKEN", "demo-admin-token"),
    ("HELLO_CLIENT_SECRET", "demo-secret"),
    ("IPP_DATABRICKS_TOKEN", DEMO_DATABRICKS_TOKEN),
    ("MOK_CLIENT_ID", "orquesta-demo"),
    ("MOK_CLIENT_SECRET", "demo-mok-secret"),
    ("SIESA_CONNI_KEY", "demo-conni-key"),
    ("SIESA_CONNI_TOKEN", "demo-conni-token"),
    ("KONG_API_KEY", "demo-kong-key"),
    ("WMS_API_KEY", "demo-wms-key"),
];

const DEMO_DATABRICKS_TOKEN: &str = "dapi-demo-token";
