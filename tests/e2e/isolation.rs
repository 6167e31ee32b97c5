//! The capability layer on the test harness's sandbox: what a plugin running as one
//! tenant writes, a plugin running as another cannot see, whatever names it tries; and a
//! plugin reaches only what it was granted. `tenants_apart.rs` shows the same through a
//! running service, with its routing and per-tenant limits.

use orquesta::capabilities::Grants;
use orquesta::store::Store;
use orquesta::testing::{Sandbox, TestPlugin};
use orquesta_tests::plugin;
use serde_json::{Value, json};

async fn as_plugin(store: &Store, tenant: &str, name: &str) -> Sandbox {
    let hostile = TestPlugin::load(plugin("hostile")).await.unwrap();
    let mut sandbox = hostile.sandbox().await.unwrap();
    sandbox.identity(tenant, name).store(store.clone());
    sandbox
}

#[tokio::test]
async fn tenant_b_cannot_read_tenant_a_keys() {
    let store = Store::in_memory().await.unwrap();
    let a = as_plugin(&store, "tenant-a", "hostile").await;
    let b = as_plugin(&store, "tenant-b", "hostile").await;
    let write = json!({ "type": "task", "input": { "attack": "kv-write", "key": "secret", "value": "a-only" } });
    a.invoke(write).await.unwrap();

    let read = json!({ "type": "task", "input": { "attack": "kv-read", "key": "secret" } });
    let seen_by_a = a.invoke(read.clone()).await.unwrap();
    assert_eq!(seen_by_a["found"]["default/secret"], "a-only");
    assert_eq!(seen_by_a["listed"], json!(["secret"]));

    let seen_by_b = b.invoke(read).await.unwrap();
    assert_eq!(
        seen_by_b["found"]["default/secret"],
        Value::Null,
        "{seen_by_b}"
    );
    assert_eq!(seen_by_b["listed"], json!([]), "{seen_by_b}");
    // Names that try to climb out of the bucket are plain keys or refused names.
    assert_eq!(seen_by_b["found"]["default/../secret"], Value::Null);
    for bucket in ["../default/secret", "%/secret"] {
        let answer = seen_by_b["found"][bucket].as_str().unwrap_or_default();
        assert!(answer.starts_with("error: "), "{bucket}: {answer}");
        assert!(!answer.contains("a-only"));
    }
}

#[tokio::test]
async fn plugins_of_one_tenant_have_private_default_buckets() {
    let store = Store::in_memory().await.unwrap();
    let one = as_plugin(&store, "acme", "one").await;
    let two = as_plugin(&store, "acme", "two").await;
    one.invoke(
        json!({ "type": "task", "input": { "attack": "kv-write", "key": "k", "value": "1" } }),
    )
    .await
    .unwrap();
    let seen = two
        .invoke(json!({ "type": "task", "input": { "attack": "kv-read", "key": "k" } }))
        .await
        .unwrap();
    assert_eq!(seen["found"]["default/k"], Value::Null);
}

#[tokio::test]
async fn ungranted_capabilities_are_denied() {
    let hello = TestPlugin::load(plugin("hello")).await.unwrap();
    let mut sandbox = hello.sandbox().await.unwrap();
    sandbox
        .grants(Grants::default())
        .config("upstream_url", "https://api.example.com/echo")
        .config("token_url", "https://auth.example.com/token")
        .secret("client_secret", "s");
    sandbox.seed_kv("default", "token", "t").await.unwrap();
    let err = sandbox
        .invoke(json!({ "type": "http", "method": "POST", "path": "/relay" }))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "Denied", "{err}");
    assert!(err.cause().contains("api.example.com"), "{err}");
    assert!(
        sandbox.http_calls().is_empty(),
        "a denied call must not go out"
    );
}

#[tokio::test]
async fn blobs_reach_only_granted_buckets_and_stay_under_the_size_cap() {
    let hostile = TestPlugin::load(plugin("hostile")).await.unwrap();
    let mut sandbox = hostile.sandbox().await.unwrap();
    sandbox.grants(Grants::default().with(orquesta::capabilities::blob::BUCKETS, &["files"]));
    // Room in the guest for an object just over the cap, and time to fill 64 MiB in
    // it on a loaded machine (the cap is what is tested, not the speed).
    sandbox.limits(orquesta::engine::Limits {
        memory_mb: 256,
        timeout_ms: 120_000,
        ..Default::default()
    });
    let put = |bucket: &str, key: &str, bytes: usize| json!({ "type": "task", "input": { "attack": "blob-put", "bucket": bucket, "key": key, "bytes": bytes } });

    // A traversal-looking key is just a name inside the bucket.
    let out = sandbox
        .invoke(put("files", "../../escape", 3))
        .await
        .unwrap();
    assert_eq!(out["read_back"], 3);
    assert_eq!(
        sandbox.blob_get("files", "../../escape").await.unwrap(),
        Some(b"xxx".to_vec())
    );

    let err = sandbox.invoke(put("other", "k", 1)).await.unwrap_err();
    assert_eq!(err.name(), "Denied", "{err}");
    // Names that are not bucket names are refused before any grant is looked at.
    for bucket in ["../files", "files/..", ".files"] {
        let err = sandbox.invoke(put(bucket, "k", 1)).await.unwrap_err();
        assert_eq!(err.name(), "Invalid", "{bucket}: {err}");
    }
    let err = sandbox.invoke(put("files", "a//b", 1)).await.unwrap_err();
    assert_eq!(err.name(), "Invalid", "{err}");

    let cap = orquesta::engine::limits::capability::BLOB_OBJECT_BYTES;
    let err = sandbox
        .invoke(put("files", "big", cap + 1))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "Invalid", "{err}");
    assert!(err.cause().contains("at most"), "{err}");
    assert_eq!(sandbox.blob_get("files", "big").await.unwrap(), None);
}
