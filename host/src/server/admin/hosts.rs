//! The host registry in the admin API: every host of the store (this one and those
//! sharing its PostgreSQL database), from their heartbeats. Host-wide: the host admin
//! token only. A listing says where hosts are and what they serve, never how they reach
//! the store or what their tokens are.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::App;
use crate::store::hosts::ListedHost;
use crate::store::now_ms;
use crate::web::problem::{Problem, ProblemDocument};

/// The hosts of this store.
#[derive(Serialize, ToSchema)]
pub(super) struct HostList {
    /// The id of the host that answered.
    #[schema(example = "0b6f9a8e-2d4c-4a53-9d43-1b8f0f5e7c21")]
    this_host: String,
    /// Oldest start first; gone and stopped hosts stay listed for a day.
    hosts: Vec<ListedHost>,
}

#[utoipa::path(
    get,
    path = "/hosts",
    tag = "hosts",
    summary = "The hosts sharing this store",
    description = "Every `orquesta serve` process writing to this host's store, from their heartbeats: id (new at each start), advertised address, version, start time, last heartbeat, the tenants each serves and their plugins' component hashes, and invocations in flight. `state` is `up`, `stopped` (shut down cleanly) or `gone` (no heartbeat for three of its intervals); those two are kept a day, then pruned.",
    responses(
        (status = 200, description = "The hosts", body = HostList),
        (status = 401, description = "No or wrong token", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub(super) async fn list_hosts(State(app): State<Arc<App>>) -> Response {
    match app.services.store.host_list(now_ms()).await {
        Ok(hosts) => Json(HostList {
            this_host: app.host.id.clone(),
            hosts,
        })
        .into_response(),
        Err(e) => Problem::internal(e).into_response(),
    }
}
