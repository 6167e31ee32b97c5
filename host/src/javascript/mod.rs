//! Building a TypeScript or JavaScript plugin: `orquesta build app.ts` type-checks a
//! TypeScript app against the SDK and the contract's generated types (tsc, the pinned
//! [`TYPESCRIPT_VERSION`]), bundles it with the SDK (esbuild) into one ES module, then
//! runs componentize-js (the pinned version, [`TOOL_VERSION`]) on it with a world
//! exporting the handler of each trigger kind the app registers (docs/PLUGINS.md,
//! "TypeScript plugins").

mod sources;

use std::path::{Path, PathBuf};
use std::process::Command;

pub use sources::{fingerprint, types_wit};

/// The componentize-js release the SDK and the build are made for (the export names and
/// value shapes it binds change between releases).
pub const TOOL_VERSION: &str = "0.23.0";

/// The TypeScript release that checks a `.ts` app (the one jco 1.35.0 depends on, so the
/// tools hold one copy): another could accept or refuse other code.
pub const TYPESCRIPT_VERSION: &str = "7.0.2";

/// A folder holding the tools under `node_modules/.bin` (`npm ci --prefix DIR` with
/// plugins/sdk-js/tools/package.json); without it, `esbuild`, `componentize-js` and
/// `tsc` on `PATH`.
pub const TOOLS_ENV: &str = "ORQUESTA_JS_TOOLS";

/// The file kinds built as JavaScript.
pub const EXTENSIONS: [&str; 6] = ["ts", "mts", "js", "mjs", "tsx", "jsx"];

/// The file kinds type-checked before bundling: TypeScript's, not JavaScript's.
pub const TYPED: [&str; 3] = ["ts", "mts", "tsx"];

/// The trigger kinds a plugin may answer, as `onKIND(...)` names them.
pub use crate::guest_world::KINDS;

const INSTALL: &str = "npm ci --prefix DIR in plugins/sdk-js/tools, then name DIR in ORQUESTA_JS_TOOLS or --js-tools; docs/PLUGINS.md";

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{tool} was not found ({tried}); it needs Node.js and the pinned tools ({INSTALL})")]
    ToolMissing { tool: &'static str, tried: String },
    #[error("{tool} is {found}; orquesta build needs {needs} ({INSTALL})")]
    WrongTool {
        tool: String,
        found: String,
        needs: String,
    },
    #[error("{0}")]
    App(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{tool} failed on {app}:\n{output}")]
    Failed {
        tool: &'static str,
        app: PathBuf,
        output: String,
    },
    /// tsc's diagnostics, one `file:line:column: error TSnnnn: message` each.
    #[error(
        "{app} does not type-check (TypeScript {TYPESCRIPT_VERSION}; `// @ts-nocheck` at the top of a file skips its check):\n{errors}"
    )]
    TypeErrors { app: PathBuf, errors: String },
}

impl BuildError {
    /// Whether a tool ran and refused the app (exit 1), rather than the build not being
    /// able to start (exit 2).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            BuildError::Failed { .. } | BuildError::TypeErrors { .. }
        )
    }
}

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The app module (`app.ts`, `app.js`); its imports are bundled from its folder.
    pub app: PathBuf,
    pub output: PathBuf,
    /// The trigger kinds to export; empty: those the app's `onKIND(` calls name.
    pub triggers: Vec<String>,
    /// The tools' folder; `None`: [`TOOLS_ENV`], then `PATH`.
    pub tools: Option<PathBuf>,
}

/// Whether `app` is built as JavaScript (by its extension).
pub fn is_js(app: &Path) -> bool {
    app.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e))
}

/// Whether `app` is TypeScript, type-checked before it is bundled (by its extension).
pub fn is_typed(app: &Path) -> bool {
    app.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| TYPED.contains(&e))
}

/// The tools a build runs.
#[derive(Debug, Clone)]
pub struct Tools {
    pub esbuild: PathBuf,
    pub componentize: PathBuf,
    pub tsc: PathBuf,
}

/// The tools to run: from `explicit`'s, else [`TOOLS_ENV`]'s `node_modules/.bin`, else by
/// name on `PATH`.
pub fn tools(explicit: Option<&Path>) -> Tools {
    let dir = explicit.map(Path::to_path_buf).or_else(|| {
        std::env::var_os(TOOLS_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    let bin = dir.map(|d| d.join("node_modules/.bin")).unwrap_or_default();
    Tools {
        esbuild: bin.join("esbuild"),
        componentize: bin.join("componentize-js"),
        tsc: bin.join("tsc"),
    }
}

fn version(tool: &Path, name: &'static str) -> Result<(bool, String), BuildError> {
    let out =
        Command::new(tool)
            .arg("--version")
            .output()
            .map_err(|e| BuildError::ToolMissing {
                tool: name,
                tried: format!("{}: {e}", tool.display()),
            })?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    ))
}

/// Checks esbuild runs, componentize-js is [`TOOL_VERSION`] and, for a TypeScript app
/// (`typed`), tsc is [`TYPESCRIPT_VERSION`].
pub fn check_tools(tools: &Tools, typed: bool) -> Result<(), BuildError> {
    let (ok, _) = version(&tools.esbuild, "esbuild")?;
    if !ok {
        return Err(BuildError::ToolMissing {
            tool: "esbuild",
            tried: format!("{}: `--version` failed", tools.esbuild.display()),
        });
    }
    let wrong = |tool: &Path, name: &str, found: String, needs: &str| BuildError::WrongTool {
        tool: tool.display().to_string(),
        found: format!(
            "{name} {}",
            if found.is_empty() { "unknown" } else { &found }
        ),
        needs: format!("{name} {needs}"),
    };
    let (ok, found) = version(&tools.componentize, "componentize-js")?;
    if !ok || found != TOOL_VERSION {
        return Err(wrong(
            &tools.componentize,
            "componentize-js",
            found,
            TOOL_VERSION,
        ));
    }
    if typed {
        let (ok, found) = version(&tools.tsc, "tsc")?;
        // `tsc --version` says `Version 7.0.2`.
        let found = found.trim_start_matches("Version ").to_string();
        if !ok || found != TYPESCRIPT_VERSION {
            return Err(wrong(&tools.tsc, "TypeScript", found, TYPESCRIPT_VERSION));
        }
    }
    Ok(())
}

/// tsc's `--pretty false` diagnostics (`app.ts(3,9): error TS2322: ...`, continuation
/// lines indented) as `app.ts:3:9: error TS2322: ...`, the form esbuild and compilers
/// use and editors link.
fn type_errors(output: &str) -> String {
    let mut out = Vec::new();
    for line in output.lines().filter(|l| !l.trim().is_empty()) {
        let located = line.split_once("): ").and_then(|(head, message)| {
            let (file, at) = head.rsplit_once('(')?;
            let (row, column) = at.split_once(',')?;
            let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            (numeric(row) && numeric(column) && !file.starts_with(' '))
                .then(|| format!("{file}:{row}:{column}: {message}"))
        });
        out.push(located.unwrap_or_else(|| line.to_string()));
    }
    out.join("\n")
}

/// The trigger kinds `source` registers: each `onKIND(` (or `orquesta.onKIND(`) call.
pub fn declared_triggers(source: &str) -> Vec<&'static str> {
    KINDS
        .into_iter()
        .filter(|kind| {
            let name = format!("on{}{}", kind[..1].to_ascii_uppercase(), &kind[1..]);
            source.match_indices(&name).any(|(at, _)| {
                let before = source[..at].chars().next_back();
                let after = source[at + name.len()..].trim_start();
                !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$')
                    && after.starts_with('(')
            })
        })
        .collect()
}

/// The output of a failed tool, trimmed of what says nothing about the app.
fn failure_text(out: &std::process::Output) -> String {
    let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stdout));
    text.trim().to_string()
}

/// Builds the component; returns the kinds it exports.
pub fn build(options: &BuildOptions) -> Result<Vec<&'static str>, BuildError> {
    let app = &options.app;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BuildError::Io { path, source }
    };
    if !is_js(app) {
        return Err(BuildError::App(format!(
            "{}: the app must be a .ts or .js file ({})",
            app.display(),
            EXTENSIONS.join(", ")
        )));
    }
    let source = std::fs::read_to_string(app).map_err(io(app))?;
    let kinds = if options.triggers.is_empty() {
        declared_triggers(&source)
    } else {
        crate::guest_world::requested_kinds(&options.triggers).map_err(BuildError::App)?
    };
    if kinds.is_empty() {
        return Err(BuildError::App(format!(
            "{}: no handler: register one with onHttp(...) (or onQueue, onTopic, onBus, onSchedule, onTask)",
            app.display()
        )));
    }
    let tools = tools(options.tools.as_deref());
    let typed = is_typed(app);
    check_tools(&tools, typed)?;
    let Tools {
        esbuild,
        componentize,
        tsc,
    } = tools;

    let app_abs = std::fs::canonicalize(app).map_err(io(app))?;
    let work = tempfile::tempdir().map_err(io(Path::new("temporary directory")))?;
    sources::write(work.path(), &app_abs, &kinds).map_err(io(work.path()))?;
    if typed {
        // Run from the caller's folder, so tsc names the app's files as the caller does.
        let out = Command::new(&tsc)
            .arg("-p")
            .arg(work.path().join(sources::TSCONFIG))
            .args(["--pretty", "false"])
            .output()
            .map_err(|e| BuildError::ToolMissing {
                tool: "tsc",
                tried: format!("{}: {e}", tsc.display()),
            })?;
        if !out.status.success() {
            return Err(BuildError::TypeErrors {
                app: app.clone(),
                errors: type_errors(&failure_text(&out)),
            });
        }
    }
    let bundle = work.path().join("bundle.js");
    // Run from the caller's folder, so esbuild names the app's files as the caller does.
    let out = Command::new(&esbuild)
        .arg(work.path().join(sources::ENTRY))
        .arg(format!(
            "--alias:orquesta={}",
            work.path().join("sdk").display()
        ))
        .args([
            "--bundle",
            "--format=esm",
            // Neither Node's nor a browser's built-ins exist in the component.
            "--platform=neutral",
            "--main-fields=module,main",
            // The bindings componentize-js generates from the world.
            "--external:orquesta:*",
            "--log-level=warning",
            "--color=false",
        ])
        .arg(format!("--outfile={}", bundle.display()))
        .output()
        .map_err(|e| BuildError::ToolMissing {
            tool: "esbuild",
            tried: format!("{}: {e}", esbuild.display()),
        })?;
    if !out.status.success() {
        return Err(BuildError::Failed {
            tool: "esbuild",
            app: app.clone(),
            output: failure_text(&out),
        });
    }

    // Written beside the output and renamed: a failed build leaves the old one whole.
    let partial = options.output.with_extension("wasm.partial");
    let out = Command::new(&componentize)
        .arg(&bundle)
        .arg("--wit")
        .arg(work.path().join("wit"))
        .args(["-n", sources::WORLD])
        // The plugin exports orquesta's handlers, not wasi:http/incoming-handler; `fetch`
        // stays (wasi:http/outgoing-handler, under the tenant's `hosts` grant).
        .args(["-d", "fetch-event"])
        .arg("-o")
        .arg(&partial)
        .output()
        .map_err(|e| BuildError::ToolMissing {
            tool: "componentize-js",
            tried: format!("{}: {e}", componentize.display()),
        })?;
    if !out.status.success() || !partial.is_file() {
        let _ = std::fs::remove_file(&partial);
        return Err(BuildError::Failed {
            tool: "componentize-js",
            app: app.clone(),
            output: failure_text(&out),
        });
    }
    std::fs::rename(&partial, &options.output).map_err(io(&options.output))?;
    Ok(kinds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn js_triggers_are_read_from_the_registrations() {
        let app = "import { onHttp } from \"orquesta\";\nonHttp((r) => 1);\norquesta.onSchedule (t => 2);\n// onQueueX( is not one\nconst x = myonTask(1); onTopic;\n";
        assert_eq!(declared_triggers(app), ["http", "schedule"]);
        assert!(declared_triggers("export const a = 1;\n").is_empty());
    }

    #[test]
    fn a_missing_js_tool_is_named_with_how_to_install_it() {
        let e = check_tools(&tools(Some(Path::new("/nonexistent"))), true).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("esbuild was not found"), "{text}");
        assert!(
            text.contains("/nonexistent/node_modules/.bin/esbuild"),
            "{text}"
        );
        assert!(text.contains("npm ci --prefix"), "{text}");
    }

    #[test]
    fn a_js_app_of_another_kind_or_registering_nothing_is_refused_before_the_tools_run() {
        let dir = tempfile::tempdir().unwrap();
        let options = |name: &str, text: &str| {
            let app = dir.path().join(name);
            std::fs::write(&app, text).unwrap();
            BuildOptions {
                app,
                output: dir.path().join("out.wasm"),
                triggers: vec![],
                tools: Some(PathBuf::from("/nonexistent")),
            }
        };
        let e = build(&options("app.ts", "const x = 1;\n")).unwrap_err();
        assert!(e.to_string().contains("no handler"), "{e}");
        let e = build(&options("app.rb", "onHttp(() => 1)\n")).unwrap_err();
        assert!(e.to_string().contains("must be a .ts or .js file"), "{e}");
        let mut o = options("app.ts", "onHttp(() => 1)\n");
        o.triggers = vec!["mqtt".into()];
        let e = build(&o).unwrap_err();
        assert!(e.to_string().contains("not a trigger kind"), "{e}");
        // Past the checks, the missing tool is what is refused.
        let e = build(&options("app.js", "onHttp(() => 1)\n")).unwrap_err();
        assert!(matches!(e, BuildError::ToolMissing { .. }), "{e}");
    }

    #[test]
    fn ts_diagnostics_are_file_line_column() {
        let tsc = "app.ts(3,9): error TS2322: Type 'number' is not assignable to type 'string'.\n\
                   lib/a (1).ts(12,1): error TS2345: Argument of type '{ a: number; }' is not assignable.\n  \
                   Object literal may only specify known properties.\n\
                   error TS5023: Unknown compiler option 'x'.\n";
        assert_eq!(
            type_errors(tsc),
            "app.ts:3:9: error TS2322: Type 'number' is not assignable to type 'string'.\n\
             lib/a (1).ts:12:1: error TS2345: Argument of type '{ a: number; }' is not assignable.\n  \
             Object literal may only specify known properties.\n\
             error TS5023: Unknown compiler option 'x'."
        );
        assert!(is_typed(Path::new("a.mts")) && is_typed(Path::new("a.tsx")));
        assert!(!is_typed(Path::new("a.js")) && !is_typed(Path::new("a.jsx")));
    }
}
