//! A plugin's result, checked before the host converts it: counted at what it costs once
//! converted (a batch's ids as the JSON the host makes of them, every header), refused
//! past `limits.max_output_kb`, and refused when no HTTP server could send it. A
//! plugin's failure counts the same way and is cut to a cloud function's error sizes.

use super::limits::capability::{FAILURE_CAUSE_BYTES, FAILURE_ERROR_BYTES, HTTP_RESPONSE_HEADERS};
use super::{InvokeError, Limits};
use crate::bindings::handler::Response;

/// `{"batchItemFailures":[]}`, the JSON a batch becomes (see `event::response_to_json`).
const BATCH_ENVELOPE: usize = 24;
/// `{"itemIdentifier":}` and a comma, around each id's JSON string.
const BATCH_ITEM: usize = 20;
/// `:` and `,` between a header's name and value strings in JSON; on the wire `: ` and
/// CRLF cost as much.
const HEADER_ITEM: usize = 2;
/// `{"error":,"cause":}` around the two strings of a failure.
const FAILURE_ENVELOPE: usize = 19;

/// `Ok` when `response` can be converted and sent within `limits`.
pub fn check(response: &Response, limits: &Limits) -> Result<(), InvokeError> {
    if let Response::Http(r) = response {
        // 1xx are interim answers (101 switches protocols): an HTTP server cannot end
        // an exchange with them.
        if !(200..=599).contains(&r.status) {
            return Err(InvokeError::InvalidOutput(format!(
                "HTTP status {} is not a final status (200-599)",
                r.status
            )));
        }
        if r.headers.len() > HTTP_RESPONSE_HEADERS {
            return Err(InvokeError::InvalidOutput(format!(
                "the HTTP response has {} headers, over the {HTTP_RESPONSE_HEADERS} allowed",
                r.headers.len()
            )));
        }
    }
    let (size, limit) = (cost(response), limits.max_output_bytes());
    if size > limit {
        return Err(InvokeError::OutputTooLarge { size, limit });
    }
    Ok(())
}

/// Bytes of `response` once converted: an HTTP body as sent, each header with its
/// quoting and separators, a JSON document as is, a batch as its JSON.
pub fn cost(response: &Response) -> usize {
    match response {
        Response::Http(r) => {
            r.body.len()
                + r.headers
                    .iter()
                    .map(|(k, v)| json_string_len(k) + json_string_len(v) + HEADER_ITEM)
                    .sum::<usize>()
        }
        Response::Json(text) => text.len(),
        Response::Batch(ids) => {
            BATCH_ENVELOPE
                + ids
                    .iter()
                    .map(|id| json_string_len(id) + BATCH_ITEM)
                    .sum::<usize>()
        }
        Response::None => 0,
    }
}

/// The plugin's failure as an error: past the output cap as a whole it is
/// `output-too-large`; otherwise its name and cause are cut to their caps.
pub fn failure(mut error: String, mut cause: String, limits: &Limits) -> InvokeError {
    let size = FAILURE_ENVELOPE + json_string_len(&error) + json_string_len(&cause);
    let limit = limits.max_output_bytes();
    if size > limit {
        return InvokeError::OutputTooLarge { size, limit };
    }
    // A name is matched (`ErrorEquals`), not read: cut bare. A cause says it was cut.
    crate::text::cut(&mut error, FAILURE_ERROR_BYTES);
    crate::text::truncate(&mut cause, FAILURE_CAUSE_BYTES);
    InvokeError::Plugin { error, cause }
}

/// Length of `text` as a JSON string: quotes, and escapes as serde_json writes them.
fn json_string_len(text: &str) -> usize {
    2 + text
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..0x20 => 6,
            _ => 1,
        })
        .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::handler::HttpResponse;

    fn limits(kb: u32) -> Limits {
        Limits {
            max_output_kb: kb,
            ..Limits::default()
        }
    }

    #[test]
    fn costs_are_the_converted_sizes() {
        for text in ["", "plain", "q\"b\\", "nl\n\x01\x7fé"] {
            assert_eq!(
                json_string_len(text),
                serde_json::to_string(text).unwrap().len(),
                "{text:?}"
            );
        }
        let batch = Response::Batch(vec![String::new(), "a\"b".into(), "id-3".into()]);
        let json = crate::event::response_to_json(&batch).unwrap().to_string();
        assert_eq!(cost(&batch), json.len() + 1, "one comma past the last item");
        let http = Response::Http(HttpResponse {
            status: 200,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: b"body".to_vec(),
        });
        assert_eq!(cost(&http), 4 + r#""content-type":"text/plain","#.len());
    }

    #[test]
    fn empty_ids_count_against_the_cap() {
        let batch = Response::Batch(vec![String::new(); 300_000]);
        let err = check(&batch, &limits(6 * 1024)).unwrap_err();
        assert_eq!(err.name(), "output-too-large", "{err}");
        assert!(check(&Response::Batch(vec![String::new(); 1000]), &limits(64)).is_ok());
    }

    #[test]
    fn statuses_and_header_counts_no_server_can_send_are_invalid() {
        let http = |status, headers: usize| {
            Response::Http(HttpResponse {
                status,
                headers: vec![("x".into(), "y".into()); headers],
                body: Vec::new(),
            })
        };
        for status in [0, 100, 101, 199, 600, 1000] {
            let err = check(&http(status, 0), &limits(64)).unwrap_err();
            assert_eq!(err.name(), "invalid-output", "{status}");
            assert!(err.cause().contains(&status.to_string()), "{err}");
        }
        for status in [200, 204, 299, 404, 599] {
            assert!(check(&http(status, HTTP_RESPONSE_HEADERS), &limits(64)).is_ok());
        }
        let err = check(&http(200, HTTP_RESPONSE_HEADERS + 1), &limits(64)).unwrap_err();
        assert!(err.cause().contains("101 headers"), "{err}");
    }

    #[test]
    fn failures_count_against_the_cap_and_are_cut_to_theirs() {
        let err = failure("E".repeat(10 << 20), "c".into(), &limits(6 * 1024));
        assert_eq!(err.name(), "output-too-large");
        let err = failure("N".repeat(100_000), "c".repeat(1 << 20), &limits(6 * 1024));
        let InvokeError::Plugin { error, cause } = &err else {
            panic!("{err}")
        };
        assert_eq!(error.len(), FAILURE_ERROR_BYTES);
        assert!(cause.len() <= FAILURE_CAUSE_BYTES, "{}", cause.len());
        assert!(cause.ends_with("[truncated: 1048576 bytes in all]"));
        let small = failure("Named".into(), "why".into(), &limits(1));
        assert_eq!(
            small.to_json(),
            serde_json::json!({"error": "Named", "cause": "why"})
        );
    }
}
