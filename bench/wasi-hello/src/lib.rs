//! The `bench` plugin's HTTP greeting as a `wasi:http/proxy` component: the reference
//! `wasmtime serve` runs in the HTTP benchmark (docs/BENCHMARKS.md).

use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

wasip2::http::proxy::export!(Hello);

struct Hello;

impl wasip2::exports::http::incoming_handler::Guest for Hello {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        let name = path
            .split_once('?')
            .map(|(_, q)| q)
            .unwrap_or_default()
            .split('&')
            .find_map(|pair| pair.strip_prefix("name="))
            .unwrap_or("world");
        let body = format!("{{\"message\":\"Hello, {name}!\"}}");
        let headers = Fields::new();
        // A fresh `Fields` takes any header; the benchmark's name is plain ASCII.
        let _ = headers.append("content-type", b"application/json");
        let response = OutgoingResponse::new(headers);
        let _ = response.set_status_code(200);
        let Ok(outgoing) = response.body() else {
            return;
        };
        ResponseOutparam::set(out, Ok(response));
        if let Ok(stream) = outgoing.write() {
            let _ = stream.blocking_write_and_flush(body.as_bytes());
        }
        let _ = OutgoingBody::finish(outgoing, None);
    }
}
