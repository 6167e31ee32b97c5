//! Outbound HTTP through the service: only granted hosts, and no private, loopback or
//! metadata addresses unless the tenant allows them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::routing::post;
use orquesta_tests::server::TestServer;
use serde_json::{Value, json};

/// A loopback upstream: `/token` and `/echo`, counting the calls it gets.
async fn upstream() -> (String, u16, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let (h1, h2) = (hits.clone(), hits.clone());
    let app = Router::new()
        .route(
            "/token",
            post(move || async move {
                h1.fetch_add(1, Ordering::SeqCst);
                axum::Json(json!({ "access_token": "t1" }))
            }),
        )
        .route(
            "/echo",
            post(move |body: String| async move {
                h2.fetch_add(1, Ordering::SeqCst);
                axum::Json(json!({ "echoed": body }))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), addr.port(), hits)
}

fn tenant(
    allow_private: bool,
    hosts: &str,
    token_url: &str,
    upstream_url: &str,
    secret_file: &str,
) -> String {
    format!(
        r#"
[http]
allow_private = {allow_private}

[plugins.hello]
source = "hello.wasm"
config = {{ upstream_url = "{upstream_url}", token_url = "{token_url}" }}
secrets = {{ client_secret = {{ file = "{secret_file}" }} }}
allow = {{ hosts = [{hosts}], topics = ["alerts"], queues = ["audit"] }}

[queues.audit]

[topics.alerts]
subscriptions = [{{ log = true }}]

[[routes]]
method = "POST"
path = "/relay"
plugin = "hello"
"#
    )
}

#[tokio::test]
async fn outbound_calls_follow_the_grants_and_the_address_policy() {
    let (base, port, hits) = upstream().await;
    let secret_dir = tempfile::tempdir().unwrap();
    let secret = secret_dir.path().join("client_secret");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let secret = secret.display().to_string();
    let token = format!("{base}/token");
    let echo = format!("{base}/echo");
    let localhost_token = format!("http://localhost:{port}/token");
    let tenants = [
        (
            "open",
            tenant(true, "\"127.0.0.1\"", &token, &echo, &secret),
        ),
        (
            "ungranted",
            tenant(true, "\"api.example.com\"", &token, &echo, &secret),
        ),
        (
            "metadata",
            tenant(
                false,
                "\"169.254.169.254\"",
                "http://169.254.169.254/latest/meta-data/",
                &echo,
                &secret,
            ),
        ),
        (
            "loopback",
            tenant(false, "\"127.0.0.1\"", &token, &echo, &secret),
        ),
        (
            "by-name",
            tenant(false, "\"localhost\"", &localhost_token, &echo, &secret),
        ),
    ];
    let tenants: Vec<(&str, &str)> = tenants.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let s = TestServer::start(&["hello"], &tenants, |_| {}).await;
    let relay = |tenant: &str| {
        s.client
            .post(format!("{}/t/{tenant}/relay", s.url))
            .body(json!({ "order": 1 }).to_string())
            .send()
    };

    // Granted and allowed: both calls reach the upstream, and the relay answers with
    // the upstream's reply (after publishing to its topic and queue).
    let r = relay("open").await.unwrap();
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(
        hits.load(Ordering::SeqCst),
        2,
        "token and echo calls went out: {answer}"
    );
    assert_eq!(
        answer["upstream"]["echoed"],
        json!({ "order": 1 }).to_string(),
        "{answer}"
    );

    for (tenant, reason) in [
        ("ungranted", "not in this plugin's allowed hosts"),
        (
            "metadata",
            "169.254.169.254 is a private, loopback or link-local address",
        ),
        (
            "loopback",
            "127.0.0.1 is a private, loopback or link-local address",
        ),
        ("by-name", "`localhost` resolves only to private"),
    ] {
        let r = relay(tenant).await.unwrap();
        assert_eq!(r.status(), 500, "{tenant}");
        let problem: Value = r.json().await.unwrap();
        assert_eq!(problem["title"], "Denied", "{tenant}: {problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains(reason),
            "{tenant}: {problem}"
        );
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        2,
        "no refused call reached the upstream"
    );
    s.shutdown().await;
}
