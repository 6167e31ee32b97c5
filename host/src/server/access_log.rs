//! The access log: one event per request answered, with its method, path, status and
//! time taken, on target `orquesta::access` at DEBUG, so the default filter (`info`)
//! leaves it off and a request pays only for a disabled span. Turn it on with
//! `ORQUESTA_LOG=info,orquesta::access=debug`. The query string is left out: API keys
//! and other secrets travel in it.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::TraceLayer;
use tracing::Span;

type MakeSpan = fn(&Request<Body>) -> Span;
type OnResponse = fn(&Response<Body>, Duration, &Span);

/// The layer around the whole service, so it sees the status the client gets.
pub fn layer()
-> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, MakeSpan, (), OnResponse, (), (), ()> {
    TraceLayer::new_for_http()
        .make_span_with(request_span as MakeSpan)
        .on_request(())
        .on_response(answered as OnResponse)
        .on_body_chunk(())
        .on_eos(())
        // The status in the access line says a 5xx; no second event at ERROR.
        .on_failure(())
}

fn request_span(request: &Request<Body>) -> Span {
    tracing::debug_span!(
        target: "orquesta::access",
        "request",
        method = %request.method(),
        path = %request.uri().path(),
    )
}

fn answered(response: &Response<Body>, latency: Duration, _span: &Span) {
    tracing::debug!(
        target: "orquesta::access",
        status = response.status().as_u16(),
        latency_ms = latency.as_secs_f64() * 1000.0,
        "answered"
    );
}
