//! An orquesta server for one test: temp directories, a free port, an admin token.

use std::path::{Path, PathBuf};
use std::time::Duration;

use orquesta::server::{HostConfig, RunningServer};
use orquesta::tenants::SecretRef;

pub const ADMIN_TOKEN: &str = "test-admin-token";

pub struct TestServer {
    pub url: String,
    pub dir: tempfile::TempDir,
    pub client: reqwest::Client,
    server: Option<RunningServer>,
}

impl TestServer {
    /// Starts a server whose plugin directory holds `plugins` (built names) and whose
    /// tenant directory holds `tenants` (name, TOML).
    pub async fn start(
        plugins: &[&str],
        tenants: &[(&str, &str)],
        tweak: impl FnOnce(&mut HostConfig),
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let token_file = dir.path().join("admin-token");
        std::fs::write(&token_file, ADMIN_TOKEN).expect("token written");
        let mut config = HostConfig {
            listen: "127.0.0.1:0".parse().expect("address"),
            data_dir: dir.path().join("data"),
            plugin_dir: dir.path().join("plugins"),
            tenant_dir: dir.path().join("tenants"),
            admin_token: Some(SecretRef {
                env: None,
                file: Some(token_file),
            }),
            ..HostConfig::default()
        };
        tweak(&mut config);
        std::fs::create_dir_all(&config.plugin_dir).expect("plugin dir");
        std::fs::create_dir_all(&config.tenant_dir).expect("tenant dir");
        for name in plugins {
            std::fs::copy(
                crate::plugin(name),
                config.plugin_dir.join(format!("{name}.wasm")),
            )
            .expect("plugin copied");
        }
        for (name, text) in tenants {
            std::fs::write(config.tenant_dir.join(format!("{name}.toml")), text)
                .expect("tenant written");
        }
        let server = orquesta::server::start(config)
            .await
            .expect("server starts");
        TestServer {
            url: format!("http://{}", server.addr),
            dir,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            server: Some(server),
        }
    }

    pub fn plugin_dir(&self) -> PathBuf {
        self.dir.path().join("plugins")
    }

    pub fn tenant_dir(&self) -> PathBuf {
        self.dir.path().join("tenants")
    }

    pub fn write_tenant(&self, name: &str, text: &str) {
        write_atomically(
            &self.tenant_dir().join(format!("{name}.toml")),
            text.as_bytes(),
        );
    }

    pub fn write_plugin(&self, name: &str, bytes: &[u8]) {
        write_atomically(&self.plugin_dir().join(format!("{name}.wasm")), bytes);
    }

    /// `GET /admin/v1/{path}` as JSON.
    pub async fn admin(&self, path: &str) -> serde_json::Value {
        self.client
            .get(format!("{}/admin/v1/{path}", self.url))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("admin answers")
            .json()
            .await
            .expect("admin JSON")
    }

    /// The sum of the `/metrics` series of `name` whose labels include all of `labels`
    /// (0 when there is none).
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let text = self
            .client
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .expect("/metrics answers")
            .text()
            .await
            .expect("/metrics text");
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .filter(|l| {
                labels
                    .iter()
                    .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Rescans now instead of waiting for the watcher.
    pub async fn reload(&self) -> serde_json::Value {
        self.client
            .post(format!("{}/admin/v1/reload", self.url))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("reload answers")
            .json()
            .await
            .expect("reload JSON")
    }

    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("clean shutdown");
        }
    }
}

/// Write-then-rename, as deploy tools do, so a watcher never sees half a file.
fn write_atomically(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes).expect("written");
    std::fs::rename(&tmp, path).expect("renamed");
}

/// `orquesta serve` as a separate process, for what only a process shows: signals and
/// the logs it writes.
pub struct ServeProcess {
    pub url: String,
    child: std::process::Child,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl ServeProcess {
    /// Starts `orquesta serve --config <dir>/orquesta.toml` with `env`, and waits for its
    /// "listening" line.
    pub fn start(dir: &Path, config: &str, env: &[(&str, &str)]) -> Self {
        use std::io::{BufRead as _, Read as _};
        let config_path = dir.join("orquesta.toml");
        std::fs::write(&config_path, config).expect("config written");
        let mut child = std::process::Command::new(crate::orquesta_bin())
            .args(["serve", "--config"])
            .arg(&config_path)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("orquesta serve starts");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("stderr piped");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&String::from_utf8_lossy(&chunk[..n]));
                }
            }
        });
        let stdout = child.stdout.take().expect("stdout piped");
        let mut lines = std::io::BufReader::new(stdout).lines();
        let url = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(url) = line.strip_prefix("orquesta listening on ") {
                        break url.to_string();
                    }
                }
                _ => {
                    let logs = stderr.lock().map(|s| s.clone()).unwrap_or_default();
                    panic!("orquesta serve exited before listening:\n{logs}");
                }
            }
        };
        ServeProcess { url, child, stderr }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the exit code (within `limit`).
    pub fn terminate(&mut self, limit: Duration) -> Option<i32> {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let started = std::time::Instant::now();
        while started.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Everything written to stderr so far.
    pub fn logs(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        // A test that failed midway must not leave a server behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The admin API's workflow endpoints for one tenant, as the tests drive them.
pub struct WorkflowAdmin {
    url: String,
    tenant: String,
    token: String,
    client: reqwest::Client,
}

impl WorkflowAdmin {
    pub fn new(url: &str, tenant: &str, token: &str) -> Self {
        WorkflowAdmin {
            url: url.to_string(),
            tenant: tenant.to_string(),
            token: token.to_string(),
            client: reqwest::Client::new(),
        }
    }

    /// `METHOD /admin/v1{path}`: (status, JSON body or null).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut r = self
            .client
            .request(method, format!("{}/admin/v1{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            r = r.json(&body);
        }
        let r = r.send().await.expect("admin answers");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Starts an execution of `workflow`; its id.
    pub async fn start(&self, workflow: &str, input: serde_json::Value) -> String {
        let path = format!("/tenants/{}/workflows/{workflow}/executions", self.tenant);
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                &path,
                Some(serde_json::json!({ "input": input })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["execution_id"]
            .as_str()
            .expect("an execution id")
            .to_string()
    }

    pub async fn describe(&self, id: &str) -> serde_json::Value {
        let path = format!("/tenants/{}/executions/{id}", self.tenant);
        self.call(reqwest::Method::GET, &path, None).await.1
    }

    /// Waits until the execution has ended; its description.
    pub async fn finished(&self, id: &str, limit: Duration) -> serde_json::Value {
        let started = std::time::Instant::now();
        loop {
            let d = self.describe(id).await;
            if d["status"] != "RUNNING" {
                return d;
            }
            assert!(started.elapsed() < limit, "still running: {d}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn history(&self, id: &str) -> Vec<serde_json::Value> {
        let path = format!("/tenants/{}/executions/{id}/history", self.tenant);
        let (_, body) = self.call(reqwest::Method::GET, &path, None).await;
        body["events"].as_array().cloned().unwrap_or_default()
    }
}

/// `POST {path}` on `s` with the admin token and a JSON body: the status and the JSON
/// answer (null when it is not JSON).
pub async fn post(s: &TestServer, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let r = s
        .client
        .post(format!("{}{path}", s.url))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .expect("the server answers");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}
