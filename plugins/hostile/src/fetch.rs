//! `fetch`: a GET of `url` through the host's outbound HTTP, answering the status and
//! body it got or the error that stopped it, so tests see where a request went.

use orquesta_sdk::{Response, http};
use serde_json::{Value, json};

pub fn attack(input: &Value) -> Response {
    let request = http::Request {
        method: "GET".into(),
        url: input["url"].as_str().unwrap_or_default().into(),
        headers: Vec::new(),
        body: Vec::new(),
        timeout_ms: Some(5_000),
    };
    Response::json(&match http::send(&request) {
        Ok(answer) => json!({
            "status": answer.status,
            "body": String::from_utf8_lossy(&answer.body),
        }),
        Err(e) => json!({ "error": format!("{e:?}") }),
    })
}
