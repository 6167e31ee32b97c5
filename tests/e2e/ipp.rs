//! The IPP flow through the running service: the shipped tenant file, the built plugin,
//! the fake Databricks on loopback and a real HTTP client with demo-IdP tokens. Every
//! test runs on both implementations, the Rust plugin (`plugins/ipp`) and its Python
//! port (`plugins/python/ipp`), the tenant file's `source` choosing which.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use orquesta_fakes::databricks::{self, JOB1_ID, JOB2_ID};
use orquesta_fakes::idp;
use orquesta_tests::server::TestServer;
use serde_json::{Value, json};

const DBX_TOKEN: &str = "dapi-e2e";

/// The two implementations of the flow: the same routes, answers, job record and fixtures.
#[derive(Debug, Clone, Copy)]
enum Impl {
    Rust,
    Python,
}

impl Impl {
    /// The plugin's name in the test server's plugin directory (`NAME.wasm`).
    fn plugin(self) -> &'static str {
        match self {
            Impl::Rust => "ipp",
            Impl::Python => "ipp-python",
        }
    }
}

/// Runs the test function `$name(Impl)` as `$name::rust` and `$name::python`; the Python
/// one is ignored, saying why, where componentize-py is not installed (tests/build.rs).
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn rust() {
                super::$name(super::Impl::Rust).await
            }

            #[tokio::test]
            #[cfg_attr(
                no_componentize_py,
                ignore = "componentize-py 0.25.1 is not installed (docs/PLUGINS.md)"
            )]
            async fn python() {
                super::$name(super::Impl::Python).await
            }
        }
    )*};
}

on_both!(
    ipp_runs_from_validation_to_completed_results,
    a_failed_databricks_job_fails_the_ipp_job,
    ipp_routes_need_a_token_with_the_right_scope,
    the_ipp_fixtures_pass_in_isolation_and_a_wrong_blob_fails,
);

/// The shipped `examples/tenants/ipp.toml`, pointed at this test's fake, key file and JWKS
/// and at `imp`'s component.
fn tenant(dir: &std::path::Path, databricks_url: &str, imp: Impl) -> String {
    let root = orquesta_tests::workspace();
    let text = std::fs::read_to_string(root.join("examples/tenants/ipp.toml")).unwrap();
    let token_file = dir.join("databricks-token");
    std::fs::write(&token_file, DBX_TOKEN).unwrap();
    let swaps = [
        (
            "source = \"ipp.wasm\"",
            format!("source = \"{}.wasm\"", imp.plugin()),
        ),
        ("\"http://127.0.0.1:8781\"", format!("{databricks_url:?}")),
        (
            "{ env = \"IPP_DATABRICKS_TOKEN\" }",
            format!("{{ file = {:?} }}", token_file.display().to_string()),
        ),
        (
            "\"../idp/demo-jwks.json\"",
            format!(
                "{:?}",
                root.join("examples/idp/demo-jwks.json")
                    .display()
                    .to_string()
            ),
        ),
    ];
    swaps.iter().fold(text, |text, (from, to)| {
        assert!(
            text.contains(from),
            "the example tenant no longer has {from}"
        );
        text.replace(from, to)
    })
}

struct Ipp {
    server: TestServer,
    bearer: String,
    /// The fake Databricks' base URL.
    databricks: String,
    /// Holds the Databricks token file the tenant reads.
    _secrets: tempfile::TempDir,
}

impl Ipp {
    async fn start(imp: Impl, job_time: Duration, failing_job: Option<u64>) -> Self {
        let mut config = databricks::Config::demo(DBX_TOKEN, job_time);
        if let Some(id) = failing_job {
            config.jobs.get_mut(&id).unwrap().fails = true;
        }
        let fake =
            orquesta_fakes::spawn("127.0.0.1:0".parse().unwrap(), databricks::router(config))
                .await
                .unwrap();
        let secrets = tempfile::tempdir().unwrap();
        let databricks = format!("http://{fake}");
        let tenant = tenant(secrets.path(), &databricks, imp);
        let server = TestServer::start(&[imp.plugin()], &[("ipp", &tenant)], |_| {}).await;
        let bearer = idp::token(
            "user-42",
            10,
            json!({ "email": "ana@example.com", "name": "Ana", "scope": "ipp/read ipp/write" }),
        )
        .unwrap();
        Ipp {
            server,
            bearer,
            databricks,
            _secrets: secrets,
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}/t/ipp{path}", self.server.url);
        let mut req = self
            .server
            .client
            .request(method.parse().unwrap(), url)
            .bearer_auth(&self.bearer);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let answer = req.send().await.unwrap();
        let status = answer.status().as_u16();
        (status, answer.json().await.unwrap_or(Value::Null))
    }

    /// Polls status until the job ends; returns the statuses seen, in order, deduplicated.
    async fn poll_to_end(&self, job_id: &str) -> (Vec<(String, u64)>, Value) {
        let mut seen: Vec<(String, u64)> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (code, body) = self
                .call("GET", &format!("/ipp/status/{job_id}"), None)
                .await;
            assert_eq!(code, 200, "{body}");
            let status = body["status"].as_str().unwrap().to_string();
            let progress = body["progress"].as_u64().unwrap();
            if seen.last().map(|(s, _)| s) != Some(&status) {
                seen.push((status.clone(), progress));
            }
            if status == "COMPLETED" || status == "FAILED" {
                return (seen, body);
            }
            assert!(Instant::now() < deadline, "stuck at {body}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn ipp_runs_from_validation_to_completed_results(imp: Impl) {
    let ipp = Ipp::start(imp, Duration::from_millis(600), None).await;

    // Validation, manual and automatic.
    let (code, body) = ipp
        .call(
            "POST",
            "/ipp/validate-clients",
            Some(json!({ "mostradores": ["7051602", 7051603, "9999999"] })),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"], "partial_valid");
    assert_eq!(body["validClients"], json!(["7051602", "7051603"]));
    assert_eq!(body["invalidClients"], json!(["9999999"]));
    let (_, body) = ipp.call("POST", "/ipp/validate-clients", None).await;
    assert_eq!(body["mode"], "automatic");
    assert_eq!(body["validated"], 4, "{body}");

    // Bad input is a 400 and starts nothing.
    let (code, body) = ipp
        .call(
            "POST",
            "/ipp/start",
            Some(json!({ "mostradores": "7051602" })),
        )
        .await;
    assert_eq!(code, 400, "{body}");

    let (code, started) = ipp
        .call(
            "POST",
            "/ipp/start",
            Some(json!({ "mostradores": ["7051602", "7051603"] })),
        )
        .await;
    assert_eq!(code, 200, "{started}");
    assert_eq!(started["status"], "JOB1_RUNNING");
    let job_id = started["job_id"].as_str().unwrap().to_string();
    // Job 1 was triggered with the idempotency token `JOB_ID-job1`: the same token again
    // names the same run, as Databricks answers a repeated run-now.
    let again: Value = ipp
        .server
        .client
        .post(format!("{}/api/2.1/jobs/run-now", ipp.databricks))
        .bearer_auth(DBX_TOKEN)
        .json(&json!({ "job_id": JOB1_ID, "idempotency_token": format!("{job_id}-job1") }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        again["run_id"].to_string(),
        started["databricks_run_id"].as_str().unwrap_or_default(),
        "job 1's run-now carried no token `{job_id}-job1`: {again} {started}"
    );

    // Results before the end are a clear 409.
    let (code, body) = ipp
        .call("GET", &format!("/ipp/results/{job_id}"), None)
        .await;
    assert_eq!(code, 409, "{body}");
    assert_eq!(body["error"], "NotCompleted");

    let (seen, last) = ipp.poll_to_end(&job_id).await;
    assert_eq!(
        seen,
        [
            ("JOB1_RUNNING".to_string(), 25),
            ("JOB1_DONE".to_string(), 40),
            ("PROCESSING".to_string(), 60),
            ("JOB2_RUNNING".to_string(), 80),
            ("COMPLETED".to_string(), 100),
        ],
        "{last}"
    );

    let (code, results) = ipp
        .call("GET", &format!("/ipp/results/{job_id}"), None)
        .await;
    assert_eq!(code, 200, "{results}");
    assert_eq!(results["mostradores"], json!(["7051602", "7051603"]));
    assert_eq!(
        results["process_info"]["user_info"]["email"],
        "ana@example.com"
    );
    assert_eq!(results["process_info"]["user_info"]["sub"], "user-42");
    assert_eq!(
        results["summary"]["rows_processed"], 6,
        "3 articles per counter"
    );
    assert_eq!(results["summary"]["success"], true);
    let run1: u64 = results["databricks_info"]["job1_run_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let run2: u64 = results["databricks_info"]["job2_run_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(run1, run2);

    // The blobs are on disk under the tenant's bucket; the processed one has the factor.
    let blobs = ipp.server.dir.path().join("data/blobs/ipp/ipp");
    let processed: Value = serde_json::from_slice(
        &std::fs::read(blobs.join(format!("processed/{job_id}.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(processed["factor"], 1.15);
    for row in processed["rows"].as_array().unwrap() {
        let demand = row["demanda"].as_f64().unwrap();
        assert_eq!(
            row["cantidad_sugerida"],
            (demand * 1.15).ceil() as u64,
            "{row}"
        );
    }
    assert!(blobs.join(format!("raw/{job_id}.json")).is_file());

    // The job record expires 7 days after it was created.
    let db = ipp.server.dir.path().join("data/orquesta.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let (expires_at,): (i64,) =
        sqlx::query_as("SELECT expires_at FROM kv_items WHERE tenant = 'ipp' AND key = ?1")
            .bind(format!("job/{job_id}"))
            .fetch_one(&pool)
            .await
            .unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let week = 7 * 24 * 3_600_000;
    assert!(
        (expires_at - (now + week)).abs() < 120_000,
        "expires {} ms from now, not 7 days",
        expires_at - now
    );
    ipp.server.shutdown().await;
}

async fn a_failed_databricks_job_fails_the_ipp_job(imp: Impl) {
    let ipp = Ipp::start(imp, Duration::from_millis(300), Some(JOB2_ID)).await;
    let (code, started) = ipp.call("POST", "/ipp/start", None).await;
    assert_eq!(code, 200, "{started}");
    assert_eq!(
        started["mostradores_count"], 4,
        "automatic mode takes every counter"
    );
    let job_id = started["job_id"].as_str().unwrap().to_string();
    let (seen, last) = ipp.poll_to_end(&job_id).await;
    assert_eq!(seen.last().unwrap(), &("FAILED".to_string(), 0));
    assert!(seen.iter().any(|(s, _)| s == "JOB2_RUNNING"), "{seen:?}");
    assert!(
        last["error"].as_str().unwrap().contains("job 2 failed"),
        "{last}"
    );
    let (code, body) = ipp
        .call("GET", &format!("/ipp/results/{job_id}"), None)
        .await;
    assert_eq!(code, 409, "{body}");
    assert_eq!(body["status"], "FAILED");
    ipp.server.shutdown().await;
}

async fn ipp_routes_need_a_token_with_the_right_scope(imp: Impl) {
    let mut ipp = Ipp::start(imp, Duration::from_millis(300), None).await;
    let url = format!("{}/t/ipp/ipp/start", ipp.server.url);
    let answer = ipp.server.client.post(&url).send().await.unwrap();
    assert_eq!(answer.status(), 401);
    ipp.bearer = idp::token("reader", 10, json!({ "scope": "ipp/read" })).unwrap();
    let (code, body) = ipp.call("POST", "/ipp/start", None).await;
    assert_eq!(code, 403, "{body}");
    let (code, body) = ipp.call("GET", "/ipp/status/ipp-unknown", None).await;
    assert_eq!(code, 404, "{body}");
    assert_eq!(body["error"], "JobNotFound");
    ipp.server.shutdown().await;
}

async fn the_ipp_fixtures_pass_in_isolation_and_a_wrong_blob_fails(imp: Impl) {
    use orquesta::testing::TestPlugin;
    use orquesta::testing::fixtures::FixtureFile;
    let plugin = TestPlugin::load(orquesta_tests::plugin(imp.plugin()))
        .await
        .unwrap();
    let path = orquesta_tests::workspace().join("examples/ipp/fixtures.toml");
    let results = FixtureFile::load(&path)
        .unwrap()
        .run(&plugin)
        .await
        .unwrap();
    assert_eq!(results.len(), 20);
    for r in &results {
        assert!(r.passed(), "{}: {:?}", r.name, r.failures);
    }

    // The same file with one wrong suggested quantity fails that case, on the blob.
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("cantidad_sugerida = 16"));
    let wrong = text.replace("cantidad_sugerida = 16", "cantidad_sugerida = 17");
    let results = FixtureFile::parse(&path, &wrong)
        .unwrap()
        .run(&plugin)
        .await
        .unwrap();
    let failed: Vec<_> = results.iter().filter(|r| !r.passed()).collect();
    assert_eq!(failed.len(), 1);
    assert!(failed[0].name.starts_with("status: PROCESSING"));
    assert_eq!(failed[0].failures.len(), 1, "{:?}", failed[0].failures);
    assert!(
        failed[0].failures[0].starts_with("blob ipp/processed/ipp-test.json"),
        "{:?}",
        failed[0].failures
    );
}
