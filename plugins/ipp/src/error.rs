//! The errors the IPP endpoints answer with: a status, an error name and a message,
//! from the plugin's own checks or from a failed host call.

use orquesta_sdk::Failure;
use serde_json::{Value, json};

/// An answer the caller gets as JSON with its status.
pub(crate) type Reply = Result<(u16, Value), HttpError>;

#[derive(Debug)]
pub(crate) struct HttpError {
    pub(crate) status: u16,
    pub(crate) error: &'static str,
    pub(crate) message: String,
    pub(crate) extra: Value,
}

impl HttpError {
    pub(crate) fn new(status: u16, error: &'static str, message: impl Into<String>) -> Self {
        HttpError {
            status,
            error,
            message: message.into(),
            extra: Value::Null,
        }
    }

    pub(crate) fn body(&self) -> Value {
        let mut body = json!({ "error": self.error, "message": self.message });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), self.extra.as_object()) {
            body.extend(extra.clone());
        }
        body
    }
}

/// Host-call failures: upstream trouble is a 502, the rest a 500, both with the cause.
impl From<Failure> for HttpError {
    fn from(f: Failure) -> Self {
        let status = if f.error == "DatabricksError" {
            502
        } else {
            500
        };
        HttpError {
            status,
            error: if status == 502 {
                "DatabricksError"
            } else {
                "InternalError"
            },
            message: format!("{}: {}", f.error, f.cause),
            extra: Value::Null,
        }
    }
}

impl From<orquesta_sdk::HostError> for HttpError {
    fn from(e: orquesta_sdk::HostError) -> Self {
        Failure::from(e).into()
    }
}
