//! Deploys through the admin API: plugins and tenant files. A deploy is checked here as
//! the directories would check the file (a component compiled and linked, a tenant file
//! through `prepare`, refused with `file:line`), recorded in the store for every host of
//! it (`app::deploys`), written into this host's directory and loaded before the answer.
//! The host admin token deploys anything; a tenant's credential with the `deploy` scope
//! deploys its own tenant file (its plugins' `config` and `source` only, see
//! `tenants::self_deploy`) and the plugins that are its own.

use std::collections::BTreeSet;
use std::path::Path as FsPath;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::access::AdminCaller;
use crate::app::App;
use crate::app::plugins::valid_name;
use crate::app::tenants::{Checks, Plugins, prepare, tenant_of_file};
use crate::store::deploys::{DeployKind, artifact_hash};
use crate::store::now_ms;
use crate::tenants::self_deploy;
use crate::web::body::AdminBody;
use crate::web::problem::{Problem, ProblemDocument};

/// A plugin deployed.
#[derive(Serialize, ToSchema)]
pub(super) struct DeployedPlugin {
    #[schema(example = "hello")]
    name: String,
    /// SHA-256 of the component, hex.
    #[schema(example = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")]
    hash: String,
    /// Whether it went to the store, for every host of it (`deploys_from_store`).
    shared: bool,
}

/// A tenant file deployed, and how it loaded on the host that took it.
#[derive(Serialize, ToSchema)]
pub(super) struct DeployedTenant {
    #[schema(example = "acme")]
    name: String,
    /// SHA-256 of the file's text, hex.
    hash: String,
    /// Whether it went to the store, for every host of it.
    shared: bool,
    /// Whether the tenant serves on this host now.
    serving: bool,
    /// Why this host did not load it, when it passed the checks and still failed (a
    /// database it could not open); the last good version keeps serving.
    error: Option<String>,
}

/// A tenant deleted.
#[derive(Serialize, ToSchema)]
pub(super) struct DeletedTenant {
    #[schema(example = "acme")]
    name: String,
    shared: bool,
}

/// Deploys one tenant's credentials may make per minute, and in a burst: each makes every
/// host of the store load (and, for a new component, compile) what was deployed, so one
/// tenant must not keep every host compiling. Operators deploy without a limit.
const TENANT_DEPLOYS_PER_MINUTE: u32 = 30;
const TENANT_DEPLOY_BURST: u32 = 10;
/// Plugins one tenant's credentials may have deployed at once: each is kept in the store
/// and compiled by every host, so new names cannot be minted without end.
const TENANT_PLUGINS: usize = 16;

type TenantLimiter = governor::DefaultKeyedRateLimiter<String>;

/// The deploy rate of each tenant's credentials on this host.
fn tenant_limiter() -> &'static TenantLimiter {
    static LIMITER: std::sync::LazyLock<TenantLimiter> = std::sync::LazyLock::new(|| {
        let quota = governor::Quota::per_minute(
            std::num::NonZeroU32::new(TENANT_DEPLOYS_PER_MINUTE)
                .unwrap_or(std::num::NonZeroU32::MIN),
        )
        .allow_burst(
            std::num::NonZeroU32::new(TENANT_DEPLOY_BURST).unwrap_or(std::num::NonZeroU32::MIN),
        );
        governor::RateLimiter::keyed(quota)
    });
    &LIMITER
}

/// The 429 for a tenant credential past its deploy rate.
fn tenant_rate(caller: &AdminCaller) -> Result<(), Problem> {
    let AdminCaller::Tenant { tenant, .. } = caller else {
        return Ok(());
    };
    tenant_limiter().check_key(tenant).map_err(|_| {
        Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Too Many Requests",
            format!(
                "tenant `{tenant}` deploys at most {TENANT_DEPLOYS_PER_MINUTE} a minute ({TENANT_DEPLOY_BURST} at once)"
            ),
        )
        .retry_after(2)
    })
}

fn internal(e: impl std::fmt::Display) -> Response {
    Problem::internal(e).into_response()
}

#[utoipa::path(
    put,
    path = "/plugins/{name}",
    tag = "plugins",
    summary = "Deploy a plugin component",
    description = "Compiled and linked first (a refused component changes nothing), then recorded in the store, where every host of it finds it within `deploy_poll_ms`, and served here before the answer. Tenants waiting for it load.",
    params(("name" = String, Path, pattern = "^[A-Za-z0-9_-]{1,64}$", example = "hello")),
    request_body(content = inline(AdminBody), content_type = "application/wasm", description = "The component's bytes"),
    responses(
        (status = 200, description = "Deployed", body = DeployedPlugin),
        (status = 400, description = "Not a valid plugin or name; nothing changed", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 413, description = "Larger than the upload limit", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub(super) async fn put_plugin(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<AdminCaller>,
    Path(name): Path<String>,
    AdminBody(body): AdminBody,
) -> Response {
    deploy_plugin(&app, &caller, &name, body.to_vec()).await
}

/// A plugin deleted.
#[derive(Serialize, ToSchema)]
pub(super) struct DeletedPlugin {
    #[schema(example = "hello")]
    name: String,
    shared: bool,
}

#[utoipa::path(
    delete,
    path = "/plugins/{name}",
    tag = "plugins",
    summary = "Delete a plugin",
    description = "Removes the component on every host of the store (a host started later removes it too). Refused while a tenant file on this host names it: deploy those tenants without it first.",
    params(("name" = String, Path, pattern = "^[A-Za-z0-9_-]{1,64}$", example = "hello")),
    responses(
        (status = 200, description = "Deleted", body = DeletedPlugin),
        (status = 401, description = "No or wrong token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No such plugin", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "A tenant names it", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub(super) async fn delete_plugin(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<AdminCaller>,
    Path(name): Path<String>,
) -> Response {
    if !valid_name(&name) {
        return Problem::bad_request(format!(
            "plugin names are 1-64 characters of A-Z a-z 0-9 - _, got {name:?}"
        ))
        .into_response();
    }
    let files = match tenant_files(&app) {
        Ok(files) => files,
        Err(refused) => return refused.into_response(),
    };
    let naming: Vec<String> = files
        .into_iter()
        .filter(|(_, text)| sources(text).contains(&name))
        .map(|(tenant, _)| tenant)
        .collect();
    if !naming.is_empty() {
        return Problem::new(
            StatusCode::CONFLICT,
            "Conflict",
            format!(
                "the tenants {} name the plugin `{name}`; deploy them without it first",
                naming.join(", ")
            ),
        )
        .into_response();
    }
    delete(&app, &caller, DeployKind::Plugin, &name)
        .await
        .map_or_else(
            |refused| refused,
            |shared| Json(DeletedPlugin { name, shared }).into_response(),
        )
}

/// Deletes `kind` `name` in the store (when shared) and here, then loads what is left.
/// Answers whether it went through the store; 404 when there was nothing to delete.
async fn delete(
    app: &App,
    caller: &AdminCaller,
    kind: DeployKind,
    name: &str,
) -> Result<bool, Response> {
    let shared = app.config.deploys_from_store;
    let in_store = if shared {
        match app.services.store.deploy_list().await {
            Ok(list) => list
                .iter()
                .any(|d| d.kind == kind && d.name == name && d.hash.is_some()),
            Err(e) => return Err(internal(e)),
        }
    } else {
        false
    };
    let here = app.deploys.file(kind, name).is_some_and(|f| f.is_file());
    if !in_store && !here {
        let also = match kind {
            DeployKind::Tenant => app.config.tenant_dir.join(format!("{name}.toml")),
            DeployKind::Plugin => app.config.plugin_dir.join(format!("{name}.wasm")),
        };
        let detail = if also.is_file() {
            format!(
                "the {} `{name}` was not deployed through the store: it is served from {}; remove that file there",
                kind.as_str(),
                also.display()
            )
        } else {
            format!("no {} `{name}`", kind.as_str())
        };
        return Err(Problem::not_found(detail).into_response());
    }
    if shared {
        let by = caller.deployed_by();
        let stored = app
            .services
            .store
            .deploy_put(kind, name, None, &by, now_ms());
        if let Err(e) = stored.await {
            return Err(internal(e));
        }
    }
    if let Err(e) = app.deploys.write_here(kind, name, None).await {
        return Err(internal(e));
    }
    app.reload().await;
    tracing::info!(kind = kind.as_str(), %name, by = %caller.deployed_by(), "deleted through the admin API");
    Ok(shared)
}

#[utoipa::path(
    put,
    path = "/tenants/{tenant}/plugins/{name}",
    tag = "plugins",
    summary = "Deploy one of the tenant's own plugins",
    description = "As `PUT /plugins/{name}`, for a tenant credential with the `deploy` scope: the plugin must be the tenant's own, named by its serving file and by no other tenant's file on this host, or first deployed by this tenant, or new.",
    params(("tenant" = String, Path, example = "acme"), ("name" = String, Path, pattern = "^[A-Za-z0-9_-]{1,64}$", example = "acme-api")),
    request_body(content = inline(AdminBody), content_type = "application/wasm", description = "The component's bytes"),
    responses(
        (status = 200, description = "Deployed", body = DeployedPlugin),
        (status = 400, description = "Not a valid plugin or name; nothing changed", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, description = "Another tenant's plugin, or the credential lacks `deploy`", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub(super) async fn put_tenant_plugin(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<AdminCaller>,
    Path((tenant, name)): Path<(String, String)>,
    AdminBody(body): AdminBody,
) -> Response {
    if !valid_name(&name) {
        return Problem::bad_request(format!(
            "plugin names are 1-64 characters of A-Z a-z 0-9 - _, got {name:?}"
        ))
        .into_response();
    }
    if let Err(refused) = owns_plugin(&app, &tenant, &name).await {
        return refused.into_response();
    }
    // Counted once past the checks: a refusal costs the hosts nothing.
    if let Err(refused) = tenant_rate(&caller) {
        return refused.into_response();
    }
    deploy_plugin(&app, &caller, &name, body.to_vec()).await
}

async fn deploy_plugin(app: &App, caller: &AdminCaller, name: &str, bytes: Vec<u8>) -> Response {
    if !valid_name(name) {
        return Problem::bad_request(format!(
            "plugin names are 1-64 characters of A-Z a-z 0-9 - _, got {name:?}"
        ))
        .into_response();
    }
    // Compiled before anything is recorded: a refused component changes nothing anywhere.
    if let Err(e) = app.engine.load(bytes.clone()).await {
        return Problem::bad_request(e.to_string()).into_response();
    }
    let shared = app.config.deploys_from_store;
    let hash = if shared {
        let by = caller.deployed_by();
        let stored =
            app.services
                .store
                .deploy_put(DeployKind::Plugin, name, Some(&bytes), &by, now_ms());
        match stored.await {
            Ok(hash) => hash.unwrap_or_default(),
            Err(e) => return internal(e),
        }
    } else {
        artifact_hash(&bytes)
    };
    let written = app
        .deploys
        .write_here(DeployKind::Plugin, name, Some(&bytes));
    if let Err(e) = written.await {
        return internal(e);
    }
    // Compiled above: this takes the cached component.
    if let Err(e) = app.plugins.deploy(name, bytes).await {
        return Problem::bad_request(e.to_string()).into_response();
    }
    // Tenants refused for want of this plugin load now, not after the watcher.
    app.tenants.scan(&app.services, &app.plugins);
    tracing::info!(plugin = name, %hash, by = %caller.deployed_by(), "plugin deployed through the admin API");
    Json(DeployedPlugin {
        name: name.to_string(),
        hash,
        shared,
    })
    .into_response()
}

#[utoipa::path(
    put,
    path = "/tenants/{tenant}",
    tag = "tenants",
    summary = "Deploy a tenant file",
    description = "The tenant file's TOML as the body, checked exactly as a file dropped into the tenant directory is (refusals name `file:line`), then recorded in the store for every host of it and loaded here before the answer; on each host the previous version serves until the new one has loaded there. A tenant credential (scope `deploy`) may change only its plugins' `config` and `source`, to plugins of its own.",
    params(("tenant" = String, Path, example = "acme")),
    request_body(content = String, content_type = "application/toml", description = "The tenant file"),
    responses(
        (status = 200, description = "Deployed", body = DeployedTenant),
        (status = 400, description = "Not a valid tenant file or name; nothing changed", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, description = "A change a tenant credential may not make", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "Another tenant's name differs only in case", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub(super) async fn put_tenant(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<AdminCaller>,
    Path(tenant): Path<String>,
    AdminBody(body): AdminBody,
) -> Response {
    let file = match file_of_tenant(&app, &tenant) {
        Ok(f) => f,
        Err(refused) => return refused.into_response(),
    };
    let Ok(text) = String::from_utf8(body.to_vec()) else {
        return Problem::bad_request("a tenant file is UTF-8 text").into_response();
    };
    if let AdminCaller::Tenant { .. } = caller {
        // The credential was found in the serving file, so there is one.
        let Some(serving) = app.tenants.get(&tenant) else {
            return Problem::forbidden("the tenant is not serving").into_response();
        };
        let added = match self_deploy::check_change(&serving.text, &text) {
            Ok(added) => added,
            Err(e @ self_deploy::SelfDeployError::NotToml(_)) => {
                return Problem::bad_request(e.to_string()).into_response();
            }
            Err(e) => return Problem::forbidden(e.to_string()).into_response(),
        };
        for plugin in added {
            if let Err(refused) = owns_plugin(&app, &tenant, &plugin).await {
                return refused.into_response();
            }
        }
        if let Err(refused) = tenant_rate(&caller) {
            return refused.into_response();
        }
    }
    let checks = Checks {
        plugins: Some(Plugins::Catalog(&app.plugins)),
        secrets: true,
    };
    if let Err(e) = prepare(&tenant, &file, &text, &checks) {
        return Problem::bad_request(e.to_string()).into_response();
    }
    let shared = app.config.deploys_from_store;
    let hash = artifact_hash(text.as_bytes());
    if shared {
        let by = caller.deployed_by();
        let stored = app.services.store.deploy_put(
            DeployKind::Tenant,
            &tenant,
            Some(text.as_bytes()),
            &by,
            now_ms(),
        );
        if let Err(e) = stored.await {
            return internal(e);
        }
    }
    let written = app
        .deploys
        .write_here(DeployKind::Tenant, &tenant, Some(text.as_bytes()));
    if let Err(e) = written.await {
        return internal(e);
    }
    app.tenants.scan(&app.services, &app.plugins);
    let status = app.tenants.list().into_iter().find(|s| s.name == tenant);
    tracing::info!(%tenant, %hash, by = %caller.deployed_by(), "tenant deployed through the admin API");
    Json(DeployedTenant {
        name: tenant,
        hash,
        shared,
        serving: status.as_ref().is_some_and(|s| s.serving),
        error: status.and_then(|s| s.error),
    })
    .into_response()
}

#[utoipa::path(
    delete,
    path = "/tenants/{tenant}",
    tag = "tenants",
    summary = "Delete a tenant",
    description = "Removes the tenant's file on every host of the store (a host started later removes it too); its routes, queues' consumers and schedules stop. Its stored data (kv, queues, blobs, executions) is kept. The host admin token only.",
    params(("tenant" = String, Path, example = "acme")),
    responses(
        (status = 200, description = "Deleted", body = DeletedTenant),
        (status = 401, description = "No or wrong token", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub(super) async fn delete_tenant(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<AdminCaller>,
    Path(tenant): Path<String>,
) -> Response {
    if let Err(refused) = file_of_tenant(&app, &tenant) {
        return refused.into_response();
    }
    delete(&app, &caller, DeployKind::Tenant, &tenant)
        .await
        .map_or_else(
            |refused| refused,
            |shared| {
                Json(DeletedTenant {
                    name: tenant,
                    shared,
                })
                .into_response()
            },
        )
}

/// The file of tenant `tenant` in this host's tenant directory; refused when the name is
/// not a tenant's, or another tenant's file differs from it only in case (both would be
/// refused by the next scan).
fn file_of_tenant(app: &App, tenant: &str) -> Result<std::path::PathBuf, Problem> {
    let file_name = format!("{tenant}.toml");
    match tenant_of_file(FsPath::new(&file_name)) {
        Ok(Some(name)) if name == tenant => {}
        Ok(_) => {
            return Err(Problem::bad_request(format!(
                "{tenant:?} is not a tenant name"
            )));
        }
        Err(e) => return Err(Problem::bad_request(e.to_string())),
    }
    let clash = app
        .tenants
        .list()
        .into_iter()
        .find(|s| s.name != tenant && s.name.eq_ignore_ascii_case(tenant));
    if let Some(other) = clash {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "Conflict",
            format!(
                "the tenant `{}` differs from `{tenant}` only in case; one of them must go first",
                other.name
            ),
        ));
    }
    Ok(app.config.tenant_dir.join(file_name))
}

/// Whether plugin `plugin` is `tenant`'s to deploy: no other tenant file in this host's
/// tenant directory names it, and either the tenant's serving file does, the tenant
/// deployed it last, or it does not exist yet. The 403 otherwise.
async fn owns_plugin(app: &App, tenant: &str, plugin: &str) -> Result<(), Problem> {
    let refuse = |why: &str| {
        Err(Problem::forbidden(format!(
            "the plugin `{plugin}` is not tenant `{tenant}`'s to deploy: {why}"
        )))
    };
    if !valid_name(plugin) {
        return refuse("a plugin's source must be a file of the plugin directory");
    }
    if others_naming(app, tenant)?.contains(plugin) {
        return refuse("another tenant's file names it");
    }
    let named_by_own = app
        .tenants
        .get(tenant)
        .is_some_and(|t| sources(&t.text).contains(plugin));
    if named_by_own {
        return Ok(());
    }
    let deployments = match app.services.store.deploy_list().await {
        Ok(list) => list,
        Err(e) => return Err(Problem::internal(e)),
    };
    let last = deployments
        .iter()
        .find(|d| d.kind == DeployKind::Plugin && d.name == plugin);
    let by_tenant = |by: &str| {
        by.strip_prefix("tenant:")
            .and_then(|rest| rest.split_once(':'))
            .is_some_and(|(t, _)| t == tenant)
    };
    let deployed_by_self = last.is_some_and(|d| by_tenant(&d.deployed_by));
    let held = deployments
        .iter()
        .filter(|d| d.kind == DeployKind::Plugin && d.hash.is_some() && by_tenant(&d.deployed_by))
        .count();
    if !deployed_by_self && held >= TENANT_PLUGINS {
        return refuse(&format!(
            "the tenant has deployed {held} plugins, the most it may; delete one (the host's operator) or deploy over one of its own"
        ));
    }
    let exists = last.is_some_and(|d| d.hash.is_some()) || app.plugins.status(plugin).is_some();
    if deployed_by_self || !exists {
        Ok(())
    } else {
        refuse("it was deployed by the host's operator and the tenant's file does not name it")
    }
}

/// The plugin stems every tenant file but `tenant`'s names.
fn others_naming(app: &App, tenant: &str) -> Result<BTreeSet<String>, Problem> {
    Ok(tenant_files(app)?
        .into_iter()
        .filter(|(name, _)| name != tenant)
        .flat_map(|(_, text)| sources(&text))
        .collect())
}

/// Every tenant file of this host as it is now, deployed or dropped in, serving or not
/// (a file waiting for a plugin counts): (tenant, text).
/// A listing that fails is a 500: the checks built on it must not pass on nothing.
fn tenant_files(app: &App) -> Result<Vec<(String, String)>, Problem> {
    let files = app
        .tenants
        .files()
        .map_err(|e| Problem::internal(format!("cannot list the tenant files: {e}")))?;
    Ok(files
        .into_iter()
        .filter_map(|(tenant, path)| Some((tenant, std::fs::read_to_string(&path).ok()?)))
        .collect())
}

/// The plugin stems a tenant file's `plugins.*.source` name.
fn sources(text: &str) -> BTreeSet<String> {
    let Ok(doc) = toml::from_str::<toml::Table>(text) else {
        return BTreeSet::new();
    };
    doc.get("plugins")
        .and_then(|p| p.as_table())
        .into_iter()
        .flat_map(|t| t.values())
        .filter_map(|p| p.get("source").and_then(|s| s.as_str()))
        .filter_map(|s| FsPath::new(s).file_stem().and_then(|s| s.to_str()))
        .map(str::to_string)
        .collect()
}
