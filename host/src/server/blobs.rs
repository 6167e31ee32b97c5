//! A tenant's blobs in the admin API: operators put the objects a flow reads (the Siesa
//! clients' field mappings) and read what flows wrote, as they would with S3.

use std::sync::Arc;

use super::body::AdminBody;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::admin::cap_problem;
use super::problem::Problem;
use super::state::App;
use crate::capabilities::blob::{BlobBucket, Blobs as _, check_key, check_object};

fn bucket_of(app: &App, tenant: &str, bucket: &str) -> Result<BlobBucket, Problem> {
    if app.tenants.get(tenant).is_none() {
        return Err(Problem::not_found(format!(
            "no tenant `{tenant}` is serving"
        )));
    }
    crate::capabilities::check_name("blob bucket", bucket)
        .map_err(|e| Problem::bad_request(e.to_string()))?;
    Ok(BlobBucket {
        tenant: tenant.to_string(),
        bucket: bucket.to_string(),
    })
}

pub(super) async fn put_blob(
    State(app): State<Arc<App>>,
    Path((tenant, bucket, key)): Path<(String, String, String)>,
    AdminBody(body): AdminBody,
) -> Response {
    let at = match bucket_of(&app, &tenant, &bucket) {
        Ok(at) => at,
        Err(p) => return p.into_response(),
    };
    if let Err(e) = check_object(&key, body.len()) {
        return cap_problem(e).into_response();
    }
    // Counted against the tenant's blob quota, as a plugin's writes are.
    let limits = app
        .tenants
        .get(&tenant)
        .map(|t| t.config.limits.clone())
        .unwrap_or_default();
    match app
        .services
        .tenant_blobs(&limits)
        .put(&at, &key, &body)
        .await
    {
        Ok(()) => {
            Json(json!({ "bucket": bucket, "key": key, "bytes": body.len() })).into_response()
        }
        Err(e) => cap_problem(e).into_response(),
    }
}

pub(super) async fn get_blob(
    State(app): State<Arc<App>>,
    Path((tenant, bucket, key)): Path<(String, String, String)>,
) -> Response {
    let at = match bucket_of(&app, &tenant, &bucket) {
        Ok(at) => at,
        Err(p) => return p.into_response(),
    };
    if let Err(e) = check_key(&key) {
        return cap_problem(e).into_response();
    }
    match app.services.blobs.get(&at, &key).await {
        Ok(Some(data)) => {
            ([(header::CONTENT_TYPE, "application/octet-stream")], data).into_response()
        }
        Ok(None) => {
            Problem::not_found(format!("no blob `{key}` in bucket `{bucket}`")).into_response()
        }
        Err(e) => cap_problem(e).into_response(),
    }
}
