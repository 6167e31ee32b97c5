//! Scripted misbehaviour and a request log, shared by the fakes whose failure modes the
//! tests drive (MOK, Siesa, Kong, WMS): a test (or `POST /_fake/script` over HTTP) queues
//! forced answers for a path, the fake serves them before behaving normally, and every
//! request it saw is kept for the test to inspect (`GET /_fake/requests`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// One forced answer: for the next `times` requests to `path` (or every request when
/// `times` is 0), wait `delay_ms`, then answer `status` with `body` instead of the normal
/// handling. A `status` of 0 only delays, then handles the request normally (a slow
/// upstream).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Forced {
    /// The request path it applies to, as the fake routes it (`/v1/createOT`).
    pub path: String,
    #[serde(default)]
    pub status: u16,
    #[serde(default)]
    pub body: Value,
    #[serde(default)]
    pub delay_ms: u64,
    /// How many requests it answers; 0 means all of them until reset.
    #[serde(default = "one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}

impl Forced {
    /// `status` with `body`, once, for `path`.
    pub fn once(path: &str, status: u16, body: Value) -> Self {
        Forced {
            path: path.into(),
            status,
            body,
            delay_ms: 0,
            times: 1,
        }
    }

    /// `status` for every request to `path` until the script is reset.
    pub fn always(path: &str, status: u16, body: Value) -> Self {
        Forced {
            times: 0,
            ..Self::once(path, status, body)
        }
    }

    /// A delay of `ms` before normal handling, for the next `times` requests.
    pub fn slow(path: &str, ms: u64, times: u32) -> Self {
        Forced {
            delay_ms: ms,
            times,
            ..Self::once(path, 0, Value::Null)
        }
    }
}

/// A request as the fake saw it.
#[derive(Debug, Clone, Serialize)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    /// JSON when it parsed, else the text.
    pub body: Value,
    /// The status the fake answered.
    pub status: u16,
}

#[derive(Default)]
struct Inner {
    forced: VecDeque<Forced>,
    seen: Vec<Seen>,
}

/// The script and log of one fake; clones share them.
#[derive(Clone, Default)]
pub struct Script {
    inner: Arc<Mutex<Inner>>,
}

impl Script {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues forced answers, after those already queued.
    pub fn push(&self, forced: Forced) {
        self.lock().forced.push_back(forced);
    }

    /// Drops every forced answer and the request log.
    pub fn reset(&self) {
        let mut inner = self.lock();
        inner.forced.clear();
        inner.seen.clear();
    }

    /// Every request seen so far, oldest first.
    pub fn requests(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    /// Requests seen for `path`.
    pub fn requests_to(&self, path: &str) -> Vec<Seen> {
        self.lock()
            .seen
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }

    /// The forced answer for this request, if one is queued (used up as it is taken).
    fn take(&self, path: &str) -> Option<Forced> {
        let mut inner = self.lock();
        let i = inner.forced.iter().position(|f| f.path == path)?;
        let forced = inner.forced[i].clone();
        match inner.forced[i].times {
            0 => {}
            1 => {
                inner.forced.remove(i);
            }
            n => inner.forced[i].times = n - 1,
        }
        Some(forced)
    }

    fn record(&self, seen: Seen) {
        self.lock().seen.push(seen);
    }

    /// Runs a request through the script: a forced answer (after its delay) when one is
    /// queued, else `handle`'s; either way the request and its status are logged.
    pub async fn serve<F>(
        &self,
        method: &str,
        path: &str,
        query: &str,
        body: &[u8],
        handle: F,
    ) -> Response
    where
        F: std::future::Future<Output = Response>,
    {
        let forced = self.take(path);
        if let Some(f) = &forced
            && f.delay_ms > 0
        {
            tokio::time::sleep(Duration::from_millis(f.delay_ms)).await;
        }
        let response = match forced {
            Some(f) if f.status != 0 => {
                let status =
                    StatusCode::from_u16(f.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                (status, Json(f.body)).into_response()
            }
            _ => handle.await,
        };
        let body = serde_json::from_slice(body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
        self.record(Seen {
            method: method.to_string(),
            path: path.to_string(),
            query: query.to_string(),
            body,
            status: response.status().as_u16(),
        });
        response
    }

    /// `POST /_fake/script` (a `Forced` or a list of them), `POST /_fake/reset` and
    /// `GET /_fake/requests`: the script over HTTP, for the demo and for tests that drive
    /// a fake in another process.
    pub fn routes<S: Clone + Send + Sync + 'static>(&self) -> axum::Router<S> {
        axum::Router::new()
            .route("/_fake/script", post(push_forced))
            .route("/_fake/reset", post(reset))
            .route("/_fake/requests", get(requests))
            .with_state(self.clone())
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(Forced),
    Many(Vec<Forced>),
}

async fn push_forced(State(script): State<Script>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<OneOrMany>(&body) {
        Ok(OneOrMany::One(f)) => script.push(f),
        Ok(OneOrMany::Many(list)) => list.into_iter().for_each(|f| script.push(f)),
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": format!("expected {{path, status, body, delay_ms, times}}: {e}") })),
            )
                .into_response();
        }
    }
    Json(json!({ "ok": true })).into_response()
}

async fn reset(State(script): State<Script>) -> Json<Value> {
    script.reset();
    Json(json!({ "ok": true }))
}

async fn requests(State(script): State<Script>) -> Json<Value> {
    Json(json!({ "requests": script.requests() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn status_of(script: &Script, path: &str) -> u16 {
        script
            .serve("GET", path, "", b"", async {
                StatusCode::OK.into_response()
            })
            .await
            .status()
            .as_u16()
    }

    #[tokio::test]
    async fn forced_answers_are_used_in_order_then_normal_handling_resumes() {
        let s = Script::new();
        s.push(Forced {
            times: 2,
            ..Forced::once("/a", 503, json!({}))
        });
        s.push(Forced::once("/a", 401, json!({})));
        s.push(Forced::always("/b", 500, json!({})));
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(status_of(&s, "/a").await);
        }
        assert_eq!(got, [503, 503, 401, 200]);
        assert_eq!(status_of(&s, "/b").await, 500);
        assert_eq!(status_of(&s, "/b").await, 500);
        assert_eq!(s.requests_to("/a").len(), 4);
        s.reset();
        assert_eq!(status_of(&s, "/b").await, 200);
        assert_eq!(s.requests().len(), 1);
    }
}
