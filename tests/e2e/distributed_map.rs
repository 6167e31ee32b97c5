//! A distributed Map through the service: a tenant writes a JSON Lines blob, starts an
//! execution whose Map reads it (`ItemReader`), runs its batches on a real plugin
//! (`ItemBatcher`) and writes the results back to the tenant's bucket (`ResultWriter`).
//! Another tenant's definition naming the same bucket and key reads nothing of it.

use std::time::Duration;

use orquesta_tests::server::{ADMIN_TOKEN, TestServer, WorkflowAdmin};
use serde_json::{Value, json};

const TENANT: &str = r#"
[plugins.worker]
source = "hostile.wasm"

[workflows.rows]
definition = "rows.asl.json"
"#;

fn rows() -> Value {
    json!({
        "StartAt": "Each",
        "States": {"Each": {
            "Type": "Map",
            "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                "ReaderConfig": {"InputType": "JSONL"},
                "Parameters": {"Bucket": "in", "Key.$": "$.key"}},
            "ItemBatcher": {"MaxItemsPerBatch": 2, "BatchInput": {"attack": "nap", "ms": 1}},
            "MaxConcurrency": 2,
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "Work",
                "States": {"Work": {"Type": "Task", "Resource": "worker",
                    "Parameters": {"attack.$": "$.BatchInput.attack", "ms.$": "States.ArrayLength($.Items)"},
                    "End": true}}},
            "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject",
                "Parameters": {"Bucket": "out", "Prefix": "runs"}},
            "End": true
        }}
    })
}

async fn put_blob(s: &TestServer, tenant: &str, bucket: &str, key: &str, data: &str) {
    let r = s
        .client
        .put(format!(
            "{}/admin/v1/tenants/{tenant}/blobs/{bucket}/{key}",
            s.url
        ))
        .bearer_auth(ADMIN_TOKEN)
        .body(data.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        200,
        "{}",
        r.text().await.unwrap_or_default()
    );
}

#[tokio::test]
async fn a_map_reads_a_tenants_blob_runs_batches_on_a_plugin_and_writes_the_results() {
    let s = TestServer::start(&["hostile"], &[("acme", TENANT), ("other", TENANT)], |c| {
        std::fs::create_dir_all(&c.tenant_dir).unwrap();
        std::fs::write(c.tenant_dir.join("rows.asl.json"), rows().to_string()).unwrap();
    })
    .await;
    let lines: String = (0..5).map(|i| format!("{{\"row\":{i}}}\n")).collect();
    put_blob(&s, "acme", "in", "rows.jsonl", &lines).await;

    let admin = WorkflowAdmin::new(&s.url, "acme", ADMIN_TOKEN);
    let id = admin.start("rows", json!({"key": "rows.jsonl"})).await;
    let done = admin.finished(&id, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let details = &done["output"]["ResultWriterDetails"];
    assert_eq!(details["Bucket"], "out");
    let key = details["Key"].as_str().expect("a manifest key");
    assert!(
        key.starts_with("runs/") && key.ends_with("/manifest.json"),
        "{key}"
    );

    let (status, manifest) = admin
        .call(
            reqwest::Method::GET,
            &format!("/tenants/acme/blobs/out/{key}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{manifest}");
    assert_eq!(manifest["DestinationBucket"], "out");
    let file = manifest["ResultFiles"]["SUCCEEDED"][0]["Key"]
        .as_str()
        .unwrap();
    let (_, succeeded) = admin
        .call(
            reqwest::Method::GET,
            &format!("/tenants/acme/blobs/out/{file}"),
            None,
        )
        .await;
    // 5 rows in batches of 2: three children, each napping as long as its batch is.
    let mut naps: Vec<u64> = succeeded
        .as_array()
        .expect("an array of results")
        .iter()
        .map(|e| {
            let output: Value = serde_json::from_str(e["Output"].as_str().unwrap()).unwrap();
            output["slept_ms"].as_u64().unwrap()
        })
        .collect();
    naps.sort();
    assert_eq!(naps, [1, 2, 2]);

    // Another tenant's identical definition finds no `in/rows.jsonl` of its own.
    let theirs = WorkflowAdmin::new(&s.url, "other", ADMIN_TOKEN);
    let id = theirs.start("rows", json!({"key": "rows.jsonl"})).await;
    let done = theirs.finished(&id, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "FAILED", "{done}");
    assert_eq!(done["error"], "States.ItemReaderFailed", "{done}");
}
