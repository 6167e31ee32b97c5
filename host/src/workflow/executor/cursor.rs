//! Where an execution is, as committed with each transition.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::store::now_ms;

/// Where an execution is: the state, its raw input, and how far the state got.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Cursor {
    pub(super) state: String,
    pub(super) input: Value,
    pub(super) entered_at: i64,
    /// Retries used, per entry of the state's `Retry`.
    #[serde(default)]
    pub(super) retries: Vec<u32>,
    /// The variables this execution assigned (a branch's or Map item's own: those of
    /// the scopes around it are in its context object, read-only).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub(super) vars: serde_json::Map<String, Value>,
    #[serde(flatten)]
    pub(super) phase: Phase,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub(super) enum Phase {
    Enter,
    /// The task's plugin was called and no result was committed.
    Task,
    /// A callback task (`.waitForTaskToken`) waits for the answer to its token (kept
    /// as its hash): its plugin is being called (`invoked` false) or was called.
    Callback {
        token: String,
        invoked: bool,
        /// When `TimeoutSeconds` runs out.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_at: Option<i64>,
        /// `HeartbeatSeconds`, in ms: the longest time between heartbeats.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        heartbeat_ms: Option<i64>,
    },
    Wait {
        until: i64,
        output: Value,
    },
    Children {
        generation: i64,
        total: i64,
        spawned: i64,
        /// A Map's limits as read when it started (its `...Path` fields read the input
        /// then); absent in cursors written before they were kept.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limits: Option<MapLimits>,
        /// A Map run with a `ResultWriter`: its id, which names its results' folder.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        map_run: Option<String>,
    },
}

/// How many of a Map's items run at once (0: no limit) and how many may fail.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(super) struct MapLimits {
    pub(super) max_concurrency: u64,
    #[serde(default)]
    pub(super) tolerated_count: Option<u64>,
    #[serde(default)]
    pub(super) tolerated_percentage: Option<f64>,
}

impl Cursor {
    pub(super) fn enter(state: &str, input: Value) -> Self {
        Cursor {
            state: state.to_string(),
            input,
            entered_at: now_ms(),
            retries: Vec::new(),
            vars: serde_json::Map::new(),
            phase: Phase::Enter,
        }
    }
}
