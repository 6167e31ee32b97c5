//! Two tenants on one running service, through its routes, admin API and store: what one
//! tenant's plugin writes (kv, blobs, queue messages) the other's cannot read, overwrite
//! or delete, whatever names it tries; and one tenant's `limits.concurrency` is enforced
//! by the service (the invocation past it waits its turn) while the other tenant's
//! invocations go on. The same plugin, under the same name, serves both tenants, so only
//! the service's scoping keeps them apart. (`isolation.rs` and `containment.rs` check the
//! capability layer and the engine on the test harness's sandbox.)

use std::time::{Duration, Instant};

use orquesta_tests::server::{ADMIN_TOKEN, TestServer};
use serde_json::{Value, json};

/// Invocations of each tenant at once.
const CONCURRENCY: usize = 2;

fn tenant(extra: &str) -> String {
    format!(
        r#"
[limits]
concurrency = {CONCURRENCY}

[plugins.hostile]
source = "hostile.wasm"
allow = {{ blob_buckets = ["files"], queues = ["jobs"], topics = ["*"] }}

[[routes]]
method = "POST"
path = "/probe"
plugin = "hostile"

[queues.jobs]
{extra}
"#
    )
}

/// `alpha` also has a topic, `news`, feeding its queue; `beta` has none.
async fn two_tenants() -> TestServer {
    let alpha = tenant(
        "[topics.news]\nsubscriptions = [{ queue = \"jobs\", raw_message_delivery = true }]\n",
    );
    let beta = tenant("");
    TestServer::start(&["hostile"], &[("alpha", &alpha), ("beta", &beta)], |_| {}).await
}

/// Runs an attack through `tenant`'s route: (status, JSON answer).
async fn attack(s: &TestServer, tenant: &str, input: Value) -> (u16, Value) {
    let r = s
        .client
        .post(format!("{}/t/{tenant}/probe", s.url))
        .body(input.to_string())
        .send()
        .await
        .expect("the service answers");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn admin_blob(s: &TestServer, tenant: &str, key: &str) -> (u16, Vec<u8>) {
    let r = s
        .client
        .get(format!(
            "{}/admin/v1/tenants/{tenant}/blobs/files/{key}",
            s.url
        ))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("admin answers");
    let status = r.status().as_u16();
    (status, r.bytes().await.unwrap_or_default().to_vec())
}

/// The bodies waiting in `tenant`'s queue `jobs`.
async fn queued(s: &TestServer, tenant: &str) -> Vec<String> {
    let r = s
        .admin(&format!("tenants/{tenant}/queues/jobs/messages"))
        .await;
    r["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|m| m["body"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The store the service writes, read-only: what a tenant has, seen from outside it.
async fn store(s: &TestServer) -> sqlx::SqlitePool {
    let db = s.dir.path().join("data/orquesta.db");
    sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", db.display()))
        .await
        .expect("the service's store opens read-only")
}

#[tokio::test]
async fn one_tenant_cannot_reach_another_tenants_kv_blobs_or_queues_through_the_service() {
    let s = two_tenants().await;

    // kv: alpha's plugin keeps a secret; beta's, same name, cannot see it by any name.
    let (code, r) = attack(
        &s,
        "alpha",
        json!({ "attack": "kv-write", "key": "secret", "value": "alpha-only" }),
    )
    .await;
    assert_eq!(code, 204, "{r}");
    let read = json!({ "attack": "kv-read", "key": "secret" });
    let (_, seen_by_alpha) = attack(&s, "alpha", read.clone()).await;
    assert_eq!(seen_by_alpha["found"]["default/secret"], "alpha-only");
    let (code, seen_by_beta) = attack(&s, "beta", read).await;
    assert_eq!(code, 200, "{seen_by_beta}");
    assert_eq!(seen_by_beta["found"]["default/secret"], Value::Null);
    assert_eq!(seen_by_beta["found"]["default/../secret"], Value::Null);
    assert_eq!(seen_by_beta["listed"], json!([]), "{seen_by_beta}");
    for bucket in ["../default/secret", "%/secret"] {
        let answer = seen_by_beta["found"][bucket].as_str().unwrap_or_default();
        assert!(answer.starts_with("error: "), "{bucket}: {answer}");
        assert!(!answer.contains("alpha-only"), "{bucket}: {answer}");
    }
    // beta writing the same name writes its own item, not alpha's.
    attack(
        &s,
        "beta",
        json!({ "attack": "kv-write", "key": "secret", "value": "beta-own" }),
    )
    .await;
    let (_, seen_by_alpha) =
        attack(&s, "alpha", json!({ "attack": "kv-read", "key": "secret" })).await;
    assert_eq!(seen_by_alpha["found"]["default/secret"], "alpha-only");
    let pool = store(&s).await;
    let rows: Vec<(String, Vec<u8>)> =
        sqlx::query_as("SELECT tenant, value FROM kv_items WHERE key = 'secret' ORDER BY tenant")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        rows,
        [
            ("alpha".to_string(), b"alpha-only".to_vec()),
            ("beta".to_string(), b"beta-own".to_vec())
        ]
    );

    // Blobs: the same bucket and key are two objects; beta cannot climb into alpha's.
    let put = |bucket: &str, key: &str, bytes: usize| json!({ "attack": "blob-put", "bucket": bucket, "key": key, "bytes": bytes });
    let (code, r) = attack(&s, "alpha", put("files", "report", 5)).await;
    assert_eq!((code, &r["read_back"]), (200, &json!(5)), "{r}");
    assert_eq!(
        admin_blob(&s, "alpha", "report").await,
        (200, b"xxxxx".to_vec())
    );
    assert_eq!(admin_blob(&s, "beta", "report").await.0, 404);
    let (code, r) = attack(&s, "beta", put("files", "report", 2)).await;
    assert_eq!(
        (code, &r["read_back"]),
        (200, &json!(2)),
        "beta reads its own: {r}"
    );
    for bucket in ["../alpha/files", "../../alpha/files", "alpha"] {
        let (code, r) = attack(&s, "beta", put(bucket, "report", 1)).await;
        assert_eq!(code, 500, "{bucket}: {r}");
        assert!(
            ["Invalid", "Denied"].contains(&r["title"].as_str().unwrap_or_default()),
            "{bucket}: {r}"
        );
    }
    let (code, r) = attack(
        &s,
        "beta",
        json!({ "attack": "blob-drop", "bucket": "files", "key": "report" }),
    )
    .await;
    assert_eq!((code, &r["deleted"]), (200, &json!(true)), "{r}");
    assert_eq!(
        admin_blob(&s, "alpha", "report").await,
        (200, b"xxxxx".to_vec()),
        "beta's delete left alpha's object alone"
    );

    // Queues: the same queue name is two queues; another tenant's name is refused.
    let send =
        |queue: &str, body: &str| json!({ "attack": "queue-send", "queue": queue, "body": body });
    let (code, r) = attack(&s, "alpha", send("jobs", "for-alpha")).await;
    assert_eq!(code, 200, "{r}");
    assert!(r["id"].is_string(), "{r}");
    let (_, r) = attack(&s, "beta", send("jobs", "for-beta")).await;
    assert!(r["id"].is_string(), "{r}");
    for queue in ["alpha/jobs", "../alpha/jobs", "alpha:jobs"] {
        let (_, r) = attack(&s, "beta", send(queue, "intruder")).await;
        assert!(r["error"].is_string(), "{queue}: {r}");
    }
    // A topic alpha declares is not beta's: publishing to it is refused.
    let (code, r) = attack(
        &s,
        "beta",
        json!({ "attack": "publish", "topic": "news", "body": "intruder" }),
    )
    .await;
    assert_eq!(code, 500, "{r}");
    assert_eq!(queued(&s, "alpha").await, ["for-alpha"]);
    assert_eq!(queued(&s, "beta").await, ["for-beta"]);
    let (_, r) = attack(
        &s,
        "alpha",
        json!({ "attack": "publish", "topic": "news", "body": "news" }),
    )
    .await;
    assert!(r["id"].is_string(), "{r}");
    assert_eq!(queued(&s, "alpha").await, ["for-alpha", "\"news\""]);
    assert_eq!(queued(&s, "beta").await, ["for-beta"]);
    let (in_alpha, in_beta): (i64, i64) =
        sqlx::query_as("SELECT SUM(tenant = 'alpha'), SUM(tenant = 'beta') FROM queue_messages")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((in_alpha, in_beta), (2, 1));
    pool.close().await;
    s.shutdown().await;
}

/// How often `tenant`'s plugin counted `tag:started` (hostile's `marked-nap`), read from
/// the store so the reading takes none of the tenant's turns.
async fn started(pool: &sqlx::SqlitePool, tenant: &str, tag: &str) -> u64 {
    let value: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT value FROM kv_items WHERE tenant = ?1 AND key = ?2")
            .bind(tenant)
            .bind(format!("{tag}:started"))
            .fetch_optional(pool)
            .await
            .unwrap();
    value
        .and_then(|v| String::from_utf8(v).ok()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_tenant_past_its_concurrency_waits_and_the_other_tenant_does_not() {
    const NAP_MS: u64 = 4_000;
    let s = two_tenants().await;
    let pool = store(&s).await;
    let nap = |tag: &str, ms: u64| json!({ "attack": "marked-nap", "tag": tag, "ms": ms });

    // One more than alpha's concurrency, all at once.
    let t0 = Instant::now();
    let alpha: Vec<_> = (0..=CONCURRENCY)
        .map(|_| {
            let (client, url, body) = (
                s.client.clone(),
                format!("{}/t/alpha/probe", s.url),
                nap("a", NAP_MS).to_string(),
            );
            tokio::spawn(async move {
                let r = client.post(url).body(body).send().await;
                (r.map(|r| r.status().as_u16()).unwrap_or(0), t0.elapsed())
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while started(&pool, "alpha", "a").await < CONCURRENCY as u64 {
        assert!(
            Instant::now() < deadline,
            "alpha's first invocations never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // alpha is at its limit: beta's invocations, as many as its own limit, run now.
    let beta = (0..CONCURRENCY).map(|_| attack(&s, "beta", nap("b", 100)));
    let beta = futures::future::join_all(beta).await;
    let beta_done = t0.elapsed();
    assert!(beta.iter().all(|(code, _)| *code == 200), "{beta:?}");
    assert_eq!(started(&pool, "beta", "b").await, CONCURRENCY as u64);
    // The one past alpha's limit has not started while the others nap.
    assert_eq!(
        started(&pool, "alpha", "a").await,
        CONCURRENCY as u64,
        "alpha ran more than {CONCURRENCY} invocations at once"
    );

    let mut alpha_done = Vec::new();
    for task in alpha {
        let (code, took) = task.await.unwrap();
        assert_eq!(
            code, 200,
            "the invocation past the limit waits, it is not refused"
        );
        alpha_done.push(took);
    }
    alpha_done.sort();
    assert!(
        beta_done < alpha_done[0],
        "beta ({beta_done:?}) waited for alpha's turns ({alpha_done:?})"
    );
    // The last began only when one of the first had ended: two naps, one after the other.
    assert!(
        alpha_done[CONCURRENCY] >= Duration::from_millis(2 * NAP_MS),
        "alpha's invocations ran together: {alpha_done:?}"
    );
    assert_eq!(started(&pool, "alpha", "a").await, CONCURRENCY as u64 + 1);
    pool.close().await;
    s.shutdown().await;
}
