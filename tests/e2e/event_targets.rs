//! What bus rule targets and topic subscriptions receive, and how they are retried.
//! A bus rule's plugin target with EventBridge's target input (`input`, `input_path`,
//! `input_transformer`) receives the bus event with the transformation as its `detail`,
//! as a Lambda target receives the transformed JSON as its event; a template that fills
//! past the tenant's message cap fails the put before the plugin sees anything. A
//! webhook subscription is retried as its SNS delivery policy says; SNS's document is
//! held to its bound.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orquesta_tests::server::{TestServer, post};
use orquesta_tests::wait::wait_for;
use serde_json::{Value, json};

const TENANT: &str = r#"
[plugins.worker]
source = "hostile.wasm"

[[routes]]
method = "POST"
path = "/act"
plugin = "worker"

[[buses.default.rules]]
name = "shaped"
pattern = { source = ["shaped"] }
targets = [
  { plugin = "worker", input_transformer = { input_paths_map = { order = "$.detail.order", who = "$.detail.customer.name", gone = "$.detail.nothing" }, input_template = '{"order": <order>, "note": "order <order> for <who>", "rule": <aws.events.rule-name>, "missing": <gone>}' } },
]

[[buses.default.rules]]
name = "text"
pattern = { source = ["text"] }
targets = [
  { plugin = "worker", input_transformer = { input_paths_map = { order = "$.detail.order" }, input_template = "order <order> is paid" } },
]

[[buses.default.rules]]
name = "picked"
pattern = { source = ["picked"] }
targets = [{ plugin = "worker", input_path = "$.detail.items[1]" }]

[[buses.default.rules]]
name = "constant"
pattern = { source = ["constant"] }
targets = [{ plugin = "worker", input = { fixed = true } }]

[[buses.default.rules]]
name = "plain"
pattern = { source = ["plain"] }
targets = [{ plugin = "worker" }]

[[buses.default.rules]]
name = "amplify"
pattern = { source = ["big"] }
targets = [{ plugin = "worker", input_transformer = { input_template = "AMPLIFY" } }]
"#;

/// `<aws.events.event>` 400 times: 400 copies of a 2 KiB event is far past 256 KiB.
fn tenant() -> String {
    TENANT.replace("AMPLIFY", &"<aws.events.event>".repeat(400))
}

async fn put(s: &TestServer, source: &str, detail: Value) -> (u16, Value) {
    post(
        s,
        "/admin/v1/tenants/acme/buses/default/events",
        json!({ "source": source, "detail_type": "Paid", "detail": detail }),
    )
    .await
}

/// The detail the plugin's last bus event from `source` carried, once it has one.
async fn seen(s: &TestServer, source: &str) -> Value {
    let key = format!("bus-detail:default:Paid:{source}");
    wait_for(
        &format!("a delivery from {source}"),
        Duration::from_secs(20),
        async || {
            let (_, r) = post(s, "/t/acme/act", json!({ "attack": "kv-read", "key": key })).await;
            let text = r["found"][format!("default/{key}")].as_str()?.to_string();
            Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}")))
        },
    )
    .await
}

#[tokio::test]
async fn plugin_targets_receive_the_transformed_input_as_detail() {
    let tenant = tenant();
    let s = TestServer::start(&["hostile"], &[("acme", &tenant)], |_| {}).await;
    let detail =
        json!({ "order": 7, "customer": { "name": "Ana \"A\"" }, "items": ["a", {"sku": "b"}] });
    for source in ["shaped", "text", "picked", "constant", "plain"] {
        let (code, r) = put(&s, source, detail.clone()).await;
        assert_eq!(code, 200, "{source}: {r}");
    }
    assert_eq!(
        seen(&s, "shaped").await,
        json!({ "order": 7, "note": "order 7 for Ana \"A\"", "rule": "shaped", "missing": null })
    );
    // A template that is not JSON gives text: the detail is that JSON string.
    assert_eq!(seen(&s, "text").await, json!("order 7 is paid"));
    assert_eq!(seen(&s, "picked").await, json!({ "sku": "b" }));
    assert_eq!(seen(&s, "constant").await, json!({ "fixed": true }));
    // Without one, the event's own detail as before.
    assert_eq!(seen(&s, "plain").await, detail);
    s.shutdown().await;
}

/// Attack: a template repeating the whole event cannot make the host build (or store,
/// or hand a plugin) more than the tenant's message cap: the put is refused, naming the
/// rule and the cap, and nothing is delivered.
#[tokio::test]
async fn an_amplifying_template_on_a_plugin_target_is_held_to_the_cap() {
    let tenant = tenant();
    let s = TestServer::start(&["hostile"], &[("acme", &tenant)], |_| {}).await;
    let (code, r) = put(&s, "big", json!({ "blob": "x".repeat(2048) })).await;
    assert_eq!(code, 400, "{r}");
    let text = r.to_string();
    assert!(
        text.contains("rule `amplify`") && text.contains("fills past 262144 bytes"),
        "{text}"
    );
    let pending = s.admin("tenants/acme/deliveries?state=pending").await;
    assert_eq!(pending["deliveries"], json!([]), "{pending}");
    // A later event still reaches the plugin: nothing was left half made.
    let (code, r) = put(&s, "plain", json!({ "after": true })).await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(seen(&s, "plain").await, json!({ "after": true }));
    let (_, r) = post(
        &s,
        "/t/acme/act",
        json!({ "attack": "kv-read", "key": "bus-detail:default:Paid:big" }),
    )
    .await;
    assert_eq!(
        r["found"]["default/bus-detail:default:Paid:big"],
        Value::Null
    );
    s.shutdown().await;
}

/// A webhook that always answers 500, recording when each POST came.
async fn failing_hook() -> (String, Arc<Mutex<Vec<(Instant, Value)>>>) {
    let seen: Arc<Mutex<Vec<(Instant, Value)>>> = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let record = record.clone();
            async move {
                let doc = serde_json::from_str(&body).unwrap_or(Value::Null);
                record.lock().unwrap().push((Instant::now(), doc));
                (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "down")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (hook, seen)
}

/// SNS's delivery policy on a webhook subscription: one retry at once, then the backoff
/// phase from 1 to 2 seconds; past its three retries the document goes to the
/// subscription's dead-letter queue, listed as failed with its policy's attempts.
#[tokio::test]
async fn a_webhook_subscription_retries_as_its_sns_delivery_policy_says() {
    let (hook, seen) = failing_hook().await;
    let tenant = format!(
        r#"
[http]
allow_private = true

[queues.dlq]

[topics.hooked]
subscriptions = [
  {{ webhook = "{hook}", dead_letter = {{ queue = "dlq" }}, delivery_policy = {{ healthy_retry_policy = {{ num_retries = 3, num_no_delay_retries = 1, min_delay_target = 1, max_delay_target = 2, backoff_function = "linear" }} }} }},
]
"#
    );
    let s = TestServer::start(&[], &[("acme", &tenant)], |_| {}).await;
    let (code, r) = post(
        &s,
        "/admin/v1/tenants/acme/topics/hooked/messages",
        json!({ "subject": "s", "body": "hello" }),
    )
    .await;
    assert_eq!(code, 200, "{r}");
    let failed = wait_for(
        "the webhook delivery to fail",
        Duration::from_secs(30),
        async || {
            let r = s.admin("tenants/acme/deliveries").await;
            r["deliveries"]
                .as_array()
                .filter(|d| !d.is_empty())
                .cloned()
        },
    )
    .await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(
        (
            failed[0]["attempts"].clone(),
            failed[0]["max_attempts"].clone()
        ),
        (json!(4), json!(4))
    );
    assert_eq!(failed[0]["dead_letter"], "dlq");
    let at: Vec<Instant> = seen.lock().unwrap().iter().map(|(t, _)| *t).collect();
    assert_eq!(at.len(), 4, "the first attempt and three retries");
    let gaps: Vec<Duration> = at.windows(2).map(|w| w[1] - w[0]).collect();
    // At once; then 1.5 s and 2 s (linear from min to max), never sooner.
    assert!(gaps[0] < Duration::from_millis(1000), "{gaps:?}");
    assert!(gaps[1] >= Duration::from_millis(1500), "{gaps:?}");
    assert!(gaps[2] >= Duration::from_millis(2000), "{gaps:?}");
    let dlq = s.admin("tenants/acme/queues/dlq/messages").await;
    let body: Value = serde_json::from_str(dlq["messages"][0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["Type"], "Notification");
    assert_eq!(body["Message"], "hello");
    s.shutdown().await;
}

/// Attack: a publication just under the cap whose body is all characters JSON escapes
/// (quotes: two bytes each) cannot put SNS's document, twice its size, into a queue or
/// the store: it is refused before any subscription, raw ones included, receives it.
/// An ordinary publication of the same size still goes through, within the bound.
#[tokio::test]
async fn snss_document_is_held_to_its_bound() {
    let tenant = r#"
[queues.wrapped]
[queues.raw]

[topics.news]
subscriptions = [
  { queue = "raw", raw_message_delivery = true },
  { queue = "wrapped" },
]
"#;
    let s = TestServer::start(&[], &[("acme", tenant)], |_| {}).await;
    let near = 256 * 1024 - 64;
    let publish = async |body: String| {
        post(
            &s,
            "/admin/v1/tenants/acme/topics/news/messages",
            json!({ "body": body }),
        )
        .await
    };
    let (code, r) = publish("\"".repeat(near)).await;
    assert_eq!(code, 400, "{r}");
    assert!(r.to_string().contains("past 393216"), "{r}");
    for queue in ["raw", "wrapped"] {
        let m = s
            .admin(&format!("tenants/acme/queues/{queue}/messages"))
            .await;
        assert_eq!(m["messages"], json!([]), "{queue}: nothing delivered");
    }
    let (code, r) = publish("x".repeat(near)).await;
    assert_eq!(code, 200, "{r}");
    let m = s.admin("tenants/acme/queues/wrapped/messages").await;
    let text = m["messages"][0]["body"].as_str().unwrap();
    assert!(
        text.len() > near && text.len() <= 384 * 1024,
        "{}",
        text.len()
    );
    s.shutdown().await;
}
