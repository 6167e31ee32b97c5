//! `wasi-hostile`: a plugin that tries to get around the host's outbound policy through
//! the standard `wasi:http/outgoing-handler` rather than `http.send`. `POST` a JSON body
//! `{"attack": NAME, "url": ..., "count": N}`:
//!
//! - `fetch`: a GET of `url` (loopback, a host outside the grants, cloud metadata, a huge
//!   answer, a redirect: each must be refused or returned as `http.send` would);
//! - `header-flood`: `count` headers of 1 KiB each on one request to `url`;
//! - `parallel`: `count` requests to `url` started before any is awaited;
//! - `big-body`: a request to `url` whose body is `count` bytes.
//!
//! It answers what it got: `{"status", ...}`, `{"error"}` or per-attack counts.

// The same request helper as `wasi-fetch`'s: one copy, built into both.
#[path = "../../wasi-fetch/src/fetch.rs"]
mod fetch;

use orquesta_sdk::{Event, Failure, Handler, Response};
use serde_json::{Value, json};
use wasip2::http::types::Fields;

struct WasiHostile;

impl Handler for WasiHostile {
    fn handle(event: Event) -> Result<Response, Failure> {
        let Event::Http(request) = event else {
            return Err(Failure::new(
                "UnsupportedEvent",
                "wasi-hostile handles http",
            ));
        };
        let input: Value = serde_json::from_slice(&request.body)
            .map_err(|e| Failure::new("ValidationError", format!("the body is not JSON: {e}")))?;
        let url = input["url"].as_str().unwrap_or_default();
        let count = input["count"].as_u64().unwrap_or(0) as usize;
        let answer = match input["attack"].as_str().unwrap_or_default() {
            "fetch" => fetch::to_json(fetch::fetch("GET", url, &[], &[])),
            "header-flood" => header_flood(url, count),
            "parallel" => parallel(url, count),
            "big-body" => fetch::to_json(fetch::fetch("POST", url, &[], &vec![b'x'; count])),
            other => {
                return Err(Failure::new(
                    "ValidationError",
                    format!("no attack {other:?}"),
                ));
            }
        };
        Ok(Response::http_json(200, &answer))
    }
}

/// Adds `count` 1 KiB headers, as many as the host's fields accept, then sends them.
fn header_flood(url: &str, count: usize) -> Value {
    let fields = Fields::new();
    let value = vec![b'v'; 1024];
    let mut accepted = 0;
    let mut refusal = None;
    for i in 0..count {
        match fields.append(&format!("x-flood-{i}"), &value) {
            Ok(()) => accepted += 1,
            Err(e) => {
                refusal = Some(format!("{e:?}"));
                break;
            }
        }
    }
    let sent = fetch::start("GET", url, fields, &[]).and_then(fetch::wait);
    json!({
        "accepted": accepted,
        "refusal": refusal,
        "outcome": fetch::to_json(sent),
    })
}

/// Starts `count` requests, then awaits them all.
fn parallel(url: &str, count: usize) -> Value {
    let started: Vec<_> = (0..count)
        .map(|_| fetch::start("GET", url, Fields::new(), &[]))
        .collect();
    let (mut ok, mut errors) = (0, Vec::new());
    for future in started {
        match future.and_then(fetch::wait) {
            Ok(_) => ok += 1,
            Err(e) => errors.push(e),
        }
    }
    json!({ "ok": ok, "errors": errors })
}

orquesta_sdk::export!(WasiHostile: http);
