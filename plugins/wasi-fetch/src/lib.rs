//! `wasi-fetch`: an orquesta HTTP handler that makes its outgoing request through the
//! standard `wasi:http/outgoing-handler` (as JavaScript's `fetch` and Python's HTTP
//! clients do) instead of orquesta's `http.send`. `POST` a JSON body `{"url": ...}`
//! (and optionally `"method"`, `"body"`, `"headers": [[name, value], ...]`); it answers
//! `{"status", "headers", "body"}` as it got them, or `{"error"}` naming the `wasi:http`
//! error code that stopped the request.

mod fetch;

use orquesta_sdk::{Event, Failure, Handler, Response};
use serde_json::Value;

struct WasiFetch;

impl Handler for WasiFetch {
    fn handle(event: Event) -> Result<Response, Failure> {
        let Event::Http(request) = event else {
            return Err(Failure::new("UnsupportedEvent", "wasi-fetch handles http"));
        };
        let input: Value = serde_json::from_slice(&request.body)
            .map_err(|e| Failure::new("ValidationError", format!("the body is not JSON: {e}")))?;
        let headers: Vec<(String, String)> = input["headers"]
            .as_array()
            .map(|pairs| {
                pairs
                    .iter()
                    .filter_map(|p| Some((p[0].as_str()?.to_string(), p[1].as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let outcome = fetch::fetch(
            input["method"].as_str().unwrap_or("GET"),
            input["url"].as_str().unwrap_or_default(),
            &headers,
            input["body"].as_str().unwrap_or_default().as_bytes(),
        );
        Ok(Response::http_json(200, &fetch::to_json(outcome)))
    }
}

orquesta_sdk::export!(WasiFetch: http);
