//! Tenant configuration: one TOML file per tenant. Parsed strictly (unknown keys are
//! refused with the file, line and reason) and validated as a whole, so a config either
//! loads completely or not at all.

mod buses;
pub mod delivery;
mod lines;
mod load;
mod plugin_triggers;
mod plugins;
mod queues;
mod routes;
mod schedules;
mod targets;
mod topics;
pub mod transform;
mod validate;
mod workflows;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

pub use crate::capabilities::http::HttpConfig;
pub use crate::capabilities::kv::KvConfig;
pub use crate::capabilities::secrets::SecretRef;
pub use crate::capabilities::sql::{DatabaseConfig, DatabaseUrl};
use crate::engine::Limits;
pub use buses::{BusConfig, RuleConfig, RuleTarget};
pub use delivery::{DeliveryDeadLetter, DeliveryPolicy, RetryPolicy};
pub use lines::line_of_key;
pub use plugin_triggers::PluginTrigger;
pub use plugins::PluginConfig;
pub use queues::{ConsumerConfig, DeadLetterConfig, QueueConfig};
pub use routes::{ApiKeyConfig, AuthMode, JwtConfig, RouteConfig, RouteTemplate, UsagePlan};
pub use schedules::ScheduleConfig;
pub use targets::Target;
pub use topics::{FilterScope, Subscription, TopicConfig};
pub use workflows::WorkflowConfig;

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
