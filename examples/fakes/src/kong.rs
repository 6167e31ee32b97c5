//! A fake Kong, an RFID inventory product (a monolith): its product API, which takes
//! bulk upserts by SKU.
//!
//! - `POST /api/v1/products/bulk` `{"products": [...]}`: at most `Config::max_batch`
//!   items (else 413); valid items are created or updated by `sku`, invalid ones listed
//!   in `failed` with their index, and the answer is 200 either way.
//! - `GET /api/v1/products/{sku}`.
//!
//! Both need `X-Api-Key`; errors are `{"error": "..."}`. Every request goes through the
//! fake's [`Script`], so tests can force answers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use crate::script::Script;
use crate::util::{self, lock};

#[derive(Debug, Clone)]
pub struct Config {
    /// The `X-Api-Key` every call must carry.
    pub api_key: String,
    /// The most products one bulk call may carry.
    pub max_batch: usize,
}

impl Config {
    /// Key `demo-kong-key`, batches of up to 500.
    pub fn demo() -> Self {
        Config {
            api_key: "demo-kong-key".into(),
            max_batch: 500,
        }
    }
}

/// The test's side of the fake: its script and its product store. Clones share them.
#[derive(Clone)]
pub struct Handle {
    script: Script,
    products: Arc<Mutex<BTreeMap<String, Value>>>,
}

impl Handle {
    /// The forced answers and request log of this fake.
    pub fn script(&self) -> &Script {
        &self.script
    }

    /// Every stored product, by SKU.
    pub fn products(&self) -> Vec<Value> {
        lock(&self.products).values().cloned().collect()
    }

    pub fn count(&self) -> usize {
        lock(&self.products).len()
    }

    /// The stored product: `{sku, name, description, unit, price, barcode, category,
    /// epc_prefix, created_at, updated_at}`, absent optional fields as null.
    pub fn get(&self, sku: &str) -> Option<Value> {
        lock(&self.products).get(sku).cloned()
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
        products: Arc::new(Mutex::new(BTreeMap::new())),
    };
    let fake = Fake {
        config: Arc::new(config),
        handle: handle.clone(),
    };
    let router = Router::new()
        .route("/api/v1/products/bulk", post(bulk))
        .route("/api/v1/products/{sku}", get(product))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not found").into_response() })
        .with_state(fake)
        .merge(handle.script.routes());
    (router, handle)
}

/// An error answer: `{"error": ...}` plus any detail fields.
struct Failure {
    status: StatusCode,
    body: Value,
}

fn error(status: StatusCode, message: &str) -> Failure {
    Failure {
        status,
        body: json!({ "error": message }),
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

fn answer(result: Result<Value, Failure>) -> Response {
    match result {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn bulk(
    State(fake): State<Fake>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    util::scripted(&fake.handle.script, &method, &uri, &body, || {
        answer(fake.authorize(&headers).and_then(|_| fake.bulk(&body)))
    })
    .await
}

async fn product(
    State(fake): State<Fake>,
    Path(sku): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    util::scripted(&fake.handle.script, &method, &uri, b"", || {
        answer(fake.authorize(&headers).and_then(|_| {
            fake.handle
                .get(&sku)
                .ok_or_else(|| error(StatusCode::NOT_FOUND, "not found"))
        }))
    })
    .await
}

/// The optional text fields a product keeps.
const TEXT_FIELDS: [&str; 5] = ["description", "unit", "barcode", "category", "epc_prefix"];

impl Fake {
    fn authorize(&self, headers: &HeaderMap) -> Result<(), Failure> {
        let key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
        if key == Some(self.config.api_key.as_str()) {
            Ok(())
        } else {
            Err(error(StatusCode::UNAUTHORIZED, "unauthorized"))
        }
    }

    fn bulk(&self, body: &[u8]) -> Result<Value, Failure> {
        let body: Value = serde_json::from_slice(body).map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                &format!("body is not valid JSON: {e}"),
            )
        })?;
        let items = body
            .get("products")
            .and_then(Value::as_array)
            .ok_or_else(|| error(StatusCode::BAD_REQUEST, "products must be an array"))?;
        if items.len() > self.config.max_batch {
            return Err(Failure {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                body: json!({ "error": "batch too large", "max": self.config.max_batch }),
            });
        }
        let now = util::format_rfc3339(util::now_ms());
        let mut store = lock(&self.handle.products);
        let (mut created, mut updated, mut failed) = (0, 0, Vec::new());
        for (index, item) in items.iter().enumerate() {
            let (sku, mut product) = match validate(item) {
                Ok(p) => p,
                Err(reason) => {
                    let sku = item.get("sku").and_then(Value::as_str);
                    failed.push(json!({ "index": index, "sku": sku, "error": reason }));
                    continue;
                }
            };
            let created_at = store.get(&sku).map(|old| old["created_at"].clone());
            match created_at {
                Some(at) => {
                    updated += 1;
                    product.insert("created_at".into(), at);
                }
                None => {
                    created += 1;
                    product.insert("created_at".into(), json!(now));
                }
            }
            product.insert("updated_at".into(), json!(now));
            store.insert(sku, Value::Object(product));
        }
        Ok(json!({
            "processed": items.len(),
            "created": created,
            "updated": updated,
            "failed": failed,
        }))
    }
}

/// The SKU and product to store for one bulk item (the fields Kong keeps), or why it is
/// refused.
fn validate(item: &Value) -> Result<(String, Map<String, Value>), String> {
    let item = item.as_object().ok_or("product must be an object")?;
    let sku = required_text(item, "sku")?;
    let mut product = Map::new();
    product.insert("sku".into(), json!(sku));
    product.insert("name".into(), json!(required_text(item, "name")?));
    for field in TEXT_FIELDS {
        match item.get(field) {
            None | Some(Value::Null) => {
                product.insert(field.into(), Value::Null);
            }
            Some(v @ Value::String(_)) => {
                product.insert(field.into(), v.clone());
            }
            Some(_) => return Err(format!("{field} must be a string")),
        }
    }
    let price = match item.get("price") {
        None | Some(Value::Null) => Value::Null,
        Some(Value::Number(n)) if n.as_f64().is_some_and(|p| p < 0.0) => {
            return Err("price must be >= 0".into());
        }
        Some(v @ Value::Number(_)) => v.clone(),
        Some(_) => return Err("price must be a number".into()),
    };
    product.insert("price".into(), price);
    Ok((sku, product))
}

fn required_text(item: &Map<String, Value>, field: &str) -> Result<String, String> {
    match item.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(Value::String(_) | Value::Null) | None => Err(format!("{field} is required")),
        Some(_) => Err(format!("{field} must be a string")),
    }
}
