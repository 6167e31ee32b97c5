//! A tenant's topic and bus deliveries in the admin API: those not yet made and those
//! that failed past their retry policy (kept for a few days, with their error and the
//! dead-letter queue they went to). Each listing reads the tenant's own rows only.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::app::App;
use crate::store::delivery::{DeliveryState, ListedDelivery};
use crate::web::problem::{Problem, ProblemDocument};

/// Deliveries one listing shows at most.
const PAGE: u32 = 100;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct DeliveriesQuery {
    /// `failed` (failed past their retry policy) or `pending` (not yet made).
    #[param(example = "failed")]
    state: Option<String>,
    /// Only deliveries after this `seq` (the previous page's `next_after`).
    #[param(minimum = 0, example = 0)]
    after: Option<i64>,
    /// How many, oldest first.
    #[param(minimum = 1, maximum = 100, default = 100, example = 20)]
    limit: Option<u32>,
}

/// A page of deliveries, oldest first.
#[derive(Serialize, ToSchema)]
pub(super) struct DeliveryList {
    deliveries: Vec<ListedDelivery>,
    /// Pass as `after` for the next page; absent on the last one.
    next_after: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/tenants/{tenant}/deliveries",
    tag = "deliveries",
    summary = "A tenant's failed or pending deliveries",
    description = "Topic subscriptions' and bus rule targets' deliveries to plugins and webhooks: `state=failed` (the default) lists those that failed past their retry policy, with the last error and the dead-letter queue they went to (none: dropped), kept 4 days; `state=pending` those not yet made.",
    params(("tenant" = String, Path, example = "acme"), DeliveriesQuery),
    responses(
        (status = 200, description = "The deliveries", body = DeliveryList),
        (status = 400, description = "A state other than failed or pending", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub(super) async fn list_deliveries(
    State(app): State<Arc<App>>,
    Path(tenant): Path<String>,
    Query(q): Query<DeliveriesQuery>,
) -> Response {
    if let Err(p) = super::tenant_of(&app, &tenant) {
        return p.into_response();
    }
    let state = match q.state.as_deref().unwrap_or("failed") {
        "failed" => DeliveryState::Failed,
        "pending" => DeliveryState::Pending,
        other => {
            return Problem::bad_request(format!(
                "state must be `failed` or `pending`, got `{other}`"
            ))
            .into_response();
        }
    };
    let limit = q.limit.unwrap_or(PAGE).clamp(1, PAGE);
    let after = q.after.unwrap_or(0).max(0);
    match app
        .services
        .store
        .delivery_list(&tenant, state, after, limit)
        .await
    {
        Ok(deliveries) => {
            let next_after = (deliveries.len() == limit as usize)
                .then(|| deliveries.last().map(|d| d.seq))
                .flatten();
            Json(DeliveryList {
                deliveries,
                next_after,
            })
            .into_response()
        }
        Err(e) => Problem::internal(e).into_response(),
    }
}
