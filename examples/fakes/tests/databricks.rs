//! The fake Databricks over HTTP: auth, run life cycle, idempotency, outputs.

use std::time::Duration;

use orquesta_fakes::databricks::{self, JOB1_ID, JOB2_ID};
use serde_json::{Value, json};

async fn fake(fail_job2: bool) -> String {
    let mut config = databricks::Config::demo("tok", Duration::from_millis(400));
    config.jobs.get_mut(&JOB2_ID).unwrap().fails = fail_job2;
    let addr = orquesta_fakes::spawn("127.0.0.1:0".parse().unwrap(), databricks::router(config))
        .await
        .unwrap();
    format!("http://{addr}")
}

async fn call(method: &str, url: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method.parse().unwrap(), url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let answer = req.send().await.unwrap();
    (answer.status().as_u16(), answer.json().await.unwrap())
}

#[tokio::test]
async fn calls_need_the_token() {
    let base = fake(false).await;
    let url = format!("{base}/api/2.1/jobs/runs/get?run_id=1");
    let (code, body) = call("GET", &url, None, None).await;
    assert_eq!(
        (code, body["error_code"].as_str()),
        (401, Some("UNAUTHENTICATED"))
    );
    let (code, body) = call("GET", &url, Some("wrong"), None).await;
    assert_eq!(
        (code, body["error_code"].as_str()),
        (403, Some("PERMISSION_DENIED"))
    );
    let (code, body) = call("GET", &url, Some("tok"), None).await;
    assert_eq!(
        (code, body["error_code"].as_str()),
        (400, Some("RESOURCE_DOES_NOT_EXIST"))
    );
}

#[tokio::test]
async fn runs_go_pending_running_terminated_and_tokens_dedupe() {
    let base = fake(true).await;
    let run_now = format!("{base}/api/2.1/jobs/run-now");
    let body = json!({ "job_id": JOB1_ID, "idempotency_token": "t-1",
                       "notebook_params": { "job_id": "j", "mostradores": "[\"7051602\"]" } });
    let (code, first) = call("POST", &run_now, Some("tok"), Some(body.clone())).await;
    assert_eq!(code, 200, "{first}");
    let (_, again) = call("POST", &run_now, Some("tok"), Some(body)).await;
    assert_eq!(first["run_id"], again["run_id"], "same token, same run");
    let run = first["run_id"].as_u64().unwrap();

    let get = format!("{base}/api/2.1/jobs/runs/get?run_id={run}");
    let mut states = Vec::new();
    for _ in 0..60 {
        let (_, r) = call("GET", &get, Some("tok"), None).await;
        let s = r["state"]["life_cycle_state"].as_str().unwrap().to_string();
        if states.last() != Some(&s) {
            states.push(s.clone());
        }
        if s == "TERMINATED" {
            assert_eq!(r["state"]["result_state"], "SUCCESS");
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(states, ["PENDING", "RUNNING", "TERMINATED"]);
    let (_, out) = call(
        "GET",
        &format!("{base}/api/2.1/jobs/runs/get-output?run_id={run}"),
        Some("tok"),
        None,
    )
    .await;
    let result: Value =
        serde_json::from_str(out["notebook_output"]["result"].as_str().unwrap()).unwrap();
    assert_eq!(result["rows"].as_array().unwrap().len(), 3);

    // Job 2 is set to fail here.
    let (_, r2) = call(
        "POST",
        &run_now,
        Some("tok"),
        Some(json!({ "job_id": JOB2_ID })),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(450)).await;
    let (_, r) = call(
        "GET",
        &format!("{base}/api/2.1/jobs/runs/get?run_id={}", r2["run_id"]),
        Some("tok"),
        None,
    )
    .await;
    assert_eq!(r["state"]["life_cycle_state"], "TERMINATED");
    assert_eq!(r["state"]["result_state"], "FAILED");
    let (code, e) = call("POST", &run_now, Some("tok"), Some(json!({ "job_id": 1 }))).await;
    assert_eq!(
        (code, e["error_code"].as_str()),
        (400, Some("INVALID_PARAMETER_VALUE"))
    );
}

#[tokio::test]
async fn statements_answer_like_the_statement_api() {
    let base = fake(false).await;
    let url = format!("{base}/api/2.0/sql/statements");
    let (code, r) = call("POST", &url, Some("tok"), Some(json!({
        "warehouse_id": "demo-warehouse",
        "statement": "SELECT mostrador FROM invenadro.bronze.invenadro_input_automatizacion WHERE mostrador IN (:a)",
        "parameters": [{ "name": "a", "value": "7051603" }],
    }))).await;
    assert_eq!(code, 200);
    assert_eq!(r["status"]["state"], "SUCCEEDED");
    assert_eq!(r["result"]["data_array"], json!([["7051603"]]));
    let (_, r) = call("POST", &url, Some("tok"), Some(json!({
        "warehouse_id": "demo-warehouse", "statement": "SELECT mostrador FROM other.t WHERE mostrador IS NOT NULL",
    }))).await;
    assert_eq!(r["status"]["state"], "FAILED");
    let (code, _) = call(
        "POST",
        &url,
        Some("tok"),
        Some(json!({ "warehouse_id": "nope", "statement": "SELECT 1" })),
    )
    .await;
    assert_eq!(code, 404);
}
