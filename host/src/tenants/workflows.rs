//! `[workflows.NAME]`: state machines (Amazon States Language) whose Task states name the
//! tenant's plugins.

use std::path::PathBuf;

use serde::Deserialize;

use super::TenantConfig;
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

/// Each workflow's definition parses, and its Task resources are the tenant's plugins.
pub(super) fn validate(tenant: &TenantConfig) -> Result<(), String> {
    for (name, workflow) in &tenant.workflows {
        check_name("workflow", name).map_err(|e| format!("workflows.{name}: {e}"))?;
        let machine = crate::workflow::Machine::parse(&workflow.document)
            .map_err(|e| format!("workflows.{name}: {e}"))?;
        if let Some(r) = machine
            .resources()
            .into_iter()
            .find(|r| !tenant.plugins.contains_key(*r))
        {
            return Err(format!(
                "workflows.{name}: Task resource `{r}` is not one of the tenant's plugins"
            ));
        }
    }
    Ok(())
}
