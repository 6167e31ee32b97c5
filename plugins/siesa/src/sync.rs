//! LogSuccess / LogFailure: the sync record of every run (the seed's DynamoDB
//! `sync-state` table) in the shared kv bucket `siesa-sync`, keyed `sync:TIME:ID` so a
//! listing comes back in time order. A success also moves the watermark the next
//! incremental extraction starts from; a failure is published to the alerts topic with
//! the client's `product_type`. `GET /syncs[?status=failed]` lists the records, newest
//! first, with the watermark.

use orquesta_sdk::{Failure, HttpRequest, Response, TaskInput, config, field, kv, notify};
use serde_json::{Value, json};

use crate::{now_rfc3339, required};

pub const WATERMARK: &str = "watermark";

pub fn sync_bucket() -> String {
    config::get("sync_bucket").unwrap_or_else(|| "siesa-sync".into())
}

pub fn record(task: &TaskInput, input: &Value) -> Result<Value, Failure> {
    let client_id = required("client_id")?;
    let product_type = required("product_type")?;
    let now = now_rfc3339();
    let (key, record) = match input["record"].as_str() {
        Some("success") => {
            let result = &input["result"];
            let sync_id = result["sync_id"].as_str().unwrap_or(&task.execution_id);
            let record = json!({
                "status": "success",
                "sync_id": sync_id,
                "client_id": client_id,
                "product_type": product_type,
                "execution_id": task.execution_id,
                "records_processed": result["records_processed"],
                "records_success": result["records_success"],
                "records_failed": result["records_failed"],
                "load_status": result["status"],
                "extraction_timestamp": result["extraction_timestamp"],
                "load_timestamp": result["load_timestamp"],
                "recorded_at": now,
            });
            if let Some(mark) = result["extraction_timestamp"].as_str() {
                kv::set(&sync_bucket(), WATERMARK, mark.as_bytes(), None)?;
            }
            (format!("sync:{now}:{sync_id}"), record)
        }
        Some("failed") => {
            let error = &input["error"];
            let record = json!({
                "status": "failed",
                "client_id": client_id,
                "product_type": product_type,
                "execution_id": task.execution_id,
                "sync_type": input["input"]["sync_type"],
                "error": error["Error"],
                "cause": error["Cause"],
                "recorded_at": now,
            });
            notify::publish(
                &config::get("alerts_topic").unwrap_or_else(|| "siesa-alerts".into()),
                Some(&format!(
                    "Siesa sync failed for {client_id} ({product_type})"
                )),
                &record.to_string(),
                &[
                    ("client_id".into(), client_id.clone()),
                    ("product_type".into(), product_type.clone()),
                ],
            )?;
            (format!("sync:{now}:{}", task.execution_id), record)
        }
        _ => {
            return Err(Failure::new(
                "ValidationError",
                "record must be \"success\" or \"failed\"",
            ));
        }
    };
    kv::set(&sync_bucket(), &key, record.to_string().as_bytes(), None)?;
    Ok(json!({ "recorded": key, "status": record["status"] }))
}

/// `GET /syncs`: the records, newest first (at most `limit`, default 100).
pub fn list(req: &HttpRequest) -> Response {
    match list_records(req) {
        Ok(body) => Response::http_json(200, &body),
        Err(f) => Response::http_json(500, &json!({ "error": f.error, "message": f.cause })),
    }
}

fn list_records(req: &HttpRequest) -> Result<Value, Failure> {
    let bucket = sync_bucket();
    let wanted = field(&req.query, "status");
    let limit: usize = field(&req.query, "limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(100);
    let mut keys = Vec::new();
    let mut cursor = None;
    loop {
        let page = kv::list_keys(&bucket, "sync:", cursor.as_deref(), 1000)?;
        keys.extend(page.keys);
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let mut records = Vec::new();
    for key in keys.iter().rev() {
        if records.len() == limit {
            break;
        }
        let Some(entry) = kv::get(&bucket, key)? else {
            continue;
        };
        let record: Value = serde_json::from_slice(&entry.value).unwrap_or(Value::Null);
        if wanted.is_none_or(|w| record["status"] == w) {
            records.push(record);
        }
    }
    let watermark =
        kv::get(&bucket, WATERMARK)?.map(|e| String::from_utf8_lossy(&e.value).into_owned());
    Ok(json!({ "client_id": config::get("client_id"), "watermark": watermark, "syncs": records }))
}
