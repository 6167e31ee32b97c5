//! What the benchmarks stand on: the workspace's plugins built for wasm32-wasip2, hosts
//! started in this process or as child processes of this binary, and their admin API.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use orquesta::server::{HostConfig, RunningServer};
use orquesta::tenants::SecretRef;
use serde_json::Value;

pub const ADMIN_TOKEN: &str = "bench-admin-token";
/// The multi-host rows run on PostgreSQL with 1, 2, ... up to this many hosts.
pub const MAX_HOSTS: usize = 3;

/// "1 host", "2 hosts".
pub fn count_hosts(n: usize) -> String {
    if n == 1 {
        "1 host".to_string()
    } else {
        format!("{n} hosts")
    }
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(workspace());
    cmd
}

/// Builds `packages` for wasm32-wasip2 (release; a no-op when fresh) and returns their
/// components' paths.
pub fn components(packages: &[&str]) -> anyhow::Result<Vec<PathBuf>> {
    let mut cmd = cargo();
    cmd.args(["build", "--quiet", "--release", "--target", "wasm32-wasip2"]);
    for p in packages {
        cmd.args(["-p", p]);
    }
    let status = cmd.status().context("cannot run cargo")?;
    if !status.success() {
        bail!(
            "building {packages:?} failed; is the wasm target installed? (rustup target add wasm32-wasip2)"
        );
    }
    Ok(packages
        .iter()
        .map(|p| {
            target_dir()
                .join("wasm32-wasip2/release")
                .join(format!("{}.wasm", p.replace('-', "_")))
        })
        .collect())
}

/// The `orquesta` binary of this build's profile (release for the full run), built on
/// first use: the HTTP and scale benchmarks measure `orquesta serve` as users run it.
pub fn orquesta_bin() -> anyhow::Result<PathBuf> {
    let release = !cfg!(debug_assertions);
    let mut cmd = cargo();
    cmd.args(["build", "--quiet", "-p", "orquesta", "--bin", "orquesta"]);
    if release {
        cmd.arg("--release");
    }
    if !cmd.status().context("cannot run cargo")?.success() {
        bail!("building the orquesta binary failed");
    }
    Ok(target_dir()
        .join(if release { "release" } else { "debug" })
        .join("orquesta"))
}

/// A host in this process on temporary directories, with `tenants` (name, TOML) and
/// the `plugins` (package names) deployed.
pub struct Host {
    pub server: RunningServer,
    pub url: String,
    pub dir: tempfile::TempDir,
    pub client: reqwest::Client,
}

impl Host {
    pub async fn start(
        plugins: &[&str],
        tenants: &[(&str, String)],
        store: Option<&str>,
    ) -> anyhow::Result<Host> {
        Self::start_with(plugins, tenants, store, |_| Ok(())).await
    }

    /// [`Host::start`], with `extra` writing more files (workflow definitions) into the
    /// tenant directory first.
    pub async fn start_with(
        plugins: &[&str],
        tenants: &[(&str, String)],
        store: Option<&str>,
        extra: impl FnOnce(&Path) -> std::io::Result<()>,
    ) -> anyhow::Result<Host> {
        let dir = tempfile::tempdir()?;
        let config = write_layout(dir.path(), plugins, tenants, store)?;
        extra(&config.tenant_dir)?;
        Host::serve(dir, config, tenants.len()).await
    }

    /// A host on `config`, laid out in `dir` by [`write_layout`] (and changed after, as
    /// the S3 blob rows set `[blobs]`), once `tenants` tenants serve.
    pub async fn serve(
        dir: tempfile::TempDir,
        config: HostConfig,
        tenants: usize,
    ) -> anyhow::Result<Host> {
        let server = orquesta::server::start(config).await?;
        let url = format!("http://{}", server.addr);
        let host = Host {
            server,
            url,
            dir,
            client: client()?,
        };
        host.wait_serving(tenants).await?;
        Ok(host)
    }

    /// `n` hosts sharing `store` (PostgreSQL when `n` > 1), each serving `tenants`: the
    /// first as [`Host::start_with`] lays it out, the others its siblings.
    pub async fn start_many(
        n: usize,
        plugins: &[&str],
        tenants: &[(&str, String)],
        store: Option<&str>,
        extra: impl FnOnce(&Path) -> std::io::Result<()>,
    ) -> anyhow::Result<Vec<Host>> {
        if n > 1 && !store.is_some_and(|url| url.starts_with("postgres")) {
            bail!("{n} hosts need a shared store (PostgreSQL), not {store:?}");
        }
        let mut hosts = vec![Host::start_with(plugins, tenants, store, extra).await?];
        if let Some(url) = store {
            for _ in 1..n {
                let sibling = hosts[0].sibling(url).await?;
                sibling.wait_serving(tenants.len()).await?;
                hosts.push(sibling);
            }
        }
        Ok(hosts)
    }

    /// Stops every host of [`Host::start_many`], the first last.
    pub async fn stop_all(hosts: Vec<Host>) -> anyhow::Result<()> {
        for host in hosts.into_iter().rev() {
            host.stop().await?;
        }
        Ok(())
    }

    /// Another host on the same directories and store (PostgreSQL), for multi-host runs.
    pub async fn sibling(&self, store: &str) -> anyhow::Result<Host> {
        let dir = tempfile::tempdir()?;
        let mut config = host_config(self.dir.path(), Some(store));
        config.data_dir = dir.path().join("data");
        let server = orquesta::server::start(config).await?;
        let url = format!("http://{}", server.addr);
        let host = Host {
            server,
            url,
            dir,
            client: client()?,
        };
        Ok(host)
    }

    /// `METHOD /admin/v1{path}`.
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut r = self
            .client
            .request(method, format!("{}/admin/v1{path}", self.url))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            r = r.json(&body);
        }
        let answer = r.send().await?;
        let status = answer.status();
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("admin {path}: {status}: {body}");
        }
        Ok(body)
    }

    /// Waits until `n` tenants serve, or says why not.
    pub async fn wait_serving(&self, n: usize) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let tenants = self.admin(reqwest::Method::GET, "/tenants", None).await?;
            let list = tenants["tenants"].as_array().cloned().unwrap_or_default();
            if let Some(bad) = list.iter().find(|t| !t["error"].is_null()) {
                bail!("a tenant does not load: {bad}");
            }
            let serving = list.iter().filter(|t| t["serving"] == true).count();
            // Plugins compile in the background: a route answers 503 until then.
            let plugins = self.admin(reqwest::Method::GET, "/plugins", None).await?;
            let plugins = plugins["plugins"].as_array().cloned().unwrap_or_default();
            if let Some(bad) = plugins.iter().find(|p| !p["error"].is_null()) {
                bail!("a plugin does not load: {bad}");
            }
            let compiled = !plugins.is_empty() && plugins.iter().all(|p| p["hash"].is_string());
            if serving >= n && compiled {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(120) {
                bail!("only {serving} of {n} tenants serve: {tenants}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.server.shutdown().await
    }
}

pub fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(256)
        .build()?)
}

fn host_config(root: &Path, store: Option<&str>) -> HostConfig {
    HostConfig {
        listen: "127.0.0.1:0"
            .parse()
            .unwrap_or_else(|_| ([127, 0, 0, 1], 0).into()),
        data_dir: root.join("data"),
        plugin_dir: root.join("plugins"),
        tenant_dir: root.join("tenants"),
        store: store.map(str::to_string),
        admin_token: Some(SecretRef {
            env: None,
            file: Some(root.join("admin-token")),
        }),
        ..HostConfig::default()
    }
}

/// Directories, plugins, tenants and the admin token under `root`; the host config.
pub fn write_layout(
    root: &Path,
    plugins: &[&str],
    tenants: &[(&str, String)],
    store: Option<&str>,
) -> anyhow::Result<HostConfig> {
    let config = host_config(root, store);
    std::fs::create_dir_all(&config.plugin_dir)?;
    std::fs::create_dir_all(&config.tenant_dir)?;
    std::fs::write(root.join("admin-token"), ADMIN_TOKEN)?;
    for (package, path) in plugins.iter().zip(components(plugins)?) {
        std::fs::copy(
            &path,
            config
                .plugin_dir
                .join(format!("{}.wasm", package.replace('-', "_"))),
        )
        .with_context(|| format!("cannot copy {}", path.display()))?;
    }
    for (name, text) in tenants {
        std::fs::write(config.tenant_dir.join(format!("{name}.toml")), text)?;
    }
    Ok(config)
}

/// The host config as a file, for a host in a child process.
pub fn write_host_file(root: &Path, config: &HostConfig) -> anyhow::Result<PathBuf> {
    let path = root.join("orquesta.toml");
    let token = root.join("admin-token");
    let text = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\nplugin_dir = {:?}\ntenant_dir = {:?}\nadmin_token = {{ file = {:?} }}\ninstance_slots = {}\n",
        config.data_dir, config.plugin_dir, config.tenant_dir, token, config.instance_slots
    );
    std::fs::write(&path, text)?;
    Ok(path)
}

/// A child process (`orquesta serve`, this binary's `native`, `wasmtime serve`) that
/// prints where it listens when ready; killed on drop.
pub struct Process {
    pub url: String,
    child: Child,
}

impl Process {
    /// `orquesta serve --config CONFIG`.
    pub fn serve(config: &Path) -> anyhow::Result<Process> {
        let bin = orquesta_bin()?;
        let config = config.to_string_lossy();
        Self::spawn_program(&bin, &["serve", "--config", &config], "listening on ")
    }

    /// `exe` (this benchmark binary) with `args`.
    pub fn spawn(exe: &Path, args: &[&str]) -> anyhow::Result<Process> {
        Self::spawn_program(exe, args, "listening on ")
    }

    /// Any program that announces its address on stdout or stderr after `marker`.
    pub fn spawn_program(program: &Path, args: &[&str], marker: &str) -> anyhow::Result<Process> {
        use std::io::{BufRead as _, BufReader};
        let mut child = Command::new(program)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        let (tx, rx) = std::sync::mpsc::channel();
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let tx = tx.clone();
            let marker = marker.to_string();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if let Some(at) = line.find(&marker) {
                        let rest = line[at + marker.len()..].trim();
                        let url = rest.split_whitespace().next().unwrap_or_default();
                        let url = if url.starts_with("http") {
                            url.to_string()
                        } else {
                            format!("http://{url}")
                        };
                        let _ = tx.send(url);
                    }
                }
            });
        }
        let url = rx
            .recv_timeout(Duration::from_secs(120))
            .with_context(|| format!("{} did not say where it listens", program.display()))?;
        Ok(Process { url, child })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident memory of a process, from `/proc`: (current, peak) in bytes.
pub fn rss(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .unwrap_or(0)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}
