//! Workflows in the admin API: start, list, describe and stop executions.

use super::tenant_of;
use crate::app::App;
use crate::store::workflow::ExecutionRow;
use crate::web::body::AdminBody;
use crate::web::problem::{Problem, ProblemDocument};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

/// A tenant's workflows.
#[derive(Serialize, ToSchema)]
pub(crate) struct WorkflowList {
    workflows: Vec<WorkflowSummary>,
}

/// A workflow: its definition file and the state it starts at.
#[derive(Serialize, ToSchema)]
pub(crate) struct WorkflowSummary {
    #[schema(example = "invoice")]
    name: String,
    /// The definition file, as the tenant file names it.
    #[schema(value_type = String, example = "workflows/invoice.asl.json")]
    definition: std::path::PathBuf,
    /// The definition's `StartAt`.
    #[schema(value_type = String, example = "Validate")]
    start_at: Value,
}

#[utoipa::path(
    get,
    path = "/tenants/{tenant}/workflows",
    tag = "workflows",
    summary = "A tenant's workflows (state machines)",
    params(("tenant" = String, Path, example = "acme")),
    responses(
        (status = 200, description = "The workflows", body = WorkflowList),
        (status = 401, description = "No or wrong token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn list_workflows(
    State(app): State<Arc<App>>,
    Path(tenant): Path<String>,
) -> Response {
    let runtime = match tenant_of(&app, &tenant) {
        Ok(r) => r,
        Err(p) => return p.into_response(),
    };
    let workflows = runtime
        .config
        .workflows
        .iter()
        .map(|(name, w)| WorkflowSummary {
            name: name.clone(),
            definition: w.definition.clone(),
            start_at: w.document["StartAt"].clone(),
        })
        .collect();
    Json(WorkflowList { workflows }).into_response()
}

/// How to start an execution; an empty body starts one with `{}` as its input.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "input": { "invoice": 42 }, "name": "invoice-42" }))]
pub(crate) struct StartBody {
    /// The execution's input (`{}` when absent); at most 256 KiB.
    #[serde(default)]
    input: Value,
    /// The same name with the same input returns the existing execution. 1-80
    /// characters, none of them whitespace, a control character or one of
    /// `< > { } [ ] ? * " # % \ ^ | ~ ` $ & , ; : /` (Step Functions' rule); another name
    /// is a 400.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 80)]
    name: Option<String>,
}

/// An execution started, or found by its name.
#[derive(Serialize, ToSchema)]
pub(crate) struct Started {
    #[schema(example = "0193a6f2-4b8e-7c1d-9f00-2a4d5e6f7a8b")]
    execution_id: String,
    /// False when an execution of that name and input existed already.
    created: bool,
}

#[utoipa::path(
    post,
    path = "/tenants/{tenant}/workflows/{workflow}/executions",
    tag = "executions",
    summary = "Start an execution",
    description = "A name makes the start idempotent.",
    params(
        ("tenant" = String, Path, example = "acme"),
        ("workflow" = String, Path, example = "invoice"),
    ),
    request_body(content = Option<StartBody>, description = "May be empty"),
    responses(
        (status = 201, description = "Started", body = Started),
        (status = 200, description = "An execution of that name and input existed already", body = Started),
        (status = 400, description = "Malformed body, a bad name, or an input over 256 KiB", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant or workflow", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "The name is taken by an execution with another input", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn start_execution(
    State(app): State<Arc<App>>,
    Path((tenant, workflow)): Path<(String, String)>,
    AdminBody(body): AdminBody,
) -> Response {
    let runtime = match tenant_of(&app, &tenant) {
        Ok(r) => r,
        Err(p) => return p.into_response(),
    };
    if !runtime.config.workflows.contains_key(&workflow) {
        return Problem::not_found(format!("tenant `{tenant}` has no workflow `{workflow}`"))
            .into_response();
    }
    let request: StartBody = if body.is_empty() {
        StartBody {
            input: json!({}),
            name: None,
        }
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => {
                return Problem::bad_request(format!("expected {{\"input\", \"name\"}}: {e}"))
                    .into_response();
            }
        }
    };
    let input = match request.input {
        Value::Null => json!({}),
        other => other,
    };
    let config = &runtime.config.workflows[&workflow];
    match app
        .services
        .executor
        .start(
            &tenant,
            &workflow,
            &config.document,
            input,
            request.name.as_deref(),
        )
        .await
    {
        Ok(started) => (
            if started.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            },
            Json(Started {
                execution_id: started.id,
                created: started.created,
            }),
        )
            .into_response(),
        Err(crate::workflow::StartError::Store(e)) => Problem::internal(e).into_response(),
        Err(
            e @ (crate::workflow::StartError::InputTooLarge(_)
            | crate::workflow::StartError::Name(_)),
        ) => Problem::bad_request(e.to_string()).into_response(),
        Err(e) => Problem::new(StatusCode::CONFLICT, "Conflict", e.to_string()).into_response(),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only this workflow's executions.
    #[param(example = "invoice")]
    workflow: Option<String>,
    /// Only executions in this status: RUNNING, SUCCEEDED, FAILED, TIMED_OUT or ABORTED
    /// (another matches none).
    #[param(example = "RUNNING")]
    status: Option<String>,
    /// How many, newest first.
    #[param(maximum = 1000, default = 100, example = 20)]
    limit: Option<u32>,
}

/// A tenant's executions, newest first.
#[derive(Serialize, ToSchema)]
pub(crate) struct ExecutionList {
    executions: Vec<Execution>,
}

/// An execution of a workflow.
#[derive(Serialize, ToSchema)]
pub(crate) struct Execution {
    #[schema(example = "0193a6f2-4b8e-7c1d-9f00-2a4d5e6f7a8b")]
    execution_id: String,
    /// The start's name (the id when none was given).
    #[schema(example = "invoice-42")]
    name: String,
    #[schema(example = "invoice")]
    workflow: String,
    /// RUNNING, SUCCEEDED, FAILED, TIMED_OUT or ABORTED.
    #[schema(example = "SUCCEEDED")]
    status: String,
    #[schema(value_type = Object)]
    input: Value,
    /// The final output, when SUCCEEDED.
    #[schema(value_type = Option<Object>)]
    output: Option<Value>,
    /// The error name, when FAILED, TIMED_OUT or ABORTED.
    error: Option<String>,
    cause: Option<String>,
    /// The state it is in, while RUNNING.
    #[schema(value_type = Option<String>)]
    current_state: Option<Value>,
    /// Milliseconds since the Unix epoch.
    #[schema(example = 1_795_305_600_000_i64)]
    started_at: i64,
    /// Milliseconds since the Unix epoch.
    stopped_at: Option<i64>,
    /// How many times it was redriven (`$$.Execution.RedriveCount`).
    redrive_count: u64,
}

fn describe(row: &ExecutionRow) -> Execution {
    let parse = |t: &Option<String>| {
        t.as_deref()
            .map(|t| serde_json::from_str::<Value>(t).unwrap_or(Value::Null))
    };
    let cursor: Value = serde_json::from_str(&row.cursor).unwrap_or(Value::Null);
    Execution {
        execution_id: row.id.clone(),
        name: row.name.clone(),
        workflow: row.workflow.clone(),
        status: row.status.clone(),
        input: serde_json::from_str::<Value>(&row.input).unwrap_or(Value::Null),
        output: parse(&row.output),
        error: row.error.clone(),
        cause: row.cause.clone(),
        current_state: (row.status == "RUNNING").then(|| cursor["state"].clone()),
        started_at: row.started_at,
        stopped_at: row.stopped_at,
        redrive_count: serde_json::from_str::<Value>(&row.context)
            .ok()
            .and_then(|c| c["Execution"]["RedriveCount"].as_u64())
            .unwrap_or(0),
    }
}

#[utoipa::path(
    get,
    path = "/tenants/{tenant}/executions",
    tag = "executions",
    summary = "A tenant's executions, newest first",
    params(("tenant" = String, Path, example = "acme"), ListQuery),
    responses(
        (status = 200, description = "The executions", body = ExecutionList),
        (status = 400, description = "A query that does not parse", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn list_executions(
    State(app): State<Arc<App>>,
    Path(tenant): Path<String>,
    Query(q): Query<ListQuery>,
) -> Response {
    if let Err(p) = tenant_of(&app, &tenant) {
        return p.into_response();
    }
    let limit = q.limit.unwrap_or(100).min(1000);
    match app
        .services
        .store
        .wf_list(&tenant, q.workflow.as_deref(), q.status.as_deref(), limit)
        .await
    {
        Ok(rows) => Json(ExecutionList {
            executions: rows.iter().map(describe).collect(),
        })
        .into_response(),
        Err(e) => Problem::internal(e).into_response(),
    }
}

async fn execution(app: &App, tenant: &str, id: &str) -> Result<ExecutionRow, Problem> {
    match app.services.store.wf_get(tenant, id).await {
        Ok(Some(row)) => Ok(row),
        Ok(None) => Err(Problem::not_found(format!(
            "tenant `{tenant}` has no execution `{id}`"
        ))),
        Err(e) => Err(Problem::internal(e)),
    }
}

#[utoipa::path(
    get,
    path = "/tenants/{tenant}/executions/{id}",
    tag = "executions",
    summary = "Describe an execution",
    params(
        ("tenant" = String, Path, example = "acme"),
        ("id" = String, Path, description = "The execution id", example = "0193a6f2-4b8e-7c1d-9f00-2a4d5e6f7a8b"),
    ),
    responses(
        (status = 200, description = "The execution", body = Execution),
        (status = 401, description = "No or wrong token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant or execution", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn describe_execution(
    State(app): State<Arc<App>>,
    Path((tenant, id)): Path<(String, String)>,
) -> Response {
    match execution(&app, &tenant, &id).await {
        Ok(row) => Json(describe(&row)).into_response(),
        Err(p) => p.into_response(),
    }
}

/// An execution's history.
#[derive(Serialize, ToSchema)]
pub(crate) struct History {
    #[schema(example = "0193a6f2-4b8e-7c1d-9f00-2a4d5e6f7a8b")]
    execution_id: String,
    #[schema(example = "SUCCEEDED")]
    status: String,
    events: Vec<HistoryItem>,
}

/// One event of an execution's history.
#[derive(Serialize, ToSchema)]
pub(crate) struct HistoryItem {
    #[schema(example = 1)]
    seq: i64,
    /// Milliseconds since the Unix epoch.
    #[schema(example = 1_795_305_600_000_i64)]
    at: i64,
    /// ExecutionStarted, StateEntered, StateExited, TaskScheduled, TaskSubmitted,
    /// TaskSucceeded, TaskFailed, TaskTimedOut, StateRetryScheduled, ErrorCaught,
    /// WaitStateEntered, ParallelStateStarted, MapStateStarted, ChildrenSucceeded,
    /// ChildFailed, ExecutionSucceeded, ExecutionFailed, ExecutionTimedOut,
    /// ExecutionAborted or ExecutionRedriven.
    #[serde(rename = "type")]
    #[schema(example = "StateEntered")]
    kind: String,
    #[schema(example = "Validate")]
    state: Option<String>,
    /// What the event carries (the input, output or error), by its type.
    #[schema(value_type = Object)]
    detail: Value,
}

#[utoipa::path(
    get,
    path = "/tenants/{tenant}/executions/{id}/history",
    tag = "executions",
    summary = "An execution's history events, in order",
    params(
        ("tenant" = String, Path, example = "acme"),
        ("id" = String, Path, description = "The execution id", example = "0193a6f2-4b8e-7c1d-9f00-2a4d5e6f7a8b"),
    ),
    responses(
        (status = 200, description = "The history", body = History),
        (status = 401, description = "No or wrong token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant or execution", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn execution_history(
    State(app): State<Arc<App>>,
    Path((tenant, id)): Path<(String, String)>,
) -> Response {
    let row = match execution(&app, &tenant, &id).await {
        Ok(row) => row,
        Err(p) => return p.into_response(),
    };
    match app.services.store.wf_history(&row.id).await {
        Ok(events) => {
            let events = events
                .into_iter()
                .map(|e| HistoryItem {
                    seq: e.seq,
                    at: e.at,
                    kind: e.event.kind,
                    state: e.event.state,
                    detail: e.event.detail,
                })
                .collect();
            Json(History {
                execution_id: row.id,
                status: row.status,
                events,
            })
            .into_response()
        }
        Err(e) => Problem::internal(e).into_response(),
    }
}

/// Why an execution is stopped; an empty body stops it without.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "error": "Operator", "cause": "stopped by hand" }))]
pub(crate) struct StopBody {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    cause: Option<String>,
}

/// An execution stopped.
#[derive(Serialize, ToSchema)]
pub(crate) struct Stopped {
    #[schema(example = "0193a6f2-4b8e-7c1d-9f00-2a4d5e6f7a8b")]
    execution_id: String,
    /// Always ABORTED.
    #[schema(example = "ABORTED")]
    status: &'static str,
}

#[utoipa::path(
    post,
    path = "/tenants/{tenant}/executions/{id}/stop",
    tag = "executions",
    summary = "Stop a running execution (and its Parallel / Map children)",
    params(
        ("tenant" = String, Path, example = "acme"),
        ("id" = String, Path, description = "The execution id", example = "0193a6f2-4b8e-7c1d-9f00-2a4d5e6f7a8b"),
    ),
    request_body(content = Option<StopBody>, description = "May be empty"),
    responses(
        (status = 200, description = "Stopped", body = Stopped),
        (status = 400, description = "Malformed body", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant or execution", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "The execution is not running", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]

pub(crate) async fn stop_execution(
    State(app): State<Arc<App>>,
    Path((tenant, id)): Path<(String, String)>,
    AdminBody(body): AdminBody,
) -> Response {
    let request: StopBody = if body.is_empty() {
        StopBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => {
                return Problem::bad_request(format!("expected {{\"error\", \"cause\"}}: {e}"))
                    .into_response();
            }
        }
    };
    let row = match execution(&app, &tenant, &id).await {
        Ok(row) => row,
        Err(p) => return p.into_response(),
    };
    match app
        .services
        .store
        .wf_stop(
            &tenant,
            &row.id,
            request.error.as_deref(),
            request.cause.as_deref(),
        )
        .await
    {
        Ok(true) => Json(Stopped {
            execution_id: row.id,
            status: "ABORTED",
        })
        .into_response(),
        Ok(false) => Problem::new(
            StatusCode::CONFLICT,
            "Conflict",
            format!("execution `{id}` is not running ({})", row.status),
        )
        .into_response(),
        Err(e) => Problem::internal(e).into_response(),
    }
}

/// An execution redriven.
#[derive(Serialize, ToSchema)]
pub(crate) struct Redriven {
    #[schema(example = "0193a6f2-4b8e-7c1d-9f00-2a4d5e6f7a8b")]
    execution_id: String,
    /// Always RUNNING.
    #[schema(example = "RUNNING")]
    status: &'static str,
    /// `$$.Execution.RedriveCount` from now on.
    #[schema(example = 1)]
    redrive_count: u64,
}

#[utoipa::path(
    post,
    path = "/tenants/{tenant}/executions/{id}/redrive",
    tag = "executions",
    summary = "RedriveExecution: run a FAILED, TIMED_OUT or ABORTED execution again from the state that did not succeed",
    description = "The state that failed runs again with its input; states that succeeded do not (of a Parallel or Map state, the branches and items that did not succeed run again). Not for a RUNNING or SUCCEEDED execution, one that ended over 14 days ago, or one started over a year ago.",
    params(
        ("tenant" = String, Path, example = "acme"),
        ("id" = String, Path, description = "The execution id", example = "0193a6f2-4b8e-7c1d-9f00-2a4d5e6f7a8b"),
    ),
    responses(
        (status = 200, description = "Running again", body = Redriven),
        (status = 401, description = "No or wrong token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant or execution", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "ExecutionNotRedrivable, with the reason", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn redrive_execution(
    State(app): State<Arc<App>>,
    Path((tenant, id)): Path<(String, String)>,
) -> Response {
    if let Err(p) = tenant_of(&app, &tenant) {
        return p.into_response();
    }
    match app.services.executor.redrive(&tenant, &id).await {
        Ok(count) => Json(Redriven {
            execution_id: id,
            status: "RUNNING",
            redrive_count: count,
        })
        .into_response(),
        Err(crate::workflow::RedriveError::NotFound) => {
            Problem::not_found(format!("tenant `{tenant}` has no execution `{id}`")).into_response()
        }
        Err(crate::workflow::RedriveError::NotRedrivable(why)) => {
            Problem::new(StatusCode::CONFLICT, "ExecutionNotRedrivable", why).into_response()
        }
        Err(crate::workflow::RedriveError::Store(e)) => Problem::internal(e).into_response(),
    }
}
