//! Guest code cannot starve the host's I/O or another tenant: while one tenant keeps its
//! whole concurrency of invocations spinning, a neighbour's requests are answered about
//! as fast as before. Medians and p90 against the same run's baseline, with a generous
//! bound, so a loaded 2-core CI machine does not make it flaky.

use std::time::{Duration, Instant};

use orquesta::engine::Limits;
use orquesta_tests::plugin;
use orquesta_tests::server::ServeProcess;
use serde_json::json;

const CONFIG: &str = r#"
listen = "127.0.0.1:0"
data_dir = "data"
plugin_dir = "plugins"
tenant_dir = "tenants"
shutdown_grace_ms = 100
"#;

/// How long `noisy`'s invocations spin: each is cut at its timeout.
const SPIN_MS: u64 = 1500;

/// `noisy` spins on request for up to `timeout_ms`, its plugin warm or not (`warm`: its
/// `[plugins.hostile]` line); `quiet` greets.
fn setup(timeout_ms: u64, warm: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("plugins")).unwrap();
    std::fs::create_dir_all(dir.path().join("tenants")).unwrap();
    for name in ["hostile", "hello"] {
        std::fs::copy(
            plugin(name),
            dir.path().join(format!("plugins/{name}.wasm")),
        )
        .unwrap();
    }
    let noisy = format!(
        r#"
[limits]
timeout_ms = {timeout_ms}

[plugins.hostile]
source = "hostile.wasm"
{warm}

[[routes]]
method = "POST"
path = "/spin"
plugin = "hostile"
"#
    );
    let tenants = [
        ("noisy", noisy.as_str()),
        (
            "quiet",
            r#"
[plugins.hello]
source = "hello.wasm"

[[routes]]
method = "GET"
path = "/hello"
plugin = "hello"
"#,
        ),
    ];
    for (name, text) in tenants {
        std::fs::write(dir.path().join(format!("tenants/{name}.toml")), text).unwrap();
    }
    dir
}

/// Sequential greetings for up to `n` requests or `budget`: each one's latency, sorted.
async fn greetings(client: &reqwest::Client, url: &str, n: usize, budget: Duration) -> Vec<f64> {
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(n);
    while latencies.len() < n && started.elapsed() < budget {
        let sent = Instant::now();
        let r = client.get(url).send().await.expect("quiet answers");
        assert_eq!(r.status(), 200);
        r.bytes().await.expect("body");
        latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    latencies
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_spinning_its_whole_concurrency_does_not_stall_a_neighbour() {
    spinning_beside_a_neighbour(SPIN_MS, "").await;
}

/// The same attack with warm instances asked for and invocations cut at 20 ms: every
/// invocation is then a cold start (a timeout discards its instance), thousands a
/// second, and each must still start on the guest threads, not on the I/O threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_plugin_spinning_in_short_invocations_does_not_stall_a_neighbour() {
    spinning_beside_a_neighbour(20, "warm = {}").await;
}

async fn spinning_beside_a_neighbour(timeout_ms: u64, warm: &str) {
    let dir = setup(timeout_ms, warm);
    let server = ServeProcess::start(dir.path(), CONFIG, &[]);
    let client = reqwest::Client::new();
    let hello = format!("{}/t/quiet/hello?name=Ana", server.url);
    greetings(&client, &hello, 50, Duration::from_secs(30)).await;
    // Rounds alternate alone and under attack, so a machine whose load changes while
    // the test runs (other tests beside it) weighs on both alike.
    let spin = format!("{}/t/noisy/spin", server.url);
    let (mut baseline, mut attacked) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        baseline.extend(greetings(&client, &hello, 100, Duration::from_secs(10)).await);
        // The noisy tenant keeps every invocation its concurrency allows spinning.
        let attackers: Vec<_> = (0..Limits::default().concurrency)
            .map(|_| {
                let (client, url) = (reqwest::Client::new(), spin.clone());
                tokio::spawn(async move {
                    loop {
                        let body = json!({ "attack": "loop" }).to_string();
                        let _ = client.post(&url).body(body).send().await;
                    }
                })
            })
            .collect();
        // Time for the attackers to fill the tenant's slots. Nothing says when they have:
        // were they late, the round would measure less attack, never fail falsely.
        tokio::time::sleep(Duration::from_millis(500)).await;
        attacked.extend(greetings(&client, &hello, 100, Duration::from_secs(10)).await);
        attackers.iter().for_each(|a| a.abort());
        // A timer that must elapse: the aborted requests' invocations spin on until their
        // timeout, and the next baseline round must not run beside them.
        tokio::time::sleep(Duration::from_millis(timeout_ms + 300)).await;
    }
    baseline.sort_by(f64::total_cmp);
    attacked.sort_by(f64::total_cmp);
    let (base50, base90) = (percentile(&baseline, 0.5), percentile(&baseline, 0.9));
    let (hit50, hit90) = (percentile(&attacked, 0.5), percentile(&attacked, 0.9));
    let report = format!(
        "quiet tenant, ms: baseline p50 {base50:.2} p90 {base90:.2} ({} requests); \
         under attack p50 {hit50:.2} p90 {hit90:.2} ({} requests)",
        baseline.len(),
        attacked.len()
    );
    eprintln!("{report}");
    assert!(
        attacked.len() >= 200,
        "too few answers under attack: {report}"
    );
    assert!(hit50 <= base50 * 10.0 + 5.0, "{report}");
    assert!(hit90 <= base90 * 10.0 + 5.0, "{report}");
    drop(server);
}
