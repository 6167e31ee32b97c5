//! The job's state machine: each status poll advances a job by one step.

use orquesta_sdk::{blob, log};
use serde_json::{Value, json};

use crate::databricks::{bucket, databricks, factor, number_setting, run_id_of, setting};
use crate::error::{HttpError, Reply};
use crate::job::{Job, Status, load, save};

pub(crate) fn status(job_id: &str) -> Reply {
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
pub(crate) fn advance(job: &Job) -> Result<Option<Job>, HttpError> {
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

pub(crate) fn fail(job: &mut Job, why: String) {
    job.status = Status::Failed;
    job.error = Some(why);
}

pub(crate) enum RunEnd {
    Running,
    Succeeded,
    Failed(String),
}

/// Databricks' run state: `PENDING`/`RUNNING` (and the other live states) keep running;
/// `TERMINATED` + `SUCCESS` is done; any other end is a failure.
pub(crate) fn poll_run(run_id: u64, job: &mut Job) -> Result<RunEnd, HttpError> {
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
pub(crate) fn apply_factor(raw: &[u8], factor: f64) -> Result<Value, String> {
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
