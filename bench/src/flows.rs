//! Flows: wall time and throughput of two of the real flows through the service, with
//! the shipped tenant files: the Siesa ETL syncing 50,000 products to WMS (fake Siesa and
//! WMS on loopback), and the appointments flow taking 10,000 appointments from the API
//! to `completed` (topic, country queues, SQLite databases, bus rule, confirmation).

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::StreamExt as _;
use orquesta_fakes::{siesa, wms};
use serde_json::{Value, json};

use crate::Options;
use crate::report::Row;
use crate::setup::{self, Host};

pub async fn run(opts: &Options) -> anyhow::Result<Vec<Row>> {
    let products = opts.size(50_000, 200);
    let appointments = opts.size(10_000, 20);
    // `ORQUESTA_BENCH_FLOW=siesa` or `=appointments` runs one flow: comparing two builds
    // on one flow takes many runs.
    let only = std::env::var("ORQUESTA_BENCH_FLOW").ok();
    let runs = |flow: &str| only.as_deref().is_none_or(|o| o == flow);
    let mut rows = Vec::new();
    if runs("siesa") {
        let (siesa_s, siesa_rate) = siesa_sync(products).await?;
        rows.push(Row::new(
            "flows",
            format!("Siesa ETL, {products} products to WMS: wall time"),
            siesa_s,
            "s",
        ));
        rows.push(Row::new(
            "flows",
            "Siesa ETL throughput",
            siesa_rate,
            "products/s",
        ));
    }
    if runs("appointments") {
        let (appt_s, appt_rate) = appointments_flow(appointments).await?;
        rows.push(Row::new(
            "flows",
            format!("appointments, {appointments} to completed: wall time"),
            appt_s,
            "s",
        ));
        rows.push(Row::new(
            "flows",
            "appointments throughput",
            appt_rate,
            "appointments/s",
        ));
    }
    if rows.is_empty() {
        bail!("ORQUESTA_BENCH_FLOW names no flow: siesa or appointments");
    }
    Ok(rows)
}

fn example(path: &str) -> anyhow::Result<String> {
    let file = setup::workspace().join("examples").join(path);
    std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))
}

fn swap(text: String, swaps: &[(&str, String)]) -> anyhow::Result<String> {
    swaps.iter().try_fold(text, |text, (from, to)| {
        if !text.contains(from) {
            bail!("the example tenant no longer has {from}");
        }
        Ok(text.replace(from, to))
    })
}

async fn siesa_sync(products: usize) -> anyhow::Result<(f64, f64)> {
    let (router, catalogue) = siesa::router(siesa::Config::demo());
    catalogue.generate(products as u64);
    let siesa_addr = orquesta_fakes::spawn("127.0.0.1:0".parse()?, router).await?;
    let (router, target) = wms::router(wms::Config::demo());
    let wms_addr = orquesta_fakes::spawn("127.0.0.1:0".parse()?, router).await?;
    let secrets = tempfile::tempdir()?;
    let secret = |name: &str, value: &str| -> anyhow::Result<String> {
        let path = secrets.path().join(name);
        std::fs::write(&path, value)?;
        Ok(format!("{{ file = {path:?} }}"))
    };
    let text = swap(
        example("tenants/siesa-cliente-b.toml")?,
        &[
            ("http://127.0.0.1:8783", format!("http://{siesa_addr}")),
            ("http://127.0.0.1:8785", format!("http://{wms_addr}")),
            (
                "{ env = \"SIESA_CONNI_KEY\" }",
                secret("k", "demo-conni-key")?,
            ),
            (
                "{ env = \"SIESA_CONNI_TOKEN\" }",
                secret("t", "demo-conni-token")?,
            ),
            ("{ env = \"WMS_API_KEY\" }", secret("w", "demo-wms-key")?),
            ("../siesa/", String::new()),
        ],
    )?;
    let definition = example("siesa/siesa-sync.asl.json")?;
    let host = Host::start_with(&["siesa"], &[("siesa-cliente-b", text)], None, |dir| {
        std::fs::write(dir.join("siesa-sync.asl.json"), &definition)
    })
    .await?;
    let mappings = example("siesa/mappings/wms.json")?;
    host.client
        .put(format!(
            "{}/admin/v1/tenants/siesa-cliente-b/blobs/siesa-config/field-mappings.json",
            host.url
        ))
        .bearer_auth(setup::ADMIN_TOKEN)
        .body(mappings)
        .send()
        .await?
        .error_for_status()?;
    let started = Instant::now();
    let answer = host
        .admin(
            reqwest::Method::POST,
            "/tenants/siesa-cliente-b/workflows/siesa-sync/executions",
            Some(json!({ "input": { "client_id": "cliente-b", "sync_type": "initial" } })),
        )
        .await?;
    let id = answer["execution_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    loop {
        let d = host
            .admin(
                reqwest::Method::GET,
                &format!("/tenants/siesa-cliente-b/executions/{id}"),
                None,
            )
            .await?;
        match d["status"].as_str() {
            Some("RUNNING") => {}
            Some("SUCCEEDED") if d["output"]["records_success"] == products => break,
            _ => bail!("the sync did not load every product: {d}"),
        }
        if started.elapsed() > Duration::from_secs(900) {
            bail!("the sync is still running: {d}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    if target.count() != products {
        bail!("WMS holds {} of {products} items", target.count());
    }
    host.stop().await?;
    Ok((seconds, products as f64 / seconds))
}

async fn appointments_flow(n: usize) -> anyhow::Result<(f64, f64)> {
    // The shipped plan allows 10 requests/s; the flow is what is measured here.
    let text = swap(
        example("tenants/appointments.toml")?,
        &[
            (
                "rate_per_second = 10\n",
                "rate_per_second = 1000000\n".into(),
            ),
            ("burst = 20\n", "burst = 1000000\n".into()),
            (
                "quota_per_month = 10000\n",
                "quota_per_month = 100000000\n".into(),
            ),
        ],
    )?;
    let host = Host::start(&["appointments"], &[("appointments", text)], None).await?;
    let url = format!("{}/t/appointments/appointments", host.url);
    let insured: Vec<String> = (0..100).map(|i| format!("{:05}", 10_000 + i)).collect();
    let started = Instant::now();
    let posts = futures::stream::iter(0..n)
        .map(|i| {
            let (client, url, insured) = (&host.client, &url, &insured);
            async move {
                let body = json!({
                    "insuredId": insured[i % insured.len()],
                    "dateSchedule": format!("2026-12-{:02}T{:02}:{:02}", 1 + i % 28, i % 24, i % 60),
                    "country": if i % 2 == 0 { "PE" } else { "CL" },
                });
                let r = client.post(url).header("x-api-key", "demo-key").json(&body).send().await?;
                if r.status() != 201 {
                    let status = r.status();
                    bail!("POST {url}: {status}: {}", r.text().await.unwrap_or_default());
                }
                Ok(())
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<anyhow::Result<()>>>()
        .await;
    if let Some(Err(e)) = posts.into_iter().find(Result::is_err) {
        return Err(e);
    }
    // Done when the flow's queues hold nothing and every appointment reads `completed`.
    // The queues are read first, through the admin API: listing the appointments is a
    // plugin call and a kv read per appointment, and polling that while the flow ran
    // (25,000 kv reads a second near the end) measured the polling more than the flow.
    loop {
        if queues_empty(&host).await? {
            let completed = completed(&host, &url, &insured).await?;
            if completed >= n {
                break;
            }
        }
        if started.elapsed() > Duration::from_secs(900) {
            let completed = completed(&host, &url, &insured).await?;
            bail!("only {completed} of {n} appointments completed");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    host.stop().await?;
    Ok((seconds, n as f64 / seconds))
}

/// Whether the appointments tenant's queues hold nothing (visible, in flight or delayed);
/// a message in the dead-letter queue fails the run.
async fn queues_empty(host: &Host) -> anyhow::Result<bool> {
    let list = host
        .admin(reqwest::Method::GET, "/tenants/appointments/queues", None)
        .await?;
    let queues = list["queues"]
        .as_array()
        .context("the queue listing has no `queues`")?;
    let held = |q: &Value| ["visible", "in_flight", "delayed"].map(|k| q[k].as_u64().unwrap_or(0));
    for q in queues {
        if q["name"] == "appointment-dlq" {
            if held(q).iter().sum::<u64>() > 0 {
                bail!("appointments reached the dead-letter queue: {q}");
            }
        } else if held(q).iter().any(|&k| k > 0) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Appointments that read `completed`, through the API as a client sees them.
async fn completed(host: &Host, url: &str, insured: &[String]) -> anyhow::Result<usize> {
    let mut completed = 0;
    for id in insured {
        let list: Value = host
            .client
            .get(format!("{url}/{id}"))
            .header("x-api-key", "demo-key")
            .send()
            .await?
            .json()
            .await?;
        completed += list["items"].as_array().map_or(0, |items| {
            items.iter().filter(|i| i["status"] == "completed").count()
        });
    }
    Ok(completed)
}
