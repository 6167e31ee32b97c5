//! Standard `wasi:http` beside orquesta's own interfaces: a component's outgoing
//! requests (`wasi:http/outgoing-handler`, what JavaScript's `fetch` is built on) follow
//! the same grants and address policy as `http.send`, and a component exporting
//! `wasi:http/incoming-handler` serves a tenant's route.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;
use orquesta_tests::server::TestServer;
use serde_json::{Value, json};

/// A loopback upstream counting its calls: `/hello` (echoes `x-probe`), `/big` (2 MiB
/// more than the host's 10 MiB response cap), `/redirect` (to cloud metadata).
async fn upstream() -> (String, u16, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = |hits: &Arc<AtomicUsize>| {
        let hits = hits.clone();
        move || {
            hits.fetch_add(1, Ordering::SeqCst);
        }
    };
    let (a, b, c) = (counted(&hits), counted(&hits), counted(&hits));
    let app = Router::new()
        .route(
            "/hello",
            get(move |headers: HeaderMap| async move {
                a();
                let probe = headers
                    .get("x-probe")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("none")
                    .to_string();
                ([("x-answer", "yes")], format!("hello {probe}"))
            }),
        )
        .route(
            "/big",
            get(move || async move {
                b();
                vec![b'x'; 12 << 20]
            }),
        )
        .route(
            "/redirect",
            get(move || async move {
                c();
                (
                    axum::http::StatusCode::FOUND,
                    [("location", "http://127.0.0.1:1/")],
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), addr.port(), hits)
}

/// `wasi-fetch` at `POST /fetch` and `wasi-hostile` at `POST /attack`, both granted
/// `hosts`, in a tenant that does or does not allow private addresses.
fn tenant(allow_private: bool, hosts: &str) -> String {
    format!(
        r#"
[http]
allow_private = {allow_private}

[plugins.fetch]
source = "wasi-fetch.wasm"
allow = {{ hosts = [{hosts}] }}

[plugins.attack]
source = "wasi-hostile.wasm"
allow = {{ hosts = [{hosts}] }}

[[routes]]
method = "POST"
path = "/fetch"
plugin = "fetch"

[[routes]]
method = "POST"
path = "/attack"
plugin = "attack"
"#
    )
}

async fn call(s: &TestServer, tenant: &str, path: &str, body: Value) -> Value {
    let mut body = body;
    let shown = body.to_string();
    let r = s
        .client
        .post(format!("{}/t/{tenant}{path}", s.url))
        .body(std::mem::take(&mut body).to_string())
        .send()
        .await
        .unwrap();
    let (status, body) = (r.status(), shown);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{path} {body}: {answer}");
    answer
}

#[tokio::test]
async fn wasi_http_requests_follow_the_grants_and_the_address_policy() {
    let (base, port, hits) = upstream().await;
    let tenants = [
        ("open", tenant(true, "\"127.0.0.1\"")),
        ("ungranted", tenant(true, "\"api.example.com\"")),
        (
            "closed",
            tenant(false, "\"127.0.0.1\", \"localhost\", \"169.254.169.254\""),
        ),
        ("none", tenant(true, "")),
    ];
    let tenants: Vec<(&str, &str)> = tenants.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let s = TestServer::start(&["wasi-fetch", "wasi-hostile"], &tenants, |_| {}).await;

    // Granted and allowed: the request reaches the upstream with the guest's header,
    // and the guest reads the status, headers and body.
    let hello = format!("{base}/hello");
    let got = call(
        &s,
        "open",
        "/fetch",
        json!({ "url": hello, "headers": [["x-probe", "from-wasi"]] }),
    )
    .await;
    assert_eq!(got["status"], 200, "{got}");
    assert_eq!(got["body"], "hello from-wasi", "{got}");
    assert!(
        got["headers"]
            .as_array()
            .unwrap()
            .contains(&json!(["x-answer", "yes"])),
        "{got}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // Outside the grants, without grants, and private addresses in a tenant that does
    // not allow them (by IP, by name, cloud metadata): denied before anything leaves.
    for (tenant, url) in [
        ("ungranted", hello.clone()),
        ("none", hello.clone()),
        ("closed", hello.clone()),
        ("closed", format!("http://localhost:{port}/hello")),
        (
            "closed",
            "http://169.254.169.254/latest/meta-data/".to_string(),
        ),
    ] {
        let got = call(&s, tenant, "/fetch", json!({ "url": url })).await;
        assert_eq!(
            got["error"], "ErrorCode::HttpRequestDenied",
            "{tenant} {url}: {got}"
        );
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "no refused request went out"
    );

    // A redirect to a private address is handed back, not followed.
    let got = call(
        &s,
        "open",
        "/attack",
        json!({ "attack": "fetch", "url": format!("{base}/redirect") }),
    )
    .await;
    assert_eq!(got["status"], 302, "{got}");
    assert_eq!(hits.load(Ordering::SeqCst), 2);

    // A response past the host's cap is refused, as for `http.send`.
    let got = call(
        &s,
        "open",
        "/attack",
        json!({ "attack": "fetch", "url": format!("{base}/big") }),
    )
    .await;
    let error = got["error"].as_str().unwrap_or_default();
    assert!(error.contains("larger than"), "{got}");

    // Headers past the fields' size cap stop the guest (wasmtime-wasi-http traps it);
    // the invocation fails as a trap and nothing goes out.
    let before = hits.load(Ordering::SeqCst);
    let r = s
        .client
        .post(format!("{}/t/open/attack", s.url))
        .body(json!({ "attack": "header-flood", "url": hello, "count": 1000 }).to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let problem: Value = r.json().await.unwrap();
    assert_eq!(
        (status, &problem["title"]),
        (500, &json!("trap")),
        "{problem}"
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("exceeds limit"),
        "{problem}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), before);

    // Many requests started at once all complete (a few at a time), none ungranted.
    let before = hits.load(Ordering::SeqCst);
    let got = call(
        &s,
        "open",
        "/attack",
        json!({ "attack": "parallel", "url": hello, "count": 40 }),
    )
    .await;
    assert_eq!(got["ok"], 40, "{got}");
    assert_eq!(hits.load(Ordering::SeqCst), before + 40);

    // A request body past the host's cap is refused before it is sent.
    let got = call(
        &s,
        "open",
        "/attack",
        json!({ "attack": "big-body", "url": hello, "count": 17 << 20 }),
    )
    .await;
    assert!(
        got["error"]
            .as_str()
            .is_some_and(|e| e.contains("HttpRequestBodySize")),
        "{got}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), before + 40);
    s.shutdown().await;
}

#[tokio::test]
async fn a_wasi_http_component_serves_a_route() {
    let tenant = r#"
[limits]
max_output_kb = 64

[plugins.echo]
source = "wasi-echo.wasm"

[[routes]]
method = "POST"
path = "/echo"
plugin = "echo"

[[routes]]
method = "GET"
path = "/big"
plugin = "echo"

[[routes]]
method = "GET"
path = "/silent"
plugin = "echo"

[[routes]]
method = "GET"
path = "/refuse"
plugin = "echo"
"#;
    let s = TestServer::start(&["wasi-echo"], &[("acme", tenant)], |_| {}).await;
    let r = s
        .client
        .post(format!("{}/t/acme/echo?name=ada", s.url))
        .header("x-test", "42")
        .body("the body")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["x-echo"], "yes");
    let got: Value = r.json().await.unwrap();
    assert_eq!(got["method"], "POST", "{got}");
    assert_eq!(got["path"], "/echo?name=ada", "{got}");
    assert_eq!(got["body"], "the body", "{got}");
    assert!(
        got["headers"]
            .as_array()
            .unwrap()
            .contains(&json!(["x-test", "42"])),
        "{got}"
    );

    // Within the output cap the body streams back whole; past it the route refuses.
    let r = s
        .client
        .get(format!("{}/t/acme/big?bytes=60000", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), 60000);
    for (path, title) in [
        ("/big?bytes=10000000", "output-too-large"),
        ("/silent", "invalid-output"),
        ("/refuse", "http-error"),
    ] {
        let r = s
            .client
            .get(format!("{}/t/acme{path}", s.url))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let problem: Value = r.json().await.unwrap();
        assert!(status >= 500, "{path}: {status} {problem}");
        assert_eq!(problem["title"], title, "{path}: {problem}");
    }
    // Counted as the plugin's invocations, like any other.
    let invocations = s
        .metric(
            "orquesta_invocations_total",
            &[("tenant", "acme"), ("plugin", "echo")],
        )
        .await;
    assert_eq!(invocations, 5.0);
    s.shutdown().await;
}
