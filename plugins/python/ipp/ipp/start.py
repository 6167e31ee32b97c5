"""`POST /ipp/start` and the scheduled run: validate, trigger Databricks job 1 and store
the new job record."""

import json
import uuid

from orquesta import log

from ipp import JOB_TTL_MS
from ipp.databricks import databricks, number_setting, run_id_of
from ipp.errors import HttpError
from ipp.job import now_ms, rfc3339, save, user_info
from ipp.validation import validate


def start(wanted: list, identity):
    v = validate(wanted)
    if v.invalid:
        raise HttpError(
            422,
            "UnknownClients",
            f"{len(v.invalid)} of the counters have no configuration; validate them first",
            {"invalidClients": v.invalid},
        )
    if not v.valid:
        raise HttpError(422, "NoClients", "there is no active counter to process")
    job_id = f"ipp-{uuid.uuid4().hex}"
    job1 = number_setting("job1_id")
    run = databricks("POST", "/api/2.1/jobs/run-now", {
        "job_id": job1,
        "idempotency_token": f"{job_id}-job1",
        "notebook_params": {
            "job_id": job_id,
            "mostradores": json.dumps(v.valid, separators=(",", ":")),
        },
    })
    run_id = run_id_of(run)
    now = now_ms()
    job = {
        "job_id": job_id,
        "status": "JOB1_RUNNING",
        "mostradores": v.valid,
        "mostradores_count": len(v.valid),
        "databricks_job_id": job1,
        "databricks_run_id": run_id,
        "job2_run_id": None,
        "databricks_state": "PENDING",
        "databricks_run_url": None,
        "user_info": user_info(identity),
        "created_at": rfc3339(now),
        "updated_at": rfc3339(now),
        "created_ms": now,
        "updated_ms": now,
        "ttl": (now + JOB_TTL_MS) // 1000,
        "raw_key": None,
        "processed_key": None,
        "rows_processed": None,
        "error": None,
    }
    if not save(job, 0):
        raise HttpError(500, "InternalError", f"job id {job_id} already exists")
    log.info("ipp job started", job_id=job_id, run_id=run_id)
    return 200, {
        "job_id": job_id,
        "status": job["status"],
        "message": "IPP process started",
        "mode": "automatic" if v.automatic else "manual",
        "mostradores_count": job["mostradores_count"],
        "databricks_run_id": str(run_id),
    }
