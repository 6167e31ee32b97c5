//! `orquesta serve` end to end: a real server on loopback, a real HTTP client.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use orquesta::triggers::http::auth::sha256_hex;
use orquesta_tests::plugin;
use orquesta_tests::server::TestServer;
use orquesta_tests::wait::wait_until;
use serde_json::{Value, json};

const PARTNER_KEY: &str = "partner-key-5f1c";

fn acme() -> String {
    format!(
        r#"
[limits]
timeout_ms = 5000

[plugins.hello]
source = "hello.wasm"
config = {{ greeting = "Hola" }}

[plugins.hostile]
source = "hostile.wasm"

[[routes]]
method = "GET"
path = "/hello"
plugin = "hello"

[[routes]]
method = "GET"
path = "/hello/{{name}}"
plugin = "hello"

[[routes]]
method = "POST"
path = "/keyed"
plugin = "hello"
auth = "api_key"

[[routes]]
method = "POST"
path = "/hostile"
plugin = "hostile"

[usage_plans.tight]
rate_per_second = 1
burst = 2

[[api_keys]]
name = "partner"
hash = "sha256:{}"
usage_plan = "tight"
"#,
        sha256_hex(PARTNER_KEY)
    )
}

async fn server() -> TestServer {
    TestServer::start(&["hello", "hostile"], &[("acme", &acme())], |_| {}).await
}

#[tokio::test]
async fn routes_reach_plugins_with_params_and_query() {
    let s = server().await;
    let r = s
        .client
        .get(format!("{}/t/acme/hello?name=Ana", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["message"], "Hola, Ana!");

    let body: Value = s
        .client
        .get(format!("{}/t/acme/hello/Luis", s.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["message"], "Hola, Luis!");
    assert_eq!(body["count"], 2, "kv is shared across requests");

    for (url, status) in [
        (format!("{}/t/acme/nowhere", s.url), 404),
        (format!("{}/t/nobody/hello", s.url), 404),
        (format!("{}/elsewhere", s.url), 404),
    ] {
        let r = s.client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), status, "{url}");
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "{url}"
        );
        let problem: Value = r.json().await.unwrap();
        assert_eq!(problem["status"], status);
        assert!(problem["detail"].as_str().is_some());
    }
    let r = s
        .client
        .delete(format!("{}/t/acme/hello", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    s.shutdown().await;
}

#[tokio::test]
async fn api_keys_are_required_and_usage_plans_enforced() {
    let s = server().await;
    let url = format!("{}/t/acme/keyed?name=K", s.url);
    let r = s.client.post(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = s
        .client
        .post(&url)
        .header("x-api-key", "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Burst 2 at 1/s: two pass at once, the third is refused with retry-after.
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..3 {
        let r = s
            .client
            .post(&url)
            .header("x-api-key", PARTNER_KEY)
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            retry_after = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
        }
    }
    assert_eq!(statuses, [200, 200, 429]);
    assert_eq!(retry_after.as_deref(), Some("1"));
    // The point of the test: after the Retry-After the service gave, the rate has refilled.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = s
        .client
        .post(&url)
        .header("x-api-key", PARTNER_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the rate refills");
    s.shutdown().await;
}

#[tokio::test]
async fn monthly_quotas_are_counted_in_the_store() {
    let tenant = acme().replace("burst = 2", "burst = 100\nquota_per_month = 3");
    let s = TestServer::start(&["hello", "hostile"], &[("acme", tenant.as_str())], |_| {}).await;
    let url = format!("{}/t/acme/keyed", s.url);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let r = s
            .client
            .post(&url)
            .header("x-api-key", PARTNER_KEY)
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    s.shutdown().await;
}

#[tokio::test]
async fn bodies_past_the_limit_get_413() {
    let s = TestServer::start(&["hello", "hostile"], &[("acme", &acme())], |c| {
        c.max_body_kb = 1
    })
    .await;
    let big = "x".repeat(2048);
    let r = s
        .client
        .post(format!("{}/t/acme/hostile", s.url))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    // Within the limit the plugin runs (and answers its own way).
    let r = s
        .client
        .post(format!("{}/t/acme/hostile", s.url))
        .body(json!({ "attack": "nap", "ms": 1 }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.shutdown().await;
}

#[tokio::test]
async fn plugin_failures_are_problem_details() {
    let s = server().await;
    let r = s
        .client
        .post(format!("{}/t/acme/hostile", s.url))
        .body(json!({ "attack": "panic" }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["title"], "trap");
    assert!(
        problem["detail"].as_str().unwrap().contains("on purpose"),
        "{problem}"
    );
    s.shutdown().await;
}

/// A component with the same code and a different hash: a new version to deploy.
fn new_version(of: &str, tag: &str) -> Vec<u8> {
    let mut bytes = std::fs::read(plugin(of)).unwrap();
    // A custom section (id 0): name, then payload. Valid anywhere in a component.
    let name = b"orquesta-test-version";
    let payload = tag.as_bytes();
    let size = 1 + name.len() + payload.len();
    assert!(size < 128 && name.len() < 128, "one-byte LEB128 lengths");
    bytes.extend_from_slice(&[0, size as u8, name.len() as u8]);
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(payload);
    bytes
}

#[tokio::test]
async fn a_plugin_dropped_in_while_requests_flow_fails_none() {
    const MINUTE: Duration = Duration::from_secs(60);
    let s = server().await;
    let hash_of_hello = async || {
        s.admin("plugins").await["plugins"]
            .as_array()
            .expect("a plugin list")
            .iter()
            .find(|p| p["name"] == "hello")
            .expect("hello is listed")["hash"]
            .clone()
    };
    let old_hash = hash_of_hello().await;
    // The new version answers differently (the `bench` plugin greets "Hello" without a
    // count), so each response shows which version served it.
    let new_bytes = std::fs::read(plugin("bench")).unwrap();
    let new_hash = orquesta::engine::content_hash(&new_bytes);
    assert_ne!(Value::String(new_hash.clone()), old_hash);

    #[derive(Default)]
    struct Seen {
        old: AtomicUsize,
        new: AtomicUsize,
        failures: std::sync::Mutex<Vec<String>>,
    }
    let seen = Arc::new(Seen::default());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let url = format!("{}/t/acme/hello?name=flow", s.url);
    // Several clients, each one request at a time: once one has seen the new version,
    // the old one must never answer it again (the swap is atomic).
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (client, url, seen, stop) =
                (s.client.clone(), url.clone(), seen.clone(), stop.clone());
            tokio::spawn(async move {
                let mut swapped = false;
                while !stop.load(Ordering::Relaxed) {
                    let answer = match client.get(&url).send().await {
                        Ok(r) => (r.status().as_u16(), r.json::<Value>().await.ok()),
                        Err(e) => (0, Some(json!(e.to_string()))),
                    };
                    match answer {
                        (200, Some(body)) if body["message"] == "Hola, flow!" && !swapped => {
                            seen.old.fetch_add(1, Ordering::Relaxed);
                        }
                        (200, Some(body)) if body == json!({ "message": "Hello, flow!" }) => {
                            swapped = true;
                            seen.new.fetch_add(1, Ordering::Relaxed);
                        }
                        other => seen
                            .failures
                            .lock()
                            .unwrap()
                            .push(format!("{other:?} (after the swap: {swapped})")),
                    }
                }
            })
        })
        .collect();

    let counted = |count: fn(&Seen) -> &AtomicUsize| {
        let seen = seen.clone();
        move || count(&seen).load(Ordering::Relaxed) >= 20
    };
    // A minute: the new version is compiled first, slowly on a loaded machine.
    let old_serving = counted(|s| &s.old);
    wait_until("the old version serving", MINUTE, async || old_serving()).await;
    // Dropped in as a deploy tool would, with no reload call: the watcher must find it.
    s.write_plugin("hello", &new_bytes);
    let new_serving = counted(|s| &s.new);
    wait_until("the new version serving", MINUTE, async || new_serving()).await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    let failures = seen.failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed or came from the old version after the new one: {:?}",
        failures.len(),
        failures.len() + seen.old.load(Ordering::Relaxed) + seen.new.load(Ordering::Relaxed),
        &failures[..failures.len().min(5)]
    );
    assert_eq!(hash_of_hello().await, Value::String(new_hash));
    s.shutdown().await;
}

#[tokio::test]
async fn the_watcher_picks_up_a_new_plugin_without_reload() {
    let s = server().await;
    let before = s.admin("plugins").await;
    let old: Vec<Value> = before["plugins"].as_array().unwrap().clone();
    s.write_plugin("hello", &new_version("hello", "watched"));
    let started = Instant::now();
    loop {
        let now = s.admin("plugins").await;
        if now["plugins"] != Value::Array(old.clone()) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the watcher never reloaded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.shutdown().await;
}

#[tokio::test]
async fn a_broken_plugin_is_refused_and_the_old_one_keeps_serving() {
    let s = server().await;
    s.write_plugin("hello", b"\0asm\x0d\0\x01\0 definitely not a component");
    let state = s.reload().await;
    let hello = state["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "hello")
        .unwrap()
        .clone();
    assert!(
        hello["error"]
            .as_str()
            .unwrap()
            .contains("invalid-component"),
        "{hello}"
    );
    assert!(
        hello["hash"].is_string(),
        "the previous version is still there: {hello}"
    );
    let r = s
        .client
        .get(format!("{}/t/acme/hello?name=still", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // The admin API refuses it too, and writes nothing.
    let r = s
        .client
        .put(format!("{}/admin/v1/plugins/hello", s.url))
        .bearer_auth(orquesta_tests::server::ADMIN_TOKEN)
        .body(b"not wasm at all".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let problem: Value = r.json().await.unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("not-wasm"),
        "{problem}"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn plugins_upload_through_the_admin_api() {
    let s = TestServer::start(&[], &[("acme", &acme())], |_| {}).await;
    let r = s
        .client
        .get(format!("{}/t/acme/hello", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "refused until its plugin is deployed");
    let acme = &s.admin("tenants").await["tenants"][0];
    assert!(
        acme["error"]
            .as_str()
            .is_some_and(|e| e.contains("`hello.wasm` is not in the plugin directory")),
        "{acme}"
    );
    let hello = std::fs::read(plugin("hello")).unwrap();
    let r = s
        .client
        .put(format!("{}/admin/v1/plugins/hello", s.url))
        .body(hello.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "no token");
    let r = s
        .client
        .put(format!("{}/admin/v1/plugins/hello", s.url))
        .bearer_auth(orquesta_tests::server::ADMIN_TOKEN)
        .body(hello.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        std::fs::read(s.dir.path().join("data/deployed/plugins/hello.wasm")).unwrap(),
        hello,
        "kept on disk, in the host's copy of the store's deploys"
    );
    // The tenant also runs `hostile`: it loads once both are deployed.
    let r = s
        .client
        .put(format!("{}/admin/v1/plugins/hostile", s.url))
        .bearer_auth(orquesta_tests::server::ADMIN_TOKEN)
        .body(std::fs::read(plugin("hostile")).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s
        .client
        .get(format!("{}/t/acme/hello", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the tenant loads with its plugin");
    s.shutdown().await;
}

#[tokio::test]
async fn an_invalid_tenant_edit_is_refused_and_the_old_config_keeps_serving() {
    let s = server().await;
    s.write_tenant("acme", &acme().replace("[[routes]]", "[[routez]]"));
    let state = s.reload().await;
    let status = state["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "acme")
        .unwrap()
        .clone();
    assert!(status["serving"].as_bool().unwrap());
    let error = status["error"].as_str().unwrap();
    assert!(
        error.contains("acme.toml:") && error.contains("unknown field `routez`"),
        "{error}"
    );
    let body: Value = s
        .client
        .get(format!("{}/t/acme/hello?name=old", s.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["message"], "Hola, old!");

    // A valid edit applies, live.
    s.write_tenant(
        "acme",
        &acme().replace("greeting = \"Hola\"", "greeting = \"Olá\""),
    );
    s.reload().await;
    let body: Value = s
        .client
        .get(format!("{}/t/acme/hello?name=new", s.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["message"], "Olá, new!");
    s.shutdown().await;
}

#[tokio::test]
async fn health_readiness_metrics_and_openapi() {
    let s = server().await;
    assert_eq!(
        s.client
            .get(format!("{}/healthz", s.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        s.client
            .get(format!("{}/readyz", s.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    s.client
        .get(format!("{}/t/acme/hello", s.url))
        .send()
        .await
        .unwrap();
    let metrics = s
        .client
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "orquesta_invocations_total{tenant=\"acme\",plugin=\"hello\"}",
        "orquesta_invocation_duration_seconds_bucket{tenant=\"acme\",plugin=\"hello\"",
        "orquesta_http_requests_total{tenant=\"acme\",plugin=\"hello\",status=\"200\"}",
        "orquesta_instantiation_seconds_count{tenant=\"acme\",plugin=\"hello\"}",
    ] {
        assert!(metrics.contains(needle), "missing {needle} in\n{metrics}");
    }
    let openapi: Value = s
        .client
        .get(format!("{}/admin/v1/openapi.json", s.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in ["/plugins", "/plugins/{name}", "/tenants", "/reload"] {
        assert!(openapi["paths"][path].is_object(), "openapi lacks {path}");
    }
    let r = s
        .client
        .get(format!("{}/admin/v1/tenants", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let tenants = s.admin("tenants").await;
    assert_eq!(tenants["tenants"][0]["name"], "acme");
    assert_eq!(tenants["tenants"][0]["routes"], 4);
    s.shutdown().await;
}

/// The served OpenAPI document lists exactly the admin routes the service serves: on
/// each documented path, every documented method is routed (401 without the token where
/// the document asks for it, 200 where it asks for none) and every other method is
/// refused by the router with 405, token or not; every operation is named and tagged.
/// (HEAD is left out: axum answers it for every GET.)
#[tokio::test]
async fn the_openapi_document_lists_exactly_the_served_admin_routes() {
    let s = server().await;
    let doc: Value = s
        .client
        .get(format!("{}/admin/v1/openapi.json", s.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = doc["paths"].as_object().expect("the document has paths");
    let mut operations = 0;
    for (path, item) in paths {
        // A value for each parameter; a blob key of two segments tries the catch-all.
        let concrete = path
            .replace("{tenant}", "acme")
            .replace("{key}", "a/b")
            .split('/')
            .map(|part| if part.starts_with('{') { "x" } else { part })
            .collect::<Vec<_>>()
            .join("/");
        let url = format!("{}/admin/v1{concrete}", s.url);
        for method in ["get", "put", "post", "delete", "patch", "options"] {
            let verb = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            match item.get(method) {
                Some(op) => {
                    operations += 1;
                    assert!(
                        op["operationId"].as_str().is_some_and(|id| !id.is_empty()),
                        "{method} {path} has no operationId"
                    );
                    assert!(
                        op["tags"].as_array().is_some_and(|t| !t.is_empty()),
                        "{method} {path} has no tag"
                    );
                    // `[{}]` (an empty requirement) is how the document says "no token".
                    let public = op["security"].as_array().is_some_and(|r| {
                        r.iter()
                            .any(|r| r.as_object().is_some_and(|o| o.is_empty()))
                    });
                    let r = s.client.request(verb, &url).send().await.unwrap();
                    let expected = if public { 200 } else { 401 };
                    assert_eq!(r.status(), expected, "{method} {path} ({url})");
                }
                None => {
                    let r = s
                        .client
                        .request(verb, &url)
                        .bearer_auth(orquesta_tests::server::ADMIN_TOKEN)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(
                        r.status(),
                        405,
                        "{method} {path} is served but not in the document"
                    );
                }
            }
        }
    }
    assert!(operations >= 20, "only {operations} operations documented");
    s.shutdown().await;
}

#[tokio::test]
async fn shutdown_drains_requests_in_flight() {
    let s = server().await;
    let hostile = format!("{}/t/acme/hostile", s.url);
    let slow = {
        let (client, url) = (s.client.clone(), hostile.clone());
        tokio::spawn(async move {
            client
                .post(url)
                .body(json!({ "attack": "marked-nap", "tag": "drain", "ms": 700 }).to_string())
                .send()
                .await
        })
    };
    wait_until(
        "the request to reach the plugin",
        Duration::from_secs(20),
        async || {
            let probe = json!({ "attack": "kv-read", "key": "drain:started" }).to_string();
            let Ok(r) = s.client.post(&hostile).body(probe).send().await else {
                return false;
            };
            r.json::<Value>()
                .await
                .is_ok_and(|v| v["found"]["default/drain:started"] == "1")
        },
    )
    .await;
    let url = s.url.clone();
    let started = Instant::now();
    s.shutdown().await;
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "shutdown did not wait"
    );
    let answer = slow
        .await
        .unwrap()
        .expect("the request in flight completes");
    assert_eq!(answer.status(), 200);
    assert!(
        reqwest::get(format!("{url}/healthz")).await.is_err(),
        "no new connections after shutdown"
    );
}

mod jwt {
    use super::*;
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};

    fn tenant() -> String {
        let jwks = orquesta_tests::workspace().join("examples/idp/demo-jwks.json");
        format!(
            r#"
[plugins.hostile]
source = "hostile.wasm"

[[routes]]
method = "POST"
path = "/me"
plugin = "hostile"
auth = "jwt"
scopes = ["read"]

[[routes]]
method = "POST"
path = "/admins"
plugin = "hostile"
auth = "jwt"
groups = ["assistances-admin"]

[jwt]
issuer = "https://auth.test/"
audience = "orquesta-tests"
jwks_file = "{}"
"#,
            jwks.display()
        )
    }

    fn token(claims: Value) -> String {
        orquesta_fakes::idp::sign(&claims).unwrap()
    }

    fn claims(extra: Value) -> Value {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut c = json!({
            "iss": "https://auth.test/", "aud": "orquesta-tests", "sub": "user-7",
            "exp": now + 600, "email": "ana@example.com", "name": "Ana",
        });
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    }

    #[tokio::test]
    async fn bearer_tokens_are_verified_and_scopes_and_groups_enforced() {
        let s = TestServer::start(&["hostile"], &[("acme", &tenant())], |_| {}).await;
        let whoami = json!({ "attack": "whoami" }).to_string();
        let call = |path: &str, bearer: Option<String>| {
            let mut r = s
                .client
                .post(format!("{}/t/acme{path}", s.url))
                .body(whoami.clone());
            if let Some(t) = bearer {
                r = r.bearer_auth(t);
            }
            r.send()
        };
        let hmac = encode(
            &Header::new(Algorithm::HS256),
            &claims(json!({ "scope": "read" })),
            &EncodingKey::from_secret(b"guessable"),
        )
        .unwrap();
        for (what, bearer) in [
            ("no token", None),
            ("garbage", Some("not.a.token".to_string())),
            (
                "wrong audience",
                Some(token(claims(
                    json!({ "aud": "someone-else", "scope": "read" }),
                ))),
            ),
            (
                "wrong issuer",
                Some(token(claims(
                    json!({ "iss": "https://evil/", "scope": "read" }),
                ))),
            ),
            (
                "expired",
                Some(token(claims(json!({ "exp": 1_000_000, "scope": "read" })))),
            ),
            ("HMAC, not a JWKS key", Some(hmac)),
        ] {
            let r = call("/me", bearer).await.unwrap();
            assert_eq!(r.status(), 401, "{what}");
        }

        let r = call("/me", Some(token(claims(json!({ "scope": "write" })))))
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "missing scope");
        let problem: Value = r.json().await.unwrap();
        assert!(
            problem["detail"].as_str().unwrap().contains("`read`"),
            "{problem}"
        );

        let good = token(claims(
            json!({ "scope": "read write", "cognito:groups": ["assistances-tmo"] }),
        ));
        let r = call("/me", Some(good.clone())).await.unwrap();
        assert_eq!(r.status(), 200);
        let who: Value = r.json().await.unwrap();
        assert_eq!(
            who,
            json!({ "subject": "user-7", "email": "ana@example.com", "name": "Ana",
                    "groups": ["assistances-tmo"], "scopes": ["read", "write"] })
        );

        let r = call("/admins", Some(good)).await.unwrap();
        assert_eq!(r.status(), 403, "not in the group");
        let admin = token(claims(json!({ "cognito:groups": ["assistances-admin"] })));
        assert_eq!(call("/admins", Some(admin)).await.unwrap().status(), 200);
        s.shutdown().await;
    }
}
