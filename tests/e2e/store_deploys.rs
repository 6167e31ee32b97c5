//! Deploys through the store (`PUT /admin/v1/plugins|tenants/NAME`, `orquesta deploy`):
//! checked as dropped files are, recorded in the store, served at once by the host that
//! took them and by every host of the store within `deploy_poll_ms`; what a tenant's own
//! `deploy` credential may change, and what it may not.

use std::path::Path;
use std::time::{Duration, Instant};

use orquesta::triggers::http::auth::sha256_hex;
use orquesta_tests::server::{ADMIN_TOKEN, TestServer};
use orquesta_tests::wait::wait_until;
use reqwest::Method;
use serde_json::Value;

fn hello_tenant(source: &str, greeting: &str) -> String {
    format!(
        r#"[plugins.api]
source = "{source}.wasm"
config = {{ greeting = "{greeting}" }}

[[routes]]
method = "GET"
path = "/hello/{{name}}"
plugin = "api"
"#
    )
}

/// `method` `/admin/v1{path}` with `token` and `body`: (status, JSON answer).
async fn call(
    s: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let r = s
        .client
        .request(method, format!("{}/admin/v1{path}", s.url))
        .bearer_auth(token)
        .body(body)
        .send()
        .await
        .expect("admin answers");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// What `GET /t/{tenant}/hello/ana` answers: (status, message).
async fn greet(url: &str, tenant: &str) -> (u16, String) {
    let r = reqwest::get(format!("{url}/t/{tenant}/hello/ana"))
        .await
        .expect("the host answers");
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    (status, body["message"].as_str().unwrap_or("").to_string())
}

fn hello_bytes() -> Vec<u8> {
    std::fs::read(orquesta_tests::plugin("hello")).expect("hello built")
}

/// A server whose directories are under `root`, so a second one can start on them.
async fn server_on(root: &Path) -> TestServer {
    let root = root.to_path_buf();
    TestServer::start(&[], &[], move |c| {
        c.data_dir = root.join("data");
        c.plugin_dir = root.join("plugins");
        c.tenant_dir = root.join("tenants");
    })
    .await
}

#[tokio::test]
async fn a_plugin_and_a_tenant_deployed_through_the_admin_api_serve_and_come_back() {
    let root = tempfile::tempdir().unwrap();
    let s = server_on(root.path()).await;
    let (status, body) = call(
        &s,
        ADMIN_TOKEN,
        Method::PUT,
        "/plugins/hello",
        hello_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["shared"], true, "{body}");
    let hash = body["hash"].as_str().unwrap().to_string();
    let tenant = hello_tenant("hello", "Hola");
    let (status, body) = call(&s, ADMIN_TOKEN, Method::PUT, "/tenants/acme", tenant.into()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["serving"], true, "{body}");
    // Served when the answer comes, from the host's copy of the store's deploys.
    assert_eq!(greet(&s.url, "acme").await, (200, "Hola, ana!".into()));
    let deployed = root.path().join("data/deployed");
    assert!(deployed.join("tenants/acme.toml").is_file());
    assert!(deployed.join("plugins/hello.wasm").is_file());

    // Refused as a dropped file is, with its line; nothing changes.
    let broken = "[plugins.api]\nsource = \"hello.wasm\"\nconfig = { greeting = \n";
    let (status, body) = call(&s, ADMIN_TOKEN, Method::PUT, "/tenants/acme", broken.into()).await;
    assert_eq!(status, 400, "{body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("acme.toml:3"), "{body}");
    let missing = hello_tenant("missing", "x");
    let (status, body) = call(
        &s,
        ADMIN_TOKEN,
        Method::PUT,
        "/tenants/acme",
        missing.into(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("plugins.api.source"),
        "{body}"
    );
    let (status, body) = call(
        &s,
        ADMIN_TOKEN,
        Method::PUT,
        "/plugins/broken",
        b"\0asm junk".to_vec(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    for (path, body) in [
        ("/tenants/a%20b", "x = 1"),
        ("/tenants/ACME", "x = 1"),
        ("/plugins/a.b", "x"),
    ] {
        let (status, answer) = call(&s, ADMIN_TOKEN, Method::PUT, path, body.into()).await;
        assert!(status == 400 || status == 409, "{path}: {status} {answer}");
    }
    assert_eq!(greet(&s.url, "acme").await, (200, "Hola, ana!".into()));
    assert!(!deployed.join("plugins/broken.wasm").exists());
    let plugins = s.admin("plugins").await;
    assert_eq!(
        plugins["plugins"].as_array().map(Vec::len),
        Some(1),
        "{plugins}"
    );

    // A new version replaces the old.
    let (status, body) = call(
        &s,
        ADMIN_TOKEN,
        Method::PUT,
        "/tenants/acme",
        hello_tenant("hello", "Hej").into(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(greet(&s.url, "acme").await, (200, "Hej, ana!".into()));

    // A file of the same name in the tenant directory: the store's version serves.
    let file = root.path().join("tenants/acme.toml");
    std::fs::write(&file, hello_tenant("hello", "Manual")).unwrap();
    s.reload().await;
    assert_eq!(greet(&s.url, "acme").await, (200, "Hej, ana!".into()));
    s.shutdown().await;

    // A host without the copy (a new pod on the same store) makes it from the store.
    std::fs::remove_dir_all(&deployed).unwrap();
    let s = server_on(root.path()).await;
    assert_eq!(greet(&s.url, "acme").await, (200, "Hej, ana!".into()));
    let plugins = s.admin("plugins").await;
    assert_eq!(plugins["plugins"][0]["hash"], hash.as_str(), "{plugins}");

    // A plugin a tenant names is not deleted.
    let (status, body) = call(&s, ADMIN_TOKEN, Method::DELETE, "/plugins/hello", vec![]).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["detail"].as_str().unwrap_or_default().contains("acme"),
        "{body}"
    );
    // Deleting the deployed tenant lets the directory's file serve again; that one is
    // not the API's to delete.
    let (status, body) = call(&s, ADMIN_TOKEN, Method::DELETE, "/tenants/acme", vec![]).await;
    assert_eq!(status, 200, "{body}");
    assert!(!deployed.join("tenants/acme.toml").exists());
    assert_eq!(greet(&s.url, "acme").await, (200, "Manual, ana!".into()));
    let (status, body) = call(&s, ADMIN_TOKEN, Method::DELETE, "/tenants/acme", vec![]).await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("remove that file"),
        "{body}"
    );
    std::fs::remove_file(&file).unwrap();
    s.reload().await;
    assert_eq!(greet(&s.url, "acme").await.0, 404);
    let (status, body) = call(&s, ADMIN_TOKEN, Method::DELETE, "/plugins/hello", vec![]).await;
    assert_eq!(status, 200, "{body}");
    assert!(!deployed.join("plugins/hello.wasm").exists());
    s.shutdown().await;

    // Deleted stays deleted for a host that starts afresh; a stray file in its copy
    // (not the store's) is removed.
    std::fs::remove_dir_all(&deployed).unwrap();
    std::fs::create_dir_all(deployed.join("tenants")).unwrap();
    std::fs::write(
        deployed.join("tenants/acme.toml"),
        hello_tenant("hello", "Stale"),
    )
    .unwrap();
    let s = server_on(root.path()).await;
    assert_eq!(greet(&s.url, "acme").await.0, 404);
    assert!(!deployed.join("tenants/acme.toml").exists());
    let plugins = s.admin("plugins").await;
    assert!(
        plugins["plugins"].as_array().is_some_and(Vec::is_empty),
        "{plugins}"
    );
    s.shutdown().await;
}

fn credential(name: &str, token: &str, scopes: &str) -> String {
    format!(
        "\n[[admin_credentials]]\nname = \"{name}\"\nhash = \"sha256:{}\"\nscopes = [{scopes}]\n",
        sha256_hex(token)
    )
}

const ALPHA_DEPLOY: &str = "alpha-deploy-token";
const ALPHA_READ: &str = "alpha-read-token";

/// The attack side of a tenant's `deploy` credential: it changes its plugins' config and
/// code, and nothing the host's operator grants, and no other tenant's plugin.
#[tokio::test]
async fn a_tenant_credential_deploys_only_its_own_config_and_plugins() {
    let alpha = [
        hello_tenant("alpha-api", "A"),
        credential("deployer", ALPHA_DEPLOY, "\"deploy\""),
        credential("reader", ALPHA_READ, "\"read\", \"operate\""),
    ]
    .concat();
    let beta = hello_tenant("shared", "B");
    let s = TestServer::start(&[], &[("alpha", &alpha), ("beta", &beta)], |_| {}).await;
    // The plugins: alpha's own, one beta names, one the operator dropped in for nobody.
    for name in ["alpha-api", "shared", "spare"] {
        s.write_plugin(name, &hello_bytes());
    }
    s.reload().await;
    assert_eq!(greet(&s.url, "alpha").await, (200, "A, ana!".into()));
    assert_eq!(greet(&s.url, "beta").await, (200, "B, ana!".into()));
    let put = |path: &'static str, token: &'static str, body: Vec<u8>| {
        let s = &s;
        async move { call(s, token, Method::PUT, path, body).await }
    };

    // Its config: yes.
    let changed = alpha.replace("greeting = \"A\"", "greeting = \"A2\"");
    let (status, body) = put("/tenants/alpha", ALPHA_DEPLOY, changed.clone().into()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(greet(&s.url, "alpha").await, (200, "A2, ana!".into()));

    // Anything the operator grants: no, and nothing changes.
    let grants = [
        changed.replace(
            "[plugins.api]",
            "[plugins.api]\nallow = { hosts = [\"169.254.169.254\"] }",
        ),
        changed.replace(
            "[plugins.api]",
            "[plugins.api]\nsecrets = { t = { env = \"ORQUESTA_ADMIN_TOKEN\" } }",
        ),
        changed.replace(
            "[plugins.api]",
            "[limits]\nmemory_mb = 4096\n\n[plugins.api]",
        ),
        format!("{changed}\n[databases.d]\nurl = \"mysql://root@127.0.0.1:3306/mysql\"\n"),
        format!("{changed}\n[[routes]]\nmethod = \"GET\"\npath = \"/other\"\nplugin = \"api\"\n"),
        format!(
            "{changed}{}",
            credential("mine", "another-token", "\"deploy\"")
        ),
        changed.replace(&sha256_hex(ALPHA_READ), &sha256_hex("stolen")),
        changed.replace("alpha-api.wasm", "../plugins/alpha-api.wasm"),
    ];
    for text in grants {
        let (status, body) = put("/tenants/alpha", ALPHA_DEPLOY, text.clone().into()).await;
        assert_eq!(status, 403, "{text}\n{body}");
    }
    // Other tenants' plugins and the operator's: not as a source, not to overwrite.
    for (source, why) in [("shared", "another tenant"), ("spare", "operator")] {
        let text = changed.replace("alpha-api.wasm", &format!("{source}.wasm"));
        let (status, body) = put("/tenants/alpha", ALPHA_DEPLOY, text.into()).await;
        assert_eq!(status, 403, "{source}: {body}");
        assert!(
            body["detail"].as_str().unwrap_or_default().contains(why),
            "{body}"
        );
    }
    for path in [
        "/tenants/alpha/plugins/shared",
        "/tenants/alpha/plugins/spare",
    ] {
        let (status, body) = put(path, ALPHA_DEPLOY, hello_bytes()).await;
        assert_eq!(status, 403, "{path}: {body}");
    }
    // Not beta's file, not the host-wide plugin route, not deleting itself, not without
    // the scope.
    for (method, path, token) in [
        (Method::PUT, "/tenants/beta", ALPHA_DEPLOY),
        (Method::PUT, "/plugins/alpha-api", ALPHA_DEPLOY),
        (Method::DELETE, "/tenants/alpha", ALPHA_DEPLOY),
        (Method::DELETE, "/plugins/alpha-api", ALPHA_DEPLOY),
        (Method::PUT, "/tenants/alpha", ALPHA_READ),
        (Method::PUT, "/tenants/alpha/plugins/alpha-api", ALPHA_READ),
    ] {
        let (status, body) = call(&s, token, method.clone(), path, changed.clone().into()).await;
        assert_eq!(status, 403, "{method} {path}: {body}");
    }
    assert_eq!(greet(&s.url, "alpha").await, (200, "A2, ana!".into()));
    assert_eq!(greet(&s.url, "beta").await, (200, "B, ana!".into()));

    // Its own plugin, and a new one it then switches to: yes.
    let (status, body) = put(
        "/tenants/alpha/plugins/alpha-api",
        ALPHA_DEPLOY,
        hello_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = put(
        "/tenants/alpha/plugins/alpha-v2",
        ALPHA_DEPLOY,
        hello_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v2 = changed
        .replace("alpha-api.wasm", "alpha-v2.wasm")
        .replace("\"A2\"", "\"V2\"");
    let (status, body) = put("/tenants/alpha", ALPHA_DEPLOY, v2.clone().into()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(greet(&s.url, "alpha").await, (200, "V2, ana!".into()));
    assert_eq!(greet(&s.url, "beta").await, (200, "B, ana!".into()));

    // Each deploy makes every host load (or compile) it: a tenant's credentials deploy at
    // a bounded rate (10 at once, then 30 a minute), the operator without one.
    let v3 = v2.replace("\"V2\"", "\"V3\"");
    let mut answers = Vec::new();
    for _ in 0..12 {
        answers.push(
            put("/tenants/alpha", ALPHA_DEPLOY, v3.clone().into())
                .await
                .0,
        );
    }
    assert!(answers.contains(&429), "{answers:?}");
    assert!(
        answers.iter().all(|s| *s == 200 || *s == 429),
        "{answers:?}"
    );
    for _ in 0..12 {
        let (status, body) = call(
            &s,
            ADMIN_TOKEN,
            Method::PUT,
            "/tenants/beta",
            beta.clone().into(),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    s.shutdown().await;
}

/// `orquesta deploy` from a laptop: plugins then tenant files, with the refusal's
/// `file:line` and exit code 2 for a bad file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orquesta_deploy_sends_plugins_and_tenant_files() {
    let s = TestServer::start(&[], &[], |_| {}).await;
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("hello.wasm"), hello_bytes()).unwrap();
    std::fs::write(work.path().join("acme.toml"), hello_tenant("hello", "Hola")).unwrap();
    std::fs::write(work.path().join("bad.toml"), "[plugins.api]\nsource = 3\n").unwrap();
    let run = |args: Vec<String>| {
        let dir = work.path().to_path_buf();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            orquesta_tests::run_orquesta_env(
                &dir,
                &args,
                None,
                &[("ORQUESTA_ADMIN_TOKEN", ADMIN_TOKEN)],
            )
        })
    };
    let args = |files: &[&str]| {
        let mut a = vec!["deploy".to_string(), "--url".to_string(), s.url.clone()];
        a.extend(files.iter().map(|f| f.to_string()));
        a
    };
    let (code, out, err) = run(args(&["acme.toml", "hello.wasm"])).await.unwrap();
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("deployed plugin hello") && out.contains("deployed tenant acme"),
        "{out}"
    );
    assert_eq!(greet(&s.url, "acme").await, (200, "Hola, ana!".into()));
    let (code, out, err) = run(args(&["bad.toml"])).await.unwrap();
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(err.contains("bad.toml:2"), "{err}");
    let (code, _, err) = run(vec![
        "deploy".into(),
        "--url".into(),
        s.url.clone(),
        "--token".into(),
        "wrong".into(),
        "acme.toml".into(),
    ])
    .await
    .unwrap();
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("401"), "{err}");
    s.shutdown().await;
}

/// Two hosts on one PostgreSQL database: what one takes, the other serves within the
/// promise (2 s), the old version serving until then.
#[tokio::test]
#[cfg_attr(no_postgres, ignore = "ORQUESTA_TEST_POSTGRES_URL is not set")]
async fn a_deploy_through_one_host_serves_on_another_within_two_seconds() {
    // A database of its own: every host of a database applies its deploys, so other
    // tests' hosts on the shared one would take this test's tenant too.
    let db = orquesta_tests::db::OwnPostgres::create("deploys").await;
    let url = db.url.clone();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let (tenant, plugin) = (format!("d{stamp}"), format!("hello-{stamp}"));
    let start = || {
        let url = url.clone();
        async move { TestServer::start(&[], &[], |c| c.store = Some(url)).await }
    };
    let (a, b) = (start().await, start().await);
    let (status, body) = call(
        &a,
        ADMIN_TOKEN,
        Method::PUT,
        &format!("/plugins/{plugin}"),
        hello_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // The other host compiles the component itself; that time depends on the component
    // and the machine (docs/BENCHMARKS.md measures it in a release build), so the 2 s
    // below are measured for tenant files once the component is there.
    let answered = Instant::now();
    wait_until("b has the plugin", Duration::from_secs(60), async || {
        b.admin("plugins").await["plugins"]
            .as_array()
            .is_some_and(|p| {
                p.iter()
                    .any(|p| p["name"] == plugin.as_str() && p["hash"].is_string())
            })
    })
    .await;
    eprintln!(
        "plugin deployed to compiled on the other host: {:?}",
        answered.elapsed()
    );
    let mut latencies = Vec::new();
    for greeting in ["One", "Two"] {
        let text = hello_tenant(&plugin, greeting);
        let (status, body) = call(
            &a,
            ADMIN_TOKEN,
            Method::PUT,
            &format!("/tenants/{tenant}"),
            text.into(),
        )
        .await;
        let answered = Instant::now();
        assert_eq!(status, 200, "{body}");
        let want = format!("{greeting}, ana!");
        loop {
            let (_, message) = greet(&b.url, &tenant).await;
            if message == want {
                break;
            }
            // The previous version serves until then (none before the first).
            if greeting == "Two" {
                assert_eq!(message, "One, ana!");
            }
            assert!(
                answered.elapsed() < Duration::from_secs(10),
                "{greeting} never served on b"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        latencies.push(answered.elapsed());
    }
    eprintln!("deploy to serving on the other host: {latencies:?}");
    for latency in &latencies {
        assert!(*latency < Duration::from_secs(2), "{latencies:?}");
    }
    // Gone from both, and the store keeps no content of this run.
    let (status, body) = call(
        &a,
        ADMIN_TOKEN,
        Method::DELETE,
        &format!("/tenants/{tenant}"),
        vec![],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    wait_until(
        "the tenant is gone from b",
        Duration::from_secs(5),
        async || greet(&b.url, &tenant).await.0 == 404,
    )
    .await;
    let (status, body) = call(
        &b,
        ADMIN_TOKEN,
        Method::DELETE,
        &format!("/plugins/{plugin}"),
        vec![],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    a.shutdown().await;
    b.shutdown().await;
}
