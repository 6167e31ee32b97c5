//! Workflows in the service: Task states call the tenant's plugins with a `task` event,
//! and the admin API starts, lists, describes and stops executions.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::body::AdminBody;
use async_trait::async_trait;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::fanout::AppHandle;
use super::problem::Problem;
use super::state::App;
use crate::bindings::handler::{Event, Response as PluginResponse, TaskInput};
use crate::engine::InvokeError;
use crate::event::response_to_json;
use crate::store::workflow::ExecutionRow;
use crate::workflow::errors::{PERMISSIONS, TASK_FAILED, TIMEOUT};
use crate::workflow::{StateError, TaskCall, TaskRunner};

/// Runs Task states on the tenant's deployed plugins.
pub struct ServiceTasks {
    pub app: AppHandle,
}

impl ServiceTasks {
    fn app(&self) -> Result<Arc<App>, StateError> {
        self.app
            .get()
            .and_then(Weak::upgrade)
            .ok_or_else(|| StateError::new(TASK_FAILED, "the service is stopping"))
    }
}

#[async_trait]
impl TaskRunner for ServiceTasks {
    fn default_timeout(&self, tenant: &str, resource: &str) -> Duration {
        let limit = self
            .app()
            .ok()
            .and_then(|app| app.tenants.get(tenant))
            .and_then(|t| t.plugins.get(resource).map(|p| p.limits.timeout_ms));
        Duration::from_millis(limit.unwrap_or(crate::engine::Limits::default().timeout_ms))
    }

    async fn run(&self, call: TaskCall) -> Result<Value, StateError> {
        let app = self.app()?;
        if super::recursion::past_bound(call.depth) {
            super::recursion::stopped(&call.tenant, "workflow", &call.resource);
            return Err(StateError::new(
                super::recursion::STOPPED,
                format!(
                    "recursive loop stopped: the task would be invocation {} of one chain",
                    call.depth + 1
                ),
            ));
        }
        let runtime = app.tenants.get(&call.tenant).ok_or_else(|| {
            StateError::new(
                TASK_FAILED,
                format!("tenant `{}` is not serving", call.tenant),
            )
        })?;
        let ctx = runtime
            .plugins
            .get(&call.resource)
            .cloned()
            .ok_or_else(|| {
                StateError::new(
                    PERMISSIONS,
                    format!("`{}` is not one of the tenant's plugins", call.resource),
                )
            })?;
        let component = runtime
            .component_of(&call.resource)
            .and_then(|c| app.plugins.get(&c))
            .ok_or_else(|| {
                StateError::new(
                    TASK_FAILED,
                    format!("plugin `{}` is not deployed", call.resource),
                )
            })?;
        let event = Event::Task(TaskInput {
            execution_id: call.execution_id,
            state: call.state,
            input: call.input.to_string(),
            context: call.context.to_string(),
        });
        let outcome = app
            .engine
            .invoke_in_chain(&component, ctx, &event, call.depth)
            .await;
        match outcome {
            Ok(PluginResponse::None) => Ok(Value::Null),
            Ok(response) => {
                response_to_json(&response).map_err(|e| StateError::new(TASK_FAILED, e.to_string()))
            }
            Err(InvokeError::Timeout { limit_ms }) => Err(StateError::new(
                TIMEOUT,
                format!("the plugin ran past its {limit_ms} ms limit"),
            )),
            Err(e) => Err(StateError::new(e.name(), e.cause())),
        }
    }
}

// ---- admin API --------------------------------------------------------------------------

fn tenant_of(app: &App, tenant: &str) -> Result<Arc<super::tenants::TenantRuntime>, Problem> {
    app.tenants
        .get(tenant)
        .ok_or_else(|| Problem::not_found(format!("no tenant `{tenant}` is serving")))
}

fn store_problem(e: impl std::fmt::Display) -> Problem {
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Internal Server Error",
        e.to_string(),
    )
}

pub(super) async fn list_workflows(
    State(app): State<Arc<App>>,
    Path(tenant): Path<String>,
) -> Response {
    let runtime = match tenant_of(&app, &tenant) {
        Ok(r) => r,
        Err(p) => return p.into_response(),
    };
    let workflows: Vec<Value> = runtime
        .config
        .workflows
        .iter()
        .map(|(name, w)| {
            json!({ "name": name, "definition": w.definition, "start_at": w.document["StartAt"] })
        })
        .collect();
    Json(json!({ "workflows": workflows })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    #[serde(default)]
    input: Value,
    #[serde(default)]
    name: Option<String>,
}

pub(super) async fn start_execution(
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
            Json(json!({ "execution_id": started.id, "created": started.created })),
        )
            .into_response(),
        Err(crate::workflow::StartError::Store(e)) => store_problem(e).into_response(),
        Err(
            e @ (crate::workflow::StartError::InputTooLarge(_)
            | crate::workflow::StartError::Name(_)),
        ) => Problem::bad_request(e.to_string()).into_response(),
        Err(e) => Problem::new(StatusCode::CONFLICT, "Conflict", e.to_string()).into_response(),
    }
}

#[derive(Deserialize)]
pub(super) struct ListQuery {
    workflow: Option<String>,
    status: Option<String>,
    limit: Option<u32>,
}

fn describe(row: &ExecutionRow) -> Value {
    let parse = |t: &Option<String>| {
        t.as_deref()
            .map(|t| serde_json::from_str::<Value>(t).unwrap_or(Value::Null))
    };
    let cursor: Value = serde_json::from_str(&row.cursor).unwrap_or(Value::Null);
    json!({
        "execution_id": row.id,
        "name": row.name,
        "workflow": row.workflow,
        "status": row.status,
        "input": serde_json::from_str::<Value>(&row.input).unwrap_or(Value::Null),
        "output": parse(&row.output),
        "error": row.error,
        "cause": row.cause,
        "current_state": (row.status == "RUNNING").then(|| cursor["state"].clone()),
        "started_at": row.started_at,
        "stopped_at": row.stopped_at,
    })
}

pub(super) async fn list_executions(
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
        Ok(rows) => Json(json!({ "executions": rows.iter().map(describe).collect::<Vec<_>>() }))
            .into_response(),
        Err(e) => store_problem(e).into_response(),
    }
}

async fn execution(app: &App, tenant: &str, id: &str) -> Result<ExecutionRow, Problem> {
    match app.services.store.wf_get(tenant, id).await {
        Ok(Some(row)) => Ok(row),
        Ok(None) => Err(Problem::not_found(format!(
            "tenant `{tenant}` has no execution `{id}`"
        ))),
        Err(e) => Err(store_problem(e)),
    }
}

pub(super) async fn describe_execution(
    State(app): State<Arc<App>>,
    Path((tenant, id)): Path<(String, String)>,
) -> Response {
    match execution(&app, &tenant, &id).await {
        Ok(row) => Json(describe(&row)).into_response(),
        Err(p) => p.into_response(),
    }
}

pub(super) async fn execution_history(
    State(app): State<Arc<App>>,
    Path((tenant, id)): Path<(String, String)>,
) -> Response {
    let row = match execution(&app, &tenant, &id).await {
        Ok(row) => row,
        Err(p) => return p.into_response(),
    };
    match app.services.store.wf_history(&row.id).await {
        Ok(events) => {
            let events: Vec<Value> = events
                .into_iter()
                .map(|e| {
                    json!({
                        "seq": e.seq, "at": e.at, "type": e.event.kind,
                        "state": e.event.state, "detail": e.event.detail,
                    })
                })
                .collect();
            Json(json!({ "execution_id": row.id, "status": row.status, "events": events }))
                .into_response()
        }
        Err(e) => store_problem(e).into_response(),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct StopBody {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    cause: Option<String>,
}

pub(super) async fn stop_execution(
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
        Ok(true) => Json(json!({ "execution_id": row.id, "status": "ABORTED" })).into_response(),
        Ok(false) => Problem::new(
            StatusCode::CONFLICT,
            "Conflict",
            format!("execution `{id}` is not running ({})", row.status),
        )
        .into_response(),
        Err(e) => store_problem(e).into_response(),
    }
}
