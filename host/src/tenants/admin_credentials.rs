//! `[[admin_credentials]]`: bearer tokens that manage this tenant, and only it, through
//! the admin API. Stored as their SHA-256 like `[[api_keys]]`; each is kept with its
//! place in the file, so a refusal names the credential's line.

use std::collections::BTreeSet;
use std::ops::Range;

use serde::de::{Deserialize, Deserializer};
use toml::Spanned;

use super::TenantError;
use super::routes::is_sha256_hash;

/// What a tenant credential may do on its own tenant's admin routes. Which route needs
/// which scope is one table, `server::admin::access`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdminScope {
    /// Look: list and read executions, queues, messages, blobs, schedules, deliveries.
    Read,
    /// Act on what runs: start, stop and redrive executions, send and redrive messages,
    /// publish, put events, answer tasks, put blobs.
    Operate,
    /// Change what the tenant runs. No tenant route needs it yet: plugin uploads and
    /// reloads are host-wide, so they stay the host admin token's.
    Deploy,
}

impl AdminScope {
    pub fn as_str(self) -> &'static str {
        match self {
            AdminScope::Read => "read",
            AdminScope::Operate => "operate",
            AdminScope::Deploy => "deploy",
        }
    }
}

/// One credential of the tenant.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminCredentialConfig {
    /// Who holds it, for logs and refusals.
    pub name: String,
    /// `sha256:` and the lower-case hex digest of the token.
    pub hash: String,
    pub scopes: BTreeSet<AdminScope>,
}

impl AdminCredentialConfig {
    /// The lower-case hex digest, without the `sha256:` prefix.
    pub fn digest(&self) -> &str {
        self.hash.strip_prefix("sha256:").unwrap_or(&self.hash)
    }
}

/// Every credential of the file, each with where it is written (the refusals of
/// [`AdminCredentials::check`] name its line).
#[derive(Debug, Clone, Default)]
pub struct AdminCredentials(pub Vec<Spanned<AdminCredentialConfig>>);

impl<'de> Deserialize<'de> for AdminCredentials {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::deserialize(d).map(AdminCredentials)
    }
}

impl AdminCredentials {
    /// The credential whose digest is `digest`.
    pub fn find(&self, digest: &str) -> Option<&AdminCredentialConfig> {
        self.0
            .iter()
            .map(Spanned::get_ref)
            .find(|c| c.digest() == digest)
    }

    /// Hashes, names and scopes; names and hashes each appear once (one token with two
    /// names would make the name a log shows a guess). On refusal, the byte span of the
    /// credential refused.
    pub fn check(&self) -> Result<(), (Range<usize>, TenantError)> {
        let mut names = BTreeSet::new();
        let mut digests = BTreeSet::new();
        for (i, spanned) in self.0.iter().enumerate() {
            let c = spanned.get_ref();
            let refuse = |at: String, rule| Err((spanned.span(), TenantError::rule(at, rule)));
            let at = format!("admin_credentials `{}`", c.name);
            if c.name.is_empty() || c.name.len() > 64 || c.name.chars().any(char::is_control) {
                return refuse(
                    format!("admin_credentials[{i}].name"),
                    "must be 1-64 characters, none a control",
                );
            }
            if !is_sha256_hash(&c.hash) {
                return refuse(
                    at,
                    "hash must be \"sha256:\" and 64 lower-case hex digits (orquesta hash-key prints it)",
                );
            }
            if c.scopes.is_empty() {
                return refuse(at, "scopes must name at least one of read, operate, deploy");
            }
            if !names.insert(c.name.as_str()) {
                return refuse(at, "the name is declared twice");
            }
            if !digests.insert(c.digest()) {
                return refuse(at, "its hash is another credential's too");
            }
        }
        Ok(())
    }
}
