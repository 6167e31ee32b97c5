//! Neighbour: the HTTP benchmark's hello route of one tenant, one connection at a time,
//! alone and while another tenant keeps its whole concurrency of invocations spinning
//! (`hostile`'s `loop`, each cut at its 3 s timeout and sent again at once), in the
//! same `orquesta serve` process. Rounds alternate alone and under attack; each figure
//! is the median of the rounds.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use orquesta::engine::Limits;

use crate::Options;
use crate::http::{self, KEY, Load};
use crate::report::{Row, Target, median};
use crate::setup::{self, Process};

const ROUNDS: usize = 3;
const ROUND: Duration = Duration::from_secs(6);
/// The spinning invocations' timeout: short, so each round also sees them start again.
const SPIN_TIMEOUT_MS: u64 = 3000;

fn noisy() -> String {
    format!(
        r#"[limits]
timeout_ms = {SPIN_TIMEOUT_MS}

[plugins.hostile]
source = "hostile.wasm"

[[routes]]
method = "POST"
path = "/spin"
plugin = "hostile"
"#
    )
}

/// Clients keeping `n` spinning requests in flight until dropped.
struct Attack {
    running: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Attack {
    fn start(url: &str, n: u32) -> anyhow::Result<Attack> {
        let running = Arc::new(AtomicBool::new(true));
        let mut tasks = Vec::new();
        for _ in 0..n {
            let (client, url, running) = (setup::client()?, url.to_string(), running.clone());
            tasks.push(tokio::spawn(async move {
                while running.load(Ordering::Relaxed) {
                    let body = r#"{"attack":"loop"}"#;
                    let _ = client.post(&url).body(body).send().await;
                }
            }));
        }
        Ok(Attack { running, tasks })
    }

    /// Stops sending and waits until the last spinning invocations have timed out.
    async fn stop(self) {
        self.running.store(false, Ordering::Relaxed);
        self.tasks.iter().for_each(|t| t.abort());
        tokio::time::sleep(Duration::from_millis(SPIN_TIMEOUT_MS + 500)).await;
    }
}

pub async fn run(opts: &Options) -> anyhow::Result<Vec<Row>> {
    let root = tempfile::tempdir()?;
    let tenants = [("bench", http::tenant()), ("noisy", noisy())];
    let config = setup::write_layout(root.path(), &["bench", "hostile"], &tenants, None)?;
    let host_file = setup::write_host_file(root.path(), &config)?;
    let host = Process::serve(&host_file)?;
    let hello = format!("{}/t/bench/hello?name=Ana", host.url);
    let spin = format!("{}/t/noisy/spin", host.url);
    let concurrency = Limits::default().concurrency;
    if opts.smoke {
        // No load generator: sequential requests, alone and beside two spinners.
        let alone = sequential(&hello, 50).await?;
        let attack = Attack::start(&spin, 2)?;
        let beside = sequential(&hello, 50).await?;
        attack.stop().await;
        return Ok(vec![
            Row::new(
                "neighbour",
                "smoke, sequential, beside 2 spinners",
                beside,
                "req/s",
            )
            .against("alone", alone),
        ]);
    }
    http::wrk(&hello, Duration::from_secs(2), 1, None)?;
    let (mut alone, mut beside) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        alone.push(http::wrk(&hello, ROUND, 1, None)?);
        let attack = Attack::start(&spin, concurrency)?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        beside.push(http::wrk(&hello, ROUND, 1, None)?);
        attack.stop().await;
    }
    drop(host);
    for (name, loads) in [("alone", &alone), ("beside", &beside)] {
        let shown: Vec<String> = loads
            .iter()
            .map(|l| {
                format!(
                    "p50 {:.2} p99 {:.2} ms {:.0} req/s",
                    l.p50_ms, l.p99_ms, l.rps
                )
            })
            .collect();
        eprintln!("  {name}: {}", shown.join("; "));
    }
    let med =
        |loads: &[Load], f: fn(&Load) -> f64| median(&mut loads.iter().map(f).collect::<Vec<_>>());
    let what = |m: &str| format!("hello {m}, 1 connection, beside {concurrency} spinning");
    let base_p99 = med(&alone, |l| l.p99_ms);
    Ok(vec![
        Row::new("neighbour", what("p50"), med(&beside, |l| l.p50_ms), "ms")
            .against("alone", med(&alone, |l| l.p50_ms)),
        Row::new("neighbour", what("p99"), med(&beside, |l| l.p99_ms), "ms")
            .against("alone", base_p99)
            .target(Target::AtMost(2.0 * base_p99)),
        Row::new(
            "neighbour",
            what("requests"),
            med(&beside, |l| l.rps),
            "req/s",
        )
        .against("alone", med(&alone, |l| l.rps)),
    ])
}

async fn sequential(url: &str, n: usize) -> anyhow::Result<f64> {
    let client = setup::client()?;
    let started = Instant::now();
    for _ in 0..n {
        let answer = client.get(url).header("x-api-key", KEY).send().await?;
        if !answer.status().is_success() {
            bail!("{url}: {}", answer.status());
        }
        answer.bytes().await?;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}
