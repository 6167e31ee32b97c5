//! `orquesta-fakes databricks --port 8781` serves the fake Databricks workspace;
//! `orquesta-fakes token --sub ana --scope "ipp/read ipp/write"` prints a demo JWT.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, Subcommand};
use orquesta_fakes::{databricks, idp};
use serde_json::json;

#[derive(Parser)]
#[command(
    name = "orquesta-fakes",
    about = "Fake third-party APIs for the orquesta demo"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the fake Databricks workspace on loopback.
    Databricks {
        #[arg(long, default_value_t = 8781)]
        port: u16,
        /// The bearer token callers must send.
        #[arg(long, env = "DATABRICKS_TOKEN")]
        token: String,
        /// How long each job run takes, in seconds.
        #[arg(long, default_value_t = 10.0)]
        job_seconds: f64,
        /// Job ids whose runs end in FAILED.
        #[arg(long)]
        fail_job: Vec<u64>,
    },
    /// Print a JWT signed by the demo identity provider.
    Token {
        #[arg(long, default_value = "demo-user")]
        sub: String,
        #[arg(long, default_value = "ana@example.com")]
        email: String,
        #[arg(long, default_value = "Ana Demo")]
        name: String,
        /// Space-separated scopes.
        #[arg(long, default_value = "ipp/read ipp/write")]
        scope: String,
        /// Groups (repeat the flag for several).
        #[arg(long)]
        group: Vec<String>,
        #[arg(long, default_value_t = 60)]
        minutes: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Databricks {
            port,
            token,
            job_seconds,
            fail_job,
        } => {
            let job_time = Duration::try_from_secs_f64(job_seconds)
                .map_err(|e| anyhow::anyhow!("--job-seconds: {e}"))?;
            let mut config = databricks::Config::demo(&token, job_time);
            for id in fail_job {
                match config.jobs.get_mut(&id) {
                    Some(job) => job.fails = true,
                    None => anyhow::bail!("--fail-job {id}: no such job"),
                }
            }
            let addr = orquesta_fakes::spawn(
                SocketAddr::from(([127, 0, 0, 1], port)),
                databricks::router(config),
            )
            .await?;
            eprintln!("fake databricks listening on http://{addr}");
            tokio::signal::ctrl_c().await?;
        }
        Command::Token {
            sub,
            email,
            name,
            scope,
            group,
            minutes,
        } => {
            let extra = json!({ "email": email, "name": name, "scope": scope, "groups": group });
            println!("{}", idp::token(&sub, minutes, extra)?);
        }
    }
    Ok(())
}
