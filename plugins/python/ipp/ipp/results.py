"""`GET /ipp/results/{job_id}`: the summary of a completed job."""

from ipp.databricks import bucket, setting
from ipp.errors import HttpError
from ipp.job import PROGRESS, load


def results(job_id: str):
    job, _ = load(job_id)
    if job["status"] != "COMPLETED":
        raise HttpError(
            409,
            "NotCompleted",
            f"job {job_id} is {job['status']}; results are available once it is COMPLETED",
            {"status": job["status"], "progress": PROGRESS[job["status"]]},
        )
    table = setting("results_table")

    def location(key):
        return None if key is None else f"{bucket()}/{key}"

    job2 = job["job2_run_id"]
    return 200, {
        "job_id": job["job_id"],
        "status": job["status"],
        "mostradores": job["mostradores"],
        "mostradores_count": job["mostradores_count"],
        "process_info": {
            "created_at": job["created_at"],
            "updated_at": job["updated_at"],
            "user_info": job["user_info"],
        },
        "databricks_info": {
            "job1_run_id": str(job["databricks_run_id"]),
            "job2_run_id": None if job2 is None else str(job2),
            "results_table": table,
            "query_example": f"SELECT * FROM {table} WHERE job_id = '{job['job_id']}'",
        },
        # Named as the seed system's frontend expects; these are blob locations.
        "s3_locations": {
            "raw": location(job["raw_key"]),
            "processed": location(job["processed_key"]),
        },
        "summary": {
            "mostradores_processed": job["mostradores_count"],
            "rows_processed": job["rows_processed"],
            "total_time_seconds": max(job["updated_ms"] - job["created_ms"], 0) // 1000,
            "success": True,
        },
    }
