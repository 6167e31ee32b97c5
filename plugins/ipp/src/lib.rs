//! `ipp`: the IPP predictive-inventory flow (FLOWS.md section 4) on Databricks.
//!
//! - `POST /ipp/validate-clients` checks counters (`mostradores`) against the
//!   configuration table through the SQL statement API; no list means every active one.
//! - `POST /ipp/start` validates, triggers Databricks job 1 and stores the job record in kv
//!   with the caller's identity and a 7-day TTL.
//! - `GET /ipp/status/{job_id}` advances the job one step per call, so every state is seen:
//!   `JOB1_RUNNING` (polls job 1) -> `JOB1_DONE` -> `PROCESSING` (job 1's output saved as
//!   the raw blob) -> `JOB2_RUNNING` (factor applied, processed blob written, job 2
//!   triggered) -> `COMPLETED`, or `FAILED` when a job fails.
//! - `GET /ipp/results/{job_id}`: the summary, once `COMPLETED` (409 before).
//!
//! A scheduled tick starts a run in automatic mode. Record updates use compare-and-swap,
//! and run-now calls carry idempotency tokens, so concurrent polls never start a job twice.

use orquesta_sdk::{
    Event, Failure, Handler, HttpRequest, Identity, Response, blob, config, http, kv, log,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The job record lives 7 days, like the DynamoDB item's TTL it replaces.
const JOB_TTL_MS: u64 = 7 * 24 * 3_600_000;
const KV_BUCKET: &str = "default";
/// Larger lists belong in the automatic mode.
const MAX_MOSTRADORES: usize = 1_000;

struct Ipp;

impl Handler for Ipp {
    fn handle(event: Event) -> Result<Response, Failure> {
        match event {
            Event::Http(req) => Ok(match route(&req) {
                Ok((status, body)) => Response::http_json(status, &body),
                Err(e) => Response::http_json(e.status, &e.body()),
            }),
            // The daily run: validate every active counter, then start with them.
            Event::Schedule(_) => match start(&[], None) {
                Ok((_, body)) => Ok(Response::json(&body)),
                Err(e) => Err(Failure::new(e.error, e.message)),
            },
            _ => Err(Failure::new(
                "UnsupportedEvent",
                "ipp handles http requests and scheduled ticks",
            )),
        }
    }
}

/// An answer the caller gets as JSON with its status.
type Reply = Result<(u16, Value), HttpError>;

#[derive(Debug)]
struct HttpError {
    status: u16,
    error: &'static str,
    message: String,
    extra: Value,
}

impl HttpError {
    fn new(status: u16, error: &'static str, message: impl Into<String>) -> Self {
        HttpError {
            status,
            error,
            message: message.into(),
            extra: Value::Null,
        }
    }

    fn body(&self) -> Value {
        let mut body = json!({ "error": self.error, "message": self.message });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), self.extra.as_object()) {
            body.extend(extra.clone());
        }
        body
    }
}

/// Host-call failures: upstream trouble is a 502, the rest a 500, both with the cause.
impl From<Failure> for HttpError {
    fn from(f: Failure) -> Self {
        let status = if f.error == "DatabricksError" {
            502
        } else {
            500
        };
        HttpError {
            status,
            error: if status == 502 {
                "DatabricksError"
            } else {
                "InternalError"
            },
            message: format!("{}: {}", f.error, f.cause),
            extra: Value::Null,
        }
    }
}

impl From<orquesta_sdk::HostError> for HttpError {
    fn from(e: orquesta_sdk::HostError) -> Self {
        Failure::from(e).into()
    }
}

fn route(req: &HttpRequest) -> Reply {
    let param = |name: &str| orquesta_sdk::field(&req.params, name).unwrap_or_default();
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/ipp/validate-clients") => {
            let wanted = requested(&req.body)?;
            let v = validate(&wanted)?;
            Ok((200, v.to_json()))
        }
        ("POST", "/ipp/start") => start(&requested(&req.body)?, req.identity.as_ref()),
        ("GET", p) if p.starts_with("/ipp/status/") => status(param("job_id")),
        ("GET", p) if p.starts_with("/ipp/results/") => results(param("job_id")),
        (method, path) => Err(HttpError::new(
            404,
            "NotFound",
            format!("no IPP endpoint {method} {path}"),
        )),
    }
}

// ---------------------------------------------------------------------------------------
// Validation

/// The counters named in a request body; empty means the automatic mode.
fn requested(body: &[u8]) -> Result<Vec<String>, HttpError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let doc: Value = serde_json::from_slice(body)
        .map_err(|e| HttpError::new(400, "ValidationError", format!("body is not JSON: {e}")))?;
    let list = match doc.get("mostradores") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) if list.is_empty() => {
            return Err(HttpError::new(
                400,
                "ValidationError",
                "mostradores is empty: omit it to validate every active counter",
            ));
        }
        Some(Value::Array(list)) => list,
        Some(_) => {
            return Err(HttpError::new(
                400,
                "ValidationError",
                "mostradores must be an array of counter numbers",
            ));
        }
    };
    if list.len() > MAX_MOSTRADORES {
        return Err(HttpError::new(
            400,
            "ValidationError",
            format!("at most {MAX_MOSTRADORES} mostradores per request"),
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for item in list {
        let text = match item {
            Value::String(s) => s.trim().to_string(),
            Value::Number(n) if n.is_u64() => n.to_string(),
            other => other.to_string(),
        };
        if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(HttpError::new(
                400,
                "ValidationError",
                format!("mostrador {item} is not a counter number"),
            ));
        }
        if !out.contains(&text) {
            out.push(text);
        }
    }
    Ok(out)
}

struct Validation {
    automatic: bool,
    valid: Vec<String>,
    invalid: Vec<String>,
}

impl Validation {
    fn to_json(&self) -> Value {
        let total = self.valid.len() + self.invalid.len();
        let (status, message) = match (self.valid.len(), self.invalid.len()) {
            (0, _) => ("none_valid", "no counter has a configuration".to_string()),
            (v, 0) => (
                "all_valid",
                format!("all {v} counters have a configuration"),
            ),
            (v, _) => (
                "partial_valid",
                format!("{v} of {total} counters have a configuration"),
            ),
        };
        json!({
            "status": status,
            "message": message,
            "mode": if self.automatic { "automatic" } else { "manual" },
            "validClients": self.valid,
            "invalidClients": self.invalid,
            "total": total,
            "validated": self.valid.len(),
        })
    }
}

fn validate(wanted: &[String]) -> Result<Validation, HttpError> {
    let table = setting("config_table")?;
    let (statement, parameters) = if wanted.is_empty() {
        (
            format!("SELECT DISTINCT mostrador FROM {table} WHERE mostrador IS NOT NULL"),
            vec![],
        )
    } else {
        // Bound parameters, never spliced into the SQL text.
        let names: Vec<String> = (0..wanted.len()).map(|i| format!(":m{i}")).collect();
        let params = wanted
            .iter()
            .enumerate()
            .map(|(i, m)| json!({ "name": format!("m{i}"), "value": m, "type": "STRING" }))
            .collect();
        (
            format!(
                "SELECT mostrador FROM {table} WHERE mostrador IN ({})",
                names.join(", ")
            ),
            params,
        )
    };
    let answer = databricks(
        "POST",
        "/api/2.0/sql/statements",
        Some(json!({
            "warehouse_id": setting("warehouse_id")?,
            "statement": statement,
            "parameters": parameters,
            "wait_timeout": "30s",
            "format": "JSON_ARRAY",
        })),
    )?;
    let state = answer["status"]["state"].as_str().unwrap_or("UNKNOWN");
    if state != "SUCCEEDED" {
        let why = answer["status"]["error"]["message"]
            .as_str()
            .unwrap_or("no reason given");
        return Err(HttpError::new(
            502,
            "DatabricksError",
            format!("the validation query ended {state}: {why}"),
        ));
    }
    let found: Vec<String> = answer["result"]["data_array"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|r| match &r[0] {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    if wanted.is_empty() {
        return Ok(Validation {
            automatic: true,
            valid: found,
            invalid: vec![],
        });
    }
    let (valid, invalid) = wanted.iter().cloned().partition(|m| found.contains(m));
    Ok(Validation {
        automatic: false,
        valid,
        invalid,
    })
}

// ---------------------------------------------------------------------------------------
// The job record

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum Status {
    Job1Running,
    Job1Done,
    Processing,
    Job2Running,
    Completed,
    Failed,
}

impl Status {
    fn progress(self) -> u8 {
        match self {
            Status::Job1Running => 25,
            Status::Job1Done => 40,
            Status::Processing => 60,
            Status::Job2Running => 80,
            Status::Completed => 100,
            Status::Failed => 0,
        }
    }

    fn message(self) -> &'static str {
        match self {
            Status::Job1Running => "Databricks job 1 (normalizer) is running",
            Status::Job1Done => "Databricks job 1 finished; fetching its output",
            Status::Processing => "applying the factor to job 1's output",
            Status::Job2Running => "Databricks job 2 (loader) is running",
            Status::Completed => "IPP process completed",
            Status::Failed => "IPP process failed",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Job {
    job_id: String,
    status: Status,
    mostradores: Vec<String>,
    mostradores_count: usize,
    databricks_job_id: u64,
    databricks_run_id: u64,
    #[serde(default)]
    job2_run_id: Option<u64>,
    #[serde(default)]
    databricks_state: Option<String>,
    #[serde(default)]
    databricks_run_url: Option<String>,
    user_info: Value,
    created_at: String,
    updated_at: String,
    created_ms: u64,
    updated_ms: u64,
    /// When the record expires, in epoch seconds (the DynamoDB `ttl` attribute).
    ttl: u64,
    #[serde(default)]
    raw_key: Option<String>,
    #[serde(default)]
    processed_key: Option<String>,
    #[serde(default)]
    rows_processed: Option<usize>,
    #[serde(default)]
    error: Option<String>,
}

fn job_key(job_id: &str) -> String {
    format!("job/{job_id}")
}

/// The record and its version, or 404.
fn load(job_id: &str) -> Result<(Job, u64), HttpError> {
    let not_found = || {
        HttpError::new(
            404,
            "JobNotFound",
            format!("no IPP job {job_id:?} (jobs are kept 7 days)"),
        )
    };
    if job_id.is_empty() || job_id.len() > 100 {
        return Err(not_found());
    }
    let entry = kv::get(KV_BUCKET, &job_key(job_id))?.ok_or_else(not_found)?;
    let job = serde_json::from_slice(&entry.value).map_err(|e| {
        HttpError::new(
            500,
            "InternalError",
            format!("job record {job_id} is unreadable: {e}"),
        )
    })?;
    Ok((job, entry.version))
}

/// Writes `job` if its record is still at `version` (0: new), keeping the original
/// expiry. Returns false when another caller wrote first.
fn save(job: &mut Job, version: u64) -> Result<bool, HttpError> {
    let now = now_ms();
    job.updated_ms = now;
    job.updated_at = rfc3339(now);
    let remaining = (job.ttl * 1000).saturating_sub(now).max(1);
    let value =
        serde_json::to_vec(job).map_err(|e| HttpError::new(500, "InternalError", e.to_string()))?;
    let written = kv::compare_and_swap(
        KV_BUCKET,
        &job_key(&job.job_id),
        version,
        &value,
        Some(remaining),
    )?;
    Ok(written.is_some())
}

fn user_info(identity: Option<&Identity>) -> Value {
    match identity {
        Some(who) => json!({
            "sub": who.subject,
            "email": who.email,
            "username": who.email.clone().unwrap_or_else(|| who.subject.clone()),
            "name": who.name,
        }),
        None => json!({ "sub": "schedule", "username": "schedule" }),
    }
}

// ---------------------------------------------------------------------------------------
// Start

fn start(wanted: &[String], identity: Option<&Identity>) -> Reply {
    let v = validate(wanted)?;
    if !v.invalid.is_empty() {
        let mut e = HttpError::new(
            422,
            "UnknownClients",
            format!(
                "{} of the counters have no configuration; validate them first",
                v.invalid.len()
            ),
        );
        e.extra = json!({ "invalidClients": v.invalid });
        return Err(e);
    }
    if v.valid.is_empty() {
        return Err(HttpError::new(
            422,
            "NoClients",
            "there is no active counter to process",
        ));
    }
    let job_id = format!("ipp-{}", uuid::Uuid::new_v4().simple());
    let job1: u64 = number_setting("job1_id")?;
    let run = databricks(
        "POST",
        "/api/2.1/jobs/run-now",
        Some(json!({
            "job_id": job1,
            "idempotency_token": format!("{job_id}-job1"),
            "notebook_params": {
                "job_id": job_id,
                "mostradores": serde_json::to_string(&v.valid).unwrap_or_default(),
            },
        })),
    )?;
    let run_id = run_id_of(&run)?;
    let now = now_ms();
    let mut job = Job {
        job_id: job_id.clone(),
        status: Status::Job1Running,
        mostradores_count: v.valid.len(),
        mostradores: v.valid,
        databricks_job_id: job1,
        databricks_run_id: run_id,
        job2_run_id: None,
        databricks_state: Some("PENDING".into()),
        databricks_run_url: None,
        user_info: user_info(identity),
        created_at: rfc3339(now),
        updated_at: rfc3339(now),
        created_ms: now,
        updated_ms: now,
        ttl: (now + JOB_TTL_MS) / 1000,
        raw_key: None,
        processed_key: None,
        rows_processed: None,
        error: None,
    };
    if !save(&mut job, 0)? {
        return Err(HttpError::new(
            500,
            "InternalError",
            format!("job id {job_id} already exists"),
        ));
    }
    log::log(
        log::Level::Info,
        "ipp job started",
        &[
            ("job_id".into(), job_id.clone()),
            ("run_id".into(), run_id.to_string()),
        ],
    );
    Ok((
        200,
        json!({
            "job_id": job_id,
            "status": job.status,
            "message": "IPP process started",
            "mode": if v.automatic { "automatic" } else { "manual" },
            "mostradores_count": job.mostradores_count,
            "databricks_run_id": run_id.to_string(),
        }),
    ))
}

// ---------------------------------------------------------------------------------------
// Status: one step per call

fn status(job_id: &str) -> Reply {
    let (mut job, version) = load(job_id)?;
    if let Some(next) = advance(&job)? {
        let mut next = next;
        if save(&mut next, version)? {
            if next.status != job.status {
                log::log(
                    log::Level::Info,
                    "ipp job advanced",
                    &[
                        ("job_id".into(), next.job_id.clone()),
                        ("status".into(), json!(next.status).to_string()),
                    ],
                );
            }
            job = next;
        } else {
            // Another poll moved it first; report what it wrote.
            job = load(job_id)?.0;
        }
    }
    let mut body = json!({
        "job_id": job.job_id,
        "status": job.status,
        "message": job.error.clone().unwrap_or_else(|| job.status.message().to_string()),
        "progress": job.status.progress(),
        "mostradores_count": job.mostradores_count,
        "databricks_state": job.databricks_state,
        "databricks_run_url": job.databricks_run_url,
        "updated_at": job.updated_at,
    });
    if let Some(e) = &job.error {
        body["error"] = json!(e);
    }
    Ok((200, body))
}

/// The record after one step, or `None` when nothing changed.
fn advance(job: &Job) -> Result<Option<Job>, HttpError> {
    let mut next = job.clone();
    match job.status {
        Status::Job1Running => {
            let run = poll_run(job.databricks_run_id, &mut next)?;
            match run {
                RunEnd::Running if next.databricks_state == job.databricks_state => {
                    return Ok(None);
                }
                RunEnd::Running => {}
                RunEnd::Succeeded => next.status = Status::Job1Done,
                RunEnd::Failed(why) => fail(&mut next, format!("Databricks job 1 failed: {why}")),
            }
        }
        Status::Job1Done => {
            // Job 1's notebook output becomes the raw blob PROCESSING reads.
            let output = databricks(
                "GET",
                &format!(
                    "/api/2.1/jobs/runs/get-output?run_id={}",
                    job.databricks_run_id
                ),
                None,
            )?;
            let Some(result) = output["notebook_output"]["result"].as_str() else {
                return Err(HttpError::new(
                    502,
                    "DatabricksError",
                    "job 1 finished without a notebook output",
                ));
            };
            let key = format!("raw/{}.json", job.job_id);
            blob::put(&bucket(), &key, result.as_bytes())?;
            next.raw_key = Some(key);
            next.status = Status::Processing;
        }
        Status::Processing => {
            let raw_key = job.raw_key.clone().unwrap_or_default();
            let raw = blob::get(&bucket(), &raw_key)?.ok_or_else(|| {
                HttpError::new(
                    500,
                    "InternalError",
                    format!("raw output {raw_key} is missing"),
                )
            })?;
            let processed = apply_factor(&raw, factor()?).map_err(|why| {
                HttpError::new(
                    502,
                    "DatabricksError",
                    format!("job 1's output is unusable: {why}"),
                )
            })?;
            let rows = processed["rows"].as_array().map_or(0, Vec::len);
            let key = format!("processed/{}.json", job.job_id);
            blob::put(&bucket(), &key, processed.to_string().as_bytes())?;
            let job2: u64 = number_setting("job2_id")?;
            // The token makes a repeated step (after a lost race or a crash) reuse the run.
            let run = databricks(
                "POST",
                "/api/2.1/jobs/run-now",
                Some(json!({
                    "job_id": job2,
                    "idempotency_token": format!("{}-job2", job.job_id),
                    "notebook_params": {
                        "job_id": job.job_id,
                        "processed_key": format!("{}/{key}", bucket()),
                        "rows": rows.to_string(),
                        "results_table": setting("results_table")?,
                    },
                })),
            )?;
            next.job2_run_id = Some(run_id_of(&run)?);
            next.processed_key = Some(key);
            next.rows_processed = Some(rows);
            next.databricks_state = Some("PENDING".into());
            next.status = Status::Job2Running;
        }
        Status::Job2Running => {
            let run_id = job.job2_run_id.unwrap_or_default();
            match poll_run(run_id, &mut next)? {
                RunEnd::Running if next.databricks_state == job.databricks_state => {
                    return Ok(None);
                }
                RunEnd::Running => {}
                RunEnd::Succeeded => next.status = Status::Completed,
                RunEnd::Failed(why) => fail(&mut next, format!("Databricks job 2 failed: {why}")),
            }
        }
        Status::Completed | Status::Failed => return Ok(None),
    }
    Ok(Some(next))
}

fn fail(job: &mut Job, why: String) {
    job.status = Status::Failed;
    job.error = Some(why);
}

enum RunEnd {
    Running,
    Succeeded,
    Failed(String),
}

/// Databricks' run state: `PENDING`/`RUNNING` (and the other live states) keep running;
/// `TERMINATED` + `SUCCESS` is done; any other end is a failure.
fn poll_run(run_id: u64, job: &mut Job) -> Result<RunEnd, HttpError> {
    let run = databricks(
        "GET",
        &format!("/api/2.1/jobs/runs/get?run_id={run_id}"),
        None,
    )?;
    let life = run["state"]["life_cycle_state"]
        .as_str()
        .unwrap_or("UNKNOWN");
    let result = run["state"]["result_state"].as_str();
    job.databricks_state = Some(life.to_string());
    if let Some(url) = run["run_page_url"].as_str() {
        job.databricks_run_url = Some(url.to_string());
    }
    Ok(match (life, result) {
        ("PENDING" | "QUEUED" | "RUNNING" | "BLOCKED" | "WAITING_FOR_RETRY", _) => RunEnd::Running,
        ("TERMINATING", _) => RunEnd::Running,
        ("TERMINATED", Some("SUCCESS")) => RunEnd::Succeeded,
        (life, result) => {
            let message = run["state"]["state_message"].as_str().unwrap_or_default();
            RunEnd::Failed(format!(
                "{life} {} {message}",
                result.unwrap_or("without a result")
            ))
        }
    })
}

/// Job 1's rows with the suggested quantity: demand times the factor, rounded up.
fn apply_factor(raw: &[u8], factor: f64) -> Result<Value, String> {
    let doc: Value = serde_json::from_slice(raw).map_err(|e| e.to_string())?;
    let rows = doc["rows"]
        .as_array()
        .ok_or("it has no `rows` array")?
        .iter()
        .map(|row| {
            let demand = row["demanda"]
                .as_f64()
                .ok_or_else(|| format!("row {row} has no numeric `demanda`"))?;
            let mut out = row.clone();
            out["factor"] = json!(factor);
            out["cantidad_sugerida"] = json!((demand * factor).ceil() as u64);
            Ok(out)
        })
        .collect::<Result<Vec<Value>, String>>()?;
    Ok(json!({ "job_id": doc["job_id"], "factor": factor, "rows": rows }))
}

// ---------------------------------------------------------------------------------------
// Results

fn results(job_id: &str) -> Reply {
    let (job, _) = load(job_id)?;
    if job.status != Status::Completed {
        let mut e = HttpError::new(
            409,
            "NotCompleted",
            format!(
                "job {job_id} is {}; results are available once it is COMPLETED",
                json!(job.status).as_str().unwrap_or_default()
            ),
        );
        e.extra = json!({ "status": job.status, "progress": job.status.progress() });
        return Err(e);
    }
    let table = setting("results_table")?;
    let location = |key: &Option<String>| key.as_ref().map(|k| format!("{}/{k}", bucket()));
    Ok((
        200,
        json!({
            "job_id": job.job_id,
            "status": job.status,
            "mostradores": job.mostradores,
            "mostradores_count": job.mostradores_count,
            "process_info": {
                "created_at": job.created_at,
                "updated_at": job.updated_at,
                "user_info": job.user_info,
            },
            "databricks_info": {
                "job1_run_id": job.databricks_run_id.to_string(),
                "job2_run_id": job.job2_run_id.map(|r| r.to_string()),
                "results_table": table,
                "query_example": format!("SELECT * FROM {table} WHERE job_id = '{}'", job.job_id),
            },
            // Named as the seed system's frontend expects; these are blob locations.
            "s3_locations": {
                "raw": location(&job.raw_key),
                "processed": location(&job.processed_key),
            },
            "summary": {
                "mostradores_processed": job.mostradores_count,
                "rows_processed": job.rows_processed,
                "total_time_seconds": job.updated_ms.saturating_sub(job.created_ms) / 1000,
                "success": true,
            },
        }),
    ))
}

// ---------------------------------------------------------------------------------------
// Databricks and settings

fn setting(name: &str) -> Result<String, HttpError> {
    config::get(name).ok_or_else(|| {
        HttpError::new(
            500,
            "ConfigError",
            format!("{name} is not configured for the ipp plugin"),
        )
    })
}

fn number_setting(name: &str) -> Result<u64, HttpError> {
    setting(name)?.trim().parse().map_err(|_| {
        HttpError::new(
            500,
            "ConfigError",
            format!("{name} must be a Databricks job id"),
        )
    })
}

fn factor() -> Result<f64, HttpError> {
    let text = config::get("factor").unwrap_or_else(|| "1.15".into());
    match text.trim().parse::<f64>() {
        Ok(f) if f.is_finite() && f > 0.0 => Ok(f),
        _ => Err(HttpError::new(
            500,
            "ConfigError",
            format!("factor {text:?} must be a positive number"),
        )),
    }
}

fn bucket() -> String {
    config::get("bucket").unwrap_or_else(|| "ipp".into())
}

/// Calls the workspace with the token; an error status becomes a `DatabricksError` with
/// Databricks' own error code and message.
fn databricks(method: &str, path: &str, body: Option<Value>) -> Result<Value, HttpError> {
    let base = setting("databricks_url")?;
    let token = config::secret("databricks_token").ok_or_else(|| {
        HttpError::new(500, "ConfigError", "secret databricks_token is not granted")
    })?;
    let mut headers = vec![("authorization".into(), format!("Bearer {token}"))];
    if body.is_some() {
        headers.push(("content-type".into(), "application/json".into()));
    }
    let answer = http::send(&http::Request {
        method: method.into(),
        url: format!("{}{path}", base.trim_end_matches('/')),
        headers,
        body: body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
        timeout_ms: Some(30_000),
    })?;
    let doc: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    if answer.status >= 400 {
        let code = doc["error_code"].as_str().unwrap_or("UNKNOWN");
        let message = doc["message"].as_str().unwrap_or_default();
        return Err(HttpError::new(
            502,
            "DatabricksError",
            format!("Databricks answered {} {code}: {message}", answer.status),
        ));
    }
    if doc.is_null() {
        return Err(HttpError::new(
            502,
            "DatabricksError",
            "Databricks answered with a body that is not JSON",
        ));
    }
    Ok(doc)
}

fn run_id_of(answer: &Value) -> Result<u64, HttpError> {
    answer["run_id"]
        .as_u64()
        .ok_or_else(|| HttpError::new(502, "DatabricksError", "run-now answered without a run_id"))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

fn rfc3339(ms: u64) -> String {
    let at = time::OffsetDateTime::UNIX_EPOCH + time::Duration::milliseconds(ms as i64);
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

orquesta_sdk::export!(Ipp);
