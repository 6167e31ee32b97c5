//! `GET /ipp/results/{job_id}`: the summary of a completed job.

use serde_json::json;

use crate::databricks::{bucket, setting};
use crate::error::{HttpError, Reply};
use crate::job::{Status, load};

pub(crate) fn results(job_id: &str) -> Reply {
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
