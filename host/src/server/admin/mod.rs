//! The admin API under `/admin/v1`, behind a bearer token. Each handler carries its
//! `#[utoipa::path]`; [`router`] serves exactly the handlers [`operations`] registers and
//! [`openapi::document`] describes the same registration, served at
//! `/admin/v1/openapi.json`.

use std::sync::Arc;

use crate::web::body::AdminBody;
use axum::Json;
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::App;
use crate::app::plugins::PluginStatus;
use crate::app::tenants::TenantStatus;
use crate::triggers::http::auth::{bearer, sha256_hex};
use crate::web::problem::{Problem, ProblemDocument};
mod access;
mod blobs;
mod deliveries;
mod deploys;
mod hosts;
mod openapi;
mod tasks;
mod workflows;
use crate::capabilities::messaging::OutgoingMessage;
use crate::store::queue::Listed;
use crate::tenants::QueueConfig;

/// Messages one listing shows at most.
const ADMIN_PAGE: u32 = 1000;
/// Messages one send call takes at most (SQS's batch is 10; loading a queue wants more).
const ADMIN_SEND_BATCH: usize = 1000;

/// Every operation behind the admin token, registered once: the router serves these and
/// the OpenAPI document describes them, both from each handler's `#[utoipa::path]`.
pub(crate) fn operations() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(list_plugins))
        .routes(routes!(deploys::put_plugin, deploys::delete_plugin))
        .routes(routes!(list_tenants))
        .routes(routes!(deploys::put_tenant, deploys::delete_tenant))
        .routes(routes!(deploys::put_tenant_plugin))
        .routes(routes!(reload))
        .routes(routes!(hosts::list_hosts))
        .routes(routes!(list_queues))
        .routes(routes!(peek_messages, send_messages))
        .routes(routes!(redrive))
        .routes(routes!(publish))
        .routes(routes!(list_schedules))
        .routes(routes!(put_event))
        .routes(routes!(test_event_pattern))
        .routes(routes!(blobs::get_blob, blobs::put_blob))
        .routes(routes!(deliveries::list_deliveries))
        .routes(routes!(workflows::list_workflows))
        .routes(routes!(workflows::start_execution))
        .routes(routes!(workflows::list_executions))
        .routes(routes!(workflows::describe_execution))
        .routes(routes!(workflows::execution_history))
        .routes(routes!(workflows::stop_execution))
        .routes(routes!(workflows::redrive_execution))
        .routes(routes!(tasks::send_task_success))
        .routes(routes!(tasks::send_task_failure))
        .routes(routes!(tasks::send_task_heartbeat))
}

/// Operations anyone may call: the description of the API is public, like the routes
/// it describes.
pub(crate) fn public_operations() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new().routes(routes!(openapi::serve))
}

pub fn router(app: Arc<App>) -> Router<Arc<App>> {
    let (router, _) = operations()
        .route_layer(axum::middleware::from_fn_with_state(app, require_token))
        .merge(public_operations())
        .split_for_parts();
    router
}

async fn require_token(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let Some(expected) = &app.admin_token_hash else {
        return Problem::not_found("the admin API is off: set admin_token in the host config")
            .into_response();
    };
    let Some(token) = bearer(request.headers()) else {
        return Problem::unauthorized("the admin API needs Authorization: Bearer <admin token>")
            .into_response();
    };
    // Comparing digests keeps the comparison's time independent of the token.
    let digest = sha256_hex(token);
    let mut request = request;
    if &digest == expected {
        request.extensions_mut().insert(access::AdminCaller::Host);
        return next.run(request).await;
    }
    match access::find_credential(&app, &digest) {
        access::Found::One(credential) => {
            let (method, uri) = (request.method().clone(), request.uri().path().to_string());
            let answer = match access::check(&credential, request).await {
                Ok(mut request) => {
                    request
                        .extensions_mut()
                        .insert(access::AdminCaller::Tenant {
                            tenant: credential.tenant.clone(),
                            credential: credential.name.clone(),
                        });
                    next.run(request).await
                }
                Err(refused) => refused.into_response(),
            };
            // The host's record of what each tenant credential did, or tried.
            tracing::info!(
                tenant = %credential.tenant,
                credential = %credential.name,
                %method,
                path = %uri,
                status = answer.status().as_u16(),
                "admin call with a tenant credential"
            );
            answer
        }
        access::Found::Ambiguous(tenants) => {
            // The tenants are named in the host's log, not to the caller: another
            // tenant's name is not the caller's to learn.
            tracing::warn!(
                ?tenants,
                "an admin credential is declared by several tenants; refused"
            );
            Problem::forbidden(
                "this credential is declared by more than one tenant file, so it is refused for all",
            )
            .into_response()
        }
        access::Found::None => {
            Problem::unauthorized("the admin token is not valid").into_response()
        }
    }
}

/// The deployed plugins.
#[derive(Serialize, ToSchema)]
struct PluginList {
    plugins: Vec<PluginStatus>,
}

/// The tenants.
#[derive(Serialize, ToSchema)]
struct TenantList {
    tenants: Vec<TenantStatus>,
}

/// The state after a rescan.
#[derive(Serialize, ToSchema)]
struct Reloaded {
    plugins: Vec<PluginStatus>,
    tenants: Vec<TenantStatus>,
}

#[utoipa::path(
    get,
    path = "/plugins",
    tag = "plugins",
    summary = "List deployed plugins",
    responses(
        (status = 200, description = "The plugins", body = PluginList),
        (status = 401, description = "No or wrong token", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
async fn list_plugins(State(app): State<Arc<App>>) -> Json<PluginList> {
    Json(PluginList {
        plugins: app.plugins.list(),
    })
}

#[utoipa::path(
    get,
    path = "/tenants",
    tag = "tenants",
    summary = "List tenants and their state",
    responses(
        (status = 200, description = "The tenants", body = TenantList),
        (status = 401, description = "No or wrong token", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
async fn list_tenants(State(app): State<Arc<App>>) -> Json<TenantList> {
    Json(TenantList {
        tenants: app.tenants.list(),
    })
}

#[utoipa::path(
    post,
    path = "/reload",
    tag = "tenants",
    summary = "Rescan the plugin and tenant directories now",
    responses(
        (status = 200, description = "The state after the rescan", body = Reloaded),
        (status = 401, description = "No or wrong token", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
async fn reload(State(app): State<Arc<App>>) -> Json<Reloaded> {
    app.reload().await;
    Json(Reloaded {
        plugins: app.plugins.list(),
        tenants: app.tenants.list(),
    })
}

// ---- queues -----------------------------------------------------------------------------

/// A serving tenant and one of its queues, or the problem to answer.
fn queue_of(
    app: &App,
    tenant: &str,
    queue: &str,
) -> Result<(Arc<crate::app::tenants::TenantRuntime>, QueueConfig), Problem> {
    let runtime = tenant_of(app, tenant)?;
    let config =
        runtime.config.queues.get(queue).cloned().ok_or_else(|| {
            Problem::not_found(format!("tenant `{tenant}` has no queue `{queue}`"))
        })?;
    Ok((runtime, config))
}

/// The runtime of `tenant`, or the 404 that says it is not serving.
pub(super) fn tenant_of(
    app: &App,
    tenant: &str,
) -> Result<Arc<crate::app::tenants::TenantRuntime>, Problem> {
    app.tenants
        .get(tenant)
        .ok_or_else(|| Problem::not_found(format!("no tenant `{tenant}` is serving")))
}

/// A tenant's queues.
#[derive(Serialize, ToSchema)]
struct QueueList {
    queues: Vec<QueueStatus>,
}

/// A queue, its consumer and dead-letter queue, and what it holds now.
#[derive(Serialize, ToSchema)]
struct QueueStatus {
    #[schema(example = "orders")]
    name: String,
    fifo: bool,
    consumer: Option<QueueConsumer>,
    dead_letter: Option<QueueDeadLetter>,
    /// Messages ready for delivery.
    #[schema(example = 3)]
    visible: u64,
    /// Delivered, not yet acknowledged.
    in_flight: u64,
    /// Sent with a delay not yet passed.
    delayed: u64,
    /// Age of the oldest message, in milliseconds.
    #[schema(example = 1200)]
    oldest_age_ms: u64,
}

/// The plugin a queue delivers to.
#[derive(Serialize, ToSchema)]
struct QueueConsumer {
    #[schema(example = "orders-worker")]
    plugin: String,
    #[schema(example = 10)]
    batch_size: u32,
    #[schema(example = 4)]
    max_concurrency: u32,
}

/// Where a queue's messages go after `max_receive_count` failed deliveries.
#[derive(Serialize, ToSchema)]
struct QueueDeadLetter {
    #[schema(example = "orders-dlq")]
    queue: String,
    #[schema(example = 5)]
    max_receive_count: u32,
}

#[utoipa::path(
    get,
    path = "/tenants/{tenant}/queues",
    tag = "queues",
    summary = "A tenant's queues",
    description = "With their depth, messages in flight and the age of the oldest message.",
    params(("tenant" = String, Path, example = "acme")),
    responses(
        (status = 200, description = "The queues", body = QueueList),
        (status = 401, description = "No or wrong token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
async fn list_queues(State(app): State<Arc<App>>, Path(tenant): Path<String>) -> Response {
    let Some(runtime) = app.tenants.get(&tenant) else {
        return Problem::not_found(format!("no tenant `{tenant}` is serving")).into_response();
    };
    let mut queues = Vec::new();
    for (name, config) in &runtime.config.queues {
        let stats = match app.services.store.queue_stats(&tenant, name).await {
            Ok(s) => s,
            Err(e) => return Problem::internal(e).into_response(),
        };
        let labels = [("tenant", tenant.clone()), ("queue", name.clone())];
        metrics::gauge!("orquesta_queue_depth", &labels).set(stats.visible as f64);
        metrics::gauge!("orquesta_queue_oldest_age_seconds", &labels)
            .set(stats.oldest_age_ms as f64 / 1000.0);
        queues.push(QueueStatus {
            name: name.clone(),
            fifo: config.fifo,
            consumer: config.consumer.as_ref().map(|c| QueueConsumer {
                plugin: c.plugin.clone(),
                batch_size: c.batch_size,
                max_concurrency: c.max_concurrency,
            }),
            dead_letter: config.dead_letter.as_ref().map(|d| QueueDeadLetter {
                queue: d.queue.clone(),
                max_receive_count: d.max_receive_count,
            }),
            visible: stats.visible,
            in_flight: stats.in_flight,
            delayed: stats.delayed,
            oldest_age_ms: stats.oldest_age_ms,
        });
    }
    Json(QueueList { queues }).into_response()
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PeekQuery {
    /// How many messages, oldest first.
    #[param(minimum = 1, maximum = 1000, default = 100, example = 10)]
    limit: Option<u32>,
}

/// Messages of a queue, oldest first.
#[derive(Serialize, ToSchema)]
struct MessageList {
    messages: Vec<Listed>,
}

#[utoipa::path(
    get,
    path = "/tenants/{tenant}/queues/{queue}/messages",
    tag = "queues",
    summary = "Peek at a queue's oldest messages",
    description = "A dead-letter queue's contents, for one; the messages are not delivered.",
    params(
        ("tenant" = String, Path, example = "acme"),
        ("queue" = String, Path, example = "orders-dlq"),
        PeekQuery,
    ),
    responses(
        (status = 200, description = "The messages", body = MessageList),
        (status = 401, description = "No or wrong token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant or queue", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
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
        Ok(messages) => Json(MessageList { messages }).into_response(),
        Err(e) => Problem::internal(e).into_response(),
    }
}

/// A message to send.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "body": { "order": 42 }, "attributes": { "kind": "new" } }))]
struct SendBody {
    /// Sent as is when a string, as JSON text otherwise.
    body: serde_json::Value,
    #[serde(default)]
    attributes: std::collections::BTreeMap<String, String>,
    /// Required on FIFO queues, refused on others.
    #[serde(default)]
    group_id: Option<String>,
    /// Repeated within 5 minutes of its first send (consumed or not), the message is not
    /// added and the first message's id is answered.
    #[serde(default)]
    deduplication_id: Option<String>,
    /// Replaces the queue's `delay_seconds`; 0 or absent takes the queue's. More than 900
    /// is a 400.
    #[serde(default)]
    #[schema(maximum = 900)]
    delay_seconds: u32,
}

/// One message, or up to 1000 as `{"messages": [...]}`.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
enum SendRequest {
    Batch {
        #[schema(max_items = 1000)]
        messages: Vec<SendBody>,
    },
    One(SendBody),
}

/// The ids of the messages sent, in the order given.
#[derive(Serialize, ToSchema)]
struct SentIds {
    #[schema(example = json!(["0193a6f2-4b8e-7c1d-9f00-2a4d5e6f7a8b"]))]
    ids: Vec<String>,
}

#[utoipa::path(
    post,
    path = "/tenants/{tenant}/queues/{queue}/messages",
    tag = "queues",
    summary = "Send messages to a queue",
    description = "One message, or up to 1000 as `{\"messages\": [...]}`; all or none are sent.",
    params(
        ("tenant" = String, Path, example = "acme"),
        ("queue" = String, Path, example = "orders"),
    ),
    request_body = SendRequest,
    responses(
        (status = 200, description = "The ids of the messages sent", body = SentIds),
        (status = 400, description = "Bad message (FIFO without group id, body too large, malformed JSON)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, description = "The queue holds `limits.queue_depth` messages or would with these; nothing was sent", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant or queue", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
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
            body: text_of(m.body),
            delay_seconds: m.delay_seconds,
            attributes: m.attributes.into_iter().collect(),
            group_id: m.group_id,
            deduplication_id: m.deduplication_id,
        })
        .collect();
    // All or none: a refused message sends nothing.
    let sent = crate::triggers::queue::send_many(
        &app.services.store,
        &app.services.wakes,
        &tenant,
        &runtime.config.queues,
        &queue,
        crate::triggers::queue::Sending {
            max_bytes: runtime.config.limits.max_message_bytes(),
            max_depth: runtime.config.limits.queue_depth,
            depth: 0,
        },
        messages,
    )
    .await;
    match sent {
        Ok(ids) => Json(SentIds { ids }).into_response(),
        Err(e) => Problem::from_capability(e).into_response(),
    }
}

/// How many messages went back.
#[derive(Serialize, ToSchema)]
struct Moved {
    #[schema(example = 7)]
    moved: u64,
}

#[utoipa::path(
    post,
    path = "/tenants/{tenant}/queues/{queue}/redrive",
    tag = "queues",
    summary = "Move a dead-letter queue's messages back",
    description = "Every message goes back to the queue it came from.",
    params(
        ("tenant" = String, Path, example = "acme"),
        ("queue" = String, Path, description = "The dead-letter queue", example = "orders-dlq"),
    ),
    responses(
        (status = 200, description = "How many moved", body = Moved),
        (status = 401, description = "No or wrong token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant or queue", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
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
            app.services.wakes.wake_tenant(&tenant);
            Json(Moved { moved }).into_response()
        }
        Err(e) => Problem::internal(e).into_response(),
    }
}

// ---- topics and buses ---------------------------------------------------------------

/// A message to publish.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "body": { "order": 42 }, "subject": "order created", "attributes": { "kind": "new" } }))]
struct PublishBody {
    /// Sent as is when a string, as JSON text otherwise.
    body: serde_json::Value,
    #[serde(default)]
    subject: Option<String>,
    /// What subscriptions' filter policies match on.
    #[serde(default)]
    attributes: std::collections::BTreeMap<String, String>,
}

/// An event to put on a bus.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "source": "shop", "detail_type": "OrderCreated", "detail": { "order": 42 } }))]
struct EventBody {
    source: String,
    detail_type: String,
    /// Any JSON.
    #[serde(default)]
    detail: serde_json::Value,
}

/// The id given to what was published.
#[derive(Serialize, ToSchema)]
struct PublishedId {
    #[schema(example = "0193a6f2-4b8e-7c1d-9f00-2a4d5e6f7a8b")]
    id: String,
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

#[utoipa::path(
    post,
    path = "/tenants/{tenant}/topics/{topic}/messages",
    tag = "topics",
    summary = "Publish to a topic",
    description = "Every subscription whose filter policy matches receives it.",
    params(
        ("tenant" = String, Path, example = "acme"),
        ("topic" = String, Path, example = "orders"),
    ),
    request_body = PublishBody,
    responses(
        (status = 200, description = "The message id", body = PublishedId),
        (status = 400, description = "Bad message", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant or topic", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
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
        Ok(id) => Json(PublishedId { id }).into_response(),
        Err(e) => Problem::from_capability(e).into_response(),
    }
}

#[utoipa::path(
    post,
    path = "/tenants/{tenant}/buses/{bus}/events",
    tag = "buses",
    summary = "Put an event on a bus",
    description = "The targets of every rule whose pattern matches receive it.",
    params(
        ("tenant" = String, Path, example = "acme"),
        ("bus" = String, Path, example = "shop"),
    ),
    request_body = EventBody,
    responses(
        (status = 200, description = "The event id", body = PublishedId),
        (status = 400, description = "Bad event", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant or bus", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
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
        Ok(id) => Json(PublishedId { id }).into_response(),
        Err(e) => Problem::from_capability(e).into_response(),
    }
}

// ---- patterns -----------------------------------------------------------------------

/// A pattern or policy and an event to test it against.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "kind": "event_pattern",
    "pattern": { "source": ["shop"], "detail": { "status": ["paid"] } },
    "event": { "version": "0", "id": "1", "detail-type": "OrderPaid", "source": "shop",
        "account": "acme", "time": "2026-12-05T10:00:00Z", "region": "local",
        "resources": [], "detail": { "status": "paid" } }
}))]
struct TestPatternBody {
    /// What `pattern` is (default `event_pattern`).
    #[serde(default)]
    kind: crate::pattern::test_event::Kind,
    /// The event pattern or filter policy: JSON, or a string holding JSON.
    #[schema(value_type = Object)]
    pattern: serde_json::Value,
    /// An event pattern's event (with EventBridge's envelope: `id`, `account`, `source`,
    /// `time`, `region`, `resources`, `detail-type`); a policy's message attributes
    /// (`{"name": "value"}`) or message body. JSON, or a string holding JSON.
    #[schema(value_type = Object)]
    event: serde_json::Value,
}

/// Whether the event matches.
#[derive(Serialize, ToSchema)]
struct TestPatternResult {
    #[schema(example = true)]
    result: bool,
}

#[utoipa::path(
    post,
    path = "/test-event-pattern",
    tag = "buses",
    summary = "Test a pattern or filter policy against an event",
    description = "As EventBridge's TestEventPattern: whether a bus rule with this event pattern, or a subscription with this SNS filter policy, would take the event. An invalid pattern is a 400 with the reason the tenant file would be refused for.",
    request_body = TestPatternBody,
    responses(
        (status = 200, description = "Whether it matches", body = TestPatternResult),
        (status = 400, description = "Bad pattern, policy or event", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong token", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
async fn test_event_pattern(AdminBody(body): AdminBody) -> Response {
    let request: TestPatternBody = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return Problem::bad_request(format!(
                "expected {{\"kind\", \"pattern\", \"event\"}}: {e}"
            ))
            .into_response();
        }
    };
    match crate::pattern::test_event::test_event(request.kind, &request.pattern, &request.event) {
        Ok(result) => Json(TestPatternResult { result }).into_response(),
        Err(e) => Problem::bad_request(e.to_string()).into_response(),
    }
}

// ---- schedules ----------------------------------------------------------------------

/// A tenant's schedules.
#[derive(Serialize, ToSchema)]
struct ScheduleList {
    schedules: Vec<ScheduleStatus>,
}

/// A schedule, when it fires next and the last tick that fired.
#[derive(Serialize, ToSchema)]
struct ScheduleStatus {
    #[schema(example = "nightly")]
    name: String,
    #[schema(example = "cron(0 2 * * ? *)")]
    expression: String,
    #[schema(example = "America/Bogota")]
    timezone: String,
    enabled: bool,
    /// Milliseconds since the Unix epoch.
    #[schema(example = 1_795_312_800_000_i64)]
    next_fire_at: Option<i64>,
    /// The latest tick that fired, milliseconds since the Unix epoch.
    last_fired_at: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/tenants/{tenant}/schedules",
    tag = "schedules",
    summary = "A tenant's schedules",
    description = "With their next fire time and the last tick that fired.",
    params(("tenant" = String, Path, example = "acme")),
    responses(
        (status = 200, description = "The schedules", body = ScheduleList),
        (status = 401, description = "No or wrong token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
async fn list_schedules(State(app): State<Arc<App>>, Path(tenant): Path<String>) -> Response {
    let Some(runtime) = app.tenants.get(&tenant) else {
        return Problem::not_found(format!("no tenant `{tenant}` is serving")).into_response();
    };
    let mut schedules = Vec::new();
    for (name, config) in &runtime.config.schedules {
        let last = match app.services.store.schedule_last_fired(&tenant, name).await {
            Ok(last) => last,
            Err(e) => return Problem::internal(e).into_response(),
        };
        schedules.push(ScheduleStatus {
            name: name.clone(),
            expression: config.expression.clone(),
            timezone: config.timezone.as_deref().unwrap_or("UTC").to_string(),
            enabled: config.enabled,
            next_fire_at: config
                .enabled
                .then(|| crate::triggers::schedule::next_tick(config))
                .flatten(),
            last_fired_at: last,
        });
    }
    Json(ScheduleList { schedules }).into_response()
}
