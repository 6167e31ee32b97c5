//! `bench`: the benchmarks' trivial plugin (docs/BENCHMARKS.md). Over HTTP it greets
//! `?name=` exactly as the `wasi:http` reference component in `bench/wasi-hello` does;
//! as a workflow task it answers its input with the state's name added; as a queue
//! consumer it completes every message. No capability is used, so what is measured is
//! the host around it.

use orquesta_sdk::{Event, Failure, Handler, HttpResponse, Response, field};
use serde_json::Value;

struct Bench;

impl Handler for Bench {
    fn handle(event: Event) -> Result<Response, Failure> {
        Ok(match event {
            Event::Http(req) => {
                // Formatted by hand, byte for byte as the wasi:http twin does.
                let name = field(&req.query, "name").unwrap_or("world");
                Response::Http(HttpResponse {
                    status: 200,
                    headers: vec![("content-type".into(), "application/json".into())],
                    body: format!("{{\"message\":\"Hello, {name}!\"}}").into_bytes(),
                })
            }
            Event::Task(task) => {
                let mut input: Value = serde_json::from_str(&task.input).unwrap_or(Value::Null);
                if let Value::Object(map) = &mut input {
                    map.insert("last".into(), Value::String(task.state));
                }
                Response::json(&input)
            }
            Event::Queue(_) => Response::Batch(Vec::new()),
            _ => Response::None,
        })
    }
}

orquesta_sdk::export!(Bench);
