//! `Lambda.ResourceNotFoundException` raised by the service itself: an execution runs the
//! definition it started with, so after its tenant stops serving a plugin, the
//! execution's Task naming that plugin fails as a Step Functions Task fails whose Lambda
//! function is gone (docs/WORKFLOWS.md, "Host errors in a Task"). The error is the
//! execution's error, and a Catch on that name catches it.

use std::time::Duration;

use orquesta_tests::server::{ADMIN_TOKEN, TestServer, WorkflowAdmin};
use serde_json::{Value, json};

/// The tenant while it serves `helper`, and after (`helper` gone, every workflow
/// pointing at a definition that does not name it).
fn tenant(with_helper: bool) -> String {
    let (helper, definition) = if with_helper {
        ("[plugins.helper]\nsource = \"hostile.wasm\"\n", None)
    } else {
        ("", Some("after.asl.json"))
    };
    let def = |name: &str| definition.map_or(format!("{name}.asl.json"), str::to_string);
    format!(
        r#"
[plugins.worker]
source = "hostile.wasm"
{helper}
[workflows.direct]
definition = "{}"

[workflows.guarded]
definition = "{}"

[workflows.caught]
definition = "{}"
"#,
        def("direct"),
        def("guarded"),
        def("caught"),
    )
}

/// Long enough for the tenant edit to land while the executions wait.
const PAUSE_SECONDS: u64 = 4;

fn call_helper(extra: Value) -> Value {
    let mut task = json!({"Type": "Task", "Resource": "helper",
                          "Parameters": {"attack": "nap", "ms": 1}, "End": true});
    if let (Some(task), Value::Object(extra)) = (task.as_object_mut(), extra) {
        task.extend(extra);
    }
    task
}

fn write_definitions(dir: &std::path::Path) {
    let pause = json!({"Type": "Wait", "Seconds": PAUSE_SECONDS, "Next": "Call"});
    let definitions = [
        (
            "direct",
            json!({"StartAt": "Call", "States": {"Call": call_helper(json!({}))}}),
        ),
        (
            "guarded",
            json!({"StartAt": "Pause", "States": {"Pause": pause.clone(), "Call": call_helper(json!({}))}}),
        ),
        (
            "caught",
            json!({"StartAt": "Pause", "States": {
                "Pause": pause,
                "Call": call_helper(json!({"Catch": [{"ErrorEquals": ["Lambda.ResourceNotFoundException"],
                                                      "ResultPath": "$.refused", "Next": "Refused"}]})),
                "Refused": {"Type": "Pass", "End": true}
            }}),
        ),
        (
            "after",
            json!({"StartAt": "Call", "States": {"Call": {"Type": "Task", "Resource": "worker",
                   "Parameters": {"attack": "nap", "ms": 1}, "End": true}}}),
        ),
    ];
    std::fs::create_dir_all(dir).unwrap();
    for (name, definition) in definitions {
        std::fs::write(dir.join(format!("{name}.asl.json")), definition.to_string()).unwrap();
    }
}

fn history_types(history: &[Value]) -> Vec<String> {
    history
        .iter()
        .filter_map(|e| e["type"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn a_task_on_a_plugin_the_tenant_no_longer_serves_fails_as_a_missing_function() {
    let s = TestServer::start(&["hostile"], &[("acme", &tenant(true))], |c| {
        write_definitions(&c.tenant_dir)
    })
    .await;
    let admin = WorkflowAdmin::new(&s.url, "acme", ADMIN_TOKEN);

    // While the tenant serves `helper`, its Task succeeds.
    let id = admin.start("direct", json!({})).await;
    let done = admin.finished(&id, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");

    let guarded = admin.start("guarded", json!({"order": 7})).await;
    let caught = admin.start("caught", json!({"order": 8})).await;
    // The tenant stops serving `helper` (a valid edit: no workflow names it any more).
    s.write_tenant("acme", &tenant(false));
    let state = s.reload().await;
    let acme = state["tenants"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "acme"))
        .cloned()
        .unwrap_or(Value::Null);
    assert!(acme["error"].is_null(), "the edit was refused: {state}");
    assert_eq!(acme["plugins"], json!(["worker"]), "{state}");
    // Both are still waiting: their Task runs under the new version of the tenant.
    for id in [&guarded, &caught] {
        let history = history_types(&admin.history(id).await);
        assert!(
            !history.iter().any(|t| t == "TaskScheduled"),
            "the edit landed after the Task ran ({PAUSE_SECONDS} s pause): {history:?}"
        );
    }

    let done = admin.finished(&guarded, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "FAILED", "{done}");
    assert_eq!(done["error"], "Lambda.ResourceNotFoundException", "{done}");
    assert_eq!(
        done["cause"], "`helper` is not one of the tenant's plugins",
        "{done}"
    );
    let history = admin.history(&guarded).await;
    let failed = history
        .iter()
        .find(|e| e["type"] == "TaskFailed")
        .unwrap_or_else(|| panic!("no TaskFailed in {history:?}"));
    assert_eq!(failed["state"], "Call", "{failed}");
    assert_eq!(history.last().unwrap()["type"], "ExecutionFailed");

    let done = admin.finished(&caught, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(
        done["output"],
        json!({"order": 8, "refused": {
            "Error": "Lambda.ResourceNotFoundException",
            "Cause": "`helper` is not one of the tenant's plugins"
        }}),
        "{done}"
    );
    s.shutdown().await;
}
