"""`ipp` in Python: the IPP predictive-inventory flow (FLOWS.md section 4) on Databricks,
the port of `plugins/ipp` (Rust) with the same routes, answers, job record and fixtures
(`examples/ipp/fixtures.toml`), as the seed system's Lambdas were written in Python.

- `POST /ipp/validate-clients` checks counters (`mostradores`) against the configuration
  table through the SQL statement API; no list means every active one.
- `POST /ipp/start` validates, triggers Databricks job 1 and stores the job record in kv
  with the caller's identity and a 7-day TTL.
- `GET /ipp/status/{job_id}` advances the job one step per call: `JOB1_RUNNING` ->
  `JOB1_DONE` -> `PROCESSING` -> `JOB2_RUNNING` -> `COMPLETED`, or `FAILED`.
- `GET /ipp/results/{job_id}`: the summary, once `COMPLETED` (409 before).

A scheduled tick starts a run in automatic mode. The job record is the Rust plugin's,
field for field, so a tenant can switch implementations with jobs in flight.
"""

import orquesta
from orquesta import HostError

from ipp.errors import HttpError
from ipp.results import results
from ipp.start import start
from ipp.steps import status
from ipp.validation import requested, validate


@orquesta.on_http
def handle(req: orquesta.Request) -> orquesta.Response:
    try:
        status_code, body = route(req)
    except HttpError as e:
        status_code, body = e.status, e.body()
    except HostError as e:
        e = HttpError.from_host(e)
        status_code, body = e.status, e.body()
    return orquesta.Response.json(body, status_code)


@orquesta.on_schedule
def daily(_tick: orquesta.Tick):
    """The daily run: validate every active counter, then start with them."""
    try:
        return start([], None)[1]
    except HostError as e:
        e = HttpError.from_host(e)
        raise orquesta.Failure(e.error, e.message) from None
    except HttpError as e:
        raise orquesta.Failure(e.error, e.message) from None


def route(req: orquesta.Request):
    path = req.path
    if req.method == "POST" and path == "/ipp/validate-clients":
        return 200, validate(requested(req.body)).to_json()
    if req.method == "POST" and path == "/ipp/start":
        return start(requested(req.body), req.identity)
    if req.method == "GET" and path.startswith("/ipp/status/"):
        return status(req.params.get("job_id", ""))
    if req.method == "GET" and path.startswith("/ipp/results/"):
        return results(req.params.get("job_id", ""))
    raise HttpError(404, "NotFound", f"no IPP endpoint {req.method} {path}")
