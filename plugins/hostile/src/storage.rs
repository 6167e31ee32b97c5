//! Attacks on the tenant's storage quotas: fill kv, blobs or a queue until the host
//! refuses, and free room again. Each answers how far it got and the error that
//! stopped it (`null` when none did), so tests see where the limit held.

use orquesta_sdk::{Failure, HostError, Response, blob, kv, messaging};
use serde_json::{Value, json};

/// `kv-fill` (`count` keys `prefix0`... of `bytes` bytes), `kv-drop` (`key`),
/// `blob-fill` (`count` objects `prefix0`... of `bytes` bytes in `bucket`), `blob-drop`
/// (`key` in `bucket`), `queue-fill` (`count` messages to `queue`).
pub fn attack(name: &str, input: &Value) -> Result<Response, Failure> {
    let count = input["count"].as_u64().unwrap_or(1);
    let bytes = input["bytes"].as_u64().unwrap_or(1) as usize;
    let prefix = input["prefix"].as_str().unwrap_or("item");
    let bucket = input["bucket"].as_str().unwrap_or("files");
    let key = input["key"].as_str().unwrap_or_default();
    let data = vec![b'x'; bytes];
    let done = |n: u64, error: Option<HostError>| {
        Ok(Response::json(&json!({
            "done": n,
            "error": error.map(|e| format!("{e:?}")),
        })))
    };
    let fill = |write: &dyn Fn(u64) -> Result<(), HostError>| {
        for i in 0..count {
            if let Err(e) = write(i) {
                return done(i, Some(e));
            }
        }
        done(count, None)
    };
    match name {
        "kv-fill" => {
            fill(&|i| kv::set("default", &format!("{prefix}{i}"), &data, None).map(|_| ()))
        }
        "kv-drop" => Ok(Response::json(
            &json!({ "deleted": kv::delete("default", key)? }),
        )),
        "blob-fill" => fill(&|i| blob::put(bucket, &format!("{prefix}{i}"), &data)),
        "blob-drop" => Ok(Response::json(
            &json!({ "deleted": blob::delete(bucket, key)? }),
        )),
        "queue-fill" => {
            let queue = input["queue"].as_str().unwrap_or("jobs");
            let options = messaging::SendOptions {
                delay_seconds: 0,
                attributes: Vec::new(),
                group_id: None,
                deduplication_id: None,
            };
            fill(&|i| messaging::send(queue, &json!({ "n": i }).to_string(), &options).map(|_| ()))
        }
        other => Err(Failure::new(
            "UnknownAttack",
            format!("no attack named {other:?}"),
        )),
    }
}
