//! The README's run command serves `examples/orquesta.toml`: this starts the binary on a
//! copy of that layout (relative directories and all) and checks every demo tenant loads
//! and the appointments flow completes on the embedded store, and that the README's
//! workflow walkthrough holds: the welcome execution survives a restart during its wait.

use std::path::Path;
use std::time::{Duration, Instant};

use orquesta_tests::server::{ServeProcess, WorkflowAdmin};
use orquesta_tests::{plugin, plugin_names, workspace};
use serde_json::{Value, json};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

#[tokio::test]
async fn the_demo_configuration_serves_every_demo_tenant() {
    let root = tempfile::tempdir().unwrap();
    let examples = root.path().join("examples");
    copy_dir(
        &workspace().join("examples/tenants"),
        &examples.join("tenants"),
    );
    copy_dir(&workspace().join("examples/idp"), &examples.join("idp"));
    for dir in ["workflows", "mok", "siesa"] {
        copy_dir(&workspace().join("examples").join(dir), &examples.join(dir));
    }
    let plugins = root.path().join("target/wasm32-wasip2/release");
    std::fs::create_dir_all(&plugins).unwrap();
    // Named as cargo names them (`assistances_logger.wasm`), as the tenants' sources are.
    for name in plugin_names() {
        let built = plugin(&name);
        std::fs::copy(&built, plugins.join(built.file_name().unwrap())).unwrap();
    }
    let config = std::fs::read_to_string(workspace().join("examples/orquesta.toml"))
        .unwrap()
        .replace("listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1:0\"");
    // The secrets `cargo xtask demo` sets.
    let env = [
        ("ORQUESTA_ADMIN_TOKEN", "demo-admin-token"),
        ("IPP_DATABRICKS_TOKEN", "dapi-demo-token"),
        ("HELLO_CLIENT_SECRET", "demo-secret"),
        ("MOK_CLIENT_ID", "orquesta-demo"),
        ("MOK_CLIENT_SECRET", "demo-mok-secret"),
        ("SIESA_CONNI_KEY", "demo-conni-key"),
        ("SIESA_CONNI_TOKEN", "demo-conni-token"),
        ("KONG_API_KEY", "demo-kong-key"),
        ("WMS_API_KEY", "demo-wms-key"),
    ];
    let server = ServeProcess::start(&examples, &config, &env);
    let client = reqwest::Client::new();
    let tenants: Value = client
        .get(format!("{}/admin/v1/tenants", server.url))
        .bearer_auth("demo-admin-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut names: Vec<String> = std::fs::read_dir(workspace().join("examples/tenants"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.strip_suffix(".toml").map(str::to_string)
        })
        .collect();
    names.sort();
    assert_eq!(names.len(), 6, "{names:?}");
    for name in &names {
        let t = tenants["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name.as_str())
            .unwrap_or_else(|| panic!("{name} missing: {tenants}"));
        assert!(t["serving"] == true && t["error"].is_null(), "{name}: {t}");
    }

    let url = format!("{}/t/appointments/appointments", server.url);
    let r = client
        .post(&url)
        .header("x-api-key", "demo-key")
        .json(&json!({ "insuredId": "01234", "dateSchedule": "2026-12-01T09:30", "country": "PE" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", server.logs());
    let started = Instant::now();
    loop {
        let list: Value = client
            .get(format!("{url}/01234"))
            .header("x-api-key", "demo-key")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if list["items"][0]["status"] == "completed" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{list}\n{}",
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        root.path()
            .join(".orquesta/databases/appointments/appointments-pe.db")
            .is_file()
    );

    // The workflow walkthrough: start, watch it wait, kill the host, see it finish.
    let admin = WorkflowAdmin::new(&server.url, "demo", "demo-admin-token");
    let id = admin
        .start("welcome", json!({"name": "Ana", "pause_seconds": 3}))
        .await;
    let started = Instant::now();
    while admin.describe(&id).await["current_state"] != "Pause" {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{}",
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(server); // SIGKILL, mid-wait
    let server = ServeProcess::start(&examples, &config, &env);
    let admin = WorkflowAdmin::new(&server.url, "demo", "demo-admin-token");
    let done = admin.finished(&id, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}\n{}", server.logs());
    assert_eq!(
        done["output"]["greetings"],
        json!(["Hola, Ana!", "Hola, Ana again!"])
    );
    let entered: Vec<Value> = admin
        .history(&id)
        .await
        .into_iter()
        .filter(|e| e["type"] == "StateEntered")
        .map(|e| e["state"].clone())
        .collect();
    assert_eq!(
        entered,
        ["Check", "Greet", "Pause", "GreetAgain", "Summary"].map(|s| json!(s))
    );
}
