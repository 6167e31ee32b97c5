//! What `orquesta build` writes for tsc, esbuild and componentize-js: the contract, a
//! world exporting the app's trigger kinds, the TypeScript SDK with the contract's
//! generated types, tsc's settings and the entry module. All of it is compiled into the
//! binary, so a build needs the orquesta binary and the pinned tools only, not a
//! checkout.

use std::path::Path;

/// The contract the host serves (docs/CONTRACT.md).
pub const PLUGIN_WIT: &str = include_str!("../../../wit/plugin.wit");

/// The SDK (plugins/sdk-js/src/), file by file; the app imports it as `orquesta`. The
/// `generated/` declarations are jco's types of the contract's bindings (docs/PLUGINS.md).
pub const SDK: &[(&str, &str)] = &[
    (
        "blob.ts",
        include_str!("../../../plugins/sdk-js/src/blob.ts"),
    ),
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
        "generated/interfaces/orquesta-plugin-blob.d.ts",
        include_str!("../../../plugins/sdk-js/src/generated/interfaces/orquesta-plugin-blob.d.ts"),
    ),
    (
        "generated/interfaces/orquesta-plugin-bus-handler.d.ts",
        include_str!(
            "../../../plugins/sdk-js/src/generated/interfaces/orquesta-plugin-bus-handler.d.ts"
        ),
    ),
    (
        "generated/interfaces/orquesta-plugin-config.d.ts",
        include_str!(
            "../../../plugins/sdk-js/src/generated/interfaces/orquesta-plugin-config.d.ts"
        ),
    ),
    (
        "generated/interfaces/orquesta-plugin-events.d.ts",
        include_str!(
            "../../../plugins/sdk-js/src/generated/interfaces/orquesta-plugin-events.d.ts"
        ),
    ),
    (
        "generated/interfaces/orquesta-plugin-http-handler.d.ts",
        include_str!(
            "../../../plugins/sdk-js/src/generated/interfaces/orquesta-plugin-http-handler.d.ts"
        ),
    ),
    (
        "generated/interfaces/orquesta-plugin-http.d.ts",
        include_str!("../../../plugins/sdk-js/src/generated/interfaces/orquesta-plugin-http.d.ts"),
    ),
    (
        "generated/interfaces/orquesta-plugin-kv.d.ts",
        include_str!("../../../plugins/sdk-js/src/generated/interfaces/orquesta-plugin-kv.d.ts"),
    ),
    (
        "generated/interfaces/orquesta-plugin-log.d.ts",
        include_str!("../../../plugins/sdk-js/src/generated/interfaces/orquesta-plugin-log.d.ts"),
    ),
    (
        "generated/interfaces/orquesta-plugin-messaging.d.ts",
        include_str!(
            "../../../plugins/sdk-js/src/generated/interfaces/orquesta-plugin-messaging.d.ts"
        ),
    ),
    (
        "generated/interfaces/orquesta-plugin-notify.d.ts",
        include_str!(
            "../../../plugins/sdk-js/src/generated/interfaces/orquesta-plugin-notify.d.ts"
        ),
    ),
    (
        "generated/interfaces/orquesta-plugin-queue-handler.d.ts",
        include_str!(
            "../../../plugins/sdk-js/src/generated/interfaces/orquesta-plugin-queue-handler.d.ts"
        ),
    ),
    (
        "generated/interfaces/orquesta-plugin-schedule-handler.d.ts",
        include_str!(
            "../../../plugins/sdk-js/src/generated/interfaces/orquesta-plugin-schedule-handler.d.ts"
        ),
    ),
    (
        "generated/interfaces/orquesta-plugin-sql.d.ts",
        include_str!("../../../plugins/sdk-js/src/generated/interfaces/orquesta-plugin-sql.d.ts"),
    ),
    (
        "generated/interfaces/orquesta-plugin-task-handler.d.ts",
        include_str!(
            "../../../plugins/sdk-js/src/generated/interfaces/orquesta-plugin-task-handler.d.ts"
        ),
    ),
    (
        "generated/interfaces/orquesta-plugin-topic-handler.d.ts",
        include_str!(
            "../../../plugins/sdk-js/src/generated/interfaces/orquesta-plugin-topic-handler.d.ts"
        ),
    ),
    (
        "generated/interfaces/orquesta-plugin-types.d.ts",
        include_str!("../../../plugins/sdk-js/src/generated/interfaces/orquesta-plugin-types.d.ts"),
    ),
    (
        "generated/interfaces/orquesta-plugin-workflow-tasks.d.ts",
        include_str!(
            "../../../plugins/sdk-js/src/generated/interfaces/orquesta-plugin-workflow-tasks.d.ts"
        ),
    ),
    (
        "generated/orquesta-js-plugin.d.ts",
        include_str!("../../../plugins/sdk-js/src/generated/orquesta-js-plugin.d.ts"),
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
    (
        "tasks.ts",
        include_str!("../../../plugins/sdk-js/src/tasks.ts"),
    ),
];

/// The world componentize-js builds against.
pub const WORLD: &str = "orquesta-js-plugin";

/// The entry module esbuild bundles from; it imports the app.
pub const ENTRY: &str = "orquesta_entry.js";

/// tsc's settings for checking the app.
pub const TSCONFIG: &str = "tsconfig.json";

/// The world of a plugin answering `kinds`.
pub fn world(kinds: &[&str]) -> String {
    crate::guest_world::world(WORLD, kinds)
}

/// The one WIT file the SDK's `generated/` types come from: the contract and the world of
/// a plugin answering every kind (`node plugins/sdk-js/tools/wit-types.mjs` reads it;
/// tests/e2e/javascript.rs checks the committed files against it).
pub fn types_wit() -> String {
    format!("{PLUGIN_WIT}\n{}", world(&crate::guest_world::KINDS))
}

/// tsc's settings: the app alone (what it imports follows), `orquesta` resolved to the
/// SDK written beside, strict, nothing emitted. The globals are a web worker's (fetch,
/// TextEncoder, URL, ...), the closest of TypeScript's libraries to StarlingMonkey's;
/// Node's types are not loaded, as its modules do not exist in the component.
pub fn tsconfig(dir: &Path, app: &Path) -> String {
    let config = serde_json::json!({
        "compilerOptions": {
            "strict": true,
            "noEmit": true,
            "target": "es2022",
            "module": "preserve",
            "moduleResolution": "bundler",
            "allowImportingTsExtensions": true,
            // The app's own `.js` modules are read for their types, not checked.
            "allowJs": true,
            "checkJs": false,
            "jsx": "preserve",
            "lib": ["es2022", "webworker"],
            "types": [],
            // Declarations (the generated ones, a package's) are not the app's to fix.
            "skipLibCheck": true,
            "paths": {
                "orquesta": [dir.join("sdk/index.ts")],
                "orquesta/*": [dir.join("sdk/*")],
            },
        },
        "files": [app],
    });
    serde_json::to_string_pretty(&config).unwrap_or_default()
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
        let path = sdk.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, text)?;
    }
    std::fs::write(dir.join(TSCONFIG), tsconfig(dir, app))?;
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
        fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).expect("the SDK folder").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, root, out);
                } else if path.extension().is_some_and(|e| e == "ts") {
                    let rel = path.strip_prefix(root).unwrap_or(&path);
                    out.push(rel.to_string_lossy().into_owned());
                }
            }
        }
        let dir = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../plugins/sdk-js/src"
        ));
        let mut on_disk = Vec::new();
        walk(dir, dir, &mut on_disk);
        on_disk.sort();
        let embedded: Vec<&str> = SDK.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            on_disk, embedded,
            "add the file to SDK in javascript/sources.rs"
        );
    }
}
