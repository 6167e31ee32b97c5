//! orquesta's benchmarks (docs/BENCHMARKS.md): each measures one promise beside a
//! reference run the same way in the same process or on the same machine, and reports
//! medians, percentiles and ratios as rows of one table. `--smoke` runs every benchmark
//! with tiny sizes, to show it works (the test suite does that), not to measure.

pub mod blobs;
pub mod deploys;
pub mod flows;
pub mod http;
pub mod instantiate;
pub mod languages;
pub mod neighbour;
pub mod queues;
pub mod report;
pub mod s3;
pub mod scale;
pub mod setup;
pub mod soak;
pub mod workflows;

pub use report::{Row, Target};

/// What every benchmark is told.
#[derive(Debug, Clone)]
pub struct Options {
    /// Tiny sizes, no external load generator: checks the benchmarks run.
    pub smoke: bool,
    /// A PostgreSQL database to measure the shared store on.
    pub postgres: Option<String>,
    /// An S3-compatible server's binary (`s3s-fs`) for the blob benchmark's S3 rows.
    pub s3_server: Option<std::path::PathBuf>,
    /// This benchmark binary, which also runs the HTTP benchmark's native reference
    /// (`orquesta-bench native`).
    pub exe: std::path::PathBuf,
}

impl Options {
    /// `full` normally, `smoke` in smoke mode.
    pub fn size(&self, full: usize, smoke: usize) -> usize {
        if self.smoke { smoke } else { full }
    }
}
