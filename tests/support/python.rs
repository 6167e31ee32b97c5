//! The Python plugins (`plugins/python/NAME/app.py`), built with `orquesta build`'s
//! library function and the componentize-py that `tests/build.rs` found. A component is
//! rebuilt only when its inputs change (the app's folder, the SDK, the contract, the
//! tool), so the suite builds each once (about 20 s) and reuses it afterwards.

use std::path::PathBuf;

/// The componentize-py `tests/build.rs` found; empty when none (the Python tests are then
/// ignored, or the build failed under `ORQUESTA_REQUIRE_PYTHON_TESTS`).
pub fn tool() -> Option<PathBuf> {
    let found = env!("ORQUESTA_TESTS_COMPONENTIZE_PY");
    (!found.is_empty()).then(|| PathBuf::from(found))
}

/// The component of the Python plugin in `plugins/python/NAME/`, built when its inputs
/// changed since the last build.
pub fn plugin(name: &str) -> PathBuf {
    let language = crate::built::Language {
        folder: "python",
        suffix: "python",
        embedded: format!(
            "{}{}",
            orquesta::python::fingerprint(),
            orquesta::python::TOOL_VERSION
        ),
    };
    crate::built::plugin(language, name, |app_dir, output| {
        let tool = tool().unwrap_or_else(|| {
            panic!(
                "componentize-py {} is not installed, so the Python plugin {name} cannot be built \
                 (.ci/run installs it into target/componentize-py; docs/PLUGINS.md)",
                orquesta::python::TOOL_VERSION
            )
        });
        let options = orquesta::python::BuildOptions {
            app: app_dir.join("app.py"),
            output: output.to_path_buf(),
            triggers: vec![],
            tool: Some(tool),
        };
        orquesta::python::build(&options)
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
}
