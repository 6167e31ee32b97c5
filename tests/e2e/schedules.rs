//! Schedules through the service: ticks reach plugins and queues, the admin API shows the
//! next fire time, and two hosts on one PostgreSQL database fire each tick once.

use std::time::{Duration, Instant};

use orquesta_tests::server::TestServer;
use orquesta_tests::wait::wait_until;
use serde_json::{Value, json};

const TENANT: &str = r#"
[plugins.worker]
source = "hostile.wasm"

[[routes]]
method = "POST"
path = "/act"
plugin = "worker"

[queues.ticks]

[schedules.every]
expression = "rate(1 second)"
target = { plugin = "worker" }

[schedules.to-queue]
expression = "rate(1 second)"
target = { queue = "ticks" }
input = { hello = 1 }

[schedules.daily]
expression = "cron(0 8 * * ? *)"
timezone = "America/Lima"
target = { plugin = "worker" }
"#;

async fn kv(s: &TestServer, tenant: &str, key: &str) -> Value {
    let r: Value = s
        .client
        .post(format!("{}/t/{tenant}/act", s.url))
        .json(&json!({ "attack": "kv-read", "key": key }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["found"][format!("default/{key}")].clone()
}

#[tokio::test]
async fn ticks_reach_plugins_and_queues() {
    let started = Instant::now();
    let s = TestServer::start(&["hostile"], &[("acme", TENANT)], |_| {}).await;
    let ticks = async || -> u32 {
        let n = kv(&s, "acme", "ticks:every").await;
        n.as_str().unwrap_or("0").parse().unwrap()
    };
    let queued = async || {
        let listed = s.admin("tenants/acme/queues/ticks/messages").await;
        listed["messages"].as_array().cloned().unwrap_or_default()
    };
    wait_until(
        "two ticks to the plugin and two to the queue",
        Duration::from_secs(20),
        async || ticks().await >= 2 && queued().await.len() >= 2,
    )
    .await;
    // One a second, never more: at most one per second begun, and the first.
    let (ticks, elapsed) = (ticks().await, started.elapsed());
    assert!(
        ticks <= elapsed.as_secs() as u32 + 2,
        "{ticks} ticks in {elapsed:?}"
    );
    let queued = queued().await;
    assert_eq!(queued[0]["body"], json!({ "hello": 1 }).to_string());

    let listed = s.admin("tenants/acme/schedules").await;
    let daily = listed["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "daily")
        .unwrap()
        .clone();
    let next = daily["next_fire_at"].as_i64().unwrap();
    // 08:00 in Lima is 13:00 UTC.
    assert_eq!(next.rem_euclid(86_400_000), 13 * 3_600_000, "{daily}");
    assert_eq!(daily["last_fired_at"], Value::Null);
    s.shutdown().await;
}

#[tokio::test]
#[cfg_attr(no_postgres, ignore = "ORQUESTA_TEST_POSTGRES_URL is not set")]
async fn two_hosts_on_one_postgres_database_fire_each_tick_once() {
    let url = orquesta_tests::db::postgres();
    let tenant = format!(
        "s{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let start = || {
        let url = url.clone();
        let tenant = tenant.clone();
        async move {
            TestServer::start(&["hostile"], &[(&tenant, TENANT)], |c| c.store = Some(url)).await
        }
    };
    let (a, b) = (start().await, start().await);
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let fired = async || -> Vec<(i64,)> {
        sqlx::query_as(
            "SELECT due_at FROM schedule_ticks WHERE tenant = $1 AND schedule = 'every' ORDER BY due_at",
        )
        .bind(&tenant)
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    let delivered = async || -> Vec<(String, Vec<u8>)> {
        sqlx::query_as(
            "SELECT key, value FROM kv_items WHERE tenant = $1 AND key LIKE 'tick:every:%'",
        )
        .bind(&tenant)
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    // Both hosts run for a few ticks, each of which both try to fire; they stop just
    // after a tick was delivered, the next one most of a second away.
    wait_until(
        "four ticks fired, each delivered",
        Duration::from_secs(30),
        async || {
            let fired = fired().await.len();
            fired >= 4 && delivered().await.len() == fired
        },
    )
    .await;
    a.shutdown().await;
    b.shutdown().await;
    let fired = fired().await;
    // Deliveries run in the background: the last ones land after the claims.
    wait_until(
        "every fired tick delivered",
        Duration::from_secs(10),
        async || delivered().await.len() >= fired.len(),
    )
    .await;
    let delivered = delivered().await;
    assert_eq!(delivered.len(), fired.len(), "every fired tick delivered");
    assert!(
        delivered.iter().all(|(_, v)| v == b"1"),
        "a tick delivered twice: {delivered:?}"
    );
}
