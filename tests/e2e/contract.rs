//! The contract's versions: a component built against a released version of
//! `orquesta:plugin` (kept as a binary in tests/fixtures/contract, never rebuilt) loads
//! and behaves the same on today's host, through the test harness and through the
//! service.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use orquesta::bindings::handler::{Event, Failure, Response};
use orquesta::engine::{CONTRACT_VERSION, Engine, EngineConfig, EngineLimits, interface_name};
use orquesta::testing::TestPlugin;
use orquesta::testing::fixtures::FixtureFile;
use orquesta_tests::server::{ADMIN_TOKEN, TestServer};
use orquesta_tests::{plugin, workspace};
use serde_json::{Value, json};

/// The kept component built against `version`, and its fixtures.
fn kept(version: &str) -> (PathBuf, PathBuf) {
    let dir = workspace().join("tests/fixtures/contract").join(version);
    (
        dir.join(format!("contract-{version}.wasm")),
        dir.join("fixtures.toml"),
    )
}

/// Every released version, each with a kept component (docs/CONTRACT.md).
const RELEASED: [&str; 3] = ["0.1.0", "0.1.1", "0.1.2"];

#[tokio::test]
async fn components_built_against_each_release_pass_their_fixtures() {
    for version in RELEASED {
        let (wasm, fixtures) = kept(version);
        let plugin = TestPlugin::load(&wasm).await.unwrap();
        assert_eq!(
            plugin.plugin().triggers(),
            ["http", "queue", "topic", "bus", "schedule", "task"],
            "{version}"
        );
        let results = FixtureFile::load(&fixtures)
            .unwrap()
            .run(&plugin)
            .await
            .unwrap();
        // One case per trigger kind (http twice, task twice); 0.1.2 adds four of
        // `workflow-tasks`.
        let cases = if version == "0.1.2" { 12 } else { 8 };
        assert_eq!(results.len(), cases, "{version}");
        for r in &results {
            assert!(r.passed(), "{version}: {}: {:?}", r.name, r.failures);
        }
    }
    // 0.1.0's answers through its one `handler`, 0.1.1's through a handler per kind.
    let legacy = |version| async move {
        let plugin = TestPlugin::load(kept(version).0).await.unwrap();
        plugin
            .plugin()
            .export::<(Event,), (Result<Response, Failure>,)>(&interface_name("handler"), "handle")
            .unwrap()
            .is_some()
    };
    assert!(legacy("0.1.0").await);
    assert!(!legacy("0.1.1").await);
    assert!(!legacy("0.1.2").await);
}

#[tokio::test]
async fn a_component_built_against_0_1_0_serves_routes_and_queues() {
    let tenant = r#"
[plugins.old]
source = "old.wasm"
config = { greeting = "Hola" }

[[routes]]
method = "GET"
path = "/greet/{name}"
plugin = "old"

[queues.orders]
visibility_timeout_seconds = 1
dead_letter = { queue = "orders-dlq", max_receive_count = 1 }
consumer = { plugin = "old", batch_size = 10 }

[queues.orders-dlq]
"#;
    let s = TestServer::start(&[], &[], |_| {}).await;
    let (wasm, _) = kept("0.1.0");
    s.write_plugin("old", &std::fs::read(&wasm).unwrap());
    s.write_tenant("acme", tenant);
    s.reload().await;

    for count in 1..=2 {
        let r = s
            .client
            .get(format!("{}/t/acme/greet/Ana", s.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            body,
            json!({ "message": "Hola, Ana!", "count": count, "contract": "0.1.0" })
        );
    }

    // The batch answer names the failed message: it alone is dead-lettered, the others
    // are done.
    let sent = s
        .client
        .post(format!(
            "{}/admin/v1/tenants/acme/queues/orders/messages",
            s.url
        ))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "messages": [{ "body": "one" }, { "body": "fail" }, { "body": "two" }] }))
        .send()
        .await
        .unwrap();
    assert!(sent.status().is_success(), "{}", sent.status());
    let started = Instant::now();
    let dead = loop {
        let dead = admin(&s, "/tenants/acme/queues/orders-dlq/messages").await;
        let queues = admin(&s, "/tenants/acme/queues").await;
        let orders = queues["queues"]
            .as_array()
            .and_then(|q| q.iter().find(|q| q["name"] == "orders"))
            .cloned()
            .unwrap_or_default();
        let drained = orders["visible"] == 0 && orders["in_flight"] == 0;
        if drained && dead["messages"].as_array().is_some_and(|m| !m.is_empty()) {
            break dead;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "orders not drained into its dead-letter queue: {orders} {dead}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let bodies: Vec<&Value> = dead["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["body"])
        .collect();
    assert_eq!(bodies, [&json!("fail")], "{dead}");
    s.shutdown().await;
}

/// `GET /admin/v1{path}` as JSON.
async fn admin(s: &TestServer, path: &str) -> Value {
    s.client
        .get(format!("{}/admin/v1{path}", s.url))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_plugin_built_against_the_current_contract_exports_only_its_handlers() {
    // hello is rebuilt from source with today's SDK, as `export!(Hello: http, task)`.
    let hello = TestPlugin::load(plugin("hello")).await.unwrap();
    assert_eq!(hello.plugin().triggers(), ["http", "task"]);
    let legacy = hello
        .plugin()
        .export::<(Event,), (Result<Response, Failure>,)>(&interface_name("handler"), "handle")
        .unwrap();
    assert!(legacy.is_none(), "hello exports the 0.1.0 handler");
    let results = FixtureFile::load(&workspace().join("examples/hello/fixtures.toml"))
        .unwrap()
        .run(&hello)
        .await
        .unwrap();
    assert!(results.iter().all(|r| r.passed()), "{results:?}");
    // A trigger it does not export never reaches it.
    let err = hello
        .sandbox()
        .await
        .unwrap()
        .invoke(json!({ "type": "queue", "messages": [{ "body": "x" }] }))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "unsupported-trigger");
    assert!(
        err.cause()
            .contains(&format!("orquesta:plugin/queue-handler@{CONTRACT_VERSION}")),
        "{err}"
    );
}

/// A trigger kind the host does not know, defined by this test alone: its handler
/// interface, and the types of its `handle` as the host calls it.
const TICK: &str = "orquesta:test/tick-handler@0.1.0";
type TickParams = (u32,);
type TickResults = (u32,);

/// A component that answers only that kind: `handle(n)` gives `n * 2`.
const TICKER: &str = r#"(component
    (core module $m
        (func (export "handle") (param i32) (result i32)
            (i32.mul (local.get 0) (i32.const 2))))
    (core instance $i (instantiate $m))
    (func $handle (param "n" u32) (result u32) (canon lift (core func $i "handle")))
    (instance $tick (export "handle" (func $handle)))
    (export "orquesta:test/tick-handler@0.1.0" (instance $tick)))"#;

#[tokio::test]
async fn a_trigger_kind_added_in_a_test_reaches_only_its_plugins_and_old_ones_are_unaffected() {
    let engine = Engine::new(EngineConfig {
        limits: EngineLimits {
            instance_slots: 8,
            ..EngineLimits::default()
        },
        extra_triggers: vec![TICK.into()],
        ..EngineConfig::default()
    })
    .unwrap();
    let (old_wasm, old_fixtures) = kept("0.1.0");
    let old = engine
        .load(std::fs::read(&old_wasm).unwrap())
        .await
        .unwrap();
    let hello = engine
        .load(std::fs::read(plugin("hello")).unwrap())
        .await
        .unwrap();
    let ticker = engine.load(wat::parse_str(TICKER).unwrap()).await.unwrap();

    // The new kind's router: every plugin that exports its handler, and only those.
    let mut answered = Vec::new();
    for (name, p) in [("old", &old), ("hello", &hello), ("ticker", &ticker)] {
        let Some(export) = p.export::<TickParams, TickResults>(TICK, "handle").unwrap() else {
            continue;
        };
        let sandbox = TestPlugin::new(engine.clone(), p.clone())
            .sandbox()
            .await
            .unwrap();
        let (doubled,) = engine
            .call(p, sandbox.context(), export, (21,))
            .await
            .unwrap();
        answered.push((name, doubled));
    }
    assert_eq!(answered, [("ticker", 42)]);
    // It answers none of the contract's kinds.
    assert!(ticker.triggers().is_empty());
    let err = TestPlugin::new(engine.clone(), ticker)
        .sandbox()
        .await
        .unwrap()
        .invoke(json!({ "type": "task", "input": {} }))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "unsupported-trigger", "{err}");
    // A handler of the new kind with other types is refused, not called unchecked.
    assert!(ticker_export_with_wrong_types(&engine).await);

    // Old plugins on this engine: the 0.1.0 component passes its fixtures, hello answers.
    let results = FixtureFile::load(&old_fixtures)
        .unwrap()
        .run(&TestPlugin::new(engine.clone(), old))
        .await
        .unwrap();
    assert_eq!(results.len(), 8);
    for r in &results {
        assert!(r.passed(), "{}: {:?}", r.name, r.failures);
    }
    let out = TestPlugin::new(engine.clone(), hello)
        .sandbox()
        .await
        .unwrap()
        .invoke(json!({ "type": "task", "input": { "name": "Ana" } }))
        .await
        .unwrap();
    assert_eq!(out["message"], "Hello, Ana!");

    // An engine that does not know the kind refuses the component as no plugin at all.
    let plain = orquesta::testing::shared_engine().unwrap();
    let refused = plain
        .load(wat::parse_str(TICKER).unwrap())
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("wrong-world")
            && refused.to_string().contains("exports no handler"),
        "{refused}"
    );
}

/// Whether asking the ticker's handler for other types than it has is refused.
async fn ticker_export_with_wrong_types(engine: &Engine) -> bool {
    let ticker = engine.load(wat::parse_str(TICKER).unwrap()).await.unwrap();
    let wrong = ticker.export::<(String,), (u32,)>(TICK, "handle");
    matches!(wrong, Err(e) if e.to_string().contains("type-checking `handle`"))
}

/// A trigger sent to a plugin that does not export its handler is refused when the
/// tenant file loads, naming the setting and what the plugin answers; the file with the
/// trigger moved to a plugin that answers it loads.
#[tokio::test]
async fn a_trigger_sent_to_a_plugin_without_its_handler_is_refused_at_load() {
    let s = TestServer::start(&["hello"], &[], |_| {}).await;
    // hello exports http and task handlers only.
    let tenant = |consumer: &str| {
        format!(
            "[plugins.hello]\nsource = \"hello.wasm\"\n\n[plugins.old]\nsource = \"old.wasm\"\n\n\
             [queues.jobs]\nconsumer = {{ plugin = \"{consumer}\" }}\n"
        )
    };
    s.write_plugin("old", &std::fs::read(kept("0.1.0").0).unwrap());
    s.write_tenant("acme", &tenant("hello"));
    let listed = s.reload().await;
    let acme = s.admin("tenants").await["tenants"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "acme").cloned())
        .unwrap_or_default();
    let error = acme["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(
            "acme.toml:8: queues.jobs.consumer: plugin `hello` (hello.wasm) exports no queue handler; it answers http, task"
        ),
        "{listed} {acme}"
    );
    assert_eq!(acme["serving"], false, "{acme}");

    s.write_tenant("acme", &tenant("old"));
    s.reload().await;
    let acme = s.admin("tenants").await["tenants"][0].clone();
    assert!(acme["error"].is_null() && acme["serving"] == true, "{acme}");
    s.shutdown().await;
}
