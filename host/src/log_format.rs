//! The human log format's fields and message, written with their control characters
//! escaped, so that no value (a plugin's log line, a failure's cause, a URL a client
//! sent) can end its line and forge another, or drive the reader's terminal. The JSON
//! format needs nothing more: JSON strings escape control characters already.

use std::fmt::{self, Write as _};

use tracing::field::Field;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::{Writer, debug_fn};

use crate::text::EscapeWriter;

/// Fields as the default formatter writes them (`name=value`, the message bare), each
/// value escaped.
pub fn human_fields() -> impl for<'w> FormatFields<'w> + Send + Sync + 'static {
    debug_fn(field).delimited(" ")
}

fn field(writer: &mut Writer<'_>, field: &Field, value: &dyn fmt::Debug) -> fmt::Result {
    // Field names are identifiers in the host's code.
    if field.name() != "message" {
        write!(writer, "{}=", field.name())?;
    }
    write!(EscapeWriter(writer), "{value:?}")
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    #[test]
    fn a_value_cannot_end_its_line() {
        let out = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(out.clone())
            .with_ansi(false)
            .fmt_fields(human_fields())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let cause = "bad\nERROR forged line\r\x1b[2J";
            tracing::warn!(tenant = "acme", %cause, debug = ?"a\nb", "message\nINFO forged too");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            text.contains(
                "message\\nINFO forged too tenant=\"acme\" cause=bad\\nERROR forged line\\r\\u{1b}[2J debug=\"a\\nb\""
            ),
            "{text}"
        );
    }
}
