//! Tenant configuration: one TOML file per tenant. Parsed strictly (unknown keys are
//! refused with the file, line and reason) and validated as a whole, so a config either
//! loads completely or not at all.

pub mod delivery;
mod lines;
mod plugin_triggers;
mod routes;
pub mod transform;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

use crate::capabilities::secrets;
pub use crate::capabilities::secrets::SecretRef;
pub use crate::capabilities::sql::{DatabaseConfig, DatabaseUrl};
use crate::capabilities::{Grant, Grants, Secret, check_name};
use crate::engine::Limits;
pub use delivery::{DeliveryDeadLetter, DeliveryPolicy, RetryPolicy};
pub use lines::line_of_key;
pub use plugin_triggers::PluginTrigger;
pub use routes::{ApiKeyConfig, AuthMode, JwtConfig, RouteConfig, RouteTemplate, UsagePlan};

/// Why a tenant file was refused. Its `Display` is one line: `file:line: reason`.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("{}{}: {reason}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub reason: String,
}

impl ConfigError {
    pub fn new(file: &Path, reason: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_path_buf(),
            line: None,
            reason: reason.into(),
        }
    }
}

/// A tenant file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// Limits for all of the tenant's plugins.
    #[serde(default)]
    pub limits: Limits,
    /// Shared key-value buckets plugins may be granted.
    #[serde(default)]
    pub kv: KvConfig,
    /// The tenant's plugins by name.
    #[serde(default)]
    pub plugins: BTreeMap<String, PluginConfig>,
    /// Outbound HTTP settings for all of the tenant's plugins.
    #[serde(default)]
    pub http: HttpConfig,
    /// HTTP routes under `/t/{tenant}/`.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Rate and quota plans API keys are bound to.
    #[serde(default)]
    pub usage_plans: BTreeMap<String, UsagePlan>,
    #[serde(default)]
    pub api_keys: Vec<ApiKeyConfig>,
    /// Bearer-token validation for routes with `auth = "jwt"`.
    #[serde(default)]
    pub jwt: Option<JwtConfig>,
    /// Databases plugins may be granted (`allow.databases`), by name.
    #[serde(default)]
    pub databases: BTreeMap<String, DatabaseConfig>,
    /// Durable queues, by name.
    #[serde(default)]
    pub queues: BTreeMap<String, QueueConfig>,
    /// Topics and their subscriptions, by name.
    #[serde(default)]
    pub topics: BTreeMap<String, TopicConfig>,
    /// Event buses and their rules, by name.
    #[serde(default)]
    pub buses: BTreeMap<String, BusConfig>,
    /// Schedules, by name.
    #[serde(default)]
    pub schedules: BTreeMap<String, ScheduleConfig>,
    /// State machines (Amazon States Language), by name.
    #[serde(default)]
    pub workflows: BTreeMap<String, WorkflowConfig>,
}

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

/// A schedule (`[schedules.NAME]`): each tick sends `input` to `target`, once across all
/// hosts sharing the store.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// `cron(...)` or `rate(...)`, as EventBridge writes them.
    pub expression: String,
    /// An IANA time zone for cron expressions; UTC by default.
    #[serde(default)]
    pub timezone: Option<String>,
    pub target: RuleTarget,
    /// The tick's fixed input (a plugin's `schedule` event, a queue message's body).
    #[serde(default)]
    pub input: serde_json::Value,
    #[serde(default = "enabled")]
    pub enabled: bool,
}

fn enabled() -> bool {
    true
}

impl ScheduleConfig {
    pub fn parsed(&self) -> Result<crate::schedule::ScheduleExpr, crate::schedule::ScheduleError> {
        crate::schedule::ScheduleExpr::parse(&self.expression, self.timezone.as_deref())
    }
}

/// A topic (`[topics.NAME]`): a publication reaches every subscription whose filter
/// policy matches.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TopicConfig {
    #[serde(default)]
    pub subscriptions: Vec<Subscription>,
}

/// One subscription: exactly one of `queue`, `plugin`, `webhook`, `log`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    #[serde(default)]
    pub queue: Option<String>,
    #[serde(default)]
    pub plugin: Option<String>,
    /// An HTTPS endpoint that gets SNS's notification JSON by POST.
    #[serde(default)]
    pub webhook: Option<String>,
    #[serde(default)]
    pub log: bool,
    /// An SNS filter policy (`docs/TENANTS.md`); none lets everything through.
    #[serde(default)]
    pub filter_policy: Option<serde_json::Value>,
    /// What the policy looks at: the message `attributes` (default) or its JSON `body`.
    #[serde(default)]
    pub filter_scope: FilterScope,
    /// SNS's `RawMessageDelivery`, for queue subscriptions: the message body as
    /// published, with its attributes, in place of SNS's notification document.
    #[serde(default)]
    pub raw_message_delivery: bool,
    /// For plugin subscriptions: retries and age (Lambda's asynchronous invocations).
    #[serde(default)]
    pub retry_policy: Option<RetryPolicy>,
    /// SNS's redrive policy: the queue a delivery that failed past its policy goes to.
    #[serde(default)]
    pub dead_letter: Option<DeliveryDeadLetter>,
    #[serde(skip)]
    compiled: Compiled,
}

/// A pattern or policy compiled on first use (checking one, wildcards' complexity
/// included, is too costly to repeat for every message); not part of the config's
/// identity: copies start empty and compare equal.
#[derive(Debug, Default)]
struct Compiled(std::sync::OnceLock<Result<crate::pattern::Pattern, String>>);

impl Clone for Compiled {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl PartialEq for Compiled {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FilterScope {
    #[default]
    Attributes,
    Body,
}

/// A target of a subscription or rule, resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum Target<'a> {
    Queue(&'a str),
    Plugin(&'a str),
    Webhook(&'a str),
    Workflow(&'a str),
    Log,
}

impl Subscription {
    pub fn target(&self) -> Result<Target<'_>, String> {
        target(&self.queue, &self.plugin, &self.webhook, self.log)
    }

    /// What a delivery to this subscription is held to; `topic_arn` names its origin.
    pub fn delivery_policy(&self, topic_arn: String) -> DeliveryPolicy {
        match self.target() {
            Ok(Target::Plugin(_)) => DeliveryPolicy::resolve(
                delivery::PLUGIN_SUBSCRIPTION,
                self.retry_policy.as_ref(),
                self.dead_letter.as_ref(),
                topic_arn,
            ),
            _ => DeliveryPolicy::fixed(topic_arn, self.dead_letter.as_ref()),
        }
    }

    /// The parsed filter policy, if any.
    pub fn policy(&self) -> Result<Option<&crate::pattern::Pattern>, String> {
        let Some(policy) = &self.filter_policy else {
            return Ok(None);
        };
        let dialect = match self.filter_scope {
            FilterScope::Attributes => crate::pattern::Dialect::SnsAttributes,
            FilterScope::Body => crate::pattern::Dialect::SnsBody,
        };
        self.compiled
            .0
            .get_or_init(|| {
                crate::pattern::Pattern::parse(policy, dialect)
                    .map_err(|e| format!("filter_policy{e}"))
            })
            .as_ref()
            .map(Some)
            .map_err(Clone::clone)
    }
}

fn target<'a>(
    queue: &'a Option<String>,
    plugin: &'a Option<String>,
    webhook: &'a Option<String>,
    log: bool,
) -> Result<Target<'a>, String> {
    match (queue, plugin, webhook, log) {
        (Some(q), None, None, false) => Ok(Target::Queue(q)),
        (None, Some(p), None, false) => Ok(Target::Plugin(p)),
        (None, None, Some(w), false) => Ok(Target::Webhook(w)),
        (None, None, None, true) => Ok(Target::Log),
        _ => Err("give exactly one of queue, plugin, webhook or log = true".into()),
    }
}

/// An event bus (`[buses.NAME]`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BusConfig {
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
}

/// A rule: events matching `pattern` (an EventBridge event pattern) go to `targets`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub name: String,
    pub pattern: serde_json::Value,
    pub targets: Vec<RuleTarget>,
    #[serde(skip)]
    compiled: Compiled,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleTarget {
    #[serde(default)]
    pub queue: Option<String>,
    #[serde(default)]
    pub plugin: Option<String>,
    /// Starts an execution of the tenant's workflow with the event (or tick input).
    #[serde(default)]
    pub workflow: Option<String>,
    #[serde(default)]
    pub log: bool,
    /// EventBridge's `Input`: this JSON in place of the event.
    #[serde(default)]
    pub input: Option<serde_json::Value>,
    /// EventBridge's `InputPath`: the part of the event this JSONPath selects.
    #[serde(default)]
    pub input_path: Option<transform::InputPath>,
    /// EventBridge's `InputTransformer`.
    #[serde(default)]
    pub input_transformer: Option<transform::InputTransformer>,
    /// EventBridge's `RetryPolicy` (bus rule targets).
    #[serde(default)]
    pub retry_policy: Option<RetryPolicy>,
    /// EventBridge's `DeadLetterConfig` (bus rule targets).
    #[serde(default)]
    pub dead_letter: Option<DeliveryDeadLetter>,
}

impl RuleTarget {
    /// Whether the target changes what it receives (`input`, `input_path`,
    /// `input_transformer`); at most one may be given.
    fn check_input(&self) -> Result<bool, String> {
        let given = [
            self.input.is_some(),
            self.input_path.is_some(),
            self.input_transformer.is_some(),
        ]
        .into_iter()
        .filter(|g| *g)
        .count();
        match given {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err("give at most one of input, input_path and input_transformer".into()),
        }
    }

    /// What the target receives for `event` (`cx` holds the event and the rule); an
    /// input transformation that fills past `cx.max_bytes` is refused.
    pub fn input_for(&self, cx: &transform::Context<'_>) -> Result<serde_json::Value, String> {
        transform::target_input(
            self.input.as_ref(),
            self.input_path.as_ref(),
            self.input_transformer.as_ref(),
            cx,
        )
    }

    /// What a delivery to this bus rule target is held to; `rule_arn` names its rule.
    pub fn delivery_policy(&self, rule_arn: String) -> DeliveryPolicy {
        DeliveryPolicy::resolve(
            delivery::BUS_TARGET,
            self.retry_policy.as_ref(),
            self.dead_letter.as_ref(),
            rule_arn,
        )
    }

    pub fn target(&self) -> Result<Target<'_>, String> {
        match (&self.queue, &self.plugin, &self.workflow, self.log) {
            (Some(q), None, None, false) => Ok(Target::Queue(q)),
            (None, Some(p), None, false) => Ok(Target::Plugin(p)),
            (None, None, Some(w), false) => Ok(Target::Workflow(w)),
            (None, None, None, true) => Ok(Target::Log),
            _ => Err("give exactly one of queue, plugin, workflow or log = true".into()),
        }
    }
}

impl RuleConfig {
    pub fn pattern(&self) -> Result<&crate::pattern::Pattern, String> {
        self.compiled
            .0
            .get_or_init(|| {
                crate::pattern::Pattern::parse(&self.pattern, crate::pattern::Dialect::EventBridge)
                    .map_err(|e| format!("pattern{e}"))
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// One of the tenant's queues (`[queues.NAME]`), with SQS's settings and defaults.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Messages of one `group_id` are delivered in order, one at a time; every message
    /// needs a group id.
    #[serde(default)]
    pub fifo: bool,
    /// How long a delivered message stays invisible before it comes back.
    #[serde(default = "queue_defaults::visibility")]
    pub visibility_timeout_seconds: u32,
    /// The delay of a message sent without one of its own (SQS's `DelaySeconds`): a
    /// message's own delay replaces it.
    #[serde(default)]
    pub delay_seconds: u32,
    #[serde(default = "queue_defaults::retention")]
    pub retention_seconds: u32,
    /// Where a message goes after `max_receive_count` failed deliveries.
    #[serde(default)]
    pub dead_letter: Option<DeadLetterConfig>,
    /// The plugin that receives the queue's messages.
    #[serde(default)]
    pub consumer: Option<ConsumerConfig>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterConfig {
    pub queue: String,
    pub max_receive_count: u32,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConsumerConfig {
    pub plugin: String,
    #[serde(default = "queue_defaults::batch")]
    pub batch_size: u32,
    /// Batches of this queue delivered at once on each host, as Lambda's SQS
    /// `MaximumConcurrency`: one batch claims and settles while another runs.
    #[serde(default = "queue_defaults::concurrency")]
    pub max_concurrency: u32,
}

mod queue_defaults {
    pub fn visibility() -> u32 {
        30
    }
    /// SQS keeps messages 4 days by default.
    pub fn retention() -> u32 {
        4 * 24 * 3600
    }
    /// Two keep the store busy while a batch runs; FIFO order holds at any number
    /// (a group's next message is claimed only once the one before it is done).
    pub fn concurrency() -> u32 {
        2
    }
    pub fn batch() -> u32 {
        10
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Lets plugins reach loopback, private and link-local addresses (refused by default:
    /// they are how SSRF reaches internal services and cloud metadata).
    #[serde(default)]
    pub allow_private: bool,
    /// Lets plugins set and clear cookies (`Set-Cookie`, `Clear-Site-Data`): only for a
    /// tenant served from an origin of its own, as every tenant and `/admin` share the
    /// host's.
    #[serde(default)]
    pub allow_set_cookie: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KvConfig {
    #[serde(default)]
    pub buckets: Vec<String>,
}

/// One plugin of a tenant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// The component file: absolute, or relative to the plugin directory.
    pub source: PathBuf,
    /// Values the plugin reads through `config::get`. Non-string values are passed as
    /// their TOML text (numbers, booleans) or JSON (arrays, tables).
    #[serde(default)]
    pub config: BTreeMap<String, toml::Value>,
    /// Secrets by the name the plugin asks for, each from an environment variable or a
    /// file: never written in the tenant file itself.
    #[serde(default, deserialize_with = "secrets::deserialize_secrets")]
    pub secrets: BTreeMap<String, SecretRef>,
    /// What the plugin may use besides its private kv bucket.
    #[serde(default)]
    pub allow: Grants,
}

impl PluginConfig {
    /// The config values as the plugin sees them.
    pub fn config_strings(&self) -> BTreeMap<String, String> {
        self.config
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_) => {
                        v.to_string()
                    }
                    toml::Value::Datetime(d) => d.to_string(),
                    other => serde_json::to_string(other).unwrap_or_default(),
                };
                (k.clone(), text)
            })
            .collect()
    }

    /// Reads every secret now, so a missing one fails the load rather than a request.
    pub fn resolve_secrets(&self, plugin: &str) -> Result<BTreeMap<String, Secret>, String> {
        self.secrets
            .iter()
            .map(|(name, r)| {
                r.resolve()
                    .map(|s| (name.clone(), s))
                    .map_err(|e| format!("plugins.{plugin}.secrets.{name}: {e}"))
            })
            .collect()
    }
}

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

    /// Checks what the parser cannot: names, limits, grants that refer to nothing.
    pub fn validate(&self) -> Result<(), String> {
        self.limits.validate()?;
        for bucket in &self.kv.buckets {
            check_name("kv bucket", bucket).map_err(|e| format!("kv.buckets: {e}"))?;
            if bucket == "default" {
                return Err("kv.buckets: `default` is each plugin's private bucket".into());
            }
        }
        for (name, plugin) in &self.plugins {
            check_name("plugin", name).map_err(|e| format!("plugins.{name}: {e}"))?;
            for (secret, r) in &plugin.secrets {
                r.validate()
                    .map_err(|e| format!("plugins.{name}.secrets.{secret}: {e}"))?;
            }
        }
        for (name, queue) in &self.queues {
            check_name("queue", name).map_err(|e| format!("queues.{name}: {e}"))?;
            queue
                .validate(self)
                .map_err(|e| format!("queues.{name}: {e}"))?;
            if let Some(dl) = &queue.dead_letter
                && dl.queue == *name
            {
                return Err(format!(
                    "queues.{name}.dead_letter: a queue cannot be its own dead-letter queue"
                ));
            }
        }
        for (name, topic) in &self.topics {
            check_name("topic", name).map_err(|e| format!("topics.{name}: {e}"))?;
            for (i, sub) in topic.subscriptions.iter().enumerate() {
                let at = format!("topics.{name}.subscriptions[{i}]");
                sub.policy().map_err(|e| format!("{at}.{e}"))?;
                let target = sub.target().map_err(|e| format!("{at}: {e}"))?;
                self.check_target(&target)
                    .map_err(|e| format!("{at}: {e}"))?;
                if sub.raw_message_delivery && !matches!(target, Target::Queue(_)) {
                    return Err(format!(
                        "{at}: raw_message_delivery applies to queue subscriptions"
                    ));
                }
                if let Some(policy) = &sub.retry_policy {
                    if !matches!(target, Target::Plugin(_)) {
                        return Err(format!(
                            "{at}: retry_policy applies to plugin subscriptions (SNS's delivery policy for HTTP endpoints is not supported)"
                        ));
                    }
                    policy
                        .check(delivery::PLUGIN_SUBSCRIPTION)
                        .map_err(|e| format!("{at}.{e}"))?;
                }
                self.check_dead_letter(&target, sub.dead_letter.as_ref())
                    .map_err(|e| format!("{at}.{e}"))?;
            }
        }
        for (name, bus) in &self.buses {
            check_name("bus", name).map_err(|e| format!("buses.{name}: {e}"))?;
            for (i, rule) in bus.rules.iter().enumerate() {
                let at = format!("buses.{name}.rules[{i}]");
                rule.pattern().map_err(|e| format!("{at}.{e}"))?;
                if rule.targets.is_empty() {
                    return Err(format!("{at}: a rule needs at least one target"));
                }
                for (j, t) in rule.targets.iter().enumerate() {
                    let target = t.target().map_err(|e| format!("{at}: {e}"))?;
                    self.check_target(&target)
                        .map_err(|e| format!("{at}: {e}"))?;
                    let transformed = t
                        .check_input()
                        .map_err(|e| format!("{at}.targets[{j}]: {e}"))?;
                    if let Some(policy) = &t.retry_policy {
                        policy
                            .check(delivery::BUS_TARGET)
                            .map_err(|e| format!("{at}.targets[{j}].{e}"))?;
                    }
                    self.check_dead_letter(&target, t.dead_letter.as_ref())
                        .map_err(|e| format!("{at}.targets[{j}].{e}"))?;
                    // A plugin's bus handler takes a bus event, not any JSON.
                    if transformed && matches!(target, Target::Plugin(_)) {
                        return Err(format!(
                            "{at}.targets[{j}]: input, input_path and input_transformer apply to queue, workflow and log targets; a plugin target receives the bus event"
                        ));
                    }
                }
            }
        }
        for (name, schedule) in &self.schedules {
            check_name("schedule", name).map_err(|e| format!("schedules.{name}: {e}"))?;
            schedule
                .parsed()
                .map_err(|e| format!("schedules.{name}.expression: {e}"))?;
            self.check_target(
                &schedule
                    .target
                    .target()
                    .map_err(|e| format!("schedules.{name}.target: {e}"))?,
            )
            .map_err(|e| format!("schedules.{name}.target: {e}"))?;
            if schedule
                .target
                .check_input()
                .map_err(|e| format!("schedules.{name}.target: {e}"))?
            {
                return Err(format!(
                    "schedules.{name}.target: input, input_path and input_transformer apply to bus rule targets"
                ));
            }
            if schedule.target.retry_policy.is_some() || schedule.target.dead_letter.is_some() {
                return Err(format!(
                    "schedules.{name}.target: retry_policy and dead_letter apply to bus rule targets and topic subscriptions"
                ));
            }
        }
        for (name, workflow) in &self.workflows {
            check_name("workflow", name).map_err(|e| format!("workflows.{name}: {e}"))?;
            let machine = crate::workflow::Machine::parse(&workflow.document)
                .map_err(|e| format!("workflows.{name}: {e}"))?;
            if let Some(r) = machine
                .resources()
                .into_iter()
                .find(|r| !self.plugins.contains_key(*r))
            {
                return Err(format!(
                    "workflows.{name}: Task resource `{r}` is not one of the tenant's plugins"
                ));
            }
        }
        self.check_grants()?;
        for (name, db) in &self.databases {
            check_name("database", name).map_err(|e| format!("databases.{name}: {e}"))?;
            db.validate()
                .map_err(|e| format!("databases.{name}: {e}"))?;
        }
        routes::validate(self)
    }
}

impl TenantConfig {
    /// A delivery's dead-letter queue is one of the tenant's standard queues, as SNS and
    /// EventBridge require; a log target has none (it cannot fail).
    fn check_dead_letter(
        &self,
        target: &Target<'_>,
        dead_letter: Option<&DeliveryDeadLetter>,
    ) -> Result<(), String> {
        let Some(dl) = dead_letter else {
            return Ok(());
        };
        match (target, self.queues.get(&dl.queue)) {
            (Target::Log, _) => Err("dead_letter: a log target cannot fail".into()),
            (_, None) => Err(format!(
                "dead_letter.queue `{}` is not one of the tenant's queues",
                dl.queue
            )),
            (_, Some(q)) if q.fifo => Err(format!(
                "dead_letter.queue `{}` is FIFO; a delivery's dead-letter queue is a standard queue",
                dl.queue
            )),
            _ => Ok(()),
        }
    }

    /// A subscription or rule target must name something the tenant has.
    fn check_target(&self, target: &Target<'_>) -> Result<(), String> {
        match target {
            Target::Queue(q) => match self.queues.get(*q) {
                None => Err(format!("queue `{q}` is not one of the tenant's queues")),
                Some(c) if c.fifo => Err(format!(
                    "queue `{q}` is FIFO; topics and buses deliver to standard queues"
                )),
                Some(_) => Ok(()),
            },
            Target::Plugin(p) if !self.plugins.contains_key(*p) => {
                Err(format!("plugin `{p}` is not one of the tenant's plugins"))
            }
            Target::Workflow(w) if !self.workflows.contains_key(*w) => Err(format!(
                "workflow `{w}` is not one of the tenant's workflows"
            )),
            Target::Webhook(url) => match url::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
                _ => Err(format!("webhook `{url}` is not an http(s) URL")),
            },
            _ => Ok(()),
        }
    }
}

impl QueueConfig {
    fn validate(&self, tenant: &TenantConfig) -> Result<(), String> {
        use crate::engine::limits::capability as l;
        let within = |what: &str, v: u32, lo: u32, hi: u32| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(format!("{what} must be {lo}-{hi}, got {v}"))
            }
        };
        within(
            "visibility_timeout_seconds",
            self.visibility_timeout_seconds,
            1,
            l::QUEUE_MAX_VISIBILITY_S,
        )?;
        within("delay_seconds", self.delay_seconds, 0, l::QUEUE_MAX_DELAY_S)?;
        within(
            "retention_seconds",
            self.retention_seconds,
            60,
            l::QUEUE_MAX_RETENTION_S,
        )?;
        if let Some(dl) = &self.dead_letter {
            within(
                "dead_letter.max_receive_count",
                dl.max_receive_count,
                1,
                1000,
            )?;
            match tenant.queues.get(&dl.queue) {
                None => {
                    return Err(format!(
                        "dead_letter.queue `{}` is not one of the tenant's queues",
                        dl.queue
                    ));
                }
                Some(dlq) if dlq.fifo != self.fifo => {
                    return Err(
                        "a dead-letter queue must be FIFO exactly when its source is".into(),
                    );
                }
                Some(_) => {}
            }
        }
        if let Some(c) = &self.consumer {
            within("consumer.batch_size", c.batch_size, 1, l::QUEUE_MAX_BATCH)?;
            within(
                "consumer.max_concurrency",
                c.max_concurrency,
                1,
                l::QUEUE_MAX_CONCURRENCY,
            )?;
            if !tenant.plugins.contains_key(&c.plugin) {
                return Err(format!(
                    "consumer.plugin `{}` is not one of the tenant's plugins",
                    c.plugin
                ));
            }
        }
        Ok(())
    }
}

impl TenantConfig {
    /// Every name a plugin is granted is one the tenant declares (or `"*"`).
    fn check_grants(&self) -> Result<(), String> {
        for (name, plugin) in &self.plugins {
            for grant in crate::capabilities::grants() {
                let Some((section, declared)) = self.declared(grant) else {
                    continue;
                };
                if let Some(missing) = plugin
                    .allow
                    .list(grant)
                    .iter()
                    .find(|g| *g != "*" && !declared.contains(&g.as_str()))
                {
                    return Err(format!(
                        "plugins.{name}.allow.{}: `{missing}` is not one of the tenant's {section}",
                        grant.key
                    ));
                }
            }
        }
        Ok(())
    }

    /// The section declaring what `grant` names, and the names it declares; `None` when
    /// any name may be granted (outbound hosts, blob buckets).
    fn declared(&self, grant: Grant) -> Option<(&'static str, Vec<&str>)> {
        use crate::capabilities::{kv, messaging, notify, sql};
        let names = if grant == kv::BUCKETS {
            (
                "kv.buckets",
                self.kv.buckets.iter().map(String::as_str).collect(),
            )
        } else if grant == sql::DATABASES {
            (
                "databases",
                self.databases.keys().map(String::as_str).collect(),
            )
        } else if grant == messaging::QUEUES {
            ("queues", self.queues.keys().map(String::as_str).collect())
        } else if grant == notify::TOPICS {
            ("topics", self.topics.keys().map(String::as_str).collect())
        } else if grant == messaging::BUSES {
            ("buses", self.buses.keys().map(String::as_str).collect())
        } else if grant == messaging::WORKFLOWS {
            (
                "workflows",
                self.workflows.keys().map(String::as_str).collect(),
            )
        } else {
            return None;
        };
        Some(names)
    }
}

/// The 1-based line of byte offset `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<TenantConfig, ConfigError> {
        TenantConfig::parse(Path::new("acme.toml"), text)
    }

    #[test]
    fn unknown_key_names_file_line_and_field() {
        let err =
            parse("[plugins.hello]\nsource = \"hello.wasm\"\ncolour = \"red\"\n").unwrap_err();
        assert_eq!(err.line, Some(3));
        assert!(err.reason.contains("unknown field `colour`"), "{err}");
        assert!(err.to_string().starts_with("acme.toml:3: "), "{err}");
    }

    #[test]
    fn rule_target_inputs_are_checked_with_their_line() {
        let rule = |target: &str| {
            format!(
                "[queues.q]\n\n[[buses.default.rules]]\nname = \"r\"\npattern = {{ source = [\"s\"] }}\ntargets = [\n  {target},\n]\n"
            )
        };
        let ok = parse(&rule(
            r#"{ queue = "q", input_transformer = { input_paths_map = { id = "$.detail.instance-id" }, input_template = '{"id": <id>}' } }"#,
        ))
        .expect("a valid transformer");
        assert!(
            ok.buses["default"].rules[0].targets[0]
                .input_transformer
                .is_some()
        );
        for (target, line, reason) in [
            (
                r#"{ queue = "q", input_path = "detail" }"#,
                Some(7),
                "starts with `$`",
            ),
            (
                r#"{ queue = "q", input_path = "$.a[x]" }"#,
                Some(7),
                "brackets hold",
            ),
            (
                r#"{ queue = "q", input_transformer = { input_paths_map = { "aws.x" = "$.id" }, input_template = "<aws.x>" } }"#,
                Some(7),
                "reserved",
            ),
            (
                r#"{ queue = "q", input_transformer = { input_template = "x", extra = 1 } }"#,
                Some(7),
                "unknown field `extra`",
            ),
            (
                r#"{ queue = "q", input = { a = 1 }, input_path = "$.detail" }"#,
                None,
                "at most one of input, input_path and input_transformer",
            ),
            (
                r#"{ plugin = "p", input_path = "$.detail" }"#,
                None,
                "a plugin target receives the bus event",
            ),
        ] {
            let text =
                rule(target).replace("[queues.q]", "[queues.q]\n[plugins.p]\nsource = \"p.wasm\"");
            let err = parse(&text).unwrap_err();
            assert!(err.reason.contains(reason), "{target}: {err}");
            if let Some(line) = line {
                assert_eq!(err.line, Some(line + 2), "{target}: {err}");
            }
        }
    }

    #[test]
    fn retry_policies_and_dead_letters_are_checked() {
        let base =
            "[queues.q]\n[queues.dlq]\n[queues.f]\nfifo = true\n[plugins.p]\nsource = \"p.wasm\"\n";
        let sub = |s: &str| format!("{base}[topics.t]\nsubscriptions = [{s}]\n");
        let target = |t: &str| {
            format!(
                "{base}[[buses.b.rules]]\nname = \"r\"\npattern = {{ source = [\"s\"] }}\ntargets = [{t}]\n"
            )
        };
        let ok = parse(&target(
            r#"{ plugin = "p", retry_policy = { maximum_event_age_seconds = 60, maximum_retry_attempts = 0 }, dead_letter = { queue = "dlq" } }"#,
        ))
        .unwrap();
        let policy = ok.buses["b"].rules[0].targets[0].delivery_policy("arn".into());
        assert_eq!(policy.max_attempts, 1);
        assert_eq!(policy.max_age_ms, Some(60_000));
        assert_eq!(policy.dead_letter.as_deref(), Some("dlq"));
        // EventBridge accepts both on any target; defaults are 24 h and 185 retries.
        let queue = parse(&target(
            r#"{ queue = "q", dead_letter = { queue = "dlq" } }"#,
        ))
        .unwrap();
        let policy = queue.buses["b"].rules[0].targets[0].delivery_policy("arn".into());
        assert_eq!(
            (policy.max_attempts, policy.max_age_ms),
            (186, Some(86_400_000))
        );
        let ok = parse(&sub(
            r#"{ plugin = "p", retry_policy = { maximum_retry_attempts = 0 }, dead_letter = { queue = "dlq" } }"#,
        ))
        .unwrap();
        let policy = ok.topics["t"].subscriptions[0].delivery_policy("arn".into());
        assert_eq!(
            (policy.max_attempts, policy.max_age_ms),
            (1, Some(21_600_000))
        );
        parse(&sub(
            r#"{ webhook = "https://h.example/x", dead_letter = { queue = "dlq" } }"#,
        ))
        .unwrap();
        for (text, line, reason) in [
            (
                target(r#"{ plugin = "p", retry_policy = { maximum_retry_attempts = 186 } }"#),
                None,
                "buses.b.rules[0].targets[0].retry_policy.maximum_retry_attempts must be 0-185, got 186",
            ),
            (
                target(r#"{ plugin = "p", retry_policy = { maximum_event_age_seconds = 59 } }"#),
                None,
                "maximum_event_age_seconds must be 60-86400, got 59",
            ),
            (
                target(r#"{ plugin = "p", retry_policy = { attempts = 3 } }"#),
                Some(10),
                "unknown field `attempts`",
            ),
            (
                target(
                    r#"{ plugin = "p", dead_letter = { queue = "dlq", max_receive_count = 3 } }"#,
                ),
                Some(10),
                "unknown field `max_receive_count`",
            ),
            (
                target(r#"{ plugin = "p", dead_letter = { queue = "nope" } }"#),
                None,
                "buses.b.rules[0].targets[0].dead_letter.queue `nope` is not one of the tenant's queues",
            ),
            (
                target(r#"{ plugin = "p", dead_letter = { queue = "f" } }"#),
                None,
                "dead_letter.queue `f` is FIFO",
            ),
            (
                target(r#"{ log = true, dead_letter = { queue = "dlq" } }"#),
                None,
                "a log target cannot fail",
            ),
            (
                sub(r#"{ plugin = "p", retry_policy = { maximum_retry_attempts = 3 } }"#),
                None,
                "topics.t.subscriptions[0].retry_policy.maximum_retry_attempts must be 0-2, got 3",
            ),
            (
                sub(r#"{ plugin = "p", retry_policy = { maximum_event_age_seconds = 21601 } }"#),
                None,
                "maximum_event_age_seconds must be 60-21600",
            ),
            (
                sub(r#"{ queue = "q", retry_policy = { maximum_retry_attempts = 1 } }"#),
                None,
                "retry_policy applies to plugin subscriptions",
            ),
            (
                sub(r#"{ plugin = "p", dead_letter = { queue = "other-tenants-dlq" } }"#),
                None,
                "`other-tenants-dlq` is not one of the tenant's queues",
            ),
            (
                format!(
                    "{base}[schedules.s]\nexpression = \"rate(1 minute)\"\ntarget = {{ plugin = \"p\", dead_letter = {{ queue = \"dlq\" }} }}\n"
                ),
                None,
                "retry_policy and dead_letter apply to bus rule targets and topic subscriptions",
            ),
        ] {
            let err = parse(&text).unwrap_err();
            assert!(err.reason.contains(reason), "{text}: {err}");
            if let Some(line) = line {
                assert_eq!(err.line, Some(line), "{text}: {err}");
            }
        }
    }

    #[test]
    fn raw_message_delivery_is_for_queue_subscriptions() {
        let topic = |sub: &str| {
            format!(
                "[queues.q]\n[plugins.p]\nsource = \"p.wasm\"\n[topics.t]\nsubscriptions = [{sub}]\n"
            )
        };
        let ok = parse(&topic(r#"{ queue = "q", raw_message_delivery = true }"#)).unwrap();
        assert!(ok.topics["t"].subscriptions[0].raw_message_delivery);
        let envelope = parse(&topic(r#"{ queue = "q" }"#)).unwrap();
        assert!(!envelope.topics["t"].subscriptions[0].raw_message_delivery);
        for sub in [
            r#"{ plugin = "p", raw_message_delivery = true }"#,
            r#"{ log = true, raw_message_delivery = true }"#,
        ] {
            let err = parse(&topic(sub)).unwrap_err();
            assert!(
                err.reason
                    .contains("raw_message_delivery applies to queue subscriptions"),
                "{sub}: {err}"
            );
        }
    }

    #[test]
    fn response_and_log_settings_are_checked() {
        let config = parse("[http]\nallow_set_cookie = true\n[limits]\nlog_lines_per_s = 50\n");
        let config = config.unwrap();
        assert!(config.http.allow_set_cookie);
        assert_eq!(config.limits.log_lines_per_s, 50);
        assert!(!parse("").unwrap().http.allow_set_cookie, "off by default");
        let err = parse("[http]\nallow_set_cookie = \"yes\"\n").unwrap_err();
        assert_eq!(err.line, Some(2), "{err}");
        let err = parse("[limits]\nlog_lines_per_s = 0\n").unwrap_err();
        assert!(err.reason.contains("log_lines_per_s = 0"), "{err}");
    }

    #[test]
    fn a_valid_tenant_loads() {
        let config = parse(
            r#"
            [limits]
            memory_mb = 32
            [kv]
            buckets = ["shared"]
            [plugins.hello]
            source = "hello.wasm"
            config = { greeting = "Hola", retries = 3 }
            secrets = { token = { env = "HELLO_TOKEN" } }
            allow = { kv_buckets = ["shared"], hosts = ["api.example.com"] }
            "#,
        )
        .unwrap();
        let hello = &config.plugins["hello"];
        assert_eq!(config.limits.memory_mb, 32);
        assert_eq!(hello.config_strings()["retries"], "3");
        assert_eq!(
            hello.allow.list(crate::capabilities::http::HOSTS),
            ["api.example.com"]
        );
    }

    #[test]
    fn a_database_init_script_is_read_at_load() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("schema.sql"), "CREATE TABLE t (x INT);").unwrap();
        let tenant = dir.path().join("acme.toml");
        let text = "[databases.app]\nurl = \"sqlite://a.db\"\ninit = \"schema.sql\"\n";
        let ok = TenantConfig::parse(&tenant, text).unwrap();
        assert_eq!(
            ok.databases["app"].init_sql.as_deref(),
            Some("CREATE TABLE t (x INT);")
        );
        let err =
            TenantConfig::parse(&tenant, &text.replace("schema.sql", "gone.sql")).unwrap_err();
        assert!(
            err.reason.contains("databases.app.init: cannot read"),
            "{err}"
        );
    }

    #[test]
    fn databases_are_checked_at_load() {
        let ok = parse(
            "[databases.app]\nurl = { env = \"APP_DB\" }\nmax_connections = 3\n\
             [plugins.a]\nsource = \"a.wasm\"\nallow = { databases = [\"app\"] }\n",
        )
        .unwrap();
        assert_eq!(ok.databases["app"].max_connections, 3);
        assert_eq!(ok.databases["app"].statement_timeout_ms, 5_000);
        for (text, reason) in [
            (
                "[databases.app]\nurl = \"postgres://u:hunter2@db/app\"\n",
                "must come from a secret",
            ),
            (
                "[databases.app]\nurl = \"redis://db\"\n",
                "unsupported database URL",
            ),
            (
                "[databases.app]\nurl = \"sqlite://a.db\"\nmax_connections = 500\n",
                "max_connections must be",
            ),
            (
                "[databases.app]\nurl = \"sqlite://a.db\"\nstatement_timeout_ms = 0\n",
                "statement_timeout_ms must be",
            ),
            (
                "[plugins.a]\nsource = \"a.wasm\"\nallow = { databases = [\"nope\"] }\n",
                "`nope` is not one of the tenant's databases",
            ),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.reason.contains(reason), "{text}: {err}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn grants_must_refer_to_declared_buckets() {
        let err = parse("[plugins.a]\nsource = \"a.wasm\"\nallow = { kv_buckets = [\"nope\"] }\n")
            .unwrap_err();
        assert!(
            err.reason
                .contains("`nope` is not one of the tenant's kv.buckets"),
            "{err}"
        );
    }

    #[test]
    fn limits_outside_the_ceiling_are_refused() {
        let err = parse("[limits]\nmemory_mb = 999999\n").unwrap_err();
        assert!(err.reason.contains("limits.memory_mb"), "{err}");
    }

    #[test]
    fn a_secret_in_clear_is_refused() {
        let err = parse("[plugins.a]\nsource = \"a.wasm\"\nsecrets = { token = \"hunter2\" }\n")
            .unwrap_err();
        assert!(
            err.reason
                .contains("must not be written in the tenant file"),
            "{err}"
        );
        assert!(
            !err.to_string().contains("hunter2"),
            "the error repeats the secret: {err}"
        );
    }
}
