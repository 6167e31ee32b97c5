//! The plugins of other languages (`plugins/LANGUAGE/NAME/`), built once for the suite: a
//! component is rebuilt only when its inputs change (the app's folder, what the
//! `orquesta` binary embeds for the build, the tool's version), so a run reuses what an
//! earlier one built.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One language's build.
pub(crate) struct Language {
    /// The folder under `plugins/` and under the target directory.
    pub folder: &'static str,
    /// The component's name is `NAME-{suffix}.wasm`.
    pub suffix: &'static str,
    /// What the build embeds and the tool's version: a change rebuilds every plugin.
    pub embedded: String,
}

/// Folders that are the tools' caches, not the app's inputs.
const CACHES: [&str; 2] = ["__pycache__", "node_modules"];

/// Every file under `dir` (but caches), sorted, as (relative path, bytes).
fn files(dir: &Path, root: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if CACHES.iter().any(|c| entry.file_name() == *c) {
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

fn inputs_hash(embedded: &str, app_dir: &Path) -> String {
    let mut all = embedded.as_bytes().to_vec();
    let mut found = Vec::new();
    files(app_dir, app_dir, &mut found);
    for (name, bytes) in found {
        all.extend_from_slice(name.as_bytes());
        all.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        all.extend_from_slice(&bytes);
    }
    orquesta::engine::content_hash(&all)
}

/// The component of plugin `name` of `language`, made by `build(app_dir, output)` when
/// its inputs changed since the last build.
pub(crate) fn plugin(
    language: Language,
    name: &str,
    build: impl FnOnce(&Path, &Path) -> Result<(), String>,
) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<(&str, String), PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let key = (language.folder, name.to_string());
    if let Some(path) = built.get_or_insert_with(HashMap::new).get(&key) {
        return path.clone();
    }
    let app_dir = crate::workspace()
        .join("plugins")
        .join(language.folder)
        .join(name);
    let out_dir = crate::target_dir().join(language.folder);
    std::fs::create_dir_all(&out_dir).expect("the plugins' output folder");
    let output = out_dir.join(format!("{name}-{}.wasm", language.suffix));
    let stamp = out_dir.join(format!("{name}-{}.inputs", language.suffix));
    let hash = inputs_hash(&language.embedded, &app_dir);
    let fresh = output.is_file() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == hash);
    if !fresh {
        if let Err(e) = build(&app_dir, &output) {
            panic!("building the {} plugin {name}: {e}", language.folder);
        }
        std::fs::write(&stamp, &hash).expect("stamp written");
    }
    built
        .get_or_insert_with(HashMap::new)
        .insert(key, output.clone());
    output
}
