//! Tenant admin credentials (`[[admin_credentials]]`) on a running service: a credential
//! manages its own tenant within its scopes and nothing else. Every operation is taken
//! from the served OpenAPI document, so a route added later is attacked here too.

use orquesta::triggers::http::auth::sha256_hex;
use orquesta_tests::raw_http;
use orquesta_tests::server::{ADMIN_TOKEN, TestServer};
use reqwest::Method;
use serde_json::Value;

const ALPHA_ALL: &str = "alpha-token-all";
const ALPHA_READ: &str = "alpha-token-read";
const ALPHA_OPERATE: &str = "alpha-token-operate";
const ALPHA_DEPLOY: &str = "alpha-token-deploy";
const BETA_ALL: &str = "beta-token-all";
/// Declared by both `gamma` and `delta`.
const SHARED: &str = "shared-token";

fn credential(name: &str, token: &str, scopes: &str) -> String {
    format!(
        "[[admin_credentials]]\nname = \"{name}\"\nhash = \"sha256:{}\"\nscopes = [{scopes}]\n\n",
        sha256_hex(token)
    )
}

const ALL: &str = "\"read\", \"operate\", \"deploy\"";

async fn server() -> TestServer {
    let queue = "[queues.jobs]\n\n";
    let alpha = [
        queue.to_string(),
        credential("all", ALPHA_ALL, ALL),
        credential("reader", ALPHA_READ, "\"read\""),
        credential("operator", ALPHA_OPERATE, "\"operate\""),
        credential("deployer", ALPHA_DEPLOY, "\"deploy\""),
    ]
    .concat();
    // beta also names the host token's hash as a read-only credential of its own: the
    // host token is checked first, so a tenant file cannot narrow it to one tenant.
    let beta = [
        queue.to_string(),
        credential("all", BETA_ALL, ALL),
        credential("host", ADMIN_TOKEN, "\"read\""),
    ]
    .concat();
    let gamma = [queue.to_string(), credential("shared", SHARED, ALL)].concat();
    let delta = [queue.to_string(), credential("shared", SHARED, ALL)].concat();
    let tenants = [
        ("alpha", alpha.as_str()),
        ("beta", beta.as_str()),
        ("gamma", gamma.as_str()),
        ("delta", delta.as_str()),
    ];
    let s = TestServer::start(&[], &tenants, |_| {}).await;
    let listed = s.admin("tenants").await;
    for name in ["alpha", "beta", "gamma", "delta"] {
        let t = listed["tenants"]
            .as_array()
            .and_then(|all| all.iter().find(|t| t["name"] == name))
            .unwrap_or_else(|| panic!("{name} not listed: {listed}"));
        assert_eq!(t["serving"], true, "{t}");
    }
    s
}

/// Every guarded operation of the served document: (method, path template).
async fn operations(s: &TestServer) -> Vec<(Method, String)> {
    let doc: Value = s
        .client
        .get(format!("{}/admin/v1/openapi.json", s.url))
        .send()
        .await
        .expect("the document is served")
        .json()
        .await
        .expect("the document is JSON");
    let mut all = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        if path == "/openapi.json" {
            continue;
        }
        for method in item.as_object().expect("a path item").keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("a method");
            all.push((method, path.clone()));
        }
    }
    assert!(all.len() >= 25, "only {} operations", all.len());
    all
}

/// `template` with `{tenant}` as `tenant` and the other parameters filled.
fn fill(template: &str, tenant: &str) -> String {
    template
        .replace("{tenant}", tenant)
        .replace("{queue}", "jobs")
        .replace("{key}", "dir/a.txt")
        .replace("{name}", "nothing")
        .replace("{topic}", "news")
        .replace("{bus}", "shop")
        .replace("{bucket}", "files")
        .replace("{workflow}", "flow")
        .replace("{id}", "0193a6f2-4b8e-7c1d-9f00-2a4d5e6f7a8b")
}

/// `method` `/admin/v1{path}` with `token`: (status, problem or answer).
async fn call(s: &TestServer, token: &str, method: Method, path: &str) -> (u16, Value) {
    let r = s
        .client
        .request(method, format!("{}/admin/v1{path}", s.url))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("admin answers");
    let status = r.status().as_u16();
    let is_problem = r
        .headers()
        .get("content-type")
        .is_some_and(|v| v == "application/problem+json");
    let body = r.json().await.unwrap_or(Value::Null);
    if status == 403 {
        assert!(is_problem, "a 403 is problem+json: {body}");
    }
    (status, body)
}

/// Whether a tenant credential may reach the route at all: the routes under a tenant,
/// and the tenant's own file, but not its deletion (the host's operator's).
fn under_tenant(method: &Method, template: &str) -> bool {
    template.starts_with("/tenants/{tenant}/")
        || (template == "/tenants/{tenant}" && *method != Method::DELETE)
}

/// The scope a tenant route needs: deploys take `deploy`, reads `read`, the rest
/// `operate`.
fn scope_of(method: &Method, template: &str) -> &'static str {
    if template == "/tenants/{tenant}" || template.starts_with("/tenants/{tenant}/plugins/") {
        "deploy"
    } else if *method == Method::GET {
        "read"
    } else {
        "operate"
    }
}

#[tokio::test]
async fn a_tenant_credential_is_refused_on_every_other_tenants_route_and_every_host_route() {
    let s = server().await;
    for (method, template) in operations(&s).await {
        if under_tenant(&method, &template) {
            // Another tenant's, whichever scopes it holds; and tenants that do not exist
            // answer the same 403, so a credential cannot probe for names.
            for (token, tenant) in [
                (BETA_ALL, "alpha"),
                (ALPHA_ALL, "beta"),
                (ALPHA_ALL, "nobody"),
                (ALPHA_ALL, "ALPHA"),
            ] {
                let path = fill(&template, tenant);
                let (status, body) = call(&s, token, method.clone(), &path).await;
                assert_eq!(status, 403, "{token} on {method} {path}: {body}");
                assert!(
                    body["detail"]
                        .as_str()
                        .is_some_and(|d| d.contains("another tenant")),
                    "{method} {path}: {body}"
                );
            }
        } else {
            let path = fill(&template, "alpha");
            for token in [ALPHA_ALL, BETA_ALL] {
                let (status, body) = call(&s, token, method.clone(), &path).await;
                assert_eq!(status, 403, "{token} on {method} {path}: {body}");
                assert!(
                    body["detail"]
                        .as_str()
                        .is_some_and(|d| d.contains("host admin token")),
                    "{method} {path}: {body}"
                );
            }
        }
    }
    // The host token keeps every route, beta's file naming it notwithstanding; a wrong
    // token is still a 401.
    let (status, body) = call(&s, ADMIN_TOKEN, Method::GET, "/tenants").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(&s, ADMIN_TOKEN, Method::GET, "/tenants/beta/queues").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(
        &s,
        ADMIN_TOKEN,
        Method::POST,
        "/tenants/alpha/queues/jobs/redrive",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(&s, "not-a-token", Method::GET, "/tenants/alpha/queues").await;
    assert_eq!(status, 401, "{body}");
    s.shutdown().await;
}

/// What each scope opens on the credential's own tenant: reads take `read`, deploys
/// (the tenant's file and plugins) `deploy`, the rest `operate`.
#[tokio::test]
async fn a_tenant_credential_is_held_to_its_scopes_on_its_own_tenant() {
    let s = server().await;
    for (method, template) in operations(&s).await {
        if !under_tenant(&method, &template) {
            continue;
        }
        let path = fill(&template, "alpha");
        let scope = scope_of(&method, &template);
        for (token, allowed) in [
            (ALPHA_ALL, true),
            (ALPHA_READ, scope == "read"),
            (ALPHA_OPERATE, scope == "operate"),
            (ALPHA_DEPLOY, scope == "deploy"),
        ] {
            let (status, body) = call(&s, token, method.clone(), &path).await;
            if allowed {
                // Past the gate: the handler answers (a 404 for the dummy names, a 400
                // for the dummy body), never the gate's 401 or 403.
                assert!(
                    status != 401 && status != 403,
                    "{token} on {method} {path}: {status} {body}"
                );
            } else {
                assert_eq!(status, 403, "{token} on {method} {path}: {body}");
                assert!(
                    body["detail"]
                        .as_str()
                        .is_some_and(|d| d.contains("lacks the scope")),
                    "{method} {path}: {body}"
                );
            }
        }
    }
    // And what a scope opens works: the reader sees the queue, the operator sends to it.
    let (status, body) = call(&s, ALPHA_READ, Method::GET, "/tenants/alpha/queues").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["queues"][0]["name"], "jobs", "{body}");
    let r = s
        .client
        .post(format!(
            "{}/admin/v1/tenants/alpha/queues/jobs/messages",
            s.url
        ))
        .bearer_auth(ALPHA_OPERATE)
        .json(&serde_json::json!({ "body": "from the operator" }))
        .send()
        .await
        .expect("admin answers");
    assert_eq!(r.status().as_u16(), 200);
    let peeked = s.admin("tenants/alpha/queues/jobs/messages").await;
    assert_eq!(
        peeked["messages"][0]["body"], "from the operator",
        "{peeked}"
    );
    s.shutdown().await;
}

/// The tenant is the credential's, whatever the path says: encoded slashes, `..`
/// segments sent as is, and a token two tenant files declare.
#[tokio::test]
async fn path_tricks_and_a_credential_declared_twice_are_refused() {
    let s = server().await;
    for path in [
        "/tenants/alpha%2F..%2Fbeta/queues",
        "/tenants/beta%2F..%2Falpha/queues",
        "/tenants/%61lpha%20/queues",
    ] {
        let (status, body) = call(&s, BETA_ALL, Method::GET, path).await;
        assert_eq!(status, 403, "{path}: {body}");
    }
    // A NUL is refused before any credential is looked at.
    let (status, body) = call(&s, ALPHA_ALL, Method::GET, "/tenants/alpha%00/queues").await;
    assert_eq!(status, 400, "{body}");
    // `%61lpha` is `alpha` once decoded, as the handler decodes it: still alpha's own.
    let (status, body) = call(&s, ALPHA_READ, Method::GET, "/tenants/%61lpha/queues").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(&s, BETA_ALL, Method::GET, "/tenants/%61lpha/queues").await;
    assert_eq!(status, 403, "{body}");

    // `..` as sent, not as a client would resolve it: no route takes it to beta's.
    for path in [
        "/admin/v1/tenants/alpha/../beta/queues",
        "/admin/v1/tenants/alpha/queues/../../beta/queues",
        "/admin/v1/tenants/../tenants/beta/queues",
    ] {
        let head = format!("GET {path} HTTP/1.1\r\nAuthorization: Bearer {ALPHA_ALL}");
        let r = raw_http::send(&s.url, &head, b"", false).await;
        assert!(
            r.status == 403 || r.status == 404 || r.status == 405,
            "{path}: {r:?}"
        );
        assert!(
            !String::from_utf8_lossy(&r.body).contains("\"queues\""),
            "{path}: {r:?}"
        );
    }

    // Declared by gamma and delta: neither can be told from the token, so both refuse,
    // and the refusal does not name the other tenant.
    for tenant in ["gamma", "delta"] {
        let path = format!("/tenants/{tenant}/queues");
        let (status, body) = call(&s, SHARED, Method::GET, &path).await;
        assert_eq!(status, 403, "{path}: {body}");
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("more than one tenant"), "{body}");
        assert!(
            !detail.contains("gamma") && !detail.contains("delta"),
            "{body}"
        );
    }
    s.shutdown().await;
}

/// A dropped file with a bad credential is refused as a whole, with its line, and its
/// other credentials do not work: a tenant never half-loads its access.
#[tokio::test]
async fn a_file_with_a_bad_credential_is_refused_with_its_line() {
    let good = credential("ok", ALPHA_ALL, ALL);
    let bad = "[[admin_credentials]]\nname = \"bad\"\nhash = \"sha256:abc\"\nscopes = [\"read\"]\n";
    let text = format!("[queues.jobs]\n\n{good}{bad}");
    let s = TestServer::start(&[], &[("alpha", &text)], |_| {}).await;
    let listed = s.admin("tenants").await;
    let alpha = &listed["tenants"][0];
    assert_eq!(alpha["serving"], false, "{listed}");
    let error = alpha["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("alpha.toml:8: ") && error.contains("admin_credentials `bad`: hash"),
        "{error}"
    );
    let (status, body) = call(&s, ALPHA_ALL, Method::GET, "/tenants/alpha/queues").await;
    assert_eq!(status, 401, "{body}");
    s.shutdown().await;
}

/// The host's log records each call made with a tenant credential, allowed or refused,
/// with the tenant and the credential's name: what an operator audits.
#[tokio::test]
async fn each_call_with_a_tenant_credential_is_logged() {
    use orquesta_tests::server::ServeProcess;
    let dir = tempfile::tempdir().expect("temp dir");
    for sub in ["plugins", "tenants"] {
        std::fs::create_dir_all(dir.path().join(sub)).expect("dir");
    }
    std::fs::write(dir.path().join("admin-token"), ADMIN_TOKEN).expect("token");
    let alpha = format!(
        "[queues.jobs]\n\n{}",
        credential("reader", ALPHA_READ, "\"read\"")
    );
    std::fs::write(dir.path().join("tenants/alpha.toml"), alpha).expect("tenant");
    let config = "listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\nplugin_dir = \"plugins\"\n\
                  tenant_dir = \"tenants\"\nadmin_token = { file = \"admin-token\" }\n";
    let server = ServeProcess::start(dir.path(), config, &[]);
    let client = reqwest::Client::new();
    for (method, path, want) in [
        (Method::GET, "/tenants/alpha/queues", 200),
        (Method::POST, "/tenants/alpha/queues/jobs/redrive", 403),
    ] {
        let r = client
            .request(method, format!("{}/admin/v1{path}", server.url))
            .bearer_auth(ALPHA_READ)
            .send()
            .await
            .expect("admin answers");
        assert_eq!(r.status().as_u16(), want, "{path}");
    }
    let started = std::time::Instant::now();
    loop {
        let logs = server.logs();
        let calls: Vec<&str> = logs
            .lines()
            .filter(|l| l.contains("admin call with a tenant credential"))
            .collect();
        if calls.len() == 2 {
            assert!(
                calls
                    .iter()
                    .all(|l| l.contains("alpha") && l.contains("reader")),
                "{logs}"
            );
            assert!(
                calls[0].contains("200") && calls[1].contains("403"),
                "{logs}"
            );
            break;
        }
        assert!(
            started.elapsed().as_secs() < 10,
            "not logged twice:\n{logs}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
