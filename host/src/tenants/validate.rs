//! Checking a parsed tenant file as a whole: what the parser cannot (names, limits,
//! references between sections, grants of undeclared names), one section after another.

use super::{TenantConfig, buses, plugins, queues, routes, schedules, topics, workflows};
use crate::capabilities::check_name;

impl TenantConfig {
    /// Checks what the parser cannot: names, limits, grants that refer to nothing.
    pub fn validate(&self) -> Result<(), String> {
        self.limits.validate()?;
        for bucket in &self.kv.buckets {
            check_name("kv bucket", bucket).map_err(|e| format!("kv.buckets: {e}"))?;
            if bucket == "default" {
                return Err("kv.buckets: `default` is each plugin's private bucket".into());
            }
        }
        plugins::validate(self)?;
        queues::validate(self)?;
        topics::validate(self)?;
        buses::validate(self)?;
        schedules::validate(self)?;
        workflows::validate(self)?;
        self.check_grants()?;
        for (name, db) in &self.databases {
            check_name("database", name).map_err(|e| format!("databases.{name}: {e}"))?;
            db.validate()
                .map_err(|e| format!("databases.{name}: {e}"))?;
        }
        routes::validate(self)
    }
}
