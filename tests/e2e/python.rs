//! Python plugins (docs/PLUGINS.md): the template from an empty folder to a route served
//! by a running host, and what a hostile Python plugin can do with the interpreter
//! (plugins/python/hostile). Ignored, saying why, where componentize-py is not installed
//! (tests/build.rs); the IPP port runs in `ipp.rs`.

use std::time::{Duration, Instant};

use orquesta::engine::Limits;
use orquesta::testing::TestPlugin;
use orquesta_tests::server::TestServer;
use serde_json::{Value, json};

fn get(path: &str) -> Value {
    json!({ "type": "http", "method": "GET", "path": path })
}

#[tokio::test]
#[cfg_attr(
    no_componentize_py,
    ignore = "componentize-py 0.25.1 is not installed (docs/PLUGINS.md)"
)]
async fn the_template_builds_passes_its_fixtures_and_serves_a_route() {
    // An empty folder with the template's two files, as docs/PLUGINS.md starts.
    let dir = tempfile::tempdir().unwrap();
    let template = orquesta_tests::workspace().join("plugins/templates/python");
    for file in ["app.py", "fixtures.toml"] {
        std::fs::copy(template.join(file), dir.path().join(file)).unwrap();
    }
    let tool = orquesta_tests::python::tool().expect("tests/build.rs found componentize-py");
    let tool = tool.display().to_string();
    let env = [("ORQUESTA_COMPONENTIZE_PY", tool.as_str())];
    let (code, out, err) = orquesta_tests::run_orquesta_env(
        dir.path(),
        &["build", "app.py", "-o", "hello.wasm"],
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
        "the Python route to answer",
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
    // time, saying which flag is missing.
    let (code, _, err) = orquesta_tests::run_orquesta_env(
        dir.path(),
        &["build", "app.py", "--trigger", "queue", "-o", "q.wasm"],
        None,
        &env,
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("add --trigger http"), "{err}");
    assert!(
        err.contains("registers no function for it (@orquesta.on_queue)"),
        "{err}"
    );
    assert!(!dir.path().join("q.wasm").exists());
}

async fn hostile() -> TestPlugin {
    TestPlugin::load(orquesta_tests::plugin("hostile-python"))
        .await
        .unwrap()
}

#[tokio::test]
#[cfg_attr(
    no_componentize_py,
    ignore = "componentize-py 0.25.1 is not installed (docs/PLUGINS.md)"
)]
async fn a_python_loop_is_cut_at_the_timeout_and_the_plugin_answers_next() {
    let plugin = hostile().await;
    let mut sandbox = plugin.sandbox().await.unwrap();
    sandbox.limits(Limits {
        timeout_ms: 300,
        ..Limits::default()
    });
    let started = Instant::now();
    let e = sandbox.invoke(get("/spin")).await.unwrap_err();
    assert_eq!(e.name(), "timeout", "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let ok = sandbox.invoke(get("/after")).await.unwrap();
    assert_eq!(ok["body"]["ok"], true, "{ok}");
}

#[tokio::test]
#[cfg_attr(
    no_componentize_py,
    ignore = "componentize-py 0.25.1 is not installed (docs/PLUGINS.md)"
)]
async fn a_python_allocation_past_memory_mb_fails_cleanly() {
    let plugin = hostile().await;
    let mut sandbox = plugin.sandbox().await.unwrap();
    sandbox.limits(Limits {
        memory_mb: 96,
        ..Limits::default()
    });
    let e = sandbox.invoke(get("/allocate")).await.unwrap_err();
    assert_eq!(e.name(), "memory-limit", "{e}");
    assert!(e.to_string().contains("96 MiB"), "{e}");
    // A fresh instance next time: the plugin answers again.
    let ok = sandbox.invoke(get("/after")).await.unwrap();
    assert_eq!(ok["body"]["ok"], true, "{ok}");
}

#[tokio::test]
#[cfg_attr(
    no_componentize_py,
    ignore = "componentize-py 0.25.1 is not installed (docs/PLUGINS.md)"
)]
async fn deep_python_recursion_fails_the_invocation_only() {
    let plugin = hostile().await;
    let sandbox = plugin.sandbox().await.unwrap();
    // CPython keeps its frames on the heap: with the recursion limit lifted, the
    // recursion grows memory until `memory_mb` refuses it, before any stack runs out.
    let e = sandbox.invoke(get("/recurse")).await.unwrap_err();
    assert_eq!(e.name(), "memory-limit", "{e}");
    let ok = sandbox.invoke(get("/after")).await.unwrap();
    assert_eq!(ok["body"]["ok"], true, "{ok}");
}

#[tokio::test]
#[cfg_attr(
    no_componentize_py,
    ignore = "componentize-py 0.25.1 is not installed (docs/PLUGINS.md)"
)]
async fn a_memory_mb_too_small_for_the_interpreter_is_refused_clearly() {
    let plugin = hostile().await;
    let mut sandbox = plugin.sandbox().await.unwrap();
    sandbox.limits(Limits {
        memory_mb: 8,
        ..Limits::default()
    });
    let e = sandbox.invoke(get("/after")).await.unwrap_err();
    assert_eq!(e.name(), "memory-limit", "{e}");
    assert!(e.to_string().contains("8 MiB"), "{e}");
}
