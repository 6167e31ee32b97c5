//! A tenant's blobs in the admin API: operators put the objects a flow reads (the Siesa
//! clients' field mappings) and read what flows wrote, as they would with S3.

use std::sync::Arc;

use crate::web::body::AdminBody;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::App;
use crate::capabilities::blob::{BlobBucket, Blobs as _, check_key, check_object};
use crate::web::problem::{Problem, ProblemDocument};

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

/// A blob stored.
#[derive(Serialize, ToSchema)]
pub(crate) struct Stored {
    #[schema(example = "mappings")]
    bucket: String,
    #[schema(example = "clients/acme.json")]
    key: String,
    #[schema(example = 2048)]
    bytes: usize,
}

#[utoipa::path(
    put,
    path = "/tenants/{tenant}/blobs/{bucket}/{*key}",
    tag = "blobs",
    summary = "Create or replace one of a tenant's blobs",
    description = "At most 64 MiB; counted against the tenant's blob quota, as a plugin's writes are.",
    params(
        ("tenant" = String, Path, example = "acme"),
        ("bucket" = String, Path, example = "mappings"),
        ("key" = String, Path, description = "The object's key; may contain `/`", example = "clients/acme.json"),
    ),
    request_body(content = inline(AdminBody), content_type = "application/octet-stream", description = "The object's bytes"),
    responses(
        (status = 200, description = "Stored", body = Stored),
        (status = 400, description = "A bad bucket name or key, or an object over 64 MiB", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, description = "The tenant's blob quota (`limits.blob_mb`) would be passed; the detail says by how much", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "The key clashes with another: a prefix of it is an object (`a` when putting `a/b`), or it is a folder of other keys (`a` when `a/b` exists)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn put_blob(
    State(app): State<Arc<App>>,
    Path((tenant, bucket, key)): Path<(String, String, String)>,
    AdminBody(body): AdminBody,
) -> Response {
    let at = match bucket_of(&app, &tenant, &bucket) {
        Ok(at) => at,
        Err(p) => return p.into_response(),
    };
    if let Err(e) = check_object(&key, body.len()) {
        return Problem::from_capability(e).into_response();
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
        Ok(()) => Json(Stored {
            bucket,
            key,
            bytes: body.len(),
        })
        .into_response(),
        Err(e) => Problem::from_capability(e).into_response(),
    }
}

/// A blob's bytes, as stored.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub(crate) struct BlobData(Vec<u8>);

impl IntoResponse for BlobData {
    fn into_response(self) -> Response {
        ([(header::CONTENT_TYPE, "application/octet-stream")], self.0).into_response()
    }
}

#[utoipa::path(
    get,
    path = "/tenants/{tenant}/blobs/{bucket}/{*key}",
    tag = "blobs",
    summary = "Read one of a tenant's blobs",
    params(
        ("tenant" = String, Path, example = "acme"),
        ("bucket" = String, Path, example = "mappings"),
        ("key" = String, Path, description = "The object's key; may contain `/`", example = "clients/acme.json"),
    ),
    responses(
        (status = 200, description = "The object's bytes", body = inline(BlobData), content_type = "application/octet-stream"),
        (status = 400, description = "A bad bucket name or key", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant or object", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn get_blob(
    State(app): State<Arc<App>>,
    Path((tenant, bucket, key)): Path<(String, String, String)>,
) -> Response {
    let at = match bucket_of(&app, &tenant, &bucket) {
        Ok(at) => at,
        Err(p) => return p.into_response(),
    };
    if let Err(e) = check_key(&key) {
        return Problem::from_capability(e).into_response();
    }
    match app.services.blobs.get(&at, &key).await {
        Ok(Some(data)) => BlobData(data).into_response(),
        Ok(None) => {
            Problem::not_found(format!("no blob `{key}` in bucket `{bucket}`")).into_response()
        }
        Err(e) => Problem::from_capability(e).into_response(),
    }
}
