//! One request through `wasi:http/outgoing-handler`, its response read whole.

use serde_json::{Value, json};
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, IncomingResponse, Method, OutgoingBody,
    OutgoingRequest, Scheme,
};
use wasip2::io::streams::StreamError;

/// What a request gave: the status, headers and body, or why there is none.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// `method url` with `headers` and `body`.
pub fn fetch(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<Answer, String> {
    let fields = Fields::new();
    for (name, value) in headers {
        fields
            .append(name, value.as_bytes())
            .map_err(|e| format!("header {name}: {e:?}"))?;
    }
    let future = start(method, url, fields, body)?;
    wait(future)
}

/// Starts the request; its response is awaited with [`wait`].
pub fn start(
    method: &str,
    url: &str,
    fields: Fields,
    body: &[u8],
) -> Result<FutureIncomingResponse, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("{url:?} is not an absolute URL"))?;
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(fields);
    let method = match method {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        other => Method::Other(other.to_string()),
    };
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_string()),
    };
    request
        .set_method(&method)
        .and_then(|()| request.set_scheme(Some(&scheme)))
        .and_then(|()| request.set_authority(Some(authority)))
        .and_then(|()| request.set_path_with_query(Some(path)))
        .map_err(|()| format!("{url:?} is not a valid request"))?;
    let outgoing = request
        .body()
        .map_err(|()| "the request body was taken".to_string())?;
    let future = outgoing_handler::handle(request, None).map_err(|e| code(&e))?;
    let stream = outgoing
        .write()
        .map_err(|()| "the body stream was taken".to_string())?;
    // One write takes at most 4096 bytes. When the host stops taking the body, the
    // request's own error says why.
    let written = body
        .chunks(4096)
        .try_for_each(|chunk| stream.blocking_write_and_flush(chunk));
    drop(stream);
    if let Err(e) = written {
        drop(outgoing);
        return Err(match wait(future) {
            Err(why) => why,
            Ok(answer) => format!("writing the body: {e:?} (answered {})", answer.status),
        });
    }
    OutgoingBody::finish(outgoing, None).map_err(|e| code(&e))?;
    Ok(future)
}

/// Waits for a started request's response and reads it whole.
pub fn wait(future: FutureIncomingResponse) -> Result<Answer, String> {
    future.subscribe().block();
    let response = future
        .get()
        .ok_or("the response is not ready")?
        .map_err(|()| "the response was taken".to_string())?
        .map_err(|e| code(&e))?;
    read(response)
}

fn read(response: IncomingResponse) -> Result<Answer, String> {
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let incoming = response
        .consume()
        .map_err(|()| "the body was taken".to_string())?;
    let stream = incoming
        .stream()
        .map_err(|()| "the body stream was taken".to_string())?;
    let mut body = Vec::new();
    loop {
        match stream.blocking_read(64 << 10) {
            Ok(chunk) => body.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(e) => return Err(format!("reading the body: {e:?}")),
        }
    }
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// The error code as the guest sees it (`HttpRequestDenied`).
fn code(e: &ErrorCode) -> String {
    format!("{e:?}")
}

/// The outcome as the plugin answers it.
pub fn to_json(outcome: Result<Answer, String>) -> Value {
    match outcome {
        Ok(answer) => json!({
            "status": answer.status,
            "headers": answer.headers,
            "body": String::from_utf8_lossy(&answer.body),
        }),
        Err(error) => json!({ "error": error }),
    }
}
