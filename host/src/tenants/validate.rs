//! Checking a parsed tenant file as a whole: what the parser cannot (names, limits,
//! references between sections, grants of undeclared names), one section after another.

use super::{
    TenantConfig, TenantError, buses, plugins, queues, routes, schedules, topics, workflows,
};

impl TenantConfig {
    /// Checks what the parser cannot: names, limits, grants that refer to nothing.
    pub fn validate(&self) -> Result<(), TenantError> {
        self.limits.validate()?;
        self.capabilities.validate()?;
        plugins::validate(self)?;
        queues::validate(self)?;
        topics::validate(self)?;
        buses::validate(self)?;
        schedules::validate(self)?;
        workflows::validate(self)?;
        self.admin_credentials.check().map_err(|(_, e)| e)?;
        self.check_grants()?;
        routes::validate(self)?;
        Ok(())
    }
}
