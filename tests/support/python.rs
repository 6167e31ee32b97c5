//! The Python plugins (`plugins/python/NAME/app.py`), built with `orquesta build`'s
//! library function and the componentize-py that `tests/build.rs` found. A component is
//! rebuilt only when its inputs change (the app's folder, the SDK, the contract, the
//! tool), so the suite builds each once (about 20 s) and reuses it afterwards.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The componentize-py `tests/build.rs` found; empty when none (the Python tests are then
/// ignored, or the build failed under `ORQUESTA_REQUIRE_PYTHON_TESTS`).
pub fn tool() -> Option<PathBuf> {
    let found = env!("ORQUESTA_TESTS_COMPONENTIZE_PY");
    (!found.is_empty()).then(|| PathBuf::from(found))
}

/// Every file under `dir` (but caches), sorted, as (relative path, bytes).
fn files(dir: &Path, root: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "__pycache__" {
            continue;
        }
        if path.is_dir() {
            files(&path, root, out);
        } else if let Ok(bytes) = std::fs::read(&path) {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            out.push((rel.display().to_string(), bytes));
        }
    }
    out.sort();
}

fn inputs_hash(app_dir: &Path) -> String {
    let mut all = Vec::new();
    all.extend_from_slice(orquesta::python::fingerprint().as_bytes());
    all.extend_from_slice(orquesta::python::TOOL_VERSION.as_bytes());
    let mut found = Vec::new();
    files(app_dir, app_dir, &mut found);
    for (name, bytes) in found {
        all.extend_from_slice(name.as_bytes());
        all.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        all.extend_from_slice(&bytes);
    }
    orquesta::engine::content_hash(&all)
}

/// The component of the Python plugin in `plugins/python/NAME/`, built when its inputs
/// changed since the last build.
pub fn plugin(name: &str) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.get_or_insert_with(HashMap::new).get(name) {
        return path.clone();
    }
    let tool = tool().unwrap_or_else(|| {
        panic!(
            "componentize-py {} is not installed, so the Python plugin {name} cannot be built \
             (.ci/run installs it into target/componentize-py; docs/PLUGINS.md)",
            orquesta::python::TOOL_VERSION
        )
    });
    let app_dir = crate::workspace().join("plugins/python").join(name);
    let out_dir = crate::target_dir().join("python");
    std::fs::create_dir_all(&out_dir).expect("target/python");
    let output = out_dir.join(format!("{name}-python.wasm"));
    let stamp = out_dir.join(format!("{name}-python.inputs"));
    let hash = inputs_hash(&app_dir);
    let fresh = output.is_file() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == hash);
    if !fresh {
        let options = orquesta::python::BuildOptions {
            app: app_dir.join("app.py"),
            output: output.clone(),
            triggers: vec![],
            tool: Some(tool),
        };
        if let Err(e) = orquesta::python::build(&options) {
            panic!("building the Python plugin {name}: {e}");
        }
        std::fs::write(&stamp, &hash).expect("stamp written");
    }
    built
        .get_or_insert_with(HashMap::new)
        .insert(name.to_string(), output.clone());
    output
}
