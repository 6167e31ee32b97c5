//! Workflows through the service: executions started from the admin API, a plugin and a
//! bus rule; Task, Choice, Parallel, Map and Wait states on real plugins; history; stop;
//! a definition refused at load; and 100 executions surviving a SIGKILL of their host.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use orquesta_tests::plugin;
use orquesta_tests::server::{ADMIN_TOKEN, ServeProcess, TestServer, WorkflowAdmin};
use orquesta_tests::wait::wait_until;
use serde_json::{Value, json};

const TENANT: &str = r#"
[plugins.worker]
source = "hostile.wasm"
allow = { workflows = ["pipeline"] }

[[routes]]
method = "POST"
path = "/probe"
plugin = "worker"

[workflows.pipeline]
definition = "pipeline.asl.json"

[workflows.slow]
definition = "slow.asl.json"

[buses.default]
rules = [{ name = "orders", pattern = { source = ["shop"] }, targets = [{ workflow = "pipeline" }] }]
"#;

fn pipeline() -> Value {
    let task = |ms: u64| {
        json!({"Type": "Task", "Resource": "worker",
               "Parameters": {"attack": "nap", "ms": ms}, "End": true})
    };
    json!({
        "Comment": "every state type on a real plugin",
        "StartAt": "Nap",
        "States": {
            "Nap": {"Type": "Task", "Resource": "worker",
                    "Parameters": {"attack": "nap", "ms": 10}, "ResultPath": "$.nap", "Next": "Which"},
            "Which": {"Type": "Choice", "Choices": [
                {"And": [{"Variable": "$.mode", "IsPresent": true},
                         {"Variable": "$.mode", "StringEquals": "fail"}], "Next": "Broken"}
            ], "Default": "Both"},
            "Broken": {"Type": "Task", "Resource": "worker", "Parameters": {"attack": "nope"},
                       "Retry": [{"ErrorEquals": ["UnknownAttack"], "MaxAttempts": 1, "IntervalSeconds": 1}],
                       "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Failed"}],
                       "End": true},
            "Failed": {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"},
            "Both": {"Type": "Parallel", "Branches": [
                {"StartAt": "A", "States": {"A": task(20)}},
                {"StartAt": "B", "States": {"B": task(30)}}
            ], "ResultSelector": {"a.$": "$[0].slept_ms", "b.$": "$[1].slept_ms"},
               "ResultPath": "$.both", "Next": "Each"},
            "Each": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 2,
                     "ItemSelector": {"attack": "nap", "ms.$": "$$.Map.Item.Value"},
                     "ItemProcessor": {"StartAt": "Item", "States": {"Item": {"Type": "Task", "Resource": "worker", "End": true}}},
                     "ResultPath": "$.each", "Next": "Rest"},
            "Rest": {"Type": "Wait", "Seconds": 1, "Next": "Done"},
            "Done": {"Type": "Succeed"}
        }
    })
}

fn slow() -> Value {
    json!({"StartAt": "Long", "States": {"Long": {"Type": "Wait", "Seconds": 600, "End": true}}})
}

fn write_definitions(dir: &std::path::Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("pipeline.asl.json"), pipeline().to_string()).unwrap();
    std::fs::write(dir.join("slow.asl.json"), slow().to_string()).unwrap();
}

#[tokio::test]
async fn executions_run_every_state_type_on_real_plugins() {
    let s = TestServer::start(&["hostile"], &[("acme", TENANT)], |c| {
        write_definitions(&c.tenant_dir)
    })
    .await;
    let admin = WorkflowAdmin::new(&s.url, "acme", ADMIN_TOKEN);

    let id = admin.start("pipeline", json!({"items": [5, 6, 7]})).await;
    let done = admin.finished(&id, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let out = &done["output"];
    assert_eq!(out["nap"], json!({"slept_ms": 10}));
    assert_eq!(out["both"], json!({"a": 20, "b": 30}));
    assert_eq!(
        out["each"],
        json!([{"slept_ms": 5}, {"slept_ms": 6}, {"slept_ms": 7}])
    );
    let history = admin.history(&id).await;
    let entered: Vec<&str> = history
        .iter()
        .filter(|e| e["type"] == "StateEntered")
        .filter_map(|e| e["state"].as_str())
        .collect();
    assert_eq!(entered, ["Nap", "Which", "Both", "Each", "Rest", "Done"]);
    assert_eq!(history.last().unwrap()["type"], "ExecutionSucceeded");

    // A plugin's typed error is retried, caught, and ends in a Fail state.
    let id = admin.start("pipeline", json!({"mode": "fail"})).await;
    let done = admin.finished(&id, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "FAILED");
    assert_eq!(done["error"], "UnknownAttack");
    let history = admin.history(&id).await;
    assert_eq!(
        history.iter().filter(|e| e["type"] == "TaskFailed").count(),
        2,
        "one try and one retry"
    );
    assert!(history.iter().any(|e| e["type"] == "ErrorCaught"));

    // Started by a plugin (messaging.start-execution) and by a bus rule.
    let r: Value = s
        .client
        .post(format!("{}/t/acme/probe", s.url))
        .json(&json!({"attack": "start-execution", "workflow": "pipeline", "input": {"items": []}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let from_plugin = r["execution_id"]
        .as_str()
        .expect("an execution id")
        .to_string();
    assert_eq!(
        admin.finished(&from_plugin, Duration::from_secs(30)).await["status"],
        "SUCCEEDED"
    );
    let (status, _) = admin
        .call(
            reqwest::Method::POST,
            "/tenants/acme/buses/default/events",
            Some(json!({"source": "shop", "detail_type": "order", "detail": {"id": 1}})),
        )
        .await;
    assert_eq!(status, 200);
    let started = Instant::now();
    loop {
        let (_, list) = admin
            .call(
                reqwest::Method::GET,
                "/tenants/acme/executions?workflow=pipeline",
                None,
            )
            .await;
        let from_bus = list["executions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["input"]["source"] == "shop")
            .cloned();
        if let Some(e) = from_bus {
            // The envelope has no `items`: the Map state fails the execution.
            let id = e["execution_id"].as_str().unwrap().to_string();
            let done = admin.finished(&id, Duration::from_secs(30)).await;
            assert_eq!(done["error"], "States.Runtime", "{done}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{list}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A waiting execution is stopped; stopping it again is a conflict.
    let id = admin.start("slow", json!({})).await;
    wait_until(
        "the execution to wait in Long",
        Duration::from_secs(10),
        async || admin.describe(&id).await["current_state"] == "Long",
    )
    .await;
    let stop = format!("/tenants/acme/executions/{id}/stop");
    let (status, _) = admin
        .call(
            reqwest::Method::POST,
            &stop,
            Some(json!({"error": "Cancelled"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(admin.describe(&id).await["status"], "ABORTED");
    assert_eq!(admin.call(reqwest::Method::POST, &stop, None).await.0, 409);

    // Names make starts idempotent; unknown workflows and bad bodies are refused.
    let path = "/tenants/acme/workflows/slow/executions";
    let body = json!({"input": {"k": 1}, "name": "once"});
    let (first, a) = admin
        .call(reqwest::Method::POST, path, Some(body.clone()))
        .await;
    let (again, b) = admin.call(reqwest::Method::POST, path, Some(body)).await;
    assert_eq!((first, again), (201, 200));
    assert_eq!(a["execution_id"], b["execution_id"]);
    let (other, _) = admin
        .call(
            reqwest::Method::POST,
            path,
            Some(json!({"input": {"k": 2}, "name": "once"})),
        )
        .await;
    assert_eq!(other, 409);
    let (missing, _) = admin
        .call(
            reqwest::Method::POST,
            "/tenants/acme/workflows/nope/executions",
            None,
        )
        .await;
    assert_eq!(missing, 404);
    let (bad, _) = admin
        .call(reqwest::Method::POST, path, Some(json!({"inputs": 1})))
        .await;
    assert_eq!(bad, 400);

    // An invalid definition is refused at load; the last good config keeps serving.
    std::fs::write(
        s.tenant_dir().join("slow.asl.json"),
        json!({"StartAt": "Gone", "States": {"Long": {"Type": "Succeed"}}}).to_string(),
    )
    .unwrap();
    s.reload().await;
    let tenants = s.admin("tenants").await;
    let acme = &tenants["tenants"][0];
    assert!(
        acme["error"]
            .as_str()
            .unwrap_or_default()
            .contains("workflows.slow"),
        "{tenants}"
    );
    assert_eq!(admin.start("slow", json!({})).await.len(), 36);
    s.shutdown().await;
}

const PROCESS_CONFIG: &str = r#"
listen = "127.0.0.1:0"
data_dir = "data"
plugin_dir = "plugins"
tenant_dir = "tenants"
admin_token = { file = "admin-token" }
"#;

/// Two tasks around a wait, each counted by the plugin, retried if interrupted.
pub(crate) fn durable() -> Value {
    let task = |name: &str, next: &str| {
        json!({"Type": "Task", "Resource": "worker",
               "Parameters": {"attack": "nap", "ms": 150, "count": true},
               "ResultSelector": {"ms.$": "$.slept_ms"}, "ResultPath": format!("$.{name}"),
               "Retry": [{"ErrorEquals": ["States.TaskFailed"], "MaxAttempts": 2, "IntervalSeconds": 1}],
               "Next": next})
    };
    json!({
        "StartAt": "First",
        "States": {
            "First": task("first", "Pause"),
            "Pause": {"Type": "Wait", "Seconds": 2, "Next": "Second"},
            "Second": task("second", "Done"),
            "Done": {"Type": "Pass",
                     "Parameters": {"n.$": "$.n", "total.$": "States.MathAdd($.first.ms, $.second.ms)"},
                     "End": true}
        }
    })
}

#[tokio::test]
async fn a_hundred_executions_survive_a_sigkill_and_no_completed_state_runs_again() {
    const N: usize = 100;
    let dir = tempfile::tempdir().unwrap();
    for sub in ["plugins", "tenants"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    std::fs::copy(plugin("hostile"), dir.path().join("plugins/hostile.wasm")).unwrap();
    std::fs::write(dir.path().join("admin-token"), ADMIN_TOKEN).unwrap();
    std::fs::write(
        dir.path().join("tenants/acme.toml"),
        r#"
[plugins.worker]
source = "hostile.wasm"

[[routes]]
method = "POST"
path = "/probe"
plugin = "worker"

[workflows.durable]
definition = "durable.asl.json"
"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("tenants/durable.asl.json"),
        durable().to_string(),
    )
    .unwrap();

    let server = ServeProcess::start(dir.path(), PROCESS_CONFIG, &[]);
    let admin = WorkflowAdmin::new(&server.url, "acme", ADMIN_TOKEN);
    let mut ids = Vec::new();
    for n in 0..N {
        ids.push(admin.start("durable", json!({ "n": n })).await);
    }
    // Kill the host while executions are in tasks and waits: once some wait in Pause.
    wait_until(
        "an execution waiting in Pause",
        Duration::from_secs(30),
        async || {
            let (_, running) = admin
                .call(
                    reqwest::Method::GET,
                    "/tenants/acme/executions?status=RUNNING&limit=1000",
                    None,
                )
                .await;
            running["executions"]
                .as_array()
                .is_some_and(|all| all.iter().any(|e| e["current_state"] == "Pause"))
        },
    )
    .await;
    let (_, running) = admin
        .call(
            reqwest::Method::GET,
            "/tenants/acme/executions?status=RUNNING&limit=1000",
            None,
        )
        .await;
    let running = running["executions"].as_array().map_or(0, Vec::len);
    assert!(
        running > 0,
        "some executions are still running when the host dies"
    );
    drop(server); // SIGKILL

    let server = ServeProcess::start(dir.path(), PROCESS_CONFIG, &[]);
    let admin = WorkflowAdmin::new(&server.url, "acme", ADMIN_TOKEN);
    let mut interrupted_total = 0;
    for (n, id) in ids.iter().enumerate() {
        interrupted_total += durable_completed_once(&admin, &server.url, "acme", n, id).await;
    }
    eprintln!("{interrupted_total} task calls were cut by the kill and retried");
}

/// Waits for execution `id` of `durable` (input `n`) on `tenant`, served at `url`, and
/// checks it succeeded with each state completed once and each task run by the plugin
/// once, plus once more only where a kill cut its call. Returns the calls cut.
pub(crate) async fn durable_completed_once(
    admin: &WorkflowAdmin,
    url: &str,
    tenant: &str,
    n: usize,
    id: &str,
) -> u64 {
    let done = admin.finished(id, Duration::from_secs(120)).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(done["output"], json!({"n": n, "total": 300}));
    let history = admin.history(id).await;
    // Each state completed once: one StateExited and at most one success each.
    let mut exited: BTreeMap<String, usize> = BTreeMap::new();
    let mut interrupted: BTreeMap<String, u64> = BTreeMap::new();
    for e in &history {
        let state = e["state"].as_str().unwrap_or_default().to_string();
        match e["type"].as_str() {
            Some("StateExited") => *exited.entry(state).or_default() += 1,
            Some("TaskFailed") if e["detail"]["interrupted"] == json!(true) => {
                *interrupted.entry(state).or_default() += 1
            }
            _ => {}
        }
    }
    for state in ["First", "Pause", "Second", "Done"] {
        assert_eq!(exited.get(state), Some(&1), "{id}: {state} in {history:?}");
    }
    // The plugin ran each task once, plus once more only where the kill cut a call.
    let mut cut_total = 0;
    for state in ["First", "Second"] {
        let key = format!("runs:{id}:{state}");
        let r: Value = reqwest::Client::new()
            .post(format!("{url}/t/{tenant}/probe"))
            .json(&json!({"attack": "kv-read", "key": key}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let runs: u64 = r["found"][format!("default/{key}")]
            .as_str()
            .unwrap_or("0")
            .parse()
            .unwrap();
        let cut = interrupted.get(state).copied().unwrap_or(0);
        cut_total += cut;
        // A call cut before the plugin counted it leaves one run fewer.
        assert!(
            (1..=1 + cut).contains(&runs),
            "{id}: {state} ran {runs} times, {cut} interrupted"
        );
    }
    cut_total
}
