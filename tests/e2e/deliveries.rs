//! Topic deliveries to plugins wait in the store, not in memory: a delivery pending when
//! its host is killed is made after the restart, and a slow subscriber with many large
//! messages waiting leaves the host's resident memory where it was.

use std::time::{Duration, Instant};

use orquesta_tests::plugin;
use orquesta_tests::server::{ADMIN_TOKEN, ServeProcess};
use serde_json::{Value, json};

const CONFIG: &str = r#"
listen = "127.0.0.1:0"
data_dir = "data"
plugin_dir = "plugins"
tenant_dir = "tenants"
admin_token = { file = "admin-token" }
"#;

/// One plugin, `slow`, subscribed to topic `slow`, one invocation at a time.
const TENANT: &str = r#"
[limits]
concurrency = 1

[plugins.slow]
source = "hostile.wasm"

[[routes]]
method = "POST"
path = "/probe"
plugin = "slow"

[topics.slow]
subscriptions = [{ plugin = "slow" }]
"#;

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["plugins", "tenants"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    std::fs::copy(plugin("hostile"), dir.path().join("plugins/hostile.wasm")).unwrap();
    std::fs::write(dir.path().join("admin-token"), ADMIN_TOKEN).unwrap();
    std::fs::write(dir.path().join("tenants/acme.toml"), TENANT).unwrap();
    dir
}

async fn publish(client: &reqwest::Client, server: &ServeProcess, subject: &str, body: &Value) {
    let r = client
        .post(format!(
            "{}/admin/v1/tenants/acme/topics/slow/messages",
            server.url
        ))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "subject": subject, "body": body }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
}

/// How often the plugin counted a delivery with `subject` (hostile counts each).
async fn delivered(client: &reqwest::Client, server: &ServeProcess, subject: &str) -> u64 {
    let key = format!("topic:slow:{subject}");
    let r: Value = client
        .post(format!("{}/t/acme/probe", server.url))
        .json(&json!({ "attack": "kv-read", "key": key }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap_or(Value::Null);
    r["found"][format!("default/{key}")]
        .as_str()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_delivery_pending_when_the_host_is_killed_is_made_after_the_restart() {
    const N: usize = 4;
    let dir = setup();
    let client = reqwest::Client::new();
    let server = ServeProcess::start(dir.path(), CONFIG, &[]);
    let nap = json!({ "attack": "nap", "ms": 2000 });
    for i in 0..N {
        publish(&client, &server, &format!("s{i}"), &nap).await;
    }
    // One at a time, two seconds each: killed at once, at most the first was made.
    drop(server); // SIGKILL

    let server = ServeProcess::start(dir.path(), CONFIG, &[]);
    let started = Instant::now();
    for i in 0..N {
        let subject = format!("s{i}");
        while delivered(&client, &server, &subject).await == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{subject} was never delivered after the restart; logs:\n{}",
                server.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn many_large_publications_to_a_slow_subscriber_do_not_grow_the_host() {
    const N: usize = 400;
    const BODY: usize = 200 << 10;
    let dir = setup();
    let client = reqwest::Client::new();
    let server = ServeProcess::start(dir.path(), CONFIG, &[]);
    // Warm up: the plugin compiled and instantiated, the store's pages cached.
    let small = json!({ "attack": "nap", "ms": 1 });
    publish(&client, &server, "warm", &small).await;
    let started = Instant::now();
    while delivered(&client, &server, "warm").await == 0 {
        assert!(started.elapsed() < Duration::from_secs(30), "warm-up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = rss_kib(server.pid());
    // Each takes the subscriber 5 s: all but one wait.
    let large = json!({ "attack": "nap", "ms": 5_000, "pad": "p".repeat(BODY) });
    for i in 0..N {
        publish(&client, &server, &format!("big{i}"), &large).await;
    }
    let after = rss_kib(server.pid());
    let waiting_mib = (N * BODY) >> 20;
    let grown_mib = after.saturating_sub(before) >> 10;
    eprintln!("resident: {before} -> {after} KiB with {waiting_mib} MiB waiting");
    assert!(
        grown_mib < 32,
        "resident memory grew {grown_mib} MiB ({before} -> {after} KiB) with {waiting_mib} MiB waiting"
    );
}

#[tokio::test]
#[cfg_attr(no_postgres, ignore = "ORQUESTA_TEST_POSTGRES_URL is not set")]
async fn two_hosts_on_one_postgres_database_make_each_delivery_once() {
    let url = orquesta_tests::db::postgres();
    const TOTAL: usize = 300;
    // A tenant of its own, so earlier runs' records do not count.
    let name = format!(
        "d{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let tenant = TENANT.replace("concurrency = 1", "concurrency = 8");
    let (dir_a, dir_b) = (setup(), setup());
    for dir in [&dir_a, &dir_b] {
        std::fs::remove_file(dir.path().join("tenants/acme.toml")).unwrap();
        std::fs::write(dir.path().join(format!("tenants/{name}.toml")), &tenant).unwrap();
    }
    let env = [("ORQUESTA_STORE_URL", url.as_str())];
    let a = ServeProcess::start(dir_a.path(), CONFIG, &env);
    let b = ServeProcess::start(dir_b.path(), CONFIG, &env);
    let client = reqwest::Client::new();
    let nap = json!({ "attack": "nap", "ms": 20 });
    for i in 0..TOTAL {
        let host = if i % 2 == 0 { &a } else { &b };
        let r = client
            .post(format!(
                "{}/admin/v1/tenants/{name}/topics/slow/messages",
                host.url
            ))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({ "subject": format!("m{i}"), "body": nap }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let started = Instant::now();
    loop {
        let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE tenant = $1")
            .bind(&name)
            .fetch_one(&pool)
            .await
            .unwrap();
        if pending == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{pending} deliveries still pending"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let values: Vec<(String, Vec<u8>)> =
        sqlx::query_as("SELECT key, value FROM kv_items WHERE tenant = $1 AND key LIKE 'topic:%'")
            .bind(&name)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(values.len(), TOTAL, "every delivery made");
    let repeated: Vec<_> = values.iter().filter(|(_, v)| v != b"1").collect();
    assert!(repeated.is_empty(), "made more than once: {repeated:?}");
    // Both hosts made deliveries.
    for host in [&a, &b] {
        let metrics = reqwest::get(format!("{}/metrics", host.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let invocations: f64 = metrics
            .lines()
            .filter(|l| l.starts_with("orquesta_invocations_total") && l.contains(&name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        assert!(invocations > 0.0, "{} made none", host.url);
    }
}
