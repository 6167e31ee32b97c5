//! `orquesta serve`: the HTTP service. Tenants and plugins come from watched directories
//! (or the admin API); requests under `/t/{tenant}/` go to the tenant's routes.

mod access_log;
mod admin;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::oneshot;

pub use crate::app::config::HostConfig;
use crate::app::watch;
use crate::app::{App, Services, plugins, tenants};
use crate::triggers;
use crate::web::problem::{self, Problem};

use crate::capabilities::HostResources;
use crate::engine::{Engine, EngineConfig, EngineLimits};
use crate::store::Store;

/// How long a host shutting down waits for its last registry write at least, when the
/// drain took its whole grace: one short UPDATE.
const HEARTBEAT_STOP: Duration = Duration::from_secs(1);

/// A started server.
pub struct RunningServer {
    pub addr: SocketAddr,
    app: Arc<App>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    stop_consumers: tokio::sync::watch::Sender<bool>,
    consumers: tokio::task::JoinHandle<()>,
    /// The heartbeat, stopped last: the host is listed up while it drains.
    heartbeat: (
        tokio::sync::watch::Sender<bool>,
        tokio::task::JoinHandle<()>,
    ),
    _watcher: Option<watch::Watching>,
    /// Dropped with the server, which stops looking for deploys.
    _deploys: Option<tokio::sync::watch::Sender<bool>>,
}

impl RunningServer {
    /// Stops accepting connections and waits, up to the configured grace, for the
    /// requests, queue batches, ticks and workflow steps in flight to finish. One deadline
    /// for all of them: waiting for one part does not extend the time left for the next.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            // The server may already have stopped; either way it is stopping now.
            let _ = stop.send(());
        }
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(self.app.config.shutdown_grace_ms);
        // Consumers take no new batches; the ones in flight finish within the grace
        // (or come back to their queues after the visibility timeout).
        let _ = self.stop_consumers.send(true);
        let (consumers, http) = tokio::join!(
            tokio::time::timeout_at(deadline, &mut self.consumers),
            tokio::time::timeout_at(deadline, &mut self.task),
        );
        if consumers.is_err() {
            self.consumers.abort();
            tracing::warn!("queue batches still running after the shutdown grace were cut off");
        }
        // Drained: the registry lists the host as stopped (its last write; a store that
        // does not answer in time leaves it to be listed as gone instead).
        let (stop_beating, beating) = &mut self.heartbeat;
        let _ = stop_beating.send(true);
        let until = deadline.max(tokio::time::Instant::now() + HEARTBEAT_STOP);
        if tokio::time::timeout_at(until, &mut *beating).await.is_err() {
            beating.abort();
        }
        match http {
            Ok(joined) => Ok(joined.context("the server task failed")??),
            Err(_) => {
                self.task.abort();
                tracing::warn!("requests still running after the shutdown grace were cut off");
                Ok(())
            }
        }
    }
}

/// Opens the store, loads plugins and tenants, and starts listening.
pub async fn start(config: HostConfig) -> anyhow::Result<RunningServer> {
    for dir in [&config.data_dir, &config.plugin_dir, &config.tenant_dir] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let engine = Engine::new(EngineConfig {
        cache_dir: Some(config.data_dir.join("cache")),
        limits: EngineLimits {
            instance_slots: config.instance_slots,
            ..EngineLimits::default()
        },
        ..EngineConfig::default()
    })?;
    let store = match &config.store {
        Some(url) => Store::open(url).await?,
        None => Store::open_sqlite(&config.data_dir.join("orquesta.db")).await?,
    };
    let blobs = config
        .blobs
        .open(&store, &config.data_dir)
        .context("blobs")?;
    tracing::info!(backend = ?store.backend(), ?blobs, "store open");
    let admin_token_hash = match &config.admin_token {
        Some(r) => Some(crate::triggers::http::auth::sha256_hex(
            r.resolve()
                .map_err(|e| anyhow::anyhow!("admin_token: {e}"))?
                .expose(),
        )),
        None => None,
    };
    crate::metrics::handle();
    // Task states reach the service through this handle, set once the service exists.
    let handle: triggers::workflow::AppHandle = Arc::new(std::sync::OnceLock::new());
    let executor = crate::workflow::Executor::new(
        store.clone(),
        Arc::new(triggers::workflow::ServiceTasks {
            app: handle.clone(),
        }),
        crate::workflow::ExecutorOptions::default(),
    );
    let app = Arc::new(App {
        plugins: plugins::PluginCatalog::new(engine.clone(), config.plugin_dir.clone())
            .with_deployed(config.deployed_dir().join("plugins")),
        tenants: tenants::TenantRegistry::new(config.tenant_dir.clone())
            .with_deployed(config.deployed_dir().join("tenants")),
        services: Services {
            resources: HostResources::new(store, blobs, &config.data_dir)?,
            wakes: Default::default(),
            deliveries: Arc::new(tokio::sync::Notify::new()),
            executor,
        },
        engine,
        admin_token_hash,
        ready: false.into(),
        host: crate::app::registry::ThisHost::new(),
        deploys: crate::app::deploys::Deploys::new(&config.deployed_dir()),
        config,
    });
    let _ = handle.set(Arc::downgrade(&app));
    // The store's deploys first, so the first load is of what the service serves now.
    if app.config.deploys_from_store
        && let Err(e) = app.deploys.sync(&app).await
    {
        tracing::warn!(error = %e, "cannot apply the store's deploys at start; serving the directories");
    }
    app.reload().await;
    app.ready.store(true, Ordering::Release);
    let watcher = match watch::start(app.clone()) {
        Ok(w) => Some(w),
        Err(e) => {
            // The admin API's reload still works.
            tracing::warn!(error = %e, "cannot watch the plugin and tenant directories");
            None
        }
    };
    let deploys = app.config.deploys_from_store.then(|| {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(crate::app::deploys::poll(app.clone(), stopped));
        stop
    });

    let listener = tokio::net::TcpListener::bind(app.config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", app.config.listen))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let router = router(app.clone());
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                // A dropped sender also means stop.
                let _ = stopped.await;
            })
            .await
    });
    let (stop_consumers, consumers_stopped) = tokio::sync::watch::channel(false);
    let consumers = tokio::spawn({
        let runs: Vec<_> = triggers::all()
            .iter()
            .filter_map(|t| {
                let run = t.run(app.clone(), consumers_stopped.clone())?;
                tracing::debug!(trigger = t.name(), "trigger running");
                Some(run)
            })
            .collect();
        async move {
            futures::future::join_all(runs).await;
        }
    });
    // In the registry before the service is announced, so it lists itself at once.
    let address = app
        .config
        .advertise
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let mut heartbeat = crate::app::registry::Heartbeat::new(app.clone(), address);
    if let Err(e) = heartbeat.beat().await {
        tracing::warn!(error = %e, "cannot write this host's first heartbeat");
    }
    let (stop_beating, beating) = tokio::sync::watch::channel(false);
    let heartbeat = (stop_beating, tokio::spawn(heartbeat.run(beating)));
    tracing::info!(%addr, host = %app.host.id, "orquesta listening");
    Ok(RunningServer {
        addr,
        app,
        stop: Some(stop),
        task,
        stop_consumers,
        consumers,
        heartbeat,
        _watcher: watcher,
        _deploys: deploys,
    })
}

/// Runs until `shutdown` resolves, then drains.
pub async fn run(config: HostConfig, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let server = start(config).await?;
    // Scripts and tests read the address from this line.
    println!("orquesta listening on http://{}", server.addr);
    shutdown.await;
    tracing::info!("shutting down: draining requests in flight");
    server.shutdown().await
}

fn router(app: Arc<App>) -> Router {
    let mut router = Router::new();
    for trigger in triggers::all() {
        if let Some(routes) = trigger.routes() {
            router = router.merge(routes);
        }
    }
    router
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .nest(
            "/admin/v1",
            admin::router(app.clone()).layer(DefaultBodyLimit::max(crate::web::body::MAX_UPLOAD_BYTES)),
        )
        .fallback(|uri: axum::http::Uri| async move {
            Problem::not_found(format!(
                "no such endpoint: {}; tenant routes are under /t/{{tenant}}/, the admin API under /admin/v1/",
                uri.path()
            ))
        })
        // axum's own refusals (a bad path parameter or query, a wrong method) become
        // problem details too.
        .layer(axum::middleware::from_fn(problem::every_refusal))
        .layer(access_log::layer())
        .with_state(app)
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    if app.ready.load(Ordering::Acquire) {
        "ready".into_response()
    } else {
        Problem::unavailable("still loading plugins and tenants").into_response()
    }
}

async fn metrics_text() -> Response {
    match crate::metrics::handle() {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "metrics are not available").into_response(),
    }
}
