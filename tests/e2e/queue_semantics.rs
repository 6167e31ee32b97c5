//! Queue semantics as SQS has them, through the service: a message's delay (at most 900 s,
//! replacing the queue's), deduplication ids kept for their window after the message is
//! consumed, and retention enforced on every queue, a consumer or not.

use std::path::Path;
use std::time::{Duration, Instant};

use orquesta_tests::server::{ADMIN_TOKEN, TestServer};
use serde_json::{Value, json};

use crate::queues::Admin;

/// The hostile plugin as `worker`, allowed to send to `queues`, and those queues.
fn tenant(allowed: &[&str], queues: &str) -> String {
    format!(
        r#"
[plugins.worker]
source = "hostile.wasm"
allow = {{ queues = {allowed:?} }}

[[routes]]
method = "POST"
path = "/probe"
plugin = "worker"
{queues}
"#
    )
}

/// The plugin's answer to a `queue-send` of `input` (`{"id"}` or `{"error", "cause"}`).
async fn plugin_send(s: &TestServer, input: Value) -> Value {
    let mut input = input;
    input["attack"] = json!("queue-send");
    s.client
        .post(format!("{}/t/acme/probe", s.url))
        .json(&input)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// `POST` of `body` to a queue's messages through the admin API: status and document.
async fn admin_send(s: &TestServer, queue: &str, body: Value) -> (u16, Value) {
    let r = s
        .client
        .post(format!(
            "{}/admin/v1/tenants/acme/queues/{queue}/messages",
            s.url
        ))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Waits until `done` holds of the queue's admin view, or fails saying what it saw.
async fn until(admin: &Admin, queue: &str, what: &str, done: impl Fn(&Value) -> bool) {
    let started = Instant::now();
    loop {
        let q = admin.queue("acme", queue).await;
        if done(&q) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{queue}: never {what}: {q}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `statement` on the server's SQLite store: what only time would do otherwise
/// (retention is at least 60 s).
async fn store_exec(s: &TestServer, statement: &str) -> u64 {
    let file = s.dir.path().join("data/orquesta.db");
    let pool = store_pool(&file).await;
    let done = sqlx::query(sqlx::AssertSqlSafe(statement))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    done.rows_affected()
}

async fn store_pool(file: &Path) -> sqlx::SqlitePool {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(file)
        .busy_timeout(Duration::from_secs(5));
    sqlx::SqlitePool::connect_with(options).await.unwrap()
}

/// Ends the retention of acme's messages whose body holds `"n":N`.
async fn expire(s: &TestServer, n: u32) {
    let ended = store_exec(
        s,
        &format!(
            "UPDATE queue_messages SET expires_at = 1
             WHERE tenant = 'acme' AND body LIKE '%\"n\":{n}%'"
        ),
    )
    .await;
    assert_eq!(ended, 1, "message {n} expired");
}

#[tokio::test]
async fn a_message_delay_is_at_most_900_s_and_replaces_the_queues() {
    let queues = "[queues.slow]\ndelay_seconds = 60\n";
    let s = TestServer::start(
        &["hostile"],
        &[("acme", &tenant(&["slow"], queues))],
        |_| {},
    )
    .await;
    let admin = Admin::new(&s.url);

    for delay in [901u64, 99_999_999] {
        let (status, problem) =
            admin_send(&s, "slow", json!({ "body": "x", "delay_seconds": delay })).await;
        assert_eq!(status, 400, "admin, {delay} s: {problem}");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains("at most 900"),
            "admin, {delay} s: {problem}"
        );

        let answer = plugin_send(
            &s,
            json!({ "queue": "slow", "body": "x", "delay_seconds": delay }),
        )
        .await;
        assert_eq!(answer["error"], "Invalid", "plugin, {delay} s: {answer}");
        let cause = answer["cause"].as_str().unwrap_or_default();
        assert!(cause.contains("at most 900"), "plugin, {delay} s: {answer}");
    }
    let q = admin.queue("acme", "slow").await;
    assert_eq!(
        (&q["visible"], &q["delayed"]),
        (&json!(0), &json!(0)),
        "nothing sent: {q}"
    );
    let at_limit = plugin_send(
        &s,
        json!({ "queue": "slow", "body": "x", "delay_seconds": 900 }),
    )
    .await;
    assert!(at_limit["id"].is_string(), "900 s is allowed: {at_limit}");

    // The queue delays by 60 s; a message's own 1 s replaces that (SQS's DelaySeconds),
    // and a message without one takes the queue's.
    admin
        .post(
            "/tenants/acme/queues/slow/messages",
            json!({ "messages": [{ "body": "own", "delay_seconds": 1 }, { "body": "default" }] }),
        )
        .await;
    until(&admin, "slow", "showed the 1 s message", |q| {
        q["visible"] == 1
    })
    .await;
    let q = admin.queue("acme", "slow").await;
    assert_eq!(
        q["delayed"], 2,
        "900 s and the queue's 60 s still delayed: {q}"
    );
    let listed = admin.get("/tenants/acme/queues/slow/messages").await;
    assert_eq!(
        listed["messages"].as_array().map(Vec::len),
        Some(3),
        "{listed}"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn a_dedup_id_is_remembered_after_its_message_is_consumed() {
    let queues = r#"
[queues.orders]
fifo = true
consumer = { plugin = "worker", batch_size = 10 }
"#;
    let s = TestServer::start(
        &["hostile"],
        &[("acme", &tenant(&["orders"], queues))],
        |_| {},
    )
    .await;
    let admin = Admin::new(&s.url);
    let order = json!({ "body": { "n": 1 }, "group_id": "g", "deduplication_id": "order-1" });
    let first = admin
        .post("/tenants/acme/queues/orders/messages", order.clone())
        .await;
    admin
        .drained("acme", "orders", Duration::from_secs(20))
        .await;
    assert_eq!(admin.seen("acme", "seen:1").await, "1");

    // Consumed and deleted, but within the 5 minutes: both repeats are dropped.
    let again = admin
        .post("/tenants/acme/queues/orders/messages", order)
        .await;
    assert_eq!(
        again["ids"], first["ids"],
        "the repeat answers the first id"
    );
    let from_plugin = plugin_send(
        &s,
        json!({ "queue": "orders", "body": { "n": 1 }, "group_id": "g", "deduplication_id": "order-1" }),
    )
    .await;
    assert_eq!(from_plugin["id"], first["ids"][0], "{from_plugin}");
    // Group g is delivered in order: had a repeat been queued, it would come before this.
    admin
        .post(
            "/tenants/acme/queues/orders/messages",
            json!({ "body": { "n": 2 }, "group_id": "g" }),
        )
        .await;
    admin
        .drained("acme", "orders", Duration::from_secs(20))
        .await;
    assert_eq!(admin.seen("acme", "seen:2").await, "1");
    assert_eq!(
        admin.seen("acme", "seen:1").await,
        "1",
        "the repeats were not delivered"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn expired_messages_are_not_delivered_listed_counted_or_redriven() {
    let queues = r#"
[queues.jobs]
dead_letter = { queue = "jobs-dlq", max_receive_count = 3 }
consumer = { plugin = "worker" }

[queues.jobs-dlq]

[queues.ordered]
fifo = true
consumer = { plugin = "worker" }
"#;
    // The default sweep (every 60 s, first at start) does not run during the test: what
    // it shows is the claims and listings leaving expired messages out.
    let s = TestServer::start(&["hostile"], &[("acme", &tenant(&[], queues))], |_| {}).await;
    let admin = Admin::new(&s.url);

    // A dead-letter queue without a consumer: one message past retention, one not.
    admin
        .post(
            "/tenants/acme/queues/jobs-dlq/messages",
            json!({ "messages": [{ "body": { "n": 1 } }, { "body": { "n": 2 } }] }),
        )
        .await;
    expire(&s, 1).await;
    let listed = admin.get("/tenants/acme/queues/jobs-dlq/messages").await;
    let bodies: Vec<&str> = listed["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["body"].as_str())
        .collect();
    assert_eq!(bodies, [r#"{"n":2}"#], "listed: {listed}");
    let q = admin.queue("acme", "jobs-dlq").await;
    assert_eq!(q["visible"], 1, "counted: {q}");
    let moved = admin
        .post("/tenants/acme/queues/jobs-dlq/redrive", json!({}))
        .await;
    assert_eq!(moved["moved"], 1, "redriven: {moved}");
    admin.drained("acme", "jobs", Duration::from_secs(20)).await;
    assert_eq!(admin.seen("acme", "seen:2").await, "1");
    assert_eq!(admin.seen("acme", "seen:1").await, Value::Null);

    // A FIFO group whose delayed head expires before it shows: the head is never
    // delivered, and the message behind it is not held up by it.
    admin
        .post(
            "/tenants/acme/queues/ordered/messages",
            json!({ "body": { "n": 3 }, "group_id": "g", "delay_seconds": 2 }),
        )
        .await;
    expire(&s, 3).await;
    admin
        .post(
            "/tenants/acme/queues/ordered/messages",
            json!({ "body": { "n": 4 }, "group_id": "g" }),
        )
        .await;
    admin
        .drained("acme", "ordered", Duration::from_secs(20))
        .await;
    assert_eq!(admin.seen("acme", "seen:4").await, "1");
    assert_eq!(
        admin.seen("acme", "seen:3").await,
        Value::Null,
        "expired, not delivered"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn the_sweeper_deletes_expired_messages_of_queues_without_a_consumer() {
    let queues = "[queues.alerts]\n";
    let s = TestServer::start(&["hostile"], &[("acme", &tenant(&[], queues))], |c| {
        c.queue_sweep_ms = 200;
    })
    .await;
    let admin = Admin::new(&s.url);
    admin
        .post(
            "/tenants/acme/queues/alerts/messages",
            json!({ "messages": [{ "body": { "n": 1 } }, { "body": { "n": 2 } }] }),
        )
        .await;
    expire(&s, 1).await;
    let file = s.dir.path().join("data/orquesta.db");
    let pool = store_pool(&file).await;
    let started = Instant::now();
    loop {
        let left: Vec<String> =
            sqlx::query_scalar("SELECT body FROM queue_messages WHERE tenant = 'acme'")
                .fetch_all(&pool)
                .await
                .unwrap();
        if left == [r#"{"n":2}"#] {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the expired message is still stored: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    pool.close().await;
    s.shutdown().await;
}
