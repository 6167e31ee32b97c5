//! The HTTP side of a tenant file: routes, API keys, usage plans and JWT settings.

use std::path::PathBuf;

use serde::Deserialize;

use super::TenantConfig;

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
    pub fn parse(path: &str) -> Result<Self, String> {
        if !path.starts_with('/') {
            return Err(format!("route path {path:?} must start with /"));
        }
        let parts: Vec<&str> = path[1..].split('/').filter(|p| !p.is_empty()).collect();
        let mut segments = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let segment = match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) if name.ends_with('+') => {
                    if i + 1 != parts.len() {
                        return Err(format!("in {path:?}, {{{name}}} must be the last segment"));
                    }
                    Segment::Rest(name.trim_end_matches('+').to_string())
                }
                Some(name) => Segment::Param(name.to_string()),
                None if part.contains(['{', '}']) => {
                    return Err(format!(
                        "in {path:?}, segment {part:?} is not a literal or {{name}}"
                    ));
                }
                None => Segment::Literal(part.to_string()),
            };
            if let Segment::Param(n) | Segment::Rest(n) = &segment
                && (n.is_empty() || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            {
                return Err(format!(
                    "in {path:?}, parameter name {n:?} is not an identifier"
                ));
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

pub(super) fn validate(tenant: &TenantConfig) -> Result<(), String> {
    for (i, route) in tenant.routes.iter().enumerate() {
        let at = format!("routes[{i}] ({} {})", route.method, route.path);
        if !METHODS.contains(&route.method.to_ascii_uppercase().as_str()) {
            return Err(format!("{at}: unknown method {:?}", route.method));
        }
        RouteTemplate::parse(&route.path).map_err(|e| format!("{at}: {e}"))?;
        if !tenant.plugins.contains_key(&route.plugin) {
            return Err(format!("{at}: no plugin named `{}`", route.plugin));
        }
        match route.auth {
            AuthMode::Jwt if tenant.jwt.is_none() => {
                return Err(format!("{at}: auth = \"jwt\" needs a [jwt] section"));
            }
            AuthMode::ApiKey if tenant.api_keys.is_empty() => {
                return Err(format!("{at}: auth = \"api_key\" needs [[api_keys]]"));
            }
            AuthMode::None | AuthMode::ApiKey
                if !route.scopes.is_empty() || !route.groups.is_empty() =>
            {
                return Err(format!("{at}: scopes and groups need auth = \"jwt\""));
            }
            _ => {}
        }
        if let Some(plan) = &route.usage_plan
            && !tenant.usage_plans.contains_key(plan)
        {
            return Err(format!("{at}: no usage plan named `{plan}`"));
        }
    }
    if let Some(jwt) = &tenant.jwt {
        use crate::engine::limits::ceiling::JWT_CLOCK_SKEW_SECONDS;
        if jwt.clock_skew_seconds > JWT_CLOCK_SKEW_SECONDS {
            return Err(format!(
                "jwt.clock_skew_seconds: at most {JWT_CLOCK_SKEW_SECONDS}, got {}",
                jwt.clock_skew_seconds
            ));
        }
    }
    for (name, plan) in &tenant.usage_plans {
        if plan.rate_per_second == 0 || plan.burst == 0 {
            return Err(format!(
                "usage_plans.{name}: rate_per_second and burst must be at least 1"
            ));
        }
    }
    for key in &tenant.api_keys {
        let digest = key.digest();
        if !key.hash.starts_with("sha256:")
            || digest.len() != 64
            || !digest
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        {
            return Err(format!(
                "api_keys `{}`: hash must be \"sha256:\" and 64 lower-case hex digits (orquesta hash-key prints it)",
                key.name
            ));
        }
        if let Some(plan) = &key.usage_plan
            && !tenant.usage_plans.contains_key(plan)
        {
            return Err(format!(
                "api_keys `{}`: no usage plan named `{plan}`",
                key.name
            ));
        }
    }
    Ok(())
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
        assert!(RouteTemplate::parse("/a/{x+}/b").is_err());
        assert!(RouteTemplate::parse("a").is_err());
        assert!(RouteTemplate::parse("/a/b{c}").is_err());
    }
}
