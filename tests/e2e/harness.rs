//! The Rust harness has the powers of `orquesta test`: config, secrets, kv, scripted
//! HTTP, and a record of calls, notifications and messages.

use orquesta::testing::fixtures::FixtureFile;
use orquesta::testing::{MockResponse, TestPlugin};
use orquesta_tests::{plugin, workspace};
use serde_json::json;

#[tokio::test]
async fn hello_reads_config_and_counts_in_kv() {
    let hello = TestPlugin::load(plugin("hello")).await.unwrap();
    let mut sandbox = hello.sandbox().await.unwrap();
    sandbox.config("greeting", "Bonjour");
    sandbox.seed_kv("default", "greetings", "9").await.unwrap();
    let out = sandbox
        .invoke(json!({ "type": "http", "path": "/hello", "query": { "name": "Zoé" } }))
        .await
        .unwrap();
    assert_eq!(out["status"], 200);
    assert_eq!(
        out["body"],
        json!({ "message": "Bonjour, Zoé!", "count": 10 })
    );
    assert_eq!(
        sandbox.kv_get("default", "greetings").await.unwrap(),
        Some(b"10".to_vec())
    );
}

#[tokio::test]
async fn scripted_answers_are_used_in_order_and_calls_recorded() {
    let hello = TestPlugin::load(plugin("hello")).await.unwrap();
    let mut sandbox = hello.sandbox().await.unwrap();
    sandbox
        .config("upstream_url", "https://api.example.com/echo")
        .config("token_url", "https://auth.example.com/token")
        .secret("client_secret", "sekret")
        .mock(
            MockResponse::new("POST", "https://auth.example.com/token")
                .json(json!({ "access_token": "t1" }))
                .repeat(),
        )
        .mock(MockResponse::new("POST", "https://api.example.com/echo").status(401))
        .mock(MockResponse::new("POST", "https://api.example.com/echo").status(503));
    let out = sandbox
        .invoke(json!({ "type": "http", "method": "POST", "path": "/relay", "body": "x" }))
        .await
        .unwrap();
    assert_eq!(out["status"], 502, "{out}");
    let urls: Vec<String> = sandbox.http_calls().into_iter().map(|c| c.url).collect();
    assert_eq!(
        urls,
        [
            "https://auth.example.com/token",
            "https://api.example.com/echo",
            "https://auth.example.com/token",
            "https://api.example.com/echo"
        ]
    );
    assert_eq!(sandbox.notifications()[0]["subject"], "relay failed");
    assert_eq!(
        sandbox.notifications()[0]["attributes"]["outcome"],
        "failed"
    );
    assert_eq!(sandbox.messages()[0]["body"]["status"], 503);
}

#[tokio::test]
async fn a_call_with_no_scripted_answer_fails_visibly() {
    let hello = TestPlugin::load(plugin("hello")).await.unwrap();
    let mut sandbox = hello.sandbox().await.unwrap();
    sandbox
        .config("upstream_url", "https://api.example.com/echo")
        .config("token_url", "https://auth.example.com/token")
        .secret("client_secret", "s");
    let err = sandbox
        .invoke(json!({ "type": "http", "method": "POST", "path": "/relay" }))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "HostFailed");
    assert!(
        err.cause()
            .contains("no mocked answer left for POST https://auth.example.com/token"),
        "{err}"
    );
}

#[tokio::test]
async fn the_example_fixtures_pass_and_a_wrong_expectation_fails() {
    let hello = TestPlugin::load(plugin("hello")).await.unwrap();
    let fixtures = FixtureFile::load(&workspace().join("examples/hello/fixtures.toml")).unwrap();
    let results = fixtures.run(&hello).await.unwrap();
    assert_eq!(results.len(), 4);
    for r in &results {
        assert!(r.passed(), "{}: {:?}", r.name, r.failures);
    }

    let wrong = FixtureFile::parse(
        std::path::Path::new("wrong.toml"),
        r#"
        [[case]]
        name = "wrong greeting"
        event = { type = "task", input = { name = "Ana" } }
        expect = { output = { message = "Hi, Ana!", count = 1 }, http_calls = [{ url = "https://x" }] }
        "#,
    )
    .unwrap();
    let results = wrong.run(&hello).await.unwrap();
    let failures = &results[0].failures;
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(
        failures[0].contains("expected: {\"count\":1,\"message\":\"Hi, Ana!\"}"),
        "{}",
        failures[0]
    );
    assert!(
        failures[0].contains("actual:   {\"count\":1,\"message\":\"Hello, Ana!\"}"),
        "{}",
        failures[0]
    );
    assert!(failures[1].starts_with("http_calls:"), "{}", failures[1]);
}
