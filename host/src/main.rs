//! The `orquesta` command line.

mod cli;

use std::process::ExitCode;

use clap::Parser;

/// A service allocating per request on every core: glibc's allocator cost the HTTP path
/// a seventh of its CPU (docs/BENCHMARKS.md); mimalloc's per-thread heaps do not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::init_logging(&args);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(cli::EXIT_BAD_INPUT);
        }
    };
    runtime.block_on(cli::run(args))
}
