//! The HTTP trigger: `/t/{tenant}/...` -> the tenant's route -> auth -> its plugin.

pub mod auth;
pub mod headers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::app::App;
use crate::app::tenants::{NoRoute, RouteMatch};
use crate::bindings::handler::{Event, HttpRequest, Response as PluginResponse};
use crate::engine::InvokeError;
use crate::metrics::HttpMetrics;
use crate::tenants::AuthMode;
use crate::triggers::http::headers::HeaderPolicy;
use crate::web::problem::{FromPlugin, Problem};

pub async fn tenant_root(
    state: State<Arc<App>>,
    Path(tenant): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(state, tenant, String::new(), method, uri, headers, body).await
}

pub async fn tenant_path(
    state: State<Arc<App>>,
    Path((tenant, rest)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(state, tenant, rest, method, uri, headers, body).await
}

async fn handle(
    State(app): State<Arc<App>>,
    tenant_name: String,
    rest: String,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let timeout = Duration::from_millis(app.config.request_timeout_ms);
    let deadline = tokio::time::Instant::now() + timeout;
    let request = Request {
        tenant_name: &tenant_name,
        rest: &rest,
        method: &method,
        uri: &uri,
        headers: &headers,
        deadline,
    };
    let result = tokio::time::timeout_at(deadline, serve(&app, request, body)).await;
    let (response, metrics) = match result {
        Ok(Ok((response, metrics))) => (response, metrics),
        Ok(Err(problem)) => (problem.into_response(), None),
        Err(_) => (
            Problem::new(
                StatusCode::GATEWAY_TIMEOUT,
                "Gateway Timeout",
                format!("the request took longer than {} ms", timeout.as_millis()),
            )
            .into_response(),
            None,
        ),
    };
    let (status, seconds) = (response.status().as_u16(), started.elapsed().as_secs_f64());
    match metrics {
        Some(metrics) => metrics.record(status, seconds),
        None => {
            // The client names the tenant in the path: only a tenant that exists labels
            // the metrics.
            let known = app.tenants.get(&tenant_name).is_some();
            crate::metrics::record_unrouted(if known { &tenant_name } else { "" }, status, seconds)
        }
    }
    response
}

/// What `serve` reads of a request besides its body.
struct Request<'a> {
    tenant_name: &'a str,
    rest: &'a str,
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    /// When the whole request must be answered.
    deadline: tokio::time::Instant,
}

/// The path after `/t/{tenant}`, still percent-encoded (axum's `rest` is decoded).
fn encoded_rest(uri: &Uri) -> &str {
    // "", "t", the tenant, then the rest.
    uri.path().splitn(4, '/').nth(3).unwrap_or_default()
}

/// The plugin's answer, and the plugin's HTTP metrics.
async fn serve(
    app: &App,
    request: Request<'_>,
    body: Body,
) -> Result<(Response, Option<Arc<HttpMetrics>>), Problem> {
    let Request {
        tenant_name,
        rest,
        method,
        uri,
        headers,
        deadline,
    } = request;
    let tenant = app
        .tenants
        .get(tenant_name)
        .ok_or_else(|| Problem::not_found(format!("no tenant named `{tenant_name}`")))?;
    let path = format!("/{rest}");
    // Routed on the path as sent, so that an encoded `/` stays inside its parameter.
    let RouteMatch { route, params } = tenant
        .route(method.as_str(), &format!("/{}", encoded_rest(uri)))
        .map_err(|e| match e {
            NoRoute::MethodNotAllowed(allow) => Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method Not Allowed",
                format!(
                    "{method} is not routed for {path}; allowed: {}",
                    allow.join(", ")
                ),
            )
            .allow(allow),
            NoRoute::NotFound => Problem::not_found(format!("no route for {method} {path}")),
        })?;
    let (identity, quota) = match route.auth {
        AuthMode::None => (None, None),
        AuthMode::ApiKey => {
            let (identity, quota) = tenant.auth.api_key(headers, route)?;
            (Some(identity), quota)
        }
        AuthMode::Jwt => (Some(tenant.auth.jwt(headers, route)?), None),
    };
    let limit = (app.config.max_body_kb as usize) << 10;
    // A client slow to send its body is refused for that (polled before the request's
    // own timeout, which has the same deadline), not reported as the gateway's 504.
    let body = tokio::time::timeout_at(deadline, crate::web::body::read(headers, body, limit))
        .await
        .map_err(|_| {
            Problem::new(
                StatusCode::REQUEST_TIMEOUT,
                "Request Timeout",
                format!(
                    "the request body did not arrive within the request timeout of {} ms",
                    app.config.request_timeout_ms
                ),
            )
        })??;

    let ctx = tenant.plugins.get(&route.plugin).cloned().ok_or_else(|| {
        Problem::unavailable(format!("plugin `{}` is not configured", route.plugin))
    })?;
    let component = tenant.component_of(&route.plugin).unwrap_or_default();
    let plugin = app.plugins.get(&component).ok_or_else(|| {
        Problem::unavailable(format!(
            "plugin `{}` ({component}.wasm) is not deployed",
            route.plugin
        ))
        .retry_after(5)
    })?;
    // Last of the refusals: a request refused for any reason is not counted.
    if let Some(quota) = quota {
        quota.charge(&app.services.store).await?;
    }
    let query = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let event = Event::Http(HttpRequest {
        method: method.as_str().to_string(),
        path,
        params,
        query,
        headers: headers
            .iter()
            .filter(|(name, _)| *name != header::AUTHORIZATION && name.as_str() != "x-api-key")
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
        identity,
    });
    let outcome = app.engine.invoke(&plugin, ctx, &event).await;
    let response = match outcome {
        Ok(response) => {
            let mut response = to_http(response, tenant.config.capabilities.http.allow_set_cookie);
            // Passed on as the plugin made it, whatever its status.
            response.extensions_mut().insert(FromPlugin);
            response
        }
        Err(e) => invoke_problem(&e).into_response(),
    };
    // Counted under the plugin whether it answered or failed.
    Ok((response, tenant.http_metrics.get(&route.plugin).cloned()))
}

/// A plugin's typed failure is a 500 naming the error; the host's limits map to the
/// statuses a gateway would give.
fn invoke_problem(e: &InvokeError) -> Problem {
    let status = match e {
        InvokeError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
        InvokeError::Instantiation(_) => StatusCode::SERVICE_UNAVAILABLE,
        InvokeError::InvalidEvent(_) => StatusCode::BAD_REQUEST,
        // As API Gateway answers a Lambda response it cannot use.
        InvokeError::InvalidOutput(_) => StatusCode::BAD_GATEWAY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    Problem::new(status, e.name().to_string(), e.cause())
}

/// The plugin's answer as the host sends it. The engine checked its size, status and
/// header count; headers that are not the plugin's to send are left out.
fn to_http(response: PluginResponse, allow_set_cookie: bool) -> Response {
    match response {
        PluginResponse::Http(r) => {
            let status =
                StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            // Built bare so the plugin's own headers are the only ones.
            let mut out = Response::new(Body::from(r.body));
            *out.status_mut() = status;
            let policy = HeaderPolicy::new(allow_set_cookie, &r.headers);
            for (name, value) in r.headers {
                if let (Ok(name), Ok(value)) = (
                    HeaderName::try_from(name.as_str()),
                    HeaderValue::try_from(value.as_str()),
                ) && policy.allows(&name)
                {
                    out.headers_mut().append(name, value);
                }
            }
            out
        }
        PluginResponse::Json(text) => {
            ([(header::CONTENT_TYPE, "application/json")], text).into_response()
        }
        PluginResponse::Batch(ids) => (
            [(header::CONTENT_TYPE, "application/json")],
            crate::event::batch_json(&ids),
        )
            .into_response(),
        PluginResponse::None => StatusCode::NO_CONTENT.into_response(),
    }
}

/// Tenant routes: `/t/{tenant}/...`.
pub struct Http;

impl super::Trigger for Http {
    fn name(&self) -> &'static str {
        "http"
    }

    fn routes(&self) -> Option<axum::Router<Arc<App>>> {
        use axum::routing::any;
        Some(
            axum::Router::new()
                .route("/t/{tenant}", any(tenant_root))
                .route("/t/{tenant}/", any(tenant_root))
                .route("/t/{tenant}/{*rest}", any(tenant_path)),
        )
    }
}
