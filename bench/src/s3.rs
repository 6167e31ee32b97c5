//! An S3-compatible server for the blob benchmark's S3 rows: `s3s-fs` (a real S3
//! protocol server over a folder, the one the host's blob tests run on; `.ci/s3` installs
//! it), started on a free loopback port with a temporary folder, killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use orquesta::store::BlobsConfig;
use orquesta::tenants::SecretRef;

/// Where the server's binary is named, in order.
pub const SERVER_VARS: [&str; 2] = ["ORQUESTA_BENCH_S3_SERVER", "ORQUESTA_TEST_S3_SERVER"];
const BUCKET: &str = "orquesta-bench";
const ACCESS_KEY: &str = "bench-key";
const SECRET_KEY: &str = "bench-secret";

/// The server binary the environment names, if any.
pub fn server_from_env() -> Option<PathBuf> {
    SERVER_VARS
        .iter()
        .filter_map(std::env::var_os)
        .find(|v| !v.is_empty())
        .map(PathBuf::from)
}

pub struct S3Server {
    child: Child,
    /// The server's folder: a bucket is a folder of it.
    pub root: tempfile::TempDir,
    port: u16,
}

impl S3Server {
    pub async fn start(bin: &Path) -> anyhow::Result<S3Server> {
        let root = tempfile::tempdir()?;
        std::fs::create_dir(root.path().join(BUCKET))?;
        // Taken and released: s3s-fs binds it next (loopback, nothing else races for it).
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start the S3 server {}", bin.display()))?;
        let server = S3Server { child, root, port };
        let started = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if started.elapsed() > Duration::from_secs(10) {
                bail!(
                    "{} did not listen on 127.0.0.1:{port} within 10 s",
                    bin.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(server)
    }

    /// A host's `[blobs]` on this server, its credentials in files under `dir`.
    pub fn blobs_config(&self, dir: &Path) -> anyhow::Result<BlobsConfig> {
        let secret = |name: &str, value: &str| -> anyhow::Result<Option<SecretRef>> {
            let file = dir.join(name);
            std::fs::write(&file, value)?;
            Ok(Some(SecretRef {
                env: None,
                file: Some(file),
            }))
        };
        Ok(BlobsConfig {
            backend: None,
            url: Some(format!(
                "s3://{BUCKET}?endpoint=http://127.0.0.1:{}&region=us-east-1",
                self.port
            )),
            access_key_id: secret("s3-key", ACCESS_KEY)?,
            secret_access_key: secret("s3-secret", SECRET_KEY)?,
        })
    }

    /// Objects the server holds for `tenant` (files under its prefix; s3s-fs keeps its
    /// own metadata in dot files).
    pub fn objects_of(&self, tenant: &str) -> usize {
        files_under(&self.root.path().join(BUCKET).join(tenant))
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Files under `dir` at any depth, dot files left out.
fn files_under(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                files_under(&e.path())
            } else {
                1
            }
        })
        .sum()
}
