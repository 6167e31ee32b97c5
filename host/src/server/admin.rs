//! The admin API under `/admin/v1`, behind a bearer token. Described by `openapi.json`
//! beside this file, served at `/admin/v1/openapi.json`.

use std::sync::Arc;

use super::body::AdminBody;
use axum::Json;
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::json;

use super::auth::{bearer, sha256_hex};
use super::plugins::UploadError;
use super::problem::Problem;
use super::state::App;
use super::{blobs, workflows};
use crate::capabilities::messaging::OutgoingMessage;
use crate::tenants::QueueConfig;

pub const OPENAPI: &str = include_str!("openapi.json");

/// Messages one listing shows at most.
const ADMIN_PAGE: u32 = 1000;
/// Messages one send call takes at most (SQS's batch is 10; loading a queue wants more).
const ADMIN_SEND_BATCH: usize = 1000;

pub fn router(app: Arc<App>) -> Router<Arc<App>> {
    Router::new()
        .route("/plugins", get(list_plugins))
        .route("/plugins/{name}", put(upload_plugin))
        .route("/tenants", get(list_tenants))
        .route("/reload", post(reload))
        .route("/tenants/{tenant}/queues", get(list_queues))
        .route(
            "/tenants/{tenant}/queues/{queue}/messages",
            get(peek_messages).post(send_messages),
        )
        .route("/tenants/{tenant}/queues/{queue}/redrive", post(redrive))
        .route("/tenants/{tenant}/topics/{topic}/messages", post(publish))
        .route("/tenants/{tenant}/schedules", get(list_schedules))
        .route("/tenants/{tenant}/buses/{bus}/events", post(put_event))
        .route(
            "/tenants/{tenant}/blobs/{bucket}/{*key}",
            get(blobs::get_blob).put(blobs::put_blob),
        )
        .route(
            "/tenants/{tenant}/workflows",
            get(workflows::list_workflows),
        )
        .route(
            "/tenants/{tenant}/workflows/{workflow}/executions",
            post(workflows::start_execution),
        )
        .route(
            "/tenants/{tenant}/executions",
            get(workflows::list_executions),
        )
        .route(
            "/tenants/{tenant}/executions/{id}",
            get(workflows::describe_execution),
        )
        .route(
            "/tenants/{tenant}/executions/{id}/history",
            get(workflows::execution_history),
        )
        .route(
            "/tenants/{tenant}/executions/{id}/stop",
            post(workflows::stop_execution),
        )
        .route_layer(axum::middleware::from_fn_with_state(app, require_token))
        // The description of the API is public, like the routes it describes.
        .route("/openapi.json", get(openapi))
}

async fn require_token(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let Some(expected) = &app.admin_token_hash else {
        return Problem::not_found("the admin API is off: set admin_token in the host config")
            .into_response();
    };
    let given = bearer(request.headers());
    // Comparing digests keeps the comparison's time independent of the token.
    match given {
        Some(token) if &sha256_hex(token) == expected => next.run(request).await,
        Some(_) => Problem::unauthorized("the admin token is not valid").into_response(),
        None => Problem::unauthorized("the admin API needs Authorization: Bearer <admin token>")
            .into_response(),
    }
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn list_plugins(State(app): State<Arc<App>>) -> Response {
    Json(json!({ "plugins": app.plugins.list() })).into_response()
}

async fn upload_plugin(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    AdminBody(body): AdminBody,
) -> Response {
    match app.plugins.upload(&name, body.to_vec()).await {
        Ok(plugin) => {
            // Tenants refused for want of this plugin load now, not after the watcher.
            app.tenants.scan(&app.services, &app.plugins);
            (
                StatusCode::OK,
                Json(json!({ "name": name, "hash": plugin.hash })),
            )
                .into_response()
        }
        Err(e @ (UploadError::Name(_) | UploadError::Load(_))) => {
            Problem::bad_request(e.to_string()).into_response()
        }
        Err(e @ UploadError::Write(_)) => Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            e.to_string(),
        )
        .into_response(),
    }
}

async fn list_tenants(State(app): State<Arc<App>>) -> Response {
    Json(json!({ "tenants": app.tenants.list() })).into_response()
}

async fn reload(State(app): State<Arc<App>>) -> Response {
    app.reload().await;
    Json(json!({ "plugins": app.plugins.list(), "tenants": app.tenants.list() })).into_response()
}

// ---- queues -----------------------------------------------------------------------------

/// A serving tenant and one of its queues, or the problem to answer.
fn queue_of(
    app: &App,
    tenant: &str,
    queue: &str,
) -> Result<(Arc<super::tenants::TenantRuntime>, QueueConfig), Problem> {
    let runtime = app
        .tenants
        .get(tenant)
        .ok_or_else(|| Problem::not_found(format!("no tenant `{tenant}` is serving")))?;
    let config =
        runtime.config.queues.get(queue).cloned().ok_or_else(|| {
            Problem::not_found(format!("tenant `{tenant}` has no queue `{queue}`"))
        })?;
    Ok((runtime, config))
}

fn store_problem(e: impl std::fmt::Display) -> Problem {
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Internal Server Error",
        e.to_string(),
    )
}

async fn list_queues(State(app): State<Arc<App>>, Path(tenant): Path<String>) -> Response {
    let Some(runtime) = app.tenants.get(&tenant) else {
        return Problem::not_found(format!("no tenant `{tenant}` is serving")).into_response();
    };
    let mut queues = Vec::new();
    for (name, config) in &runtime.config.queues {
        let stats = match app.services.store.queue_stats(&tenant, name).await {
            Ok(s) => s,
            Err(e) => return store_problem(e).into_response(),
        };
        let labels = [("tenant", tenant.clone()), ("queue", name.clone())];
        metrics::gauge!("orquesta_queue_depth", &labels).set(stats.visible as f64);
        metrics::gauge!("orquesta_queue_oldest_age_seconds", &labels)
            .set(stats.oldest_age_ms as f64 / 1000.0);
        queues.push(json!({
            "name": name,
            "fifo": config.fifo,
            "consumer": config.consumer.as_ref().map(|c| json!({ "plugin": c.plugin, "batch_size": c.batch_size, "max_concurrency": c.max_concurrency })),
            "dead_letter": config.dead_letter.as_ref().map(|d| json!({ "queue": d.queue, "max_receive_count": d.max_receive_count })),
            "visible": stats.visible,
            "in_flight": stats.in_flight,
            "delayed": stats.delayed,
            "oldest_age_ms": stats.oldest_age_ms,
        }));
    }
    Json(json!({ "queues": queues })).into_response()
}

#[derive(serde::Deserialize)]
struct PeekQuery {
    limit: Option<u32>,
}

async fn peek_messages(
    State(app): State<Arc<App>>,
    Path((tenant, queue)): Path<(String, String)>,
    axum::extract::Query(q): axum::extract::Query<PeekQuery>,
) -> Response {
    if let Err(p) = queue_of(&app, &tenant, &queue) {
        return p.into_response();
    }
    let limit = q.limit.unwrap_or(100).clamp(1, ADMIN_PAGE);
    match app.services.store.queue_peek(&tenant, &queue, limit).await {
        Ok(messages) => Json(json!({ "messages": messages })).into_response(),
        Err(e) => store_problem(e).into_response(),
    }
}

/// A message to send: `body` is sent as is when a string, as JSON text otherwise.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SendBody {
    body: serde_json::Value,
    #[serde(default)]
    attributes: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    group_id: Option<String>,
    #[serde(default)]
    deduplication_id: Option<String>,
    #[serde(default)]
    delay_seconds: u32,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum SendRequest {
    Batch { messages: Vec<SendBody> },
    One(SendBody),
}

async fn send_messages(
    State(app): State<Arc<App>>,
    Path((tenant, queue)): Path<(String, String)>,
    AdminBody(body): AdminBody,
) -> Response {
    let (runtime, _) = match queue_of(&app, &tenant, &queue) {
        Ok(found) => found,
        Err(p) => return p.into_response(),
    };
    let request: SendRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return Problem::bad_request(format!(
                "expected {{\"body\": ...}} or {{\"messages\": [...]}}: {e}"
            ))
            .into_response();
        }
    };
    let messages = match request {
        SendRequest::One(m) => vec![m],
        SendRequest::Batch { messages } if messages.len() <= ADMIN_SEND_BATCH => messages,
        SendRequest::Batch { messages } => {
            return Problem::bad_request(format!(
                "at most {ADMIN_SEND_BATCH} messages per call, got {}",
                messages.len()
            ))
            .into_response();
        }
    };
    let messages = messages
        .into_iter()
        .map(|m| OutgoingMessage {
            queue: queue.clone(),
            body: match m.body {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            },
            delay_seconds: m.delay_seconds,
            attributes: m.attributes.into_iter().collect(),
            group_id: m.group_id,
            deduplication_id: m.deduplication_id,
        })
        .collect();
    // All or none: a refused message sends nothing.
    let sent = super::queues::send_many(
        &app.services.store,
        &app.services.wake,
        &tenant,
        &runtime.config.queues,
        &queue,
        super::queues::Sending {
            max_bytes: runtime.config.limits.max_message_bytes(),
            max_depth: runtime.config.limits.queue_depth,
            depth: 0,
        },
        messages,
    )
    .await;
    let ids = match sent {
        Ok(ids) => ids,
        Err(e) => return cap_problem(e).into_response(),
    };
    Json(json!({ "ids": ids })).into_response()
}

async fn redrive(
    State(app): State<Arc<App>>,
    Path((tenant, queue)): Path<(String, String)>,
) -> Response {
    let runtime = match queue_of(&app, &tenant, &queue) {
        Ok((runtime, _)) => runtime,
        Err(p) => return p.into_response(),
    };
    // Messages sent to the dead-letter queue directly go to the one queue that names it.
    let mut sources = runtime
        .config
        .queues
        .iter()
        .filter(|(_, q)| q.dead_letter.as_ref().is_some_and(|d| d.queue == queue));
    let fallback = match (sources.next(), sources.next()) {
        (Some((name, _)), None) => Some(name.as_str()),
        _ => None,
    };
    match app
        .services
        .store
        .queue_redrive(&tenant, &queue, fallback)
        .await
    {
        Ok(moved) => {
            app.services.wake.notify_waiters();
            Json(json!({ "moved": moved })).into_response()
        }
        Err(e) => store_problem(e).into_response(),
    }
}

// ---- topics and buses ---------------------------------------------------------------

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishBody {
    /// Sent as is when a string, as JSON text otherwise.
    body: serde_json::Value,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    attributes: std::collections::BTreeMap<String, String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct EventBody {
    source: String,
    detail_type: String,
    #[serde(default)]
    detail: serde_json::Value,
}

fn text_of(v: serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    }
}

/// Who the admin API acts as when it publishes.
fn admin_caller(tenant: &str) -> crate::capabilities::Caller<'_> {
    crate::capabilities::Caller {
        tenant,
        plugin: "(admin)",
        invocation: "admin",
        depth: 0,
    }
}

/// A capability's error as the admin API answers it: the caller's fault is a 400.
pub(super) fn cap_problem(e: crate::capabilities::CapError) -> Problem {
    match e {
        crate::capabilities::CapError::Invalid(m) => Problem::bad_request(m),
        crate::capabilities::CapError::Conflict(m) => {
            Problem::new(StatusCode::CONFLICT, "Conflict", m)
        }
        crate::capabilities::CapError::Denied(m) => Problem::forbidden(m),
        other => store_problem(other),
    }
}

async fn publish(
    State(app): State<Arc<App>>,
    Path((tenant, topic)): Path<(String, String)>,
    AdminBody(body): AdminBody,
) -> Response {
    use crate::capabilities::notify::{Notifier as _, Publication};
    let Some(runtime) = app.tenants.get(&tenant) else {
        return Problem::not_found(format!("no tenant `{tenant}` is serving")).into_response();
    };
    if !runtime.config.topics.contains_key(&topic) {
        return Problem::not_found(format!("tenant `{tenant}` has no topic `{topic}`"))
            .into_response();
    }
    let request: PublishBody = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return Problem::bad_request(format!("expected {{\"body\": ...}}: {e}"))
                .into_response();
        }
    };
    let fanout = app.services.fanout(&tenant, &runtime.config);
    let publication = Publication {
        topic,
        subject: request.subject,
        body: text_of(request.body),
        attributes: request.attributes.into_iter().collect(),
    };
    match fanout.publish(&admin_caller(&tenant), publication).await {
        Ok(id) => Json(json!({ "id": id })).into_response(),
        Err(e) => cap_problem(e).into_response(),
    }
}

async fn put_event(
    State(app): State<Arc<App>>,
    Path((tenant, bus)): Path<(String, String)>,
    AdminBody(body): AdminBody,
) -> Response {
    use crate::capabilities::messaging::{Messaging as _, OutgoingEvent};
    let Some(runtime) = app.tenants.get(&tenant) else {
        return Problem::not_found(format!("no tenant `{tenant}` is serving")).into_response();
    };
    if !runtime.config.buses.contains_key(&bus) {
        return Problem::not_found(format!("tenant `{tenant}` has no bus `{bus}`")).into_response();
    }
    let request: EventBody = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return Problem::bad_request(format!(
                "expected {{\"source\", \"detail_type\", \"detail\"}}: {e}"
            ))
            .into_response();
        }
    };
    let fanout = app.services.fanout(&tenant, &runtime.config);
    let event = OutgoingEvent {
        bus,
        source: request.source,
        detail_type: request.detail_type,
        detail: request.detail.to_string(),
    };
    match fanout.put_event(&admin_caller(&tenant), event).await {
        Ok(id) => Json(json!({ "id": id })).into_response(),
        Err(e) => cap_problem(e).into_response(),
    }
}

async fn list_schedules(State(app): State<Arc<App>>, Path(tenant): Path<String>) -> Response {
    let Some(runtime) = app.tenants.get(&tenant) else {
        return Problem::not_found(format!("no tenant `{tenant}` is serving")).into_response();
    };
    let mut schedules = Vec::new();
    for (name, config) in &runtime.config.schedules {
        let last = match app.services.store.schedule_last_fired(&tenant, name).await {
            Ok(last) => last,
            Err(e) => return store_problem(e).into_response(),
        };
        schedules.push(json!({
            "name": name,
            "expression": config.expression,
            "timezone": config.timezone.as_deref().unwrap_or("UTC"),
            "enabled": config.enabled,
            "next_fire_at": config.enabled.then(|| super::schedules::next_tick(config)).flatten(),
            "last_fired_at": last,
        }));
    }
    Json(json!({ "schedules": schedules })).into_response()
}

#[cfg(test)]
mod tests {
    /// Every route of [`super::router`] is described, with each of its methods.
    #[test]
    fn the_openapi_document_describes_every_admin_route() {
        let openapi: serde_json::Value = serde_json::from_str(super::OPENAPI).unwrap();
        let source = include_str!("admin.rs");
        let router = &source[source.find("pub fn router").unwrap()..];
        let router = &router[..router.find("\n}\n").unwrap()];
        let mut seen = 0;
        for call in router.split(".route(").skip(1) {
            let call = call.trim_start();
            let path = &call[1..call[1..].find('"').unwrap() + 1];
            // axum's `{*rest}` is OpenAPI's `{rest}`.
            let path = &path.replace("{*", "{");
            let methods = ["get(", "put(", "post(", "delete("];
            for method in methods.iter().filter(|m| call.contains(**m)) {
                let method = method.trim_end_matches('(');
                assert!(
                    openapi["paths"][path.as_str()][method].is_object(),
                    "openapi.json lacks {method} {path}"
                );
            }
            seen += 1;
        }
        assert!(seen >= 18, "only {seen} routes found: the parse is wrong");
    }
}
