//! `orquesta-bench`: runs the benchmarks and prints their table (docs/BENCHMARKS.md).
//!
//! ```sh
//! cargo run --release -p orquesta-bench -- all            # the full run
//! cargo run --release -p orquesta-bench -- all --smoke    # seconds: does every bench run?
//! cargo run --release -p orquesta-bench -- http           # one benchmark
//! ```
//! `native` is the native reference the HTTP benchmark starts as a child process.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use orquesta_bench::{
    Options, Row, blobs, deploys, flows, http, instantiate, languages, neighbour, queues, report,
    scale, soak, workflows,
};

#[derive(Parser)]
#[command(
    name = "orquesta-bench",
    about = "orquesta's benchmarks (docs/BENCHMARKS.md)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Tiny sizes and no load generator: checks that the benchmarks run.
    #[arg(long, global = true)]
    smoke: bool,
    /// A PostgreSQL database for the shared-store runs.
    #[arg(long, global = true, env = "ORQUESTA_BENCH_POSTGRES_URL")]
    postgres: Option<String>,
    /// An S3-compatible server's binary (s3s-fs, as `.ci/s3` installs) for the blob
    /// benchmark's S3 rows; else `ORQUESTA_TEST_S3_SERVER`.
    #[arg(long, global = true, env = "ORQUESTA_BENCH_S3_SERVER")]
    s3_server: Option<std::path::PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Every benchmark, in order.
    All,
    Instantiate,
    Http,
    /// A tenant's latency while another spins its whole concurrency.
    Neighbour,
    Queues,
    /// Blob put and get through the admin API, per backend.
    Blobs,
    Workflows,
    /// How long a tenant deploy takes to be served by every host (3 on PostgreSQL).
    Deploys,
    Scale,
    Flows,
    /// 5 minutes at half the peak HTTP rate, no scraper: RSS at the start and the end.
    Soak,
    /// The same hello in Rust, Python, TypeScript and as a wasi:http component.
    Languages,
    /// (child process) one component of the languages benchmark, measured alone.
    LanguageProbe {
        component: std::path::PathBuf,
        cache: std::path::PathBuf,
        invocations: usize,
    },
    /// (child process) the native reference of the HTTP benchmark.
    Native,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let opts = Options {
        smoke: cli.smoke,
        postgres: cli.postgres,
        s3_server: cli
            .s3_server
            .filter(|p| !p.as_os_str().is_empty())
            .or_else(orquesta_bench::s3::server_from_env),
        exe: std::env::current_exe().unwrap_or_else(|_| "orquesta-bench".into()),
    };
    let outcome = match cli.command {
        Command::Native => http::serve_native().await,
        Command::LanguageProbe {
            component,
            cache,
            invocations,
        } => languages::probe(&component, &cache, invocations).await,
        Command::All => {
            benches(
                &opts,
                &[
                    "instantiate",
                    "http",
                    "neighbour",
                    "queues",
                    "blobs",
                    "workflows",
                    "deploys",
                    "scale",
                    "flows",
                    "languages",
                    "soak",
                ],
            )
            .await
        }
        Command::Instantiate => benches(&opts, &["instantiate"]).await,
        Command::Http => benches(&opts, &["http"]).await,
        Command::Neighbour => benches(&opts, &["neighbour"]).await,
        Command::Queues => benches(&opts, &["queues"]).await,
        Command::Blobs => benches(&opts, &["blobs"]).await,
        Command::Workflows => benches(&opts, &["workflows"]).await,
        Command::Deploys => benches(&opts, &["deploys"]).await,
        Command::Scale => benches(&opts, &["scale"]).await,
        Command::Flows => benches(&opts, &["flows"]).await,
        Command::Soak => benches(&opts, &["soak"]).await,
        Command::Languages => benches(&opts, &["languages"]).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn benches(opts: &Options, names: &[&str]) -> anyhow::Result<()> {
    let mut rows: Vec<Row> = Vec::new();
    for name in names {
        eprintln!("running {name}...");
        let started = std::time::Instant::now();
        rows.extend(match *name {
            "instantiate" => instantiate::run(opts).await?,
            "http" => http::run(opts).await?,
            "neighbour" => neighbour::run(opts).await?,
            "queues" => queues::run(opts).await?,
            "blobs" => blobs::run(opts).await?,
            "workflows" => workflows::run(opts).await?,
            "deploys" => deploys::run(opts).await?,
            "scale" => scale::run(opts).await?,
            "soak" => soak::run(opts).await?,
            "languages" => languages::run(opts).await?,
            _ => flows::run(opts).await?,
        });
        eprintln!("  {name} took {:.1} s", started.elapsed().as_secs_f64());
    }
    if opts.smoke {
        // Smoke sizes say nothing about the targets.
        rows.iter_mut().for_each(|r| r.target = None);
        println!("Smoke run: sizes too small to measure anything.\n");
    }
    println!("{}", report::markdown(&rows));
    Ok(())
}
