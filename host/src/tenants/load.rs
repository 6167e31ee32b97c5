//! Reading a tenant file: TOML parsed strictly with the line of each refusal, and the
//! files it points to (database init scripts, workflow definitions) read beside it.

use std::path::Path;
use std::sync::OnceLock;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};

use super::error::{parse_toml, read};
use super::{ConfigError, Sections, TenantConfig, TenantError};

/// The tenant's own top-level keys; the capabilities' are `Sections::KEYS`.
const TENANT_KEYS: &[&str] = &[
    "limits",
    "plugins",
    "routes",
    "usage_plans",
    "api_keys",
    "admin_credentials",
    "jwt",
    "queues",
    "topics",
    "buses",
    "schedules",
    "workflows",
];

/// Every top-level key, as serde's `unknown_field` wants them: made once.
fn all_keys() -> &'static [&'static str] {
    static KEYS: OnceLock<Vec<&'static str>> = OnceLock::new();
    KEYS.get_or_init(|| [TENANT_KEYS, Sections::KEYS].concat())
}

/// A top-level key, refused here when unknown so the deserializer gives the refusal the
/// key's line.
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let key = String::deserialize(d)?;
        if all_keys().contains(&key.as_str()) {
            Ok(Key(key))
        } else {
            Err(de::Error::unknown_field(&key, all_keys()))
        }
    }
}

/// Written out rather than derived: a capability's section is read by its table
/// (`Sections::read`), which serde's `flatten` would do without the refusal of unknown
/// keys and without lines.
impl<'de> Deserialize<'de> for TenantConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct File;
        impl<'de> Visitor<'de> for File {
            type Value = TenantConfig;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a tenant file")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TenantConfig, A::Error> {
                let mut c = TenantConfig::default();
                while let Some(Key(key)) = map.next_key()? {
                    match key.as_str() {
                        "limits" => c.limits = map.next_value()?,
                        "plugins" => c.plugins = map.next_value()?,
                        "routes" => c.routes = map.next_value()?,
                        "usage_plans" => c.usage_plans = map.next_value()?,
                        "api_keys" => c.api_keys = map.next_value()?,
                        "admin_credentials" => c.admin_credentials = map.next_value()?,
                        "jwt" => c.jwt = map.next_value()?,
                        "queues" => c.queues = map.next_value()?,
                        "topics" => c.topics = map.next_value()?,
                        "buses" => c.buses = map.next_value()?,
                        "schedules" => c.schedules = map.next_value()?,
                        "workflows" => c.workflows = map.next_value()?,
                        section => c.capabilities.read(section, &mut map)?,
                    }
                }
                Ok(c)
            }
        }
        d.deserialize_map(File)
    }
}

impl TenantConfig {
    /// Reads and validates a tenant file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::parse(path, &read::<TenantError>(path)?)
    }

    /// Parses and validates tenant TOML; `path` only names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let mut config = parse_toml::<TenantConfig, TenantError>(path, text)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        config
            .capabilities
            .read_files(dir)
            .map_err(|e| ConfigError::new(path, e.into()))?;
        for (name, workflow) in &mut config.workflows {
            workflow
                .read_definition(name, dir)
                .map_err(|e| ConfigError::new(path, e))?;
        }
        // Before the rest, with the credential's line, which `validate` has no text for.
        config.admin_credentials.check().map_err(|(span, e)| {
            ConfigError::at(path, Some(super::lines::line_of(text, span.start)), e)
        })?;
        config.validate().map_err(|e| ConfigError::new(path, e))?;
        Ok(config)
    }
}
