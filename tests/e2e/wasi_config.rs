//! Standard `wasi:config/store` (0.2.0-rc.1) beside orquesta's own `config`: a component
//! importing it reads its own plugin's config values, as `config.get` returns them, and
//! nothing else: not another plugin's, not another tenant's, not its secrets.

use orquesta_tests::server::TestServer;
use serde_json::{Value, json};

/// The secret file's content; never in any answer of `wasi:config`.
const SECRET: &str = "s3cr3t-value-never-shown";

/// Tenant `alpha`: plugins `a` and `b`, the same component with different config, `a`
/// with two secrets, one named as one of its config keys (`shared`) and one as none
/// (`token`).
fn alpha(secret_file: &str) -> String {
    format!(
        r#"
[plugins.a]
source = "wasi-config.wasm"
config = {{ greeting = "hola", shared = "from-a", number = 42, ratio = 0.5, flag = true, list = [1, "x"], table = {{ k = "v" }} }}
secrets = {{ token = {{ file = "{secret_file}" }}, shared = {{ file = "{secret_file}" }} }}

[plugins.b]
source = "wasi-config.wasm"
config = {{ greeting = "bonjour", shared = "from-b", only_b = "b" }}

[[routes]]
method = "GET"
path = "/a/{{op}}"
plugin = "a"

[[routes]]
method = "GET"
path = "/b/{{op}}"
plugin = "b"
"#
    )
}

/// Tenant `beta`: the same component as `a`, under the same plugin name, its own config.
const BETA: &str = r#"
[plugins.a]
source = "wasi-config.wasm"
config = { greeting = "hallo" }

[[routes]]
method = "GET"
path = "/a/{op}"
plugin = "a"
"#;

async fn get(s: &TestServer, tenant: &str, path: &str) -> (u16, Value) {
    let r = s
        .client
        .get(format!("{}/t/{tenant}{path}", s.url))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    assert!(
        !text.contains(SECRET),
        "{tenant}{path} shows the secret: {text}"
    );
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"));
    (status, body)
}

async fn ok(s: &TestServer, tenant: &str, path: &str) -> Value {
    let (status, body) = get(s, tenant, path).await;
    assert_eq!(status, 200, "{tenant}{path}: {body}");
    body
}

#[tokio::test]
async fn wasi_config_reads_the_plugins_own_config_and_nothing_else() {
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("secret");
    std::fs::write(&secret_file, SECRET).unwrap();
    let alpha = alpha(&secret_file.display().to_string());
    let s = TestServer::start(
        &["wasi-config"],
        &[("alpha", alpha.as_str()), ("beta", BETA)],
        |_| {},
    )
    .await;

    // Every value as `config.get` returns it: strings as they are, numbers and
    // booleans as their TOML text, arrays and tables as JSON.
    for (key, value) in [
        ("greeting", "hola"),
        ("shared", "from-a"),
        ("number", "42"),
        ("ratio", "0.5"),
        ("flag", "true"),
        ("list", r#"[1,"x"]"#),
        ("table", r#"{"k":"v"}"#),
    ] {
        let got = ok(&s, "alpha", &format!("/a/get?key={key}")).await;
        assert_eq!(got["value"], value, "{key}: {got}");
        assert_eq!(got["value"], got["orquesta"], "{key}: {got}");
    }
    let all = ok(&s, "alpha", "/a/all").await;
    assert_eq!(
        all["all"],
        json!({
            "greeting": "hola", "shared": "from-a", "number": "42", "ratio": "0.5",
            "flag": "true", "list": r#"[1,"x"]"#, "table": r#"{"k":"v"}"#,
        }),
        "{all}"
    );
    assert_eq!(all["count"], all["orquesta_count"], "{all}");

    // A missing key is `none`, not an error.
    let got = ok(&s, "alpha", "/a/get?key=absent").await;
    assert_eq!(
        (&got["value"], &got["orquesta"]),
        (&Value::Null, &Value::Null),
        "{got}"
    );

    // Secrets are not config: a secret named as no config key is `none` (though
    // `config.secret` has it), one named as a config key gives the config value.
    let got = ok(&s, "alpha", "/a/get?key=token").await;
    assert_eq!(
        (&got["value"], &got["secret"]),
        (&Value::Null, &json!(true)),
        "{got}"
    );
    let got = ok(&s, "alpha", "/a/get?key=shared").await;
    assert_eq!(
        (&got["value"], &got["secret"]),
        (&json!("from-a"), &json!(true)),
        "{got}"
    );
    assert!(all["all"].get("token").is_none(), "{all}");

    // Another plugin of the same tenant, the same component: its own config only.
    let got = ok(&s, "alpha", "/b/get?key=greeting").await;
    assert_eq!(got["value"], "bonjour", "{got}");
    let got = ok(&s, "alpha", "/a/get?key=only_b").await;
    assert_eq!(got["value"], Value::Null, "{got}");
    let got = ok(&s, "alpha", "/b/get?key=number").await;
    assert_eq!(got["value"], Value::Null, "{got}");
    let got = ok(&s, "alpha", "/b/get?key=token").await;
    assert_eq!(
        (&got["value"], &got["secret"]),
        (&Value::Null, &json!(false)),
        "{got}"
    );
    let all = ok(&s, "alpha", "/b/all").await;
    assert_eq!(
        all["all"],
        json!({ "greeting": "bonjour", "shared": "from-b", "only_b": "b" }),
        "{all}"
    );

    // Another tenant, the same component under the same plugin name: its own config.
    let got = ok(&s, "beta", "/a/get?key=greeting").await;
    assert_eq!(got["value"], "hallo", "{got}");
    let all = ok(&s, "beta", "/a/all").await;
    assert_eq!(all["all"], json!({ "greeting": "hallo" }), "{all}");
    // And back: alpha's `a` was not changed by beta's.
    let got = ok(&s, "alpha", "/a/get?key=greeting").await;
    assert_eq!(got["value"], "hola", "{got}");
    s.shutdown().await;
}

/// The tenant file sets no bound on config keys or values, so `wasi:config` answers as
/// much as it holds: what bounds a plugin is its own memory (`limits.memory_mb`), into
/// which `get-all` is copied. Past it the invocation fails as `memory-limit`.
#[tokio::test]
async fn wasi_config_of_many_keys_and_large_values_is_bounded_by_the_plugins_memory() {
    const KEYS: usize = 5000;
    const LARGE: usize = 1 << 20;
    let mut config = String::new();
    for i in 0..KEYS {
        config.push_str(&format!("k{i:05} = \"value number {i}\"\n"));
    }
    let large = "y".repeat(LARGE);
    let many = format!(
        "[plugins.many]\nsource = \"wasi-config.wasm\"\n\n[plugins.many.config]\n{config}large = \"{large}\"\n\n\
         [[routes]]\nmethod = \"GET\"\npath = \"/many/{{op}}\"\nplugin = \"many\"\n"
    );
    // 8 MiB of config in a plugin of 4 MiB of memory.
    let mut huge = String::new();
    for i in 0..8 {
        huge.push_str(&format!("big{i} = \"{large}\"\n"));
    }
    let tight = format!(
        "[limits]\nmemory_mb = 4\n\n[plugins.tight]\nsource = \"wasi-config.wasm\"\n\n\
         [plugins.tight.config]\n{huge}\n[[routes]]\nmethod = \"GET\"\npath = \"/tight/{{op}}\"\nplugin = \"tight\"\n"
    );
    let s = TestServer::start(
        &["wasi-config"],
        &[("many", many.as_str()), ("tight", tight.as_str())],
        |_| {},
    )
    .await;

    let all = ok(&s, "many", "/many/all?summary=1").await;
    let bytes: usize = (0..KEYS)
        .map(|i| format!("k{i:05}").len() + format!("value number {i}").len())
        .sum::<usize>()
        + "large".len()
        + LARGE;
    assert_eq!(
        (&all["count"], &all["bytes"]),
        (&json!(KEYS + 1), &json!(bytes)),
        "{all}"
    );
    let got = ok(&s, "many", "/many/get?key=k04999").await;
    assert_eq!(got["value"], "value number 4999", "{got}");

    // One key still reads; all of them do not fit the plugin's memory, and the
    // invocation stops as `memory-limit` rather than the host copying them anyway.
    let got = ok(&s, "tight", "/tight/get?key=absent").await;
    assert_eq!(got["value"], Value::Null, "{got}");
    let (status, problem) = get(&s, "tight", "/tight/all?summary=1").await;
    assert_eq!(
        (status, &problem["title"]),
        (500, &json!("memory-limit")),
        "{problem}"
    );
    // The plugin still answers afterwards.
    let got = ok(&s, "tight", "/tight/get?key=absent").await;
    assert_eq!(got["value"], Value::Null, "{got}");
    s.shutdown().await;
}
