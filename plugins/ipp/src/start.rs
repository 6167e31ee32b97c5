//! `POST /ipp/start` and the scheduled run: validate, trigger Databricks job 1 and
//! store the new job record.

use orquesta_sdk::{Identity, log};
use serde_json::json;

use crate::JOB_TTL_MS;
use crate::databricks::{databricks, number_setting, run_id_of};
use crate::error::{HttpError, Reply};
use crate::job::{Job, Status, now_ms, rfc3339, save, user_info};
use crate::validation::validate;

pub(crate) fn start(wanted: &[String], identity: Option<&Identity>) -> Reply {
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
