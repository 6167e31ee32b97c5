//! The service's refusals (issue 21): JWT time claims and key algorithms, quotas that
//! count only what they admit, problem details for axum's own rejections, body read
//! errors told apart from bodies over the limit, blob key conflicts, and the `Bearer`
//! scheme in any case.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use orquesta::triggers::http::auth::sha256_hex;
use orquesta_tests::raw_http;
use orquesta_tests::server::{ADMIN_TOKEN, TestServer};
use serde_json::{Value, json};

const KEY: &str = "quota-key-9a1e";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A tenant with a JWT route (keys from `jwks`), an API-key route under a usage plan,
/// and a plugin granted the bucket `files`.
fn tenant(jwks: &std::path::Path, jwt_extra: &str, quota: u32) -> String {
    format!(
        r#"
[plugins.hello]
source = "hello.wasm"

[plugins.hostile]
source = "hostile.wasm"
allow = {{ blob_buckets = ["files"] }}

[[routes]]
method = "POST"
path = "/me"
plugin = "hostile"
auth = "jwt"

[[routes]]
method = "POST"
path = "/keyed"
plugin = "hello"
auth = "api_key"

[[routes]]
method = "POST"
path = "/hostile"
plugin = "hostile"

[[routes]]
method = "PUT"
path = "/hostile"
plugin = "hostile"

[usage_plans.monthly]
rate_per_second = 100
burst = 100
quota_per_month = {quota}

[[api_keys]]
name = "partner"
hash = "sha256:{}"
usage_plan = "monthly"

[jwt]
issuer = "https://auth.test/"
audience = "orquesta-tests"
jwks_file = "{}"
{jwt_extra}
"#,
        sha256_hex(KEY),
        jwks.display()
    )
}

fn demo_jwks() -> std::path::PathBuf {
    orquesta_tests::workspace().join("examples/idp/demo-jwks.json")
}

fn claims(extra: Value) -> Value {
    let mut c = json!({
        "iss": "https://auth.test/", "aud": "orquesta-tests", "sub": "user-7",
        "exp": now() + 600,
    });
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

/// Signed with the demo key (RS256 in its JWKS), with any algorithm of the RSA family.
fn signed(alg: Algorithm, claims: &Value) -> String {
    let pem = std::fs::read(orquesta_tests::workspace().join("examples/idp/demo-key.pem")).unwrap();
    let mut header = Header::new(alg);
    header.kid = Some("demo".into());
    encode(&header, claims, &EncodingKey::from_rsa_pem(&pem).unwrap()).unwrap()
}

async fn call_me(s: &TestServer, authorization: &str) -> (u16, Value) {
    let r = s
        .client
        .post(format!("{}/t/acme/me", s.url))
        .header("authorization", authorization)
        .body(json!({ "attack": "whoami" }).to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn jwt_time_claims_and_key_algorithms_are_checked() {
    let s = TestServer::start(
        &["hello", "hostile"],
        &[("acme", &tenant(&demo_jwks(), "", 100))],
        |_| {},
    )
    .await;
    let t = now();
    let good = signed(Algorithm::RS256, &claims(json!({ "iat": t, "nbf": t - 5 })));
    assert_eq!(call_me(&s, &format!("Bearer {good}")).await.0, 200);
    let mut accepted = Vec::new();
    for (what, token, needle) in [
        (
            "valid from tomorrow",
            signed(Algorithm::RS256, &claims(json!({ "nbf": t + 86_400 }))),
            "ImmatureSignature",
        ),
        (
            "issued in an hour",
            signed(Algorithm::RS256, &claims(json!({ "iat": t + 3_600 }))),
            "issued in the future",
        ),
        (
            "PS256 with an RS256 key",
            signed(Algorithm::PS256, &claims(json!({}))),
            "does not accept tokens signed with PS256",
        ),
        (
            "expired a second ago (no skew by default)",
            signed(Algorithm::RS256, &claims(json!({ "exp": t - 1 }))),
            "ExpiredSignature",
        ),
    ] {
        let (status, problem) = call_me(&s, &format!("Bearer {token}")).await;
        let detail = problem["detail"].as_str().unwrap_or_default();
        if status != 401 || !detail.contains(needle) {
            accepted.push(format!("{what}: {status} {problem}"));
        }
    }
    assert!(
        accepted.is_empty(),
        "not refused as they should be:\n{}",
        accepted.join("\n")
    );

    // A clock-skew setting stretches each check by that much, and no more.
    let skewed = tenant(&demo_jwks(), "clock_skew_seconds = 120", 100);
    s.write_tenant("acme", &skewed);
    s.reload().await;
    let t = now();
    for (what, extra, status) in [
        ("nbf within the skew", json!({ "nbf": t + 60 }), 200),
        ("iat within the skew", json!({ "iat": t + 60 }), 200),
        ("exp within the skew", json!({ "exp": t - 60 }), 200),
        ("nbf past the skew", json!({ "nbf": t + 600 }), 401),
        ("iat past the skew", json!({ "iat": t + 600 }), 401),
        ("exp past the skew", json!({ "exp": t - 600 }), 401),
    ] {
        let token = signed(Algorithm::RS256, &claims(extra));
        let (got, problem) = call_me(&s, &format!("Bearer {token}")).await;
        assert_eq!(got, status, "{what}: {problem}");
    }
    let too_much = tenant(&demo_jwks(), "clock_skew_seconds = 3600", 100);
    s.write_tenant("acme", &too_much);
    let state = s.reload().await;
    let error = state["tenants"][0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("clock_skew_seconds"), "{state}");

    // A key without `alg` takes the RS algorithms of its type, not PS.
    let mut jwks: Value =
        serde_json::from_str(&std::fs::read_to_string(demo_jwks()).unwrap()).unwrap();
    jwks["keys"][0].as_object_mut().unwrap().remove("alg");
    let bare = s.dir.path().join("bare-jwks.json");
    std::fs::write(&bare, jwks.to_string()).unwrap();
    s.write_tenant("acme", &tenant(&bare, "", 100));
    s.reload().await;
    for (alg, status) in [
        (Algorithm::RS256, 200),
        (Algorithm::RS512, 200),
        (Algorithm::PS256, 401),
    ] {
        let token = signed(alg, &claims(json!({})));
        let (got, problem) = call_me(&s, &format!("Bearer {token}")).await;
        assert_eq!(got, status, "{alg:?} with a key without alg: {problem}");
    }
    s.shutdown().await;
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let s = TestServer::start(
        &["hello", "hostile"],
        &[("acme", &tenant(&demo_jwks(), "", 100))],
        |_| {},
    )
    .await;
    let token = signed(Algorithm::RS256, &claims(json!({})));
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let (status, problem) = call_me(&s, &format!("{scheme} {token}")).await;
        assert_eq!(status, 200, "{scheme} on a JWT route: {problem}");
        let r = s
            .client
            .get(format!("{}/admin/v1/tenants", s.url))
            .header("authorization", format!("{scheme} {ADMIN_TOKEN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{scheme} on the admin API");
    }
    // Several spaces after the scheme are allowed too; another scheme is not.
    let r = s
        .client
        .get(format!("{}/admin/v1/tenants", s.url))
        .header("authorization", format!("bearer   {ADMIN_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s
        .client
        .get(format!("{}/admin/v1/tenants", s.url))
        .header("authorization", format!("Basic {ADMIN_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    s.shutdown().await;
}

#[tokio::test]
async fn refused_requests_do_not_count_against_the_monthly_quota() {
    let s = TestServer::start(
        &["hello", "hostile"],
        &[("acme", &tenant(&demo_jwks(), "", 5))],
        |_| {},
    )
    .await;
    let keyed = |s: &TestServer| {
        s.client
            .post(format!("{}/t/acme/keyed", s.url))
            .header("x-api-key", KEY)
            .send()
    };
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(keyed(&s).await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429, 429, 429, 429]);

    // Raising the quota to 7 leaves exactly 2 more this month.
    s.write_tenant("acme", &tenant(&demo_jwks(), "", 7));
    s.reload().await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(keyed(&s).await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 429]);
    s.shutdown().await;
}

/// A refusal as RFC 9457 wants it: the status, problem+json, a detail.
fn assert_problem(r: &raw_http::RawResponse, status: u16, needle: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: {r:?}");
    assert_eq!(
        r.header("content-type"),
        Some("application/problem+json"),
        "{what}: {r:?}"
    );
    let problem = r.json();
    assert_eq!(problem["status"], status, "{what}: {problem}");
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(needle),
        "{what}: {detail:?} lacks {needle:?}"
    );
}

#[tokio::test]
async fn axums_own_rejections_are_problem_details() {
    let s = TestServer::start(
        &["hello", "hostile"],
        &[("acme", &tenant(&demo_jwks(), "", 100))],
        |_| {},
    )
    .await;
    let auth = format!("Authorization: Bearer {ADMIN_TOKEN}");
    for (what, head, status, needle, allow) in [
        (
            "invalid UTF-8 in a tenant",
            "GET /t/%FF%FE/x HTTP/1.1".to_string(),
            400,
            "UTF-8",
            None,
        ),
        (
            "invalid UTF-8 in an admin path",
            format!("GET /admin/v1/tenants/%C0%AF/queues HTTP/1.1\r\n{auth}"),
            400,
            "UTF-8",
            None,
        ),
        (
            "a bad query value",
            format!("GET /admin/v1/tenants/acme/queues/q/messages?limit=abc HTTP/1.1\r\n{auth}"),
            400,
            "limit",
            None,
        ),
        (
            "POST /healthz",
            "POST /healthz HTTP/1.1\r\nContent-Length: 0".to_string(),
            405,
            "POST",
            Some("GET"),
        ),
        (
            "GET on an admin POST route",
            format!("GET /admin/v1/reload HTTP/1.1\r\n{auth}"),
            405,
            "GET",
            Some("POST"),
        ),
        (
            "DELETE on a tenant route",
            "DELETE /t/acme/hostile HTTP/1.1".to_string(),
            405,
            "DELETE",
            Some("POST"),
        ),
        (
            "an unknown route",
            "GET /nowhere HTTP/1.1".to_string(),
            404,
            "no such endpoint",
            None,
        ),
        (
            "an unknown admin route",
            format!("GET /admin/v1/nowhere HTTP/1.1\r\n{auth}"),
            404,
            "/admin/v1/nowhere",
            None,
        ),
    ] {
        let r = raw_http::send(&s.url, &head, b"", false).await;
        assert_problem(&r, status, needle, what);
        if let Some(method) = allow {
            let header = r.header("allow").unwrap_or_default();
            assert!(header.contains(method), "{what}: Allow is {header:?}");
        }
    }
    s.shutdown().await;
}

#[tokio::test]
async fn a_body_that_cannot_be_read_is_a_400_not_a_413() {
    let s = TestServer::start(
        &["hello", "hostile"],
        &[("acme", &tenant(&demo_jwks(), "", 100))],
        |c| c.max_body_kb = 1,
    )
    .await;
    let chunked = "Transfer-Encoding: chunked";
    let auth = format!("Authorization: Bearer {ADMIN_TOKEN}");
    for (what, head, body, cut) in [
        (
            "a malformed chunk size to a tenant route",
            format!("POST /t/acme/hostile HTTP/1.1\r\n{chunked}"),
            &b"zz\r\nhello\r\n0\r\n\r\n"[..],
            false,
        ),
        (
            "a malformed chunk size to the admin API",
            format!("PUT /admin/v1/tenants/acme/blobs/files/k HTTP/1.1\r\n{auth}\r\n{chunked}"),
            &b"5\r\nhello\r\nnot-hex\r\n"[..],
            false,
        ),
        (
            "a client gone before its body ended",
            "POST /t/acme/hostile HTTP/1.1\r\nContent-Length: 100".to_string(),
            &b"{\"attack\":"[..],
            true,
        ),
    ] {
        let r = raw_http::send(&s.url, &head, body, cut).await;
        assert_problem(&r, 400, "the request body could not be read: ", what);
    }
    // Over the limit is still a 413 that names the limit, chunked or not.
    let big = "x".repeat(2048);
    let chunk = format!("{:x}\r\n{big}\r\n0\r\n\r\n", big.len());
    let r = raw_http::send(
        &s.url,
        &format!("POST /t/acme/hostile HTTP/1.1\r\n{chunked}"),
        chunk.as_bytes(),
        false,
    )
    .await;
    assert_problem(&r, 413, "1024 bytes", "a chunked body over the limit");
    let r = raw_http::send(
        &s.url,
        "POST /t/acme/hostile HTTP/1.1\r\nContent-Length: 2048",
        big.as_bytes(),
        false,
    )
    .await;
    assert_problem(&r, 413, "1024 bytes", "a body over the limit");
    s.shutdown().await;
}

#[tokio::test]
async fn blob_key_conflicts_are_409_and_invalid_to_a_plugin() {
    let s = TestServer::start(
        &["hello", "hostile"],
        &[("acme", &tenant(&demo_jwks(), "", 100))],
        |_| {},
    )
    .await;
    let put = |key: &str| {
        s.client
            .put(format!("{}/admin/v1/tenants/acme/blobs/files/{key}", s.url))
            .bearer_auth(ADMIN_TOKEN)
            .body("data")
            .send()
    };
    for (first, second, named) in [("x", "x/y", "`x` is an object"), ("p/q", "p", "folder")] {
        assert_eq!(put(first).await.unwrap().status(), 200, "{first}");
        let r = put(second).await.unwrap();
        assert_eq!(r.status(), 409, "{second} after {first}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let problem: Value = r.json().await.unwrap();
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(named), "{second} after {first}: {detail}");
        assert_eq!(
            put(first).await.unwrap().status(),
            200,
            "{first} still stored"
        );
    }
    // A plugin sees `invalid` with the reason.
    let blob_put = |key: &str| {
        s.client
            .post(format!("{}/t/acme/hostile", s.url))
            .body(json!({ "attack": "blob-put", "bucket": "files", "key": key }).to_string())
            .send()
    };
    assert_eq!(blob_put("m").await.unwrap().status(), 200);
    // Under an object the plugin wrote; over the folder `p/` the admin API made.
    for key in ["m/n", "p"] {
        let problem: Value = blob_put(key).await.unwrap().json().await.unwrap();
        assert_eq!(problem["title"], "Invalid", "{key}: {problem}");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("cannot be stored"), "{key}: {detail}");
    }
    s.shutdown().await;
}
