//! Answers to callback tasks (`.waitForTaskToken`) in the admin API: Step Functions'
//! SendTaskSuccess, SendTaskFailure and SendTaskHeartbeat, for one tenant's tokens.

use super::tenant_of;
use crate::app::App;
use crate::store::task_tokens::{Answer, AnswerError};
use crate::web::body::AdminBody;
use crate::web::problem::{Problem, ProblemDocument};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use utoipa::ToSchema;

/// SendTaskSuccess: the task's result.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "task_token": "qT7...", "output": { "approved": true } }))]
pub(crate) struct SuccessBody {
    /// The token the task gave its plugin (`$$.Task.Token`).
    #[serde(alias = "taskToken")]
    task_token: String,
    /// The task's result (any JSON), at most 256 KiB.
    #[schema(value_type = Object)]
    output: Value,
}

/// SendTaskFailure: the task's error, matched by its state's `Retry` and `Catch`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "task_token": "qT7...", "error": "Rejected", "cause": "over budget" }))]
pub(crate) struct FailureBody {
    #[serde(alias = "taskToken")]
    task_token: String,
    /// The error name, at most 256 characters (empty when absent).
    #[serde(default)]
    error: String,
    /// At most 32,768 characters (empty when absent).
    #[serde(default)]
    cause: String,
}

/// SendTaskHeartbeat: the task is still being worked on.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "task_token": "qT7..." }))]
pub(crate) struct HeartbeatBody {
    #[serde(alias = "taskToken")]
    task_token: String,
}

/// The answer was taken (Step Functions answers an empty object).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({}))]
pub(crate) struct Answered {}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8], shape: &str) -> Result<T, Problem> {
    serde_json::from_slice(body).map_err(|e| Problem::bad_request(format!("expected {shape}: {e}")))
}

async fn answer(app: &App, tenant: &str, token: &str, answer: Answer) -> Response {
    if let Err(p) = tenant_of(app, tenant) {
        return p.into_response();
    }
    match app
        .services
        .executor
        .answer_task(tenant, token, &answer)
        .await
    {
        Ok(()) => Json(Answered {}).into_response(),
        // The cloud's error names as titles; an unknown token and another tenant's are
        // answered alike.
        Err(AnswerError::InvalidToken) => Problem::new(
            StatusCode::BAD_REQUEST,
            "InvalidToken",
            "not a task token: empty, over 1,024 characters, or with characters no token has",
        )
        .into_response(),
        Err(AnswerError::TaskDoesNotExist) => Problem::new(
            StatusCode::BAD_REQUEST,
            "TaskDoesNotExist",
            format!("tenant `{tenant}` has no task with this token"),
        )
        .into_response(),
        Err(AnswerError::TaskTimedOut) => Problem::new(
            StatusCode::BAD_REQUEST,
            "TaskTimedOut",
            "the task of this token is no longer waiting: it was answered, timed out, or its execution ended",
        )
        .into_response(),
        Err(AnswerError::InvalidOutput(why)) => {
            Problem::new(StatusCode::BAD_REQUEST, "InvalidOutput", why).into_response()
        }
        Err(AnswerError::Store(e)) => Problem::internal(e).into_response(),
        // The admin API answers for every workflow of the tenant.
        Err(e @ AnswerError::Denied(_)) => Problem::internal(e).into_response(),
    }
}

#[utoipa::path(
    post,
    path = "/tenants/{tenant}/tasks/success",
    tag = "executions",
    summary = "SendTaskSuccess: answer a callback task with its result",
    description = "The task waiting on the token (a `.waitForTaskToken` Task) ends with `output` as its result. A token is answered once.",
    params(("tenant" = String, Path, example = "acme")),
    request_body = SuccessBody,
    responses(
        (status = 200, description = "Taken; the execution goes on", body = Answered),
        (status = 400, description = "Malformed body, InvalidToken (not a token), TaskDoesNotExist (no task of this tenant has the token) or InvalidOutput (not JSON or over 256 KiB); TaskTimedOut: the task was answered already, timed out, or its execution ended", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn send_task_success(
    State(app): State<Arc<App>>,
    Path(tenant): Path<String>,
    AdminBody(body): AdminBody,
) -> Response {
    let body: SuccessBody = match parse(&body, "{\"task_token\", \"output\"}") {
        Ok(b) => b,
        Err(p) => return p.into_response(),
    };
    let output = Answer::Success(body.output.to_string());
    answer(&app, &tenant, &body.task_token, output).await
}

#[utoipa::path(
    post,
    path = "/tenants/{tenant}/tasks/failure",
    tag = "executions",
    summary = "SendTaskFailure: fail a callback task",
    description = "The task waiting on the token fails with `error` and `cause`, which its state's Retry and Catch match. A token is answered once.",
    params(("tenant" = String, Path, example = "acme")),
    request_body = FailureBody,
    responses(
        (status = 200, description = "Taken; the task failed", body = Answered),
        (status = 400, description = "Malformed body, InvalidToken, TaskDoesNotExist or InvalidOutput (an error over 256 characters, a cause over 32,768); TaskTimedOut: the task was answered already, timed out, or its execution ended", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn send_task_failure(
    State(app): State<Arc<App>>,
    Path(tenant): Path<String>,
    AdminBody(body): AdminBody,
) -> Response {
    let body: FailureBody = match parse(&body, "{\"task_token\", \"error\", \"cause\"}") {
        Ok(b) => b,
        Err(p) => return p.into_response(),
    };
    let failure = Answer::Failure {
        error: body.error,
        cause: body.cause,
    };
    answer(&app, &tenant, &body.task_token, failure).await
}

#[utoipa::path(
    post,
    path = "/tenants/{tenant}/tasks/heartbeat",
    tag = "executions",
    summary = "SendTaskHeartbeat: a callback task is still being worked on",
    description = "Restarts the task's `HeartbeatSeconds`; its `TimeoutSeconds` still runs.",
    params(("tenant" = String, Path, example = "acme")),
    request_body = HeartbeatBody,
    responses(
        (status = 200, description = "Taken", body = Answered),
        (status = 400, description = "Malformed body, InvalidToken or TaskDoesNotExist; TaskTimedOut: the task is no longer waiting", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn send_task_heartbeat(
    State(app): State<Arc<App>>,
    Path(tenant): Path<String>,
    AdminBody(body): AdminBody,
) -> Response {
    let body: HeartbeatBody = match parse(&body, "{\"task_token\"}") {
        Ok(b) => b,
        Err(p) => return p.into_response(),
    };
    answer(&app, &tenant, &body.task_token, Answer::Heartbeat).await
}
