//! The benchmarks' smoke mode, as CI runs it: every benchmark runs end to end at tiny
//! sizes and reports a real, positive figure for each row. Nothing is timed here.

use orquesta_bench::{
    Options, blobs, deploys, flows, http, instantiate, languages, neighbour, queues, report::Row,
    scale, soak, workflows,
};

fn options(postgres: Option<String>, s3_server: Option<std::path::PathBuf>) -> Options {
    Options {
        smoke: true,
        postgres,
        s3_server,
        exe: env!("CARGO_BIN_EXE_orquesta-bench").into(),
    }
}

/// Rates and times are measured, so never zero; a memory difference may be.
fn assert_measured(rows: &[Row]) {
    for row in rows {
        let measured = row.unit.ends_with("/s") || row.unit == "us" || row.unit == "s";
        assert!(
            row.value.is_finite() && row.value >= 0.0 && (!measured || row.value > 0.0),
            "{} {}: {} {}",
            row.bench,
            row.what,
            row.value,
            row.unit
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_benchmark_runs_in_smoke_mode() {
    let opts = options(None, None);
    let mut rows = Vec::new();
    rows.extend(instantiate::run(&opts).await.expect("instantiate"));
    rows.extend(http::run(&opts).await.expect("http"));
    rows.extend(neighbour::run(&opts).await.expect("neighbour"));
    rows.extend(queues::run(&opts).await.expect("queues"));
    rows.extend(blobs::run(&opts).await.expect("blobs"));
    rows.extend(workflows::run(&opts).await.expect("workflows"));
    rows.extend(scale::run(&opts).await.expect("scale"));
    rows.extend(flows::run(&opts).await.expect("flows"));
    rows.extend(soak::run(&opts).await.expect("soak"));
    rows.extend(languages::run(&opts).await.expect("languages"));
    let benches: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.bench).collect();
    assert_eq!(benches.len(), 10, "{benches:?}");
    assert_measured(&rows);
}

/// The benchmarks that also run on PostgreSQL: queues and workflows on one, two and three
/// hosts, blobs in the store, deploys reaching three hosts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(no_postgres, ignore = "ORQUESTA_TEST_POSTGRES_URL is not set")]
async fn the_postgres_benchmarks_run_in_smoke_mode() {
    let url = match std::env::var("ORQUESTA_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "ORQUESTA_TEST_POSTGRES_URL is not set and this test needs PostgreSQL; \
             `cargo test` run without the variable lists the test as ignored"
        ),
    };
    let opts = options(Some(url), None);
    let mut rows = Vec::new();
    rows.extend(queues::run(&opts).await.expect("queues"));
    rows.extend(blobs::run(&opts).await.expect("blobs"));
    rows.extend(workflows::run(&opts).await.expect("workflows"));
    let deployed = deploys::run(&opts).await.expect("deploys");
    assert!(
        deployed.len() == 2 && deployed.iter().all(|r| r.value > 0.0),
        "{deployed:?}"
    );
    rows.extend(deployed);
    let on_postgres: Vec<&str> = rows
        .iter()
        .filter(|r| r.what.contains("PostgreSQL"))
        .map(|r| r.what.as_str())
        .collect();
    assert_eq!(on_postgres.len(), 10, "{on_postgres:?}");
    assert_measured(&rows);
}

/// The blob benchmark's S3 rows, on a real S3-compatible server (`s3s-fs`); each round
/// checks the server holds the objects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(no_s3, ignore = "ORQUESTA_TEST_S3_SERVER is not set")]
async fn the_s3_blob_benchmark_runs_in_smoke_mode() {
    let bin = match std::env::var("ORQUESTA_TEST_S3_SERVER") {
        Ok(bin) if !bin.is_empty() => bin,
        _ => panic!(
            "ORQUESTA_TEST_S3_SERVER is not set and this test needs an S3-compatible server; \
             `cargo test` run without the variable lists the test as ignored (.ci/s3 installs one)"
        ),
    };
    let rows = blobs::run(&options(None, Some(bin.into())))
        .await
        .expect("blobs");
    let on_s3: Vec<&str> = rows
        .iter()
        .filter(|r| r.what.contains("S3"))
        .map(|r| r.what.as_str())
        .collect();
    assert_eq!(on_s3.len(), 2, "{on_s3:?}");
    assert_measured(&rows);
}
