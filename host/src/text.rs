//! Text a plugin or a client chose, bounded and escaped before the host logs it, puts it
//! in a metric label or returns it: a newline or a terminal escape in such text must not
//! forge a log line, and its size must not become the host's.

use std::fmt::{self, Write};

/// `text` with every character that could forge a line or drive a terminal escaped:
/// control characters (C0, DEL, C1: newlines, carriage returns, ANSI escapes), Unicode
/// line and paragraph separators, and the bidirectional controls that reorder what a
/// reader sees. Everything else, backslashes included, is written as is.
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        EscapeWriter(f).write_str(self.0)
    }
}

/// A `fmt::Write` that escapes what passes through it as [`Escaped`] does.
pub struct EscapeWriter<'a, W: Write + ?Sized>(pub &'a mut W);

impl<W: Write + ?Sized> Write for EscapeWriter<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Runs of harmless text are written whole.
        let mut start = 0;
        for (i, c) in s.char_indices() {
            if !needs_escape(c) {
                continue;
            }
            self.0.write_str(&s[start..i])?;
            match c {
                '\n' => self.0.write_str("\\n")?,
                '\r' => self.0.write_str("\\r")?,
                '\t' => self.0.write_str("\\t")?,
                c => write!(self.0, "\\u{{{:x}}}", c as u32)?,
            }
            start = i + c.len_utf8();
        }
        self.0.write_str(&s[start..])
    }
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{61c}'
        )
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// `text` escaped as [`Escaped`] writes it, borrowed when nothing needed escaping.
pub fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().any(needs_escape) {
        Escaped(text).to_string().into()
    } else {
        text.into()
    }
}

/// Cuts `text` to at most `max` bytes (on a character boundary), ending it with a marker
/// that says so and how long it was.
pub fn truncate(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let marker = format!(" [truncated: {} bytes in all]", text.len());
    let keep = text.floor_char_boundary(max.saturating_sub(marker.len()));
    text.truncate(keep);
    text.push_str(&marker);
}

/// `text` escaped as [`Escaped`] writes it and cut to at most `max` bytes with a marker
/// (see [`truncate`]; a marker longer than `max` is kept whole); only the first `max`
/// bytes of `text` are read.
pub fn escape_within(text: &str, max: usize) -> String {
    let mut line = escape(&text[..text.floor_char_boundary(max)]).into_owned();
    if text.len() > max || line.len() > max {
        let marker = format!(" [truncated: {} bytes in all]", text.len());
        let keep = line.floor_char_boundary(max.saturating_sub(marker.len()));
        line.truncate(keep);
        line.push_str(&marker);
    }
    line
}

/// Cuts `text` to at most `max` bytes, on a character boundary, with no marker: for
/// names, which are matched rather than read.
pub fn cut(text: &mut String, max: usize) {
    if text.len() > max {
        let keep = text.floor_char_boundary(max);
        text.truncate(keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_reordering_characters_are_escaped() {
        let forged = "ok\nINFO forged\r\x1b[2J\x07\u{85}\u{2028}\u{202e}é\\n";
        let escaped = escape(forged);
        assert_eq!(
            escaped,
            "ok\\nINFO forged\\r\\u{1b}[2J\\u{7}\\u{85}\\u{2028}\\u{202e}é\\n"
        );
        assert!(matches!(
            escape("plain é text"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn truncation_keeps_characters_whole_and_says_so() {
        let mut text = "é".repeat(100);
        truncate(&mut text, 64);
        assert!(text.len() <= 64, "{}", text.len());
        assert!(text.ends_with(" [truncated: 200 bytes in all]"), "{text}");
        let mut short = "short".to_string();
        truncate(&mut short, 64);
        assert_eq!(short, "short");
        let line = escape_within(&format!("a\n{}", "x".repeat(1 << 20)), 64);
        assert!(line.len() <= 64, "{line}");
        assert!(line.starts_with("a\\nxxx"), "{line}");
        assert!(
            line.ends_with(" [truncated: 1048578 bytes in all]"),
            "{line}"
        );
        assert_eq!(escape_within("\n\n", 3), " [truncated: 2 bytes in all]");
        let mut name = "ñame".to_string();
        cut(&mut name, 2);
        assert_eq!(name, "ñ");
    }
}
