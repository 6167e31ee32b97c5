//! The TypeScript plugins (`plugins/typescript/NAME/app.ts`), built with `orquesta
//! build`'s library function and the tools `tests/build.rs` found. A component is
//! rebuilt only when its inputs change (the app's folder, the SDK, the contract, the
//! tool), so the suite builds each once and reuses it afterwards.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The tools' folder `tests/build.rs` found; `None` when none (the TypeScript tests are
/// then ignored, or the build failed under `ORQUESTA_REQUIRE_JS_TESTS`).
pub fn tools() -> Option<PathBuf> {
    let found = env!("ORQUESTA_TESTS_JS_TOOLS");
    (!found.is_empty()).then(|| PathBuf::from(found))
}

/// Every file under `dir` (but `node_modules`), sorted, as (relative path, bytes).
fn files(dir: &Path, root: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name() == "node_modules" {
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
    all.extend_from_slice(orquesta::javascript::fingerprint().as_bytes());
    all.extend_from_slice(orquesta::javascript::TOOL_VERSION.as_bytes());
    let mut found = Vec::new();
    files(app_dir, app_dir, &mut found);
    for (name, bytes) in found {
        all.extend_from_slice(name.as_bytes());
        all.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        all.extend_from_slice(&bytes);
    }
    orquesta::engine::content_hash(&all)
}

/// The component of the TypeScript plugin in `plugins/typescript/NAME/`, built when its
/// inputs changed since the last build.
pub fn plugin(name: &str) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.get_or_insert_with(HashMap::new).get(name) {
        return path.clone();
    }
    let tools = tools().unwrap_or_else(|| {
        panic!(
            "componentize-js {} is not installed, so the TypeScript plugin {name} cannot be built \
             (.ci/run installs it into target/js-tools; docs/PLUGINS.md)",
            orquesta::javascript::TOOL_VERSION
        )
    });
    let app_dir = crate::workspace().join("plugins/typescript").join(name);
    let out_dir = crate::target_dir().join("typescript");
    std::fs::create_dir_all(&out_dir).expect("target/typescript");
    let output = out_dir.join(format!("{name}-ts.wasm"));
    let stamp = out_dir.join(format!("{name}-ts.inputs"));
    let hash = inputs_hash(&app_dir);
    let fresh = output.is_file() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == hash);
    if !fresh {
        let options = orquesta::javascript::BuildOptions {
            app: app_dir.join("app.ts"),
            output: output.clone(),
            triggers: vec![],
            tools: Some(tools),
        };
        if let Err(e) = orquesta::javascript::build(&options) {
            panic!("building the TypeScript plugin {name}: {e}");
        }
        std::fs::write(&stamp, &hash).expect("stamp written");
    }
    built
        .get_or_insert_with(HashMap::new)
        .insert(name.to_string(), output.clone());
    output
}
