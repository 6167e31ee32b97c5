//! Scale: the resident memory of one `orquesta serve` process with 1,000 tenants, each
//! running the demo plugins (hello with its kv counter, the appointments API, bench),
//! after loading and after one request to each tenant, against the same process with one
//! tenant. Each component is compiled once and shared by every tenant that names it.

use std::time::{Duration, Instant};

use anyhow::bail;
use futures::StreamExt as _;

use crate::Options;
use crate::report::{Row, Target};
use crate::setup::{self, Process};

const PLUGINS: [&str; 3] = ["hello", "appointments", "bench"];

fn tenant() -> String {
    r#"[kv]
buckets = ["appointments"]

[plugins.hello]
source = "hello.wasm"
config = { greeting = "Hola" }

[plugins.api]
source = "appointments.wasm"
config = { role = "api" }
allow = { kv_buckets = ["appointments"], topics = ["appointment-notifications"] }

[plugins.bench]
source = "bench.wasm"

[topics.appointment-notifications]

[[routes]]
method = "GET"
path = "/hello"
plugin = "hello"

[[routes]]
method = "GET"
path = "/appointments/{insuredId}"
plugin = "api"

[[routes]]
method = "GET"
path = "/bench"
plugin = "bench"
"#
    .to_string()
}

pub async fn run(opts: &Options) -> anyhow::Result<Vec<Row>> {
    let many = opts.size(1_000, 20);
    let (one_loaded, one_used) = measure(1).await?;
    let (loaded, used) = measure(many).await?;
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    Ok(vec![
        Row::new(
            "scale",
            format!("RSS, {many} tenants loaded"),
            mib(loaded),
            "MiB",
        )
        .against("1 tenant", mib(one_loaded)),
        Row::new(
            "scale",
            format!("RSS, {many} tenants after a request to each"),
            mib(used),
            "MiB",
        )
        .against("1 tenant", mib(one_used))
        .target(Target::AtMost(1024.0)),
        Row::new(
            "scale",
            "RSS per added tenant",
            (used.saturating_sub(one_used)) as f64 / 1024.0 / (many.max(2) - 1) as f64,
            "KiB",
        ),
    ])
}

/// RSS of a host with `n` tenants: after they load, and after a request to each.
async fn measure(n: usize) -> anyhow::Result<(u64, u64)> {
    let root = tempfile::tempdir()?;
    let names: Vec<String> = (0..n).map(|i| format!("t{i:04}")).collect();
    let tenants: Vec<(&str, String)> = names.iter().map(|n| (n.as_str(), tenant())).collect();
    let config = setup::write_layout(root.path(), &PLUGINS, &tenants, None)?;
    let file = setup::write_host_file(root.path(), &config)?;
    let host = Process::serve(&file)?;
    let client = setup::client()?;
    let started = Instant::now();
    loop {
        let list: serde_json::Value = client
            .get(format!("{}/admin/v1/tenants", host.url))
            .bearer_auth(setup::ADMIN_TOKEN)
            .send()
            .await?
            .json()
            .await?;
        let serving = list["tenants"]
            .as_array()
            .map_or(0, |t| t.iter().filter(|t| t["serving"] == true).count());
        if serving == n {
            break;
        }
        if started.elapsed() > Duration::from_secs(300) {
            bail!("only {serving} of {n} tenants serve");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (loaded, _) = setup::rss(host.pid())?;
    let results = futures::stream::iter(names.iter())
        .map(|name| {
            let (client, url) = (&client, &host.url);
            async move {
                for path in ["hello?name=Ana", "bench?name=Ana", "appointments/01234"] {
                    let status = client
                        .get(format!("{url}/t/{name}/{path}"))
                        .send()
                        .await?
                        .status();
                    if !status.is_success() {
                        bail!("{name}/{path}: {status}");
                    }
                }
                Ok(())
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<anyhow::Result<()>>>()
        .await;
    if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
        return Err(e);
    }
    let (used, _) = setup::rss(host.pid())?;
    Ok((loaded, used))
}
