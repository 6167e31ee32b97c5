//! `wasi-echo`: a plain `wasi:http/proxy` component, as `wasmtime serve` or Spin run one,
//! served as a tenant's route. It answers 201 with `{"method", "path", "headers",
//! "body"}` of the request it got and an `x-echo` header, except on these paths, which
//! try the host's limits:
//!
//! - `/big?bytes=N`: a body of N bytes (past the plugin's output cap it is refused);
//! - `/silent`: returns without setting a response;
//! - `/refuse`: sets an error code instead of a response.

use serde_json::json;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

wasip2::http::proxy::export!(Echo);

struct Echo;

impl wasip2::exports::http::incoming_handler::Guest for Echo {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        let (route, query) = path.split_once('?').unwrap_or((path.as_str(), ""));
        match route {
            "/silent" => {}
            "/refuse" => ResponseOutparam::set(out, Err(ErrorCode::HttpRequestDenied)),
            "/big" => {
                let bytes = query
                    .strip_prefix("bytes=")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                respond(out, 200, &[], &vec![b'x'; bytes]);
            }
            _ => {
                let method = match request.method() {
                    Method::Get => "GET".to_string(),
                    Method::Post => "POST".to_string(),
                    Method::Put => "PUT".to_string(),
                    Method::Delete => "DELETE".to_string(),
                    other => format!("{other:?}"),
                };
                let headers: Vec<(String, String)> = request
                    .headers()
                    .entries()
                    .into_iter()
                    .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
                    .collect();
                let body = read_body(&request);
                let answer = json!({
                    "method": method,
                    "path": path,
                    "headers": headers,
                    "body": String::from_utf8_lossy(&body),
                });
                respond(
                    out,
                    201,
                    &[("content-type", "application/json"), ("x-echo", "yes")],
                    answer.to_string().as_bytes(),
                );
            }
        }
    }
}

fn read_body(request: &IncomingRequest) -> Vec<u8> {
    let mut body = Vec::new();
    let Ok(incoming) = request.consume() else {
        return body;
    };
    if let Ok(stream) = incoming.stream() {
        // Closed at the end; any other error ends the body too.
        while let Ok(chunk) = stream.blocking_read(64 << 10) {
            body.extend_from_slice(&chunk);
        }
    }
    body
}

fn respond(out: ResponseOutparam, status: u16, headers: &[(&str, &str)], body: &[u8]) {
    let fields = Fields::new();
    for (name, value) in headers {
        let _ = fields.append(name, value.as_bytes());
    }
    let response = OutgoingResponse::new(fields);
    let _ = response.set_status_code(status);
    let Ok(outgoing) = response.body() else {
        return;
    };
    ResponseOutparam::set(out, Ok(response));
    if let Ok(stream) = outgoing.write() {
        for chunk in body.chunks(4096) {
            // The host stops reading past the output cap: the write fails, and the
            // component stops.
            if stream.blocking_write_and_flush(chunk).is_err() {
                return;
            }
        }
    }
    let _ = OutgoingBody::finish(outgoing, None);
}
