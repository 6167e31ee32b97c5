//! Deploys: how long a tenant change takes to be served by every host. Three hosts share
//! PostgreSQL and nothing else (each its own plugin, tenant and data directories, the
//! `hello` plugin a file in each); each round `PUT /admin/v1/tenants/{name}` sends the
//! tenant's TOML to the first host with the plugin's greeting changed, then every host's
//! `GET /t/{name}/hello` is polled until it greets with the new one. Per round, from the
//! PUT's answer to the last host serving the change; p50 and max, beside the same for the
//! host that took the PUT (it loads the change before answering). The tenant is deleted
//! at the end.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::Options;
use crate::queues::fresh;
use crate::report::{Row, percentile};
use crate::setup::{ADMIN_TOKEN, Host};

const HOSTS: usize = 3;
/// How often each host's route is asked: fine against the hosts' store poll (500 ms by
/// default), coarse enough not to load the store (each greeting is a kv increment).
const POLL: Duration = Duration::from_millis(10);
/// The longest pause before a round (twice the hosts' default store poll).
const JITTER_MS: u128 = 1_000;
/// A round that takes longer has failed.
const ROUND_LIMIT: Duration = Duration::from_secs(60);

/// The tenant with `greeting`: the hello plugin on one route.
pub fn tenant(greeting: &str) -> String {
    format!(
        r#"[plugins.hello]
source = "hello.wasm"
config = {{ greeting = "{greeting}" }}

[[routes]]
method = "GET"
path = "/hello"
plugin = "hello"
"#
    )
}

pub async fn run(opts: &Options) -> anyhow::Result<Vec<Row>> {
    let Some(pg) = &opts.postgres else {
        eprintln!(
            "  no deploy rows: they need ORQUESTA_BENCH_POSTGRES_URL (hosts sharing PostgreSQL)"
        );
        return Ok(Vec::new());
    };
    let rounds = opts.size(20, 2);
    // Hosts apart (not siblings on one tenant directory): the store is the only way a
    // deploy can reach the other two.
    let mut hosts = Vec::with_capacity(HOSTS);
    for _ in 0..HOSTS {
        hosts.push(Host::start(&["hello"], &[], Some(pg)).await?);
    }
    let name = fresh("bench-d");
    let timed = rounds_on(&hosts, &name, rounds).await;
    // Deleted whatever happened: a tenant left in the store would load on every later
    // host of this database, which lacks its plugin (the other benchmarks' hosts).
    let deleted = hosts[0]
        .admin(reqwest::Method::DELETE, &format!("/tenants/{name}"), None)
        .await;
    for host in hosts {
        host.stop().await?;
    }
    let (mut first, mut last) = timed?;
    deleted.with_context(|| format!("cannot delete the benchmark's tenant {name}"))?;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let what = |stat: &str| {
        format!("{rounds} tenant changes to {HOSTS} hosts on PostgreSQL, last host serving, {stat}")
    };
    Ok(vec![
        Row::new(
            "deploys",
            what("p50"),
            ms(percentile(&mut last, 50.0)),
            "ms",
        )
        .against("the PUT's host", ms(percentile(&mut first, 50.0))),
        Row::new(
            "deploys",
            what("max"),
            ms(percentile(&mut last, 100.0)),
            "ms",
        )
        .against("the PUT's host", ms(percentile(&mut first, 100.0))),
    ])
}

/// `rounds` deploys of tenant `name` through the first host: per round, the time to the
/// first host serving it and to the last.
async fn rounds_on(
    hosts: &[Host],
    name: &str,
    rounds: usize,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    // The first deploy creates the tenant: untimed, so every round is a change.
    deploy(&hosts[0], name, "v0").await?;
    served(hosts, name, "v0").await?;
    let (mut first, mut last) = (Vec::new(), Vec::new());
    for i in 1..=rounds {
        // A random pause first: rounds back to back fall in step with the hosts' store
        // polls (each round starting just after one), and every round would wait a
        // whole poll interval.
        let jitter = (uuid::Uuid::new_v4().as_u128() % JITTER_MS) as u64;
        tokio::time::sleep(Duration::from_millis(jitter)).await;
        let greeting = format!("v{i}");
        deploy(&hosts[0], name, &greeting).await?;
        let answered = Instant::now();
        let at = served(hosts, name, &greeting).await?;
        first.push(at[0].duration_since(answered));
        last.push(
            at.iter()
                .max()
                .map_or(Duration::ZERO, |t| t.duration_since(answered)),
        );
    }
    Ok((first, last))
}

/// `PUT /admin/v1/tenants/{name}` with the tenant greeting with `greeting`.
async fn deploy(host: &Host, name: &str, greeting: &str) -> anyhow::Result<()> {
    let answer = host
        .client
        .put(format!("{}/admin/v1/tenants/{name}", host.url))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/toml")
        .body(tenant(greeting))
        .send()
        .await
        .context("deploy")?;
    let status = answer.status();
    if !status.is_success() {
        bail!("deploy {greeting}: {status}: {}", answer.text().await?);
    }
    Ok(())
}

/// When each host first greets with `greeting` (polled every [`POLL`]).
async fn served(hosts: &[Host], name: &str, greeting: &str) -> anyhow::Result<Vec<Instant>> {
    let expected = format!("{greeting}, bench!");
    let started = Instant::now();
    let polls = hosts.iter().enumerate().map(|(i, host)| {
        let (url, expected) = (format!("{}/t/{name}/hello?name=bench", host.url), &expected);
        async move {
            loop {
                // Not serving yet (404, 503) or the old greeting: asked again.
                let seen = match host.client.get(&url).send().await {
                    Ok(answer) => {
                        let status = answer.status();
                        let body: serde_json::Value =
                            answer.json().await.unwrap_or(serde_json::Value::Null);
                        if status.is_success() && body["message"] == expected.as_str() {
                            return Ok(Instant::now());
                        }
                        format!("{status}: {body}")
                    }
                    Err(e) => e.to_string(),
                };
                if started.elapsed() > ROUND_LIMIT {
                    bail!(
                        "host {} does not serve {greeting} after {} s; last answer {seen}",
                        i + 1,
                        ROUND_LIMIT.as_secs()
                    );
                }
                tokio::time::sleep(POLL).await;
            }
        }
    });
    futures::future::try_join_all(polls).await
}
