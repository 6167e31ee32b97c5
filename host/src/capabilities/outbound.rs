//! The real outbound HTTP backend: reqwest with pooled connections shared by every
//! invocation, and an address policy applied after DNS resolution, so a plugin cannot
//! reach loopback, private networks or cloud metadata through a friendly-looking name.
//!
//! Redirects are returned to the plugin, not followed: a redirect may point at a host the
//! plugin was not granted, and the grant check only sees the URL the plugin asked for.
//! Proxies from the environment (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`) are not used:
//! through a proxy, the address policy would only see the proxy's address, never the
//! destination's (docs/DECISIONS.md).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::http::{OutboundHttp, Request, Response};
use super::{Caller, CapError};

/// Limits of outbound requests, whatever the tenant.
#[derive(Debug, Clone)]
pub struct OutboundConfig {
    /// When the plugin gives no timeout. The MOK API is given 30 s in production.
    pub default_timeout: Duration,
    /// The most a plugin may ask for; longer waits belong in a workflow's Wait state.
    pub max_timeout: Duration,
    /// Responses past this are refused: they would not fit a plugin's memory anyway, and
    /// large data belongs in blobs.
    pub max_response_bytes: usize,
    /// Connecting to a host that does not answer fails this fast.
    pub connect_timeout: Duration,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            default_timeout: Duration::from_secs(30),
            max_timeout: Duration::from_secs(60),
            max_response_bytes: 10 << 20,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// One per host: two connection pools, one for tenants that may reach private
/// addresses and one for those that may not.
#[derive(Clone)]
pub struct SharedHttpClient {
    public_only: reqwest::Client,
    any_address: reqwest::Client,
    config: Arc<OutboundConfig>,
}

impl SharedHttpClient {
    pub fn new(config: OutboundConfig) -> Result<Self, reqwest::Error> {
        let build = |public_only: bool| {
            let mut builder = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .connect_timeout(config.connect_timeout)
                .pool_idle_timeout(Duration::from_secs(90));
            if public_only {
                builder = builder.dns_resolver(Arc::new(PublicAddressesOnly));
            }
            builder.build()
        };
        Ok(SharedHttpClient {
            public_only: build(true)?,
            any_address: build(false)?,
            config: Arc::new(config),
        })
    }

    /// The backend for a tenant with this address policy.
    pub fn for_tenant(&self, allow_private: bool) -> Arc<dyn OutboundHttp> {
        Arc::new(TenantHttp {
            client: if allow_private {
                self.any_address.clone()
            } else {
                self.public_only.clone()
            },
            allow_private,
            config: self.config.clone(),
        })
    }
}

struct TenantHttp {
    client: reqwest::Client,
    allow_private: bool,
    config: Arc<OutboundConfig>,
}

/// Why a request was stopped before it left: found in reqwest's error chain.
#[derive(Debug)]
struct ForbiddenAddress(String);

impl std::fmt::Display for ForbiddenAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ForbiddenAddress {}

/// Resolves names, keeping only public addresses.
struct PublicAddressesOnly;

impl reqwest::dns::Resolve for PublicAddressesOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = resolved
                .iter()
                .copied()
                .filter(|a| !is_forbidden(a.ip()))
                .collect();
            if public.is_empty() {
                let reason =
                    format!("`{host}` resolves only to private, loopback or link-local addresses");
                return Err(Box::new(ForbiddenAddress(reason)) as Box<_>);
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

pub use super::addresses::is_forbidden;

impl TenantHttp {
    /// reqwest does not resolve IP literals, so they are checked here.
    fn check_literal(&self, url: &reqwest::Url) -> Result<(), CapError> {
        if self.allow_private {
            return Ok(());
        }
        let ip = match url.host() {
            Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
            _ => return Ok(()),
        };
        if is_forbidden(ip) {
            return Err(CapError::Denied(format!(
                "{ip} is a private, loopback or link-local address; the tenant does not allow those"
            )));
        }
        Ok(())
    }
}

fn classify(e: reqwest::Error) -> CapError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if let Some(forbidden) = err.downcast_ref::<ForbiddenAddress>() {
            return CapError::Denied(forbidden.0.clone());
        }
        source = err.source();
    }
    if e.is_timeout() {
        return CapError::Timeout(format!("the request timed out: {e}"));
    }
    if e.is_builder() || e.is_request() && !e.is_connect() {
        return CapError::Invalid(format!("the request is not valid: {e}"));
    }
    CapError::Failed(format!("the request failed: {e}"))
}

#[async_trait]
impl OutboundHttp for TenantHttp {
    async fn send(&self, _caller: &Caller<'_>, request: Request) -> Result<Response, CapError> {
        let url = reqwest::Url::parse(&request.url)
            .map_err(|e| CapError::Invalid(format!("bad URL {:?}: {e}", request.url)))?;
        self.check_literal(&url)?;
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| CapError::Invalid(format!("bad method {:?}", request.method)))?;
        let timeout = request
            .timeout_ms
            .map(|ms| Duration::from_millis(u64::from(ms)))
            .unwrap_or(self.config.default_timeout)
            .min(self.config.max_timeout);
        let mut builder = self
            .client
            .request(method, url)
            .timeout(timeout)
            .body(request.body);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let mut answer = builder.send().await.map_err(classify)?;
        let status = answer.status().as_u16();
        let headers = answer
            .headers()
            .iter()
            .map(|(k, v)| {
                let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
                (k.as_str().to_ascii_lowercase(), value)
            })
            .collect();
        let cap = self.config.max_response_bytes;
        if answer.content_length().is_some_and(|n| n as usize > cap) {
            return Err(CapError::Invalid(format!(
                "the response is larger than {cap} bytes"
            )));
        }
        let mut body = Vec::new();
        while let Some(chunk) = answer.chunk().await.map_err(classify)? {
            if body.len() + chunk.len() > cap {
                return Err(CapError::Invalid(format!(
                    "the response is larger than {cap} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::get;

    fn caller() -> Caller<'static> {
        Caller {
            tenant: "t",
            plugin: "p",
            invocation: "i",
            depth: 0,
        }
    }

    fn request(url: &str) -> Request {
        Request {
            method: "GET".into(),
            url: url.into(),
            headers: vec![("x-probe".into(), "1".into())],
            body: vec![],
            timeout_ms: None,
        }
    }

    /// A loopback server: `/ok`, `/slow` (2 s), `/big` (2 MiB), `/redirect`.
    async fn upstream() -> String {
        let app = Router::new()
            .route(
                "/ok",
                get(|headers: axum::http::HeaderMap| async move {
                    let probe = headers
                        .get("x-probe")
                        .map(|v| v.to_str().unwrap_or("").to_string());
                    (
                        [("x-answer", "yes")],
                        format!("hello {}", probe.unwrap_or_default()),
                    )
                }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    "late"
                }),
            )
            .route("/big", get(|| async { vec![b'x'; 2 << 20] }))
            .route(
                "/redirect",
                get(|| async {
                    (
                        axum::http::StatusCode::FOUND,
                        [("location", "http://169.254.169.254/")],
                    )
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    fn client(max_response_bytes: usize) -> SharedHttpClient {
        SharedHttpClient::new(OutboundConfig {
            max_response_bytes,
            ..OutboundConfig::default()
        })
        .unwrap()
    }

    #[tokio::test]
    async fn a_tenant_allowing_private_addresses_reaches_loopback() {
        let base = upstream().await;
        let http = client(1 << 20).for_tenant(true);
        let answer = http
            .send(&caller(), request(&format!("{base}/ok")))
            .await
            .unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body, b"hello 1");
        assert!(answer.headers.contains(&("x-answer".into(), "yes".into())));
    }

    #[tokio::test]
    async fn private_addresses_are_refused_by_default() {
        let base = upstream().await;
        let port = base.rsplit(':').next().unwrap().to_string();
        let http = client(1 << 20).for_tenant(false);
        for url in [
            format!("{base}/ok"),
            format!("http://localhost:{port}/ok"),
            "http://169.254.169.254/latest/meta-data/".to_string(),
            "http://10.0.0.1/".to_string(),
            "http://192.168.1.1/".to_string(),
            "http://100.64.0.1/".to_string(),
            format!("http://[::1]:{port}/ok"),
            format!("http://[::ffff:127.0.0.1]:{port}/ok"),
            "http://[fd00::1]/".to_string(),
            "http://0.0.0.0/".to_string(),
        ] {
            let err = http.send(&caller(), request(&url)).await.unwrap_err();
            assert!(matches!(err, CapError::Denied(_)), "{url}: {err}");
        }
    }

    #[tokio::test]
    async fn redirects_are_returned_not_followed() {
        let base = upstream().await;
        let http = client(1 << 20).for_tenant(true);
        let answer = http
            .send(&caller(), request(&format!("{base}/redirect")))
            .await
            .unwrap();
        assert_eq!(answer.status, 302);
        assert!(
            answer
                .headers
                .contains(&("location".into(), "http://169.254.169.254/".into()))
        );
    }

    #[tokio::test]
    async fn slow_answers_time_out() {
        let base = upstream().await;
        let http = client(1 << 20).for_tenant(true);
        let mut slow = request(&format!("{base}/slow"));
        slow.timeout_ms = Some(200);
        let err = http.send(&caller(), slow).await.unwrap_err();
        assert!(matches!(err, CapError::Timeout(_)), "{err}");
    }

    #[tokio::test]
    async fn oversized_answers_are_refused() {
        let base = upstream().await;
        let http = client(1 << 20).for_tenant(true);
        let err = http
            .send(&caller(), request(&format!("{base}/big")))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("larger than 1048576 bytes"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn bad_methods_and_urls_are_invalid() {
        let http = client(1 << 20).for_tenant(true);
        let mut bad = request("http://example.com/");
        bad.method = "GE T".into();
        assert!(matches!(
            http.send(&caller(), bad).await,
            Err(CapError::Invalid(_))
        ));
        let err = http
            .send(&caller(), request("not a url"))
            .await
            .unwrap_err();
        assert!(matches!(err, CapError::Invalid(_)), "{err}");
    }

    #[test]
    fn public_addresses_are_allowed() {
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "151.101.1.69"] {
            assert!(!is_forbidden(ip.parse().unwrap()), "{ip}");
        }
    }
}
