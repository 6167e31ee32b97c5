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

mod databricks;
mod error;
mod job;
mod results;
mod start;
mod steps;
mod validation;

use orquesta_sdk::{Event, Failure, Handler, HttpRequest, Response};

use crate::error::{HttpError, Reply};
use crate::results::results;
use crate::start::start;
use crate::steps::status;
use crate::validation::{requested, validate};

/// The job record lives 7 days, like the DynamoDB item's TTL it replaces.
pub(crate) const JOB_TTL_MS: u64 = 7 * 24 * 3_600_000;
pub(crate) const KV_BUCKET: &str = "default";
/// Larger lists belong in the automatic mode.
pub(crate) const MAX_MOSTRADORES: usize = 1_000;

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

orquesta_sdk::export!(Ipp);
