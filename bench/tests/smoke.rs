//! The benchmarks' smoke mode, as CI runs it: every benchmark runs end to end at tiny
//! sizes and reports a real, positive figure for each row. Nothing is timed here.

use orquesta_bench::{
    Options, flows, http, instantiate, neighbour, queues, scale, soak, workflows,
};

fn options() -> Options {
    Options {
        smoke: true,
        postgres: std::env::var("ORQUESTA_TEST_POSTGRES_URL").ok(),
        exe: env!("CARGO_BIN_EXE_orquesta-bench").into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_benchmark_runs_in_smoke_mode() {
    let opts = options();
    let mut rows = Vec::new();
    rows.extend(instantiate::run(&opts).await.expect("instantiate"));
    rows.extend(http::run(&opts).await.expect("http"));
    rows.extend(neighbour::run(&opts).await.expect("neighbour"));
    rows.extend(queues::run(&opts).await.expect("queues"));
    rows.extend(workflows::run(&opts).await.expect("workflows"));
    rows.extend(scale::run(&opts).await.expect("scale"));
    rows.extend(flows::run(&opts).await.expect("flows"));
    rows.extend(soak::run(&opts).await.expect("soak"));
    let benches: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.bench).collect();
    assert_eq!(benches.len(), 8, "{benches:?}");
    for row in &rows {
        // Rates and times are measured, so never zero; a memory difference may be.
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
