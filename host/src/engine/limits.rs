//! Every limit the host enforces, declared once with its default and the reason for it.

use serde::{Deserialize, Serialize};

/// Limits a tenant's config may set for its plugins (`[limits]` in the tenant file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Linear memory one instance may grow to. 64 MiB runs every demo flow and keeps a
    /// thousand loaded tenants affordable; a flow that needs more says so.
    pub memory_mb: u32,
    /// Wall-clock time for one invocation, host calls included: the epoch deadline stops
    /// guest code, an outer timeout stops a slow host call.
    pub timeout_ms: u64,
    /// Invocations of one tenant running at once; more wait their turn, so one tenant
    /// cannot take every instance slot.
    pub concurrency: u32,
    /// Size of a plugin's response. Lambda caps synchronous payloads at 6 MB; larger data
    /// belongs in blobs.
    pub max_output_kb: u32,
    /// Log lines one plugin may write a second, through `log` or its stdout and stderr
    /// together, with a burst of as many at once. Lines over it are dropped and counted:
    /// logs are the host's disk and the operator's attention, shared by every tenant. A
    /// plugin logging a line per request at 1,000 requests a second fits.
    pub log_lines_per_s: u32,
    /// Megabytes of blobs the tenant keeps, all buckets together (plugins and the admin
    /// API). A plugin wrote 961 MB in 9 s before there was a quota; 1 GiB holds the
    /// Siesa ETL's 50,000-product payloads many times over.
    pub blob_mb: u32,
    /// kv items the tenant's plugins keep, private and shared buckets together (the
    /// host's usage-plan counters are not counted). Flows keep state and indexes in kv,
    /// documents in blobs: 100,000 items is far above any demo flow.
    pub kv_items: u32,
    /// Megabytes of kv keys and values together: 100,000 items of 2.5 KB; a single value
    /// may take 1 MiB.
    pub kv_mb: u32,
    /// Messages waiting in one queue (visible, delayed or in flight) before sends are
    /// refused: a backlog far behind its consumer is a fault to see, not to store
    /// without end. SQS bounds in-flight messages at 120,000.
    pub queue_depth: u32,
    /// A topic publication, queue message or bus event, body and attributes together:
    /// 256 KiB as SNS, SQS and EventBridge allow; a tenant may set less. Pending
    /// messages wait in the store, and larger data belongs in blobs.
    pub max_message_kb: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_mb: 64,
            timeout_ms: 10_000,
            concurrency: 32,
            max_output_kb: 6 * 1024,
            log_lines_per_s: 1000,
            blob_mb: 1024,
            kv_items: 100_000,
            kv_mb: 256,
            queue_depth: 100_000,
            max_message_kb: 256,
        }
    }
}

/// Ceilings no tenant config can exceed.
pub mod ceiling {
    /// A pool slot's hard memory cap; tenants choose up to this.
    pub const MEMORY_MB: u32 = 1024;
    /// Lambda's longest timeout; longer work belongs in a workflow.
    pub const TIMEOUT_MS: u64 = 15 * 60 * 1000;
    /// Far above what 2 cores can use; guards against typos.
    pub const CONCURRENCY: u32 = 10_000;
    /// Responses past 64 MiB belong in blobs.
    pub const MAX_OUTPUT_KB: u32 = 64 * 1024;
    /// A JWT's `[jwt] clock_skew_seconds`: five minutes, the largest skew common
    /// verifiers allow (Microsoft.IdentityModel's default); more would stretch every
    /// token's life.
    pub const JWT_CLOCK_SKEW_SECONDS: u64 = 300;
    /// Logs past this are a data stream; they belong in a queue or a blob.
    pub const LOG_LINES_PER_S: u32 = 100_000;
    /// Storage quotas: typo guards (1 TiB of blobs or kv, 100 million items, 10 million
    /// waiting messages); an operator sizes the disk or database for what they allow.
    pub const BLOB_MB: u32 = 1 << 20;
    pub const KV_ITEMS: u32 = 100_000_000;
    pub const KV_MB: u32 = 1 << 20;
    pub const QUEUE_DEPTH: u32 = 10_000_000;
    /// The cloud's message size (SNS, SQS, EventBridge): no tenant sends more.
    pub const MAX_MESSAGE_KB: u32 = 256;
    /// `[plugins.NAME.warm]`: idle instances one plugin keeps (each holds a pool slot
    /// and its memory; the host-wide cap is `EngineLimits::warm_slots`), invocations
    /// one instance serves, and seconds it waits for one (an hour: Lambda keeps an
    /// idle environment for minutes).
    pub const WARM_INSTANCES: u32 = 64;
    pub const WARM_MAX_USES: u32 = 100_000_000;
    pub const WARM_IDLE_S: u32 = 3600;
}

/// A limit outside the host's ceiling.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("limits.{name} = {value} is outside {min}..={max}")]
pub struct LimitError {
    pub name: &'static str,
    pub value: u64,
    pub min: u64,
    pub max: u64,
}

impl Limits {
    /// Checks the values against the host's ceilings.
    pub fn validate(&self) -> Result<(), LimitError> {
        let checks = [
            (
                "memory_mb",
                self.memory_mb as u64,
                1,
                ceiling::MEMORY_MB as u64,
            ),
            ("timeout_ms", self.timeout_ms, 1, ceiling::TIMEOUT_MS),
            (
                "concurrency",
                self.concurrency as u64,
                1,
                ceiling::CONCURRENCY as u64,
            ),
            (
                "max_output_kb",
                self.max_output_kb as u64,
                1,
                ceiling::MAX_OUTPUT_KB as u64,
            ),
            (
                "log_lines_per_s",
                self.log_lines_per_s as u64,
                1,
                ceiling::LOG_LINES_PER_S as u64,
            ),
            ("blob_mb", self.blob_mb.into(), 1, ceiling::BLOB_MB.into()),
            (
                "kv_items",
                self.kv_items.into(),
                1,
                ceiling::KV_ITEMS.into(),
            ),
            ("kv_mb", self.kv_mb.into(), 1, ceiling::KV_MB.into()),
            (
                "queue_depth",
                self.queue_depth.into(),
                1,
                ceiling::QUEUE_DEPTH.into(),
            ),
            (
                "max_message_kb",
                self.max_message_kb as u64,
                1,
                ceiling::MAX_MESSAGE_KB as u64,
            ),
        ];
        for (name, value, min, max) in checks {
            if value < min || value > max {
                return Err(LimitError {
                    name,
                    value,
                    min,
                    max,
                });
            }
        }
        Ok(())
    }

    pub fn memory_bytes(&self) -> usize {
        (self.memory_mb as usize) << 20
    }

    pub fn max_output_bytes(&self) -> usize {
        (self.max_output_kb as usize) << 10
    }

    pub fn max_message_bytes(&self) -> usize {
        (self.max_message_kb as usize) << 10
    }
}

/// Host-wide settings of the engine. wasmtime fixes these per `Engine`, so they cannot
/// vary by tenant.
#[derive(Debug, Clone)]
pub struct EngineLimits {
    /// Instances alive at once, across all tenants: the pooling allocator's slot count.
    pub instance_slots: u32,
    /// Wasm stack per invocation. wasmtime's default (512 KiB) runs deep recursive parsers;
    /// it must stay below the async stack (2 MiB).
    pub max_wasm_stack: usize,
    /// How often the epoch advances: the granularity of time limits, and how long guest
    /// code runs between yields. 1 ms: a neighbour waits at most that long for a thread
    /// a spinning guest holds (10 ms let one stall a neighbour's request by 10 ms per
    /// wake-up); the ticker's 1,000 wake-ups a second cost well under 1% of a core.
    pub epoch_tick_ms: u64,
    /// Epoch ticks an invocation's code runs through on the thread that took its
    /// trigger before moving to the guest threads (2: between 1 and 2 ms of running).
    /// Most plugins answer in microseconds and never move (a move is a hand-off between
    /// threads, about as long as an invocation). Ticks, not wall time: an invocation
    /// delayed by the host has not run long.
    pub inline_ticks: u32,
    /// Threads that run guest code past its inline time; 0 is one per core but one (at
    /// least one), so that one core is always left to the threads that serve requests.
    /// Guests take turns on them tenant by tenant, so a tenant gets a fair share whatever
    /// its concurrency.
    pub guest_threads: usize,
    /// The guest threads' nice value (Linux), against the I/O threads' 0: when guests
    /// keep every core busy the kernel must still run request handling at once. 19:
    /// measured beside 32 spinning guests on 2 cores, nice 10 left a neighbour's p50 at
    /// 0.6 ms (0.02 ms alone) and its throughput at 5%, since the kernel lets a running
    /// thread of lower priority finish its slice; 19 kept p50 and most of the
    /// throughput. The cost: code that runs past its inline time yields to every other
    /// busy thread on the host (a database on the same machine included).
    pub guest_nice: i32,
    /// stdout/stderr kept per invocation, for logs and panic messages.
    pub captured_output_bytes: usize,
    /// Bytes of each slot's linear memory and tables reset in place (not returned to
    /// the kernel) when a slot is reused: a plugin's small heap then costs no page
    /// faults on the next invocation. Bounds the resident memory of idle slots.
    pub keep_resident_bytes: usize,
    /// Per component: core instances, linear memories and tables one instance of a
    /// component may hold; a component past any is refused when it loads. A Rust
    /// wasip2 plugin has 3, 1 and 2; componentize-py and componentize-js components
    /// (12-18 MB) link a dozen or more core modules, several with a memory and a table
    /// of their own. wasmCloud caps core instances at 30. Unlimited, one component
    /// declaring 512 memories took every memory slot of the pool.
    pub max_core_instances_per_component: u32,
    pub max_memories_per_component: u32,
    pub max_tables_per_component: u32,
    /// Reset kept-resident memory with Linux's `PAGEMAP_SCAN` (only the pages actually
    /// touched). Used only where the kernel has it and no swap is on: wasmtime's reset
    /// misses swapped-out pages (an open upstream report).
    pub pagemap_scan: bool,
    /// Pool slots idle warm instances may hold, all tenants together (64: a quarter of
    /// the default pool). An idle instance keeps its slot, so without a cap tenants'
    /// warm plugins could leave fresh invocations waiting; past it the least recently
    /// used idle instance gives its slot up.
    pub warm_slots: u32,
}

impl Default for EngineLimits {
    fn default() -> Self {
        EngineLimits {
            instance_slots: 256,
            max_wasm_stack: 512 << 10,
            epoch_tick_ms: 1,
            inline_ticks: 2,
            guest_threads: 0,
            guest_nice: 19,
            captured_output_bytes: 64 << 10,
            keep_resident_bytes: 1 << 20,
            max_core_instances_per_component: 32,
            max_memories_per_component: 16,
            max_tables_per_component: 16,
            pagemap_scan: true,
            warm_slots: 64,
        }
    }
}

/// Linear memories in the pool per instance slot. Memories are the pool's one costly
/// resource (each reserves 4 GiB of address space, so 1,024 take 4 TiB); core instances
/// and tables are pooled at each slot's per-component maximum, so they never run out
/// first. An invocation takes one slot per this many memories of its component, so the
/// pool never fails for want of a memory: callers wait instead.
pub const MEMORIES_PER_SLOT: u32 = 4;

/// Sizes the capability calls accept, whatever the tenant.
pub mod capability {
    /// kv keys are identifiers, not documents (DynamoDB allows 2 KiB partition keys).
    pub const KV_KEY_BYTES: usize = 1024;
    /// kv values: DynamoDB's item limit is 400 KB; 1 MiB leaves room and larger belongs
    /// in blobs.
    pub const KV_VALUE_BYTES: usize = 1 << 20;
    /// One listing page.
    pub const KV_PAGE: u32 = 1000;
    /// Bucket, topic and queue names.
    pub const NAME_BYTES: usize = 128;
    /// Blob keys, like S3's.
    pub const BLOB_KEY_BYTES: usize = 1024;
    /// One blob: the Siesa ETL keeps 50,000-product payloads in blobs, and the object must
    /// still fit a plugin's memory.
    pub const BLOB_OBJECT_BYTES: usize = 64 << 20;
    /// One blob listing page.
    pub const BLOB_PAGE: u32 = 1000;
    /// Connections per tenant database: a few serve a tenant's concurrency (32 by
    /// default) since statements are short; the ceiling keeps one tenant from taking a
    /// server's `max_connections`.
    pub const SQL_DEFAULT_CONNECTIONS: u32 = 5;
    pub const SQL_MAX_CONNECTIONS: u32 = 20;
    /// A statement's time: OLTP statements take milliseconds; the ceiling stays inside
    /// the default request timeout (29 s).
    pub const SQL_DEFAULT_TIMEOUT_MS: u64 = 5_000;
    pub const SQL_MAX_TIMEOUT_MS: u64 = 25_000;
    /// Rows one query may return to a plugin; more belong in pages (`LIMIT`/`OFFSET`).
    pub const SQL_MAX_ROWS: usize = 10_000;
    /// Bytes of one query's rows, counted as they stream in (the host's copy of each
    /// value, text and blobs whole). A result must fit a plugin's default 64 MiB memory
    /// with room for the plugin's own copy; more belongs in pages.
    pub const SQL_MAX_RESULT_BYTES: usize = 16 << 20;
    /// The largest string, blob or stored row a tenant's SQLite statement may make
    /// (`SQLITE_LIMIT_LENGTH`; SQLite's default is 1 GB), as large as a kv value: larger
    /// belongs in blobs. SQLite builds a whole result row before the host sees it (up to
    /// 2,000 values), so this, not the result cap, bounds what one row can cost.
    pub const SQL_MAX_VALUE_BYTES: usize = 1 << 20;
    /// A database's `init` script: schemas and seed data, not migrations of big tables.
    pub const SQL_INIT_TIMEOUT_S: u64 = 30;
    /// A tenant SQLite connection not used for this long is closed (its thread, file
    /// and page cache freed) and opened again when next needed: sqlx's pool default,
    /// which tenant databases had before their connections were held.
    pub const SQL_IDLE_CLOSE: std::time::Duration = std::time::Duration::from_secs(600);

    /// Workflow task answers (SendTaskSuccess / Failure / Heartbeat) one invocation may
    /// send: each is a write transaction on the store, so a plugin heartbeating in a loop
    /// for its whole time limit must not turn into millions of writes. A worker answering
    /// a queue batch (at most `QUEUE_MAX_BATCH` messages) stays well within it.
    pub const TASK_ANSWERS_PER_INVOCATION: u32 = 1_000;

    /// Queue settings' ceilings, as SQS has them: visibility 12 hours, delay 15
    /// minutes, retention 14 days; batches up to 100 keep one invocation's input small.
    pub const QUEUE_MAX_VISIBILITY_S: u32 = 12 * 3600;
    pub const QUEUE_MAX_DELAY_S: u32 = 900;
    pub const QUEUE_MAX_RETENTION_S: u32 = 14 * 24 * 3600;
    pub const QUEUE_MAX_BATCH: u32 = 100;
    /// Batches of one queue in flight per host: each holds an instance while it runs,
    /// and the tenant's `limits.concurrency` bounds them all together anyway.
    pub const QUEUE_MAX_CONCURRENCY: u32 = 32;
    /// Invocations in one chain of messages, events, deliveries and executions the host
    /// made on plugins' behalf (an HTTP request, a tick or an admin call starts a chain),
    /// as Lambda's recursive loop detection allows: past it the next invocation is not
    /// made, so a plugin feeding its own topic, queue or workflow stops.
    pub const MAX_CHAIN_DEPTH: u32 = 16;
    /// Topic and bus deliveries (to plugins and webhooks) in flight per host. Pending
    /// ones wait in the store; each in flight holds its message (at most 256 KiB) in
    /// memory. A tenant's own share is its `limits.concurrency`.
    pub const DELIVERIES_IN_FLIGHT: usize = 64;

    /// A plugin's failure: its `error` name and its `cause`, at Step Functions' sizes
    /// for a task's error and cause (256 and 32,768 characters). The failure as a whole
    /// also counts against `limits.max_output_kb`.
    pub const FAILURE_ERROR_BYTES: usize = 256;
    pub const FAILURE_CAUSE_BYTES: usize = 32 << 10;
    /// Headers of a plugin's HTTP answer: as many as an HTTP client accepts (hyper's and
    /// so reqwest's default is 100); the `http` crate's map cannot hold more than 32,768.
    pub const HTTP_RESPONSE_HEADERS: usize = 100;
    /// One log line of a plugin (its message and fields): longer lines are cut, with a
    /// marker. Docker's log drivers split lines at 16 KiB.
    pub const LOG_LINE_BYTES: usize = 16 << 10;
    /// How often a plugin whose log lines are being dropped gets a line saying how many.
    pub const LOG_DROP_SUMMARY_S: u64 = 10;
    /// A plugin's failure names as metric label values: at most this long, of
    /// `A-Z a-z 0-9 _ . : -`, and this many distinct names per plugin of a tenant (the
    /// rest count as `other`): every label value is a series kept for the life of the
    /// process and served by `/metrics`.
    pub const METRIC_LABEL_BYTES: usize = 64;
    pub const METRIC_LABEL_VALUES: usize = 16;
    /// Distinct HTTP statuses counted per plugin of a tenant; the rest count as `other`.
    pub const METRIC_STATUS_VALUES: usize = 32;

    pub fn sql_default_connections() -> u32 {
        SQL_DEFAULT_CONNECTIONS
    }

    pub fn sql_default_timeout_ms() -> u64 {
        SQL_DEFAULT_TIMEOUT_MS
    }
}
