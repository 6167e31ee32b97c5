//! Topics and buses through the service: filter policies route publications to queues
//! and plugins, rules route events, and bad policies or patterns are refused at load.

use std::time::{Duration, Instant};

use orquesta_tests::server::{ADMIN_TOKEN, TestServer, post};
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
  {{ queue = "cl", filter_policy = {{ country = ["CL"] }}, raw_message_delivery = true }},
  {{ queue = "big", filter_policy = {{ amount = [{{ numeric = [">=", 100] }}] }}, filter_scope = "body", raw_message_delivery = true }},
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
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(axum::http::HeaderMap, String)>();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((headers, body));
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

    // By default a queue gets SNS's notification document, the message in `Message`.
    let pe = bodies(&s, "pe").await;
    assert_eq!(pe.len(), 2, "{pe:?}");
    for (doc, subject, amount) in [(&pe[0], "new", 50), (&pe[1], "from-plugin", 500)] {
        assert_eq!(doc["Type"], "Notification", "{doc}");
        assert_eq!(doc["TopicArn"], "orquesta:acme:appointments", "{doc}");
        assert_eq!(doc["Subject"], subject, "{doc}");
        assert_eq!(
            doc["MessageAttributes"],
            json!({ "country": { "Type": "String", "Value": "PE" } })
        );
        let message: Value = serde_json::from_str(doc["Message"].as_str().unwrap()).unwrap();
        assert_eq!(message, json!({ "country": "PE", "amount": amount }));
        let stamp = doc["Timestamp"].as_str().unwrap();
        // ISO 8601 with milliseconds, in UTC: 2026-01-02T03:04:05.678Z.
        let shape: String = stamp
            .chars()
            .map(|c| if c.is_ascii_digit() { '0' } else { c })
            .collect();
        assert_eq!(shape, "0000-00-00T00:00:00.000Z", "{doc}");
        assert!(doc["MessageId"].as_str().is_some_and(|id| id.len() == 36));
        for key in [
            "SignatureVersion",
            "Signature",
            "SigningCertURL",
            "UnsubscribeURL",
        ] {
            assert!(doc[key].is_string(), "{key}: {doc}");
        }
    }
    // With raw_message_delivery, the body as published, and its attributes as the
    // message's.
    assert_eq!(
        bodies(&s, "cl").await,
        [json!({ "country": "CL", "amount": 150 })]
    );
    let raw = s.admin("tenants/acme/queues/cl/messages").await;
    assert_eq!(
        raw["messages"][0]["attributes"],
        json!({ "country": "CL" }),
        "{raw}"
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
        let (headers, body) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("webhook deliveries")
            .unwrap();
        let doc: Value = serde_json::from_str(&body).unwrap();
        // The headers SNS sends to an HTTP/S subscription, repeating the document's ids.
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
        };
        assert_eq!(header("content-type"), "text/plain; charset=UTF-8");
        assert_eq!(header("x-amz-sns-message-type"), "Notification");
        assert_eq!(header("x-amz-sns-message-id"), doc["MessageId"]);
        assert_eq!(header("x-amz-sns-topic-arn"), "orquesta:acme:appointments");
        assert_eq!(
            header("user-agent"),
            "Amazon Simple Notification Service Agent"
        );
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
    let late: Vec<String> =
        std::iter::from_fn(|| rx.try_recv().ok().map(|(_, body)| body)).collect();
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
        assert!(err.to_string().contains(reason), "{reason}: {err}");
    }
}

/// `POST /admin/v1/test-event-pattern` answers as TestEventPattern does, for patterns
/// and policies; bad input is a clear 400 and the token is required.
#[tokio::test]
async fn the_admin_api_tests_a_pattern_against_an_event() {
    let s = TestServer::start(&[], &[], |_| {}).await;
    let event = json!({"version": "0", "id": "1", "detail-type": "AppointmentConfirmed",
        "source": "appointments", "account": "acme", "time": "2026-12-05T10:00:00Z",
        "region": "local", "resources": [], "detail": {"status": "completed", "ip": "10.0.0.7"}});
    for (body, want) in [
        (
            json!({"pattern": {"source": ["appointments"], "detail.status": ["completed"]}, "event": event}),
            true,
        ),
        (
            json!({"pattern": {"detail": {"ip": [{"cidr": "10.0.0.0/24"}]}}, "event": event}),
            true,
        ),
        (
            json!({"pattern": {"detail": {"status": [{"anything-but": {"wildcard": "comp*"}}]}}, "event": event}),
            false,
        ),
        // The cloud's API takes both as strings holding JSON.
        (
            json!({"pattern": "{\"source\": [\"appointments\"]}", "event": event.to_string()}),
            true,
        ),
        (
            json!({"kind": "filter_policy", "pattern": {"country": ["PE"]}, "event": {"country": "[\"CL\", \"PE\"]"}}),
            true,
        ),
        (
            json!({"kind": "filter_policy_body", "pattern": {"amount": [{"numeric": [">=", 100]}]}, "event": {"amount": 99}}),
            false,
        ),
    ] {
        let (code, r) = post(&s, "/admin/v1/test-event-pattern", body.clone()).await;
        assert_eq!((code, &r), (200, &json!({"result": want})), "{body}");
    }
    for (body, reason) in [
        (
            json!({"pattern": {"a": [{"wildcard": "a**"}]}, "event": event}),
            "Event pattern is not valid. Reason: .a: Consecutive wildcard characters at pos 1",
        ),
        (
            json!({"pattern": {"a": ["x"]}, "event": {"a": "x"}}),
            "Parameter Event is not valid: the event has no `id`",
        ),
        (
            json!({"kind": "filter_policy", "pattern": {"a": {"b": ["x"]}}, "event": {}}),
            "Invalid parameter: FilterPolicy: .a: a filter policy on message attributes cannot nest objects",
        ),
        (
            json!({"pattern": {"a": ["x"]}}),
            "expected {\"kind\", \"pattern\", \"event\"}",
        ),
        (
            json!({"kind": "regex", "pattern": {}, "event": {}}),
            "unknown variant `regex`",
        ),
    ] {
        let (code, r) = post(&s, "/admin/v1/test-event-pattern", body.clone()).await;
        assert_eq!(code, 400, "{body}: {r}");
        assert!(
            r["detail"].as_str().is_some_and(|d| d.contains(reason)),
            "{body}: {r}"
        );
    }
    let r = s
        .client
        .post(format!("{}/admin/v1/test-event-pattern", s.url))
        .json(&json!({"pattern": {}, "event": event}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    s.shutdown().await;
}

/// Hostile patterns: huge, deep, explosive wildcards, broken JSON. Each is a 400 that
/// comes back quickly, and the service keeps answering.
#[tokio::test]
async fn hostile_patterns_are_refused_quickly() {
    let s = TestServer::start(&[], &[], |_| {}).await;
    let event = json!({"version": "0", "id": "1", "detail-type": "t", "source": "s",
        "account": "a", "time": "t", "region": "r", "resources": [], "detail": {"k": "a".repeat(100_000)}});
    let deep = (0..100).fold(json!(["x"]), |inner, _| json!({ "a": inner }));
    let huge = json!({"a": (0..5000).map(|i| json!(i)).collect::<Vec<_>>()});
    // Thousands of distinct characters after stars: the complexity check must give up
    // quickly rather than walk every state.
    let stars: String = (0..600u32)
        .filter_map(|i| char::from_u32(0x4e00 + i))
        .flat_map(|c| ['*', c])
        .collect();
    let wide = json!({"detail": {"k": [{"wildcard": stars}]}});
    let explosive = json!({"detail": {"k": (0..40).map(|i| json!({"wildcard": format!("*a*a*{i}*")})).collect::<Vec<_>>()}});
    for (name, body) in [
        ("deep", json!({"pattern": deep, "event": event})),
        ("huge", json!({"pattern": huge, "event": event})),
        ("wide wildcard", json!({"pattern": wide, "event": event})),
        (
            "explosive wildcards",
            json!({"pattern": explosive, "event": event}),
        ),
    ] {
        let started = Instant::now();
        let (code, r) = post(&s, "/admin/v1/test-event-pattern", body).await;
        assert_eq!(code, 400, "{name}: {r}");
        assert!(
            r["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("Event pattern is not valid")),
            "{name}: {r}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{name} took {:?}",
            started.elapsed()
        );
    }
    // Not JSON at all, and JSON nested past the parser's limit.
    for body in ["{\"pattern\": {", &"[".repeat(10_000)] {
        let r = s
            .client
            .post(format!("{}/admin/v1/test-event-pattern", s.url))
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400);
    }
    // A long value against an accepted wildcard still answers at once.
    let started = Instant::now();
    let (code, r) = post(
        &s,
        "/admin/v1/test-event-pattern",
        json!({"pattern": {"detail": {"k": [{"wildcard": "*a*b"}]}}, "event": event}),
    )
    .await;
    assert_eq!((code, r), (200, json!({"result": false})));
    assert!(started.elapsed() < Duration::from_secs(5));
    let (code, _) = post(
        &s,
        "/admin/v1/test-event-pattern",
        json!({"pattern": {"source": ["s"]}, "event": event}),
    )
    .await;
    assert_eq!(code, 200, "the service still answers");
    s.shutdown().await;
}

/// Bus rule targets receive what `input`, `input_path` or `input_transformer` makes of
/// the event, as EventBridge's targets do; a target without them gets the event.
#[tokio::test]
async fn rule_targets_receive_their_transformed_input() {
    let tenant = r#"
[queues.whole]
[queues.detail]
[queues.constant]
[queues.shaped]
[queues.text]

[[buses.default.rules]]
name = "orders"
pattern = { source = ["shop"], "detail.status" = ["paid"] }
targets = [
  { queue = "whole" },
  { queue = "detail", input_path = "$.detail" },
  { queue = "constant", input = { kind = "fixed" } },
  { queue = "shaped", input_transformer = { input_paths_map = { id = "$.detail.order-id", total = "$.detail.total" }, input_template = '{"order": <id>, "total": <total>, "rule": "<aws.events.rule-name>", "note": "order <id> paid"}' } },
  { queue = "text", input_transformer = { input_paths_map = { id = "$.detail.order-id" }, input_template = '"order <id> is paid"' } },
]
"#;
    let s = TestServer::start(&[], &[("acme", tenant)], |_| {}).await;
    for status in ["paid", "open"] {
        let (code, r) = post(
            &s,
            "/admin/v1/tenants/acme/buses/default/events",
            json!({ "source": "shop", "detail_type": "OrderPaid",
                    "detail": { "status": status, "order-id": "A-7", "total": 12.5 } }),
        )
        .await;
        assert_eq!(code, 200, "{r}");
    }
    let whole = bodies(&s, "whole").await;
    assert_eq!(whole.len(), 1, "{whole:?}");
    assert_eq!(whole[0]["detail-type"], "OrderPaid");
    assert_eq!(
        bodies(&s, "detail").await,
        vec![json!({"status": "paid", "order-id": "A-7", "total": 12.5})]
    );
    assert_eq!(bodies(&s, "constant").await, vec![json!({"kind": "fixed"})]);
    assert_eq!(
        bodies(&s, "shaped").await,
        vec![json!({"order": "A-7", "total": 12.5, "rule": "orders", "note": "order A-7 paid"})]
    );
    // A text result is the message body as it is.
    let r = s.admin("tenants/acme/queues/text/messages").await;
    assert_eq!(r["messages"][0]["body"], "order A-7 is paid", "{r}");
    s.shutdown().await;
}

/// Attack: an input template that repeats the whole event fills to tens of megabytes
/// for an event near the size cap; the fill stops at the cap and the put is refused,
/// naming it, and nothing reaches the target.
#[tokio::test]
async fn an_amplifying_input_template_is_refused_at_the_cap() {
    let template = "<aws.events.event>".repeat(450);
    let tenant = format!(
        r#"
[queues.amplified]

[[buses.default.rules]]
name = "amp"
pattern = {{ source = ["amp"] }}
targets = [{{ queue = "amplified", input_transformer = {{ input_template = "{template}" }} }}]
"#
    );
    let s = TestServer::start(&[], &[("acme", &tenant)], |_| {}).await;
    let started = Instant::now();
    let (code, r) = post(
        &s,
        "/admin/v1/tenants/acme/buses/default/events",
        json!({ "source": "amp", "detail_type": "Big", "detail": { "blob": "x".repeat(200 * 1024) } }),
    )
    .await;
    assert_eq!(code, 400, "{r}");
    assert!(
        r["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("fills past 262144 bytes"),
        "{r}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(bodies(&s, "amplified").await.is_empty());
    // A small event fits: 450 copies of it stay under the cap.
    let (code, r) = post(
        &s,
        "/admin/v1/tenants/acme/buses/default/events",
        json!({ "source": "amp", "detail_type": "Small", "detail": {} }),
    )
    .await;
    assert_eq!(code, 200, "{r}");
    s.shutdown().await;
}
