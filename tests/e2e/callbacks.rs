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
            (400, Some("InvalidToken")),
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
