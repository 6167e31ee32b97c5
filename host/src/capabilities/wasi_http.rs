//! `wasi:http/outgoing-handler`: the standard interface JavaScript's `fetch` and Python's
//! HTTP clients are built on, carried out by the same backend and checks as
//! `orquesta:plugin/http`'s `send`. Each request is checked against the plugin's
//! `allow.hosts`, then handed whole to the tenant's [`OutboundHttp`] backend, so the
//! address guard, timeouts and the response cap are the ones `http.send` has; a refusal
//! reaches the guest as a `wasi:http` error code (`HTTP-request-denied` for a host or
//! address it may not reach). wasmtime-wasi-http only parses and checks what the guest
//! builds; it never opens a connection itself (its `default-send-request` is left out).
//!
//! The interface is in every plugin's linker, but a component that does not import it
//! never sees it, and with no `allow.hosts` every request is denied.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::http;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tokio::sync::Semaphore;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpHooks};

use super::http::{HOSTS, Request, Response, check_url};
use super::{Caller, CapError};
use crate::engine::PluginContext;

/// A request body the guest streams is gathered before it is sent, as `http.send` takes
/// one whole: this bounds the host's copy (the guest's own is bounded by its memory).
pub const MAX_REQUEST_BODY_BYTES: usize = 16 << 20;

/// Requests one invocation may have in flight at once: `http.send` blocks its caller,
/// but a guest may start any number of `wasi:http` requests before awaiting one; the
/// others wait for a turn.
pub const MAX_IN_FLIGHT: usize = 8;

/// Future the hook gives back with the response: nothing is left to do once the
/// backend has answered (it reads the whole response before answering).
type Io = Box<dyn Future<Output = Result<(), Error>> + Send>;
type Sent = Box<dyn Future<Output = Result<(http::Response<WasiBody>, Io), Error>> + Send>;

/// One invocation's `wasi:http` state: made on the guest's first `wasi:http` call.
pub struct WasiHttpState {
    pub ctx: WasiHttpCtx,
    pub hooks: Outgoing,
}

impl WasiHttpState {
    pub fn new(plugin: &Arc<PluginContext>, invocation: &str, depth: u32) -> Self {
        WasiHttpState {
            ctx: WasiHttpCtx::new(),
            hooks: Outgoing {
                plugin: plugin.clone(),
                invocation: invocation.to_string(),
                depth: depth.saturating_add(1),
                in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            },
        }
    }
}

/// Sends a plugin's `wasi:http` requests through its tenant's outbound backend.
pub struct Outgoing {
    plugin: Arc<PluginContext>,
    invocation: String,
    /// The depth of what this invocation sends (see `Caller::depth`).
    depth: u32,
    in_flight: Arc<Semaphore>,
}

impl WasiHttpHooks for Outgoing {
    /// The backend sets `host` from the URL it was given (and the guest may not set it:
    /// it is one of wasmtime-wasi-http's forbidden headers).
    fn set_host_header(&mut self) -> bool {
        false
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_errors: Io,
    ) -> Sent {
        let plugin = self.plugin.clone();
        let invocation = self.invocation.clone();
        let depth = self.depth;
        let in_flight = self.in_flight.clone();
        Box::new(async move {
            let _turn = in_flight
                .acquire_owned()
                .await
                .map_err(|_| Error::InternalError(Some("the invocation has ended".into())))?;
            let request = gather(request, options).await?;
            let caller = Caller {
                tenant: &plugin.tenant,
                plugin: &plugin.plugin,
                invocation: &invocation,
                depth,
            };
            let sent = async {
                check_url(plugin.capabilities.grants.list(HOSTS), &request.url)?;
                plugin
                    .capabilities
                    .backends
                    .http
                    .send(&caller, request)
                    .await
            };
            let response = sent.await.map_err(|e| refusal(&caller, e))?;
            Ok((answer(response)?, Box::new(async { Ok(()) }) as Io))
        })
    }
}

/// The guest's request as `http.send` takes it, its body read whole (up to
/// [`MAX_REQUEST_BODY_BYTES`]).
async fn gather(
    request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<Request, Error> {
    let (parts, mut body) = request.into_parts();
    let mut headers = Vec::with_capacity(parts.headers.len());
    for (name, value) in &parts.headers {
        let value = value.to_str().map_err(|_| {
            Error::InternalError(Some(format!("the value of header `{name}` is not text")))
        })?;
        headers.push((name.as_str().to_string(), value.to_string()));
    }
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            if bytes.len() + data.len() > MAX_REQUEST_BODY_BYTES {
                return Err(Error::HttpRequestBodySize(None));
            }
            bytes.extend_from_slice(&data);
        }
    }
    // `http.send` has one timeout for the whole exchange; the longest the guest set
    // stands for it, and the backend keeps it under its own ceiling.
    let timeout = options.and_then(|o| {
        [
            o.connect_timeout,
            o.first_byte_timeout,
            o.between_bytes_timeout,
        ]
        .into_iter()
        .flatten()
        .max()
    });
    Ok(Request {
        method: parts.method.as_str().to_string(),
        url: parts.uri.to_string(),
        headers,
        body: bytes,
        timeout_ms: timeout.map(|t| {
            t.min(Duration::from_millis(u64::from(u32::MAX)))
                .as_millis() as u32
        }),
    })
}

/// The backend's answer as the guest's incoming response.
fn answer(response: Response) -> Result<http::Response<WasiBody>, Error> {
    let mut builder = http::Response::builder().status(response.status);
    for (name, value) in &response.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let body = Full::new(Bytes::from(response.body))
        .map_err(|never| match never {})
        .boxed_unsync();
    builder
        .body(body)
        .map_err(|e| Error::InternalError(Some(format!("the response is not valid: {e}"))))
}

/// A refusal or failure of the backend as the `wasi:http` error the guest sees. A denial
/// has no room for its reason there, so the host logs it.
fn refusal(caller: &Caller<'_>, error: CapError) -> Error {
    match error {
        CapError::Denied(reason) => {
            tracing::info!(tenant = caller.tenant, plugin = caller.plugin,
                invocation = caller.invocation, %reason, "wasi:http request denied");
            Error::HttpRequestDenied
        }
        CapError::Timeout(_) => Error::HttpResponseTimeout,
        other => Error::InternalError(Some(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::pin::Pin;
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::capabilities::http::OutboundHttp;
    use crate::capabilities::{Backends, Capabilities, Grants};
    use crate::engine::Limits;

    /// Records what it is asked to send and answers `answer`.
    struct Recorder {
        sent: Mutex<Vec<Request>>,
        answer: Result<Response, CapError>,
    }

    #[async_trait]
    impl OutboundHttp for Recorder {
        async fn send(&self, _: &Caller<'_>, request: Request) -> Result<Response, CapError> {
            self.sent.lock().unwrap().push(request);
            self.answer.clone()
        }
    }

    fn hooks(hosts: &[&str], answer: Result<Response, CapError>) -> (Outgoing, Arc<Recorder>) {
        let recorder = Arc::new(Recorder {
            sent: Mutex::default(),
            answer,
        });
        let mut backends = Backends::unavailable();
        backends.http = recorder.clone();
        let capabilities = Capabilities {
            config: BTreeMap::new(),
            secrets: BTreeMap::new(),
            grants: Grants::default().with(HOSTS, hosts),
            backends,
        };
        let plugin = Arc::new(PluginContext::new(
            "t",
            "p",
            Limits::default(),
            capabilities,
        ));
        (WasiHttpState::new(&plugin, "i", 0).hooks, recorder)
    }

    fn request(url: &str, body: Vec<u8>) -> http::Request<WasiBody> {
        http::Request::builder()
            .method("POST")
            .uri(url)
            .header("x-probe", "1")
            .body(
                Full::new(Bytes::from(body))
                    .map_err(|n| match n {})
                    .boxed_unsync(),
            )
            .unwrap()
    }

    async fn send(
        hooks: &mut Outgoing,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<http::Response<WasiBody>, Error> {
        let sent = hooks.send_request(request, options, Box::new(async { Ok(()) }));
        Pin::from(sent).await.map(|(response, _)| response)
    }

    fn ok() -> Result<Response, CapError> {
        Ok(Response {
            status: 201,
            headers: vec![("x-answer".into(), "yes".into())],
            body: b"done".to_vec(),
        })
    }

    #[tokio::test]
    async fn a_granted_request_goes_to_the_backend_whole() {
        let (mut hooks, recorder) = hooks(&["api.example.com"], ok());
        let options = RequestOptions {
            first_byte_timeout: Some(Duration::from_millis(1500)),
            ..RequestOptions::default()
        };
        let response = send(
            &mut hooks,
            request("https://api.example.com/v1?x=1", b"payload".to_vec()),
            Some(options),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), 201);
        assert_eq!(response.headers()["x-answer"], "yes");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"done");
        let sent = recorder.sent.lock().unwrap();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].method, "POST");
        assert_eq!(sent[0].url, "https://api.example.com/v1?x=1");
        assert_eq!(sent[0].headers, vec![("x-probe".into(), "1".into())]);
        assert_eq!(sent[0].body, b"payload");
        assert_eq!(sent[0].timeout_ms, Some(1500));
    }

    #[tokio::test]
    async fn hosts_outside_the_grants_are_denied_before_the_backend() {
        for granted in [&[][..], &["api.example.com"][..], &["*.example.com"][..]] {
            let (mut hooks, recorder) = hooks(granted, ok());
            let err = send(&mut hooks, request("http://169.254.169.254/", vec![]), None)
                .await
                .unwrap_err();
            assert!(
                matches!(err, Error::HttpRequestDenied),
                "{granted:?}: {err}"
            );
            assert!(recorder.sent.lock().unwrap().is_empty());
        }
    }

    #[tokio::test]
    async fn the_backends_refusals_reach_the_guest_as_error_codes() {
        let cases = [
            (
                CapError::Denied("127.0.0.1 is loopback".into()),
                "HTTP request denied",
            ),
            (CapError::Timeout("late".into()), "HTTP response timeout"),
            (
                CapError::Invalid("the response is larger than 10 bytes".into()),
                "larger than 10 bytes",
            ),
        ];
        for (refusal, says) in cases {
            let (mut hooks, _) = hooks(&["*"], Err(refusal));
            let err = send(&mut hooks, request("http://127.0.0.1/", vec![]), None)
                .await
                .unwrap_err();
            assert!(err.to_string().contains(says), "{err}");
        }
    }

    #[tokio::test]
    async fn request_bodies_past_the_cap_are_refused_unsent() {
        let (mut hooks, recorder) = hooks(&["*"], ok());
        let body = vec![b'x'; MAX_REQUEST_BODY_BYTES + 1];
        let err = send(&mut hooks, request("http://api.example.com/", body), None)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::HttpRequestBodySize(_)), "{err}");
        assert!(recorder.sent.lock().unwrap().is_empty());
    }
}
