//! `[[admin_credentials]]`: bearer tokens that manage this tenant, and only it, through
//! the admin API. Stored as their SHA-256 like `[[api_keys]]`; every refusal is found
//! while parsing, so it names the line.

use std::collections::BTreeSet;

use serde::de::{self, Deserialize, Deserializer};

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
#[derive(Debug, Clone)]
pub struct AdminCredentialConfig {
    /// Who holds it, for logs and refusals.
    pub name: String,
    /// The lower-case hex SHA-256 of the token (the file's `hash` without `sha256:`).
    pub digest: String,
    pub scopes: BTreeSet<AdminScope>,
}

/// The file's form, checked into [`AdminCredentialConfig`].
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: String,
    hash: String,
    scopes: Vec<AdminScope>,
}

impl<'de> Deserialize<'de> for AdminCredentialConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Raw::deserialize(d)?;
        let name = raw.name;
        if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
            return Err(de::Error::custom(format!(
                "admin_credentials: name {name:?} must be 1-64 characters, none a control"
            )));
        }
        if !is_sha256_hash(&raw.hash) {
            return Err(de::Error::custom(format!(
                "admin_credentials `{name}`: hash must be \"sha256:\" and 64 lower-case hex digits (orquesta hash-key prints it)"
            )));
        }
        if raw.scopes.is_empty() {
            return Err(de::Error::custom(format!(
                "admin_credentials `{name}`: scopes must name at least one of read, operate, deploy"
            )));
        }
        Ok(AdminCredentialConfig {
            name,
            digest: raw.hash["sha256:".len()..].to_string(),
            scopes: raw.scopes.into_iter().collect(),
        })
    }
}

/// Every credential of the file: names and hashes each appear once (one token with two
/// names would make the name a log shows a guess).
#[derive(Debug, Clone, Default)]
pub struct AdminCredentials(pub Vec<AdminCredentialConfig>);

impl<'de> Deserialize<'de> for AdminCredentials {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let all = Vec::<AdminCredentialConfig>::deserialize(d)?;
        let mut names = BTreeSet::new();
        let mut digests = BTreeSet::new();
        for c in &all {
            if !names.insert(c.name.as_str()) {
                return Err(de::Error::custom(format!(
                    "admin_credentials: name `{}` is declared twice",
                    c.name
                )));
            }
            if !digests.insert(c.digest.as_str()) {
                return Err(de::Error::custom(format!(
                    "admin_credentials `{}`: its hash is another credential's too",
                    c.name
                )));
            }
        }
        Ok(AdminCredentials(all))
    }
}

impl AdminCredentials {
    /// The credential whose digest is `digest`.
    pub fn find(&self, digest: &str) -> Option<&AdminCredentialConfig> {
        self.0.iter().find(|c| c.digest == digest)
    }
}
