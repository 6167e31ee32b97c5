//! Request bodies, read to a limit. A body over the limit is a 413 naming the limit; a
//! body that cannot be read (a malformed chunked encoding, a client gone midway) is a
//! 400 saying what went wrong, not a 413.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use http_body_util::LengthLimitError;

use crate::web::problem::Problem;

/// Reads `body`, refusing more than `limit` bytes (`headers` may declare too many up
/// front, refused before reading).
pub async fn read(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, Problem> {
    let too_large = || {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Payload Too Large",
            format!("request bodies are limited to {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        if over_limit(&e) {
            too_large()
        } else {
            Problem::bad_request(format!(
                "the request body could not be read: {}",
                causes(&e)
            ))
        }
    })
}

/// Whether the limit, rather than the connection, stopped the read.
fn over_limit(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut at = Some(e);
    while let Some(e) = at {
        if e.is::<LengthLimitError>() {
            return true;
        }
        at = e.source();
    }
    false
}

/// An error and its causes, outermost first (hyper's own message is only "error
/// reading a body from connection"; the cause says what was wrong).
fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = String::new();
    let mut at = Some(e);
    while let Some(e) = at {
        let part = e.to_string();
        // Wrappers often repeat their cause's message.
        if !part.is_empty() && !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
        at = e.source();
    }
    text
}

/// Time for an admin API request's whole body: 256 MiB at about 2 MB/s. Without it a
/// client that stops sending held its connection and buffer for as long as it liked.
pub const ADMIN_BODY_TIMEOUT: Duration = Duration::from_secs(120);

/// An admin API request's body, up to the admin API's upload limit and within
/// `ADMIN_BODY_TIMEOUT`: bytes as sent.
/// Admin API bodies (plugin uploads, blobs); far above any real component.
pub const MAX_UPLOAD_BYTES: usize = 256 << 20;

#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct AdminBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for AdminBody {
    type Rejection = Problem;

    async fn from_request(request: Request, _: &S) -> Result<Self, Problem> {
        let (parts, body) = request.into_parts();
        read_within(&parts.headers, body, MAX_UPLOAD_BYTES, ADMIN_BODY_TIMEOUT)
            .await
            .map(AdminBody)
    }
}

/// `read`, refused with 408 when the body has not all arrived within `within`.
pub async fn read_within(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    within: Duration,
) -> Result<Bytes, Problem> {
    tokio::time::timeout(within, read(headers, body, limit))
        .await
        .map_err(|_| {
            Problem::new(
                StatusCode::REQUEST_TIMEOUT,
                "Request Timeout",
                format!(
                    "the request body did not arrive within {} s",
                    within.as_secs_f64()
                ),
            )
        })?
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    #[tokio::test]
    async fn over_the_limit_is_413_and_a_broken_body_400() {
        let headers = HeaderMap::new();
        let ok = read(&headers, Body::from("abc"), 3).await.unwrap();
        assert_eq!(&ok[..], b"abc");
        let over = read(&headers, Body::from("abcd"), 3).await.unwrap_err();
        assert_eq!(over.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(over.detail.contains("3 bytes"), "{}", over.detail);

        let broken = futures::stream::iter([
            Ok::<_, std::io::Error>(Bytes::from_static(b"ab")),
            Err(std::io::Error::other("the client went away")),
        ]);
        let e = read(&headers, Body::from_stream(broken), 100)
            .await
            .unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(
            e.detail.starts_with("the request body could not be read: ")
                && e.detail.contains("the client went away"),
            "{}",
            e.detail
        );

        let mut declared = HeaderMap::new();
        declared.insert(header::CONTENT_LENGTH, "4".parse().unwrap());
        let e = read(&declared, Body::empty(), 3).await.unwrap_err();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
    }

    /// A client that sends part of a body and stops is refused once the time is up,
    /// not waited for.
    #[tokio::test]
    async fn a_stalled_body_is_408() {
        let stalled = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"ab"))])
            .chain(futures::stream::pending());
        let started = std::time::Instant::now();
        let e = read_within(
            &HeaderMap::new(),
            Body::from_stream(stalled),
            100,
            Duration::from_millis(200),
        )
        .await
        .unwrap_err();
        assert_eq!(e.status, StatusCode::REQUEST_TIMEOUT);
        assert!(e.detail.contains("0.2 s"), "{}", e.detail);
        assert!(started.elapsed() < Duration::from_secs(5));
        let whole = read_within(
            &HeaderMap::new(),
            Body::from("abc"),
            100,
            Duration::from_millis(200),
        )
        .await
        .unwrap();
        assert_eq!(&whole[..], b"abc");
    }
}
