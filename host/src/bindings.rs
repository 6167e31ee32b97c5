//! Host-side bindings of the `orquesta:plugin` world (`wit/plugin.wit`).

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
    imports: { default: async },
    exports: { default: async },
    additional_derives: [PartialEq],
});

pub use self::exports::orquesta::plugin::handler;
pub use self::orquesta::plugin::{blob, config, http, kv, log, messaging, notify, sql, types};
