//! LoadToProduct: the canonical products to the client's product API in batches, through
//! the adapter its `product_type` names:
//!
//! - `kong` (RFID, a monolith): `POST {kong_url}/api/v1/products/bulk` with `X-Api-Key`,
//!   `{"products": [...]}`; the answer lists the items it `failed`.
//! - `wms` (microservices): `POST {wms_url}/wms/v2/items:batchUpsert` with
//!   `Authorization: ApiKey ...`, `{"items": [...]}`; a 207 gives each item's status.
//!
//! Upserts are by SKU, so a retried load sends the same batches again harmlessly. A 5xx
//! or 429 fails the step (`KongUnavailable` / `WmsUnavailable`) for the workflow's Retry.

use orquesta_sdk::{Failure, TaskInput, http};
use serde_json::{Value, json};

use crate::{check_client, config_u64, now_rfc3339, read_lines, required, secret};

pub fn run(task: &TaskInput, input: &Value) -> Result<Value, Failure> {
    let client_id = check_client(input)?;
    let product_type = required("product_type")?;
    let adapter = match product_type.as_str() {
        "kong" => Adapter::kong()?,
        "wms" => Adapter::wms()?,
        other => {
            return Err(Failure::new(
                "ConfigError",
                format!("product_type {other:?} is not kong or wms"),
            ));
        }
    };
    let source = input["canonical_blob"]
        .as_str()
        .ok_or_else(|| Failure::new("ValidationError", "canonical_blob is required"))?;
    let lines = read_lines(source)?;
    let mut batch = Vec::with_capacity(adapter.batch);
    let mut totals = Totals::default();
    for line in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let product: Value = serde_json::from_slice(line)
            .map_err(|e| Failure::new("MissingData", format!("{source}: {e}")))?;
        batch.push((adapter.shape)(&product));
        if batch.len() == adapter.batch {
            adapter.send(&batch, &mut totals)?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        adapter.send(&batch, &mut totals)?;
    }
    let invalid = input["invalid_count"].as_u64().unwrap_or(0);
    let now = time::OffsetDateTime::now_utc();
    let sync_id = format!(
        "sync-{:04}{:02}{:02}-{:02}{:02}{:02}-{}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        task.execution_id.chars().take(8).collect::<String>()
    );
    let failed = totals.failed + invalid;
    Ok(json!({
        "client_id": client_id,
        "product_type": product_type,
        "status": if failed == 0 { "success" } else { "partial" },
        "records_processed": totals.sent + invalid,
        "records_success": totals.sent - totals.failed,
        "records_failed": failed,
        "rejected_sample": totals.sample,
        "batches": totals.batches,
        "load_timestamp": now_rfc3339(),
        "sync_id": sync_id,
        "extraction_timestamp": input["extraction_timestamp"],
        "invalid_blob": input["invalid_blob"],
    }))
}

#[derive(Default)]
struct Totals {
    sent: u64,
    failed: u64,
    batches: u64,
    /// A few of the target's refusals, for the sync record.
    sample: Vec<Value>,
}

struct Adapter {
    url: String,
    headers: Vec<(String, String)>,
    /// The JSON key the batch travels under.
    list: &'static str,
    batch: usize,
    shape: fn(&Value) -> Value,
    /// The refusals in an answer: (identifier, reason).
    refused: fn(&Value) -> Vec<(Value, Value)>,
    name: &'static str,
}

impl Adapter {
    fn kong() -> Result<Self, Failure> {
        Ok(Adapter {
            url: format!(
                "{}/api/v1/products/bulk",
                required("kong_url")?.trim_end_matches('/')
            ),
            headers: vec![("x-api-key".into(), secret("kong_api_key")?)],
            list: "products",
            batch: config_u64("batch_size", 500).clamp(1, 500) as usize,
            shape: |p| {
                json!({
                    "sku": p["sku"], "name": p["name"], "description": p["description"],
                    "unit": p["unit"], "price": p["price"], "barcode": p["barcode"],
                    "category": p["category"],
                })
            },
            refused: |answer| {
                answer["failed"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|f| (f["sku"].clone(), f["error"].clone()))
                    .collect()
            },
            name: "Kong",
        })
    }

    fn wms() -> Result<Self, Failure> {
        Ok(Adapter {
            url: format!(
                "{}/wms/v2/items:batchUpsert",
                required("wms_url")?.trim_end_matches('/')
            ),
            headers: vec![(
                "authorization".into(),
                format!("ApiKey {}", secret("wms_api_key")?),
            )],
            list: "items",
            batch: config_u64("batch_size", 200).clamp(1, 200) as usize,
            shape: |p| {
                json!({
                    "itemCode": p["sku"], "description": p["name"], "uom": p["unit"],
                    "ean": p["barcode"], "family": p["category"], "listPrice": p["price"],
                })
            },
            refused: |answer| {
                answer["results"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|r| r["status"].as_u64().is_some_and(|s| s >= 400))
                    .map(|r| (r["itemCode"].clone(), r["message"].clone()))
                    .collect()
            },
            name: "Wms",
        })
    }

    fn send(&self, batch: &[Value], totals: &mut Totals) -> Result<(), Failure> {
        let mut headers = self.headers.clone();
        headers.push(("content-type".into(), "application/json".into()));
        let answer = http::send(&http::Request {
            method: "POST".into(),
            url: self.url.clone(),
            headers,
            body: json!({ self.list: batch }).to_string().into_bytes(),
            timeout_ms: Some(config_u64("timeout_ms", 30_000) as u32),
        })?;
        if !matches!(answer.status, 200 | 207) {
            return Err(crate::upstream_failure(
                self.name,
                answer.status,
                &answer.body,
            ));
        }
        let doc: Value = serde_json::from_slice(&answer.body).map_err(|e| {
            Failure::new(
                format!("{}Rejected", self.name),
                format!("{} answered no JSON: {e}", self.name),
            )
        })?;
        let refused = (self.refused)(&doc);
        totals.sent += batch.len() as u64;
        totals.failed += refused.len() as u64;
        totals.batches += 1;
        for (id, reason) in refused
            .into_iter()
            .take(20usize.saturating_sub(totals.sample.len()))
        {
            totals.sample.push(json!({ "sku": id, "reason": reason }));
        }
        Ok(())
    }
}
