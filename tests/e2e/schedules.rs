//! Schedules through the service: ticks reach plugins and queues, the admin API shows the
//! next fire time, and two hosts on one PostgreSQL database fire each tick once.

use std::time::Duration;

use orquesta_tests::server::TestServer;
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
    let s = TestServer::start(&["hostile"], &[("acme", TENANT)], |_| {}).await;
    tokio::time::sleep(Duration::from_millis(3300)).await;
    let ticks: u32 = kv(&s, "acme", "ticks:every")
        .await
        .as_str()
        .unwrap_or("0")
        .parse()
        .unwrap();
    assert!((2..=4).contains(&ticks), "{ticks} ticks in 3.3 s");
    let queued = s.admin("tenants/acme/queues/ticks/messages").await;
    let queued = queued["messages"].as_array().unwrap();
    assert!(queued.len() >= 2, "{queued:?}");
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
async fn two_hosts_on_one_postgres_database_fire_each_tick_once() {
    let Ok(url) = std::env::var("ORQUESTA_TEST_POSTGRES_URL") else {
        eprintln!(
            "note: ORQUESTA_TEST_POSTGRES_URL is not set; the two-host schedule test is skipped"
        );
        return;
    };
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
    tokio::time::sleep(Duration::from_millis(4200)).await;
    a.shutdown().await;
    b.shutdown().await;
    // Deliveries run in the background; let the last ones land.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let fired: Vec<(i64,)> = sqlx::query_as(
        "SELECT due_at FROM schedule_ticks WHERE tenant = $1 AND schedule = 'every' ORDER BY due_at",
    )
    .bind(&tenant)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(fired.len() >= 3, "{} ticks in 4.2 s", fired.len());
    let delivered: Vec<(String, Vec<u8>)> = sqlx::query_as(
        "SELECT key, value FROM kv_items WHERE tenant = $1 AND key LIKE 'tick:every:%'",
    )
    .bind(&tenant)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(delivered.len(), fired.len(), "every fired tick delivered");
    assert!(
        delivered.iter().all(|(_, v)| v == b"1"),
        "a tick delivered twice: {delivered:?}"
    );
}
