"""The job's state machine: each status poll advances a job by one step."""

import json
import math

from orquesta import blob, log

from ipp.databricks import bucket, databricks, factor, number_setting, run_id_of, setting
from ipp.errors import HttpError
from ipp.jsonpath import at, text
from ipp.job import MESSAGES, PROGRESS, load, save

RUNNING, SUCCEEDED = "running", "succeeded"
# Databricks' live states: the run is still going.
LIVE = {"PENDING", "QUEUED", "RUNNING", "BLOCKED", "WAITING_FOR_RETRY", "TERMINATING"}


def status(job_id: str):
    job, version = load(job_id)
    nxt = advance(job)
    if nxt is not None:
        if save(nxt, version):
            if nxt["status"] != job["status"]:
                log.info("ipp job advanced", job_id=nxt["job_id"], status=json.dumps(nxt["status"]))
            job = nxt
        else:
            # Another poll moved it first; report what it wrote.
            job = load(job_id)[0]
    body = {
        "job_id": job["job_id"],
        "status": job["status"],
        "message": job["error"] if job["error"] is not None else MESSAGES[job["status"]],
        "progress": PROGRESS[job["status"]],
        "mostradores_count": job["mostradores_count"],
        "databricks_state": job["databricks_state"],
        "databricks_run_url": job["databricks_run_url"],
        "updated_at": job["updated_at"],
    }
    if job["error"] is not None:
        body["error"] = job["error"]
    return 200, body


def advance(job: dict):
    """The record after one step, or None when nothing changed."""
    nxt = dict(job)
    state = job["status"]
    if state == "JOB1_RUNNING":
        end = poll_run(job["databricks_run_id"], nxt)
        if end == RUNNING:
            if nxt["databricks_state"] == job["databricks_state"]:
                return None
        elif end == SUCCEEDED:
            nxt["status"] = "JOB1_DONE"
        else:
            fail(nxt, f"Databricks job 1 failed: {end}")
    elif state == "JOB1_DONE":
        # Job 1's notebook output becomes the raw blob PROCESSING reads.
        output = databricks("GET", f"/api/2.1/jobs/runs/get-output?run_id={job['databricks_run_id']}")
        result = text(output, "notebook_output", "result")
        if result is None:
            raise HttpError(502, "DatabricksError", "job 1 finished without a notebook output")
        key = f"raw/{job['job_id']}.json"
        blob.put(bucket(), key, result)
        nxt["raw_key"] = key
        nxt["status"] = "PROCESSING"
    elif state == "PROCESSING":
        raw_key = job["raw_key"] or ""
        raw = blob.get(bucket(), raw_key)
        if raw is None:
            raise HttpError(500, "InternalError", f"raw output {raw_key} is missing")
        try:
            processed = apply_factor(raw, factor())
        except ValueError as why:
            raise HttpError(502, "DatabricksError", f"job 1's output is unusable: {why}") from None
        rows = len(processed["rows"])
        key = f"processed/{job['job_id']}.json"
        blob.put(bucket(), key, json.dumps(processed, separators=(",", ":")))
        job2 = number_setting("job2_id")
        # The token makes a repeated step (after a lost race or a crash) reuse the run.
        run = databricks("POST", "/api/2.1/jobs/run-now", {
            "job_id": job2,
            "idempotency_token": f"{job['job_id']}-job2",
            "notebook_params": {
                "job_id": job["job_id"],
                "processed_key": f"{bucket()}/{key}",
                "rows": str(rows),
                "results_table": setting("results_table"),
            },
        })
        nxt["job2_run_id"] = run_id_of(run)
        nxt["processed_key"] = key
        nxt["rows_processed"] = rows
        nxt["databricks_state"] = "PENDING"
        nxt["status"] = "JOB2_RUNNING"
    elif state == "JOB2_RUNNING":
        end = poll_run(job["job2_run_id"] or 0, nxt)
        if end == RUNNING:
            if nxt["databricks_state"] == job["databricks_state"]:
                return None
        elif end == SUCCEEDED:
            nxt["status"] = "COMPLETED"
        else:
            fail(nxt, f"Databricks job 2 failed: {end}")
    else:  # COMPLETED, FAILED
        return None
    return nxt


def fail(job: dict, why: str) -> None:
    job["status"] = "FAILED"
    job["error"] = why


def poll_run(run_id: int, job: dict) -> str:
    """`RUNNING`, `SUCCEEDED`, or why the run failed. Databricks' live states keep
    running; `TERMINATED` + `SUCCESS` is done; any other end is a failure."""
    run = databricks("GET", f"/api/2.1/jobs/runs/get?run_id={run_id}")
    life = text(run, "state", "life_cycle_state") or "UNKNOWN"
    result = text(run, "state", "result_state")
    job["databricks_state"] = life
    url = text(run, "run_page_url")
    if url is not None:
        job["databricks_run_url"] = url
    if life in LIVE:
        return RUNNING
    if life == "TERMINATED" and result == "SUCCESS":
        return SUCCEEDED
    message = text(run, "state", "state_message") or ""
    return f"{life} {result or 'without a result'} {message}"


def apply_factor(raw: bytes, f: float) -> dict:
    """Job 1's rows with the suggested quantity: demand times the factor, rounded up."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(str(e)) from None
    rows = at(doc, "rows")
    if not isinstance(rows, list):
        raise ValueError("it has no `rows` array")
    out = []
    for row in rows:
        demand = at(row, "demanda")
        if not isinstance(demand, (int, float)) or isinstance(demand, bool):
            raise ValueError(f"row {json.dumps(row)} has no numeric `demanda`")
        quantity = demand * f
        if not math.isfinite(quantity):
            raise ValueError(f"row {json.dumps(row)} has a demand past any quantity")
        row = dict(row)
        row["factor"] = f
        row["cantidad_sugerida"] = max(math.ceil(quantity), 0)
        out.append(row)
    return {"job_id": at(doc, "job_id"), "factor": f, "rows": out}
