//! `[workflows.NAME]`: state machines (Amazon States Language) whose Task states name the
//! tenant's plugins.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{TenantConfig, TenantError};
use crate::capabilities::check_name;

/// A workflow (`[workflows.NAME]`): a state machine whose Task states name the tenant's
/// plugins in `Resource`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WorkflowConfig {
    /// The definition's JSON file, relative to the tenant file.
    pub definition: PathBuf,
    /// The definition, read when the tenant loads; executions run the version they
    /// started with.
    #[serde(skip)]
    pub document: serde_json::Value,
}

impl WorkflowConfig {
    /// Reads the definition of workflow `name`, relative to `dir` (the tenant file's).
    pub(super) fn read_definition(&mut self, name: &str, dir: &Path) -> Result<(), TenantError> {
        let file = dir.join(&self.definition);
        let text =
            std::fs::read_to_string(&file).map_err(|e| TenantError::DefinitionUnreadable {
                name: name.to_string(),
                error: e.to_string(),
                file: file.clone(),
            })?;
        self.document =
            serde_json::from_str(&text).map_err(|e| TenantError::DefinitionNotJson {
                name: name.to_string(),
                error: e.to_string(),
                file,
            })?;
        Ok(())
    }
}

/// Each workflow's definition parses, and its Task resources are the tenant's plugins.
pub(super) fn validate(tenant: &TenantConfig) -> Result<(), TenantError> {
    for (name, workflow) in &tenant.workflows {
        check_name("workflow", name).map_err(TenantError::name(format!("workflows.{name}")))?;
        let machine = crate::workflow::Machine::parse(&workflow.document).map_err(|e| {
            TenantError::Workflow {
                name: name.clone(),
                error: Box::new(e),
            }
        })?;
        if let Some(r) = machine
            .resources()
            .into_iter()
            .find(|r| !tenant.plugins.contains_key(*r))
        {
            return Err(TenantError::undeclared(
                format!("workflows.{name}: Task resource"),
                r,
                "plugins",
            ));
        }
    }
    Ok(())
}
