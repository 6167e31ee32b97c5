//! Topics and buses through the service: filter policies route publications to queues
//! and plugins, rules route events, and bad policies or patterns are refused at load.

use std::time::{Duration, Instant};

use orquesta_tests::server::{ADMIN_TOKEN, TestServer};
use serde_json::{Value, json};

fn tenant(webhook: &str) -> String {
    format!(
        r#"
[http]
allow_private = true

[plugins.worker]
source = "hostile.wasm"
allow = {{ topics = ["appointments"], buses = ["default"] }}

[[routes]]
method = "POST"
path = "/act"
plugin = "worker"

[queues.pe]
[queues.cl]
[queues.big]
[queues.confirmations]

[topics.appointments]
subscriptions = [
  {{ queue = "pe", filter_policy = {{ country = ["PE"] }} }},
  {{ queue = "cl", filter_policy = {{ country = ["CL"] }} }},
  {{ queue = "big", filter_policy = {{ amount = [{{ numeric = [">=", 100] }}] }}, filter_scope = "body" }},
  {{ plugin = "worker", filter_policy = {{ country = [{{ anything-but = ["PE", "CL"] }}] }} }},
  {{ webhook = "{webhook}" }},
  {{ log = true }},
]

[[buses.default.rules]]
name = "confirmed"
pattern = {{ source = ["appointments"], detail-type = ["AppointmentConfirmed"], detail = {{ status = ["completed"] }} }}
targets = [{{ queue = "confirmations" }}, {{ plugin = "worker" }}]
"#
    )
}

async fn post(s: &TestServer, path: &str, body: Value) -> (u16, Value) {
    let r = s
        .client
        .post(format!("{}{path}", s.url))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn bodies(s: &TestServer, queue: &str) -> Vec<Value> {
    let r = s
        .admin(&format!("tenants/acme/queues/{queue}/messages"))
        .await;
    let tenants = s.admin("tenants").await;
    r["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("{r} {tenants}"))
        .iter()
        .map(|m| serde_json::from_str(m["body"].as_str().unwrap()).unwrap())
        .collect()
}

async fn kv(s: &TestServer, key: &str) -> Value {
    let (_, r) = post(s, "/t/acme/act", json!({ "attack": "kv-read", "key": key })).await;
    r["found"][format!("default/{key}")].clone()
}

/// Waits until every delivery of the tenant to plugins and webhooks has been made (the
/// durable `deliveries` table holds none): after this, nothing more can arrive.
async fn quiescent(s: &TestServer) {
    let db = s.dir.path().join("data/orquesta.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", db.display()))
        .await
        .unwrap();
    eventually("no delivery pending", async || {
        let pending: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE tenant = 'acme'")
                .fetch_one(&pool)
                .await
                .unwrap();
        pending == 0
    })
    .await;
    pool.close().await;
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{what} never happened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn publications_follow_filter_policies_and_events_follow_rules() {
    // A webhook receiver on loopback.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::Json<Value>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body.0);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let s = TestServer::start(&["hostile"], &[("acme", &tenant(&hook))], |_| {}).await;
    // From the admin API, with attributes.
    for (country, amount) in [("PE", 50), ("CL", 150), ("AR", 10)] {
        let (code, r) = post(
            &s,
            "/admin/v1/tenants/acme/topics/appointments/messages",
            json!({ "subject": "new", "body": { "country": country, "amount": amount },
                    "attributes": { "country": country } }),
        )
        .await;
        assert_eq!(code, 200, "{r}");
    }
    // From a plugin, through `notify`.
    let (code, r) = post(
        &s,
        "/t/acme/act",
        json!({ "attack": "publish", "topic": "appointments", "subject": "from-plugin",
                "body": { "country": "PE", "amount": 500 }, "attributes": { "country": "PE" } }),
    )
    .await;
    assert_eq!(code, 200, "{r}");

    let pe = bodies(&s, "pe").await;
    assert_eq!(pe.len(), 2, "{pe:?}");
    assert!(pe.iter().all(|b| b["country"] == "PE"));
    assert_eq!(
        bodies(&s, "cl").await,
        [json!({ "country": "CL", "amount": 150 })]
    );
    let big: Vec<i64> = bodies(&s, "big")
        .await
        .iter()
        .map(|b| b["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(big, [150, 500], "body policy on amount >= 100");
    eventually("the plugin subscription got AR", async || {
        kv(&s, "topic:appointments:new").await == "1"
    })
    .await;
    let mut hooked = Vec::new();
    while hooked.len() < 4 {
        let doc = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("webhook deliveries")
            .unwrap();
        hooked.push(doc);
    }
    assert!(
        hooked
            .iter()
            .all(|d| d["Type"] == "Notification" && d["TopicArn"] == "orquesta:acme:appointments")
    );

    // Events: only the matching one is routed, to the queue and the plugin.
    for status in ["completed", "pending"] {
        let (code, r) = post(
            &s,
            "/admin/v1/tenants/acme/buses/default/events",
            json!({ "source": "appointments", "detail_type": "AppointmentConfirmed",
                    "detail": { "status": status, "id": 7 } }),
        )
        .await;
        assert_eq!(code, 200, "{r}");
    }
    let (code, _) = post(
        &s,
        "/t/acme/act",
        json!({ "attack": "put-event", "bus": "default", "source": "billing",
                "detail_type": "AppointmentConfirmed", "detail": { "status": "completed" } }),
    )
    .await;
    assert_eq!(code, 200);
    let confirmations = bodies(&s, "confirmations").await;
    assert_eq!(confirmations.len(), 1, "{confirmations:?}");
    assert_eq!(
        confirmations[0]["detail"],
        json!({ "status": "completed", "id": 7 })
    );
    assert_eq!(confirmations[0]["source"], "appointments");
    eventually("the plugin target got the event", async || {
        kv(&s, "bus:default:AppointmentConfirmed").await == "1"
    })
    .await;

    // Every delivery made: the negative cases hold, no wrong delivery came later.
    quiescent(&s).await;
    assert_eq!(
        kv(&s, "topic:appointments:new").await,
        "1",
        "the plugin subscription (anything but PE and CL) got only AR"
    );
    assert_eq!(
        kv(&s, "topic:appointments:from-plugin").await,
        Value::Null,
        "the plugin subscription got the PE publication"
    );
    assert_eq!(
        kv(&s, "bus:default:AppointmentConfirmed").await,
        "1",
        "the plugin target got a pending or billing event"
    );
    let late: Vec<Value> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
    assert!(
        late.is_empty(),
        "webhook deliveries past the four: {late:?}"
    );
    assert_eq!(bodies(&s, "pe").await.len(), 2);
    assert_eq!(bodies(&s, "cl").await.len(), 1);
    assert_eq!(bodies(&s, "big").await.len(), 2);
    assert_eq!(bodies(&s, "confirmations").await.len(), 1);

    // Undeclared topics are refused.
    let (code, _) = post(
        &s,
        "/admin/v1/tenants/acme/topics/nope/messages",
        json!({ "body": "x" }),
    )
    .await;
    assert_eq!(code, 404);
    s.shutdown().await;
}

#[tokio::test]
async fn bad_policies_and_patterns_are_refused_at_load() {
    let base = tenant("http://127.0.0.1:9/hook");
    for (from, to, reason) in [
        (
            r#"filter_policy = { country = ["PE"] } }"#,
            r#"filter_policy = { country = [{ regex = "P.*" }] } }"#,
            "Unrecognized match type regex",
        ),
        (
            r#"detail = { status = ["completed"] } }"#,
            r#"detail = { status = [{ numeric = ["<", 5, ">", 1] }] } }"#,
            "lower bound",
        ),
        (
            r#"{ queue = "pe","#,
            r#"{ queue = "nowhere","#,
            "`nowhere` is not one of the tenant's queues",
        ),
    ] {
        assert!(base.contains(from), "{from}");
        let text = base.replacen(from, to, 1);
        let err = orquesta::tenants::TenantConfig::parse(std::path::Path::new("acme.toml"), &text)
            .unwrap_err();
        assert!(err.reason.contains(reason), "{reason}: {err}");
    }
}
