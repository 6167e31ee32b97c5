//! Proxies in the environment do not carry a plugin past the address policy: with
//! `HTTP_PROXY` and the rest pointing at a loopback proxy, `orquesta serve` still refuses
//! a public-only tenant's requests to loopback, and the proxy sees nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use orquesta_tests::plugin;
use orquesta_tests::server::ServeProcess;
use serde_json::{Value, json};

/// A loopback server answering every request 200, counting them: the upstream and the
/// proxy both.
async fn counting_server(answer: &'static str) -> (String, u16, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = Router::new().fallback(move || async move {
        counter.fetch_add(1, Ordering::SeqCst);
        answer
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), addr.port(), hits)
}

const CONFIG: &str = r#"
listen = "127.0.0.1:0"
data_dir = "data"
plugin_dir = "plugins"
tenant_dir = "tenants"
"#;

#[tokio::test]
async fn environment_proxies_do_not_bypass_the_address_policy() {
    let (_, upstream_port, upstream_hits) = counting_server("upstream").await;
    let (proxy, _, proxy_hits) = counting_server("proxied").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("plugins")).unwrap();
    std::fs::create_dir_all(dir.path().join("tenants")).unwrap();
    std::fs::copy(plugin("hostile"), dir.path().join("plugins/hostile.wasm")).unwrap();
    std::fs::write(
        dir.path().join("tenants/acme.toml"),
        r#"
[plugins.hostile]
source = "hostile.wasm"
allow = { hosts = ["*"] }

[[routes]]
method = "POST"
path = "/hostile"
plugin = "hostile"
"#,
    )
    .unwrap();
    let mut env: Vec<(&str, &str)> = [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ]
    .into_iter()
    .map(|name| (name, proxy.as_str()))
    .collect();
    // An exemption in the test's own environment must not hide the hole.
    env.extend([("NO_PROXY", ""), ("no_proxy", "")]);
    let server = ServeProcess::start(dir.path(), CONFIG, &env);
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let fetch = |url: String| {
        let client = client.clone();
        let route = format!("{}/t/acme/hostile", server.url);
        async move {
            let r = client
                .post(route)
                .body(json!({ "attack": "fetch", "url": url }).to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };

    let by_name = fetch(format!("http://localhost:{upstream_port}/")).await;
    let error = by_name["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("Denied") && error.contains("`localhost` resolves only to private"),
        "loopback by name through the proxy: {by_name}\n{}",
        server.logs()
    );
    let literal = fetch(format!("http://127.0.0.1:{upstream_port}/")).await;
    assert!(
        literal["error"]
            .as_str()
            .unwrap_or_default()
            .contains("Denied"),
        "{literal}"
    );
    // A public-looking name that does not resolve: it fails here instead of being handed
    // to the proxy to resolve (and reach whatever the proxy reaches).
    let public = fetch("http://orquesta-probe.example/".into()).await;
    assert!(public["error"].is_string(), "{public}");
    assert_eq!(
        proxy_hits.load(Ordering::SeqCst),
        0,
        "the proxy saw requests"
    );
    assert_eq!(
        upstream_hits.load(Ordering::SeqCst),
        0,
        "loopback was reached"
    );
}
