//! A fake Databricks workspace: the parts of its REST API the IPP flow uses, answering as
//! the real one does (shapes, states, error codes), with job runs that take a configured
//! time and then succeed or fail.
//!
//! - `POST /api/2.0/sql/statements`: the statement execution API, synchronous (`wait_timeout`
//!   honoured by answering at once). It understands the two queries the IPP flow sends
//!   against the configuration table (`... WHERE mostrador IN (...)`, with literals or
//!   `:named` parameters, and `SELECT DISTINCT ... IS NOT NULL`); anything else fails the
//!   way Databricks fails a statement (`status.state = FAILED` with an error code).
//! - `POST /api/2.1/jobs/run-now` with `idempotency_token` support.
//! - `GET /api/2.1/jobs/runs/get?run_id=` : `PENDING`, then `RUNNING`, then `TERMINATED`
//!   with `SUCCESS` or `FAILED`, by elapsed time.
//! - `GET /api/2.1/jobs/runs/get-output?run_id=`: the notebook's exit value once done.
//!
//! Every call needs `Authorization: Bearer <token>`: none is 401, a wrong one 403.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

/// What one job does when run.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub name: String,
    /// How long a run takes; the first fifth of it is `PENDING`.
    pub duration: Duration,
    pub fails: bool,
    pub kind: JobKind,
}

/// What a job's notebook returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// IPP job 1: normalises the counters' data into demand rows.
    Normalizer,
    /// IPP job 2: loads the processed rows into the results table.
    Loader,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The bearer token every call must carry.
    pub token: String,
    pub warehouse_id: String,
    /// The configuration table and the counters it holds.
    pub config_table: String,
    pub mostradores: Vec<String>,
    pub jobs: BTreeMap<u64, JobSpec>,
    /// Shown in `run_page_url`.
    pub workspace_url: String,
}

/// Job ids of the demo workspace, as the IPP tenant config names them.
pub const JOB1_ID: u64 = 789;
pub const JOB2_ID: u64 = 790;

impl Config {
    /// The demo workspace: the IPP configuration table and its two jobs, each taking
    /// `job_time`.
    pub fn demo(token: &str, job_time: Duration) -> Self {
        let job = |name: &str, kind| JobSpec {
            name: name.into(),
            duration: job_time,
            fails: false,
            kind,
        };
        Config {
            token: token.into(),
            warehouse_id: "demo-warehouse".into(),
            config_table: "invenadro.bronze.invenadro_input_automatizacion".into(),
            mostradores: ["7051602", "7051603", "7051605", "7051610"]
                .map(String::from)
                .into(),
            jobs: BTreeMap::from([
                (JOB1_ID, job("ipp-normalizador", JobKind::Normalizer)),
                (JOB2_ID, job("ipp-cargador", JobKind::Loader)),
            ]),
            workspace_url: "https://adb-demo.azuredatabricks.net".into(),
        }
    }
}

#[derive(Debug, Clone)]
struct Run {
    run_id: u64,
    job_id: u64,
    started: Instant,
    start_ms: u64,
    params: Value,
}

#[derive(Default)]
struct Runs {
    next_id: u64,
    runs: HashMap<u64, Run>,
    by_token: HashMap<String, u64>,
}

#[derive(Clone)]
struct Fake {
    config: Arc<Config>,
    runs: Arc<Mutex<Runs>>,
}

/// The fake's routes.
pub fn router(config: Config) -> Router {
    let fake = Fake {
        config: Arc::new(config),
        runs: Arc::new(Mutex::new(Runs {
            next_id: 1001,
            ..Runs::default()
        })),
    };
    Router::new()
        .route("/api/2.0/sql/statements", post(statement))
        .route("/api/2.1/jobs/run-now", post(run_now))
        .route("/api/2.1/jobs/runs/get", get(runs_get))
        .route("/api/2.1/jobs/runs/get-output", get(runs_get_output))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "ENDPOINT_NOT_FOUND",
                "No API found for this path",
            )
        })
        .with_state(fake)
}

/// An error answer in Databricks' shape: `{"error_code", "message"}`.
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

fn error(status: StatusCode, code: &'static str, message: &str) -> ApiError {
    ApiError {
        status,
        code,
        message: message.to_string(),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({ "error_code": self.code, "message": self.message })),
        )
            .into_response()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

impl Fake {
    fn authorize(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let bearer = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match bearer {
            None => Err(error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "Credential was not sent or was of an unsupported type for this API.",
            )),
            Some(t) if t == self.config.token => Ok(()),
            Some(_) => Err(error(
                StatusCode::FORBIDDEN,
                "PERMISSION_DENIED",
                "Invalid access token.",
            )),
        }
    }

    /// An authorized call's JSON body.
    fn request<T: serde::de::DeserializeOwned>(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<T, ApiError> {
        self.authorize(headers)?;
        serde_json::from_slice(body).map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                "MALFORMED_REQUEST",
                &format!("Invalid JSON given in the body of the request: {e}"),
            )
        })
    }

    fn run(&self, run_id: u64) -> Result<(Run, JobSpec), ApiError> {
        let runs = self.runs.lock().map_err(|_| poisoned())?;
        let run = runs.runs.get(&run_id).cloned().ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                "RESOURCE_DOES_NOT_EXIST",
                &format!("Run {run_id} does not exist."),
            )
        })?;
        let spec = self.config.jobs.get(&run.job_id).cloned().ok_or_else(|| {
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_ERROR",
                "job vanished",
            )
        })?;
        Ok((run, spec))
    }

    fn run_json(&self, run: &Run, spec: &JobSpec) -> Value {
        let elapsed = run.started.elapsed();
        let (life_cycle, result) = if elapsed < spec.duration / 5 {
            ("PENDING", None)
        } else if elapsed < spec.duration {
            ("RUNNING", None)
        } else if spec.fails {
            ("TERMINATED", Some("FAILED"))
        } else {
            ("TERMINATED", Some("SUCCESS"))
        };
        let mut state = json!({ "life_cycle_state": life_cycle, "state_message": "" });
        if let Some(result) = result {
            state["result_state"] = json!(result);
            if result == "FAILED" {
                state["state_message"] =
                    json!("Task failed with error: notebook raised an exception");
            }
        }
        let mut body = json!({
            "job_id": run.job_id,
            "run_id": run.run_id,
            "run_name": spec.name,
            "number_in_job": run.run_id,
            "state": state,
            "start_time": run.start_ms,
            "run_page_url": format!("{}/#job/{}/run/{}", self.config.workspace_url, run.job_id, run.run_id),
            "overriding_parameters": { "notebook_params": run.params },
        });
        if result.is_some() {
            body["end_time"] = json!(run.start_ms + spec.duration.as_millis() as u64);
        }
        body
    }
}

fn poisoned() -> ApiError {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "INTERNAL_ERROR",
        "fake state poisoned",
    )
}

#[derive(Deserialize)]
struct StatementRequest {
    warehouse_id: String,
    statement: String,
    #[serde(default)]
    parameters: Vec<StatementParam>,
}

#[derive(Deserialize)]
struct StatementParam {
    name: String,
    value: Option<String>,
}

async fn statement(
    State(fake): State<Fake>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let req: StatementRequest = match fake.request(&headers, &body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    if req.warehouse_id != fake.config.warehouse_id {
        return error(
            StatusCode::NOT_FOUND,
            "RESOURCE_DOES_NOT_EXIST",
            &format!("Warehouse {} does not exist.", req.warehouse_id),
        )
        .into_response();
    }
    let statement_id = uuid::Uuid::new_v4().to_string();
    match run_query(&fake.config, &req.statement, &req.parameters) {
        Ok(rows) => Json(json!({
            "statement_id": statement_id,
            "status": { "state": "SUCCEEDED" },
            "manifest": {
                "format": "JSON_ARRAY",
                "schema": { "column_count": 1, "columns": [{ "name": "mostrador", "type_name": "STRING", "position": 0 }] },
                "total_row_count": rows.len(),
                "truncated": false,
            },
            "result": {
                "chunk_index": 0, "row_offset": 0, "row_count": rows.len(),
                "data_array": rows.iter().map(|r| json!([r])).collect::<Vec<_>>(),
            },
        }))
        .into_response(),
        Err(message) => Json(json!({
            "statement_id": statement_id,
            "status": { "state": "FAILED", "error": { "error_code": "BAD_REQUEST", "message": message } },
        }))
        .into_response(),
    }
}

/// The configured counters a query selects, or the error Databricks would report.
fn run_query(
    config: &Config,
    statement: &str,
    params: &[StatementParam],
) -> Result<Vec<String>, String> {
    let words: Vec<&str> = statement.split_whitespace().collect();
    let sql = words.join(" ");
    let upper = sql.to_ascii_uppercase();
    let table = words
        .iter()
        .position(|w| w.eq_ignore_ascii_case("FROM"))
        .and_then(|i| words.get(i + 1))
        .ok_or_else(|| {
            format!("[PARSE_SYNTAX_ERROR] Syntax error at or near end of input: {sql}")
        })?;
    if !upper.starts_with("SELECT ") || !upper.contains("MOSTRADOR") {
        return Err(format!(
            "[PARSE_SYNTAX_ERROR] this workspace only answers the IPP configuration queries, got: {sql}"
        ));
    }
    if *table != config.config_table {
        return Err(format!(
            "[TABLE_OR_VIEW_NOT_FOUND] The table or view `{table}` cannot be found."
        ));
    }
    let mut all = config.mostradores.clone();
    all.sort();
    all.dedup();
    if upper.contains("IS NOT NULL") {
        return Ok(all);
    }
    let open = upper.find(" IN (").ok_or_else(|| {
        format!("[PARSE_SYNTAX_ERROR] expected `WHERE mostrador IN (...)`: {sql}")
    })?;
    let rest = &sql[open + 5..];
    let close = rest
        .find(')')
        .ok_or_else(|| "[PARSE_SYNTAX_ERROR] unclosed `IN (`".to_string())?;
    let mut wanted = Vec::new();
    for item in rest[..close].split(',').map(str::trim) {
        let value = if let Some(name) = item.strip_prefix(':') {
            params
                .iter()
                .find(|p| p.name == name)
                .and_then(|p| p.value.clone())
                .ok_or_else(|| {
                    format!("[UNBOUND_SQL_PARAMETER] Found the unbound parameter: {name}.")
                })?
        } else {
            item.trim_matches('\'').to_string()
        };
        wanted.push(value);
    }
    Ok(all.into_iter().filter(|m| wanted.contains(m)).collect())
}

#[derive(Deserialize)]
struct RunNow {
    job_id: u64,
    #[serde(default)]
    notebook_params: Value,
    #[serde(default)]
    idempotency_token: Option<String>,
}

async fn run_now(
    State(fake): State<Fake>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let req: RunNow = match fake.request(&headers, &body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    if !fake.config.jobs.contains_key(&req.job_id) {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMETER_VALUE",
            &format!("Job {} does not exist.", req.job_id),
        )
        .into_response();
    }
    let Ok(mut runs) = fake.runs.lock() else {
        return poisoned().into_response();
    };
    // The same token always names the same run, as in the real API.
    if let Some(run_id) = req
        .idempotency_token
        .as_ref()
        .and_then(|t| runs.by_token.get(t))
    {
        return Json(json!({ "run_id": run_id, "number_in_job": run_id })).into_response();
    }
    let run_id = runs.next_id;
    runs.next_id += 1;
    runs.runs.insert(
        run_id,
        Run {
            run_id,
            job_id: req.job_id,
            started: Instant::now(),
            start_ms: now_ms(),
            params: if req.notebook_params.is_null() {
                json!({})
            } else {
                req.notebook_params
            },
        },
    );
    if let Some(token) = req.idempotency_token {
        runs.by_token.insert(token, run_id);
    }
    Json(json!({ "run_id": run_id, "number_in_job": run_id })).into_response()
}

#[derive(Deserialize)]
struct RunQuery {
    run_id: Option<String>,
}

fn run_id(q: &RunQuery) -> Result<u64, ApiError> {
    q.run_id
        .as_deref()
        .and_then(|r| r.parse().ok())
        .ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                "INVALID_PARAMETER_VALUE",
                "Missing or invalid required parameter: run_id",
            )
        })
}

async fn runs_get(
    State(fake): State<Fake>,
    headers: HeaderMap,
    Query(q): Query<RunQuery>,
) -> Response {
    let found = fake
        .authorize(&headers)
        .and_then(|_| run_id(&q))
        .and_then(|id| fake.run(id));
    match found {
        Ok((run, spec)) => Json(fake.run_json(&run, &spec)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn runs_get_output(
    State(fake): State<Fake>,
    headers: HeaderMap,
    Query(q): Query<RunQuery>,
) -> Response {
    let (run, spec) = match fake
        .authorize(&headers)
        .and_then(|_| run_id(&q))
        .and_then(|id| fake.run(id))
    {
        Ok(found) => found,
        Err(e) => return e.into_response(),
    };
    let metadata = fake.run_json(&run, &spec);
    let mut body = json!({ "metadata": metadata });
    // Until the run ends there is no output, only metadata.
    match metadata["state"]["result_state"].as_str() {
        Some("SUCCESS") => {
            let result = notebook_result(&run, &spec);
            body["notebook_output"] = json!({ "result": result.to_string(), "truncated": false });
        }
        Some(_) => {
            body["error"] = json!("Exception: notebook raised an exception");
        }
        None => {}
    }
    Json(body).into_response()
}

/// The notebook's exit value: job 1 returns demand rows for each counter it was given,
/// job 2 how many processed rows it loaded.
fn notebook_result(run: &Run, spec: &JobSpec) -> Value {
    let param = |name: &str| run.params[name].as_str().unwrap_or_default().to_string();
    match spec.kind {
        JobKind::Normalizer => {
            let mostradores: Vec<String> =
                serde_json::from_str(&param("mostradores")).unwrap_or_default();
            let rows: Vec<Value> = mostradores
                .iter()
                .flat_map(|m| {
                    // Stable, made-up demand per counter and article.
                    let seed: u64 = m.bytes().map(u64::from).sum();
                    (1..=3).map(move |a| {
                        json!({
                            "mostrador": m,
                            "articulo": format!("ART-{a:03}"),
                            "demanda": ((seed * a) % 97) as f64 + 0.5,
                        })
                    })
                })
                .collect();
            json!({ "job_id": param("job_id"), "rows": rows })
        }
        JobKind::Loader => {
            json!({
                "job_id": param("job_id"),
                "rows_loaded": param("rows").parse::<u64>().unwrap_or(0),
                "results_table": param("results_table"),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<StatementParam> {
        pairs
            .iter()
            .map(|(n, v)| StatementParam {
                name: n.to_string(),
                value: Some(v.to_string()),
            })
            .collect()
    }

    #[test]
    fn queries_select_configured_counters() {
        let c = Config::demo("t", Duration::from_secs(1));
        let table = &c.config_table;
        let q = format!("SELECT mostrador FROM {table} WHERE mostrador IN (:m0, :m1, :m2)");
        let got = run_query(
            &c,
            &q,
            &params(&[("m0", "7051602"), ("m1", "9999999"), ("m2", "7051603")]),
        );
        assert_eq!(got.unwrap(), ["7051602", "7051603"]);
        let q = format!("SELECT mostrador FROM {table} WHERE mostrador IN ('7051610', 1)");
        assert_eq!(run_query(&c, &q, &[]).unwrap(), ["7051610"]);
        let q = format!("SELECT DISTINCT mostrador\n FROM {table} WHERE mostrador IS NOT NULL");
        assert_eq!(run_query(&c, &q, &[]).unwrap().len(), 4);
    }

    #[test]
    fn bad_queries_fail_like_databricks() {
        let c = Config::demo("t", Duration::from_secs(1));
        let err = run_query(
            &c,
            "SELECT mostrador FROM nope WHERE mostrador IS NOT NULL",
            &[],
        );
        assert!(err.unwrap_err().starts_with("[TABLE_OR_VIEW_NOT_FOUND]"));
        let q = format!(
            "SELECT mostrador FROM {} WHERE mostrador IN (:m0)",
            c.config_table
        );
        assert!(
            run_query(&c, &q, &[])
                .unwrap_err()
                .starts_with("[UNBOUND_SQL_PARAMETER]")
        );
        assert!(run_query(&c, "DROP TABLE x", &[]).is_err());
    }
}
