//! A fake warehouse-management system (microservices): its item service, which takes
//! batch upserts by item code.
//!
//! - `POST /wms/v2/items:batchUpsert` `{"items": [...]}`: at most `Config::max_batch`
//!   items (else 413). The answer lists one result per item in input order (201 created,
//!   200 updated, 422 refused with the reason); it is 207 Multi-Status when any item was
//!   refused, 200 when none was.
//! - `GET /wms/v2/items/{itemCode}`.
//!
//! Both need `Authorization: ApiKey <key>`; errors are `{"message": "..."}`. Every
//! request goes through the fake's [`Script`], so tests can force answers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use crate::script::Script;
use crate::util::{self, lock};

#[derive(Debug, Clone)]
pub struct Config {
    /// The key every call must carry as `Authorization: ApiKey <key>`.
    pub api_key: String,
    /// The most items one batch may carry.
    pub max_batch: usize,
}

impl Config {
    /// Key `demo-wms-key`, batches of up to 200.
    pub fn demo() -> Self {
        Config {
            api_key: "demo-wms-key".into(),
            max_batch: 200,
        }
    }
}

/// The test's side of the fake: its script and its item store. Clones share them.
#[derive(Clone)]
pub struct Handle {
    script: Script,
    items: Arc<Mutex<BTreeMap<String, Value>>>,
}

impl Handle {
    /// The forced answers and request log of this fake.
    pub fn script(&self) -> &Script {
        &self.script
    }

    /// Every stored item, by item code.
    pub fn items(&self) -> Vec<Value> {
        lock(&self.items).values().cloned().collect()
    }

    pub fn count(&self) -> usize {
        lock(&self.items).len()
    }

    /// The stored item: `{itemCode, description, uom, ean, family, listPrice, version,
    /// createdAt, updatedAt}`, absent optional fields as null; `version` counts upserts.
    pub fn get(&self, code: &str) -> Option<Value> {
        lock(&self.items).get(code).cloned()
    }
}

#[derive(Clone)]
struct Fake {
    config: Arc<Config>,
    handle: Handle,
}

/// The fake's routes (the script's `/_fake/*` included) and the handle on its store,
/// which starts empty.
pub fn router(config: Config) -> (Router, Handle) {
    let handle = Handle {
        script: Script::new(),
        items: Arc::new(Mutex::new(BTreeMap::new())),
    };
    let fake = Fake {
        config: Arc::new(config),
        handle: handle.clone(),
    };
    let router = Router::new()
        .route("/wms/v2/items:batchUpsert", post(batch_upsert))
        .route("/wms/v2/items/{code}", get(item))
        .fallback(|uri: Uri| async move {
            error(
                StatusCode::NOT_FOUND,
                format!("No route for {}", uri.path()),
            )
            .into_response()
        })
        .with_state(fake)
        .merge(handle.script.routes());
    (router, handle)
}

struct Failure {
    status: StatusCode,
    message: String,
}

fn error(status: StatusCode, message: String) -> Failure {
    Failure { status, message }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "message": self.message }))).into_response()
    }
}

async fn batch_upsert(
    State(fake): State<Fake>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    util::scripted(&fake.handle.script, &method, &uri, &body, || {
        match fake.authorize(&headers).and_then(|_| fake.upsert(&body)) {
            Ok((status, v)) => (status, Json(v)).into_response(),
            Err(e) => e.into_response(),
        }
    })
    .await
}

async fn item(
    State(fake): State<Fake>,
    Path(code): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    util::scripted(&fake.handle.script, &method, &uri, b"", || {
        let found = fake.authorize(&headers).and_then(|_| {
            fake.handle
                .get(&code)
                .ok_or_else(|| error(StatusCode::NOT_FOUND, format!("Item {code} not found")))
        });
        match found {
            Ok(v) => Json(v).into_response(),
            Err(e) => e.into_response(),
        }
    })
    .await
}

impl Fake {
    fn authorize(&self, headers: &HeaderMap) -> Result<(), Failure> {
        let key = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("ApiKey"))
            .map(|(_, key)| key.trim());
        if key == Some(self.config.api_key.as_str()) {
            Ok(())
        } else {
            Err(error(StatusCode::UNAUTHORIZED, "Unauthorized".into()))
        }
    }

    fn upsert(&self, body: &[u8]) -> Result<(StatusCode, Value), Failure> {
        let body: Value = serde_json::from_slice(body).map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                format!("Request body is not valid JSON: {e}"),
            )
        })?;
        let items = body.get("items").and_then(Value::as_array).ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                "Request body must be {\"items\": [...]}".into(),
            )
        })?;
        if items.len() > self.config.max_batch {
            return Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "A batch holds at most {} items, got {}",
                    self.config.max_batch,
                    items.len()
                ),
            ));
        }
        let now = util::format_rfc3339(util::now_ms());
        let mut store = lock(&self.handle.items);
        let mut all_ok = true;
        let results: Vec<Value> = items
            .iter()
            .map(|item| {
                let given = item.get("itemCode").and_then(Value::as_str);
                let (code, mut stored) = match validate(item) {
                    Ok(v) => v,
                    Err(reason) => {
                        all_ok = false;
                        return json!({ "itemCode": given, "status": 422, "message": reason });
                    }
                };
                let old = store.get(&code);
                let version = old.and_then(|o| o["version"].as_u64()).unwrap_or(0) + 1;
                let created_at = old.map_or_else(|| json!(now), |o| o["createdAt"].clone());
                let (status, message) = if old.is_some() {
                    (200, "updated")
                } else {
                    (201, "created")
                };
                stored.insert("version".into(), json!(version));
                stored.insert("createdAt".into(), created_at);
                stored.insert("updatedAt".into(), json!(now));
                store.insert(code.clone(), Value::Object(stored));
                json!({ "itemCode": code, "status": status, "message": message })
            })
            .collect();
        let status = if all_ok {
            StatusCode::OK
        } else {
            StatusCode::MULTI_STATUS
        };
        Ok((status, json!({ "results": results })))
    }
}

/// The item code and item to store for one batch entry, or why it is refused.
fn validate(item: &Value) -> Result<(String, Map<String, Value>), String> {
    let item = item.as_object().ok_or("item must be an object")?;
    let mut stored = Map::new();
    let code = required_text(item, "itemCode")?;
    stored.insert("itemCode".into(), json!(code));
    for field in ["description", "uom"] {
        stored.insert(field.into(), json!(required_text(item, field)?));
    }
    for field in ["ean", "family"] {
        match item.get(field) {
            None | Some(Value::Null) => stored.insert(field.into(), Value::Null),
            Some(v @ Value::String(_)) => stored.insert(field.into(), v.clone()),
            Some(_) => return Err(format!("{field} must be a string")),
        };
    }
    match item.get("listPrice") {
        None | Some(Value::Null) => stored.insert("listPrice".into(), Value::Null),
        Some(v @ Value::Number(_)) => stored.insert("listPrice".into(), v.clone()),
        Some(_) => return Err("listPrice must be a number".into()),
    };
    Ok((code, stored))
}

fn required_text(item: &Map<String, Value>, field: &str) -> Result<String, String> {
    match item.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(Value::String(_) | Value::Null) | None => Err(format!("{field} is required")),
        Some(_) => Err(format!("{field} must be a string")),
    }
}
