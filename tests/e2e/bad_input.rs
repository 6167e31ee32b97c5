//! The bad-input corpus (issue 21): malformed requests against the tenant routes and the
//! admin API. Whatever a client sends, the service answers without a 5xx, and every
//! refusal is `application/problem+json` with a `detail` (a 405 with `Allow` too).
//! Requests go over raw TCP, so bytes no well-behaved client sends reach the service
//! as written. To add a case, add a row to `CASES`.

use orquesta::triggers::http::auth::sha256_hex;
use orquesta_tests::raw_http;
use orquesta_tests::server::{ADMIN_TOKEN, TestServer};

/// `{auth}` in a request head becomes the admin API's `Authorization` header.
const AUTH: &str = "{auth}";
const KEY: &str = "corpus-key-51ab";
/// The service's `max_body_kb` in this test.
const MAX_BODY_KB: u32 = 4;
/// The service's `request_timeout_ms` in this test, which a stalled body runs into.
const REQUEST_TIMEOUT_MS: u64 = 2000;
/// How long a case waits for its answer: well past the request timeout.
const ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

/// A request body.
#[derive(Clone, Copy)]
enum Body {
    None,
    /// Sent with its `Content-Length`.
    Bytes(&'static [u8]),
    /// That many bytes of `x`, with their `Content-Length`.
    Huge(usize),
    /// Sent as is after `Transfer-Encoding: chunked`.
    Chunked(&'static [u8]),
    /// One well-formed chunk of that many bytes of `x`.
    HugeChunked(usize),
    /// A `Content-Length` of 1000 and these bytes; the rest never comes.
    Stall(&'static [u8]),
    /// A `Content-Length` of 1000, these bytes, and the connection half-closed.
    Cut(&'static [u8]),
}

struct Case {
    what: &'static str,
    /// Request line, then any headers (`\r\n`-separated).
    head: &'static str,
    body: Body,
    /// The status the service must answer.
    status: u16,
}

const fn case(what: &'static str, head: &'static str, body: Body, status: u16) -> Case {
    Case {
        what,
        head,
        body,
        status,
    }
}

use Body::{Bytes, Chunked, Cut, Huge, HugeChunked, None as Empty, Stall};

#[rustfmt::skip]
const CASES: &[Case] = &[
    // ---- service routes
    case("unknown route", "GET /nowhere HTTP/1.1", Empty, 404),
    case("unknown route, odd method", "OPTIONS /x/y/z HTTP/1.1", Empty, 404),
    case("POST /healthz", "POST /healthz HTTP/1.1", Bytes(b"{}"), 405),
    case("DELETE /readyz", "DELETE /readyz HTTP/1.1", Empty, 405),
    case("PUT /metrics", "PUT /metrics HTTP/1.1", Bytes(b"x"), 405),
    // ---- tenant routes: names
    case("no such tenant", "GET /t/nobody/hello HTTP/1.1", Empty, 404),
    case("tenant `..`", "GET /t/../hello HTTP/1.1", Empty, 404),
    case("tenant `%2e%2e`", "GET /t/%2e%2e/hello HTTP/1.1", Empty, 404),
    case("tenant with an encoded slash", "GET /t/acme%2F..%2Fother/hello HTTP/1.1", Empty, 404),
    case("tenant in invalid UTF-8", "GET /t/%FF%FE/hello HTTP/1.1", Empty, 400),
    case("tenant with NUL", "GET /t/ac%00me/hello HTTP/1.1", Empty, 400),
    case("route parameter with NUL", "GET /t/acme/hello/a%00 HTTP/1.1", Empty, 400),
    case("tenant of 10 KB", "GET /t/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/hello HTTP/1.1", Empty, 404),
    case("route path in invalid UTF-8", "GET /t/acme/hello/%C0%AF HTTP/1.1", Empty, 400),
    case("route path `..`", "GET /t/acme/../hello HTTP/1.1", Empty, 404),
    case("route path `%2e%2e`", "GET /t/acme/%2e%2e/admin HTTP/1.1", Empty, 404),
    // One segment as sent: the parameter's value is the decoded text, for the plugin to judge.
    case("route parameter with encoded slashes", "GET /t/acme/hello/..%2F..%2Fetc%2Fpasswd HTTP/1.1", Empty, 200),
    case("no such route", "GET /t/acme/nowhere HTTP/1.1", Empty, 404),
    case("wrong method on a route", "DELETE /t/acme/hello HTTP/1.1", Empty, 405),
    case("wrong method on a route, with a body", "PATCH /t/acme/keyed HTTP/1.1", Bytes(b"{"), 405),
    // ---- tenant routes: credentials
    case("API key missing", "POST /t/acme/keyed HTTP/1.1", Bytes(b"{}"), 401),
    case("API key wrong", "POST /t/acme/keyed HTTP/1.1\r\nx-api-key: nope", Bytes(b"{}"), 401),
    case("API key not ASCII", "POST /t/acme/keyed HTTP/1.1\r\nx-api-key: clé", Empty, 401),
    // ---- tenant routes: bodies
    case("bad JSON to a plugin that ignores it", "GET /t/acme/hello HTTP/1.1", Bytes(b"{\"name\":"), 200),
    case("invalid UTF-8 body", "GET /t/acme/hello HTTP/1.1", Bytes(b"\xFF\xFE\x00"), 200),
    case("body over max_body_kb", "POST /t/acme/hostile HTTP/1.1", Huge(8 << 10), 413),
    case("declared over max_body_kb, not sent", "POST /t/acme/hostile HTTP/1.1\r\nContent-Length: 99999999999", Empty, 413),
    case("chunked body over max_body_kb", "POST /t/acme/hostile HTTP/1.1", HugeChunked(8 << 10), 413),
    case("chunk size not hex", "POST /t/acme/hostile HTTP/1.1", Chunked(b"zz\r\nhello\r\n0\r\n\r\n"), 400),
    case("chunk shorter than its size (the rest never comes)", "POST /t/acme/hostile HTTP/1.1", Chunked(b"10\r\nabc\r\n0\r\n\r\n"), 408),
    case("body that never arrives", "POST /t/acme/hostile HTTP/1.1", Stall(b"{\"attack\""), 408),
    case("body cut short", "POST /t/acme/hostile HTTP/1.1", Cut(b"{\"attack\":"), 400),
    // ---- admin API: credentials and methods
    case("admin without a token", "GET /admin/v1/tenants HTTP/1.1", Empty, 401),
    case("admin with a wrong token", "GET /admin/v1/tenants HTTP/1.1\r\nAuthorization: Bearer wrong", Empty, 401),
    case("admin with another scheme", "GET /admin/v1/tenants HTTP/1.1\r\nAuthorization: Basic dGVzdA==", Empty, 401),
    case("admin with a bare scheme", "GET /admin/v1/tenants HTTP/1.1\r\nAuthorization: Bearer", Empty, 401),
    case("admin unknown route", "GET /admin/v1/nowhere HTTP/1.1\r\n{auth}", Empty, 404),
    case("admin wrong method", "GET /admin/v1/reload HTTP/1.1\r\n{auth}", Empty, 405),
    case("admin wrong method on plugins", "POST /admin/v1/plugins/hello HTTP/1.1\r\n{auth}", Empty, 405),
    // ---- admin API: tenant deploys
    case("tenant name `%2e%2e`", "PUT /admin/v1/tenants/%2e%2e HTTP/1.1\r\n{auth}", Bytes(b"x = 1"), 400),
    case("tenant name with an encoded slash", "PUT /admin/v1/tenants/..%2F..%2Fevil HTTP/1.1\r\n{auth}", Bytes(b"x = 1"), 400),
    case("tenant file not UTF-8", "PUT /admin/v1/tenants/zeta HTTP/1.1\r\n{auth}", Bytes(b"\xff\xfe"), 400),
    case("tenant file not TOML", "PUT /admin/v1/tenants/zeta HTTP/1.1\r\n{auth}", Bytes(b"[plugins"), 400),
    case("admin wrong method on openapi", "POST /admin/v1/openapi.json HTTP/1.1", Empty, 405),
    // ---- admin API: plugins
    case("plugin name `..`", "PUT /admin/v1/plugins/.. HTTP/1.1\r\n{auth}", Bytes(b"x"), 400),
    case("plugin name `%2e%2e`", "PUT /admin/v1/plugins/%2e%2e HTTP/1.1\r\n{auth}", Bytes(b"x"), 400),
    case("plugin name with an encoded slash", "PUT /admin/v1/plugins/..%2F..%2Fevil HTTP/1.1\r\n{auth}", Bytes(b"x"), 400),
    case("plugin name in invalid UTF-8", "PUT /admin/v1/plugins/%FF HTTP/1.1\r\n{auth}", Bytes(b"x"), 400),
    case("plugin that is not wasm", "PUT /admin/v1/plugins/hello HTTP/1.1\r\n{auth}", Bytes(b"not wasm"), 400),
    case("plugin upload declared past the limit", "PUT /admin/v1/plugins/hello HTTP/1.1\r\n{auth}\r\nContent-Length: 999999999999", Empty, 413),
    case("plugin upload with a bad chunk", "PUT /admin/v1/plugins/hello HTTP/1.1\r\n{auth}", Chunked(b"4\r\n\0asm\r\nxyz\r\n"), 400),
    // ---- admin API: tenants and queues
    case("queues of tenant `..`", "GET /admin/v1/tenants/../queues HTTP/1.1\r\n{auth}", Empty, 404),
    case("queues of tenant `%2e%2e`", "GET /admin/v1/tenants/%2e%2e/queues HTTP/1.1\r\n{auth}", Empty, 404),
    case("queues of a tenant in invalid UTF-8", "GET /admin/v1/tenants/%C0%AF/queues HTTP/1.1\r\n{auth}", Empty, 400),
    case("queue `..`", "GET /admin/v1/tenants/acme/queues/%2e%2e/messages HTTP/1.1\r\n{auth}", Empty, 404),
    case("queue with an encoded slash", "POST /admin/v1/tenants/acme/queues/q%2F..%2Fx/messages HTTP/1.1\r\n{auth}", Bytes(b"{\"body\":\"x\"}"), 404),
    case("peek limit not a number", "GET /admin/v1/tenants/acme/queues/q/messages?limit=abc HTTP/1.1\r\n{auth}", Empty, 400),
    case("peek limit negative", "GET /admin/v1/tenants/acme/queues/q/messages?limit=-1 HTTP/1.1\r\n{auth}", Empty, 400),
    case("peek limit past u32", "GET /admin/v1/tenants/acme/queues/q/messages?limit=99999999999 HTTP/1.1\r\n{auth}", Empty, 400),
    case("peek query in invalid UTF-8", "GET /admin/v1/tenants/acme/queues/q/messages?limit=%FF HTTP/1.1\r\n{auth}", Empty, 400),
    case("send bad JSON", "POST /admin/v1/tenants/acme/queues/q/messages HTTP/1.1\r\n{auth}", Bytes(b"{"), 400),
    case("send empty body", "POST /admin/v1/tenants/acme/queues/q/messages HTTP/1.1\r\n{auth}", Empty, 400),
    case("send a JSON array", "POST /admin/v1/tenants/acme/queues/q/messages HTTP/1.1\r\n{auth}", Bytes(b"[]"), 400),
    case("send wrong types", "POST /admin/v1/tenants/acme/queues/q/messages HTTP/1.1\r\n{auth}", Bytes(b"{\"body\":\"x\",\"delay_seconds\":\"soon\"}"), 400),
    case("send a negative delay", "POST /admin/v1/tenants/acme/queues/q/messages HTTP/1.1\r\n{auth}", Bytes(b"{\"body\":\"x\",\"delay_seconds\":-1}"), 400),
    case("send attributes that are not strings", "POST /admin/v1/tenants/acme/queues/q/messages HTTP/1.1\r\n{auth}", Bytes(b"{\"body\":\"x\",\"attributes\":{\"a\":1}}"), 400),
    case("send an unknown field", "POST /admin/v1/tenants/acme/queues/q/messages HTTP/1.1\r\n{auth}", Bytes(b"{\"body\":\"x\",\"bogus\":true}"), 400),
    case("send messages that are not a list", "POST /admin/v1/tenants/acme/queues/q/messages HTTP/1.1\r\n{auth}", Bytes(b"{\"messages\":\"x\"}"), 400),
    case("send invalid UTF-8", "POST /admin/v1/tenants/acme/queues/q/messages HTTP/1.1\r\n{auth}", Bytes(b"{\"body\":\"\xFF\"}"), 400),
    case("send with a bad chunk", "POST /admin/v1/tenants/acme/queues/q/messages HTTP/1.1\r\n{auth}", Chunked(b"nope\r\n"), 400),
    case("send cut short", "POST /admin/v1/tenants/acme/queues/q/messages HTTP/1.1\r\n{auth}", Cut(b"{\"body\":"), 400),
    case("redrive queue `..`", "POST /admin/v1/tenants/acme/queues/../redrive HTTP/1.1\r\n{auth}", Empty, 404),
    // ---- admin API: topics, buses, schedules
    case("publish bad JSON", "POST /admin/v1/tenants/acme/topics/t/messages HTTP/1.1\r\n{auth}", Bytes(b"{]"), 400),
    case("publish wrong types", "POST /admin/v1/tenants/acme/topics/t/messages HTTP/1.1\r\n{auth}", Bytes(b"{\"body\":\"x\",\"subject\":7}"), 400),
    case("publish a NUL subject", "POST /admin/v1/tenants/acme/topics/t/messages HTTP/1.1\r\n{auth}", Bytes(b"{\"body\":\"a\\u0000\",\"subject\":\"\\u0000\"}"), 400),
    case("event with a NUL source", "POST /admin/v1/tenants/acme/buses/default/events HTTP/1.1\r\n{auth}", Bytes(b"{\"source\":\"x\\u0000\",\"detail_type\":\"\\u0000\"}"), 200),
    case("publish to topic `%2e%2e`", "POST /admin/v1/tenants/acme/topics/%2e%2e/messages HTTP/1.1\r\n{auth}", Bytes(b"{\"body\":\"x\"}"), 404),
    case("event bad JSON", "POST /admin/v1/tenants/acme/buses/default/events HTTP/1.1\r\n{auth}", Bytes(b"nope"), 400),
    case("event wrong types", "POST /admin/v1/tenants/acme/buses/default/events HTTP/1.1\r\n{auth}", Bytes(b"{\"source\":1,\"detail_type\":[]}"), 400),
    case("event to bus `..`", "POST /admin/v1/tenants/acme/buses/../events HTTP/1.1\r\n{auth}", Bytes(b"{}"), 404),
    case("schedules of tenant `%2e%2e`", "GET /admin/v1/tenants/%2e%2e/schedules HTTP/1.1\r\n{auth}", Empty, 404),
    // ---- admin API: blobs
    case("blob bucket `..`", "PUT /admin/v1/tenants/acme/blobs/../k HTTP/1.1\r\n{auth}", Bytes(b"x"), 400),
    case("blob bucket with an encoded slash", "PUT /admin/v1/tenants/acme/blobs/..%2F..%2Fx/k HTTP/1.1\r\n{auth}", Bytes(b"x"), 400),
    case("blob key of dots, stored inside the bucket", "PUT /admin/v1/tenants/acme/blobs/files/..%2F..%2Fescape HTTP/1.1\r\n{auth}", Bytes(b"x"), 200),
    case("blob key with an empty segment", "PUT /admin/v1/tenants/acme/blobs/files/a//b HTTP/1.1\r\n{auth}", Bytes(b"x"), 400),
    case("blob key in invalid UTF-8", "GET /admin/v1/tenants/acme/blobs/files/%FF HTTP/1.1\r\n{auth}", Empty, 400),
    case("blob of tenant `%2e%2e`", "GET /admin/v1/tenants/%2e%2e/blobs/files/k HTTP/1.1\r\n{auth}", Empty, 404),
    case("blob missing", "GET /admin/v1/tenants/acme/blobs/files/none HTTP/1.1\r\n{auth}", Empty, 404),
    case("blob with a bad chunk", "PUT /admin/v1/tenants/acme/blobs/files/k HTTP/1.1\r\n{auth}", Chunked(b"1\r\nab\r\n"), 400),
    // ---- admin API: workflows and executions
    case("start with bad JSON", "POST /admin/v1/tenants/acme/workflows/w/executions HTTP/1.1\r\n{auth}", Bytes(b"{\"input\":"), 400),
    case("start with a name of the wrong type", "POST /admin/v1/tenants/acme/workflows/w/executions HTTP/1.1\r\n{auth}", Bytes(b"{\"name\":5}"), 400),
    case("start workflow `%2e%2e`", "POST /admin/v1/tenants/acme/workflows/%2e%2e/executions HTTP/1.1\r\n{auth}", Bytes(b"{}"), 404),
    case("start workflow in invalid UTF-8", "POST /admin/v1/tenants/acme/workflows/%FF/executions HTTP/1.1\r\n{auth}", Bytes(b"{}"), 400),
    case("executions with a bad limit", "GET /admin/v1/tenants/acme/executions?limit=x HTTP/1.1\r\n{auth}", Empty, 400),
    case("execution `..`", "GET /admin/v1/tenants/acme/executions/.. HTTP/1.1\r\n{auth}", Empty, 404),
    case("execution `%2e%2e` history", "GET /admin/v1/tenants/acme/executions/%2e%2e/history HTTP/1.1\r\n{auth}", Empty, 404),
    case("execution id with NUL", "GET /admin/v1/tenants/acme/executions/a%00b HTTP/1.1\r\n{auth}", Empty, 400),
    case("execution history id with NUL", "GET /admin/v1/tenants/acme/executions/%00/history HTTP/1.1\r\n{auth}", Empty, 400),
    case("stop execution with NUL", "POST /admin/v1/tenants/acme/executions/%00/stop HTTP/1.1\r\n{auth}", Bytes(b"{}"), 400),
    case("send a NUL body", "POST /admin/v1/tenants/acme/queues/q/messages HTTP/1.1\r\n{auth}", Bytes(b"{\"body\":\"a\\u0000b\",\"attributes\":{\"k\\u0000\":\"v\"}}"), 400),
    case("executions filtered by a NUL workflow", "GET /admin/v1/tenants/acme/executions?workflow=%00 HTTP/1.1\r\n{auth}", Empty, 400),
    case("execution id in invalid UTF-8", "GET /admin/v1/tenants/acme/executions/%FF HTTP/1.1\r\n{auth}", Empty, 400),
    case("stop with bad JSON", "POST /admin/v1/tenants/acme/executions/nope/stop HTTP/1.1\r\n{auth}", Bytes(b"{"), 400),
];

fn tenant() -> String {
    format!(
        r#"
[plugins.hello]
source = "hello.wasm"

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

[[api_keys]]
name = "partner"
hash = "sha256:{}"

[queues.q]
[topics.t]
# Raw delivery: the body as published reaches the queue, so a NUL in it is refused (SNS's
# envelope would carry it escaped, as a bus event's does).
subscriptions = [{{ queue = "q", raw_message_delivery = true }}]
[buses.default]
rules = [{{ name = "all", pattern = {{ source = ["x"] }}, targets = [{{ queue = "q" }}] }}]
[workflows.w]
definition = "w.asl.json"
"#,
        sha256_hex(KEY)
    )
}

/// The request's bytes after its head, and whether to half-close after them.
fn with_body(head: &str, body: Body) -> (String, Vec<u8>, bool) {
    let length = |n: usize| format!("{head}\r\nContent-Length: {n}");
    match body {
        Body::None if head.contains("Content-Length") => (head.to_string(), vec![], false),
        Body::None => (length(0), vec![], false),
        Body::Bytes(b) => (length(b.len()), b.to_vec(), false),
        Body::Huge(n) => (length(n), vec![b'x'; n], false),
        Body::Chunked(b) => (
            format!("{head}\r\nTransfer-Encoding: chunked"),
            b.to_vec(),
            false,
        ),
        Body::HugeChunked(n) => (
            format!("{head}\r\nTransfer-Encoding: chunked"),
            format!("{n:x}\r\n{}\r\n0\r\n\r\n", "x".repeat(n)).into_bytes(),
            false,
        ),
        Body::Stall(b) => (length(1000), b.to_vec(), false),
        Body::Cut(b) => (length(1000), b.to_vec(), true),
    }
}

#[tokio::test]
async fn malformed_requests_get_problem_details_and_never_a_5xx() {
    run_corpus(None).await;
}

/// The same corpus on PostgreSQL, whose text columns refuse bytes SQLite takes (NUL).
#[tokio::test]
#[cfg_attr(no_postgres, ignore = "ORQUESTA_TEST_POSTGRES_URL is not set")]
async fn malformed_requests_on_postgres_get_problem_details_and_never_a_5xx() {
    run_corpus(Some(orquesta_tests::db::postgres())).await;
}

async fn run_corpus(store: Option<String>) {
    let s = TestServer::start(&["hello", "hostile"], &[], |c| {
        c.store = store;
        c.max_body_kb = MAX_BODY_KB;
        c.request_timeout_ms = REQUEST_TIMEOUT_MS;
        std::fs::create_dir_all(&c.tenant_dir).unwrap();
        let definition = r#"{"StartAt":"Done","States":{"Done":{"Type":"Pass","End":true}}}"#;
        std::fs::write(c.tenant_dir.join("w.asl.json"), definition).unwrap();
    })
    .await;
    s.write_tenant("acme", &tenant());
    let state = s.reload().await;
    assert_eq!(state["tenants"][0]["serving"], true, "{state}");

    let auth = format!("Authorization: Bearer {ADMIN_TOKEN}");
    let mut wrong = Vec::new();
    for case in CASES {
        let head = case.head.replace(AUTH, &auth);
        let (head, body, cut) = with_body(&head, case.body);
        let r = match raw_http::try_send(&s.url, &head, &body, cut, ANSWER_WITHIN).await {
            Ok(r) => r,
            Err(e) => {
                wrong.push(format!("{}: {e}", case.what));
                continue;
            }
        };
        let problem = r.json();
        let detail = problem["detail"].as_str().unwrap_or_default();
        let mut faults = Vec::new();
        if r.status >= 500 {
            faults.push("a 5xx".to_string());
        }
        if r.status != case.status {
            faults.push(format!("status {} instead of {}", r.status, case.status));
        }
        if r.status >= 400 {
            if r.header("content-type") != Some("application/problem+json") {
                faults.push("not problem+json".into());
            }
            if detail.trim().is_empty() {
                faults.push("no detail".into());
            }
            if problem["status"] != r.status {
                faults.push("the document's status differs".into());
            }
        }
        if r.status == 405 && r.header("allow").is_none_or(str::is_empty) {
            faults.push("a 405 without Allow".into());
        }
        if !faults.is_empty() {
            wrong.push(format!("{}: {} ({r:?})", case.what, faults.join(", ")));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases went wrong:\n{}",
        wrong.len(),
        CASES.len(),
        wrong.join("\n")
    );
    s.shutdown().await;
}
