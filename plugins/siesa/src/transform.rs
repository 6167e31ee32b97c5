//! TransformData: each extracted Siesa product through the client's field mappings (the
//! blob `field-mappings.json` in the `siesa-config` bucket) into the canonical model:
//!
//! ```json
//! {"product_type": "kong",
//!  "fields": {"sku": "f120_referencia", "name": "f120_descripcion", ...},
//!  "required": ["sku", "name"], "defaults": {"unit": "UND"}}
//! ```
//!
//! Canonical products are `{source_id, sku, name, description, unit, price, barcode,
//! category, updated_at}`. A record that misses a required field, or whose price or
//! barcode is malformed, is counted and written to `invalid.jsonl` with the reason.

use std::collections::BTreeMap;

use orquesta_sdk::{Failure, TaskInput, blob, config};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::{bucket, check_client, now_rfc3339, read_lines, run_key};

/// The canonical fields a mapping may fill.
const CANONICAL: [&str; 8] = [
    "sku",
    "name",
    "description",
    "unit",
    "price",
    "barcode",
    "category",
    "updated_at",
];
/// Invalid records listed in the step's output; the blob has all of them.
const SAMPLE: usize = 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Mappings {
    product_type: String,
    /// Canonical field -> Siesa field.
    fields: BTreeMap<String, String>,
    #[serde(default)]
    required: Vec<String>,
    #[serde(default)]
    defaults: BTreeMap<String, Value>,
}

pub fn run(task: &TaskInput, input: &Value) -> Result<Value, Failure> {
    let client_id = check_client(input)?;
    let mappings = mappings()?;
    if input["product_type"].as_str() != Some(mappings.product_type.as_str()) {
        return Err(Failure::new(
            "ValidationError",
            format!(
                "the mappings are for {:?}, the extraction for {}",
                mappings.product_type, input["product_type"]
            ),
        ));
    }
    let source = input["products_blob"]
        .as_str()
        .ok_or_else(|| Failure::new("ValidationError", "products_blob is required"))?;
    let raw = read_lines(source)?;
    let mut valid = Vec::with_capacity(raw.len());
    let mut invalid = Vec::new();
    let mut count = 0u64;
    let mut invalid_count = 0u64;
    let mut sample = Vec::new();
    for line in raw.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let outcome = serde_json::from_slice::<Value>(line)
            .map_err(|e| (Value::Null, format!("not JSON: {e}")))
            .and_then(|p| canonical(&p, &mappings).map_err(|why| (p["f120_id"].clone(), why)));
        match outcome {
            Ok(product) => {
                valid.extend_from_slice(product.to_string().as_bytes());
                valid.push(b'\n');
                count += 1;
            }
            Err((source_id, reason)) => {
                invalid_count += 1;
                let record = json!({ "source_id": source_id, "reason": reason });
                if sample.len() < SAMPLE {
                    sample.push(record.clone());
                }
                invalid.extend_from_slice(record.to_string().as_bytes());
                invalid.push(b'\n');
            }
        }
    }
    let canonical_blob = run_key(task, "canonical");
    let invalid_blob = run_key(task, "invalid");
    blob::put(&bucket(), &canonical_blob, &valid)?;
    blob::put(&bucket(), &invalid_blob, &invalid)?;
    Ok(json!({
        "client_id": client_id,
        "product_type": mappings.product_type,
        "canonical_blob": canonical_blob,
        "count": count,
        "invalid_count": invalid_count,
        "invalid_blob": invalid_blob,
        "invalid_sample": sample,
        "transformation_timestamp": now_rfc3339(),
        "extraction_timestamp": input["extraction_timestamp"],
    }))
}

fn mappings() -> Result<Mappings, Failure> {
    let bucket = config::get("mappings_bucket").unwrap_or_else(|| "siesa-config".into());
    let key = config::get("mappings_key").unwrap_or_else(|| "field-mappings.json".into());
    let bytes = blob::get(&bucket, &key)?.ok_or_else(|| {
        Failure::new(
            "ConfigError",
            format!("no field mappings at {bucket}/{key}"),
        )
    })?;
    let mappings: Mappings = serde_json::from_slice(&bytes).map_err(|e| {
        Failure::new(
            "ConfigError",
            format!("{bucket}/{key} is not a mapping: {e}"),
        )
    })?;
    if let Some(field) = mappings
        .fields
        .keys()
        .find(|f| !CANONICAL.contains(&f.as_str()))
    {
        return Err(Failure::new(
            "ConfigError",
            format!("{bucket}/{key}: {field:?} is not a canonical field ({CANONICAL:?})"),
        ));
    }
    Ok(mappings)
}

/// One Siesa product in the canonical model, or why it cannot be.
fn canonical(product: &Value, m: &Mappings) -> Result<Value, String> {
    let mut out = Map::new();
    out.insert("source_id".into(), product["f120_id"].clone());
    for field in CANONICAL {
        let value = m
            .fields
            .get(field)
            .map(|source| product[source].clone())
            .filter(|v| !v.is_null() && v.as_str() != Some(""))
            .or_else(|| m.defaults.get(field).cloned())
            .unwrap_or(Value::Null);
        let value = match (field, value) {
            ("price", Value::Null) => Value::Null,
            ("price", v) => {
                let n = v
                    .as_f64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                    .ok_or_else(|| format!("price {v} is not a number"))?;
                if n < 0.0 || !n.is_finite() {
                    return Err(format!("price {n} is negative"));
                }
                json!(n)
            }
            ("barcode", Value::String(s)) => {
                if !s.bytes().all(|b| b.is_ascii_digit()) || !(8..=14).contains(&s.len()) {
                    return Err(format!("barcode {s:?} is not 8-14 digits"));
                }
                Value::String(s)
            }
            (_, Value::Number(n)) => Value::String(n.to_string()),
            (_, v) => v,
        };
        out.insert(field.into(), value);
    }
    for field in &m.required {
        if out.get(field).is_none_or(Value::is_null) {
            return Err(format!("{field} is required"));
        }
    }
    Ok(Value::Object(out))
}
