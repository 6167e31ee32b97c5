//! Soak: an `orquesta serve` process answering the HTTP benchmark's route at half the peak
//! rate (the peak measured by `wrk` in the same run) for 5 minutes, with nothing scraping
//! `/metrics`; its RSS at the start and at the end. Memory that grows with the requests
//! served (histogram samples no one drains, caches without a bound) shows here.

use std::time::{Duration, Instant};

use anyhow::bail;

use crate::Options;
use crate::http::{self, KEY};
use crate::report::{Row, Target};
use crate::setup::{self, Process};

/// The recorded run; `--smoke` runs seconds.
const SOAK: Duration = Duration::from_secs(300);
/// Before the first RSS reading: pools, caches and the allocator's arenas fill up.
const WARM_UP: Duration = Duration::from_secs(20);
/// Paced connections: each sends one request, then waits its share of the interval.
const CONNECTIONS: u32 = 64;
/// The growth the soak is held to.
const MAX_GROWTH: f64 = 0.05;

pub async fn run(opts: &Options) -> anyhow::Result<Vec<Row>> {
    let root = tempfile::tempdir()?;
    let config = setup::write_layout(root.path(), &["bench"], &[("bench", http::tenant())], None)?;
    let host_file = setup::write_host_file(root.path(), &config)?;
    let host = Process::serve(&host_file)?;
    let url = format!("{}/t/bench/hello?name=Ana", host.url);
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    let (peak, rate, start, end, soaked) = if opts.smoke {
        // No load generator: a few seconds of paced requests, for show only.
        let soak = Duration::from_secs(2);
        paced_requests(&url, 100.0, soak).await?;
        let (start, _) = setup::rss(host.pid())?;
        let rate = paced_requests(&url, 100.0, soak).await?;
        let (end, _) = setup::rss(host.pid())?;
        (rate, rate, start, end, soak)
    } else {
        let peak = http::wrk(&url, Duration::from_secs(5), 64, None)?.rps;
        let delay_ms = (f64::from(CONNECTIONS) * 1000.0 / (peak / 2.0))
            .floor()
            .max(1.0);
        let script = root.path().join("pace.lua");
        // wrk waits `delay()` ms before each connection's next request.
        std::fs::write(
            &script,
            format!("function delay()\n  return {delay_ms}\nend\n"),
        )?;
        http::wrk(&url, WARM_UP, 64, Some(&script))?;
        let (start, _) = setup::rss(host.pid())?;
        let load = http::wrk(&url, SOAK, 64, Some(&script))?;
        let (end, _) = setup::rss(host.pid())?;
        eprintln!(
            "  peak {:.0} req/s; paced at {:.0} req/s ({delay_ms} ms per connection); RSS {:.1} -> {:.1} MiB",
            peak,
            load.rps,
            mib(start),
            mib(end)
        );
        (peak, load.rps, start, end, SOAK)
    };
    drop(host);
    let minutes = soaked.as_secs_f64() / 60.0;
    Ok(vec![
        Row::new("soak", "paced load, no scraper", rate, "req/s").against("peak", peak),
        Row::new(
            "soak",
            format!("RSS after {minutes:.1} min of it"),
            mib(end),
            "MiB",
        )
        .against("at its start", mib(start))
        .target(Target::AtMost(mib(start) * (1.0 + MAX_GROWTH))),
    ])
}

/// Sequential keyed requests at `per_second` for `duration`; the rate reached.
async fn paced_requests(url: &str, per_second: f64, duration: Duration) -> anyhow::Result<f64> {
    let client = setup::client()?;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second));
    let started = Instant::now();
    let mut sent = 0u64;
    while started.elapsed() < duration {
        tick.tick().await;
        let status = client
            .get(url)
            .header("x-api-key", KEY)
            .send()
            .await?
            .status();
        if !status.is_success() {
            bail!("{url}: {status}");
        }
        sent += 1;
    }
    Ok(sent as f64 / started.elapsed().as_secs_f64())
}
