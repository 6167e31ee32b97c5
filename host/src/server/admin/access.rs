//! Who may call which admin route: the host admin token every route; a tenant's
//! `[[admin_credentials]]` only the routes of [`ACCESS`] under its own tenant, with the
//! scope the table names. One table, so a route added without a row is refused to every
//! tenant credential (and `every_operation_has_a_row` fails).

use axum::extract::{FromRequestParts as _, MatchedPath, Path, Request};
use axum::http::Method;
use std::collections::HashMap;

use crate::app::App;
use crate::tenants::AdminScope;
use crate::web::problem::Problem;

/// What a route needs from a caller that is not the host admin token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Only the host admin token: the route is about the host or every tenant.
    Host,
    /// A credential of the route's `{tenant}` with this scope.
    Tenant(AdminScope),
}

use Access::{Host, Tenant};
use AdminScope::{Deploy, Operate, Read};

/// Who is calling, as the token check found: the routes that act differently for a
/// tenant's credential (deploys) read it from the request's extensions.
#[derive(Debug, Clone)]
pub(crate) enum AdminCaller {
    Host,
    Tenant { tenant: String, credential: String },
}

impl AdminCaller {
    /// How the store records who deployed: `host-admin`, or `tenant:T:CREDENTIAL`
    /// (tenant names hold no `:`).
    pub(crate) fn deployed_by(&self) -> String {
        match self {
            AdminCaller::Host => "host-admin".to_string(),
            AdminCaller::Tenant { tenant, credential } => format!("tenant:{tenant}:{credential}"),
        }
    }
}

/// Every admin route, as registered (method, path under `/admin/v1`), and what it needs.
pub(crate) const ACCESS: &[(&str, &str, Access)] = &[
    ("GET", "/plugins", Host),
    ("PUT", "/plugins/{name}", Host),
    ("DELETE", "/plugins/{name}", Host),
    ("GET", "/tenants", Host),
    // A tenant's own file; what a credential may change in it is `tenants::self_deploy`.
    ("PUT", "/tenants/{tenant}", Tenant(Deploy)),
    // Removing a tenant is its operator's decision, not the tenant's.
    ("DELETE", "/tenants/{tenant}", Host),
    ("PUT", "/tenants/{tenant}/plugins/{name}", Tenant(Deploy)),
    ("POST", "/reload", Host),
    // Every host of the store and what each serves: about all tenants.
    ("GET", "/hosts", Host),
    // Pure computation, but not under a tenant: kept for the host's operators.
    ("POST", "/test-event-pattern", Host),
    ("GET", "/tenants/{tenant}/queues", Tenant(Read)),
    (
        "GET",
        "/tenants/{tenant}/queues/{queue}/messages",
        Tenant(Read),
    ),
    (
        "POST",
        "/tenants/{tenant}/queues/{queue}/messages",
        Tenant(Operate),
    ),
    (
        "POST",
        "/tenants/{tenant}/queues/{queue}/redrive",
        Tenant(Operate),
    ),
    (
        "POST",
        "/tenants/{tenant}/topics/{topic}/messages",
        Tenant(Operate),
    ),
    (
        "POST",
        "/tenants/{tenant}/buses/{bus}/events",
        Tenant(Operate),
    ),
    ("GET", "/tenants/{tenant}/schedules", Tenant(Read)),
    (
        "GET",
        "/tenants/{tenant}/blobs/{bucket}/{*key}",
        Tenant(Read),
    ),
    (
        "PUT",
        "/tenants/{tenant}/blobs/{bucket}/{*key}",
        Tenant(Operate),
    ),
    ("GET", "/tenants/{tenant}/deliveries", Tenant(Read)),
    ("GET", "/tenants/{tenant}/workflows", Tenant(Read)),
    (
        "POST",
        "/tenants/{tenant}/workflows/{workflow}/executions",
        Tenant(Operate),
    ),
    ("GET", "/tenants/{tenant}/executions", Tenant(Read)),
    ("GET", "/tenants/{tenant}/executions/{id}", Tenant(Read)),
    (
        "GET",
        "/tenants/{tenant}/executions/{id}/history",
        Tenant(Read),
    ),
    (
        "POST",
        "/tenants/{tenant}/executions/{id}/stop",
        Tenant(Operate),
    ),
    (
        "POST",
        "/tenants/{tenant}/executions/{id}/redrive",
        Tenant(Operate),
    ),
    ("POST", "/tenants/{tenant}/tasks/success", Tenant(Operate)),
    ("POST", "/tenants/{tenant}/tasks/failure", Tenant(Operate)),
    ("POST", "/tenants/{tenant}/tasks/heartbeat", Tenant(Operate)),
];

/// The row of `method` `path` (the route's template, with or without `/admin/v1`).
pub(crate) fn access_of(method: &Method, path: &str) -> Option<Access> {
    let path = path.strip_prefix("/admin/v1").unwrap_or(path);
    ACCESS
        .iter()
        .find(|(m, p, _)| *m == method.as_str() && *p == path)
        .map(|(_, _, access)| *access)
}

/// A tenant credential, found by its digest among the serving tenants' files.
pub(crate) struct TenantCredential {
    pub tenant: String,
    pub name: String,
    pub scopes: std::collections::BTreeSet<AdminScope>,
}

/// What a token that is not the host's is. The tenant comes from the file that declares
/// the credential, never from the request.
pub(crate) enum Found {
    None,
    One(TenantCredential),
    /// Declared by several tenants' files: no tenant can be told from the token, so it
    /// is refused everywhere rather than given to whichever file was read first.
    Ambiguous(Vec<String>),
}

pub(crate) fn find_credential(app: &App, digest: &str) -> Found {
    let mut found: Vec<TenantCredential> = app
        .tenants
        .names()
        .into_iter()
        .filter_map(|tenant| {
            let runtime = app.tenants.get(&tenant)?;
            let c = runtime.config.admin_credentials.find(digest)?;
            Some(TenantCredential {
                name: c.name.clone(),
                scopes: c.scopes.clone(),
                tenant,
            })
        })
        .collect();
    match found.len() {
        0 => Found::None,
        1 => Found::One(found.remove(0)),
        _ => Found::Ambiguous(found.into_iter().map(|c| c.tenant).collect()),
    }
}

/// Whether `credential` may make `request`: the 403 to answer when not.
pub(crate) async fn check(
    credential: &TenantCredential,
    request: Request,
) -> Result<Request, Problem> {
    let (mut parts, body) = request.into_parts();
    let who = format!(
        "the credential `{}` of tenant `{}`",
        credential.name, credential.tenant
    );
    let route = parts
        .extensions
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    let scope = match access_of(&parts.method, &route) {
        Some(Tenant(scope)) => scope,
        Some(Host) => {
            return Err(Problem::forbidden(format!(
                "{who} cannot use a host-wide route; it needs the host admin token"
            )));
        }
        None => {
            return Err(Problem::forbidden(format!(
                "{route} has no scope for tenant credentials; it needs the host admin token"
            )));
        }
    };
    // The tenant the handler will act on, decoded exactly as its own `Path` decodes it:
    // `alpha%2F..%2Fbeta` is the tenant `alpha/../beta`, which no credential is of.
    let tenant = Path::<HashMap<String, String>>::from_request_parts(&mut parts, &())
        .await
        .ok()
        .and_then(|Path(mut params)| params.remove("tenant"));
    if tenant.as_deref() != Some(credential.tenant.as_str()) {
        return Err(Problem::forbidden(format!(
            "{who} cannot use another tenant's routes"
        )));
    }
    if !credential.scopes.contains(&scope) {
        return Err(Problem::forbidden(format!(
            "{who} lacks the scope `{}` this route needs",
            scope.as_str()
        )));
    }
    Ok(Request::from_parts(parts, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The operations the router serves (from the same registration the OpenAPI
    /// document is made of), as (method, axum path).
    fn operations() -> Vec<(String, String)> {
        let (_, doc) = super::super::operations().split_for_parts();
        let doc = serde_json::to_value(doc).expect("the document is JSON");
        let mut all = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("a path item").keys() {
                all.push((method.to_uppercase(), path.clone()));
            }
        }
        all
    }

    /// A route added without a row would be refused to every tenant credential, which
    /// is safe but silent: this says so when it is added.
    #[test]
    fn every_operation_has_a_row_and_every_row_an_operation() {
        let served = operations();
        assert!(served.len() >= 25, "only {} operations", served.len());
        for (method, path) in &served {
            let method = Method::from_bytes(method.as_bytes()).expect("a method");
            assert!(
                access_of(&method, path).is_some(),
                "{method} {path} has no row in access::ACCESS: give it Host or a tenant scope"
            );
            let under_tenant = (path.starts_with("/tenants/{tenant}/")
                || path == "/tenants/{tenant}")
                && !(method == Method::DELETE && path == "/tenants/{tenant}");
            assert_eq!(
                matches!(access_of(&method, path), Some(Access::Tenant(_))),
                under_tenant,
                "{method} {path}: exactly the routes under a tenant (but its deletion) take a tenant credential"
            );
        }
        for (method, path, _) in ACCESS {
            assert!(
                served.iter().any(|(m, p)| m == method && p == path),
                "the row {method} {path} names no route"
            );
        }
    }

    #[test]
    fn reads_take_read_and_the_rest_operate() {
        for (method, path, access) in ACCESS {
            if let Access::Tenant(scope) = access {
                let want = if *method == "GET" {
                    Read
                } else if *path == "/tenants/{tenant}"
                    || path.starts_with("/tenants/{tenant}/plugins/")
                {
                    Deploy
                } else {
                    Operate
                };
                assert_eq!(*scope, want, "{method} {path}");
            }
        }
        let get = Method::GET;
        assert_eq!(
            access_of(&get, "/admin/v1/tenants/{tenant}/queues"),
            Some(Tenant(Read))
        );
        assert_eq!(access_of(&get, "/tenants/{tenant}/nothing"), None);
    }
}
