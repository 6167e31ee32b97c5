//! RFC 9457 problem details: every refusal by the host is a JSON document saying what
//! went wrong, with the HTTP status to match.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

/// The most of a non-problem refusal's body kept as its `detail` (axum's rejections
/// are one line).
const DETAIL_BYTES: usize = 4096;

#[derive(Debug, Clone)]
pub struct Problem {
    pub status: StatusCode,
    pub title: String,
    pub detail: String,
    /// Seconds, for 429 and 503.
    pub retry_after: Option<u64>,
    /// The methods a 405's resource takes (RFC 9110 requires `Allow` on a 405).
    pub allow: Vec<String>,
}

impl Problem {
    pub fn new(status: StatusCode, title: impl Into<String>, detail: impl Into<String>) -> Self {
        Problem {
            status,
            title: title.into(),
            detail: detail.into(),
            retry_after: None,
            allow: Vec::new(),
        }
    }

    pub fn allow(mut self, methods: Vec<String>) -> Self {
        self.allow = methods;
        self
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "Not Found", detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden", detail)
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Bad Request", detail)
    }

    /// A failure of the store or the host, not of the caller: a 500.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            detail.to_string(),
        )
    }

    /// A capability's error as the admin API answers it: the caller's fault is a 400, a
    /// clash with what is stored a 409, a refusal a 403, the rest a 500.
    pub fn from_capability(e: crate::capabilities::CapError) -> Self {
        use crate::capabilities::CapError;
        match e {
            CapError::Invalid(m) => Self::bad_request(m),
            CapError::Conflict(m) => Self::new(StatusCode::CONFLICT, "Conflict", m),
            CapError::Denied(m) => Self::forbidden(m),
            other => Self::internal(other),
        }
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable",
            detail,
        )
    }
}

/// The body of every refusal: an RFC 9457 problem document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({
    "type": "about:blank",
    "title": "Not Found",
    "status": 404,
    "detail": "no tenant `acme` is serving"
}))]
pub struct ProblemDocument {
    /// Always `about:blank`: the status and title say the kind.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: String,
    pub status: u16,
    pub detail: String,
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = json!(ProblemDocument {
            kind: "about:blank",
            title: self.title,
            status: self.status.as_u16(),
            detail: self.detail,
        });
        let mut response = (self.status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if !self.allow.is_empty()
            && let Ok(v) = HeaderValue::from_str(&self.allow.join(", "))
        {
            headers.insert(header::ALLOW, v);
        }
        if let Some(seconds) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&seconds.to_string())
        {
            headers.insert(header::RETRY_AFTER, v);
        }
        response
    }
}

/// Marks a response a plugin made: passed on as it is, whatever its status.
#[derive(Debug, Clone, Copy)]
pub struct FromPlugin;

fn is_problem(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"))
}

/// Whether the path or query holds a NUL character (`%00`): no name or id holds one,
/// and PostgreSQL's text cannot, so a lookup with one would fail in the store.
fn holds_nul(uri: &axum::http::Uri) -> bool {
    [uri.path(), uri.query().unwrap_or_default()]
        .iter()
        .any(|part| percent_encoding::percent_decode_str(part).any(|b| b == 0))
}

/// Middleware: every 4xx and 5xx the service answers is a problem document. axum's
/// own refusals (a path parameter or query that does not parse, a wrong method, a
/// body it could not take) come as text or empty; their text becomes the `detail`,
/// and their headers (`Allow` on a 405) are kept. A NUL in the URI is refused first.
pub async fn every_refusal(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let uri = request.uri().clone();
    if holds_nul(&uri) {
        return Problem::bad_request("the path or query holds a NUL character (%00)")
            .into_response();
    }
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || is_problem(&response)
        || response.extensions().get::<FromPlugin>().is_some()
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, DETAIL_BYTES).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_string(),
        Err(_) => String::new(),
    };
    let path = uri.path();
    let detail = if !text.is_empty() {
        text
    } else if status == StatusCode::METHOD_NOT_ALLOWED {
        let allow = parts
            .headers
            .get(header::ALLOW)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        format!("{method} is not allowed on {path}; allowed: {allow}")
    } else if status == StatusCode::NOT_FOUND {
        format!("no such endpoint: {path}")
    } else {
        format!("{method} {path} was refused")
    };
    let title = status.canonical_reason().unwrap_or("Error");
    let problem = Problem::new(status, title, detail).into_response();
    let (problem_parts, problem_body) = problem.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    if let Some(kind) = problem_parts.headers.get(header::CONTENT_TYPE) {
        parts.headers.insert(header::CONTENT_TYPE, kind.clone());
    }
    Response::from_parts(parts, problem_body)
}
