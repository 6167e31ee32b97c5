"""The job record in kv: its states, and reads and compare-and-swap writes of it. The
record has the Rust plugin's fields and JSON shape."""

import json
import time
from datetime import datetime, timezone

from orquesta import kv

from ipp import KV_BUCKET
from ipp.errors import HttpError

PROGRESS = {
    "JOB1_RUNNING": 25,
    "JOB1_DONE": 40,
    "PROCESSING": 60,
    "JOB2_RUNNING": 80,
    "COMPLETED": 100,
    "FAILED": 0,
}

MESSAGES = {
    "JOB1_RUNNING": "Databricks job 1 (normalizer) is running",
    "JOB1_DONE": "Databricks job 1 finished; fetching its output",
    "PROCESSING": "applying the factor to job 1's output",
    "JOB2_RUNNING": "Databricks job 2 (loader) is running",
    "COMPLETED": "IPP process completed",
    "FAILED": "IPP process failed",
}

# The fields a record must have (the Rust plugin's non-optional ones); the rest default
# to null.
REQUIRED = (
    "job_id", "status", "mostradores", "mostradores_count", "databricks_job_id",
    "databricks_run_id", "user_info", "created_at", "updated_at", "created_ms",
    "updated_ms", "ttl",
)
OPTIONAL = (
    "job2_run_id", "databricks_state", "databricks_run_url", "raw_key", "processed_key",
    "rows_processed", "error",
)


def job_key(job_id: str) -> str:
    return f"job/{job_id}"


def load(job_id: str):
    """The record and its version, or 404."""
    not_found = HttpError(404, "JobNotFound", f"no IPP job {json.dumps(job_id)} (jobs are kept 7 days)")
    if not job_id or len(job_id) > 100:
        raise not_found
    entry = kv.get(KV_BUCKET, job_key(job_id))
    if entry is None:
        raise not_found
    try:
        job = json.loads(entry.value)
        missing = [f for f in REQUIRED if f not in job]
        if missing:
            raise ValueError(f"missing field `{missing[0]}`")
        if job["status"] not in PROGRESS:
            raise ValueError(f"unknown status {job['status']!r}")
    except (ValueError, TypeError) as e:
        raise HttpError(500, "InternalError", f"job record {job_id} is unreadable: {e}") from None
    for f in OPTIONAL:
        job.setdefault(f, None)
    return job, entry.version


def save(job: dict, version: int) -> bool:
    """Writes `job` if its record is still at `version` (0: new), keeping the original
    expiry. Returns False when another caller wrote first."""
    now = now_ms()
    job["updated_ms"] = now
    job["updated_at"] = rfc3339(now)
    remaining = max(job["ttl"] * 1000 - now, 1)
    value = json.dumps(job, separators=(",", ":"))
    return kv.compare_and_swap(KV_BUCKET, job_key(job["job_id"]), version, value, remaining) is not None


def user_info(identity) -> dict:
    if identity is None:
        return {"sub": "schedule", "username": "schedule"}
    return {
        "sub": identity.subject,
        "email": identity.email,
        "username": identity.email or identity.subject,
        "name": identity.name,
    }


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def rfc3339(ms: int) -> str:
    at = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
