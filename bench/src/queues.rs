//! Queues: messages/s end to end (sent through the admin API in batches of 1,000,
//! delivered to the `bench` plugin in batches of 10, deleted), from the first send until
//! the queue is empty. On SQLite with one host, and on PostgreSQL with one and two hosts
//! (SQLite is the embedded store of one host).

use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{Value, json};

use crate::Options;
use crate::report::{Row, Target, median_of};
use crate::setup::Host;

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
        let one = median_of(rounds, || measure(Some(pg), 1, n)).await?;
        let two = median_of(rounds, || measure(Some(pg), 2, n)).await?;
        rows.push(
            Row::new(
                "queues",
                format!("{n} messages, PostgreSQL, 1 host"),
                one,
                "msg/s",
            )
            .against("SQLite, 1 host", sqlite),
        );
        rows.push(
            Row::new(
                "queues",
                format!("{n} messages, PostgreSQL, 2 hosts"),
                two,
                "msg/s",
            )
            .against("PostgreSQL, 1 host", one),
        );
    }
    Ok(rows)
}

/// A tenant name no earlier run on a shared database used.
pub fn fresh(base: &str) -> String {
    format!("{base}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

async fn measure(store: Option<&str>, hosts: usize, n: usize) -> anyhow::Result<f64> {
    let name = fresh("bench-q");
    let host = Host::start(&["bench"], &[(&name, tenant())], store).await?;
    let mut siblings = Vec::new();
    if let (2, Some(url)) = (hosts, store) {
        let sibling = host.sibling(url).await?;
        sibling.wait_serving(1).await?;
        siblings.push(sibling);
    }
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
    for s in siblings {
        s.stop().await?;
    }
    host.stop().await?;
    Ok(rate)
}
