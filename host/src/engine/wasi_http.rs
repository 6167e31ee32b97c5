//! Components exporting `wasi:http/incoming-handler` (a `wasmtime serve` or Spin HTTP
//! component) as a tenant's route handler: the route's `http` event becomes the
//! `incoming-request` the component reads, and what it sets on its `response-outparam`
//! becomes the route's response, read as the guest writes it and cut off past the
//! plugin's output cap. Everything else is as for any plugin: a fresh instance, its
//! limits, its metrics, its grants (its own `wasi:http` requests go through
//! capabilities/wasi_http.rs).

use std::future::Future;
use std::pin::Pin;

use axum::http;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tokio::sync::oneshot;
use wasmtime::Store;
use wasmtime::component::{Instance, Resource, TypedFunc};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::p2::types::{HostIncomingRequest, HostResponseOutparam};

use super::handlers::{Call, WasiHttpHandle as Handle};
use super::{Invocation, InvokeError, Limits, output_cap};
use crate::bindings::handler::{HttpRequest, HttpResponse, Response};

/// A call of `handle` with one request, answering the route's response or why there is
/// none.
pub(super) struct Incoming {
    pub handle: Handle,
    pub request: HttpRequest,
    pub limits: Limits,
}

/// What the guest sets on its `response-outparam`.
type Sent = Result<http::Response<HyperOutgoingBody>, ErrorCode>;

impl Call for Incoming {
    type Output = Result<Response, InvokeError>;

    fn call<'a>(
        self,
        store: &'a mut Store<Invocation>,
        instance: Instance,
    ) -> Pin<Box<dyn Future<Output = wasmtime::Result<Self::Output>> + Send + 'a>> {
        Box::pin(async move {
            let func = instance
                .get_func(&mut *store, self.handle.index())
                .ok_or_else(|| wasmtime::format_err!("the instance lacks the export"))?;
            // SAFETY: as in `Typed::call`: the export was type-checked against these
            // types when it was found in this plugin's component.
            let func = unsafe {
                TypedFunc::<
                    (
                        Resource<HostIncomingRequest>,
                        Resource<HostResponseOutparam>,
                    ),
                    (),
                >::new_unchecked(func)
            };
            let (sender, answered) = oneshot::channel::<Sent>();
            let params = {
                let mut http = store.data_mut().http();
                let request = http.new_incoming_request(Scheme::Http, request(&self.request))?;
                (request, http.new_response_outparam(sender)?)
            };
            // The body is read while the guest writes it: it streams through a small
            // buffer, and a guest writing more than that waits for the reader.
            let (called, read) = futures::future::join(
                func.call_async(&mut *store, params),
                read(answered, &self.limits),
            )
            .await;
            called?;
            Ok(read)
        })
    }
}

/// The route's request as a `wasi:http` one: its path below the tenant prefix and its
/// query, its headers and body; the authority is the request's `host` (as the component
/// would see behind `wasmtime serve`).
fn request(event: &HttpRequest) -> http::Request<Full<Bytes>> {
    let mut target = event.path.clone();
    if !target.starts_with('/') {
        target.insert(0, '/');
    }
    if !event.query.is_empty() {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(event.query.iter())
            .finish();
        target.push('?');
        target.push_str(&query);
    }
    let authority = event
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("host"))
        .map_or("localhost", |(_, v)| v.as_str());
    let method = http::Method::from_bytes(event.method.as_bytes()).unwrap_or(http::Method::GET);
    let mut builder = http::Request::builder().method(method);
    let uri = http::Uri::builder()
        .scheme("http")
        .authority(authority)
        .path_and_query(target.as_str())
        .build()
        .or_else(|_| {
            http::Uri::builder()
                .scheme("http")
                .authority("localhost")
                .path_and_query(target.as_str())
                .build()
        });
    if let Ok(uri) = uri {
        builder = builder.uri(uri);
    }
    for (name, value) in &event.headers {
        // The server parsed them, so they are valid; one that is not is left out
        // rather than failing the request.
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(value),
        ) {
            builder = builder.header(name, value);
        }
    }
    let body = Full::new(Bytes::from(event.body.clone()));
    builder
        .body(body.clone())
        .unwrap_or_else(|_| http::Request::new(body))
}

/// The component's response, its body read up to the plugin's output cap.
async fn read(answered: oneshot::Receiver<Sent>, limits: &Limits) -> Result<Response, InvokeError> {
    let sent = answered.await.map_err(|_| {
        InvokeError::InvalidOutput("the component returned without setting a response".into())
    })?;
    let response = sent.map_err(|code| {
        output_cap::failure(
            "http-error".into(),
            format!("the component answered {code:?}"),
            limits,
        )
    })?;
    let (parts, mut body) = response.into_parts();
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let limit = limits.max_output_bytes();
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|code| {
            InvokeError::InvalidOutput(format!("the response body failed: {code:?}"))
        })?;
        if let Ok(data) = frame.into_data() {
            let size = bytes.len() + data.len();
            if size > limit {
                return Err(InvokeError::OutputTooLarge { size, limit });
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(Response::Http(HttpResponse {
        status: parts.status.as_u16(),
        headers,
        body: bytes,
    }))
}
