//! Tenant configuration: one TOML file per tenant. Parsed strictly (unknown keys are
//! refused with the file, line and reason) and validated as a whole, so a config either
//! loads completely or not at all.

mod admin_credentials;
mod buses;
pub mod delivery;
mod error;
mod lines;
mod load;
mod plugin_triggers;
mod plugins;
mod queues;
mod routes;
mod schedules;
pub mod self_deploy;
mod targets;
mod topics;
pub mod transform;
mod validate;
mod workflows;

use std::collections::BTreeMap;

pub use crate::capabilities::Sections;
pub use crate::capabilities::secrets::SecretRef;
pub use crate::capabilities::sql::{DatabaseConfig, DatabaseUrl};
use crate::engine::Limits;
pub use admin_credentials::{AdminCredentialConfig, AdminCredentials, AdminScope};
pub use buses::{BusConfig, RuleConfig, RuleTarget};
pub use delivery::{DeliveryDeadLetter, DeliveryPolicy, RetryPolicy};
pub use error::{
    ConfigError, NotOneTarget, PatternRefused, Reason, RouteError, TemplateError, TenantError,
    parse_toml, read,
};
pub use lines::line_of_key;
pub use plugin_triggers::PluginTrigger;
pub use plugins::PluginConfig;
pub use queues::{ConsumerConfig, DeadLetterConfig, QueueConfig};
pub use routes::{ApiKeyConfig, AuthMode, JwtConfig, RouteConfig, RouteTemplate, UsagePlan};
pub use schedules::ScheduleConfig;
pub use targets::Target;
pub use topics::{FilterScope, Subscription, TopicConfig};
pub use workflows::WorkflowConfig;

/// A tenant file. Its sections are read strictly (`load.rs`): an unknown key is refused
/// with its line, as serde's `deny_unknown_fields` would.
#[derive(Debug, Clone, Default)]
pub struct TenantConfig {
    /// Limits for all of the tenant's plugins.
    pub limits: Limits,
    /// The sections each capability owns: `[kv]`, `[http]`, `[databases.NAME]`.
    pub capabilities: Sections,
    /// The tenant's plugins by name.
    pub plugins: BTreeMap<String, PluginConfig>,
    /// HTTP routes under `/t/{tenant}/`.
    pub routes: Vec<RouteConfig>,
    /// Rate and quota plans API keys are bound to.
    pub usage_plans: BTreeMap<String, UsagePlan>,
    pub api_keys: Vec<ApiKeyConfig>,
    /// Bearer tokens that manage this tenant only, through the admin API.
    pub admin_credentials: AdminCredentials,
    /// Bearer-token validation for routes with `auth = "jwt"`.
    pub jwt: Option<JwtConfig>,
    /// Durable queues, by name.
    pub queues: BTreeMap<String, QueueConfig>,
    /// Topics and their subscriptions, by name.
    pub topics: BTreeMap<String, TopicConfig>,
    /// Event buses and their rules, by name.
    pub buses: BTreeMap<String, BusConfig>,
    /// Schedules, by name.
    pub schedules: BTreeMap<String, ScheduleConfig>,
    /// State machines (Amazon States Language), by name.
    pub workflows: BTreeMap<String, WorkflowConfig>,
}

#[cfg(test)]
mod tests;
