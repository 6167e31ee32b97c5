//! ExtractFromSiesa: the client's products from the Siesa query API, a page at a time,
//! into `runs/EXECUTION/extracted.jsonl`. An incremental sync asks only for products
//! updated after the watermark of the last successful sync; with none yet, it is a full
//! one.

use orquesta_sdk::{Failure, TaskInput, blob, http, kv};
use serde_json::{Value, json};

use crate::{bucket, check_client, config_u64, now_rfc3339, required, run_key, secret};

/// Siesa answers at most this many rows a page.
const MAX_PAGE: u64 = 1000;

pub fn run(task: &TaskInput, input: &Value) -> Result<Value, Failure> {
    let client_id = check_client(input)?;
    let sync_type = match input["sync_type"].as_str() {
        Some(t @ ("initial" | "incremental")) => t,
        _ => {
            return Err(Failure::new(
                "ValidationError",
                "sync_type must be \"initial\" or \"incremental\"",
            ));
        }
    };
    // Taken before the first page: a product changed while we page is picked up next
    // time rather than missed.
    let extraction_timestamp = now_rfc3339();
    let since = match sync_type {
        "incremental" => kv::get(&crate::sync::sync_bucket(), crate::sync::WATERMARK)?
            .map(|e| String::from_utf8_lossy(&e.value).into_owned()),
        _ => None,
    };
    let base = required("siesa_url")?;
    let company = required("company_id")?;
    let query = config_or("query", "API_v2_ItemsInventario");
    let size = config_u64("page_size", MAX_PAGE).clamp(1, MAX_PAGE);
    let key = secret("conni_key")?;
    let token = secret("conni_token")?;
    let mut lines = Vec::new();
    let mut count = 0u64;
    let mut page = 1u64;
    loop {
        let mut url = format!(
            "{}/api/v3/ejecutarconsulta?idCompania={}&descripcion={}&paginacion={}",
            base.trim_end_matches('/'),
            encode(&company),
            encode(&query),
            encode(&format!("numPag={page}|tamPag={size}")),
        );
        if let Some(since) = &since {
            url.push_str(&format!(
                "&parametros={}",
                encode(&format!("fecha_actualizacion={since}"))
            ));
        }
        let answer = http::send(&http::Request {
            method: "GET".into(),
            url,
            headers: vec![
                ("ConniKey".into(), key.clone()),
                ("ConniToken".into(), token.clone()),
            ],
            body: Vec::new(),
            timeout_ms: Some(config_u64("timeout_ms", 30_000) as u32),
        })?;
        if answer.status != 200 {
            return Err(crate::upstream_failure(
                "Siesa",
                answer.status,
                &answer.body,
            ));
        }
        let doc: Value = serde_json::from_slice(&answer.body)
            .map_err(|e| Failure::new("SiesaRejected", format!("Siesa answered no JSON: {e}")))?;
        if doc["codigo"].as_i64() != Some(0) {
            return Err(Failure::new(
                "SiesaRejected",
                format!(
                    "Siesa answered codigo {}: {}",
                    doc["codigo"], doc["mensaje"]
                ),
            ));
        }
        let rows = doc["detalle"]["Datos"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for row in &rows {
            lines.extend_from_slice(row.to_string().as_bytes());
            lines.push(b'\n');
        }
        count += rows.len() as u64;
        let pages = doc["paginacion"]["total_paginas"].as_u64().unwrap_or(0);
        if rows.is_empty() || page >= pages {
            break;
        }
        page += 1;
    }
    let products_blob = run_key(task, "extracted");
    blob::put(&bucket(), &products_blob, &lines)?;
    Ok(json!({
        "client_id": client_id,
        "product_type": required("product_type")?,
        "sync_type": sync_type,
        "since": since,
        "products_blob": products_blob,
        "count": count,
        "pages": page,
        "extraction_timestamp": extraction_timestamp,
    }))
}

fn config_or(name: &str, default: &str) -> String {
    orquesta_sdk::config::get(name).unwrap_or_else(|| default.to_string())
}

/// Percent-encoding for a query value.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
