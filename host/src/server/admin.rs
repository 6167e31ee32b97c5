//! The admin API under `/admin/v1`, behind a bearer token. Described by `openapi.json`
//! beside this file, served at `/admin/v1/openapi.json`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::json;

use super::auth::sha256_hex;
use super::plugins::UploadError;
use super::problem::Problem;
use super::state::App;

pub const OPENAPI: &str = include_str!("openapi.json");

pub fn router(app: Arc<App>) -> Router<Arc<App>> {
    Router::new()
        .route("/plugins", get(list_plugins))
        .route("/plugins/{name}", put(upload_plugin))
        .route("/tenants", get(list_tenants))
        .route("/reload", post(reload))
        .route_layer(axum::middleware::from_fn_with_state(app, require_token))
        // The description of the API is public, like the routes it describes.
        .route("/openapi.json", get(openapi))
}

async fn require_token(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let Some(expected) = &app.admin_token_hash else {
        return Problem::not_found("the admin API is off: set admin_token in the host config")
            .into_response();
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
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
    body: Bytes,
) -> Response {
    match app.plugins.upload(&name, body.to_vec()).await {
        Ok(plugin) => {
            // Tenants refer to plugins by name; nothing else to reload.
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
