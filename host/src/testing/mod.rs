//! Testing a plugin in isolation, with no server: the same engine and capabilities as
//! the host, an in-memory store, scripted HTTP answers and a recording outbox.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use orquesta::testing::{MockResponse, TestPlugin};
//! use serde_json::json;
//!
//! let plugin = TestPlugin::load("target/wasm32-wasip2/release/hello.wasm").await?;
//! let mut sandbox = plugin.sandbox().await?;
//! sandbox.config("greeting", "Hola");
//! let out = sandbox.invoke(json!({"type": "task", "input": {"name": "Ana"}})).await?;
//! assert_eq!(out["message"], "Hola, Ana!");
//! # Ok(()) }
//! ```
//! `orquesta test` runs the same sandbox from fixture files ([`fixtures`]), and state
//! machines with scripted task results ([`workflow_fixtures`]).

pub mod fixtures;
pub mod matching;
mod mocks;
pub mod workflow_fixtures;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use anyhow::Context as _;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::capabilities::blob::BlobBucket;
use crate::capabilities::kv::{KeyValue, Namespace};
use crate::capabilities::{
    Backends, Capabilities, Grants, HostResources, Secret, Sections, TenantResources,
};
use crate::engine::{
    Engine, EngineConfig, EngineLimits, InvokeError, Limits, Plugin, PluginContext, WarmPool,
    WarmSettings, WasiContexts,
};
use crate::event::{EventJson, response_to_json};
use crate::store::Store;
use crate::tenants::DatabaseConfig;
pub use mocks::{MockHttp, MockResponse, Outbox, RecordedRequest};

/// The engine shared by every test in a process: compiled plugins are reused.
pub fn shared_engine() -> anyhow::Result<Engine> {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    if let Some(engine) = ENGINE.get() {
        return Ok(engine.clone());
    }
    let engine = Engine::new(EngineConfig {
        cache_dir: Some(std::env::temp_dir().join("orquesta-test-cache")),
        limits: EngineLimits {
            instance_slots: 64,
            ..EngineLimits::default()
        },
        ..EngineConfig::default()
    })?;
    Ok(ENGINE.get_or_init(|| engine).clone())
}

/// A compiled plugin under test.
#[derive(Clone)]
pub struct TestPlugin {
    engine: Engine,
    plugin: Plugin,
}

impl TestPlugin {
    /// Loads a component file on the shared engine.
    pub async fn load(path: impl AsRef<Path>) -> anyhow::Result<Self> {
        let path = path.as_ref();
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let engine = shared_engine()?;
        let plugin = engine
            .load(bytes)
            .await
            .with_context(|| format!("cannot load {}", path.display()))?;
        Ok(TestPlugin { engine, plugin })
    }

    pub fn new(engine: Engine, plugin: Plugin) -> Self {
        TestPlugin { engine, plugin }
    }

    /// The compiled plugin: which trigger kinds it answers, its exports.
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// A fresh world for one test: empty store, no mocks, nothing recorded.
    pub async fn sandbox(&self) -> anyhow::Result<Sandbox> {
        let data_dir = Arc::new(tempfile::tempdir()?);
        Sandbox {
            engine: self.engine.clone(),
            plugin: self.plugin.clone(),
            tenant: "test".into(),
            name: "plugin".into(),
            config: BTreeMap::new(),
            secrets: BTreeMap::new(),
            grants: Grants::all(),
            concurrency: Arc::new(Semaphore::new(Limits::default().concurrency as usize)),
            wasi: Arc::default(),
            warm: None,
            limits: Limits::default(),
            // Its HTTP client is never used for a request: `http` answers them.
            host: HostResources::local(Store::in_memory().await?, data_dir.path())?,
            _data_dir: data_dir,
            http: Arc::new(MockHttp::default()),
            outbox: Arc::new(Outbox::default()),
            sections: Sections::default(),
            backends: Backends::unavailable(),
        }
        .built()
    }
}

/// JSON values as SQL parameters.
fn sql_params(params: &[Value]) -> anyhow::Result<Vec<crate::capabilities::sql::SqlValue>> {
    use crate::capabilities::sql::SqlValue;
    params
        .iter()
        .map(|p| match p {
            Value::Null => Ok(SqlValue::Null),
            Value::Bool(b) => Ok(SqlValue::Boolean(*b)),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Ok(SqlValue::Integer(i)),
                None => Ok(SqlValue::Real(n.as_f64().unwrap_or_default())),
            },
            Value::String(s) => Ok(SqlValue::Text(s.clone())),
            other => {
                anyhow::bail!("a SQL parameter is a string, number, boolean or null, not {other}")
            }
        })
        .collect()
}

/// Its warm instances go with it (each holds a context that holds the pool).
impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(pool) = &self.warm {
            pool.close();
        }
    }
}

/// One test's world around a plugin.
pub struct Sandbox {
    engine: Engine,
    plugin: Plugin,
    tenant: String,
    name: String,
    config: BTreeMap<String, String>,
    secrets: BTreeMap<String, Secret>,
    grants: Grants,
    limits: Limits,
    /// One semaphore for all of this sandbox's invocations, as for a tenant.
    concurrency: Arc<Semaphore>,
    /// WASI contexts reused across invocations, as a tenant's plugin's are.
    wasi: Arc<WasiContexts>,
    /// Warm instances, when asked for ([`Sandbox::warm`]).
    warm: Option<Arc<WarmPool>>,
    /// As the service's, over an in-memory store and files in `data_dir`.
    host: HostResources,
    /// Blobs and databases live in a private directory, held here so it is removed
    /// with the sandbox.
    _data_dir: Arc<tempfile::TempDir>,
    http: Arc<MockHttp>,
    outbox: Arc<Outbox>,
    /// The tenant file's capability sections: databases only (outbound HTTP is mocked).
    sections: Sections,
    /// Built as the service builds a tenant's (`Backends::for_tenant`), again whenever
    /// what they follow changes (store, limits, databases), with the mock HTTP and the
    /// outbox in place of the network and the service's messaging.
    backends: Backends,
}

impl Sandbox {
    /// Runs the plugin as `plugin` of `tenant` (default `test` / `plugin`).
    pub fn identity(&mut self, tenant: &str, plugin: &str) -> &mut Self {
        self.tenant = tenant.into();
        self.name = plugin.into();
        self.rewarm();
        self
    }

    pub fn config(&mut self, key: &str, value: &str) -> &mut Self {
        self.config.insert(key.into(), value.into());
        self
    }

    pub fn secret(&mut self, name: &str, value: &str) -> &mut Self {
        self.secrets.insert(name.into(), Secret::new(value));
        self
    }

    /// Replaces the default grant of everything.
    pub fn grants(&mut self, grants: Grants) -> &mut Self {
        self.grants = grants;
        self
    }

    /// Keeps instances warm between this sandbox's invocations, as
    /// `[plugins.NAME.warm]` does for a tenant's plugin.
    pub fn warm(&mut self, settings: WarmSettings) -> &mut Self {
        if let Some(old) = self.warm.replace(WarmPool::new(settings)) {
            old.close();
        }
        self
    }

    /// Another plugin or tenant, or other limits, start from fresh instances, as a
    /// tenant file's change does in the service.
    fn rewarm(&mut self) {
        if let Some(settings) = self.warm.as_ref().map(|p| p.settings()) {
            self.warm(settings);
        }
    }

    /// The warm instances' pool, if [`Sandbox::warm`] asked for one.
    pub fn warm_pool(&self) -> Option<&Arc<WarmPool>> {
        self.warm.as_ref()
    }

    pub fn limits(&mut self, limits: Limits) -> &mut Self {
        self.concurrency = Arc::new(Semaphore::new(limits.concurrency as usize));
        self.limits = limits;
        self.rewarm();
        self.rebuild_storage();
        self
    }

    /// Queues a scripted HTTP answer.
    pub fn mock(&mut self, mock: MockResponse) -> &mut Self {
        self.http.add(mock);
        self
    }

    /// Adds a database the plugin may query as `name`, with the default pool size and
    /// statement timeout. Relative SQLite paths live in the sandbox's own directory.
    pub fn database(&mut self, name: &str, url: &str) -> anyhow::Result<&mut Self> {
        self.database_config(name, DatabaseConfig::new(url))
    }

    /// Adds a database with its full configuration.
    pub fn database_config(
        &mut self,
        name: &str,
        config: DatabaseConfig,
    ) -> anyhow::Result<&mut Self> {
        self.sections.databases.insert(name.to_string(), config);
        self.rebuild()?;
        Ok(self)
    }

    /// Runs a statement on one of the sandbox's databases (seeding it), with `params`
    /// bound in order.
    pub async fn sql_execute(
        &self,
        database: &str,
        statement: &str,
        params: &[Value],
    ) -> anyhow::Result<u64> {
        Ok(self
            .backends
            .sql
            .execute(database, statement, sql_params(params)?)
            .await?)
    }

    /// A query's rows on one of the sandbox's databases, each value as JSON (integers and
    /// reals as numbers, blobs as arrays of bytes).
    pub async fn sql_query(
        &self,
        database: &str,
        statement: &str,
        params: &[Value],
    ) -> anyhow::Result<Vec<Vec<Value>>> {
        use crate::capabilities::sql::SqlValue;
        let rows = self
            .backends
            .sql
            .query(database, statement, sql_params(params)?)
            .await?;
        Ok(rows
            .rows
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .map(|v| match v {
                        SqlValue::Null => Value::Null,
                        SqlValue::Boolean(b) => Value::Bool(b),
                        SqlValue::Integer(i) => Value::from(i),
                        SqlValue::Real(f) => Value::from(f),
                        SqlValue::Text(t) => Value::String(t),
                        SqlValue::Blob(b) => Value::from(b),
                    })
                    .collect()
            })
            .collect())
    }

    /// Uses `store` instead of the sandbox's own, e.g. to share one between tenants.
    pub fn store(&mut self, store: Store) -> &mut Self {
        self.host.store = store;
        self.rebuild_storage();
        self
    }

    fn built(mut self) -> anyhow::Result<Self> {
        self.rebuild()?;
        Ok(self)
    }

    /// Builds the backends afresh, database pools included.
    fn rebuild(&mut self) -> anyhow::Result<()> {
        let mut backends = Backends::for_tenant(&self.host, &self.tenant_resources())
            .map_err(anyhow::Error::msg)?;
        backends.http = self.http.clone();
        self.backends = backends;
        Ok(())
    }

    /// Rebuilds kv and blobs alone, which follow the store and the limits; the database
    /// pools stay, with what in-memory databases hold.
    fn rebuild_storage(&mut self) {
        let tenant = self.tenant_resources();
        let kv = crate::capabilities::kv::backend(&self.host, &tenant);
        let blob = crate::capabilities::blob::backend(&self.host, &tenant);
        (self.backends.kv, self.backends.blob) = (kv, blob);
    }

    fn tenant_resources(&self) -> TenantResources<'_> {
        TenantResources {
            name: &self.tenant,
            limits: &self.limits,
            sections: &self.sections,
            runtime: Some(self.outbox.clone()),
        }
    }

    fn namespace(&self, bucket: &str) -> anyhow::Result<Namespace> {
        Ok(Namespace::resolve(
            &self.tenant,
            &self.name,
            &self.grants,
            bucket,
        )?)
    }

    /// Writes a kv item as the plugin would see it.
    pub async fn seed_kv(
        &self,
        bucket: &str,
        key: &str,
        value: impl AsRef<[u8]>,
    ) -> anyhow::Result<()> {
        let ns = self.namespace(bucket)?;
        self.host.store.set(&ns, key, value.as_ref(), None).await?;
        Ok(())
    }

    /// A kv item's value as the plugin would see it.
    pub async fn kv_get(&self, bucket: &str, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let ns = self.namespace(bucket)?;
        Ok(self.host.store.get(&ns, key).await?.map(|e| e.value))
    }

    fn blob_bucket(&self, bucket: &str) -> BlobBucket {
        BlobBucket {
            tenant: self.tenant.clone(),
            bucket: bucket.to_string(),
        }
    }

    /// Stores a blob as the plugin would see it.
    pub async fn seed_blob(
        &self,
        bucket: &str,
        key: &str,
        data: impl AsRef<[u8]>,
    ) -> anyhow::Result<()> {
        // Through the tenant's backend, so the blob quota counts it as it counts the
        // plugin's own writes.
        Ok(self
            .backends
            .blob
            .put(&self.blob_bucket(bucket), key, data.as_ref())
            .await?)
    }

    /// A blob as the plugin would see it.
    pub async fn blob_get(&self, bucket: &str, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(self
            .backends
            .blob
            .get(&self.blob_bucket(bucket), key)
            .await?)
    }

    /// Runs one event (its JSON form) and returns the result's JSON form.
    pub async fn invoke(&self, event: Value) -> Result<Value, InvokeError> {
        let event = EventJson::from_value(event)?.into_event();
        let response = self
            .engine
            .invoke(&self.plugin, self.context(), &event)
            .await?;
        response_to_json(&response)
    }

    /// What an invocation in this sandbox runs with: for [`Engine::call`], which calls a
    /// handler of a trigger kind outside the contract.
    pub fn context(&self) -> Arc<PluginContext> {
        let mut ctx = PluginContext::new(
            self.tenant.clone(),
            self.name.clone(),
            self.limits.clone(),
            Capabilities {
                config: self.config.clone(),
                secrets: self.secrets.clone(),
                grants: self.grants.clone(),
                backends: self.backends.clone(),
            },
        );
        ctx.concurrency = self.concurrency.clone();
        ctx.wasi = self.wasi.clone();
        ctx.warm = self.warm.clone();
        Arc::new(ctx)
    }

    /// HTTP requests the plugin made, in order.
    pub fn http_calls(&self) -> Vec<RecordedRequest> {
        self.http.calls()
    }

    pub fn notifications(&self) -> Vec<Value> {
        self.outbox.notifications()
    }

    pub fn messages(&self) -> Vec<Value> {
        self.outbox.messages()
    }

    pub fn events(&self) -> Vec<Value> {
        self.outbox.events()
    }

    pub fn executions(&self) -> Vec<Value> {
        self.outbox.executions()
    }

    /// Workflow task answers the plugin sent (`Outbox::task_answers`).
    pub fn task_answers(&self) -> Vec<Value> {
        self.outbox.task_answers()
    }
}
