//! `hello`: the first plugin. Greets with its configured greeting, counts greetings in
//! kv, logs, and (`POST /relay`) shows outbound HTTP with a token refresh on 401, a topic
//! notification and a queue message.

use orquesta_sdk::{
    Event, Failure, Handler, HttpRequest, Response, config, field, http, info, kv, messaging,
    notify, parse_json,
};
use serde_json::{Value, json};

struct Hello;

impl Handler for Hello {
    fn handle(event: Event) -> Result<Response, Failure> {
        match event {
            Event::Http(req) if req.path == "/relay" => relay(&req),
            Event::Http(req) => {
                let name = field(&req.query, "name")
                    .or_else(|| field(&req.params, "name"))
                    .unwrap_or("world")
                    .to_string();
                let body = greet(&name)?;
                Ok(Response::http_json(200, &body))
            }
            Event::Task(task) => {
                let input = parse_json(&task.input)?;
                let name = input["name"].as_str().unwrap_or("world").to_string();
                Ok(Response::json(&greet(&name)?))
            }
            // Only the http and task handlers are exported (below): the host sends no
            // other kind.
            _ => Err(Failure::new(
                "UnsupportedEvent",
                "hello handles http and task events",
            )),
        }
    }
}

fn greet(name: &str) -> Result<Value, Failure> {
    if name.trim().is_empty() {
        return Err(Failure::new("ValidationError", "name must not be empty"));
    }
    let greeting = config::get("greeting").unwrap_or_else(|| "Hello".to_string());
    let count = kv::increment("default", "greetings", 1)?;
    info(&format!("greeted {name} (greeting number {count})"));
    Ok(json!({ "message": format!("{greeting}, {name}!"), "count": count }))
}

/// Calls the configured upstream with a token from kv (fetched from the token endpoint
/// when missing or refused with 401), then reports the outcome.
fn relay(req: &HttpRequest) -> Result<Response, Failure> {
    let upstream = config::get("upstream_url")
        .ok_or_else(|| Failure::new("ConfigError", "upstream_url is not configured"))?;
    let mut answer = call_upstream(&upstream, &token(false)?, &req.body)?;
    if answer.status == 401 {
        answer = call_upstream(&upstream, &token(true)?, &req.body)?;
    }
    let ok = answer.status < 400;
    let subject = if ok { "relay ok" } else { "relay failed" };
    notify::publish(
        "alerts",
        Some(subject),
        &json!({ "status": answer.status }).to_string(),
        &[("outcome".into(), if ok { "ok" } else { "failed" }.into())],
    )?;
    messaging::send(
        "audit",
        &json!({ "upstream": upstream, "status": answer.status }).to_string(),
        &messaging::SendOptions {
            delay_seconds: 0,
            attributes: vec![],
            group_id: None,
            deduplication_id: None,
        },
    )?;
    let body: Value = serde_json::from_slice(&answer.body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&answer.body).into()));
    Ok(Response::http_json(
        if ok { 200 } else { 502 },
        &json!({ "upstream": body }),
    ))
}

fn call_upstream(url: &str, token: &str, body: &[u8]) -> Result<http::Response, Failure> {
    Ok(http::send(&http::Request {
        method: "POST".into(),
        url: url.into(),
        headers: vec![("authorization".into(), format!("Bearer {token}"))],
        body: body.to_vec(),
        timeout_ms: Some(5_000),
    })?)
}

/// The cached token, or a fresh one from `token_url` (client credentials from secrets).
fn token(refresh: bool) -> Result<String, Failure> {
    if !refresh && let Some(entry) = kv::get("default", "token")? {
        return Ok(String::from_utf8_lossy(&entry.value).into_owned());
    }
    let url = config::get("token_url")
        .ok_or_else(|| Failure::new("ConfigError", "token_url is not configured"))?;
    let secret = config::secret("client_secret")
        .ok_or_else(|| Failure::new("ConfigError", "secret client_secret is not granted"))?;
    let answer = http::send(&http::Request {
        method: "POST".into(),
        url,
        headers: vec![("content-type".into(), "application/json".into())],
        body: json!({ "client_secret": secret }).to_string().into_bytes(),
        timeout_ms: Some(5_000),
    })?;
    if answer.status != 200 {
        return Err(Failure::new(
            "AuthError",
            format!("token endpoint answered {}", answer.status),
        ));
    }
    let doc: Value = serde_json::from_slice(&answer.body)
        .map_err(|e| Failure::new("AuthError", format!("token answer is not JSON: {e}")))?;
    let token = doc["access_token"]
        .as_str()
        .ok_or_else(|| Failure::new("AuthError", "token answer has no access_token"))?
        .to_string();
    kv::set("default", "token", token.as_bytes(), Some(3_600_000))?;
    Ok(token)
}

orquesta_sdk::export!(Hello: http, task);
