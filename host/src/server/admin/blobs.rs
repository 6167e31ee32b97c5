//! A tenant's blobs in the admin API: operators put the objects a flow reads (the Siesa
//! clients' field mappings) and read what flows wrote, as they would with S3.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::App;
use crate::capabilities::CapError;
use crate::capabilities::blob::{BlobBucket, Blobs as _, check_key, check_object};
use crate::engine::limits::capability::BLOB_OBJECT_BYTES;
use crate::web::body::{ADMIN_BODY_TIMEOUT, AdminBody, read_within};
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
    bytes: u64,
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
    request: Request,
) -> Response {
    let at = match bucket_of(&app, &tenant, &bucket) {
        Ok(at) => at,
        Err(p) => return p.into_response(),
    };
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // Counted against the tenant's blob quota, as a plugin's writes are.
    let limits = app
        .tenants
        .get(&tenant)
        .map(|t| t.config.limits.clone())
        .unwrap_or_default();
    let blobs = app.services.tenant_blobs(&limits);
    let stored =
        match declared {
            // Announced: streamed to the backend as it arrives, checked against the size.
            Some(bytes) => {
                if let Err(e) = check_object(&key, usize::try_from(bytes).unwrap_or(usize::MAX)) {
                    return Problem::from_capability(e).into_response();
                }
                let deadline = tokio::time::sleep(ADMIN_BODY_TIMEOUT);
                // A client that stops sending ends the stream at the deadline: the write
                // sees it short and leaves the old object.
                let chunks = body.into_data_stream().take_until(deadline).map(|piece| {
                    piece.map_err(|e| {
                        CapError::Invalid(format!("the request body could not be read: {e}"))
                    })
                });
                blobs
                    .put_stream(&at, &key, bytes, Box::pin(chunks))
                    .await
                    .map(|()| bytes)
            }
            // Chunked: read whole, within the largest object.
            None => {
                let data =
                    match read_within(&parts.headers, body, BLOB_OBJECT_BYTES, ADMIN_BODY_TIMEOUT)
                        .await
                    {
                        Ok(d) => d,
                        Err(p) => return p.into_response(),
                    };
                if let Err(e) = check_object(&key, data.len()) {
                    return Problem::from_capability(e).into_response();
                }
                blobs
                    .put(&at, &key, &data)
                    .await
                    .map(|()| data.len() as u64)
            }
        };
    match stored {
        Ok(bytes) => Json(Stored { bucket, key, bytes }).into_response(),
        Err(e) => Problem::from_capability(e).into_response(),
    }
}

/// A blob's bytes, as stored.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)] // the schema of the bytes GET answers, streamed
pub(crate) struct BlobData(Vec<u8>);

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
    let limits = app
        .tenants
        .get(&tenant)
        .map(|t| t.config.limits.clone())
        .unwrap_or_default();
    // Streamed from the backend a chunk at a time, its length announced: a read that
    // fails midway (the object replaced under a chunked read) cuts the response short
    // of it, so the client cannot take part of an object for the whole.
    match app.services.tenant_blobs(&limits).open(&at, &key).await {
        Ok(Some(read)) => (
            [
                (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                (header::CONTENT_LENGTH, read.bytes.to_string()),
            ],
            Body::from_stream(
                read.chunks
                    .map(|piece| piece.map_err(std::io::Error::other)),
            ),
        )
            .into_response(),
        Ok(None) => {
            Problem::not_found(format!("no blob `{key}` in bucket `{bucket}`")).into_response()
        }
        Err(e) => Problem::from_capability(e).into_response(),
    }
}
