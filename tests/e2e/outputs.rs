//! Everything the host converts or buffers for a plugin is capped (issue 20, items 6, 9,
//! 10 and 11): results at what they cost once converted, failures, metric labels, log
//! lines, and the headers and status a plugin answers with.

use std::time::{Duration, Instant};

use orquesta_tests::plugin;
use orquesta_tests::server::{ServeProcess, TestServer};
use orquesta_tests::wait::wait_for;
use serde_json::{Value, json};

const CONFIG: &str = r#"
listen = "127.0.0.1:0"
data_dir = "data"
plugin_dir = "plugins"
tenant_dir = "tenants"
"#;

/// A directory for `orquesta serve` with the hostile plugin and tenant `acme` (`toml`).
fn setup(toml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("plugins")).unwrap();
    std::fs::create_dir_all(dir.path().join("tenants")).unwrap();
    std::fs::copy(plugin("hostile"), dir.path().join("plugins/hostile.wasm")).unwrap();
    std::fs::write(dir.path().join("tenants/acme.toml"), toml).unwrap();
    dir
}

/// Tenant `acme`: plugin NAME (the hostile component) at `POST /NAME`, for each name.
fn tenant(limits: &str, plugins: &[&str]) -> String {
    let mut toml = format!("[limits]\n{limits}\n");
    for name in plugins {
        toml.push_str(&format!(
            "[plugins.{name}]\nsource = \"hostile.wasm\"\n\
             [[routes]]\nmethod = \"POST\"\npath = \"/{name}\"\nplugin = \"{name}\"\n"
        ));
    }
    toml
}

async fn post(url: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .body(body.to_string())
        .send()
        .await
        .expect("the host answers")
}

async fn metrics_text(server: &ServeProcess) -> String {
    reqwest::get(format!("{}/metrics", server.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// A figure from `/proc/PID/status`, in KiB.
fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

#[tokio::test]
async fn a_batch_of_millions_of_empty_ids_is_refused_quickly_in_bounded_memory() {
    // Room for the guest to build 3 million ids (72 MB as Rust strings).
    let dir = setup(&tenant("memory_mb = 256", &["hostile"]));
    let server = ServeProcess::start(dir.path(), CONFIG, &[("ORQUESTA_LOG", "warn")]);
    let url = format!("{}/t/acme/hostile", server.url);
    let r = post(&url, json!({ "attack": "nap", "ms": 1 })).await;
    assert_eq!(r.status(), 200);
    let baseline = proc_status_kib(server.pid(), "VmRSS");

    // Two at once, as the attack ran.
    let started = Instant::now();
    let attack = json!({ "attack": "batch", "count": 3_000_000 });
    let (a, b) = tokio::join!(post(&url, attack.clone()), post(&url, attack));
    let elapsed = started.elapsed();
    for r in [a, b] {
        assert_eq!(r.status(), 500);
        let problem: Value = r.json().await.unwrap();
        assert_eq!(problem["title"], "output-too-large", "{problem}");
    }
    assert!(elapsed < Duration::from_secs(15), "took {elapsed:?}");
    let peak = proc_status_kib(server.pid(), "VmHWM");
    let grew_mib = peak.saturating_sub(baseline) / 1024;
    println!(
        "VmRSS before {} MiB, peak {} MiB",
        baseline / 1024,
        peak / 1024
    );
    // Each attack holds its guest's memory and the lifted list (24 bytes an id); the
    // JSON conversion the cap now refuses took 4 GB each.
    assert!(grew_mib < 1024, "the host grew by {grew_mib} MiB");
    // The host still serves.
    let r = post(&url, json!({ "attack": "nap", "ms": 1 })).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn failures_are_capped_in_answers_and_in_metric_labels() {
    let dir = setup(&tenant("memory_mb = 128", &["hostile"]));
    let server = ServeProcess::start(dir.path(), CONFIG, &[("ORQUESTA_LOG", "warn")]);
    let url = format!("{}/t/acme/hostile", server.url);

    // A 10 MB failure name is more than the output cap: refused, with a short answer.
    let r = post(
        &url,
        json!({ "attack": "failure", "error_bytes": 10 << 20 }),
    )
    .await;
    assert_eq!(r.status(), 500);
    let body = r.text().await.unwrap();
    assert!(body.len() < 1024, "a {}-byte answer", body.len());
    let problem: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["title"], "output-too-large", "{problem}");

    // A 1 MB cause fits the output cap but not the cause cap.
    let r = post(
        &url,
        json!({ "attack": "failure", "tag": "Big", "error_bytes": 0, "cause_bytes": 1 << 20 }),
    )
    .await;
    assert_eq!(r.status(), 500);
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["title"], "Big");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.len() <= 33 << 10, "a {}-byte cause", detail.len());
    assert!(
        detail.contains("truncated"),
        "{}",
        &detail[detail.len() - 80..]
    );

    // 200 failures with distinct 100 KB names.
    let before = metrics_text(&server).await.len();
    for i in 0..200 {
        let r = post(
            &url,
            json!({ "attack": "failure", "tag": format!("F{i}-"), "error_bytes": 100_000 }),
        )
        .await;
        assert_eq!(r.status(), 500);
        let body = r.text().await.unwrap();
        assert!(body.len() < 1024, "a {}-byte answer", body.len());
        let problem: Value = serde_json::from_str(&body).unwrap();
        let title = problem["title"].as_str().unwrap();
        assert!(title.starts_with(&format!("F{i}-EEE")), "{title}");
        assert!(title.len() <= 256, "a {}-byte error name", title.len());
    }
    // Requests to tenants that do not exist, with long names a client chose.
    for i in 0..200 {
        let r = reqwest::get(format!("{}/t/{i}{}/x", server.url, "n".repeat(1000)))
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
    }
    let text = metrics_text(&server).await;
    println!("/metrics: {before} bytes before, {} after", text.len());
    assert!(
        text.len() < before + 8 * 1024,
        "/metrics grew from {before} to {} bytes",
        text.len()
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("orquesta_invocation_errors_total")
                && l.contains("error=\"other\"")),
        "failure names past the per-plugin cap are counted as `other`:\n{text}"
    );
}

/// Lines of `logs` that contain `needle`.
fn count_lines(logs: &str, needle: &str) -> usize {
    logs.lines().filter(|l| l.contains(needle)).count()
}

/// The server's logs through their last complete line, once one of those lines is
/// `marker`: the host logs in order, so everything logged before it has been read.
async fn logs_through(server: &ServeProcess, what: &str, marker: impl Fn(&str) -> bool) -> String {
    wait_for(what, Duration::from_secs(10), async || {
        let logs = server.logs();
        let complete = &logs[..logs.rfind('\n').map_or(0, |end| end + 1)];
        complete.lines().any(&marker).then(|| complete.to_string())
    })
    .await
}

/// Has plugin `route` of tenant `acme` log one line, `FLOOD 0`, and returns the logs
/// through it.
async fn logs_after_a_marker_from(server: &ServeProcess, route: &str) -> String {
    let r = post(
        &format!("{}/t/acme/{route}", server.url),
        json!({ "attack": "log-flood", "lines": 1 }),
    )
    .await;
    assert_eq!(r.status(), 204);
    let plugin = format!("plugin={route}");
    logs_through(server, &format!("the marker line of {route}"), |l| {
        l.contains("FLOOD 0") && l.contains(&plugin)
    })
    .await
}

#[tokio::test]
async fn log_lines_are_truncated_and_rate_limited() {
    let dir = setup(&tenant("memory_mb = 256", &["big", "flood", "stdout"]));
    let server = ServeProcess::start(dir.path(), CONFIG, &[]);
    let base = format!("{}/t/acme", server.url);

    // One 50 MB line.
    let r = post(&format!("{base}/big"), json!({ "attack": "log-line" })).await;
    assert_eq!(r.status(), 204);
    let logs = logs_through(&server, "the big line", |l| l.contains("BIGLINE")).await;
    let line = logs
        .lines()
        .find(|l| l.contains("BIGLINE"))
        .expect("the line is logged");
    assert!(line.len() < 20 << 10, "a {}-byte line", line.len());
    assert!(line.contains("truncated"), "{}", &line[line.len() - 100..]);
    assert!(logs.len() < 1 << 20, "{} bytes of logs", logs.len());

    // 200k lines in a burst through the log capability.
    let started = Instant::now();
    let r = post(&format!("{base}/flood"), json!({ "attack": "log-flood" })).await;
    assert_eq!(r.status(), 204);
    // Six invocations' worth of stdout (under its 64 KiB capture), a log line per line.
    for _ in 0..6 {
        let r = post(
            &format!("{base}/stdout"),
            json!({ "attack": "log-flood", "lines": 5_000, "stream": "stdout" }),
        )
        .await;
        assert_eq!(r.status(), 204);
    }
    let seconds = started.elapsed().as_secs_f64();
    // From another plugin, so no limit of the two measured drops it.
    let logs = logs_after_a_marker_from(&server, "big").await;
    let logged = |plugin: &str| {
        logs.lines()
            .filter(|l| l.contains("FLOOD ") && l.contains(&format!("plugin={plugin}")))
            .count()
    };
    // Each plugin: its burst, then its rate for the time the burst took.
    let bound = 1000 + (1000.0 * seconds) as usize;
    let (flood, stdout) = (logged("flood"), logged("stdout"));
    println!("{flood} + {stdout} lines of 200,000 + 30,000 logged in {seconds:.2} s");
    assert!(flood > 0 && flood <= bound, "{flood} lines logged");
    assert!(stdout > 0 && stdout <= bound, "{stdout} lines logged");
    let summaries = count_lines(&logs, "log lines dropped");
    assert!(
        (1..=2 + seconds as usize / 5).contains(&summaries),
        "{summaries} summaries"
    );
    let metrics = metrics_text(&server).await;
    let dropped: f64 = metrics
        .lines()
        .find(|l| {
            l.starts_with("orquesta_log_lines_dropped_total") && l.contains("plugin=\"flood\"")
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no dropped-lines count for `flood`:\n{metrics}"));
    assert_eq!(dropped as usize, 200_000 - flood);
}

#[tokio::test]
async fn log_text_cannot_forge_lines_or_escape_codes() {
    let dir = setup(&tenant("", &["hostile"]));
    let server = ServeProcess::start(dir.path(), CONFIG, &[]);
    let r = post(
        &format!("{}/t/acme/hostile", server.url),
        json!({ "attack": "log-forge" }),
    )
    .await;
    assert_eq!(r.status(), 204);
    let logs = logs_after_a_marker_from(&server, "hostile").await;
    // Each forged part stays on the line of the call that wrote it.
    let message = logs
        .lines()
        .find(|l| l.contains("honest"))
        .expect("the log call's line");
    for part in ["FORGED-MESSAGE", "FORGED-CR", "FORGED-KEY", "FORGED-VALUE"] {
        assert!(message.contains(part), "{part} is not on {message:?}");
    }
    let stdout = logs
        .lines()
        .find(|l| l.contains("stdout") && l.contains("FORGED-STDOUT"))
        .unwrap_or_else(|| panic!("stdout's line holds all it wrote:\n{logs}"));
    assert_eq!(count_lines(&logs, "FORGED"), 2, "{logs}");
    for line in [message, stdout] {
        assert!(!line.contains('\r') && !line.contains('\x07'), "{line:?}");
    }
    for code in ["\x1b[2J", "\x1b[38;5;196m", "\x1b[2K"] {
        assert!(!logs.contains(code), "{code:?} reached the logs");
    }
}

const HEADERS_TENANT: &str = r#"
[plugins.hostile]
source = "hostile.wasm"

[[routes]]
method = "POST"
path = "/hostile"
plugin = "hostile"
"#;

async fn http_server() -> TestServer {
    let cookies = format!("[http]\nallow_set_cookie = true\n{HEADERS_TENANT}");
    TestServer::start(
        &["hostile"],
        &[("acme", HEADERS_TENANT), ("own-origin", &cookies)],
        |_| {},
    )
    .await
}

#[tokio::test]
async fn plugins_cannot_set_cookies_or_connection_headers() {
    let s = http_server().await;
    let headers = json!([
        ["set-cookie", "session=forged; Path=/"],
        ["Set-Cookie", "admin=x; Path=/admin"],
        ["clear-site-data", "\"cookies\""],
        ["connection", "close, x-private"],
        ["x-private", "hop"],
        ["keep-alive", "timeout=999"],
        ["proxy-connection", "keep-alive"],
        ["transfer-encoding", "chunked"],
        ["upgrade", "h2c"],
        ["te", "trailers"],
        ["trailer", "x-after"],
        ["content-length", "1"],
        ["x-kept", "yes"],
        ["content-type", "text/plain"],
    ]);
    let ask = json!({ "attack": "http-response", "status": 201, "headers": headers, "body": "all of it" });
    let r = s
        .client
        .post(format!("{}/t/acme/hostile", s.url))
        .body(ask.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let got = r.headers().clone();
    assert_eq!(got["x-kept"], "yes");
    assert_eq!(got["content-type"], "text/plain");
    for name in [
        "set-cookie",
        "clear-site-data",
        "x-private",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
        "te",
        "trailer",
    ] {
        assert!(!got.contains_key(name), "{name} passed: {got:?}");
    }
    assert_eq!(r.text().await.unwrap(), "all of it");

    // A tenant on an origin of its own may set cookies; connection headers stay out.
    let r = s
        .client
        .post(format!("{}/t/own-origin/hostile", s.url))
        .body(ask.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let cookies: Vec<_> = r.headers().get_all("set-cookie").iter().collect();
    assert_eq!(cookies.len(), 2, "{:?}", r.headers());
    assert!(!r.headers().contains_key("upgrade"));
    assert_eq!(r.text().await.unwrap(), "all of it");
    s.shutdown().await;
}

#[tokio::test]
async fn an_impossible_status_or_too_many_headers_is_a_bad_gateway() {
    let s = http_server().await;
    let url = format!("{}/t/acme/hostile", s.url);
    let many: Vec<Value> = (0..40_000)
        .map(|i| json!([format!("x-h{i}"), "v"]))
        .collect();
    let cases = [
        (json!({ "attack": "http-response", "status": 101 }), "101"),
        (json!({ "attack": "http-response", "status": 100 }), "100"),
        (json!({ "attack": "http-response", "status": 199 }), "199"),
        (json!({ "attack": "http-response", "status": 0 }), "0"),
        (json!({ "attack": "http-response", "status": 600 }), "600"),
        (json!({ "attack": "http-response", "status": 1000 }), "1000"),
        (
            json!({ "attack": "http-response", "headers": many }),
            "40000 headers",
        ),
    ];
    for (ask, says) in cases {
        let r = s.client.post(&url).body(ask.to_string()).send().await;
        let r = r.unwrap_or_else(|e| panic!("{says}: no answer: {e}"));
        assert_eq!(r.status(), 502, "{says}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let problem: Value = r.json().await.unwrap();
        assert_eq!(problem["title"], "invalid-output", "{says}: {problem}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(says), "{says}: {detail}");
    }
    // An ordinary status still passes.
    let r = s
        .client
        .post(&url)
        .body(json!({ "attack": "http-response", "status": 299 }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 299);
    s.shutdown().await;
}

#[tokio::test]
async fn a_workflow_keeps_a_failure_capped_in_its_history() {
    let tenant = r#"
[plugins.hostile]
source = "hostile.wasm"

[workflows.fails]
definition = "fails.asl.json"
"#;
    let definition = json!({"StartAt": "Fail", "States": {"Fail": {
        "Type": "Task", "Resource": "hostile", "End": true,
        "Parameters": {"attack": "failure", "tag": "Wf", "error_bytes": 100_000, "cause_bytes": 1 << 20}
    }}});
    let s = TestServer::start(&["hostile"], &[("acme", tenant)], |c| {
        std::fs::create_dir_all(&c.tenant_dir).unwrap();
        std::fs::write(c.tenant_dir.join("fails.asl.json"), definition.to_string()).unwrap();
    })
    .await;
    let admin = orquesta_tests::server::WorkflowAdmin::new(
        &s.url,
        "acme",
        orquesta_tests::server::ADMIN_TOKEN,
    );
    let id = admin.start("fails", json!({})).await;
    let done = admin.finished(&id, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "FAILED");
    let error = done["error"].as_str().unwrap();
    assert!(
        error.starts_with("WfEEE") && error.len() <= 256,
        "{}",
        error.len()
    );
    let cause = done["cause"].as_str().unwrap();
    assert!(cause.len() <= 32 << 10, "a {}-byte cause", cause.len());
    let history = Value::Array(admin.history(&id).await).to_string();
    assert!(history.contains("TaskFailed"), "{history:.300}");
    assert!(
        history.len() < 100 << 10,
        "a {}-byte history",
        history.len()
    );
    s.shutdown().await;
}

/// Topic and bus `log` targets write at the tenant's `limits.log_lines_per_s`, as its
/// plugins' own lines do: a plugin publishing in a loop cannot flood the host's log.
#[tokio::test]
async fn log_targets_of_topics_and_buses_are_rate_limited() {
    let toml = r#"
[limits]
log_lines_per_s = 5
[plugins.hostile]
source = "hostile.wasm"
allow = { topics = ["news"], buses = ["default"] }
[[routes]]
method = "POST"
path = "/hostile"
plugin = "hostile"
[topics.news]
subscriptions = [{ log = true }]
[[buses.default.rules]]
name = "all"
pattern = { source = ["flood"] }
targets = [{ log = true }]
"#;
    let dir = setup(toml);
    let server = ServeProcess::start(dir.path(), CONFIG, &[]);
    let url = format!("{}/t/acme/hostile", server.url);
    let sent = 60;
    let started = Instant::now();
    for i in 0..sent {
        let r = post(
            &url,
            json!({ "attack": "publish", "topic": "news", "body": i }),
        )
        .await;
        assert_eq!(r.status(), 200, "publish {i}");
        let r = post(
            &url,
            json!({ "attack": "put-event", "bus": "default", "source": "flood",
                    "detail_type": "Flood", "detail": { "i": i } }),
        )
        .await;
        assert_eq!(r.status(), 200, "put-event {i}");
    }
    let seconds = started.elapsed().as_secs_f64();
    // Log targets are written before publish and put-event answer: every line that will
    // be written is written (or its drop counted) by now.
    let metrics = metrics_text(&server).await;
    let dropped: f64 = metrics
        .lines()
        .find(|l| {
            l.starts_with("orquesta_log_lines_dropped_total")
                && l.contains("plugin=\"(log targets)\"")
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no dropped-lines count for log targets:\n{metrics}"));
    // The child's log reaches its file a little after the line is written.
    let deadline = Instant::now() + Duration::from_secs(10);
    let written = loop {
        let logs = server.logs();
        let written = count_lines(&logs, "topic message") + count_lines(&logs, "bus event");
        if written + dropped as usize >= 2 * sent || Instant::now() > deadline {
            break written;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    println!(
        "{written} log-target lines of {} in {seconds:.2} s",
        2 * sent
    );
    // The burst (one second's lines), then the rate for the time the sends took.
    assert!(written >= 1, "no log-target line at all");
    assert!(
        written <= 5 + (5.0 * seconds).ceil() as usize,
        "{written} lines in {seconds:.2} s"
    );
    assert_eq!(
        written + dropped as usize,
        2 * sent,
        "every line written or counted"
    );
}
