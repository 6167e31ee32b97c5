//! `orquesta-fakes databricks --port 8781` serves the fake Databricks workspace;
//! `mok --port 8782`, `siesa --port 8783`, `kong --port 8784` and `wms --port 8785` serve
//! the other fakes; `orquesta-fakes token --sub ana --scope "ipp/read ipp/write"` prints a
//! demo JWT.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, Subcommand};
use orquesta_fakes::{databricks, idp, kong, mok, siesa, wms};
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
    /// Serve the fake MOK work-order API (token URL `/oauth/token`, API base `/v1`).
    Mok {
        #[arg(long, default_value_t = 8782)]
        port: u16,
        #[arg(long, env = "MOK_CLIENT_ID", default_value = mok::DEMO_CLIENT_ID)]
        client_id: String,
        #[arg(long, env = "MOK_CLIENT_SECRET", default_value = mok::DEMO_CLIENT_SECRET)]
        client_secret: String,
        /// How long access tokens live.
        #[arg(long, default_value_t = 3600)]
        token_seconds: u64,
        /// OTs that exist upstream already, as `IDOT:CASE` (repeat the flag).
        #[arg(long = "ot", value_parser = parse_ot)]
        ots: Vec<(u64, u64)>,
    },
    /// Serve the fake Siesa ERP (Connekta `ejecutarconsulta`) with a generated catalogue.
    Siesa {
        #[arg(long, default_value_t = 8783)]
        port: u16,
        /// How many products the catalogue holds.
        #[arg(long, default_value_t = 200)]
        products: u64,
    },
    /// Serve the fake Kong RFID inventory product API.
    Kong {
        #[arg(long, default_value_t = 8784)]
        port: u16,
    },
    /// Serve the fake WMS item service.
    Wms {
        #[arg(long, default_value_t = 8785)]
        port: u16,
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
            serve("databricks", port, databricks::router(config)).await?;
        }
        Command::Mok {
            port,
            client_id,
            client_secret,
            token_seconds,
            ots,
        } => {
            let config = mok::Config {
                client_id,
                client_secret,
                token_seconds,
            };
            let (router, handle) = mok::router(config);
            for (ot, case) in ots {
                handle.add_ot(ot, case);
            }
            serve("mok", port, router).await?;
        }
        Command::Siesa { port, products } => {
            let (router, handle) = siesa::router(siesa::Config::demo());
            handle.generate(products);
            serve("siesa", port, router).await?;
        }
        Command::Kong { port } => serve("kong", port, kong::router(kong::Config::demo()).0).await?,
        Command::Wms { port } => serve("wms", port, wms::router(wms::Config::demo()).0).await?,
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

/// Serves a fake on loopback until Ctrl-C.
async fn serve(name: &str, port: u16, router: axum::Router) -> anyhow::Result<()> {
    let addr = orquesta_fakes::spawn(SocketAddr::from(([127, 0, 0, 1], port)), router).await?;
    eprintln!("fake {name} listening on http://{addr}");
    tokio::signal::ctrl_c().await?;
    Ok(())
}

/// `IDOT:CASE`.
fn parse_ot(text: &str) -> Result<(u64, u64), String> {
    let (ot, case) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not IDOT:CASE"))?;
    let number = |s: &str| s.parse::<u64>().map_err(|e| format!("{s:?}: {e}"));
    Ok((number(ot)?, number(case)?))
}
