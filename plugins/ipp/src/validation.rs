//! Which counters (`mostradores`) a request names, and which of them the
//! configuration table in Databricks knows.

use serde_json::{Value, json};

use crate::MAX_MOSTRADORES;
use crate::databricks::{databricks, setting};
use crate::error::HttpError;

/// The counters named in a request body; empty means the automatic mode.
pub(crate) fn requested(body: &[u8]) -> Result<Vec<String>, HttpError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let doc: Value = serde_json::from_slice(body)
        .map_err(|e| HttpError::new(400, "ValidationError", format!("body is not JSON: {e}")))?;
    let list = match doc.get("mostradores") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) if list.is_empty() => {
            return Err(HttpError::new(
                400,
                "ValidationError",
                "mostradores is empty: omit it to validate every active counter",
            ));
        }
        Some(Value::Array(list)) => list,
        Some(_) => {
            return Err(HttpError::new(
                400,
                "ValidationError",
                "mostradores must be an array of counter numbers",
            ));
        }
    };
    if list.len() > MAX_MOSTRADORES {
        return Err(HttpError::new(
            400,
            "ValidationError",
            format!("at most {MAX_MOSTRADORES} mostradores per request"),
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for item in list {
        let text = match item {
            Value::String(s) => s.trim().to_string(),
            Value::Number(n) if n.is_u64() => n.to_string(),
            other => other.to_string(),
        };
        if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(HttpError::new(
                400,
                "ValidationError",
                format!("mostrador {item} is not a counter number"),
            ));
        }
        if !out.contains(&text) {
            out.push(text);
        }
    }
    Ok(out)
}

pub(crate) struct Validation {
    pub(crate) automatic: bool,
    pub(crate) valid: Vec<String>,
    pub(crate) invalid: Vec<String>,
}

impl Validation {
    pub(crate) fn to_json(&self) -> Value {
        let total = self.valid.len() + self.invalid.len();
        let (status, message) = match (self.valid.len(), self.invalid.len()) {
            (0, _) => ("none_valid", "no counter has a configuration".to_string()),
            (v, 0) => (
                "all_valid",
                format!("all {v} counters have a configuration"),
            ),
            (v, _) => (
                "partial_valid",
                format!("{v} of {total} counters have a configuration"),
            ),
        };
        json!({
            "status": status,
            "message": message,
            "mode": if self.automatic { "automatic" } else { "manual" },
            "validClients": self.valid,
            "invalidClients": self.invalid,
            "total": total,
            "validated": self.valid.len(),
        })
    }
}

pub(crate) fn validate(wanted: &[String]) -> Result<Validation, HttpError> {
    let table = setting("config_table")?;
    let (statement, parameters) = if wanted.is_empty() {
        (
            format!("SELECT DISTINCT mostrador FROM {table} WHERE mostrador IS NOT NULL"),
            vec![],
        )
    } else {
        // Bound parameters, never spliced into the SQL text.
        let names: Vec<String> = (0..wanted.len()).map(|i| format!(":m{i}")).collect();
        let params = wanted
            .iter()
            .enumerate()
            .map(|(i, m)| json!({ "name": format!("m{i}"), "value": m, "type": "STRING" }))
            .collect();
        (
            format!(
                "SELECT mostrador FROM {table} WHERE mostrador IN ({})",
                names.join(", ")
            ),
            params,
        )
    };
    let answer = databricks(
        "POST",
        "/api/2.0/sql/statements",
        Some(json!({
            "warehouse_id": setting("warehouse_id")?,
            "statement": statement,
            "parameters": parameters,
            "wait_timeout": "30s",
            "format": "JSON_ARRAY",
        })),
    )?;
    let state = answer["status"]["state"].as_str().unwrap_or("UNKNOWN");
    if state != "SUCCEEDED" {
        let why = answer["status"]["error"]["message"]
            .as_str()
            .unwrap_or("no reason given");
        return Err(HttpError::new(
            502,
            "DatabricksError",
            format!("the validation query ended {state}: {why}"),
        ));
    }
    let found: Vec<String> = answer["result"]["data_array"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|r| match &r[0] {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    if wanted.is_empty() {
        return Ok(Validation {
            automatic: true,
            valid: found,
            invalid: vec![],
        });
    }
    let (valid, invalid) = wanted.iter().cloned().partition(|m| found.contains(m));
    Ok(Validation {
        automatic: false,
        valid,
        invalid,
    })
}
