//! Tenant files parsed and validated as a whole: each refusal with its place and reason.

use std::path::Path;

use super::*;
use crate::capabilities::sql::{DatabaseError, SqlConfigError};
use crate::capabilities::{SectionError, grants};
use crate::engine::limits::LimitError;

fn parse(text: &str) -> Result<TenantConfig, ConfigError> {
    TenantConfig::parse(Path::new("acme.toml"), text)
}

/// What the checks after parsing found (not the parser).
fn invalid(text: &str) -> TenantError {
    let err = parse(text).unwrap_err();
    err.invalid()
        .cloned()
        .unwrap_or_else(|| panic!("not a check's refusal: {err}"))
}

#[test]
fn unknown_key_names_file_line_and_field() {
    let err = parse("[plugins.hello]\nsource = \"hello.wasm\"\ncolour = \"red\"\n").unwrap_err();
    assert_eq!(err.line, Some(3));
    assert!(
        matches!(&err.reason, Reason::Syntax(m) if m.starts_with("unknown field `colour`")),
        "{err}"
    );
    assert!(err.to_string().starts_with("acme.toml:3: "), "{err}");
}

/// The top level is read by hand (`load.rs`); an unknown section is refused as serde
/// refuses any unknown key, with its line and every key there is, capabilities' too.
#[test]
fn an_unknown_section_names_its_line_and_every_section() {
    let err = parse("[limits]\nmemory_mb = 32\n\n[cache]\nsize = 1\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "acme.toml:4: unknown field `cache`, expected one of `limits`, `plugins`, `routes`, \
         `usage_plans`, `api_keys`, `admin_credentials`, `jwt`, `queues`, `topics`, `buses`, `schedules`, \
         `workflows`, `kv`, `http`, `databases`"
    );
    // A capability's section keeps the lines of what is wrong inside it.
    let text = "[kv]\nbuckets = [\"a\"]\n[databases.app]\nurl = \"sqlite://a.db\"\nmax_conns = 3\n";
    let err = parse(text).unwrap_err();
    assert_eq!(err.line, Some(5), "{err}");
}

/// A grant key no capability has is refused where it is written, naming the key and
/// every grant key there is (`CAPABILITIES`), so a typo says what was meant.
#[test]
fn an_unknown_grant_key_names_its_line_and_the_allowed_keys() {
    let text = "[kv]\nbuckets = [\"shared\"]\n\n[plugins.a]\nsource = \"a.wasm\"\n\
                allow = { kv_buckets = [\"shared\"], kv_bucket = [\"x\"] }\n";
    let err = parse(text).unwrap_err();
    let allowed: Vec<String> = grants().map(|g| format!("`{}`", g.key)).collect();
    assert!(allowed.len() > 2, "serde words a list of two differently");
    assert_eq!(
        err.to_string(),
        format!(
            "acme.toml:6: unknown field `kv_bucket`, expected one of {}",
            allowed.join(", ")
        )
    );
    for key in ["kv_buckets", "hosts", "databases", "queues", "topics"] {
        assert!(
            err.to_string().contains(&format!("`{key}`")),
            "{key}: {err}"
        );
    }
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
    // A plugin target takes them too: the plugin's event carries the result.
    let plugin = parse(
        &rule(r#"{ plugin = "p", input_path = "$.detail" }"#)
            .replace("[queues.q]", "[queues.q]\n[plugins.p]\nsource = \"p.wasm\""),
    )
    .expect("a plugin target with input_path");
    assert!(plugin.buses["default"].rules[0].targets[0].transforms());
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
            r#"{ plugin = "p", input_path = "$.detail", input = 1 }"#,
            None,
            "at most one of input, input_path and input_transformer",
        ),
    ] {
        let text =
            rule(target).replace("[queues.q]", "[queues.q]\n[plugins.p]\nsource = \"p.wasm\"");
        let err = parse(&text).unwrap_err();
        assert!(err.reason.to_string().contains(reason), "{target}: {err}");
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
            target(r#"{ plugin = "p", dead_letter = { queue = "dlq", max_receive_count = 3 } }"#),
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
        assert!(err.reason.to_string().contains(reason), "{text}: {err}");
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
        assert_eq!(
            invalid(&topic(sub)),
            TenantError::Rule {
                at: "topics.t.subscriptions[0]".into(),
                rule: "raw_message_delivery applies to queue subscriptions",
            },
            "{sub}"
        );
    }
}

#[test]
fn response_and_log_settings_are_checked() {
    let config = parse("[http]\nallow_set_cookie = true\n[limits]\nlog_lines_per_s = 50\n");
    let config = config.unwrap();
    assert!(config.capabilities.http.allow_set_cookie);
    assert_eq!(config.limits.log_lines_per_s, 50);
    let config = parse("").unwrap();
    assert!(!config.capabilities.http.allow_set_cookie, "off by default");
    let err = parse("[http]\nallow_set_cookie = \"yes\"\n").unwrap_err();
    assert_eq!(err.line, Some(2), "{err}");
    assert!(matches!(
        invalid("[limits]\nlog_lines_per_s = 0\n"),
        TenantError::Limits(LimitError {
            name: "log_lines_per_s",
            value: 0,
            ..
        })
    ));
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
        ok.capabilities.databases["app"].init_sql.as_deref(),
        Some("CREATE TABLE t (x INT);")
    );
    let err = TenantConfig::parse(&tenant, &text.replace("schema.sql", "gone.sql")).unwrap_err();
    let start = format!("{}: databases.app.init: cannot read ", tenant.display());
    assert!(err.to_string().starts_with(&start), "{err}");
    assert!(matches!(
        err.invalid(),
        Some(TenantError::Section(SectionError::Sql(DatabaseError {
            reason: SqlConfigError::Init { .. },
            ..
        })))
    ));
}

#[test]
fn databases_are_checked_at_load() {
    let ok = parse(
        "[databases.app]\nurl = { env = \"APP_DB\" }\nmax_connections = 3\n\
         [plugins.a]\nsource = \"a.wasm\"\nallow = { databases = [\"app\"] }\n",
    )
    .unwrap();
    let app = &ok.capabilities.databases["app"];
    assert_eq!(app.max_connections, 3);
    assert_eq!(app.statement_timeout_ms, 5_000);
    let db = |reason| {
        TenantError::Section(SectionError::Sql(DatabaseError {
            name: "app".into(),
            reason,
        }))
    };
    for (text, expected) in [
        (
            "[databases.app]\nurl = \"postgres://u:hunter2@db/app\"\n",
            db(SqlConfigError::PasswordInClear),
        ),
        (
            "[databases.app]\nurl = \"redis://db\"\n",
            db(SqlConfigError::UnsupportedScheme("redis".into())),
        ),
        (
            "[databases.app]\nurl = \"sqlite://a.db\"\nmax_connections = 500\n",
            db(SqlConfigError::MaxConnections),
        ),
        (
            "[databases.app]\nurl = \"sqlite://a.db\"\nstatement_timeout_ms = 0\n",
            db(SqlConfigError::StatementTimeout),
        ),
        (
            "[plugins.a]\nsource = \"a.wasm\"\nallow = { databases = [\"nope\"] }\n",
            TenantError::Undeclared {
                at: "plugins.a.allow.databases:".into(),
                name: "nope".into(),
                section: "databases",
            },
        ),
    ] {
        let err = parse(text).unwrap_err();
        assert_eq!(err.invalid(), Some(&expected), "{text}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
    assert_eq!(
        parse("[databases.app]\nurl = \"postgres://u:hunter2@db/app\"\n")
            .unwrap_err()
            .to_string(),
        "acme.toml: databases.app: a URL with a password must come from a secret: url = { env = \"VAR\" }"
    );
}

#[test]
fn grants_must_refer_to_declared_buckets() {
    let text = "[plugins.a]\nsource = \"a.wasm\"\nallow = { kv_buckets = [\"nope\"] }\n";
    let err = parse(text).unwrap_err();
    assert_eq!(
        err.to_string(),
        "acme.toml: plugins.a.allow.kv_buckets: `nope` is not one of the tenant's kv.buckets"
    );
    assert!(matches!(
        err.invalid(),
        Some(TenantError::Undeclared { name, section: "kv.buckets", .. }) if name == "nope"
    ));
}

/// `allow.workflow_tasks` names declared workflows (or `*`), as `allow.workflows` does.
#[test]
fn workflow_task_grants_must_refer_to_declared_workflows() {
    let text = "[plugins.a]\nsource = \"a.wasm\"\nallow = { workflow_tasks = [\"nope\"] }\n";
    let err = parse(text).unwrap_err();
    assert_eq!(
        err.to_string(),
        "acme.toml: plugins.a.allow.workflow_tasks: `nope` is not one of the tenant's workflows"
    );
    let any = "[plugins.a]\nsource = \"a.wasm\"\nallow = { workflow_tasks = [\"*\"] }\n";
    assert!(parse(any).is_ok());
}

#[test]
fn limits_outside_the_ceiling_are_refused() {
    assert!(matches!(
        invalid("[limits]\nmemory_mb = 999999\n"),
        TenantError::Limits(LimitError {
            name: "memory_mb",
            value: 999_999,
            ..
        })
    ));
}

#[test]
fn a_secret_in_clear_is_refused() {
    let err =
        parse("[plugins.a]\nsource = \"a.wasm\"\nsecrets = { token = \"hunter2\" }\n").unwrap_err();
    assert!(
        err.to_string()
            .contains("must not be written in the tenant file"),
        "{err}"
    );
    assert!(
        !err.to_string().contains("hunter2"),
        "the error repeats the secret: {err}"
    );
}

/// SNS's delivery policy for HTTP/S endpoints: on webhook subscriptions only, held
/// to SNS's limits with the line of the key.
#[test]
fn webhook_delivery_policies_are_checked_with_their_line() {
    let topic = |sub: &str| {
        format!(
            "[queues.q]\n[plugins.p]\nsource = \"p.wasm\"\n[topics.t]\nsubscriptions = [\n  {sub},\n]\n"
        )
    };
    let ok = parse(&topic(
        r#"{ webhook = "https://h.example/x", delivery_policy = { healthy_retry_policy = { num_retries = 5, num_no_delay_retries = 1, min_delay_target = 1, max_delay_target = 8, backoff_function = "exponential" } } }"#,
    ))
    .unwrap();
    let policy = ok.topics["t"].subscriptions[0].delivery_policy("arn".into());
    assert_eq!((policy.max_attempts, policy.max_age_ms), (6, None));
    let schedule = policy.schedule.expect("the subscription's schedule");
    assert_eq!(schedule.backoff_function, delivery::Backoff::Exponential);
    assert_eq!(schedule.pause_ms(1), 0);
    assert_eq!(schedule.pause_ms(5), 8_000);
    // Without one, SNS's default: three retries 20 seconds apart.
    let plain = parse(&topic(r#"{ webhook = "https://h.example/x" }"#)).unwrap();
    let policy = plain.topics["t"].subscriptions[0].delivery_policy("arn".into());
    assert_eq!(policy.max_attempts, 4);
    assert_eq!(policy.schedule.map(|s| s.pause_ms(3)), Some(20_000));
    for (sub, line, reason) in [
        (
            r#"{ webhook = "https://h.example/x", delivery_policy = { healthy_retry_policy = { num_retries = 101 } } }"#,
            Some(6),
            "delivery_policy.healthy_retry_policy.num_retries must be 0-100, got 101",
        ),
        (
            r#"{ webhook = "https://h.example/x", delivery_policy = { healthy_retry_policy = { min_delay_target = 30, max_delay_target = 10 } } }"#,
            Some(6),
            "max_delay_target must be min_delay_target (30)-3600 seconds",
        ),
        (
            r#"{ webhook = "https://h.example/x", delivery_policy = { healthy_retry_policy = { backoff_function = "cubic" } } }"#,
            Some(6),
            "unknown variant `cubic`",
        ),
        (
            r#"{ webhook = "https://h.example/x", delivery_policy = { throttle_policy = { max_receives_per_second = 1 } } }"#,
            Some(6),
            "unknown field `throttle_policy`",
        ),
        (
            r#"{ plugin = "p", delivery_policy = { healthy_retry_policy = { num_retries = 1 } } }"#,
            None,
            "delivery_policy applies to webhook subscriptions",
        ),
        (
            r#"{ queue = "q", delivery_policy = {} }"#,
            None,
            "delivery_policy applies to webhook subscriptions",
        ),
    ] {
        let err = parse(&topic(sub)).unwrap_err();
        assert!(err.reason.to_string().contains(reason), "{sub}: {err}");
        assert_eq!(err.line, line, "{sub}: {err}");
    }
}

const HASH_A: &str = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";
const HASH_B: &str = "sha256:fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9";

#[test]
fn admin_credentials_load_with_their_scopes() {
    let text = format!(
        "[[admin_credentials]]\nname = \"ops\"\nhash = \"{HASH_A}\"\nscopes = [\"read\", \"operate\"]\n\n\
         [[admin_credentials]]\nname = \"viewer\"\nhash = \"{HASH_B}\"\nscopes = [\"read\"]\n"
    );
    let config = parse(&text).unwrap();
    let all = &config.admin_credentials.0;
    assert_eq!(all.len(), 2);
    let ops = config.admin_credentials.find(&HASH_A[7..]).unwrap();
    assert_eq!(ops.name, "ops");
    assert_eq!(
        ops.scopes.iter().copied().collect::<Vec<_>>(),
        [AdminScope::Read, AdminScope::Operate]
    );
    assert!(config.admin_credentials.find("sha256:").is_none());
}

/// Each refusal names the file and the line: of the key serde refuses, or of the
/// credential (its `[[admin_credentials]]` line) when the entry as a whole is refused.
#[test]
fn admin_credentials_are_refused_with_their_line() {
    let upper = HASH_A.to_uppercase().replace("SHA256:", "sha256:");
    for (entry, line, reason) in [
        (
            format!(
                "name = \"a\"\nhash = \"{}\"\nscopes = [\"read\"]",
                &HASH_A[7..]
            ),
            4,
            "hash must be \"sha256:\"",
        ),
        (
            format!("name = \"a\"\nhash = \"{upper}\"\nscopes = [\"read\"]"),
            4,
            "64 lower-case hex digits",
        ),
        (
            format!("name = \"a\"\nhash = \"{HASH_A}\"\nscopes = [\"admin\"]"),
            7,
            "unknown variant `admin`",
        ),
        (
            format!("name = \"a\"\nhash = \"{HASH_A}\"\nscopes = []"),
            4,
            "scopes must name at least one",
        ),
        (
            format!("name = \"\"\nhash = \"{HASH_A}\"\nscopes = [\"read\"]"),
            4,
            "must be 1-64 characters",
        ),
        (
            format!("name = \"a\"\nhash = \"{HASH_A}\"\nscopes = [\"read\"]\ntoken = \"x\""),
            8,
            "unknown field `token`",
        ),
        (
            format!(
                "name = \"a\"\nhash = \"{HASH_A}\"\nscopes = [\"read\"]\n\
                 [[admin_credentials]]\nname = \"a\"\nhash = \"{HASH_B}\"\nscopes = [\"read\"]"
            ),
            8,
            "`a`: the name is declared twice",
        ),
        (
            format!(
                "name = \"a\"\nhash = \"{HASH_A}\"\nscopes = [\"read\"]\n\
                 [[admin_credentials]]\nname = \"b\"\nhash = \"{HASH_A}\"\nscopes = [\"read\"]"
            ),
            8,
            "`b`: its hash is another credential's too",
        ),
    ] {
        let text = format!("[limits]\nconcurrency = 2\n\n[[admin_credentials]]\n{entry}\n");
        let err = parse(&text).unwrap_err();
        let said = err.to_string();
        assert!(said.contains(reason), "{entry}: {said}");
        assert_eq!(err.line, Some(line), "{entry}: {said}");
        assert!(said.starts_with(&format!("acme.toml:{line}: ")), "{said}");
    }
}
