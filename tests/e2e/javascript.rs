//! TypeScript/JavaScript plugins (docs/PLUGINS.md, "TypeScript plugins"): the template
//! from an empty folder to a route served by a running host, the SDK's types generated
//! from the contract, type errors failing the build, JavaScript's `fetch`, blobs and
//! workflow task answers under the tenant's grants, the SDK's failures, and what a
//! hostile script can do with the engine (plugins/typescript/probe). Ignored, saying why,
//! where the tools are not installed (tests/build.rs).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;
use orquesta::capabilities::Grants;
use orquesta::capabilities::blob::BUCKETS;
use orquesta::engine::Limits;
use orquesta::testing::TestPlugin;
use orquesta_tests::server::{ADMIN_TOKEN, TestServer, WorkflowAdmin};
use orquesta_tests::wait::wait_for;
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
    let broken =
        "import { onHttp } from \"orquesta\";\nonHttp((req) => {\n  return { ok: true ;\n});\n";
    let missing = "import { onHttp } from \"orquesta\";\nimport { x } from \"./missing\";\nonHttp(() => x);\n";
    let tools = tools_env();
    let build = |app: &str, text: &str| {
        std::fs::write(dir.path().join(app), text).unwrap();
        // An old component stays whole when the new build fails.
        std::fs::write(dir.path().join("app.wasm"), b"old").unwrap();
        let (code, out, err) = orquesta_tests::run_orquesta_env(
            dir.path(),
            &["build", app, "-o", "app.wasm"],
            None,
            &[("ORQUESTA_JS_TOOLS", tools.as_str())],
        );
        assert_eq!(code, 1, "{out}{err}");
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(std::fs::read(dir.path().join("app.wasm")).unwrap(), b"old");
        err
    };

    // TypeScript: tsc, which checks first, names the file, line and column.
    let err = build("app.ts", broken);
    assert!(err.contains("app.ts does not type-check"), "{err}");
    assert!(
        err.contains("\napp.ts:3:21: error TS1005: ',' expected."),
        "{err}"
    );
    let err = build("app.ts", missing);
    assert!(
        err.contains("\napp.ts:2:19: error TS2307: Cannot find module './missing'"),
        "{err}"
    );

    // JavaScript, not type-checked: esbuild's own message, as it says it.
    let err = build("app.js", broken);
    assert!(err.contains("esbuild failed on app.js"), "{err}");
    assert!(err.contains("\n    app.js:3:"), "{err}");
    assert!(err.contains("Expected \"}\""), "{err}");
    let err = build("app.js", missing);
    assert!(err.contains("Could not resolve \"./missing\""), "{err}");
}

/// Every file under `dir`, by its path below `root`.
fn tree(dir: &std::path::Path, root: &std::path::Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            tree(&path, root, out);
        } else {
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            out.push((rel, std::fs::read_to_string(&path).unwrap()));
        }
    }
    out.sort();
}

/// The SDK's `generated/` declarations are what the pinned jco makes from the contract
/// and the world `orquesta build` writes (of every kind), byte for byte; any change of
/// the WIT, the world or jco shows here. `ORQUESTA_UPDATE_JS_TYPES=1` rewrites them.
#[test]
#[cfg_attr(
    no_componentize_js,
    ignore = "componentize-js 0.23.0 is not installed (docs/PLUGINS.md)"
)]
fn the_sdks_types_are_those_jco_generates_from_the_contract() {
    let workspace = orquesta_tests::workspace();
    let dir = tempfile::tempdir().unwrap();
    let wit = dir.path().join("orquesta.wit");
    std::fs::write(&wit, orquesta::javascript::types_wit()).unwrap();
    let fresh = dir.path().join("generated");
    let out = std::process::Command::new("node")
        .arg(workspace.join("plugins/sdk-js/tools/wit-types.mjs"))
        .arg(tools_env())
        .arg(&wit)
        .arg("orquesta-js-plugin")
        .arg(&fresh)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "wit-types.mjs failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let committed = workspace.join("plugins/sdk-js/src/generated");
    let (mut want, mut have) = (Vec::new(), Vec::new());
    tree(&fresh, &fresh, &mut want);
    tree(&committed, &committed, &mut have);
    assert!(want.len() > 10, "{want:?}");
    if want != have && std::env::var_os("ORQUESTA_UPDATE_JS_TYPES").is_some() {
        std::fs::remove_dir_all(&committed).unwrap();
        for (name, text) in &want {
            let path = committed.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        return;
    }
    let names =
        |files: &[(String, String)]| files.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&have),
        names(&want),
        "plugins/sdk-js/src/generated/ is not what jco generates from the contract; refresh it with \
         `ORQUESTA_UPDATE_JS_TYPES=1 cargo test --test e2e -- javascript::the_sdks_types` (and list new files in host/src/javascript/sources.rs)"
    );
    for ((name, have), (_, want)) in have.iter().zip(&want) {
        assert!(
            have == want,
            "plugins/sdk-js/src/generated/{name} is not what jco generates from the contract; refresh it with \
             `ORQUESTA_UPDATE_JS_TYPES=1 cargo test --test e2e -- javascript::the_sdks_types`\n--- generated now:\n{want}"
        );
    }
}

#[tokio::test]
#[cfg_attr(
    no_componentize_js,
    ignore = "componentize-js 0.23.0 is not installed (docs/PLUGINS.md)"
)]
async fn a_typescript_type_error_fails_the_build_with_its_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    // Valid JavaScript, wrong TypeScript: a number where a string is declared, a field
    // the SDK's `Request` does not have, and a blob written as a number.
    let app = "import { blob, kv, onHttp } from \"orquesta\";\nonHttp((req) => {\n  const n: string = kv.increment(\"a\", \"b\");\n  blob.put(\"files\", \"k\", 42);\n  return { n, x: req.nope };\n});\n";
    std::fs::write(dir.path().join("app.ts"), app).unwrap();
    std::fs::write(dir.path().join("app.wasm"), b"old").unwrap();
    let tools = tools_env();
    let env = [("ORQUESTA_JS_TOOLS", tools.as_str())];
    let (code, out, err) =
        orquesta_tests::run_orquesta_env(dir.path(), &["build", "app.ts"], None, &env);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("app.ts does not type-check"), "{err}");
    assert!(
        err.contains(
            "\napp.ts:3:9: error TS2322: Type 'number' is not assignable to type 'string'."
        ),
        "{err}"
    );
    assert!(err.contains("\napp.ts:4:26: error TS2345:"), "{err}");
    assert!(
        err.contains(
            "\napp.ts:5:22: error TS2339: Property 'nope' does not exist on type 'Request'."
        ),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(std::fs::read(dir.path().join("app.wasm")).unwrap(), b"old");

    // A module the app imports is checked too, named as the caller names it.
    std::fs::create_dir(dir.path().join("lib")).unwrap();
    std::fs::write(
        dir.path().join("lib/greet.ts"),
        "export function greet(name: string): string {\n  return name * 2;\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("app.ts"),
        "import { onHttp } from \"orquesta\";\nimport { greet } from \"./lib/greet\";\nonHttp(() => greet(\"x\"));\n",
    )
    .unwrap();
    let (code, _, err) =
        orquesta_tests::run_orquesta_env(dir.path(), &["build", "app.ts"], None, &env);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("\nlib/greet.ts:2:10: error TS2362:"), "{err}");

    // The same code as JavaScript is not type-checked: it builds.
    std::fs::write(dir.path().join("app.js"), app.replace(": string", "")).unwrap();
    let (code, out, err) = orquesta_tests::run_orquesta_env(
        dir.path(),
        &["build", "app.js", "-o", "js.wasm"],
        None,
        &env,
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(dir.path().join("js.wasm").is_file());

    // `// @ts-nocheck` at the top of the file is the escape docs/PLUGINS.md names.
    std::fs::write(dir.path().join("app.ts"), format!("// @ts-nocheck\n{app}")).unwrap();
    let (code, out, err) = orquesta_tests::run_orquesta_env(
        dir.path(),
        &["build", "app.ts", "-o", "unchecked.wasm"],
        None,
        &env,
    );
    assert_eq!(code, 0, "{out}{err}");
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

#[tokio::test]
#[cfg_attr(
    no_componentize_js,
    ignore = "componentize-js 0.23.0 is not installed (docs/PLUGINS.md)"
)]
async fn typescript_blobs_follow_the_tenants_grants() {
    let plugin = probe().await;
    let mut sandbox = plugin.sandbox().await.unwrap();
    sandbox.grants(Grants::default().with(BUCKETS, &["files"]));
    sandbox
        .seed_blob("secret", "plan", b"the tenant's secret".as_slice())
        .await
        .unwrap();
    let event = |path: &str, body: &str| json!({ "type": "http", "method": "POST", "path": path, "body": body });

    // Granted: put, get (bytes, text, JSON), list by prefix a page at a time, delete.
    let ok = sandbox.invoke(event("/blob", "hello blobs")).await.unwrap();
    assert_eq!(
        ok["body"],
        json!({
            "text": "hello blobs",
            "json": { "text": "hello blobs" },
            "bytes": 11,
            "keys": ["k", "k.json"],
            "firstPage": ["k"],
            "more": true,
            "removed": true,
            "removedAgain": false,
            "after": null,
        }),
        "{ok}"
    );
    assert_eq!(sandbox.blob_get("files", "k").await.unwrap(), None);
    assert_eq!(
        sandbox
            .blob_get("files", "k.json")
            .await
            .unwrap()
            .as_deref(),
        Some(br#"{"text":"hello blobs"}"#.as_slice())
    );

    // Attack: the same plugin reads, writes and lists a bucket of its tenant it was not
    // granted: each call is the failure `Denied`, and nothing is read or written.
    let e = sandbox
        .invoke(
            json!({ "type": "http", "method": "GET", "path": "/blob/read",
                        "query": {"bucket": "secret", "key": "plan"} }),
        )
        .await
        .unwrap_err();
    assert_eq!(e.name(), "Denied", "{e}");
    assert!(e.cause().contains("secret"), "{e}");
    assert!(!e.to_string().contains("the tenant's secret"), "{e}");
    let e = sandbox
        .invoke(json!({ "type": "http", "method": "POST", "path": "/blob",
                        "query": {"bucket": "secret", "key": "plan"}, "body": "overwritten" }))
        .await
        .unwrap_err();
    assert_eq!(e.name(), "Denied", "{e}");
    assert_eq!(
        sandbox.blob_get("secret", "plan").await.unwrap().as_deref(),
        Some(b"the tenant's secret".as_slice())
    );

    // Without any blob grant, the granted bucket of before is refused too.
    sandbox.grants(Grants::default());
    let e = sandbox.invoke(event("/blob", "x")).await.unwrap_err();
    assert_eq!(e.name(), "Denied", "{e}");
}

const TASKS_TENANT: &str = r#"
[plugins.worker]
source = "hostile.wasm"

[plugins.answerer]
source = "probe-ts.wasm"
allow = { workflow_tasks = ["approval"] }

[plugins.stranger]
source = "probe-ts.wasm"

[workflows.approval]
definition = "approval.asl.json"

[[routes]]
method = "POST"
path = "/task"
plugin = "answerer"

# The same route of the same plugin code, without the grant.
[[routes]]
method = "PUT"
path = "/task"
plugin = "stranger"

[[routes]]
method = "POST"
path = "/task/uncaught"
plugin = "answerer"
"#;

/// A Task state waiting for its token (`.waitForTaskToken`); the Rust worker takes the
/// call and returns, and the TypeScript plugin answers the token later from a route.
fn approval() -> Value {
    json!({
        "StartAt": "Ask",
        "States": {
            "Ask": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {
                    "FunctionName": "worker",
                    "Payload": {"attack": "nap", "ms": 1, "token.$": "$$.Task.Token"}
                },
                "HeartbeatSeconds": 60,
                "TimeoutSeconds": 120,
                "ResultPath": "$.answer",
                "End": true
            }
        }
    })
}

/// The token of an execution's first scheduled task, from its history.
async fn task_token(admin: &WorkflowAdmin, id: &str) -> String {
    wait_for(
        "the task to be scheduled",
        Duration::from_secs(30),
        async || {
            admin
                .history(id)
                .await
                .iter()
                .find(|e| e["type"] == "TaskScheduled")
                .and_then(|e| e["detail"]["input"]["token"].as_str())
                .map(str::to_string)
        },
    )
    .await
}

/// A TypeScript plugin answers callback tasks with the SDK's `tasks`, under
/// `allow.workflow_tasks`: success and heartbeat complete an execution, a failure fails
/// one with its error. Attacks: the same token from another tenant's plugin, from a
/// plugin of the tenant without the grant, and a second answer.
#[tokio::test]
#[cfg_attr(
    no_componentize_js,
    ignore = "componentize-js 0.23.0 is not installed (docs/PLUGINS.md)"
)]
async fn typescript_answers_workflow_tasks_under_the_tenants_grant() {
    let s = TestServer::start(
        &["hostile", "probe-ts"],
        &[("acme", TASKS_TENANT), ("other", TASKS_TENANT)],
        |c| {
            std::fs::create_dir_all(&c.tenant_dir).unwrap();
            std::fs::write(
                c.tenant_dir.join("approval.asl.json"),
                approval().to_string(),
            )
            .unwrap();
        },
    )
    .await;
    // `granted`: the answerer's route; otherwise the stranger's.
    let answer = async |tenant: &str, granted: bool, body: Value| -> Value {
        let method = if granted {
            reqwest::Method::POST
        } else {
            reqwest::Method::PUT
        };
        let r = s
            .client
            .request(method, format!("{}/t/{tenant}/task", s.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{tenant} {granted} {body}");
        r.json().await.unwrap()
    };
    let admin = WorkflowAdmin::new(&s.url, "acme", ADMIN_TOKEN);
    let id = admin.start("approval", json!({"order": 7})).await;
    let token = task_token(&admin, &id).await;

    // Another tenant's plugin, granted its own `approval`, holding acme's token: unknown.
    let r = answer(
        "other",
        true,
        json!({"answer": "success", "token": token, "output": 1}),
    )
    .await;
    assert_eq!(r["error"], "TaskDoesNotExist", "{r}");
    // A plugin of acme without the grant: denied, whatever the answer.
    for kind in ["success", "failure", "heartbeat"] {
        let r = answer(
            "acme",
            false,
            json!({"answer": kind, "token": token, "output": 1}),
        )
        .await;
        assert_eq!(
            (r["error"].as_str(), r["kind"].as_str()),
            (Some("Denied"), Some("host")),
            "{kind}: {r}"
        );
    }
    assert_eq!(admin.describe(&id).await["status"], "RUNNING");

    // Granted: a heartbeat, then the result, found by `tasks.tokenIn` in a nested input.
    let r = answer("acme", true, json!({"answer": "heartbeat", "token": token})).await;
    assert_eq!(r, json!({"ok": true}));
    let r = answer(
        "acme",
        true,
        json!({"answer": "success", "input": {"Payload": {"token": token}}, "output": {"approved": true}}),
    )
    .await;
    assert_eq!(r, json!({"ok": true}));
    let done = admin.finished(&id, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(
        done["output"]["answer"],
        json!({"approved": true}),
        "{done}"
    );
    // Answered once: a second answer is refused, named as the cloud names it.
    let r = answer(
        "acme",
        true,
        json!({"answer": "success", "token": token, "output": 2}),
    )
    .await;
    assert_eq!(r["error"], "TaskTimedOut", "{r}");

    // A failure fails the execution with the plugin's error and cause.
    let id = admin.start("approval", json!({"order": 8})).await;
    let token = task_token(&admin, &id).await;
    let r = answer(
        "acme",
        true,
        json!({"answer": "failure", "token": token, "error": "Rejected", "cause": "over budget"}),
    )
    .await;
    assert_eq!(r, json!({"ok": true}));
    let done = admin.finished(&id, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "FAILED", "{done}");
    assert_eq!(done["error"], "Rejected", "{done}");

    // Uncaught, a refusal is the handler's failure with the cloud's name.
    let r = s
        .client
        .post(format!("{}/t/acme/task/uncaught", s.url))
        .body("A".repeat(43))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("TaskDoesNotExist"), "{body}");
    s.shutdown().await;
}
