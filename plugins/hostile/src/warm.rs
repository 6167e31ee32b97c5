//! What a warm instance carries between invocations (`[plugins.NAME.warm]`), and must
//! carry only within its own plugin of its own tenant: `remember` keeps `value` in a
//! global and answers what the global held before and how many invocations this
//! instance has served; `leak` keeps `megabytes` more in a global each time, so the
//! memory limit is reached across invocations rather than within one.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use orquesta_sdk::{Failure, Response};
use serde_json::{Value, json};

static USES: AtomicU64 = AtomicU64::new(0);
static REMEMBERED: Mutex<Option<String>> = Mutex::new(None);
static LEAKED: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

pub fn handles(name: &str) -> bool {
    matches!(name, "remember" | "leak")
}

pub fn attack(name: &str, input: &Value) -> Result<Response, Failure> {
    let uses = USES.fetch_add(1, Ordering::Relaxed) + 1;
    let mut leaked = LEAKED.lock().unwrap_or_else(|e| e.into_inner());
    if name == "leak" {
        let mb = input["megabytes"].as_u64().unwrap_or(8) as usize;
        // Touched, so the pages are really the instance's.
        leaked.push(vec![1; mb << 20]);
    }
    let held: usize = leaked.iter().map(Vec::len).sum();
    let value = input["value"].as_str().map(str::to_string);
    let mut remembered = REMEMBERED.lock().unwrap_or_else(|e| e.into_inner());
    let previous = if value.is_some() {
        std::mem::replace(&mut *remembered, value)
    } else {
        remembered.clone()
    };
    Ok(Response::json(&json!({
        "uses": uses,
        "previous": previous,
        "leaked_mb": held >> 20,
    })))
}
