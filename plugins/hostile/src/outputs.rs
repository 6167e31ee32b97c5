//! Attacks through what the host converts or buffers for a plugin: results, failures and
//! log lines (issue 20, items 6, 9, 10 and 11).

use orquesta_sdk::{Failure, HttpResponse, Response, log};
use serde_json::Value;

/// Whether `name` is one of this module's attacks.
pub fn handles(name: &str) -> bool {
    matches!(
        name,
        "batch" | "failure" | "log-line" | "log-flood" | "log-forge" | "http-response"
    )
}

pub fn attack(name: &str, input: &Value) -> Result<Response, Failure> {
    let number = |key: &str, default: u64| input[key].as_u64().unwrap_or(default) as usize;
    match name {
        // `count` ids of `id_bytes` bytes each: empty ids cost the guest 8 bytes apiece.
        "batch" => Ok(Response::Batch(vec![
            "i".repeat(number("id_bytes", 0));
            number("count", 3_000_000)
        ])),
        // A failure whose name is `tag` followed by `error_bytes` bytes.
        "failure" => {
            let tag = input["tag"].as_str().unwrap_or("E");
            Err(Failure::new(
                format!("{tag}{}", "E".repeat(number("error_bytes", 10 << 20))),
                "c".repeat(number("cause_bytes", 16)),
            ))
        }
        "log-line" => {
            let message = format!("BIGLINE{}", "x".repeat(number("bytes", 50 << 20)));
            log::log(log::Level::Info, &message, &[]);
            Ok(Response::None)
        }
        // `lines` log lines as fast as the host takes them, through the log capability
        // or (`"stream": "stdout"`) on stdout.
        "log-flood" => {
            let lines = number("lines", 200_000);
            if input["stream"] == "stdout" {
                for i in 0..lines {
                    println!("FLOOD {i}");
                }
            } else {
                for i in 0..lines {
                    log::log(log::Level::Info, &format!("FLOOD {i}"), &[]);
                }
            }
            Ok(Response::None)
        }
        // Lines that try to pass as other lines: newlines, a carriage return, ANSI escapes.
        "log-forge" => {
            log::log(
                log::Level::Info,
                "honest\nFORGED-MESSAGE tenant=victim\x1b[2J\rFORGED-CR",
                &[(
                    "key\nFORGED-KEY".into(),
                    "value\r\nFORGED-VALUE\x1b[38;5;196m".into(),
                )],
            );
            println!("stdout\rFORGED-STDOUT\x1b[2K\x07");
            Ok(Response::None)
        }
        // Whatever status and headers the input asks for.
        "http-response" => {
            let headers = input["headers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|pair| {
                    let text = |i: usize| pair[i].as_str().unwrap_or_default().to_string();
                    (text(0), text(1))
                })
                .collect();
            Ok(Response::Http(HttpResponse {
                status: number("status", 200) as u16,
                headers,
                body: input["body"].as_str().unwrap_or("body").as_bytes().to_vec(),
            }))
        }
        other => Err(Failure::new(
            "UnknownAttack",
            format!("no attack named {other:?}"),
        )),
    }
}
