//! Workflows: state transitions/s of a durable 10-state machine (Pass and Task states in
//! turn, the Tasks on the `bench` plugin), many executions at once, from the first start
//! until every execution has succeeded. Each transition is committed to the store
//! before the next state runs. On SQLite, and on PostgreSQL with one, two and three
//! hosts (the starts spread over them in turn, every host's executor claiming from the
//! shared store).

use std::time::{Duration, Instant};

use anyhow::bail;
use futures::StreamExt as _;
use serde_json::{Value, json};

use crate::Options;
use crate::queues::fresh;
use crate::report::{Row, Target, median_of};
use crate::setup::{Host, MAX_HOSTS, count_hosts};

/// Rounds per store (each a fresh host and tenant); the median is reported.
const ROUNDS: usize = 3;
const STATES: usize = 10;

/// `P1 -> T1 -> P2 -> T2 -> ... -> T5`.
pub fn definition() -> Value {
    let mut states = serde_json::Map::new();
    for i in 1..=STATES / 2 {
        let next_task = format!("T{i}");
        states.insert(
            format!("P{i}"),
            json!({"Type": "Pass", "Result": i, "ResultPath": format!("$.p{i}"), "Next": next_task}),
        );
        let mut task = json!({"Type": "Task", "Resource": "bench", "ResultPath": "$.task"});
        if i < STATES / 2 {
            task["Next"] = json!(format!("P{}", i + 1));
        } else {
            task["End"] = json!(true);
        }
        states.insert(format!("T{i}"), task);
    }
    json!({"StartAt": "P1", "States": states})
}

pub fn tenant() -> String {
    r#"[limits]
concurrency = 256

[plugins.bench]
source = "bench.wasm"

[workflows.ten]
definition = "ten.asl.json"
"#
    .to_string()
}

pub async fn run(opts: &Options) -> anyhow::Result<Vec<Row>> {
    let executions = opts.size(1_000, 10);
    let rounds = opts.size(ROUNDS, 1);
    let sqlite = median_of(rounds, || measure(None, 1, executions)).await?;
    let mut rows = vec![
        Row::new(
            "workflows",
            format!("{executions} executions x 10 states, SQLite"),
            sqlite,
            "transitions/s",
        )
        .target(Target::AtLeast(1_500.0)),
    ];
    if let Some(pg) = &opts.postgres {
        // Each count against the one before it: what the added host brings.
        let mut before = ("SQLite".to_string(), sqlite);
        for hosts in 1..=MAX_HOSTS {
            let rate = median_of(rounds, || measure(Some(pg), hosts, executions)).await?;
            let on = format!("PostgreSQL, {}", count_hosts(hosts));
            let mut row = Row::new(
                "workflows",
                format!("{executions} executions x 10 states, {on}"),
                rate,
                "transitions/s",
            )
            .against(&before.0, before.1);
            if hosts == 1 {
                row = row.target(Target::AtLeast(1_500.0));
            }
            rows.push(row);
            before = (on, rate);
        }
    }
    Ok(rows)
}

async fn measure(store: Option<&str>, hosts: usize, executions: usize) -> anyhow::Result<f64> {
    let name = fresh("bench-wf");
    // The definition sits beside the tenant file.
    let all = Host::start_many(hosts, &["bench"], &[(&name, tenant())], store, |tenants| {
        std::fs::write(tenants.join("ten.asl.json"), definition().to_string())
    })
    .await?;
    let host = &all[0];
    let start_path = format!("/tenants/{name}/workflows/ten/executions");
    let started = Instant::now();
    let starts = futures::stream::iter(0..executions)
        .map(|i| {
            // Spread over the hosts as a load balancer would; each host's executor
            // claims from the shared store whatever any host started.
            let (host, path) = (&all[i % all.len()], &start_path);
            async move {
                host.admin(
                    reqwest::Method::POST,
                    path,
                    Some(json!({ "input": { "i": i } })),
                )
                .await
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    if let Some(Err(e)) = starts.into_iter().find(Result::is_err) {
        return Err(e);
    }
    // Polled cheaply (is any still running?) so the poll takes little from the host;
    // every start has been answered, so none running means all have ended.
    let running = format!("/tenants/{name}/executions?status=RUNNING&limit=1");
    loop {
        let left = host.admin(reqwest::Method::GET, &running, None).await?;
        if left["executions"].as_array().is_some_and(Vec::is_empty) {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("executions still running after 600 s: {left}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rate = (executions * STATES) as f64 / started.elapsed().as_secs_f64();
    let list = format!("/tenants/{name}/executions?status=SUCCEEDED&limit=1000");
    let done = host.admin(reqwest::Method::GET, &list, None).await?;
    let n = done["executions"].as_array().map_or(0, Vec::len);
    if n < executions.min(1000) {
        bail!("only {n} of {executions} executions succeeded");
    }
    Host::stop_all(all).await?;
    Ok(rate)
}
