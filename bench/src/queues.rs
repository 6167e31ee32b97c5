//! Queues: messages/s end to end (sent through the admin API in batches of 1,000,
//! delivered to the `bench` plugin in batches of 10, deleted), from the first send until
//! the queue is empty. On SQLite with one host, and on PostgreSQL with one, two and
//! three hosts (SQLite is the embedded store of one host). The sends go to the first
//! host; every host consumes.

use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{Value, json};

use crate::Options;
use crate::report::{Row, Target, median_of};
use crate::setup::{Host, MAX_HOSTS, count_hosts};

/// Rounds per store (each a fresh host and tenant); the median is reported.
const ROUNDS: usize = 3;

pub fn tenant() -> String {
    r#"[limits]
concurrency = 256

[plugins.bench]
source = "bench.wasm"

[queues.jobs]
consumer = { plugin = "bench", batch_size = 10 }
"#
    .to_string()
}

pub async fn run(opts: &Options) -> anyhow::Result<Vec<Row>> {
    let n = opts.size(20_000, 200);
    let rounds = opts.size(ROUNDS, 1);
    let sqlite = median_of(rounds, || measure(None, 1, n)).await?;
    let mut rows = vec![
        Row::new(
            "queues",
            format!("{n} messages, SQLite, 1 host"),
            sqlite,
            "msg/s",
        )
        .target(Target::AtLeast(10_000.0)),
    ];
    if let Some(pg) = &opts.postgres {
        // Each count against the one before it: what the added host brings.
        let mut before = ("SQLite, 1 host".to_string(), sqlite);
        for hosts in 1..=MAX_HOSTS {
            let rate = median_of(rounds, || measure(Some(pg), hosts, n)).await?;
            let on = format!("PostgreSQL, {}", count_hosts(hosts));
            rows.push(
                Row::new("queues", format!("{n} messages, {on}"), rate, "msg/s")
                    .against(&before.0, before.1),
            );
            before = (on, rate);
        }
    }
    Ok(rows)
}

/// A tenant name no earlier run on a shared database used.
pub fn fresh(base: &str) -> String {
    format!("{base}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

async fn measure(store: Option<&str>, hosts: usize, n: usize) -> anyhow::Result<f64> {
    let name = fresh("bench-q");
    let all = Host::start_many(hosts, &["bench"], &[(&name, tenant())], store, |_| Ok(())).await?;
    let host = &all[0];
    let path = format!("/tenants/{name}/queues/jobs/messages");
    let started = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let messages: Vec<Value> = chunk
            .iter()
            .map(|i| json!({ "body": { "n": i } }))
            .collect();
        host.admin(
            reqwest::Method::POST,
            &path,
            Some(json!({ "messages": messages })),
        )
        .await?;
    }
    loop {
        let queues = host
            .admin(
                reqwest::Method::GET,
                &format!("/tenants/{name}/queues"),
                None,
            )
            .await?;
        let jobs = &queues["queues"][0];
        let left = ["visible", "in_flight", "delayed"]
            .iter()
            .map(|f| jobs[f].as_u64().unwrap_or(0))
            .sum::<u64>();
        if left == 0 {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("{left} messages still queued: {queues}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    Host::stop_all(all).await?;
    Ok(rate)
}
