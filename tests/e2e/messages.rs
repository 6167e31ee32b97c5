//! Messages through the service: topic publications, queue messages and bus events are
//! capped at 256 KiB (body and attributes) or less where a tenant says so, from plugins
//! and from the admin API; and a plugin that feeds its own topic, queue, bus or workflow
//! stops after 16 invocations, counted in `orquesta_recursion_stopped_total`.

use std::time::{Duration, Instant};

use orquesta_tests::server::{TestServer, post};
use orquesta_tests::wait::{holds_for, wait_until};
use serde_json::{Value, json};

const CAP: usize = 256 << 10;

const CAPPED: &str = r#"
[plugins.worker]
source = "hostile.wasm"
allow = { topics = ["news"], queues = ["jobs"], buses = ["default"] }

[[routes]]
method = "POST"
path = "/act"
plugin = "worker"

[queues.jobs]
[topics.news]
subscriptions = [{ queue = "jobs" }]
[buses.default]
rules = [{ name = "all", pattern = { source = ["x"] }, targets = [{ queue = "jobs" }] }]
"#;

#[tokio::test]
async fn messages_past_256_kib_are_refused_naming_the_cap() {
    let small = format!("[limits]\nmax_message_kb = 1\n{CAPPED}");
    let s = TestServer::start(
        &["hostile"],
        &[("capped", CAPPED), ("small", &small)],
        |_| {},
    )
    .await;
    let refused = |code: u16, r: &Value, cap: usize| {
        assert_eq!(code, 400, "{r}");
        let detail = r["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains(&format!("at most {cap} bytes")) && detail.contains("max_message_kb"),
            "{r}"
        );
    };
    // At the cap exactly, body and attributes together: accepted.
    let attributes = json!({ "k": "vvvv" });
    let body = "x".repeat(CAP - 5);
    for (path, payload) in [
        (
            "/admin/v1/tenants/capped/topics/news/messages",
            json!({ "body": body, "attributes": attributes }),
        ),
        (
            "/admin/v1/tenants/capped/queues/jobs/messages",
            json!({ "body": body, "attributes": attributes }),
        ),
    ] {
        let (code, r) = post(&s, path, payload).await;
        assert_eq!(code, 200, "{path}: {r}");
    }
    // One byte more, in the attributes: refused, topic and queue alike.
    let attributes = json!({ "k": "vvvvv" });
    for path in [
        "/admin/v1/tenants/capped/topics/news/messages",
        "/admin/v1/tenants/capped/queues/jobs/messages",
    ] {
        let (code, r) = post(&s, path, json!({ "body": body, "attributes": attributes })).await;
        refused(code, &r, CAP);
    }
    // A bus event counts its source, detail type and detail.
    let (code, r) = post(
        &s,
        "/admin/v1/tenants/capped/buses/default/events",
        json!({ "source": "x", "detail_type": "t", "detail": { "d": "y".repeat(CAP) } }),
    )
    .await;
    refused(code, &r, CAP);

    // From a plugin: the call fails `invalid`, naming the cap.
    for input in [
        json!({ "attack": "publish", "topic": "news", "body": "z".repeat(CAP) }),
        json!({ "attack": "put-event", "bus": "default", "source": "x", "detail_type": "t",
                "detail": "z".repeat(CAP) }),
    ] {
        let r = s
            .client
            .post(format!("{}/t/capped/act", s.url))
            .json(&input)
            .send()
            .await
            .unwrap();
        let text = r.text().await.unwrap();
        assert!(
            text.contains("Invalid") && text.contains(&format!("at most {CAP} bytes")),
            "{text}"
        );
    }

    // A tenant that sets less gets less.
    let (code, r) = post(
        &s,
        "/admin/v1/tenants/small/topics/news/messages",
        json!({ "body": "x".repeat(1100) }),
    )
    .await;
    refused(code, &r, 1024);
    let (code, r) = post(
        &s,
        "/admin/v1/tenants/small/queues/jobs/messages",
        json!({ "body": "x".repeat(1000) }),
    )
    .await;
    assert_eq!(code, 200, "{r}");
    let peek = s.admin("tenants/capped/queues/jobs/messages").await;
    assert_eq!(peek["messages"].as_array().map(Vec::len), Some(2), "{peek}");
    s.shutdown().await;
}

const LOOPS: &str = r#"
[plugins.tlooper]
source = "hostile.wasm"
allow = { topics = ["echo"] }

[plugins.qlooper]
source = "hostile.wasm"
allow = { queues = ["again"] }

[plugins.blooper]
source = "hostile.wasm"
allow = { buses = ["default"] }

[plugins.wlooper]
source = "hostile.wasm"
allow = { workflows = ["again"] }

[topics.echo]
subscriptions = [{ plugin = "tlooper" }]

[queues.again]
consumer = { plugin = "qlooper", batch_size = 1 }

[buses.default]
rules = [{ name = "back", pattern = { source = ["loop"] }, targets = [{ plugin = "blooper" }] }]

[workflows.again]
definition = "again.asl.json"
"#;

/// A workflow whose one task starts the same workflow again.
fn again() -> Value {
    json!({"StartAt": "Again", "States": {"Again": {"Type": "Task", "Resource": "wlooper",
        "Parameters": {"attack": "start-execution", "workflow": "again", "input": {}},
        "End": true}}})
}

#[tokio::test]
async fn a_plugin_feeding_its_own_topic_queue_bus_or_workflow_stops_after_16_invocations() {
    let s = TestServer::start(&["hostile"], &[("loops", LOOPS)], |c| {
        std::fs::create_dir_all(&c.tenant_dir).unwrap();
        std::fs::write(c.tenant_dir.join("again.asl.json"), again().to_string()).unwrap();
    })
    .await;
    let starts = [
        (
            "topic",
            "tlooper",
            "/admin/v1/tenants/loops/topics/echo/messages",
            json!({ "body": { "attack": "republish" } }),
        ),
        (
            "queue",
            "qlooper",
            "/admin/v1/tenants/loops/queues/again/messages",
            json!({ "body": { "attack": "resend" } }),
        ),
        (
            "bus",
            "blooper",
            "/admin/v1/tenants/loops/buses/default/events",
            json!({ "source": "loop", "detail_type": "again", "detail": { "attack": "re-put" } }),
        ),
        (
            "workflow",
            "wlooper",
            "/admin/v1/tenants/loops/workflows/again/executions",
            json!({ "input": {} }),
        ),
    ];
    for (kind, plugin, path, body) in starts {
        let (code, r) = post(&s, path, body).await;
        assert!(code < 300, "{kind}: {r}");
        let stopped = [("tenant", "loops"), ("kind", kind)];
        let started = Instant::now();
        while s.metric("orquesta_recursion_stopped_total", &stopped).await < 1.0 {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the {kind} loop was never stopped"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let invoked = [("tenant", "loops"), ("plugin", plugin)];
        let invocations = || s.metric("orquesta_invocations_total", &invoked);
        // The 16th invocation is counted once it returns, after the stop it caused.
        wait_until(
            &format!("{kind}: 16 invocations of {plugin}"),
            Duration::from_secs(20),
            async || invocations().await >= 16.0,
        )
        .await;
        // A negative wait: whatever was still on its way would arrive within it.
        holds_for(
            &format!("{kind}: 16 invocations of {plugin}, no more"),
            Duration::from_millis(1500),
            async || invocations().await == 16.0,
        )
        .await;
        assert_eq!(
            s.metric("orquesta_recursion_stopped_total", &stopped).await,
            1.0,
            "{kind}: stopped once"
        );
    }
    // The 17th execution is there, failed without invoking its task.
    let listed = s.admin("tenants/loops/executions?workflow=again").await;
    let executions = listed["executions"].as_array().unwrap();
    assert_eq!(executions.len(), 17, "{listed}");
    let failed: Vec<&Value> = executions
        .iter()
        .filter(|e| e["status"] == "FAILED")
        .collect();
    assert_eq!(failed.len(), 1, "{listed}");
    assert_eq!(failed[0]["error"], "RecursiveInvocationException");
    s.shutdown().await;
}
