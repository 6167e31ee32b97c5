//! Blobs: MiB/s of objects put and read back through the admin API (`PUT` and `GET
//! /tenants/T/blobs/B/KEY`, one at a time), on each host's default backend: files on
//! SQLite, chunks in the store on PostgreSQL (`[blobs]`, docs/TENANTS.md). The S3
//! backend is not measured here (it needs a server; its tests start one).

use std::time::Instant;

use anyhow::{bail, ensure};

use crate::Options;
use crate::queues::fresh;
use crate::report::{Row, median_of};
use crate::setup::{ADMIN_TOKEN, Host};

/// Rounds per backend (each a fresh host and tenant); the median is reported.
const ROUNDS: usize = 3;

fn tenant() -> String {
    "[plugins.bench]\nsource = \"bench.wasm\"\n".to_string()
}

pub async fn run(opts: &Options) -> anyhow::Result<Vec<Row>> {
    // 4 MiB objects: past the store's 512 KiB chunks, under S3's 8 MiB single PUT.
    let (objects, size) = (opts.size(64, 2), opts.size(4 << 20, 64 << 10));
    let rounds = opts.size(ROUNDS, 1);
    let what = |op: &str, on: &str| format!("{op} {objects} x {} KiB, {on}", size >> 10);
    let files_put = median_of(rounds, || measure(None, objects, size, Op::Put)).await?;
    let files_get = median_of(rounds, || measure(None, objects, size, Op::Get)).await?;
    let mut rows = vec![
        Row::new("blobs", what("put", "files (SQLite)"), files_put, "MiB/s"),
        Row::new("blobs", what("get", "files (SQLite)"), files_get, "MiB/s"),
    ];
    if let Some(pg) = &opts.postgres {
        let put = median_of(rounds, || measure(Some(pg), objects, size, Op::Put)).await?;
        let get = median_of(rounds, || measure(Some(pg), objects, size, Op::Get)).await?;
        rows.push(
            Row::new("blobs", what("put", "store (PostgreSQL)"), put, "MiB/s")
                .against("files (SQLite)", files_put),
        );
        rows.push(
            Row::new("blobs", what("get", "store (PostgreSQL)"), get, "MiB/s")
                .against("files (SQLite)", files_get),
        );
    }
    Ok(rows)
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Put,
    Get,
}

/// MiB/s of `op` over `objects` objects of `size` bytes (a get round puts them first,
/// untimed).
async fn measure(store: Option<&str>, objects: usize, size: usize, op: Op) -> anyhow::Result<f64> {
    let name = fresh("bench-b");
    let host = Host::start(&["bench"], &[(&name, tenant())], store).await?;
    let url = |i: usize| format!("{}/admin/v1/tenants/{name}/blobs/data/obj-{i}", host.url);
    let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let put = |i: usize| {
        let request = host
            .client
            .put(url(i))
            .bearer_auth(ADMIN_TOKEN)
            .body(data.clone());
        async move {
            let answer = request.send().await?;
            if !answer.status().is_success() {
                bail!("put: {}: {}", answer.status(), answer.text().await?);
            }
            anyhow::Ok(())
        }
    };
    let started = Instant::now();
    if op == Op::Get {
        for i in 0..objects {
            put(i).await?;
        }
    }
    let started = if op == Op::Get {
        Instant::now()
    } else {
        started
    };
    for i in 0..objects {
        match op {
            Op::Put => put(i).await?,
            Op::Get => {
                let answer = host
                    .client
                    .get(url(i))
                    .bearer_auth(ADMIN_TOKEN)
                    .send()
                    .await?;
                ensure!(answer.status().is_success(), "get: {}", answer.status());
                let body = answer.bytes().await?;
                ensure!(body.len() == size, "get: {} of {size} bytes", body.len());
            }
        }
    }
    let rate = (objects * size) as f64 / (1 << 20) as f64 / started.elapsed().as_secs_f64();
    host.stop().await?;
    Ok(rate)
}
