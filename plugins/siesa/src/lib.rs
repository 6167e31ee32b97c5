//! `siesa`: the Siesa ERP -> Kong / WMS synchronisation (FLOWS.md section 3). One
//! component deployed as four plugins that differ by config `role`, each granted only
//! what its step needs:
//!
//! - `extractor`: pages through the Siesa products query (incremental: only products
//!   changed since the last successful sync's watermark) into a blob.
//! - `transformer`: applies the client's field mappings (a blob) to the canonical product
//!   model; invalid records are counted and kept in a blob of their own, never dropped.
//! - `loader`: pushes the canonical products to the client's product (Kong RFID or WMS)
//!   in batches and counts what each accepted.
//! - `sync`: writes the success or failure sync record (and the watermark), alerts on
//!   failure, and serves `GET /syncs`.
//!
//! Products travel between the steps as JSON Lines blobs under `runs/EXECUTION/`, so
//! 50,000 of them never pass through workflow state (256 KiB) and each step streams them
//! a line at a time.

mod extract;
mod load;
mod sync;
mod transform;

use orquesta_sdk::{Event, Failure, Handler, Response, TaskInput, config, parse_json};
use serde_json::Value;

struct Siesa;

impl Handler for Siesa {
    fn handle(event: Event) -> Result<Response, Failure> {
        let role = config::get("role").unwrap_or_default();
        match (role.as_str(), event) {
            ("extractor", Event::Task(task)) => task_json(&task, extract::run),
            ("transformer", Event::Task(task)) => task_json(&task, transform::run),
            ("loader", Event::Task(task)) => task_json(&task, load::run),
            ("sync", Event::Task(task)) => task_json(&task, sync::record),
            ("sync", Event::Http(req)) => Ok(sync::list(&req)),
            (role, _) => Err(Failure::new(
                "UnsupportedEvent",
                format!("role {role:?} does not take this event"),
            )),
        }
    }
}

orquesta_sdk::export!(Siesa);

fn task_json(
    task: &TaskInput,
    step: fn(&TaskInput, &Value) -> Result<Value, Failure>,
) -> Result<Response, Failure> {
    let input = parse_json(&task.input)?;
    Ok(Response::json(&step(task, &input)?))
}

/// The blob bucket the steps share.
fn bucket() -> String {
    config::get("bucket").unwrap_or_else(|| "siesa".into())
}

/// Where one execution's step keeps its products.
fn run_key(task: &TaskInput, name: &str) -> String {
    format!("runs/{}/{name}.jsonl", task.execution_id)
}

fn required(name: &str) -> Result<String, Failure> {
    config::get(name)
        .or_else(|| config::secret(name))
        .ok_or_else(|| Failure::new("ConfigError", format!("{name} is not configured")))
}

fn secret(name: &str) -> Result<String, Failure> {
    config::secret(name)
        .ok_or_else(|| Failure::new("ConfigError", format!("secret {name} is not granted")))
}

fn config_u64(name: &str, default: u64) -> u64 {
    config::get(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The client this tenant is; a sync for another client is refused.
fn check_client(input: &Value) -> Result<String, Failure> {
    let client = required("client_id")?;
    match input["client_id"].as_str() {
        Some(c) if c == client => Ok(client),
        Some(other) => Err(Failure::new(
            "ValidationError",
            format!("client_id {other:?} is not this tenant's client ({client})"),
        )),
        None => Err(Failure::new("ValidationError", "client_id is required")),
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A blob's JSON Lines, or a failure naming what is missing.
fn read_lines(key: &str) -> Result<Vec<u8>, Failure> {
    orquesta_sdk::blob::get(&bucket(), key)?.ok_or_else(|| {
        Failure::new(
            "MissingData",
            format!("blob {key} is gone (a step of another execution?)"),
        )
    })
}

/// A failure from an upstream's HTTP answer: 5xx and 429 are `...Unavailable` (the
/// workflow retries those), the rest `...Rejected`.
fn upstream_failure(who: &str, status: u16, body: &[u8]) -> Failure {
    let kind = if status >= 500 || status == 429 {
        "Unavailable"
    } else {
        "Rejected"
    };
    let text = String::from_utf8_lossy(body);
    let text: String = text.chars().take(300).collect();
    Failure::new(
        format!("{who}{kind}"),
        format!("{who} answered {status}: {text}"),
    )
}
