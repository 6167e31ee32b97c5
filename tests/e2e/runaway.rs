//! Guests that end in ways other than a trap or a result are named for what they did:
//! `exit` without answering, and Rust's own stack overflowing in linear memory.

use orquesta::engine::Limits;
use orquesta::testing::TestPlugin;
use orquesta_tests::plugin;
use orquesta_tests::server::TestServer;
use serde_json::{Value, json};

async fn invoke(input: Value) -> orquesta::engine::InvokeError {
    let hostile = TestPlugin::load(plugin("hostile")).await.unwrap();
    let mut sandbox = hostile.sandbox().await.unwrap();
    sandbox.limits(Limits::default());
    sandbox
        .invoke(json!({ "type": "task", "input": input }))
        .await
        .expect_err("the attack must fail")
}

#[tokio::test]
async fn exit_is_reported_with_its_status() {
    // WASI 0.2's `exit` carries success or failure: a Rust guest's `exit(3)` is status 1.
    for (code, status) in [(0, 0), (3, 1)] {
        let err = invoke(json!({ "attack": "exit", "status": code })).await;
        assert_eq!(err.name(), "exited", "{err}");
        assert_eq!(
            err.cause(),
            format!("the plugin exited with status {status} without answering")
        );
    }
}

#[tokio::test]
async fn a_rust_stack_overflow_in_linear_memory_is_a_stack_overflow() {
    let err = invoke(json!({ "attack": "stack-smash" })).await;
    assert_eq!(err.name(), "stack-overflow", "{err}");
    // An ordinary out-of-bounds access is still a trap of its own kind.
    assert!(!err.cause().contains("out of bounds"), "{err}");
}

/// Through the service: a 500 naming the exit, not a 503 "instantiation" that would tell
/// a client to retry.
#[tokio::test]
async fn exit_over_http_is_a_500_naming_it() {
    let tenant = r#"
[plugins.hostile]
source = "hostile.wasm"

[[routes]]
method = "POST"
path = "/hostile"
plugin = "hostile"
"#;
    let s = TestServer::start(&["hostile"], &[("acme", tenant)], |_| {}).await;
    let r = s
        .client
        .post(format!("{}/t/acme/hostile", s.url))
        .body(json!({ "attack": "exit", "status": 0 }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["title"], "exited", "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("status 0"),
        "{problem}"
    );
    s.shutdown().await;
}
