//! Blobs: MiB/s of objects put and read back through the admin API (`PUT` and `GET
//! /tenants/T/blobs/B/KEY`, one at a time), per backend (`[blobs]`, docs/TENANTS.md):
//! each store's default (files on SQLite, chunks in the store on PostgreSQL) and an S3
//! bucket on `s3s-fs`, a real S3 protocol server over a folder on the same machine (the
//! host's store SQLite). The S3 rows need the server's binary
//! (`ORQUESTA_BENCH_S3_SERVER`, else `ORQUESTA_TEST_S3_SERVER`; `.ci/s3` installs it).

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, ensure};

use crate::Options;
use crate::queues::fresh;
use crate::report::{Row, median_of};
use crate::s3::S3Server;
use crate::setup::{ADMIN_TOKEN, Host, write_layout};

/// Rounds per backend (each a fresh host and tenant); the median is reported.
const ROUNDS: usize = 3;

fn tenant() -> String {
    "[plugins.bench]\nsource = \"bench.wasm\"\n".to_string()
}

/// Where a run's blobs live.
#[derive(Clone, Copy)]
enum Backend<'a> {
    /// Files in the data directory, the default on SQLite.
    Files,
    /// Chunks in PostgreSQL (this URL), its default.
    Postgres(&'a str),
    /// A fresh `s3s-fs` (this binary) per run.
    S3(&'a Path),
}

pub async fn run(opts: &Options) -> anyhow::Result<Vec<Row>> {
    // 4 MiB objects: past the store's 512 KiB chunks, under S3's 8 MiB single PUT.
    let (objects, size) = (opts.size(64, 2), opts.size(4 << 20, 64 << 10));
    let rounds = opts.size(ROUNDS, 1);
    let what = |op: &str, on: &str| format!("{op} {objects} x {} KiB, {on}", size >> 10);
    let measured = |on, op| rounds_of(rounds, on, objects, size, op);
    let files_put = measured(Backend::Files, Op::Put).await?;
    let files_get = measured(Backend::Files, Op::Get).await?;
    let mut rows = vec![
        Row::new("blobs", what("put", "files (SQLite)"), files_put, "MiB/s"),
        Row::new("blobs", what("get", "files (SQLite)"), files_get, "MiB/s"),
    ];
    let mut others = Vec::new();
    if let Some(pg) = &opts.postgres {
        others.push(("store (PostgreSQL)", Backend::Postgres(pg)));
    }
    match &opts.s3_server {
        Some(bin) => others.push(("S3 (s3s-fs)", Backend::S3(bin))),
        None => eprintln!(
            "  no S3 rows: set ORQUESTA_BENCH_S3_SERVER (or ORQUESTA_TEST_S3_SERVER) to an \
             s3s-fs binary (.ci/s3 installs one)"
        ),
    }
    for (on, backend) in others {
        let put = measured(backend, Op::Put).await?;
        let get = measured(backend, Op::Get).await?;
        rows.push(
            Row::new("blobs", what("put", on), put, "MiB/s").against("files (SQLite)", files_put),
        );
        rows.push(
            Row::new("blobs", what("get", on), get, "MiB/s").against("files (SQLite)", files_get),
        );
    }
    Ok(rows)
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Put,
    Get,
}

/// The median of `rounds` of [`measure`].
async fn rounds_of(
    rounds: usize,
    on: Backend<'_>,
    objects: usize,
    size: usize,
    op: Op,
) -> anyhow::Result<f64> {
    median_of(rounds, || measure(on, objects, size, op)).await
}

/// MiB/s of `op` over `objects` objects of `size` bytes (a get round puts them first,
/// untimed).
async fn measure(on: Backend<'_>, objects: usize, size: usize, op: Op) -> anyhow::Result<f64> {
    let name = fresh("bench-b");
    let tenants = [(name.as_str(), tenant())];
    let (host, s3) = match on {
        Backend::Files => (Host::start(&["bench"], &tenants, None).await?, None),
        Backend::Postgres(url) => (Host::start(&["bench"], &tenants, Some(url)).await?, None),
        Backend::S3(bin) => {
            let server = S3Server::start(bin).await?;
            let dir = tempfile::tempdir()?;
            let mut config = write_layout(dir.path(), &["bench"], &tenants, None)?;
            config.blobs = server.blobs_config(dir.path())?;
            (Host::serve(dir, config, 1).await?, Some(server))
        }
    };
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
    if let Some(s3) = &s3 {
        // The bytes went to the S3 server, not to the host's disk.
        let held = s3.objects_of(&name);
        ensure!(
            held == objects,
            "the S3 server holds {held} of {objects} objects"
        );
    }
    host.stop().await?;
    Ok(rate)
}
