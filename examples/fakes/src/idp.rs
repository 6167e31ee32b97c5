//! A fake identity provider: signs JWTs with the demo key in `examples/idp/`, as Cognito
//! or any OAuth 2.0 server would issue them, so the demo can be driven with curl.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

/// The demo tenants trust this issuer and audience.
pub const ISSUER: &str = "https://idp.orquesta.local/demo";
pub const AUDIENCE: &str = "orquesta-demo";
pub const KID: &str = "demo";

/// Public on purpose: it only signs demo and test tokens.
const DEMO_KEY: &str = include_str!("../../idp/demo-key.pem");

/// A token for `sub` with the demo issuer and audience, valid for `minutes`; `extra`
/// claims (email, name, scope, groups) are merged in and may override the defaults.
pub fn token(sub: &str, minutes: u64, extra: Value) -> anyhow::Result<String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let mut claims = json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": sub,
        "iat": now, "exp": now + minutes * 60,
    });
    if let (Some(claims), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
        claims.extend(extra.clone());
    }
    sign(&claims)
}

/// Signs any claims with the demo key (tests use it for expired or foreign tokens).
pub fn sign(claims: &Value) -> anyhow::Result<String> {
    let key = EncodingKey::from_rsa_pem(DEMO_KEY.as_bytes()).context("demo key")?;
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(KID.into());
    encode(&header, claims, &key).context("cannot sign the token")
}
