//! `wasi-config`: an orquesta HTTP handler that reads its config through the standard
//! `wasi:config/store@0.2.0-rc.1` (as a component written for Spin or `wasmtime serve`
//! does) and, beside it, through orquesta's own `config`, so a test can compare the two.
//! `wit/` is the interface as wasmtime-wasi-config 48 ships it.
//!
//! Paths are matched on their last segment, so a tenant may mount it anywhere:
//!
//! - `GET .../get?key=K`: `{"key", "value", "orquesta", "secret"}`: `wasi:config`'s `get`
//!   (`null` for none), `config.get` and `config.secret` of the same name;
//! - `GET .../all`: `{"all": {key: value}, "count", "bytes", "orquesta_count"}`: `get-all`
//!   and its size; with `summary=1`, without `all` (for thousands of keys).
//!
//! A `wasi:config` error is answered as `{"error": ...}`.

use orquesta_sdk::{Event, Failure, Handler, Response, config, field};
use serde_json::{Map, Value, json};

wit_bindgen::generate!({
    path: "wit",
    world: "wasi:config/imports@0.2.0-rc.1",
    generate_all,
});

use wasi::config::store;

struct WasiConfig;

impl Handler for WasiConfig {
    fn handle(event: Event) -> Result<Response, Failure> {
        let Event::Http(request) = event else {
            return Err(Failure::new("UnsupportedEvent", "wasi-config handles http"));
        };
        let last = request.path.rsplit('/').next().unwrap_or_default();
        let answer = match last {
            "get" => {
                let key = field(&request.query, "key").unwrap_or_default();
                match store::get(key) {
                    Ok(value) => json!({
                        "key": key,
                        "value": value,
                        "orquesta": config::get(key),
                        "secret": config::secret(key).is_some(),
                    }),
                    Err(e) => json!({ "error": format!("{e:?}") }),
                }
            }
            "all" => match store::get_all() {
                Ok(pairs) => {
                    let bytes: usize = pairs.iter().map(|(k, v)| k.len() + v.len()).sum();
                    let mut answer = json!({
                        "count": pairs.len(),
                        "bytes": bytes,
                        "orquesta_count": config::get_all().len(),
                    });
                    if field(&request.query, "summary") != Some("1") {
                        let all: Map<String, Value> = pairs
                            .into_iter()
                            .map(|(k, v)| (k, Value::String(v)))
                            .collect();
                        answer["all"] = Value::Object(all);
                    }
                    answer
                }
                Err(e) => json!({ "error": format!("{e:?}") }),
            },
            _ => {
                return Err(Failure::new(
                    "NotFound",
                    format!("no such path {}: .../get or .../all", request.path),
                ));
            }
        };
        Ok(Response::http_json(200, &answer))
    }
}

orquesta_sdk::export!(WasiConfig: http);
