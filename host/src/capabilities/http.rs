//! `orquesta:plugin/http`: outbound requests, only to the hosts the tenant allows.

use async_trait::async_trait;
use serde::Deserialize;

use super::{Caller, CapError, Grant};
use crate::bindings::http::Host;
pub use crate::bindings::http::{Request, Response};
use crate::bindings::types::HostError;
use crate::engine::Invocation;

/// Outbound hosts (`api.example.com`, `*.example.com`).
pub const HOSTS: Grant = Grant {
    key: "hosts",
    names: "host",
};

pub const CAPABILITY: super::Capability = super::Capability {
    interface: "http",
    grants: &[HOSTS],
};

/// `[http]`: the tenant's outbound HTTP and response settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Lets plugins reach loopback, private and link-local addresses (refused by default:
    /// they are how SSRF reaches internal services and cloud metadata).
    #[serde(default)]
    pub allow_private: bool,
    /// Lets plugins set and clear cookies (`Set-Cookie`, `Clear-Site-Data`): only for a
    /// tenant served from an origin of its own, as every tenant and `/admin` share the
    /// host's.
    #[serde(default)]
    pub allow_set_cookie: bool,
}

/// Sends a request the grants already allowed.
#[async_trait]
pub trait OutboundHttp: Send + Sync {
    async fn send(&self, caller: &Caller<'_>, request: Request) -> Result<Response, CapError>;
}

/// Whether the allow-list `hosts` lets a plugin call `url`. Entries are host names,
/// `*.domain` for any subdomain, or `*`.
pub fn host_allowed(hosts: &[String], url: &url::Url) -> Result<(), CapError> {
    let host = url
        .host_str()
        .ok_or_else(|| CapError::Invalid(format!("URL {url} has no host")))?
        .to_ascii_lowercase();
    let allowed = hosts.iter().any(|g| {
        let g = g.to_ascii_lowercase();
        g == "*"
            || g == host
            || g.strip_prefix("*.")
                .is_some_and(|domain| host.ends_with(&format!(".{domain}")))
    });
    if allowed {
        Ok(())
    } else {
        Err(CapError::Denied(format!(
            "host `{host}` is not in this plugin's allowed hosts"
        )))
    }
}

/// Parses and checks a plugin's URL: http or https, and an allowed host.
pub fn check_url(hosts: &[String], raw: &str) -> Result<url::Url, CapError> {
    let url =
        url::Url::parse(raw).map_err(|e| CapError::Invalid(format!("bad URL {raw:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(CapError::Invalid(format!(
            "only http and https URLs are allowed, got {}",
            url.scheme()
        )));
    }
    host_allowed(hosts, &url)?;
    Ok(url)
}

impl Host for Invocation {
    async fn send(&mut self, request: Request) -> Result<Response, HostError> {
        check_url(self.ctx.capabilities.grants.list(HOSTS), &request.url)?;
        let caller = self.caller();
        Ok(self
            .ctx
            .capabilities
            .backends
            .http
            .send(&caller, request)
            .await?)
    }
}

impl Invocation {
    pub(crate) fn caller(&self) -> Caller<'_> {
        Caller {
            tenant: &self.ctx.tenant,
            plugin: &self.ctx.plugin,
            invocation: &self.id,
            depth: self.depth.saturating_add(1),
        }
    }
}

/// The answer where this host has no http backend.
#[async_trait]
impl OutboundHttp for super::Unavailable {
    async fn send(&self, _: &Caller<'_>, _: Request) -> Result<Response, CapError> {
        super::unavailable::answer("outbound http")
    }
}
