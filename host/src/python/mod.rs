//! Building a Python plugin: `orquesta build app.py` runs componentize-py (the pinned
//! version, [`TOOL_VERSION`]) on the app with the SDK and a world exporting the handler
//! of each trigger kind the app registers (docs/PLUGINS.md).

mod sources;

use std::path::{Path, PathBuf};
use std::process::Command;

pub use sources::fingerprint;

/// The componentize-py release the SDK and the build are made for; the bindings it
/// generates (module and class names) change between releases.
pub const TOOL_VERSION: &str = "0.25.1";

/// Where the tool is looked for first (then `componentize-py` on `PATH`).
pub const TOOL_ENV: &str = "ORQUESTA_COMPONENTIZE_PY";

/// The trigger kinds a plugin may answer, as `@orquesta.on_KIND` names them.
pub use crate::guest_world::KINDS;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(
        "componentize-py was not found ({tried}): install it with `pip install componentize-py=={TOOL_VERSION}` or name it in {TOOL_ENV}"
    )]
    ToolMissing { tried: String },
    #[error(
        "{tool} is componentize-py {found}; orquesta build needs {TOOL_VERSION} (pip install componentize-py=={TOOL_VERSION})"
    )]
    WrongTool { tool: String, found: String },
    #[error("{0}")]
    App(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("componentize-py failed on {app}:\n{output}")]
    Failed { app: PathBuf, output: String },
}

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The app module (`app.py`); its folder is on the import path, so its own modules
    /// and packages beside it are included.
    pub app: PathBuf,
    pub output: PathBuf,
    /// The trigger kinds to export; empty: those the app's `@orquesta.on_KIND` lines name.
    pub triggers: Vec<String>,
    /// The componentize-py executable; `None`: [`TOOL_ENV`], then `PATH`.
    pub tool: Option<PathBuf>,
}

/// The componentize-py to run: `explicit`, else [`TOOL_ENV`], else `componentize-py`.
pub fn tool(explicit: Option<&Path>) -> PathBuf {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| {
            std::env::var_os(TOOL_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from("componentize-py"))
}

/// Runs `tool --version` and checks it is [`TOOL_VERSION`].
pub fn check_tool(tool: &Path) -> Result<(), BuildError> {
    let out =
        Command::new(tool)
            .arg("--version")
            .output()
            .map_err(|e| BuildError::ToolMissing {
                tried: format!("{}: {e}", tool.display()),
            })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let found = text.trim().trim_start_matches("componentize-py").trim();
    if !out.status.success() || found != TOOL_VERSION {
        return Err(BuildError::WrongTool {
            tool: tool.display().to_string(),
            found: if found.is_empty() {
                "unknown".into()
            } else {
                found.into()
            },
        });
    }
    Ok(())
}

/// The trigger kinds `source` registers: each `@orquesta.on_KIND` or `@on_KIND` line.
pub fn declared_triggers(source: &str) -> Vec<&'static str> {
    KINDS
        .into_iter()
        .filter(|kind| {
            source.lines().any(|line| {
                let line = line.trim_start();
                let Some(rest) = line
                    .strip_prefix("@orquesta.")
                    .or_else(|| line.strip_prefix('@'))
                else {
                    return false;
                };
                rest.strip_prefix("on_")
                    .and_then(|r| r.strip_prefix(kind))
                    .is_some_and(|r| !r.starts_with(|c: char| c.is_alphanumeric() || c == '_'))
            })
        })
        .collect()
}

/// Builds the component; returns the kinds it exports.
pub fn build(options: &BuildOptions) -> Result<Vec<&'static str>, BuildError> {
    let app = &options.app;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BuildError::Io { path, source }
    };
    let source = std::fs::read_to_string(app).map_err(io(app))?;
    let module = app
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|_| app.extension().is_some_and(|e| e == "py"))
        .ok_or_else(|| BuildError::App(format!("{}: the app must be a .py file", app.display())))?;
    if !module
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
        || module.starts_with(|c: char| c.is_ascii_digit())
        || ["orquesta", "wit_world", sources::ENTRY].contains(&module)
    {
        return Err(BuildError::App(format!(
            "{}: `{module}` cannot be the app's module name (a Python identifier other than orquesta, wit_world and {})",
            app.display(),
            sources::ENTRY
        )));
    }
    let kinds = if options.triggers.is_empty() {
        declared_triggers(&source)
    } else {
        crate::guest_world::requested_kinds(&options.triggers).map_err(BuildError::App)?
    };
    if kinds.is_empty() {
        return Err(BuildError::App(format!(
            "{}: no handler: register one with @orquesta.on_http (or on_queue, on_topic, on_bus, on_schedule, on_task)",
            app.display()
        )));
    }
    let tool = tool(options.tool.as_deref());
    check_tool(&tool)?;

    let work = tempfile::tempdir().map_err(io(Path::new("temporary directory")))?;
    sources::write(work.path(), module, &kinds).map_err(io(work.path()))?;
    let app_dir = match app.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // Written beside the output and renamed: a failed build leaves the old one whole.
    let partial = options.output.with_extension("wasm.partial");
    let out = Command::new(&tool)
        .arg("-q")
        .arg("-d")
        .arg(work.path().join("wit"))
        .args(["-w", sources::WORLD, "componentize", sources::ENTRY])
        .arg("-p")
        .arg(work.path().join("entry"))
        .arg("-p")
        .arg(&app_dir)
        .arg("-p")
        .arg(work.path().join("sdk"))
        .arg("-o")
        .arg(&partial)
        // componentize-py adds a virtualenv's site-packages; the build's inputs are the
        // app's folder and the SDK only.
        .env_remove("VIRTUAL_ENV")
        .output()
        .map_err(|e| BuildError::ToolMissing {
            tried: format!("{}: {e}", tool.display()),
        })?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&partial);
        let mut output = String::from_utf8_lossy(&out.stderr).into_owned();
        output.push_str(&String::from_utf8_lossy(&out.stdout));
        // The tool's own Rust backtrace (under RUST_BACKTRACE) says nothing about the app.
        if let Some(at) = output.find("\nStack backtrace:") {
            output.truncate(at);
        }
        return Err(BuildError::Failed {
            app: app.clone(),
            output: output.trim().to_string(),
        });
    }
    std::fs::rename(&partial, &options.output).map_err(io(&options.output))?;
    Ok(kinds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_are_read_from_the_decorators() {
        let app = "import orquesta\n\n@orquesta.on_http\ndef a(r): ...\n\n  @on_schedule\ndef b(t): ...\n# @orquesta.on_queue_x is not one\n@orquesta.on_taskx\n";
        assert_eq!(declared_triggers(app), ["http", "schedule"]);
        assert!(declared_triggers("def f(): pass\n").is_empty());
    }

    #[test]
    fn a_missing_tool_is_named_with_how_to_install_it() {
        let e = check_tool(Path::new("/nonexistent/componentize-py")).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("pip install componentize-py==0.25.1"),
            "{text}"
        );
        assert!(text.contains("/nonexistent/componentize-py"), "{text}");
    }

    #[test]
    fn an_app_that_is_not_a_module_or_registers_nothing_is_refused_before_the_tool_runs() {
        let dir = tempfile::tempdir().unwrap();
        let options = |name: &str, text: &str| {
            let app = dir.path().join(name);
            std::fs::write(&app, text).unwrap();
            BuildOptions {
                app,
                output: dir.path().join("out.wasm"),
                triggers: vec![],
                tool: Some(PathBuf::from("/nonexistent/componentize-py")),
            }
        };
        let e = build(&options("app.py", "x = 1\n")).unwrap_err();
        assert!(e.to_string().contains("no handler"), "{e}");
        let e = build(&options("orquesta.py", "@orquesta.on_http\n")).unwrap_err();
        assert!(
            e.to_string().contains("cannot be the app's module name"),
            "{e}"
        );
        let mut o = options("app.py", "@orquesta.on_http\n");
        o.triggers = vec!["mqtt".into()];
        let e = build(&o).unwrap_err();
        assert!(e.to_string().contains("not a trigger kind"), "{e}");
        // Past the checks, the missing tool is what is refused.
        let e = build(&options("app.py", "@orquesta.on_http\n")).unwrap_err();
        assert!(matches!(e, BuildError::ToolMissing { .. }), "{e}");
    }
}
