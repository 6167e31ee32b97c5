//! Attacks of the operations tests: `marked-nap` counts itself in kv (`TAG:started`)
//! before it sleeps `ms`, so a test can tell the request is in flight.

use orquesta_sdk::{Failure, Response, kv};
use serde_json::{Value, json};

pub fn marked_nap(input: &Value) -> Result<Response, Failure> {
    let tag = input["tag"].as_str().unwrap_or("nap");
    kv::increment("default", &format!("{tag}:started"), 1)?;
    let ms = input["ms"].as_u64().unwrap_or(100);
    std::thread::sleep(std::time::Duration::from_millis(ms));
    Ok(Response::json(&json!({ "slept_ms": ms })))
}
