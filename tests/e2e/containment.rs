//! Each hostile plugin is contained with its typed error, within its limit plus a
//! margin, and the host serves a normal invocation right after.

use std::time::{Duration, Instant};

use orquesta::engine::Limits;
use orquesta::testing::{Sandbox, TestPlugin};
use orquesta_tests::plugin;
use serde_json::{Value, json};

/// Slack for a loaded 2-core CI machine; the limits themselves are tight.
const MARGIN: Duration = Duration::from_millis(1500);

async fn sandbox(limits: Limits) -> Sandbox {
    let hostile = TestPlugin::load(plugin("hostile"))
        .await
        .expect("hostile loads");
    let mut sandbox = hostile.sandbox().await.expect("sandbox");
    sandbox.limits(limits);
    sandbox
}

fn attack(name: &str) -> Value {
    json!({ "type": "task", "input": { "attack": name } })
}

/// Runs `attack`, checks its error and time, then checks a normal call still works.
async fn contained(sandbox: &Sandbox, event: Value, error: &str, within: Duration) -> String {
    let started = Instant::now();
    let err = sandbox
        .invoke(event)
        .await
        .expect_err("the attack must fail");
    let elapsed = started.elapsed();
    assert_eq!(err.name(), error, "{err}");
    assert!(
        elapsed <= within,
        "{error} took {elapsed:?}, over {within:?}"
    );
    let normal =
        json!({ "type": "task", "input": { "attack": "kv-write", "key": "after", "value": "ok" } });
    assert_eq!(
        sandbox
            .invoke(normal)
            .await
            .expect("a normal invocation after"),
        Value::Null
    );
    assert_eq!(
        sandbox.kv_get("default", "after").await.unwrap(),
        Some(b"ok".to_vec())
    );
    err.cause()
}

#[tokio::test]
async fn an_infinite_loop_times_out_at_its_limit() {
    let limits = Limits {
        timeout_ms: 300,
        ..Limits::default()
    };
    let sandbox = sandbox(limits).await;
    let started = Instant::now();
    let cause = contained(
        &sandbox,
        attack("loop"),
        "timeout",
        Duration::from_millis(300) + MARGIN,
    )
    .await;
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "stopped before its limit"
    );
    assert!(cause.contains("300 ms"), "{cause}");
}

#[tokio::test]
async fn a_host_call_that_never_returns_is_bounded_too() {
    let limits = Limits {
        timeout_ms: 300,
        ..Limits::default()
    };
    let sandbox = sandbox(limits).await;
    contained(
        &sandbox,
        attack("sleep"),
        "timeout",
        Duration::from_millis(300) + MARGIN,
    )
    .await;
}

#[tokio::test]
async fn a_memory_bomb_hits_the_memory_limit() {
    let limits = Limits {
        memory_mb: 32,
        ..Limits::default()
    };
    let sandbox = sandbox(limits).await;
    let cause = contained(&sandbox, attack("memory"), "memory-limit", MARGIN * 2).await;
    assert!(cause.contains("32 MiB"), "{cause}");
}

#[tokio::test]
async fn deep_recursion_overflows_the_stack() {
    let sandbox = sandbox(Limits::default()).await;
    contained(&sandbox, attack("recursion"), "stack-overflow", MARGIN).await;
}

#[tokio::test]
async fn a_panic_is_a_trap_with_the_panic_message() {
    let sandbox = sandbox(Limits::default()).await;
    let cause = contained(&sandbox, attack("panic"), "trap", MARGIN).await;
    assert!(
        cause.contains("hostile plugin panicked on purpose"),
        "{cause}"
    );
    assert!(cause.contains("plugins/hostile/src/lib.rs"), "{cause}");
}

/// A plugin's WASI context is reused from one invocation to the next, its captured output
/// emptied in between: four calls writing 40 KiB of stderr each would pass the 64 KiB
/// captured per invocation if one kept another's, and a panic after them is reported
/// with its own message only.
#[tokio::test]
async fn each_invocation_captures_only_its_own_output() {
    let sandbox = sandbox(Limits::default()).await;
    let chatter = json!({ "type": "task", "input": { "attack": "chatter", "kilobytes": 40 } });
    for call in 0..4 {
        match sandbox.invoke(chatter.clone()).await {
            Ok(answer) => assert_eq!(answer, Value::Null),
            Err(e) => panic!("call {call} failed: {e}"),
        }
    }
    let cause = contained(&sandbox, attack("panic"), "trap", MARGIN).await;
    assert!(
        cause.starts_with("panicked at plugins/hostile/src/lib.rs"),
        "{cause}"
    );
    assert!(!cause.contains("xxxx"), "{cause}");
}

#[tokio::test]
async fn an_oversized_output_is_refused() {
    let limits = Limits {
        max_output_kb: 1024,
        ..Limits::default()
    };
    let sandbox = sandbox(limits).await;
    let event = json!({ "type": "task", "input": { "attack": "output", "megabytes": 2 } });
    let cause = contained(&sandbox, event, "output-too-large", MARGIN).await;
    assert!(cause.contains("1048576-byte limit"), "{cause}");
}

#[tokio::test]
async fn a_sandbox_s_concurrency_limit_makes_invocations_wait_their_turn() {
    // The engine's semaphore; the service's per-tenant one is in `tenants_apart.rs`.
    let limits = Limits {
        concurrency: 1,
        timeout_ms: 300,
        ..Limits::default()
    };
    let sandbox = sandbox(limits).await;
    let started = Instant::now();
    let (a, b) = tokio::join!(
        sandbox.invoke(attack("sleep")),
        sandbox.invoke(attack("sleep"))
    );
    assert_eq!(a.unwrap_err().name(), "timeout");
    assert_eq!(b.unwrap_err().name(), "timeout");
    // One at a time: the second starts when the first has used its 300 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(590),
        "ran together: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn many_concurrent_invocations_all_succeed() {
    let hello = TestPlugin::load(plugin("hello")).await.unwrap();
    let sandbox = hello.sandbox().await.unwrap();
    let calls = (0..50)
        .map(|i| sandbox.invoke(json!({ "type": "task", "input": { "name": format!("n{i}") } })));
    let results = futures::future::join_all(calls).await;
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    assert_eq!(
        sandbox.kv_get("default", "greetings").await.unwrap(),
        Some(b"50".to_vec())
    );
}
