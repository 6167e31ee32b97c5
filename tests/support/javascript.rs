//! The TypeScript plugins (`plugins/typescript/NAME/app.ts`), built with `orquesta
//! build`'s library function and the tools `tests/build.rs` found. A component is
//! rebuilt only when its inputs change (the app's folder, the SDK, the contract, the
//! tool), so the suite builds each once and reuses it afterwards.

use std::path::PathBuf;

/// The tools' folder `tests/build.rs` found; `None` when none (the TypeScript tests are
/// then ignored, or the build failed under `ORQUESTA_REQUIRE_JS_TESTS`).
pub fn tools() -> Option<PathBuf> {
    let found = env!("ORQUESTA_TESTS_JS_TOOLS");
    (!found.is_empty()).then(|| PathBuf::from(found))
}

/// The component of the TypeScript plugin in `plugins/typescript/NAME/`, built when its
/// inputs changed since the last build.
pub fn plugin(name: &str) -> PathBuf {
    let language = crate::built::Language {
        folder: "typescript",
        suffix: "ts",
        embedded: format!(
            "{}{}",
            orquesta::javascript::fingerprint(),
            orquesta::javascript::TOOL_VERSION
        ),
    };
    crate::built::plugin(language, name, |app_dir, output| {
        let tools = tools().unwrap_or_else(|| {
            panic!(
                "componentize-js {} is not installed, so the TypeScript plugin {name} cannot be built \
                 (.ci/run installs it into target/js-tools; docs/PLUGINS.md)",
                orquesta::javascript::TOOL_VERSION
            )
        });
        let options = orquesta::javascript::BuildOptions {
            app: app_dir.join("app.ts"),
            output: output.to_path_buf(),
            triggers: vec![],
            tools: Some(tools),
        };
        orquesta::javascript::build(&options)
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
}
