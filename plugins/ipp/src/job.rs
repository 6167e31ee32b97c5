//! The job record in kv: its states, and reads and compare-and-swap writes of it.

use orquesta_sdk::{Identity, kv};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::KV_BUCKET;
use crate::error::HttpError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum Status {
    Job1Running,
    Job1Done,
    Processing,
    Job2Running,
    Completed,
    Failed,
}

impl Status {
    pub(crate) fn progress(self) -> u8 {
        match self {
            Status::Job1Running => 25,
            Status::Job1Done => 40,
            Status::Processing => 60,
            Status::Job2Running => 80,
            Status::Completed => 100,
            Status::Failed => 0,
        }
    }

    pub(crate) fn message(self) -> &'static str {
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
pub(crate) struct Job {
    pub(crate) job_id: String,
    pub(crate) status: Status,
    pub(crate) mostradores: Vec<String>,
    pub(crate) mostradores_count: usize,
    pub(crate) databricks_job_id: u64,
    pub(crate) databricks_run_id: u64,
    #[serde(default)]
    pub(crate) job2_run_id: Option<u64>,
    #[serde(default)]
    pub(crate) databricks_state: Option<String>,
    #[serde(default)]
    pub(crate) databricks_run_url: Option<String>,
    pub(crate) user_info: Value,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
    pub(crate) created_ms: u64,
    pub(crate) updated_ms: u64,
    /// When the record expires, in epoch seconds (the DynamoDB `ttl` attribute).
    pub(crate) ttl: u64,
    #[serde(default)]
    pub(crate) raw_key: Option<String>,
    #[serde(default)]
    pub(crate) processed_key: Option<String>,
    #[serde(default)]
    pub(crate) rows_processed: Option<usize>,
    #[serde(default)]
    pub(crate) error: Option<String>,
}

pub(crate) fn job_key(job_id: &str) -> String {
    format!("job/{job_id}")
}

/// The record and its version, or 404.
pub(crate) fn load(job_id: &str) -> Result<(Job, u64), HttpError> {
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
pub(crate) fn save(job: &mut Job, version: u64) -> Result<bool, HttpError> {
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

pub(crate) fn user_info(identity: Option<&Identity>) -> Value {
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

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

pub(crate) fn rfc3339(ms: u64) -> String {
    let at = time::OffsetDateTime::UNIX_EPOCH + time::Duration::milliseconds(ms as i64);
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
