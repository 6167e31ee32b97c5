//! The guest side of the orquesta contract: WIT bindings for `orquesta:plugin` plus the
//! few helpers every plugin wants. A plugin implements [`Handler`] and calls
//! `orquesta_sdk::export!(MyPlugin);`.

wit_bindgen::generate!({
    path: "../../wit",
    world: "plugin",
    pub_export_macro: true,
    default_bindings_module: "orquesta_sdk",
    generate_all,
});

pub use exports::orquesta::plugin::handler::{
    BusEvent, Event, Guest as Handler, HttpRequest, HttpResponse, Identity, Notification,
    QueueMessage, Response, ScheduledTick, TaskInput,
};
pub use orquesta::plugin::types::{Failure, HostError};
pub use orquesta::plugin::{blob, config, http, kv, log, messaging, notify, sql};

impl Failure {
    /// A typed failure: `error` is what workflow `ErrorEquals` matches.
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        Failure {
            error: error.into(),
            cause: cause.into(),
        }
    }
}

impl From<HostError> for Failure {
    fn from(e: HostError) -> Self {
        let (name, cause) = match e {
            HostError::Denied(c) => ("Denied", c),
            HostError::Unavailable(c) => ("Unavailable", c),
            HostError::Invalid(c) => ("Invalid", c),
            HostError::Timeout(c) => ("Timeout", c),
            HostError::Failed(c) => ("HostFailed", c),
        };
        Failure::new(name, cause)
    }
}

impl Response {
    /// A JSON result (a task's output).
    pub fn json(value: &serde_json::Value) -> Self {
        Response::Json(value.to_string())
    }

    /// An HTTP answer with a JSON body.
    pub fn http_json(status: u16, value: &serde_json::Value) -> Self {
        Response::Http(HttpResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: value.to_string().into_bytes(),
        })
    }
}

/// Parse a JSON document handed over by the host (task input, message body).
pub fn parse_json(text: &str) -> Result<serde_json::Value, Failure> {
    serde_json::from_str(text).map_err(|e| Failure::new("InvalidJson", e.to_string()))
}

/// Look a name up in name/value pairs (headers are matched case-insensitively by callers
/// that need it).
pub fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Log at info level with no fields.
pub fn info(message: &str) {
    log::log(log::Level::Info, message, &[]);
}
