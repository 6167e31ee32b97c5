//! The plugin's settings and the Databricks REST client.

use orquesta_sdk::{config, http};
use serde_json::Value;

use crate::error::HttpError;

pub(crate) fn setting(name: &str) -> Result<String, HttpError> {
    config::get(name).ok_or_else(|| {
        HttpError::new(
            500,
            "ConfigError",
            format!("{name} is not configured for the ipp plugin"),
        )
    })
}

pub(crate) fn number_setting(name: &str) -> Result<u64, HttpError> {
    setting(name)?.trim().parse().map_err(|_| {
        HttpError::new(
            500,
            "ConfigError",
            format!("{name} must be a Databricks job id"),
        )
    })
}

pub(crate) fn factor() -> Result<f64, HttpError> {
    let text = config::get("factor").unwrap_or_else(|| "1.15".into());
    match text.trim().parse::<f64>() {
        Ok(f) if f.is_finite() && f > 0.0 => Ok(f),
        _ => Err(HttpError::new(
            500,
            "ConfigError",
            format!("factor {text:?} must be a positive number"),
        )),
    }
}

pub(crate) fn bucket() -> String {
    config::get("bucket").unwrap_or_else(|| "ipp".into())
}

/// Calls the workspace with the token; an error status becomes a `DatabricksError` with
/// Databricks' own error code and message.
pub(crate) fn databricks(
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<Value, HttpError> {
    let base = setting("databricks_url")?;
    let token = config::secret("databricks_token").ok_or_else(|| {
        HttpError::new(500, "ConfigError", "secret databricks_token is not granted")
    })?;
    let mut headers = vec![("authorization".into(), format!("Bearer {token}"))];
    if body.is_some() {
        headers.push(("content-type".into(), "application/json".into()));
    }
    let answer = http::send(&http::Request {
        method: method.into(),
        url: format!("{}{path}", base.trim_end_matches('/')),
        headers,
        body: body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
        timeout_ms: Some(30_000),
    })?;
    let doc: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    if answer.status >= 400 {
        let code = doc["error_code"].as_str().unwrap_or("UNKNOWN");
        let message = doc["message"].as_str().unwrap_or_default();
        return Err(HttpError::new(
            502,
            "DatabricksError",
            format!("Databricks answered {} {code}: {message}", answer.status),
        ));
    }
    if doc.is_null() {
        return Err(HttpError::new(
            502,
            "DatabricksError",
            "Databricks answered with a body that is not JSON",
        ));
    }
    Ok(doc)
}

pub(crate) fn run_id_of(answer: &Value) -> Result<u64, HttpError> {
    answer["run_id"]
        .as_u64()
        .ok_or_else(|| HttpError::new(502, "DatabricksError", "run-now answered without a run_id"))
}
