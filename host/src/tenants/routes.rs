//! The HTTP side of a tenant file: routes, API keys, usage plans and JWT settings.

use std::path::PathBuf;

use serde::Deserialize;
use thiserror::Error;

use super::TenantConfig;

/// Why a route path template is not one.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TemplateError {
    #[error("route path {0:?} must start with /")]
    NotAbsolute(String),
    #[error("in {path:?}, {{{name}}} must be the last segment")]
    RestNotLast { path: String, name: String },
    #[error("in {path:?}, segment {segment:?} is not a literal or {{name}}")]
    BadSegment { path: String, segment: String },
    #[error("in {path:?}, parameter name {name:?} is not an identifier")]
    BadParameter { path: String, name: String },
}

/// Why the tenant file's HTTP side was refused. `at` names the route as
/// `routes[i] (METHOD /path)`, or the API key by its name.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RouteError {
    #[error("{at}: unknown method {method:?}")]
    Method { at: String, method: String },
    #[error("{at}: {source}")]
    Template { at: String, source: TemplateError },
    #[error("{at}: no plugin named `{plugin}`")]
    NoPlugin { at: String, plugin: String },
    #[error("{at}: auth = \"jwt\" needs a [jwt] section")]
    NoJwt { at: String },
    #[error("{at}: auth = \"api_key\" needs [[api_keys]]")]
    NoApiKeys { at: String },
    #[error("{at}: scopes and groups need auth = \"jwt\"")]
    ScopesWithoutJwt { at: String },
    #[error("{at}: no usage plan named `{plan}`")]
    NoPlan { at: String, plan: String },
    #[error("jwt.clock_skew_seconds: at most {max}, got {got}")]
    ClockSkew { got: u64, max: u64 },
    #[error("usage_plans.{plan}: rate_per_second and burst must be at least 1")]
    ZeroRate { plan: String },
    #[error(
        "api_keys `{key}`: hash must be \"sha256:\" and 64 lower-case hex digits (orquesta hash-key prints it)"
    )]
    KeyHash { key: String },
}

/// `[[routes]]`: a method and path template handled by a plugin.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// An HTTP method, or `ANY`.
    pub method: String,
    /// `/appointments/{id}`; a last segment `{name+}` takes the rest of the path.
    pub path: String,
    pub plugin: String,
    #[serde(default)]
    pub auth: AuthMode,
    /// JWT scopes the caller must all have.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// JWT groups the caller must have at least one of.
    #[serde(default)]
    pub groups: Vec<String>,
    /// For `api_key` routes: the plan every key is held to on this route, overriding the
    /// key's own plan.
    #[serde(default)]
    pub usage_plan: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    #[default]
    None,
    ApiKey,
    Jwt,
}

/// `[usage_plans.NAME]`, as API Gateway's usage plans.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsagePlan {
    /// Sustained requests per second.
    pub rate_per_second: u32,
    /// Requests allowed at once above the rate.
    pub burst: u32,
    /// Requests per calendar month (UTC); none = unlimited.
    #[serde(default)]
    pub quota_per_month: Option<u64>,
}

/// `[[api_keys]]`: a key is stored only as its SHA-256 (`hash = "sha256:<hex>"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// Who holds the key; the plugin sees it as the identity's subject.
    pub name: String,
    pub hash: String,
    #[serde(default)]
    pub usage_plan: Option<String>,
}

impl ApiKeyConfig {
    /// The lower-case hex digest, without the `sha256:` prefix.
    pub fn digest(&self) -> &str {
        self.hash.strip_prefix("sha256:").unwrap_or(&self.hash)
    }
}

/// `[jwt]`: bearer tokens are checked against these.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    pub issuer: String,
    pub audience: String,
    /// A JWKS document; relative paths are relative to the tenant file.
    pub jwks_file: PathBuf,
    /// Seconds by which this host's clock may disagree with the issuer's when `exp`,
    /// `nbf` and `iat` are checked. 0, as API Gateway's JWT authorizer and
    /// aws-jwt-verify (`graceSeconds`) check them; at most
    /// [`ceiling::JWT_CLOCK_SKEW_SECONDS`](crate::engine::limits::ceiling::JWT_CLOCK_SKEW_SECONDS).
    #[serde(default)]
    pub clock_skew_seconds: u64,
}

/// A parsed path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTemplate {
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    /// `{name+}`: the rest of the path, at least one segment.
    Rest(String),
}

impl RouteTemplate {
    pub fn parse(path: &str) -> Result<Self, TemplateError> {
        if !path.starts_with('/') {
            return Err(TemplateError::NotAbsolute(path.to_string()));
        }
        let parts: Vec<&str> = path[1..].split('/').filter(|p| !p.is_empty()).collect();
        let mut segments = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let segment = match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) if name.ends_with('+') => {
                    if i + 1 != parts.len() {
                        return Err(TemplateError::RestNotLast {
                            path: path.to_string(),
                            name: name.to_string(),
                        });
                    }
                    Segment::Rest(name.trim_end_matches('+').to_string())
                }
                Some(name) => Segment::Param(name.to_string()),
                None if part.contains(['{', '}']) => {
                    return Err(TemplateError::BadSegment {
                        path: path.to_string(),
                        segment: part.to_string(),
                    });
                }
                None => Segment::Literal(part.to_string()),
            };
            if let Segment::Param(n) | Segment::Rest(n) = &segment
                && (n.is_empty() || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            {
                return Err(TemplateError::BadParameter {
                    path: path.to_string(),
                    name: n.clone(),
                });
            }
            segments.push(segment);
        }
        Ok(RouteTemplate { segments })
    }

    /// The parameters when `path` matches. `path` is as the client sent it,
    /// percent-encoded: segments are split first and decoded after, so an encoded `/`
    /// (`%2F`) stays inside its segment's value, as API Gateway routes it.
    pub fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let decoded = |part: &str| {
            percent_encoding::percent_decode_str(part)
                .decode_utf8_lossy()
                .into_owned()
        };
        let mut params = Vec::new();
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Literal(l) => {
                    let part = parts.get(i)?;
                    if part != l && decoded(part) != *l {
                        return None;
                    }
                }
                Segment::Param(name) => params.push((name.clone(), decoded(parts.get(i)?))),
                Segment::Rest(name) => {
                    if i >= parts.len() {
                        return None;
                    }
                    let rest: Vec<String> = parts[i..].iter().map(|p| decoded(p)).collect();
                    params.push((name.clone(), rest.join("/")));
                    return Some(params);
                }
            }
        }
        (parts.len() == self.segments.len()).then_some(params)
    }

    /// More literal segments first, so `/a/new` wins over `/a/{id}`.
    pub fn specificity(&self) -> (usize, usize) {
        let literals = self
            .segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count();
        (literals, self.segments.len())
    }
}

const METHODS: [&str; 8] = [
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY",
];

pub(super) fn validate(tenant: &TenantConfig) -> Result<(), RouteError> {
    for (i, route) in tenant.routes.iter().enumerate() {
        let at = format!("routes[{i}] ({} {})", route.method, route.path);
        if !METHODS.contains(&route.method.to_ascii_uppercase().as_str()) {
            let method = route.method.clone();
            return Err(RouteError::Method { at, method });
        }
        if let Err(source) = RouteTemplate::parse(&route.path) {
            return Err(RouteError::Template { at, source });
        }
        if !tenant.plugins.contains_key(&route.plugin) {
            let plugin = route.plugin.clone();
            return Err(RouteError::NoPlugin { at, plugin });
        }
        match route.auth {
            AuthMode::Jwt if tenant.jwt.is_none() => return Err(RouteError::NoJwt { at }),
            AuthMode::ApiKey if tenant.api_keys.is_empty() => {
                return Err(RouteError::NoApiKeys { at });
            }
            AuthMode::None | AuthMode::ApiKey
                if !route.scopes.is_empty() || !route.groups.is_empty() =>
            {
                return Err(RouteError::ScopesWithoutJwt { at });
            }
            _ => {}
        }
        check_plan(tenant, at, route.usage_plan.as_ref())?;
    }
    if let Some(jwt) = &tenant.jwt {
        use crate::engine::limits::ceiling::JWT_CLOCK_SKEW_SECONDS;
        if jwt.clock_skew_seconds > JWT_CLOCK_SKEW_SECONDS {
            return Err(RouteError::ClockSkew {
                got: jwt.clock_skew_seconds,
                max: JWT_CLOCK_SKEW_SECONDS,
            });
        }
    }
    for (name, plan) in &tenant.usage_plans {
        if plan.rate_per_second == 0 || plan.burst == 0 {
            return Err(RouteError::ZeroRate { plan: name.clone() });
        }
    }
    for key in &tenant.api_keys {
        if !is_sha256_hash(&key.hash) {
            return Err(RouteError::KeyHash {
                key: key.name.clone(),
            });
        }
        check_plan(
            tenant,
            format!("api_keys `{}`", key.name),
            key.usage_plan.as_ref(),
        )?;
    }
    Ok(())
}

/// `sha256:` and 64 lower-case hex digits: how API keys and admin credentials are stored.
pub(crate) fn is_sha256_hash(hash: &str) -> bool {
    hash.strip_prefix("sha256:").is_some_and(|digest| {
        digest.len() == 64
            && digest
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    })
}

/// A usage plan named at `at` is one of the tenant's.
fn check_plan(tenant: &TenantConfig, at: String, plan: Option<&String>) -> Result<(), RouteError> {
    match plan {
        Some(plan) if !tenant.usage_plans.contains_key(plan) => Err(RouteError::NoPlan {
            at,
            plan: plan.clone(),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_params_and_rest() {
        let t = RouteTemplate::parse("/appointments/{insuredId}").unwrap();
        assert_eq!(
            t.matches("/appointments/00042"),
            Some(vec![("insuredId".into(), "00042".into())])
        );
        assert_eq!(t.matches("/appointments"), None);
        assert_eq!(t.matches("/appointments/1/2"), None);
        let rest = RouteTemplate::parse("/files/{path+}").unwrap();
        assert_eq!(
            rest.matches("/files/a/b.txt"),
            Some(vec![("path".into(), "a/b.txt".into())])
        );
        assert_eq!(rest.matches("/files"), None);
        // Split on the path's own slashes, then decoded: `%2F` stays in its segment.
        assert_eq!(
            t.matches("/appointments/a%2Fb%20c"),
            Some(vec![("insuredId".into(), "a/b c".into())])
        );
        assert_eq!(
            rest.matches("/files/a%2Fb/c"),
            Some(vec![("path".into(), "a/b/c".into())])
        );
        let literal = RouteTemplate::parse("/caf\u{e9}/{x}").unwrap();
        assert!(literal.matches("/caf%C3%A9/1").is_some());
        assert!(matches!(
            RouteTemplate::parse("/a/{x+}/b"),
            Err(TemplateError::RestNotLast { name, .. }) if name == "x+"
        ));
        assert_eq!(
            RouteTemplate::parse("a"),
            Err(TemplateError::NotAbsolute("a".into()))
        );
        assert!(matches!(
            RouteTemplate::parse("/a/b{c}"),
            Err(TemplateError::BadSegment { segment, .. }) if segment == "b{c}"
        ));
        assert!(matches!(
            RouteTemplate::parse("/a/{x-y}"),
            Err(TemplateError::BadParameter { name, .. }) if name == "x-y"
        ));
    }
}
