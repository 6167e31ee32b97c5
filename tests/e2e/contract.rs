//! The contract's versions: a component built against a released version of
//! `orquesta:plugin` (kept as a binary in tests/fixtures/contract, never rebuilt) loads
//! and behaves the same on today's host, through the test harness and through the
//! service.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use orquesta::testing::TestPlugin;
use orquesta::testing::fixtures::FixtureFile;
use orquesta_tests::server::{ADMIN_TOKEN, TestServer};
use orquesta_tests::workspace;
use serde_json::{Value, json};

/// The kept component built against `version`, and its fixtures.
fn kept(version: &str) -> (PathBuf, PathBuf) {
    let dir = workspace().join("tests/fixtures/contract").join(version);
    (
        dir.join(format!("contract-{version}.wasm")),
        dir.join("fixtures.toml"),
    )
}

#[tokio::test]
async fn a_component_built_against_0_1_0_passes_its_fixtures() {
    let (wasm, fixtures) = kept("0.1.0");
    let plugin = TestPlugin::load(&wasm).await.unwrap();
    let results = FixtureFile::load(&fixtures)
        .unwrap()
        .run(&plugin)
        .await
        .unwrap();
    // One case per trigger kind of 0.1.0 (http twice, task twice).
    assert_eq!(results.len(), 8);
    for r in &results {
        assert!(r.passed(), "{}: {:?}", r.name, r.failures);
    }
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
