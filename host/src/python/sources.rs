//! What `orquesta build` writes beside the app for componentize-py: the contract, a world
//! exporting the app's trigger kinds, the Python SDK and the entry module. All of it is
//! compiled into the binary, so a build needs the orquesta binary and componentize-py
//! only, not a checkout.

use std::path::Path;

/// The contract the host serves (docs/CONTRACT.md).
pub const PLUGIN_WIT: &str = include_str!("../../../wit/plugin.wit");

/// The SDK package `orquesta` (plugins/sdk-python/orquesta/), file by file.
pub const SDK: &[(&str, &str)] = &[
    (
        "__init__.py",
        include_str!("../../../plugins/sdk-python/orquesta/__init__.py"),
    ),
    (
        "blob.py",
        include_str!("../../../plugins/sdk-python/orquesta/blob.py"),
    ),
    (
        "config.py",
        include_str!("../../../plugins/sdk-python/orquesta/config.py"),
    ),
    (
        "errors.py",
        include_str!("../../../plugins/sdk-python/orquesta/errors.py"),
    ),
    (
        "events.py",
        include_str!("../../../plugins/sdk-python/orquesta/events.py"),
    ),
    (
        "handlers.py",
        include_str!("../../../plugins/sdk-python/orquesta/handlers.py"),
    ),
    (
        "http.py",
        include_str!("../../../plugins/sdk-python/orquesta/http.py"),
    ),
    (
        "kv.py",
        include_str!("../../../plugins/sdk-python/orquesta/kv.py"),
    ),
    (
        "log.py",
        include_str!("../../../plugins/sdk-python/orquesta/log.py"),
    ),
    (
        "messaging.py",
        include_str!("../../../plugins/sdk-python/orquesta/messaging.py"),
    ),
    (
        "notify.py",
        include_str!("../../../plugins/sdk-python/orquesta/notify.py"),
    ),
    (
        "responses.py",
        include_str!("../../../plugins/sdk-python/orquesta/responses.py"),
    ),
    (
        "sql.py",
        include_str!("../../../plugins/sdk-python/orquesta/sql.py"),
    ),
];

/// The world componentize-py builds against. One world: componentize-py 0.25.1 panics
/// when given several `-w` to merge (`capabilities` with `http-trigger`).
pub const WORLD: &str = "orquesta-python-plugin";

/// The entry module componentize-py is pointed at; the app is imported from it.
pub const ENTRY: &str = "orquesta_entry";

/// The world of a plugin answering `kinds`.
pub fn world(kinds: &[&str]) -> String {
    crate::guest_world::world(WORLD, kinds)
}

/// Imports the app (its decorators register the handlers), checks at build time that it
/// registered exactly `kinds`, and binds each exported interface's class.
pub fn entry(app_module: &str, kinds: &[&str]) -> String {
    let mut py = format!(
        "# Written by `orquesta build`: the component's entry module.\n\
         import {app_module}  # noqa: F401  (its decorators register the handlers)\n\
         from orquesta.handlers import check_exported, exported\n\n\
         check_exported({kinds:?})\n"
    );
    for kind in kinds {
        let class = class_name(kind);
        py.push_str(&format!("{class} = exported.{class}\n"));
    }
    py
}

/// `http` -> `HttpHandler`: the class name componentize-py looks up for `http-handler`.
fn class_name(kind: &str) -> String {
    let mut chars = kind.chars();
    let first = chars.next().map(|c| c.to_ascii_uppercase());
    first.into_iter().chain(chars).collect::<String>() + "Handler"
}

/// Writes the contract, the world, the SDK and the entry module under `dir`.
pub fn write(dir: &Path, app_module: &str, kinds: &[&str]) -> std::io::Result<()> {
    let wit = dir.join("wit");
    std::fs::create_dir_all(&wit)?;
    std::fs::write(wit.join("plugin.wit"), PLUGIN_WIT)?;
    std::fs::write(wit.join("build.wit"), world(kinds))?;
    let sdk = dir.join("sdk/orquesta");
    std::fs::create_dir_all(&sdk)?;
    for (name, text) in SDK {
        std::fs::write(sdk.join(name), text)?;
    }
    let entry_dir = dir.join("entry");
    std::fs::create_dir_all(&entry_dir)?;
    std::fs::write(
        entry_dir.join(format!("{ENTRY}.py")),
        entry(app_module, kinds),
    )
}

/// A hash of everything the build embeds: the contract and the SDK.
pub fn fingerprint() -> String {
    crate::guest_world::fingerprint(PLUGIN_WIT, SDK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_world_and_entry_name_each_kind_once() {
        assert_eq!(
            world(&["http", "schedule"]),
            "// Written by `orquesta build`.\nworld orquesta-python-plugin {\n    include capabilities;\n    export http-handler;\n    export schedule-handler;\n}\n"
        );
        let py = entry("app", &["http", "task"]);
        assert!(py.contains("import app "));
        assert!(py.contains("check_exported([\"http\", \"task\"])"));
        assert!(py.contains("HttpHandler = exported.HttpHandler\n"));
        assert!(py.contains("TaskHandler = exported.TaskHandler\n"));
    }

    #[test]
    fn every_sdk_file_is_embedded() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../plugins/sdk-python/orquesta"
        );
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .expect("the SDK folder")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".py"))
            .collect();
        on_disk.sort();
        let embedded: Vec<&str> = SDK.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            on_disk, embedded,
            "add the file to SDK in python/sources.rs"
        );
    }
}
