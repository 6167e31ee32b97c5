//! The admin API's OpenAPI document, generated from the handlers' `#[utoipa::path]`
//! attributes and the types they take and answer, for the same registration the router
//! serves ([`super::operations`]). Served at `/admin/v1/openapi.json`.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};

use super as admin;
use crate::web::problem::Problem;

/// What the document says beside its operations: title, server, tags and the token.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "orquesta admin API",
        description = "Manage the plugins and tenants of an orquesta host. Every operation but \
            this document needs `Authorization: Bearer <token>`: the host admin token, or a \
            tenant's own credential (`[[admin_credentials]]` in its file) on that tenant's \
            routes within its scopes (`x-orquesta-access` on each operation names the scope). Errors are RFC 9457 \
            problem details (`application/problem+json`).",
    ),
    servers((url = "/admin/v1")),
    security(("adminToken" = [])),
    modifiers(&AdminToken),
    tags(
        (name = "plugins", description = "Deployed plugin components"),
        (name = "tenants", description = "Tenants and their configuration files"),
        (name = "hosts", description = "The hosts sharing this host's store (the host registry)"),
        (name = "queues", description = "A tenant's durable queues and dead-letter queues"),
        (name = "topics", description = "A tenant's publish/subscribe topics"),
        (name = "buses", description = "A tenant's event buses"),
        (name = "schedules", description = "A tenant's schedules"),
        (name = "deliveries", description = "A tenant's topic and bus deliveries, failed or pending"),
        (name = "blobs", description = "A tenant's blob buckets"),
        (name = "workflows", description = "A tenant's workflows (state machines)"),
        (name = "executions", description = "Executions of a tenant's workflows"),
        (name = "meta", description = "This description"),
    )
)]
struct AdminDoc;

/// The bearer token every operation but the document needs.
struct AdminToken;

impl utoipa::Modify for AdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "adminToken",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The document: every operation the admin router serves, and nothing else.
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, operations) = admin::operations()
        .merge(admin::public_operations())
        .split_for_parts();
    let mut doc = AdminDoc::openapi().merge_from(operations);
    for (path, item) in doc.paths.paths.iter_mut() {
        describe_access(path, item);
    }
    // axum's catch-all `{*key}` is OpenAPI's `{key}`; the parameter says it may hold `/`.
    doc.paths.paths = std::mem::take(&mut doc.paths.paths)
        .into_iter()
        .map(|(path, item)| (path.replace("{*", "{"), item))
        .collect();
    doc
}

/// Adds to each operation the 403 a tenant credential gets, and which credential the
/// route takes (`x-orquesta-access`: `host`, or `tenant:<scope>`), from the one table
/// the middleware checks ([`super::access::ACCESS`]).
fn describe_access(path: &str, item: &mut utoipa::openapi::PathItem) {
    use super::access::{Access, access_of};
    use axum::http::Method;
    use utoipa::openapi::ResponseBuilder;
    use utoipa::openapi::content::ContentBuilder;
    use utoipa::openapi::extensions::ExtensionsBuilder;
    let operations = [
        (Method::GET, &mut item.get),
        (Method::PUT, &mut item.put),
        (Method::POST, &mut item.post),
        (Method::DELETE, &mut item.delete),
        (Method::PATCH, &mut item.patch),
    ];
    for (method, operation) in operations {
        let Some(operation) = operation else { continue };
        let Some(access) = access_of(&method, path) else {
            continue; // public (this document), or a route the table lacks: its test says
        };
        let (tag, why) = match access {
            Access::Host => (
                "host".to_string(),
                "A tenant credential: this route is the host admin token's".to_string(),
            ),
            Access::Tenant(scope) => (
                format!("tenant:{}", scope.as_str()),
                format!(
                    "A tenant credential of another tenant, or without the scope `{}`",
                    scope.as_str()
                ),
            ),
        };
        let problem = ContentBuilder::new()
            .schema(Some(utoipa::openapi::Ref::from_schema_name(
                "ProblemDocument",
            )))
            .build();
        operation.responses.responses.insert(
            "403".to_string(),
            ResponseBuilder::new()
                .description(why)
                .content("application/problem+json", problem)
                .build()
                .into(),
        );
        let extensions = operation.extensions.get_or_insert_with(Default::default);
        extensions.merge(
            ExtensionsBuilder::new()
                .add("x-orquesta-access", tag)
                .build(),
        );
    }
}

/// The document as served, made once.
static DOCUMENT: LazyLock<Result<String, String>> =
    LazyLock::new(|| document().to_pretty_json().map_err(|e| e.to_string()));

#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    summary = "This document",
    security(()),
    responses((status = 200, description = "OpenAPI 3.1", content_type = "application/json"))
)]
pub(crate) async fn serve() -> Response {
    match &*DOCUMENT {
        Ok(text) => ([(header::CONTENT_TYPE, "application/json")], text.clone()).into_response(),
        Err(e) => Problem::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            format!("the OpenAPI document could not be written: {e}"),
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// Every `{name}` in a path is a declared path parameter, and every operation is
    /// named, tagged and has a summary, so clients and generators can use them.
    #[test]
    fn every_operation_is_named_tagged_and_declares_its_path_parameters() {
        let doc = serde_json::to_value(super::document()).unwrap();
        let mut ids = BTreeSet::new();
        let mut operations = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            assert!(!path.contains('*'), "{path} keeps axum's catch-all syntax");
            let wanted: BTreeSet<&str> = path
                .split('{')
                .skip(1)
                .filter_map(|rest| rest.split('}').next())
                .collect();
            for (method, op) in item.as_object().unwrap() {
                operations += 1;
                let id = op["operationId"].as_str().unwrap_or_default();
                assert!(!id.is_empty(), "{method} {path} has no operationId");
                assert!(ids.insert(id.to_string()), "operationId {id} is used twice");
                assert!(
                    op["tags"].as_array().is_some_and(|t| !t.is_empty()),
                    "{method} {path} has no tag"
                );
                assert!(op["summary"].is_string(), "{method} {path} has no summary");
                let declared: BTreeSet<&str> = op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["in"] == "path")
                    .filter_map(|p| p["name"].as_str())
                    .collect();
                assert_eq!(declared, wanted, "{method} {path}'s path parameters");
            }
        }
        assert!(operations >= 20, "only {operations} operations");
    }

    /// Every operation behind a token says which credential it takes and describes the
    /// 403 a tenant credential gets; the public document says neither.
    #[test]
    fn every_guarded_operation_describes_its_access_and_403() {
        let doc = serde_json::to_value(super::document()).unwrap();
        let mut guarded = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let access = op["x-orquesta-access"].as_str();
                let forbidden = &op["responses"]["403"];
                if path == "/openapi.json" {
                    assert!(access.is_none() && forbidden.is_null(), "{method} {path}");
                    continue;
                }
                guarded += 1;
                let access = access.unwrap_or_else(|| panic!("{method} {path}: no access"));
                // The tenant's own file too, but not its deletion (the operator's).
                let own_file = path == "/tenants/{tenant}" && method != "delete";
                let want = if path.starts_with("/tenants/{tenant}/") || own_file {
                    access.starts_with("tenant:")
                } else {
                    access == "host"
                };
                assert!(want, "{method} {path}: {access}");
                assert!(
                    forbidden["content"]["application/problem+json"].is_object(),
                    "{method} {path}: {forbidden}"
                );
            }
        }
        assert!(guarded >= 25, "only {guarded}");
    }

    /// Each schema of a request or response body shows an example, on itself or on its
    /// fields, so the document reads as the API is used.
    #[test]
    fn the_bodies_carry_examples() {
        let doc = serde_json::to_value(super::document()).unwrap();
        for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
            let text = schema.to_string();
            let own = schema.get("example").is_some() || schema.get("examples").is_some();
            let list = name.ends_with("List") || name == "Reloaded" || name == "SendRequest";
            assert!(
                own || list || text.contains("\"example"),
                "schema {name} has no example: {text}"
            );
        }
    }
}
