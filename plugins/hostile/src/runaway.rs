//! Guests that end or run in ways the host must name correctly: `exit` (calls
//! `std::process::exit(status)` without answering), `stack-smash` (recursion with
//! large frames, overflowing Rust's own stack in linear memory long before the wasm
//! stack) and `burn` (spins `ms` milliseconds of wall time, then answers).

use orquesta_sdk::{Failure, Response};
use serde_json::{Value, json};

pub fn attack(name: &str, input: &Value) -> Result<Response, Failure> {
    match name {
        "exit" => std::process::exit(input["status"].as_i64().unwrap_or(0) as i32),
        "stack-smash" => Ok(Response::json(&json!(smash(std::hint::black_box(
            u64::MAX
        ))))),
        _ => {
            let ms = input["ms"].as_u64().unwrap_or(10);
            let started = std::time::Instant::now();
            let mut n: u64 = 0;
            while started.elapsed() < std::time::Duration::from_millis(ms) {
                for _ in 0..10_000 {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            Ok(Response::json(&json!({ "burned_ms": ms })))
        }
    }
}

/// 32 KiB of locals per frame: Rust's 1 MiB shadow stack is gone after 32 frames,
/// while the wasm stack holds thousands.
#[inline(never)]
fn smash(n: u64) -> u64 {
    let mut frame = [0u8; 32 << 10];
    frame[(n % 1024) as usize] = n as u8;
    std::hint::black_box(&mut frame);
    if n == 0 {
        return 0;
    }
    smash(n - 1).wrapping_add(frame[(n % 7) as usize] as u64)
}
