//! Where a secret comes from. The tenant file only names the source.

use std::path::PathBuf;

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use thiserror::Error;

use crate::capabilities::Secret;

/// `{ env = "VAR" }` or `{ file = "/run/secrets/token" }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    #[serde(default)]
    pub env: Option<String>,
    #[serde(default)]
    pub file: Option<PathBuf>,
}

/// Accepts only the table forms, and says so when given a value in clear.
pub(crate) fn deserialize_secrets<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, SecretRef>, D::Error> {
    let raw = BTreeMap::<String, serde_json::Value>::deserialize(d)?;
    raw.into_iter()
        .map(|(name, value)| {
            if !value.is_object() {
                return Err(D::Error::custom(format!(
                    "secret `{name}` must not be written in the tenant file: use {{ env = \"VAR\" }} or {{ file = \"PATH\" }}"
                )));
            }
            let r = SecretRef::deserialize(value)
                .map_err(|e| D::Error::custom(format!("secret `{name}`: {e}")))?;
            Ok((name, r))
        })
        .collect()
}

/// Why a secret has no value.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SecretError {
    #[error("give exactly one of `env` or `file`")]
    NotOneSource,
    #[error("environment variable {0} is not set")]
    Unset(String),
    /// `error` is the I/O error's text (kept as text so the error stays comparable).
    #[error("cannot read {}: {error}", path.display())]
    Unreadable { path: PathBuf, error: String },
}

impl SecretRef {
    pub fn validate(&self) -> Result<(), SecretError> {
        self.source().map(|_| ())
    }

    /// The one source given.
    fn source(&self) -> Result<Source<'_>, SecretError> {
        match (&self.env, &self.file) {
            (Some(var), None) => Ok(Source::Env(var)),
            (None, Some(path)) => Ok(Source::File(path)),
            _ => Err(SecretError::NotOneSource),
        }
    }

    /// The secret's value now.
    pub fn resolve(&self) -> Result<Secret, SecretError> {
        match self.source()? {
            Source::Env(var) => std::env::var(var)
                .map(Secret::new)
                .map_err(|_| SecretError::Unset(var.clone())),
            Source::File(path) => std::fs::read_to_string(path)
                // Files written by editors and `echo` end with a newline that is not part of it.
                .map(|s| Secret::new(s.trim_end_matches(['\n', '\r'])))
                .map_err(|e| SecretError::Unreadable {
                    path: path.clone(),
                    error: e.to_string(),
                }),
        }
    }
}

enum Source<'a> {
    Env(&'a String),
    File(&'a PathBuf),
}
