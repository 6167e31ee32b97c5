//! Callback tasks and redrive through the service's admin API, on a real plugin:
//! SendTaskSuccess / SendTaskFailure / SendTaskHeartbeat by token, another tenant's
//! attempt with the token, a token used twice, and RedriveExecution of the failure.

use std::time::Duration;

use orquesta_tests::server::{ADMIN_TOKEN, TestServer, WorkflowAdmin};
use orquesta_tests::wait::{wait_for, wait_until};
use serde_json::{Value, json};

const TENANT: &str = r#"
[plugins.worker]
source = "hostile.wasm"

[workflows.approval]
definition = "approval.asl.json"
"#;

/// As the cloud writes it: the Lambda integration with `.waitForTaskToken`.
fn approval() -> Value {
    json!({
        "StartAt": "Ask",
        "States": {
            "Ask": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {
                    "FunctionName": "worker",
                    "Payload": {"attack": "nap", "ms": 1, "token.$": "$$.Task.Token", "order.$": "$.order"}
                },
                "HeartbeatSeconds": 30,
                "TimeoutSeconds": 60,
                "ResultPath": "$.answer",
                "Next": "Count"
            },
            "Count": {"Type": "Pass", "Parameters": {"answer.$": "$.answer",
                      "redrives.$": "$$.Execution.RedriveCount"}, "End": true}
        }
    })
}

/// The token of the `n`th (from 1) scheduled task of an execution, from its history.
async fn token(admin: &WorkflowAdmin, id: &str, n: usize) -> String {
    wait_for(
        "the task to be scheduled",
        Duration::from_secs(20),
        async || {
            let history = admin.history(id).await;
            history
                .iter()
                .filter(|e| e["type"] == "TaskScheduled")
                .nth(n - 1)
                .and_then(|e| e["detail"]["input"]["token"].as_str())
                .map(str::to_string)
        },
    )
    .await
}

async fn send(admin: &WorkflowAdmin, tenant: &str, what: &str, body: Value) -> (u16, Value) {
    let path = format!("/tenants/{tenant}/tasks/{what}");
    admin.call(reqwest::Method::POST, &path, Some(body)).await
}

#[tokio::test]
async fn callback_tasks_are_answered_by_token_and_a_failure_is_redriven() {
    let s = TestServer::start(&["hostile"], &[("acme", TENANT), ("other", TENANT)], |c| {
        std::fs::create_dir_all(&c.tenant_dir).unwrap();
        std::fs::write(
            c.tenant_dir.join("approval.asl.json"),
            approval().to_string(),
        )
        .unwrap();
    })
    .await;
    let admin = WorkflowAdmin::new(&s.url, "acme", ADMIN_TOKEN);

    let id = admin.start("approval", json!({"order": 42})).await;
    let t = token(&admin, &id, 1).await;
    wait_until(
        "the plugin to have been called",
        Duration::from_secs(20),
        async || {
            admin
                .history(&id)
                .await
                .iter()
                .any(|e| e["type"] == "TaskSubmitted")
        },
    )
    .await;
    assert_eq!(admin.describe(&id).await["status"], "RUNNING");

    // Tenant `other` holds acme's token: it is unknown there, for each kind of answer.
    for (what, body) in [
        (
            "success",
            json!({"task_token": t, "output": {"forged": true}}),
        ),
        ("failure", json!({"task_token": t, "error": "Forged"})),
        ("heartbeat", json!({"task_token": t})),
    ] {
        let (status, problem) = send(&admin, "other", what, body).await;
        assert_eq!(
            (status, problem["title"].as_str()),
            (400, Some("TaskDoesNotExist")),
            "{what}: {problem}"
        );
    }
    let (status, _) = send(
        &admin,
        "acme",
        "success",
        json!({"task_token": "made-up", "output": 1}),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = send(&admin, "acme", "success", json!({"task_token": t})).await;
    assert_eq!(status, 400, "an output is required");

    let (status, _) = send(&admin, "acme", "heartbeat", json!({"taskToken": t})).await;
    assert_eq!(status, 200);
    let (status, body) = send(
        &admin,
        "acme",
        "success",
        json!({"task_token": t, "output": {"ok": true}}),
    )
    .await;
    assert_eq!((status, body), (200, json!({})));
    let done = admin.finished(&id, Duration::from_secs(20)).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(
        done["output"],
        json!({"answer": {"ok": true}, "redrives": 0})
    );
    // Used: answered once only, as the cloud answers a used token.
    let (status, problem) = send(&admin, "acme", "failure", json!({"task_token": t})).await;
    assert_eq!(
        (status, problem["title"].as_str()),
        (400, Some("TaskTimedOut"))
    );
    let (status, problem) = admin
        .call(
            reqwest::Method::POST,
            &format!("/tenants/acme/executions/{id}/redrive"),
            None,
        )
        .await;
    assert_eq!(
        (status, problem["title"].as_str()),
        (409, Some("ExecutionNotRedrivable"))
    );

    // A failure answer fails the execution; a redrive asks again with a new token.
    let id = admin.start("approval", json!({"order": 43})).await;
    let first = token(&admin, &id, 1).await;
    let (status, _) = send(
        &admin,
        "acme",
        "failure",
        json!({"task_token": first, "error": "Rejected", "cause": "over budget"}),
    )
    .await;
    assert_eq!(status, 200);
    let done = admin.finished(&id, Duration::from_secs(20)).await;
    assert_eq!(
        (done["error"].as_str(), done["cause"].as_str()),
        (Some("Rejected"), Some("over budget"))
    );
    let redrive = format!("/tenants/acme/executions/{id}/redrive");
    let (status, _) = admin
        .call(
            reqwest::Method::POST,
            &format!("/tenants/other/executions/{id}/redrive"),
            None,
        )
        .await;
    assert_eq!(status, 404, "another tenant cannot redrive it");
    let (status, body) = admin.call(reqwest::Method::POST, &redrive, None).await;
    assert_eq!((status, &body["redrive_count"]), (200, &json!(1)), "{body}");
    let second = token(&admin, &id, 2).await;
    assert_ne!(first, second);
    let (status, _) = send(
        &admin,
        "acme",
        "success",
        json!({"task_token": second, "output": "yes"}),
    )
    .await;
    assert_eq!(status, 200);
    let done = admin.finished(&id, Duration::from_secs(20)).await;
    assert_eq!(
        done["output"],
        json!({"answer": "yes", "redrives": 1}),
        "{done}"
    );
    assert_eq!(done["redrive_count"], 1);
    assert!(
        admin
            .history(&id)
            .await
            .iter()
            .any(|e| e["type"] == "ExecutionRedriven")
    );
    s.shutdown().await;
}

const ANSWERING: &str = r#"
[plugins.worker]
source = "hostile.wasm"
allow = { workflow_tasks = ["approval"] }

[plugins.stranger]
source = "hostile.wasm"

[workflows.approval]
definition = "approval.asl.json"

[[routes]]
method = "POST"
path = "/probe"
plugin = "worker"

[[routes]]
method = "POST"
path = "/stranger"
plugin = "stranger"
"#;

/// The worker keeps the token under the order's id and answers it later, from a route.
fn kept_approval() -> Value {
    json!({
        "StartAt": "Ask",
        "States": {
            "Ask": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {
                    "FunctionName": "worker",
                    "Payload": {"attack": "keep-token", "key.$": "$.order", "token.$": "$$.Task.Token"}
                },
                "HeartbeatSeconds": 60,
                "TimeoutSeconds": 120,
                "ResultPath": "$.answer",
                "Catch": [{"ErrorEquals": ["Rejected"], "ResultPath": "$.rejected", "Next": "Caught"}],
                "End": true
            },
            "Caught": {"Type": "Pass", "End": true}
        }
    })
}

/// What the plugin behind `route` of `tenant` answered to `input`.
async fn plugin_answer(s: &TestServer, tenant: &str, route: &str, input: Value) -> Value {
    let r = s
        .client
        .post(format!("{}/t/{tenant}/{route}", s.url))
        .json(&input)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn submitted(admin: &WorkflowAdmin, id: &str) {
    wait_until(
        "the plugin to have been called",
        Duration::from_secs(20),
        async || {
            admin
                .history(id)
                .await
                .iter()
                .any(|e| e["type"] == "TaskSubmitted")
        },
    )
    .await;
}

/// A plugin answers callback tasks through the contract (`workflow-tasks`), as a Lambda
/// with the SDK: the task's call keeps the token, a later HTTP request answers it, and
/// the execution waits until then. Attacks: another tenant's plugin with the token, a
/// plugin without the grant, a made-up token, a huge output or cause, a heartbeat flood.
#[tokio::test]
async fn plugins_answer_callback_tasks_through_the_contract_and_only_their_tenants() {
    let s = TestServer::start(
        &["hostile"],
        &[("acme", ANSWERING), ("other", ANSWERING)],
        |c| {
            std::fs::create_dir_all(&c.tenant_dir).unwrap();
            std::fs::write(
                c.tenant_dir.join("approval.asl.json"),
                kept_approval().to_string(),
            )
            .unwrap();
        },
    )
    .await;
    let admin = WorkflowAdmin::new(&s.url, "acme", ADMIN_TOKEN);
    let id = admin.start("approval", json!({"order": "o-1"})).await;
    submitted(&admin, &id).await;
    let t = token(&admin, &id, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(admin.describe(&id).await["status"], "RUNNING", "it waits");

    // Another tenant's plugin holding the token gets what a made-up token gets, word
    // for word: no oracle of what exists elsewhere.
    let forged = plugin_answer(
        &s,
        "other",
        "probe",
        json!({"attack": "task-success", "token": t, "output": {"forged": true}}),
    )
    .await;
    let made_up = plugin_answer(
        &s,
        "acme",
        "probe",
        json!({"attack": "task-success", "token": "A".repeat(43), "output": 1}),
    )
    .await;
    assert_eq!(forged["error"], "TaskDoesNotExist", "{forged}");
    assert_eq!(forged, made_up);
    for attack in ["task-failure", "task-heartbeat"] {
        let r = plugin_answer(&s, "other", "probe", json!({"attack": attack, "token": t})).await;
        assert_eq!(r["error"], "TaskDoesNotExist", "{attack}: {r}");
    }
    let r = plugin_answer(
        &s,
        "acme",
        "probe",
        json!({"attack": "task-success", "token": "not a token", "output": 1}),
    )
    .await;
    assert_eq!(r["error"], "InvalidToken", "{r}");
    // A plugin of the same tenant without the grant is denied, before any lookup.
    let r = plugin_answer(
        &s,
        "acme",
        "stranger",
        json!({"attack": "task-success", "token": t, "output": 1}),
    )
    .await;
    assert_eq!(r["error"], "Denied", "{r}");
    // Over the cloud's limits: InvalidOutput, and the task still waits.
    let r = plugin_answer(
        &s,
        "acme",
        "probe",
        json!({"attack": "task-success", "key": "o-1", "output_bytes": 300_000}),
    )
    .await;
    assert_eq!(r["error"], "InvalidOutput", "{r}");
    let r = plugin_answer(
        &s,
        "acme",
        "probe",
        json!({"attack": "task-failure", "key": "o-1", "cause_chars": 40_000}),
    )
    .await;
    assert_eq!(r["error"], "InvalidOutput", "{r}");
    // A heartbeat flood is cut at the per-invocation cap; each taken one is a write.
    let started = std::time::Instant::now();
    let r = plugin_answer(
        &s,
        "acme",
        "probe",
        json!({"attack": "task-heartbeat", "key": "o-1", "times": 5000}),
    )
    .await;
    assert_eq!(
        (r["sent"].as_u64(), r["error"].as_str()),
        (Some(1000), Some("Invalid")),
        "{r}"
    );
    eprintln!("1000 heartbeats and a refusal in {:?}", started.elapsed());
    assert_eq!(admin.describe(&id).await["status"], "RUNNING");

    // The honest answer, from the kept token: the execution completes with it.
    let r = plugin_answer(
        &s,
        "acme",
        "probe",
        json!({"attack": "task-success", "key": "o-1", "output": {"approved": true}}),
    )
    .await;
    assert_eq!(r, json!({"sent": 1}));
    let done = admin.finished(&id, Duration::from_secs(20)).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(done["output"]["answer"], json!({"approved": true}));
    let r = plugin_answer(
        &s,
        "acme",
        "probe",
        json!({"attack": "task-success", "key": "o-1", "output": 2}),
    )
    .await;
    assert_eq!(r["error"], "TaskTimedOut", "answered once: {r}");

    // SendTaskFailure: the state's Catch sees the plugin's error.
    let id = admin.start("approval", json!({"order": "o-2"})).await;
    submitted(&admin, &id).await;
    let r = plugin_answer(&s, "acme", "probe",
        json!({"attack": "task-failure", "key": "o-2", "error": "Rejected", "cause": "over budget"})).await;
    assert_eq!(r, json!({"sent": 1}));
    let done = admin.finished(&id, Duration::from_secs(20)).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(
        done["output"]["rejected"],
        json!({"Error": "Rejected", "Cause": "over budget"})
    );
    s.shutdown().await;
}
