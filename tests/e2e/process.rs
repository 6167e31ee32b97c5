//! `orquesta serve` as a process: SIGTERM drains requests in flight, and secrets never
//! reach the logs.

use std::time::{Duration, Instant};

use orquesta_tests::plugin;
use orquesta_tests::server::ServeProcess;
use orquesta_tests::wait::wait_until;
use serde_json::json;

const SECRET: &str = "s3cret-value-that-must-not-leak";

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("plugins")).unwrap();
    std::fs::create_dir_all(dir.path().join("tenants")).unwrap();
    std::fs::copy(plugin("hostile"), dir.path().join("plugins/hostile.wasm")).unwrap();
    std::fs::write(
        dir.path().join("tenants/acme.toml"),
        r#"
[plugins.hostile]
source = "hostile.wasm"
secrets = { token = { env = "ACME_TOKEN" } }

[[routes]]
method = "POST"
path = "/hostile"
plugin = "hostile"
"#,
    )
    .unwrap();
    dir
}

const CONFIG: &str = r#"
listen = "127.0.0.1:0"
data_dir = "data"
plugin_dir = "plugins"
tenant_dir = "tenants"
shutdown_grace_ms = 10000
"#;

#[tokio::test]
async fn sigterm_drains_requests_in_flight_then_exits() {
    let dir = setup();
    let mut server = ServeProcess::start(dir.path(), CONFIG, &[("ACME_TOKEN", SECRET)]);
    let url = format!("{}/t/acme/hostile", server.url);
    let slow = tokio::spawn({
        let url = url.clone();
        async move {
            reqwest::Client::new()
                .post(url)
                .body(json!({ "attack": "marked-nap", "tag": "drain", "ms": 1000 }).to_string())
                .send()
                .await
        }
    });
    let client = reqwest::Client::new();
    wait_until(
        "the request to reach the plugin",
        Duration::from_secs(20),
        async || {
            let probe = json!({ "attack": "kv-read", "key": "drain:started" }).to_string();
            let Ok(r) = client.post(&url).body(probe).send().await else {
                return false;
            };
            r.json::<serde_json::Value>()
                .await
                .is_ok_and(|v| v["found"]["default/drain:started"] == "1")
        },
    )
    .await;
    let started = Instant::now();
    let code = tokio::task::spawn_blocking(move || {
        let code = server.terminate(Duration::from_secs(15));
        (code, server)
    })
    .await
    .unwrap();
    let answer = slow
        .await
        .unwrap()
        .expect("the request in flight is answered");
    assert_eq!(answer.status(), 200);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["slept_ms"], 1000);
    assert_eq!(code.0, Some(0), "exits cleanly; logs:\n{}", code.1.logs());
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "exited before the request finished"
    );
    assert!(code.1.logs().contains("draining"), "{}", code.1.logs());
}

#[tokio::test]
async fn a_secret_never_appears_in_the_logs() {
    let dir = setup();
    let mut server = ServeProcess::start(
        dir.path(),
        CONFIG,
        // Everything at trace except the compiler's millions of lines about code.
        &[
            ("ACME_TOKEN", SECRET),
            (
                "ORQUESTA_LOG",
                "trace,cranelift_codegen=info,cranelift_frontend=info,wasmtime_cranelift=info,regalloc2=info,wasmtime=info,wasmtime_environ=info",
            ),
        ],
    );
    let r = reqwest::Client::new()
        .post(format!("{}/t/acme/hostile", server.url))
        .body(json!({ "attack": "log-secret" }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let code = tokio::task::spawn_blocking(move || {
        let code = server.terminate(Duration::from_secs(15));
        (code, server)
    })
    .await
    .unwrap();
    assert_eq!(code.0, Some(0));
    let logs = code.1.logs();
    assert!(
        logs.contains("the token is ***"),
        "the plugin's log line is there, redacted:\n{logs}"
    );
    assert!(
        logs.contains("stdout says ***"),
        "guest stdout is redacted too:\n{logs}"
    );
    assert!(!logs.contains(SECRET), "the secret leaked:\n{logs}");
}

/// Everything logged within `limit` once `done` holds, or what was logged by then.
async fn logs_until(server: &ServeProcess, limit: Duration, done: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        let logs = server.logs();
        if done(&logs) || started.elapsed() >= limit {
            return logs;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The access log (README, "Logs"): off under the default filter; on with
/// `orquesta::access=debug`, one `answered` event per request with its method, path,
/// status and time, and never the query string (API keys travel in it).
#[tokio::test]
async fn the_access_log_is_off_by_default_and_leaves_the_query_out() {
    let dir = setup();
    let quiet = ServeProcess::start(dir.path(), CONFIG, &[("ACME_TOKEN", SECRET)]);
    let r = reqwest::get(format!("{}/healthz", quiet.url))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Half a second to write a line that, when on, is written as the request ends.
    let logs = logs_until(&quiet, Duration::from_millis(500), |_| false).await;
    assert!(!logs.contains("answered"), "logged by default:\n{logs}");
    drop(quiet);

    let logged = ServeProcess::start(
        dir.path(),
        CONFIG,
        &[
            ("ACME_TOKEN", SECRET),
            ("ORQUESTA_LOG", "info,orquesta::access=debug"),
        ],
    );
    let client = reqwest::Client::new();
    let r = client
        .get(format!("{}/healthz?api_key=query-secret", logged.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .get(format!("{}/t/nobody/x", logged.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let logs = logs_until(&logged, Duration::from_secs(5), |l| {
        l.matches("answered").count() >= 2
    })
    .await;
    let line = |path: &str| {
        logs.lines()
            .find(|l| l.contains("answered") && l.contains(&format!("path={path}")))
            .unwrap_or_else(|| panic!("no access line for {path}:\n{logs}"))
            .to_string()
    };
    let health = line("/healthz");
    for field in ["method=GET", "status=200", "latency_ms="] {
        assert!(health.contains(field), "{field} missing: {health}");
    }
    assert!(line("/t/nobody/x").contains("status=404"));
    assert!(
        !logs.contains("query-secret"),
        "the query was logged:\n{logs}"
    );
}
