//! The typed errors of loading and invoking a plugin.

use thiserror::Error;

/// Why a plugin file was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LoadError {
    #[error("not-wasm: the file is not WebAssembly (no `\\0asm` header)")]
    NotWasm,
    #[error(
        "core-module: the file is a core wasm module, not a component; build it with `--target wasm32-wasip2`"
    )]
    CoreModule,
    #[error("invalid-component: {0}")]
    Invalid(String),
    #[error("wrong-world: the component does not fit the orquesta:plugin contract: {0}")]
    WrongWorld(String),
}

/// Why an invocation failed. [`InvokeError::name`] is what workflow `ErrorEquals` and
/// fixtures match.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum InvokeError {
    /// The plugin's own typed failure.
    #[error("{error}: {cause}")]
    Plugin { error: String, cause: String },
    #[error("timeout: the invocation ran past its {limit_ms} ms limit")]
    Timeout { limit_ms: u64 },
    #[error("memory-limit: the plugin tried to grow its memory past {limit_mb} MiB")]
    MemoryLimit { limit_mb: u32 },
    /// The wasm call stack, or the guest's own stack in linear memory (see `classify`).
    #[error("stack-overflow: the plugin exhausted its stack")]
    StackOverflow,
    /// The guest called `exit` (WASI `cli/exit`) instead of returning a result.
    #[error("exited: the plugin exited with status {status} without answering")]
    Exited { status: i32 },
    #[error("trap: {0}")]
    Trap(String),
    #[error("output-too-large: the response is {size} bytes, over the {limit}-byte limit")]
    OutputTooLarge { size: usize, limit: usize },
    #[error("invalid-output: {0}")]
    InvalidOutput(String),
    #[error("invalid-event: {0}")]
    InvalidEvent(String),
    /// The plugin exports no handler for the event's trigger kind (the interface named).
    #[error("unsupported-trigger: the plugin does not export `{0}`")]
    UnsupportedTrigger(String),
    #[error("instantiation: {0}")]
    Instantiation(String),
}

impl InvokeError {
    /// The error's machine name.
    pub fn name(&self) -> &str {
        match self {
            InvokeError::Plugin { error, .. } => error,
            InvokeError::Timeout { .. } => "timeout",
            InvokeError::MemoryLimit { .. } => "memory-limit",
            InvokeError::StackOverflow => "stack-overflow",
            InvokeError::Exited { .. } => "exited",
            InvokeError::Trap(_) => "trap",
            InvokeError::OutputTooLarge { .. } => "output-too-large",
            InvokeError::InvalidOutput(_) => "invalid-output",
            InvokeError::InvalidEvent(_) => "invalid-event",
            InvokeError::UnsupportedTrigger(_) => "unsupported-trigger",
            InvokeError::Instantiation(_) => "instantiation",
        }
    }

    /// The human explanation, without the name.
    pub fn cause(&self) -> String {
        match self {
            InvokeError::Plugin { cause, .. } => cause.clone(),
            other => {
                let text = other.to_string();
                let prefix = format!("{}: ", other.name());
                text.strip_prefix(&prefix).unwrap_or(&text).to_string()
            }
        }
    }

    /// `{"error": name, "cause": cause}`, the form fixtures and workflows see.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.name(), "cause": self.cause() })
    }
}
