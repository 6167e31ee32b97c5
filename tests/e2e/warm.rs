//! Warm instances (`[plugins.NAME.warm]`): an instance that answered without a fault
//! serves its plugin's next invocations, its globals kept, and nothing else's. The
//! attacks: a tenant reading what another tenant's (or another plugin's) invocation left
//! in an instance's globals, a broken instance (trap, timeout, memory past the limit)
//! served again, a tenant whose config changed still served by instances holding the
//! old one, and one tenant's warm plugins keeping the pool's slots from everyone else.

use std::time::Duration;

use orquesta::engine::{Engine, EngineConfig, EngineLimits, Limits, WarmSettings};
use orquesta::testing::TestPlugin;
use orquesta_tests::server::{TestServer, post};
use serde_json::{Value, json};

/// A tenant with the hostile plugin under three names: `hot` and `other` warm, `cold`
/// not; `warm` is the `hot` plugin's `[plugins.hot.warm]` table.
fn tenant(limits: &str, warm: &str) -> String {
    format!(
        r#"
[limits]
{limits}

[plugins.hot]
source = "hostile.wasm"
warm = {{ {warm} }}

[plugins.other]
source = "hostile.wasm"
warm = {{}}

[plugins.cold]
source = "hostile.wasm"

[[routes]]
method = "POST"
path = "/hot"
plugin = "hot"

[[routes]]
method = "POST"
path = "/other/x"
plugin = "other"

[[routes]]
method = "POST"
path = "/cold/x"
plugin = "cold"
"#
    )
}

/// The routes are open: the admin token `post` sends is no credential there.
async fn call(s: &TestServer, tenant: &str, route: &str, input: Value) -> (u16, Value) {
    post(s, &format!("/t/{tenant}/{route}"), input).await
}

/// `remember` through `route`: (uses of the instance, what its global held before).
async fn remember(s: &TestServer, tenant: &str, route: &str, value: Option<&str>) -> (u64, Value) {
    let (status, body) = call(
        s,
        tenant,
        route,
        json!({"attack": "remember", "value": value}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    (
        body["uses"].as_u64().expect("uses"),
        body["previous"].clone(),
    )
}

#[tokio::test]
async fn a_warm_instance_keeps_its_globals_for_its_own_plugin_of_its_own_tenant_only() {
    // Tenant names of their own: the metrics are the process's, shared by every test.
    let t = tenant("", "instances = 2");
    let s = TestServer::start(
        &["hostile"],
        &[("warm-alpha", &t), ("warm-beta", &t)],
        |_| {},
    )
    .await;

    assert_eq!(
        remember(&s, "warm-alpha", "hot", Some("alpha-secret")).await,
        (1, Value::Null)
    );
    // The same instance, its global kept, as a warm Lambda environment's.
    assert_eq!(
        remember(&s, "warm-alpha", "hot", None).await,
        (2, json!("alpha-secret"))
    );
    // The same component under the same name for another tenant: its own instance.
    assert_eq!(
        remember(&s, "warm-beta", "hot", None).await,
        (1, Value::Null)
    );
    // Another plugin of the same tenant, same component: its own instance.
    assert_eq!(
        remember(&s, "warm-alpha", "other/x", None).await,
        (1, Value::Null)
    );
    // Not warm: a fresh instance each time.
    assert_eq!(
        remember(&s, "warm-alpha", "cold/x", Some("x")).await,
        (1, Value::Null)
    );
    assert_eq!(
        remember(&s, "warm-alpha", "cold/x", None).await,
        (1, Value::Null)
    );
    assert_eq!(
        remember(&s, "warm-alpha", "hot", None).await,
        (3, json!("alpha-secret"))
    );

    let starts = |plugin: &'static str, start: &'static str| {
        let s = &s;
        async move {
            s.metric(
                "orquesta_instance_starts_total",
                &[
                    ("tenant", "warm-alpha"),
                    ("plugin", plugin),
                    ("start", start),
                ],
            )
            .await
        }
    };
    assert_eq!(starts("hot", "warm").await, 2.0);
    assert_eq!(starts("hot", "cold").await, 1.0);
    assert_eq!(starts("cold", "cold").await, 2.0);
    assert_eq!(starts("cold", "warm").await, 0.0);
    s.shutdown().await;
}

#[tokio::test]
async fn a_faulted_instance_is_never_served_again() {
    let t = tenant("timeout_ms = 500\nmemory_mb = 48", "instances = 2");
    let s = TestServer::start(&["hostile"], &[("alpha", &t)], |_| {}).await;

    // A plugin's own failure is an answer: the instance stays.
    remember(&s, "alpha", "hot", Some("kept")).await;
    let (status, _) = call(&s, "alpha", "hot", json!({"attack": "no-such-attack"})).await;
    assert_eq!(status, 500);
    assert_eq!(remember(&s, "alpha", "hot", None).await, (2, json!("kept")));

    // A trap: the next invocation starts fresh.
    let (status, body) = call(&s, "alpha", "hot", json!({"attack": "panic"})).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(remember(&s, "alpha", "hot", None).await, (1, Value::Null));

    // A timeout.
    remember(&s, "alpha", "hot", Some("before the loop")).await;
    let (status, _) = call(&s, "alpha", "hot", json!({"attack": "loop"})).await;
    assert_eq!(status, 504);
    assert_eq!(remember(&s, "alpha", "hot", None).await, (1, Value::Null));

    // Memory kept in globals counts against `memory_mb` across invocations; past it
    // the instance goes, and the next one starts with nothing held.
    let mut refused = None;
    for _ in 0..8 {
        let (status, body) = call(
            &s,
            "alpha",
            "hot",
            json!({"attack": "leak", "megabytes": 8}),
        )
        .await;
        if status != 200 {
            refused = Some(body);
            break;
        }
    }
    let refused = refused.expect("leaking 8 MB a call reaches memory_mb = 48");
    assert!(refused.to_string().contains("memory-limit"), "{refused}");
    let (status, body) = call(
        &s,
        "alpha",
        "hot",
        json!({"attack": "leak", "megabytes": 8}),
    )
    .await;
    assert_eq!(
        (status, body["uses"].as_u64(), body["leaked_mb"].as_u64()),
        (200, Some(1), Some(8))
    );
    s.shutdown().await;
}

#[tokio::test]
async fn a_warm_instance_serves_its_uses_then_goes_and_goes_when_idle() {
    let t = tenant("", "max_uses = 3, idle_seconds = 1");
    let s = TestServer::start(&["hostile"], &[("alpha", &t)], |_| {}).await;
    let mut uses = Vec::new();
    for _ in 0..5 {
        uses.push(remember(&s, "alpha", "hot", None).await.0);
    }
    assert_eq!(uses, [1, 2, 3, 1, 2]);
    // Idle past `idle_seconds`: the sweep discards it (it runs every second).
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(remember(&s, "alpha", "hot", None).await.0, 1);
    s.shutdown().await;
}

#[tokio::test]
async fn a_changed_tenant_file_or_plugin_is_served_by_fresh_instances() {
    let t = tenant("", "instances = 1");
    let s = TestServer::start(&["hostile"], &[("alpha", &t)], |_| {}).await;
    remember(&s, "alpha", "hot", Some("under the old grants")).await;
    assert_eq!(remember(&s, "alpha", "hot", None).await.0, 2);

    // A changed tenant file: instances holding the old config and grants are gone.
    s.write_tenant("alpha", &tenant("memory_mb = 60", "instances = 1"));
    s.reload().await;
    assert_eq!(remember(&s, "alpha", "hot", None).await, (1, Value::Null));
    assert_eq!(remember(&s, "alpha", "hot", Some("v1")).await.0, 2);

    // A redeployed component (the same code with a custom section: another hash).
    let mut bytes = std::fs::read(orquesta_tests::plugin("hostile")).expect("hostile built");
    bytes.extend_from_slice(&[0, 6, 5, b'w', b'a', b'r', b'm', b'2']);
    s.write_plugin("hostile", &bytes);
    s.reload().await;
    assert_eq!(remember(&s, "alpha", "hot", None).await, (1, Value::Null));
    s.shutdown().await;
}

#[tokio::test]
async fn a_warm_setting_out_of_range_is_refused_with_its_place() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (warm, reason) in [
        (
            "instances = 0",
            "plugins.hot.warm: instances must be 1-64, got 0",
        ),
        (
            "max_uses = 0",
            "plugins.hot.warm: max_uses must be 1-100000000, got 0",
        ),
        (
            "idle_seconds = 86400",
            "plugins.hot.warm: idle_seconds must be 1-3600, got 86400",
        ),
        ("keep = true", "unknown field `keep`"),
    ] {
        let path = dir.path().join("alpha.toml");
        std::fs::write(&path, tenant("", warm)).expect("written");
        let refused = orquesta::tenants::TenantConfig::load(&path)
            .expect_err("refused")
            .to_string();
        assert!(refused.contains(reason), "{warm}: {refused}");
    }
}

/// Idle instances hold pool slots: a quarter of the pool at most (`warm_slots`), and
/// past it the least recently used one anywhere gives its slot up, so one tenant's warm
/// plugins can neither keep every other tenant's instances cold nor keep fresh
/// invocations waiting for a slot.
#[tokio::test]
async fn idle_instances_hold_at_most_their_share_of_the_pool() {
    let engine = Engine::new(EngineConfig {
        limits: EngineLimits {
            instance_slots: 4,
            warm_slots: 2,
            ..EngineLimits::default()
        },
        ..EngineConfig::default()
    })
    .expect("engine");
    let bytes = std::fs::read(orquesta_tests::plugin("hostile")).expect("hostile built");
    let plugin = TestPlugin::new(engine.clone(), engine.load(bytes).await.expect("loads"));
    let settings = WarmSettings {
        instances: 4,
        max_uses: 100,
        idle: Duration::from_secs(60),
    };
    let remember = json!({"type": "task", "input": {"attack": "remember"}});
    let mut sandboxes = Vec::new();
    for tenant in ["greedy-1", "greedy-2", "greedy-3", "fair"] {
        let mut sandbox = plugin.sandbox().await.expect("sandbox");
        sandbox.identity(tenant, "p").warm(settings);
        sandbox.invoke(remember.clone()).await.expect("answers");
        sandboxes.push(sandbox);
    }
    let idle: Vec<usize> = sandboxes
        .iter()
        .map(|s| s.warm_pool().expect("warm").idle())
        .collect();
    // Two idle at most, host-wide; each newcomer took the least recently used one's.
    assert_eq!(idle, [0, 0, 1, 1]);

    // With two slots held idle, the other two still serve fresh invocations, and
    // several at once of a plugin that is not warm all finish.
    let mut cold = plugin.sandbox().await.expect("sandbox");
    cold.identity("cold", "p").limits(Limits {
        concurrency: 8,
        ..Limits::default()
    });
    let nap = json!({"type": "task", "input": {"attack": "nap", "ms": 50}});
    let runs = (0..6).map(|_| cold.invoke(nap.clone()));
    let ran = tokio::time::timeout(Duration::from_secs(10), futures::future::join_all(runs))
        .await
        .expect("fresh invocations are not kept waiting by idle instances");
    assert!(ran.iter().all(Result::is_ok), "{ran:?}");
}

/// An instance that needs more pool slots than idle instances may hold in all is not
/// kept, and does not evict the idle instances of others trying to make room.
#[tokio::test]
async fn an_instance_larger_than_the_idle_share_is_not_kept_and_evicts_nothing() {
    let engine = Engine::new(EngineConfig {
        limits: EngineLimits {
            instance_slots: 8,
            warm_slots: 2,
            ..EngineLimits::default()
        },
        ..EngineConfig::default()
    })
    .expect("engine");
    let hostile = std::fs::read(orquesta_tests::plugin("hostile")).expect("hostile built");
    // 12 more memories: 13 in all, 4 pool slots an instance.
    let large = crate::pool::with_memories(&hostile, 12, 1);
    let settings = WarmSettings {
        instances: 4,
        max_uses: 100,
        idle: Duration::from_secs(60),
    };
    let remember = json!({"type": "task", "input": {"attack": "remember"}});
    let mut small = Vec::new();
    for tenant in ["small-1", "small-2"] {
        let plugin = TestPlugin::new(
            engine.clone(),
            engine.load(hostile.clone()).await.expect("loads"),
        );
        let mut sandbox = plugin.sandbox().await.expect("sandbox");
        sandbox.identity(tenant, "p").warm(settings);
        sandbox.invoke(remember.clone()).await.expect("answers");
        small.push(sandbox);
    }
    let plugin = TestPlugin::new(engine.clone(), engine.load(large).await.expect("loads"));
    let mut big = plugin.sandbox().await.expect("sandbox");
    big.identity("large", "p").warm(settings);
    for _ in 0..2 {
        let answer = big.invoke(remember.clone()).await.expect("answers");
        // Never kept: each invocation is a fresh instance.
        assert_eq!(answer["uses"], 1, "{answer}");
    }
    assert_eq!(big.warm_pool().expect("warm").idle(), 0);
    let idle: Vec<usize> = small
        .iter()
        .map(|s| s.warm_pool().expect("warm").idle())
        .collect();
    assert_eq!(idle, [1, 1], "the small tenants' idle instances stay");
}

/// `POST /remember` with `body` to an interpreter plugin: (uses, previous).
async fn remember_http(sandbox: &orquesta::testing::Sandbox, body: &str) -> (u64, Value) {
    let event = json!({"type": "http", "method": "POST", "path": "/remember", "body": body});
    let answer = sandbox.invoke(event).await.expect("answers");
    let body = &answer["body"];
    (
        body["uses"].as_u64().expect("uses"),
        body["previous"].clone(),
    )
}

/// An interpreter's module globals survive between warm invocations (the reason to ask
/// for them: its image costs milliseconds to instantiate), and a timeout discards the
/// instance like any fault.
async fn interpreter_globals_survive_until_a_fault(plugin: &str) {
    let plugin = TestPlugin::load(orquesta_tests::plugin(plugin))
        .await
        .expect("loads");
    let mut sandbox = plugin.sandbox().await.expect("sandbox");
    sandbox
        .limits(Limits {
            timeout_ms: 500,
            ..Limits::default()
        })
        .warm(WarmSettings {
            instances: 2,
            max_uses: 100,
            idle: Duration::from_secs(60),
        });
    assert_eq!(remember_http(&sandbox, "token-1").await, (1, Value::Null));
    assert_eq!(remember_http(&sandbox, "").await, (2, json!("token-1")));
    assert_eq!(remember_http(&sandbox, "").await, (3, json!("token-1")));
    let spin = json!({"type": "http", "method": "GET", "path": "/spin"});
    let e = sandbox.invoke(spin).await.expect_err("cut");
    assert_eq!(e.name(), "timeout", "{e}");
    assert_eq!(remember_http(&sandbox, "").await, (1, Value::Null));
}

#[tokio::test]
#[cfg_attr(
    no_componentize_py,
    ignore = "componentize-py 0.25.1 is not installed (docs/PLUGINS.md)"
)]
async fn a_warm_python_instance_keeps_its_module_globals() {
    interpreter_globals_survive_until_a_fault("hostile-python").await;
}

#[tokio::test]
#[cfg_attr(
    no_componentize_js,
    ignore = "componentize-js 0.23.0 is not installed (docs/PLUGINS.md)"
)]
async fn a_warm_javascript_instance_keeps_its_module_globals() {
    interpreter_globals_survive_until_a_fault("probe-ts").await;
}
