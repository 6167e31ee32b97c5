//! Where a secret comes from. The tenant file only names the source.

use std::path::PathBuf;

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

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

impl SecretRef {
    pub fn validate(&self) -> Result<(), String> {
        match (&self.env, &self.file) {
            (Some(_), None) | (None, Some(_)) => Ok(()),
            _ => Err("give exactly one of `env` or `file`".into()),
        }
    }

    /// The secret's value now.
    pub fn resolve(&self) -> Result<Secret, String> {
        self.validate()?;
        if let Some(var) = &self.env {
            return std::env::var(var)
                .map(Secret::new)
                .map_err(|_| format!("environment variable {var} is not set"));
        }
        let path = self.file.as_ref().ok_or("no source")?;
        std::fs::read_to_string(path)
            // Files written by editors and `echo` end with a newline that is not part of it.
            .map(|s| Secret::new(s.trim_end_matches(['\n', '\r'])))
            .map_err(|e| format!("cannot read {}: {e}", path.display()))
    }
}
