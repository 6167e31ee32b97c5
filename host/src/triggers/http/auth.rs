//! Who is calling a route: API keys (stored as SHA-256, held to usage plans) and JWT
//! bearer tokens (issuer, audience, keys from a JWKS file, scopes and groups).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::bindings::handler::Identity;
use crate::capabilities::kv::Namespace;
use crate::store::{Store, now_ms};
use crate::tenants::{JwtConfig, RouteConfig, TenantConfig, UsagePlan};
use crate::web::problem::Problem;

/// Why a tenant's auth material could not be built from its file.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AuthError {
    #[error("usage_plans.{plan}: {what} must be at least 1")]
    ZeroPlan { plan: String, what: &'static str },
    /// The I/O error's text.
    #[error("jwt.jwks_file {}: {error}", file.display())]
    JwksUnreadable { file: PathBuf, error: String },
    #[error("jwt.jwks_file {}: not a JWKS document: {error}", file.display())]
    NotJwks { file: PathBuf, error: String },
    #[error("jwt.jwks_file {}: holds no keys", file.display())]
    NoKeys { file: PathBuf },
}

impl AuthError {
    /// Whether the JWKS file is at fault (`jwt.jwks_file`), for the error's line.
    pub fn is_jwks(&self) -> bool {
        !matches!(self, AuthError::ZeroPlan { .. })
    }
}

/// Why a bearer token is not accepted.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum TokenError {
    /// jsonwebtoken's refusal: the token's form, signature or claims.
    #[error("{0}")]
    Invalid(String),
    #[error("algorithm {0:?} is not accepted")]
    Algorithm(Algorithm),
    #[error("unknown key id {0:?}")]
    UnknownKey(String),
    #[error("the token names no key id")]
    NoKeyId,
    #[error("key {kid:?} is for encryption, not signatures")]
    EncryptionKey { kid: String },
    #[error("key {kid:?} ({named}) does not accept tokens signed with {alg:?}")]
    KeyAlgorithm {
        kid: String,
        named: String,
        alg: Algorithm,
    },
    #[error("the token is issued in the future (iat {iat}, now {now})")]
    Future { iat: f64, now: f64 },
}

impl From<jsonwebtoken::errors::Error> for TokenError {
    fn from(e: jsonwebtoken::errors::Error) -> Self {
        TokenError::Invalid(e.to_string())
    }
}

/// A tenant's auth material, built when its config loads.
pub struct TenantAuth {
    tenant: String,
    /// Key digest -> (holder, plan).
    keys: HashMap<String, (String, Option<String>)>,
    plans: HashMap<String, Plan>,
    jwt: Option<JwtVerifier>,
}

struct Plan {
    limiter: DefaultKeyedRateLimiter<String>,
    quota_per_month: Option<u64>,
}

struct JwtVerifier {
    issuer: String,
    audience: String,
    keys: JwkSet,
    clock_skew_seconds: u64,
}

/// Claims orquesta reads; Cognito's names are accepted too.
#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    name: Option<String>,
    /// Space-separated, as OAuth 2.0 issues them.
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    scp: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default, rename = "cognito:groups")]
    cognito_groups: Vec<String>,
    /// Issued-at, in seconds (fractions allowed, as RFC 7519's NumericDate).
    #[serde(default)]
    iat: Option<f64>,
}

/// Asymmetric algorithms only: a JWKS holds public keys, and `none` or HMAC would let a
/// caller choose how their token is checked.
const ALGORITHMS: [Algorithm; 7] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
];

pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The credentials of `Authorization: Bearer <token>`. The scheme is case-insensitive
/// and may be followed by several spaces (RFC 9110, section 11.1 and 11.4).
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim_start_matches(' ');
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl TenantAuth {
    /// `dir` is the tenant file's directory, for a relative `jwks_file`.
    pub fn build(tenant: &str, config: &TenantConfig, dir: &Path) -> Result<Self, AuthError> {
        let keys = config
            .api_keys
            .iter()
            .map(|k| {
                (
                    k.digest().to_string(),
                    (k.name.clone(), k.usage_plan.clone()),
                )
            })
            .collect();
        let plans = config
            .usage_plans
            .iter()
            .map(|(name, plan)| Ok((name.clone(), Plan::new(name, plan)?)))
            .collect::<Result<_, AuthError>>()?;
        let jwt = config
            .jwt
            .as_ref()
            .map(|j| JwtVerifier::load(j, dir))
            .transpose()?;
        Ok(TenantAuth {
            tenant: tenant.to_string(),
            keys,
            plans,
            jwt,
        })
    }

    /// Checks `x-api-key` and the usage plan's rate; the key's holder becomes the
    /// identity. The monthly quota is charged later, through the [`QuotaCharge`], once
    /// nothing else refuses the request: a refused request does not count.
    pub fn api_key<'a>(
        &'a self,
        headers: &HeaderMap,
        route: &'a RouteConfig,
    ) -> Result<(Identity, Option<QuotaCharge<'a>>), Problem> {
        let key = headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Problem::unauthorized("this route needs an API key in x-api-key"))?;
        let (holder, key_plan) = self
            .keys
            .get(&sha256_hex(key))
            .ok_or_else(|| Problem::unauthorized("the API key is not valid for this tenant"))?;
        let mut charge = None;
        if let Some(plan_name) = route.usage_plan.as_ref().or(key_plan.as_ref())
            && let Some(plan) = self.plans.get(plan_name)
        {
            plan.check_rate(plan_name, holder)?;
            charge = plan.quota_per_month.map(|quota| QuotaCharge {
                tenant: &self.tenant,
                plan: plan_name,
                holder,
                quota,
            });
        }
        let identity = Identity {
            subject: holder.clone(),
            email: None,
            name: Some(holder.clone()),
            groups: vec![],
            scopes: vec![],
        };
        Ok((identity, charge))
    }

    /// Checks the bearer token and the route's scopes and groups.
    pub fn jwt(&self, headers: &HeaderMap, route: &RouteConfig) -> Result<Identity, Problem> {
        let verifier = self
            .jwt
            .as_ref()
            .ok_or_else(|| Problem::unauthorized("the tenant has no [jwt] settings"))?;
        let token = bearer(headers)
            .ok_or_else(|| Problem::unauthorized("this route needs a bearer token"))?;
        let claims = verifier
            .verify(token)
            .map_err(|e| Problem::unauthorized(format!("the bearer token is not valid: {e}")))?;
        let scopes: Vec<String> = claims
            .scope
            .as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .chain(claims.scp)
            .collect();
        let groups: Vec<String> = claims
            .groups
            .into_iter()
            .chain(claims.cognito_groups)
            .collect();
        if let Some(missing) = route.scopes.iter().find(|s| !scopes.contains(s)) {
            return Err(Problem::forbidden(format!(
                "the token lacks the scope `{missing}`"
            )));
        }
        if !route.groups.is_empty() && !route.groups.iter().any(|g| groups.contains(g)) {
            return Err(Problem::forbidden(format!(
                "the caller is in none of the groups {}",
                route.groups.join(", ")
            )));
        }
        Ok(Identity {
            subject: claims.sub,
            email: claims.email,
            name: claims.name,
            groups,
            scopes,
        })
    }
}

impl Plan {
    fn new(name: &str, plan: &UsagePlan) -> Result<Self, AuthError> {
        let at_least_one = |value: u32, what: &'static str| {
            NonZeroU32::new(value).ok_or_else(|| AuthError::ZeroPlan {
                plan: name.to_string(),
                what,
            })
        };
        let rate = at_least_one(plan.rate_per_second, "rate_per_second")?;
        let burst = at_least_one(plan.burst, "burst")?;
        Ok(Plan {
            limiter: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            quota_per_month: plan.quota_per_month,
        })
    }

    /// The rate, counted in memory per host.
    fn check_rate(&self, plan: &str, holder: &str) -> Result<(), Problem> {
        if let Err(not_until) = self.limiter.check_key(&holder.to_string()) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            return Err(Problem::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "Too Many Requests",
                format!("usage plan `{plan}` allows no more requests right now"),
            )
            .retry_after(wait.as_secs_f64().ceil() as u64));
        }
        Ok(())
    }
}

/// One request to count against a usage plan's monthly quota.
pub struct QuotaCharge<'a> {
    tenant: &'a str,
    plan: &'a str,
    holder: &'a str,
    quota: u64,
}

impl QuotaCharge<'_> {
    /// Counts the request in the store (so the count survives restarts and is shared by
    /// hosts on one database), unless this month's quota is used up.
    pub async fn charge(self, store: &Store) -> Result<(), Problem> {
        let (month, seconds_left) = month_of(now_ms());
        let ns = Namespace {
            tenant: self.tenant.to_string(),
            scope: format!("usage:{}:{}", self.plan, self.holder),
        };
        let cap = i64::try_from(self.quota).unwrap_or(i64::MAX);
        let counted = store
            .increment_capped(&ns, &month, 1, Some(cap))
            .await
            .map_err(|e| Problem::unavailable(format!("cannot count usage: {e}")))?;
        if counted.is_none() {
            return Err(Problem::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "Too Many Requests",
                format!(
                    "usage plan `{}` allows {} requests a month; this month's are used up",
                    self.plan, self.quota
                ),
            )
            .retry_after(seconds_left));
        }
        Ok(())
    }
}

impl JwtVerifier {
    fn load(config: &JwtConfig, dir: &Path) -> Result<Self, AuthError> {
        let file = dir.join(&config.jwks_file);
        let text = std::fs::read_to_string(&file).map_err(|e| AuthError::JwksUnreadable {
            file: file.clone(),
            error: e.to_string(),
        })?;
        let keys: JwkSet = serde_json::from_str(&text).map_err(|e| AuthError::NotJwks {
            file: file.clone(),
            error: e.to_string(),
        })?;
        if keys.keys.is_empty() {
            return Err(AuthError::NoKeys { file });
        }
        Ok(JwtVerifier {
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            keys,
            clock_skew_seconds: config.clock_skew_seconds,
        })
    }

    fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token)?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(TokenError::Algorithm(header.alg));
        }
        let jwk = match &header.kid {
            Some(kid) => self
                .keys
                .find(kid)
                .ok_or_else(|| TokenError::UnknownKey(kid.clone()))?,
            None if self.keys.keys.len() == 1 => &self.keys.keys[0],
            None => return Err(TokenError::NoKeyId),
        };
        key_accepts(jwk, header.alg)?;
        let key = DecodingKey::from_jwk(jwk)?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = self.clock_skew_seconds;
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)?.claims;
        // API Gateway's authorizer refuses a token issued in the future; jsonwebtoken
        // does not look at `iat`.
        let now = now_ms() as f64 / 1000.0;
        if let Some(iat) = claims.iat
            && iat > now + self.clock_skew_seconds as f64
        {
            return Err(TokenError::Future {
                iat,
                now: now.floor(),
            });
        }
        Ok(claims)
    }
}

/// Whether `jwk` may check a token signed with `alg`. A key that names its algorithm
/// checks only that one (an RS256 key does not accept PS256); a key without `alg`
/// accepts the RSASSA-PKCS1 or ECDSA algorithms of its type, as aws-jwt-verify (the
/// Cognito verifier) does; an encryption key checks nothing.
fn key_accepts(jwk: &Jwk, alg: Algorithm) -> Result<(), TokenError> {
    let kid = jwk
        .common
        .key_id
        .clone()
        .unwrap_or_else(|| "(no kid)".into());
    if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
        return Err(TokenError::EncryptionKey { kid });
    }
    let fits = match jwk.common.key_algorithm {
        Some(named) => named.to_string() == format!("{alg:?}"),
        None => match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => {
                matches!(alg, Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512)
            }
            AlgorithmParameters::EllipticCurve(ec) => {
                ec.curve == EllipticCurve::P256 && alg == Algorithm::ES256
            }
            _ => false,
        },
    };
    if fits {
        Ok(())
    } else {
        let named = jwk
            .common
            .key_algorithm
            .map(|a| a.to_string())
            .unwrap_or_else(|| "no algorithm".into());
        Err(TokenError::KeyAlgorithm { kid, named, alg })
    }
}

/// `("YYYY-MM", seconds until the next month)` for a time in Unix milliseconds (UTC).
fn month_of(ms: i64) -> (String, u64) {
    use chrono::{DateTime, Datelike, NaiveDate};
    let Some(now) = DateTime::from_timestamp_millis(ms) else {
        return ("out-of-range".into(), 1);
    };
    let (year, month) = (now.year(), now.month());
    let next = match month {
        12 => NaiveDate::from_ymd_opt(year + 1, 1, 1),
        _ => NaiveDate::from_ymd_opt(year, month + 1, 1),
    };
    let left = next
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| (d.and_utc() - now).num_seconds().max(1) as u64)
        .unwrap_or(1);
    (format!("{year:04}-{month:02}"), left)
}

/// Shared handle for a tenant runtime.
pub type SharedAuth = Arc<TenantAuth>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_and_time_left() {
        // 2026-11-22T00:00:00Z
        let ms = 1_795_305_600_000;
        let (month, left) = month_of(ms);
        assert_eq!(month, "2026-11");
        assert_eq!(left, 9 * 86_400);
        assert_eq!(month_of(0).0, "1970-01");
        // 2024-02-29T12:00:00Z, a leap day.
        assert_eq!(month_of(1_709_208_000_000).0, "2024-02");
        // December rolls into January.
        let (m, left) = month_of(1_798_761_599_000); // 2026-12-31T23:59:59Z
        assert_eq!((m.as_str(), left), ("2026-12", 1));
    }
}
