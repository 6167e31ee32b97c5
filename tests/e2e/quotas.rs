//! Storage quotas through the service: a tenant's kv items and bytes, blob bytes and
//! queue depth stop at the limits of its `[limits]`, with the reason, for plugins and the
//! admin API alike, and deletes free room. On SQLite, and on PostgreSQL (when
//! `ORQUESTA_TEST_POSTGRES_URL` is set) with two hosts sharing the database, each write
//! going to the other host from the one before.

use std::time::{Duration, Instant};

use orquesta_tests::server::{ADMIN_TOKEN, TestServer};
use serde_json::{Value, json};

const PLUGIN: &str = r#"
[plugins.hostile]
source = "hostile.wasm"
allow = { blob_buckets = ["files"], queues = ["jobs"] }

[[routes]]
method = "POST"
path = "/hostile"
plugin = "hostile"
"#;

/// Tenant files for the kv, blob and queue quotas, named `{prefix}kv` and so on.
fn tenants(prefix: &str) -> Vec<(String, String)> {
    let tenant =
        |limits: &str, queue: &str| format!("[limits]\n{limits}\n{PLUGIN}\n[queues.jobs]\n{queue}");
    vec![
        (format!("{prefix}kv"), tenant("kv_items = 3\nkv_mb = 1", "")),
        (format!("{prefix}blob"), tenant("blob_mb = 1", "")),
        (
            // Delayed messages wait (and count) two seconds before the consumer deletes them.
            format!("{prefix}queue"),
            tenant(
                "queue_depth = 3",
                "delay_seconds = 2\nconsumer = { plugin = \"hostile\" }\n",
            ),
        ),
    ]
}

/// Hosts taking turns: each call goes to the next one.
struct Hosts<'a> {
    all: Vec<&'a TestServer>,
    next: std::cell::Cell<usize>,
}

impl Hosts<'_> {
    fn pick(&self) -> &TestServer {
        let i = self.next.get();
        self.next.set(i + 1);
        self.all[i % self.all.len()]
    }

    /// Runs an attack of the hostile plugin of `tenant`; its JSON answer.
    async fn attack(&self, tenant: &str, input: Value) -> Value {
        let host = self.pick();
        let r = host
            .client
            .post(format!("{}/t/{tenant}/hostile", host.url))
            .body(input.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{input}");
        r.json().await.unwrap()
    }

    /// An admin API call: status and JSON body.
    async fn admin(&self, method: reqwest::Method, path: &str, body: Vec<u8>) -> (u16, Value) {
        let host = self.pick();
        let r = host
            .client
            .request(method, format!("{}/admin/v1/{path}", host.url))
            .bearer_auth(ADMIN_TOKEN)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

/// A fill's answer stopped after `done` writes by a quota naming `limit`.
fn assert_refused(answer: &Value, done: u64, limit: &str) {
    assert_eq!(answer["done"], done, "{answer}");
    let error = answer["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("Denied") && error.contains("quota") && error.contains(limit),
        "{answer}"
    );
}

fn assert_done(answer: &Value, done: u64) {
    assert_eq!(answer["done"], done, "{answer}");
    assert_eq!(answer["error"], Value::Null, "{answer}");
}

async fn quotas_hold(hosts: &Hosts<'_>, prefix: &str) {
    let kv = format!("{prefix}kv");
    // kv items: three fit, the fourth is refused; a delete makes room for one more.
    let fill = |p: &str, count: u64, bytes: u64| json!({ "attack": "kv-fill", "prefix": p, "count": count, "bytes": bytes });
    assert_refused(
        &hosts.attack(&kv, fill("small", 5, 10)).await,
        3,
        "limits.kv_items = 3",
    );
    // Overwriting an item adds no item: it passes at the limit.
    assert_done(&hosts.attack(&kv, fill("small", 1, 20)).await, 1);
    let dropped = json!({ "attack": "kv-drop", "key": "small0" });
    assert_eq!(hosts.attack(&kv, dropped).await["deleted"], true);
    assert_refused(
        &hosts.attack(&kv, fill("again", 2, 10)).await,
        1,
        "limits.kv_items = 3",
    );
    // kv bytes: with one item left free, 600 KB fits once in 1 MiB, not twice.
    for key in ["small1", "small2"] {
        let dropped = json!({ "attack": "kv-drop", "key": key });
        assert_eq!(hosts.attack(&kv, dropped).await["deleted"], true);
    }
    assert_refused(
        &hosts.attack(&kv, fill("big", 2, 600_000)).await,
        1,
        "limits.kv_mb = 1",
    );
    let dropped = json!({ "attack": "kv-drop", "key": "big0" });
    assert_eq!(hosts.attack(&kv, dropped).await["deleted"], true);
    assert_done(&hosts.attack(&kv, fill("large", 1, 600_000)).await, 1);

    // Blob bytes: two 400 KB objects fit in 1 MiB, a third does not, nor through the
    // admin API; a delete makes room.
    let blob = format!("{prefix}blob");
    let fill = json!({ "attack": "blob-fill", "prefix": "obj", "count": 3, "bytes": 400_000 });
    assert_refused(&hosts.attack(&blob, fill).await, 2, "limits.blob_mb = 1");
    let put = |key: &str| format!("tenants/{blob}/blobs/files/{key}");
    let (status, problem) = hosts
        .admin(reqwest::Method::PUT, &put("admin"), vec![b'y'; 400_000])
        .await;
    assert_eq!(status, 403, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("limits.blob_mb = 1"),
        "{problem}"
    );
    let dropped = json!({ "attack": "blob-drop", "bucket": "files", "key": "obj0" });
    assert_eq!(hosts.attack(&blob, dropped).await["deleted"], true);
    let (status, answer) = hosts
        .admin(reqwest::Method::PUT, &put("admin"), vec![b'y'; 400_000])
        .await;
    assert_eq!(status, 200, "{answer}");
    // Overwriting with a smaller object frees room too.
    let (status, answer) = hosts
        .admin(reqwest::Method::PUT, &put("admin"), vec![b'y'; 10])
        .await;
    assert_eq!(status, 200, "{answer}");
    let fill = json!({ "attack": "blob-fill", "prefix": "more", "count": 1, "bytes": 300_000 });
    assert_done(&hosts.attack(&blob, fill).await, 1);

    // Queue depth: three messages wait (each delayed two seconds), the fourth is refused,
    // from a plugin and from the admin API; once the consumer has deleted them, the
    // queue takes messages again.
    let queue = format!("{prefix}queue");
    let fill = json!({ "attack": "queue-fill", "queue": "jobs", "count": 5 });
    assert_refused(
        &hosts.attack(&queue, fill).await,
        3,
        "limits.queue_depth = 3",
    );
    let send = format!("tenants/{queue}/queues/jobs/messages");
    let body = json!({ "body": { "n": 99 } }).to_string().into_bytes();
    let (status, problem) = hosts
        .admin(reqwest::Method::POST, &send, body.clone())
        .await;
    assert_eq!(status, 403, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("limits.queue_depth = 3"),
        "{problem}"
    );
    let started = Instant::now();
    loop {
        let (status, answer) = hosts
            .admin(reqwest::Method::POST, &send, body.clone())
            .await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 403, "{answer}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the consumer never made room: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn storage_quotas_hold_and_deletes_free_room() {
    let files = tenants("");
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let s = TestServer::start(&["hostile"], &files, |_| {}).await;
    let hosts = Hosts {
        all: vec![&s],
        next: 0.into(),
    };
    quotas_hold(&hosts, "").await;
    s.shutdown().await;
}

#[tokio::test]
#[cfg_attr(no_postgres, ignore = "ORQUESTA_TEST_POSTGRES_URL is not set")]
async fn storage_quotas_hold_across_two_hosts_on_postgres() {
    let url = orquesta_tests::db::postgres();
    // Tenant names of their own: the database keeps earlier runs' usage.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let prefix = format!("q{nanos:x}");
    let files = tenants(&prefix);
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    // Both hosts keep blobs in one directory, as a shared volume would.
    let data = tempfile::tempdir().unwrap();
    let start = || {
        let url = url.clone();
        let files = files.clone();
        let data = data.path().to_path_buf();
        async move {
            TestServer::start(&["hostile"], &files, |c| {
                c.store = Some(url);
                c.data_dir = data;
            })
            .await
        }
    };
    let a = start().await;
    let b = start().await;
    let hosts = Hosts {
        all: vec![&a, &b],
        next: 0.into(),
    };
    quotas_hold(&hosts, &prefix).await;
    a.shutdown().await;
    b.shutdown().await;
}
