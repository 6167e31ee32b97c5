//! Which of a plugin's response headers reach the client. Every tenant shares the host's
//! origin (`/t/{tenant}/...`, and `/admin`), so a plugin must not set or clear cookies
//! on it unless its tenant allows it (a tenant served from an origin of its own); and
//! the connection is the host's: hop-by-hop headers, those the plugin's `Connection`
//! names, and the body's framing (the host sets `Content-Length` from the body) are not
//! the plugin's to send.

use axum::http::HeaderName;

/// RFC 9110 7.6.1's hop-by-hop headers, the older `Proxy-Connection`, and the framing.
const CONNECTION_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

/// Headers that act on every path of the origin's cookies.
const COOKIE_HEADERS: &[&str] = &["set-cookie", "set-cookie2", "clear-site-data"];

/// A filter for one response's headers.
pub struct HeaderPolicy {
    allow_set_cookie: bool,
    /// Names listed in the plugin's own `Connection` header: hop-by-hop by its word.
    named: Vec<String>,
}

impl HeaderPolicy {
    pub fn new(allow_set_cookie: bool, headers: &[(String, String)]) -> Self {
        let named = headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("connection"))
            .flat_map(|(_, v)| v.split(','))
            .map(|name| name.trim().to_ascii_lowercase())
            .filter(|name| !name.is_empty())
            .collect();
        HeaderPolicy {
            allow_set_cookie,
            named,
        }
    }

    pub fn allows(&self, name: &HeaderName) -> bool {
        let name = name.as_str();
        !(CONNECTION_HEADERS.contains(&name)
            || self.named.iter().any(|n| n == name)
            || (!self.allow_set_cookie && COOKIE_HEADERS.contains(&name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_need_the_tenant_and_connection_headers_never_pass() {
        let headers = vec![
            ("Connection".to_string(), "close, X-Private".to_string()),
            ("x-private".to_string(), "v".to_string()),
        ];
        let name = |n: &str| HeaderName::try_from(n).unwrap();
        for allow_set_cookie in [false, true] {
            let policy = HeaderPolicy::new(allow_set_cookie, &headers);
            assert!(policy.allows(&name("content-type")));
            assert!(policy.allows(&name("x-kept")));
            for refused in ["connection", "x-private", "transfer-encoding", "upgrade"] {
                assert!(!policy.allows(&name(refused)), "{refused}");
            }
            assert_eq!(policy.allows(&name("Set-Cookie")), allow_set_cookie);
            assert_eq!(policy.allows(&name("clear-site-data")), allow_set_cookie);
        }
    }
}
