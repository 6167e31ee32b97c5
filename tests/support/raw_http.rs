//! A raw HTTP/1.1 client over TCP, for requests no well-behaved client sends: malformed
//! chunked bodies, a body cut short, bytes reqwest would encode or refuse.

use std::collections::HashMap;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// One response: status, headers (lower-case names) and body.
pub struct RawResponse {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for RawResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawResponse")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body", &String::from_utf8_lossy(&self.body))
            .finish()
    }
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The body as JSON, or `null`.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Sends `head` (request line and headers, without the blank line; `Host` and
/// `Connection: close` are added) and then `body` as given, half-closes the connection
/// when `cut` (a client gone before its body ended), and reads the answer.
pub async fn send(url: &str, head: &str, body: &[u8], cut: bool) -> RawResponse {
    try_send(url, head, body, cut, Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("{head:?}: {e}"))
}

/// As [`send`], with the reason when no well-formed answer comes within `limit`.
pub async fn try_send(
    url: &str,
    head: &str,
    body: &[u8],
    cut: bool,
    limit: Duration,
) -> Result<RawResponse, String> {
    let addr = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let mut request = format!("{head}\r\nHost: {addr}\r\nConnection: close\r\n\r\n").into_bytes();
    request.extend_from_slice(body);
    // The server may answer and close before taking all of a body it refuses.
    let _ = stream.write_all(&request).await;
    if cut {
        let _ = stream.shutdown().await;
    }
    let mut raw = Vec::new();
    match tokio::time::timeout(limit, stream.read_to_end(&mut raw)).await {
        Err(_) => return Err(format!("no answer within {limit:?}")),
        // A reset after the answer was written still leaves the answer.
        Ok(Err(e)) if raw.is_empty() => return Err(format!("cannot read the answer: {e}")),
        Ok(_) => {}
    }
    parse(&raw).ok_or_else(|| format!("not an HTTP response: {:?}", String::from_utf8_lossy(&raw)))
}

fn parse(raw: &[u8]) -> Option<RawResponse> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[end + 4..];
    let body = if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        dechunk(rest)?
    } else {
        match headers.get("content-length") {
            Some(n) => rest.get(..n.parse::<usize>().ok()?)?.to_vec(),
            None => rest.to_vec(),
        }
    };
    Some(RawResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&rest[..line_end]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}
