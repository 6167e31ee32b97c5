//! Reading a tenant file: TOML parsed strictly with the line of each refusal, and the
//! files it points to (database init scripts, workflow definitions) read beside it.

use std::path::Path;

use super::{ConfigError, TenantConfig};

impl TenantConfig {
    /// Reads and validates a tenant file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(path, format!("cannot read: {e}")))?;
        Self::parse(path, &text)
    }

    /// Parses and validates tenant TOML; `path` only names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let config: TenantConfig = toml::from_str(text).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            line: e.span().map(|s| line_of(text, s.start)),
            reason: e.message().trim().to_string(),
        })?;
        let mut config = config;
        let dir = path.parent().unwrap_or(Path::new("."));
        for (name, db) in &mut config.databases {
            if let Some(init) = &db.init {
                let file = dir.join(init);
                db.init_sql = Some(std::fs::read_to_string(&file).map_err(|e| {
                    ConfigError::new(
                        path,
                        format!("databases.{name}.init: cannot read {}: {e}", file.display()),
                    )
                })?);
            }
        }
        for (name, workflow) in &mut config.workflows {
            let file = dir.join(&workflow.definition);
            let text = std::fs::read_to_string(&file).map_err(|e| {
                ConfigError::new(
                    path,
                    format!(
                        "workflows.{name}.definition: cannot read {}: {e}",
                        file.display()
                    ),
                )
            })?;
            workflow.document = serde_json::from_str(&text).map_err(|e| {
                ConfigError::new(
                    path,
                    format!(
                        "workflows.{name}.definition: {} is not JSON: {e}",
                        file.display()
                    ),
                )
            })?;
        }
        config
            .validate()
            .map_err(|reason| ConfigError::new(path, reason))?;
        Ok(config)
    }
}

/// The 1-based line of byte offset `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].matches('\n').count() + 1
}
