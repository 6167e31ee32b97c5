//! Workflow task answers (`orquesta_sdk::tasks`), the honest use and the attacks on it.
//! The token is `token` in the input, or the one `keep-token` kept under `key`:
//!
//! - `keep-token` (a callback task's call): keeps the input's `token` in kv under
//!   `token:KEY`, to be answered later from another trigger;
//! - `task-success`: answers `output`, or a JSON string of `output_bytes` bytes;
//! - `task-failure`: fails the task with `error` and `cause` (or `cause_chars` characters);
//! - `task-heartbeat`: sends `times` heartbeats (default 1), stopping at the first refusal.
//!
//! Each answers `{"sent": N}` and, when the host refused one, `"error"` (the cloud's
//! name) and `"cause"`, so a test reads the refusal.

use orquesta_sdk::{Failure, Response, kv, tasks};
use serde_json::{Value, json};

pub fn handles(name: &str) -> bool {
    matches!(
        name,
        "keep-token" | "task-success" | "task-failure" | "task-heartbeat"
    )
}

pub fn attack(name: &str, input: &Value) -> Result<Response, Failure> {
    let key = format!("token:{}", input["key"].as_str().unwrap_or("default"));
    if name == "keep-token" {
        let token = tasks::token_in(input, "token")
            .ok_or_else(|| Failure::new("NoToken", "the task's input has no `token`"))?;
        kv::set("default", &key, token.as_bytes(), None)?;
        return Ok(Response::json(&json!({ "kept": key })));
    }
    let token = match input["token"].as_str() {
        Some(token) => token.to_string(),
        None => kv::get("default", &key)?
            .map(|e| String::from_utf8_lossy(&e.value).into_owned())
            .ok_or_else(|| Failure::new("NoToken", format!("nothing kept under {key}")))?,
    };
    let (sent, refused) = match name {
        "task-success" => {
            let output = match input["output_bytes"].as_u64() {
                Some(n) => json!("x".repeat(n as usize)),
                None => input["output"].clone(),
            };
            count(std::iter::once(tasks::succeed(&token, &output)))
        }
        "task-failure" => {
            let cause = match input["cause_chars"].as_u64() {
                Some(n) => "c".repeat(n as usize),
                None => input["cause"].as_str().unwrap_or_default().to_string(),
            };
            let error = input["error"].as_str().unwrap_or("Failed");
            count(std::iter::once(tasks::fail(&token, error, &cause)))
        }
        _ => {
            let times = input["times"].as_u64().unwrap_or(1);
            count((0..times).map(|_| tasks::heartbeat(&token)))
        }
    };
    let mut answer = json!({ "sent": sent });
    if let Some(e) = refused {
        answer["error"] = json!(e.name());
        answer["cause"] = json!(e.cause());
    }
    Ok(Response::json(&answer))
}

/// How many answers were taken before the first refusal, and that refusal.
fn count(
    answers: impl Iterator<Item = Result<(), tasks::TaskError>>,
) -> (u64, Option<tasks::TaskError>) {
    let mut sent = 0;
    for answer in answers {
        match answer {
            Ok(()) => sent += 1,
            Err(e) => return (sent, Some(e)),
        }
    }
    (sent, None)
}
