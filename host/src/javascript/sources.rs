//! What `orquesta build` writes for esbuild and componentize-js: the contract, a world
//! exporting the app's trigger kinds, the TypeScript SDK and the entry module. All of it
//! is compiled into the binary, so a build needs the orquesta binary and the pinned
//! tools only, not a checkout.

use std::path::Path;

/// The contract the host serves (docs/CONTRACT.md).
pub const PLUGIN_WIT: &str = include_str!("../../../wit/plugin.wit");

/// The SDK (plugins/sdk-js/src/), file by file; the app imports it as `orquesta`.
pub const SDK: &[(&str, &str)] = &[
    (
        "config.ts",
        include_str!("../../../plugins/sdk-js/src/config.ts"),
    ),
    (
        "errors.ts",
        include_str!("../../../plugins/sdk-js/src/errors.ts"),
    ),
    (
        "events.ts",
        include_str!("../../../plugins/sdk-js/src/events.ts"),
    ),
    (
        "handlers.ts",
        include_str!("../../../plugins/sdk-js/src/handlers.ts"),
    ),
    (
        "http.ts",
        include_str!("../../../plugins/sdk-js/src/http.ts"),
    ),
    (
        "index.ts",
        include_str!("../../../plugins/sdk-js/src/index.ts"),
    ),
    ("kv.ts", include_str!("../../../plugins/sdk-js/src/kv.ts")),
    ("log.ts", include_str!("../../../plugins/sdk-js/src/log.ts")),
    (
        "messaging.ts",
        include_str!("../../../plugins/sdk-js/src/messaging.ts"),
    ),
    (
        "responses.ts",
        include_str!("../../../plugins/sdk-js/src/responses.ts"),
    ),
    ("sql.ts", include_str!("../../../plugins/sdk-js/src/sql.ts")),
];

/// The world componentize-js builds against.
pub const WORLD: &str = "orquesta-js-plugin";

/// The entry module esbuild bundles from; it imports the app.
pub const ENTRY: &str = "orquesta_entry.js";

/// The world of a plugin answering `kinds`.
pub fn world(kinds: &[&str]) -> String {
    crate::guest_world::world(WORLD, kinds)
}

/// Imports the app (its `onKIND(...)` calls register the handlers), checks at build time
/// (componentize-js runs the module's top level while pre-initialising) that it
/// registered exactly `kinds`, and exports each interface's object under the name
/// componentize-js looks up (`http-handler`: `httpHandler`).
pub fn entry(app: &Path, kinds: &[&str]) -> String {
    // A JSON string is a valid JavaScript string literal, whatever the path holds.
    let app = serde_json::to_string(&app.display().to_string()).unwrap_or_default();
    let mut js = format!(
        "// Written by `orquesta build`: the component's entry module.\n\
         import {app};\n\
         import {{ checkExported, exported }} from \"orquesta/handlers\";\n\n\
         checkExported({kinds:?});\n"
    );
    for kind in kinds {
        js.push_str(&format!(
            "export const {kind}Handler = exported.{kind}Handler;\n"
        ));
    }
    js
}

/// Writes the contract, the world, the SDK and the entry module under `dir`.
pub fn write(dir: &Path, app: &Path, kinds: &[&str]) -> std::io::Result<()> {
    let wit = dir.join("wit");
    std::fs::create_dir_all(&wit)?;
    std::fs::write(wit.join("plugin.wit"), PLUGIN_WIT)?;
    std::fs::write(wit.join("build.wit"), world(kinds))?;
    let sdk = dir.join("sdk");
    std::fs::create_dir_all(&sdk)?;
    for (name, text) in SDK {
        std::fs::write(sdk.join(name), text)?;
    }
    std::fs::write(dir.join(ENTRY), entry(app, kinds))
}

/// A hash of everything the build embeds: the contract and the SDK.
pub fn fingerprint() -> String {
    crate::guest_world::fingerprint(PLUGIN_WIT, SDK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn js_world_and_entry_name_each_kind_once() {
        assert_eq!(
            world(&["http", "schedule"]),
            "// Written by `orquesta build`.\nworld orquesta-js-plugin {\n    include capabilities;\n    export http-handler;\n    export schedule-handler;\n}\n"
        );
        let js = entry(Path::new("/a/b\"c/app.ts"), &["http", "task"]);
        assert!(js.contains("import \"/a/b\\\"c/app.ts\";\n"), "{js}");
        assert!(js.contains("checkExported([\"http\", \"task\"]);"), "{js}");
        assert!(js.contains("export const httpHandler = exported.httpHandler;\n"));
        assert!(js.contains("export const taskHandler = exported.taskHandler;\n"));
    }

    #[test]
    fn every_js_sdk_file_is_embedded() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/sdk-js/src");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .expect("the SDK folder")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".ts"))
            .collect();
        on_disk.sort();
        let embedded: Vec<&str> = SDK.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            on_disk, embedded,
            "add the file to SDK in javascript/sources.rs"
        );
    }
}
