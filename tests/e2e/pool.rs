//! One component cannot take the instance pool: memories, tables and core instances per
//! component are capped (a component past a cap is refused when it loads, with the
//! reason), and `memory_mb` bounds all of an instance's memories together. The hostile
//! components are built here from WAT: Rust cannot declare hundreds of memories.

use orquesta::engine::{Limits, LoadError};
use orquesta::testing::{TestPlugin, shared_engine};
use orquesta_tests::plugin;
use orquesta_tests::server::TestServer;
use serde_json::json;

/// A component of `count` core instances of `module` (WAT), nothing exported.
fn instances_of(module: &str, count: usize) -> Vec<u8> {
    let instances = "(core instance (instantiate $m))\n".repeat(count);
    wat::parse_str(format!("(component (core module $m {module}) {instances})")).expect("valid WAT")
}

async fn load(bytes: Vec<u8>) -> Result<orquesta::engine::Plugin, LoadError> {
    shared_engine().expect("engine").load(bytes).await
}

#[tokio::test]
async fn a_component_past_a_per_component_cap_is_refused_at_load() {
    let cases = [
        // The report's attack: 512 one-page memories took every memory slot.
        (instances_of("(memory 1)", 512), "512 core module instances"),
        (instances_of("(memory 1)", 20), "20 Wasm linear memories"),
        (instances_of("(table 1 funcref)", 20), "20 tables"),
    ];
    for (bytes, reason) in cases {
        match load(bytes).await {
            Err(LoadError::Invalid(why)) => assert!(why.contains(reason), "{why}"),
            Err(other) => panic!("refused for another reason: {other}"),
            Ok(_) => panic!("a component with {reason} loaded"),
        }
    }
}

/// `plugin`'s component with `count` more core instances, each with one memory of
/// `pages` 64 KiB pages: a valid plugin that holds many memories. Appended as a core
/// module section and a core instance section (the binary format allows sections in
/// any order once what they name is defined).
pub(crate) fn with_memories(plugin: &[u8], count: u32, pages: u32) -> Vec<u8> {
    let leb = |mut n: u32, out: &mut Vec<u8>| loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    };
    // Core modules defined so far: top-level sections of id 1, one module each.
    let (mut at, mut modules) = (8, 0);
    while at < plugin.len() {
        let id = plugin[at];
        let (mut size, mut shift) = (0usize, 0);
        at += 1;
        loop {
            let b = plugin[at];
            at += 1;
            size |= ((b & 0x7f) as usize) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        modules += u32::from(id == 1);
        at += size;
    }
    let module = wat::parse_str(format!("(module (memory {pages}))")).expect("module");
    let mut out = plugin.to_vec();
    out.push(1);
    leb(module.len() as u32, &mut out);
    out.extend(&module);
    let mut instances = Vec::new();
    leb(count, &mut instances);
    for _ in 0..count {
        instances.push(0); // instantiate
        leb(modules, &mut instances);
        instances.push(0); // no arguments
    }
    out.push(2);
    leb(instances.len() as u32, &mut out);
    out.extend(instances);
    out
}

/// The report's second finding: 12 memories of 60 MiB each held 720 MiB under
/// `memory_mb = 64`, which limited each memory alone.
#[tokio::test]
async fn memory_mb_bounds_all_of_an_instances_memories() {
    let hostile = std::fs::read(plugin("hostile")).unwrap();
    let loaded = load(with_memories(&hostile, 12, 960))
        .await
        .expect("12 more memories are within the per-component cap");
    let mut sandbox = TestPlugin::new(shared_engine().unwrap(), loaded)
        .sandbox()
        .await
        .unwrap();
    sandbox.limits(Limits {
        memory_mb: 64,
        ..Limits::default()
    });
    let nap = json!({ "type": "task", "input": { "attack": "nap", "ms": 1 } });
    let err = sandbox.invoke(nap.clone()).await.expect_err("over 64 MiB");
    assert_eq!(err.name(), "memory-limit", "{err}");

    // The same component with small memories runs: the sum is what counts.
    let small = load(with_memories(&hostile, 12, 16)).await.unwrap();
    let mut sandbox = TestPlugin::new(shared_engine().unwrap(), small)
        .sandbox()
        .await
        .unwrap();
    sandbox.limits(Limits {
        memory_mb: 64,
        ..Limits::default()
    });
    assert_eq!(sandbox.invoke(nap).await.unwrap()["slept_ms"], 1);
}

/// Through the service: the tenant whose component is refused sees why, its route
/// answers 503, and another tenant is served meanwhile.
#[tokio::test]
async fn a_refused_component_leaves_other_tenants_served() {
    let evil = r#"
[plugins.evil]
source = "evil.wasm"

[[routes]]
method = "GET"
path = "/evil"
plugin = "evil"
"#;
    let good = r#"
[plugins.hello]
source = "hello.wasm"

[[routes]]
method = "GET"
path = "/hello"
plugin = "hello"
"#;
    let s = TestServer::start(&["hello"], &[("evil", evil), ("good", good)], |_| {}).await;
    s.write_plugin("evil", &instances_of("(memory 1)", 512));
    s.reload().await;
    let mut reason = String::new();
    for _ in 0..100 {
        let plugins = s.admin("plugins").await;
        let evil = plugins["plugins"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == "evil")
            .cloned();
        if let Some(error) = evil.as_ref().and_then(|p| p["error"].as_str()) {
            reason = error.to_string();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        reason.contains("512 core module instances"),
        "the refusal says why: {reason:?}"
    );
    let r = s
        .client
        .get(format!("{}/t/evil/evil", s.url))
        .send()
        .await
        .unwrap();
    // A tenant whose plugin did not load is refused whole: never served.
    assert_eq!(r.status(), 404);
    for _ in 0..20 {
        let r = s
            .client
            .get(format!("{}/t/good/hello", s.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    s.shutdown().await;
}
