//! TypeScript/JavaScript plugins (docs/PLUGINS.md, "TypeScript plugins"): the template
//! from an empty folder to a route served by a running host, JavaScript's `fetch` under
//! the tenant's grants, the SDK's failures, and what a hostile script can do with the
//! engine (plugins/typescript/probe). Ignored, saying why, where the tools are not
//! installed (tests/build.rs).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;
use orquesta::capabilities::Grants;
use orquesta::engine::Limits;
use orquesta::testing::TestPlugin;
use orquesta_tests::server::TestServer;
use serde_json::{Value, json};

fn tools_env() -> String {
    orquesta_tests::javascript::tools()
        .expect("tests/build.rs found the JavaScript tools")
        .display()
        .to_string()
}

#[tokio::test]
#[cfg_attr(
    no_componentize_js,
    ignore = "componentize-js 0.23.0 is not installed (docs/PLUGINS.md)"
)]
async fn the_typescript_template_builds_passes_its_fixtures_and_serves_a_route() {
    // An empty folder with the template's two files, as docs/PLUGINS.md starts.
    let dir = tempfile::tempdir().unwrap();
    let template = orquesta_tests::workspace().join("plugins/templates/typescript");
    for file in ["app.ts", "fixtures.toml"] {
        std::fs::copy(template.join(file), dir.path().join(file)).unwrap();
    }
    let tools = tools_env();
    let env = [("ORQUESTA_JS_TOOLS", tools.as_str())];
    let (code, out, err) = orquesta_tests::run_orquesta_env(
        dir.path(),
        &["build", "app.ts", "-o", "hello.wasm"],
        None,
        &env,
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("answering http"), "{out}");

    let (code, out, err) =
        orquesta_tests::run_orquesta(dir.path(), &["test", "hello.wasm", "fixtures.toml"], None);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("5 passed, 0 failed"), "{out}");

    // Deployed on a running host, with the default limits.
    let plugin = dir.path().join("hello.wasm");
    let server = TestServer::start(&[], &[], |_| {}).await;
    std::fs::copy(&plugin, server.plugin_dir().join("hello.wasm")).unwrap();
    server.write_tenant(
        "acme",
        "[plugins.hello]\nsource = \"hello.wasm\"\n\n[[routes]]\nmethod = \"GET\"\npath = \"/hello\"\nplugin = \"hello\"\n",
    );
    let url = format!("{}/t/acme/hello?name=Ana", server.url);
    let body = orquesta_tests::wait::wait_for(
        "the TypeScript route to answer",
        Duration::from_secs(60),
        async || {
            let answer = server.client.get(&url).send().await.ok()?;
            if answer.status() != 200 {
                return None;
            }
            answer.json::<Value>().await.ok()
        },
    )
    .await;
    assert_eq!(body, json!({ "message": "Hello, Ana!", "visits": 1 }));
    server.shutdown().await;

    // The same app with a handler the build was told not to export is refused at build
    // time (the entry module's check runs while componentize-js pre-initialises it).
    let (code, _, err) = orquesta_tests::run_orquesta_env(
        dir.path(),
        &["build", "app.ts", "--trigger", "queue", "-o", "q.wasm"],
        None,
        &env,
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("add --trigger http"), "{err}");
    assert!(
        err.contains("registers no function for it (onQueue)"),
        "{err}"
    );
    assert!(!dir.path().join("q.wasm").exists());
}

#[tokio::test]
#[cfg_attr(
    no_componentize_js,
    ignore = "componentize-js 0.23.0 is not installed (docs/PLUGINS.md)"
)]
async fn a_typescript_syntax_error_is_a_clear_build_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("app.ts"),
        "import { onHttp } from \"orquesta\";\nonHttp((req) => {\n  return { ok: true ;\n});\n",
    )
    .unwrap();
    // An old component stays whole when the new build fails.
    std::fs::write(dir.path().join("app.wasm"), b"old").unwrap();
    let tools = tools_env();
    let (code, out, err) = orquesta_tests::run_orquesta_env(
        dir.path(),
        &["build", "app.ts"],
        None,
        &[("ORQUESTA_JS_TOOLS", tools.as_str())],
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("esbuild failed on app.ts"), "{err}");
    // The file, line and what was expected, as esbuild says it.
    assert!(err.contains("\n    app.ts:3:"), "{err}");
    assert!(err.contains("Expected \"}\""), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(std::fs::read(dir.path().join("app.wasm")).unwrap(), b"old");

    // An import the folder does not hold is the same kind of error, naming it.
    std::fs::write(
        dir.path().join("app.ts"),
        "import { onHttp } from \"orquesta\";\nimport { x } from \"./missing\";\nonHttp(() => x);\n",
    )
    .unwrap();
    let (code, _, err) = orquesta_tests::run_orquesta_env(
        dir.path(),
        &["build", "app.ts"],
        None,
        &[("ORQUESTA_JS_TOOLS", tools.as_str())],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("Could not resolve \"./missing\""), "{err}");
}

#[test]
fn a_typescript_build_without_the_tools_says_how_to_install_them() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("app.ts"),
        "import { onHttp } from \"orquesta\";\nonHttp(() => 1);\n",
    )
    .unwrap();
    let (code, out, err) = orquesta_tests::run_orquesta(
        dir.path(),
        &["build", "app.ts", "--js-tools", "/nonexistent/js-tools"],
        None,
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("esbuild was not found"), "{err}");
    assert!(err.contains("npm ci --prefix"), "{err}");
    assert!(!dir.path().join("app.wasm").exists());
}

/// A loopback upstream counting its calls: `/hello` echoes `x-probe`.
async fn upstream() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = Router::new().route(
        "/hello",
        get(move |headers: HeaderMap| async move {
            counted.fetch_add(1, Ordering::SeqCst);
            let probe = headers
                .get("x-probe")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("none")
                .to_string();
            ([("x-answer", "yes")], format!("hello {probe}"))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), hits)
}

fn probe_tenant(allow_private: bool, hosts: &str) -> String {
    format!(
        "[http]\nallow_private = {allow_private}\n\n[plugins.probe]\nsource = \"probe-ts.wasm\"\nallow = {{ hosts = [{hosts}] }}\n\n[[routes]]\nmethod = \"POST\"\npath = \"/fetch\"\nplugin = \"probe\"\n"
    )
}

#[tokio::test]
#[cfg_attr(
    no_componentize_js,
    ignore = "componentize-js 0.23.0 is not installed (docs/PLUGINS.md)"
)]
async fn typescript_fetch_follows_the_tenants_grants() {
    let (base, hits) = upstream().await;
    let tenants = [
        ("open", probe_tenant(true, "\"127.0.0.1\"")),
        ("ungranted", probe_tenant(true, "\"api.example.com\"")),
        (
            "closed",
            probe_tenant(false, "\"127.0.0.1\", \"localhost\""),
        ),
        ("none", probe_tenant(true, "")),
    ];
    let tenants: Vec<(&str, &str)> = tenants.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let s = TestServer::start(&["probe-ts"], &tenants, |_| {}).await;
    let fetch = async |tenant: &str, url: &str| -> (u16, Value) {
        let r = s
            .client
            .post(format!("{}/t/{tenant}/fetch", s.url))
            .body(url.to_string())
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    };

    // Granted: `fetch` reaches the upstream with the script's header and reads the
    // answer's status, header and body.
    let hello = format!("{base}/hello");
    let (status, got) = fetch("open", &hello).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(
        got,
        json!({ "status": 200, "body": "hello ts", "answer": "yes" })
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // Outside the grant, without one, and a private address the tenant does not allow
    // (by IP and by name): `fetch` rejects, and nothing leaves.
    let port = base.rsplit(':').next().unwrap_or_default();
    for (tenant, url) in [
        ("ungranted", hello.clone()),
        ("none", hello.clone()),
        ("closed", hello.clone()),
        ("closed", format!("http://localhost:{port}/hello")),
    ] {
        let (status, got) = fetch(tenant, &url).await;
        assert_eq!(status, 502, "{tenant} {url}: {got}");
        assert!(
            got["refused"]
                .as_str()
                .unwrap_or_default()
                .contains("TypeError"),
            "{tenant} {url}: {got}"
        );
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "no refused request went out"
    );
    s.shutdown().await;
}

fn get_event(path: &str) -> Value {
    json!({ "type": "http", "method": "GET", "path": path })
}

async fn probe() -> TestPlugin {
    TestPlugin::load(orquesta_tests::plugin("probe-ts"))
        .await
        .unwrap()
}

#[tokio::test]
#[cfg_attr(
    no_componentize_js,
    ignore = "componentize-js 0.23.0 is not installed (docs/PLUGINS.md)"
)]
async fn typescript_failures_are_the_contracts_failures() {
    let plugin = probe().await;
    let mut sandbox = plugin.sandbox().await.unwrap();
    // Nothing granted: the kv call below is refused.
    sandbox.grants(Grants::default());
    let e = sandbox.invoke(get_event("/fail")).await.unwrap_err();
    assert_eq!(e.name(), "ValidationError", "{e}");
    assert_eq!(e.cause(), "the probe fails on purpose");
    // A capability the tenant did not grant: the host's `denied`, named as the Rust SDK
    // names it.
    let e = sandbox.invoke(get_event("/denied")).await.unwrap_err();
    assert_eq!(e.name(), "Denied", "{e}");
    assert!(e.cause().contains("not-granted"), "{e}");
    // The script's own bug: a failure naming it, not a trap.
    let e = sandbox.invoke(get_event("/throw")).await.unwrap_err();
    assert_eq!(e.name(), "UnhandledException", "{e}");
    assert!(e.cause().contains("TypeError"), "{e}");
    let ok = sandbox.invoke(get_event("/after")).await.unwrap();
    assert_eq!(ok["body"]["ok"], true, "{ok}");
}

#[tokio::test]
#[cfg_attr(
    no_componentize_js,
    ignore = "componentize-js 0.23.0 is not installed (docs/PLUGINS.md)"
)]
async fn a_typescript_loop_is_cut_at_the_timeout_and_the_plugin_answers_next() {
    let plugin = probe().await;
    let mut sandbox = plugin.sandbox().await.unwrap();
    sandbox.limits(Limits {
        timeout_ms: 300,
        ..Limits::default()
    });
    let started = Instant::now();
    let e = sandbox.invoke(get_event("/spin")).await.unwrap_err();
    assert_eq!(e.name(), "timeout", "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let ok = sandbox.invoke(get_event("/after")).await.unwrap();
    assert_eq!(ok["body"]["ok"], true, "{ok}");
}

#[tokio::test]
#[cfg_attr(
    no_componentize_js,
    ignore = "componentize-js 0.23.0 is not installed (docs/PLUGINS.md)"
)]
async fn a_typescript_allocation_past_memory_mb_fails_cleanly() {
    let plugin = probe().await;
    let mut sandbox = plugin.sandbox().await.unwrap();
    sandbox.limits(Limits {
        memory_mb: 96,
        ..Limits::default()
    });
    // SpiderMonkey turns the refused growth into its own `out of memory` exception,
    // which the SDK reports as the script's failure; the host is unaffected.
    let e = sandbox.invoke(get_event("/allocate")).await.unwrap_err();
    assert_eq!(e.name(), "UnhandledException", "{e}");
    assert!(e.cause().contains("out of memory"), "{e}");
    let ok = sandbox.invoke(get_event("/after")).await.unwrap();
    assert_eq!(ok["body"]["ok"], true, "{ok}");
}
