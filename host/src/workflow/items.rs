//! A distributed Map's items decoded from an object's bytes: a JSON array, JSON Lines,
//! CSV rows (each an object of strings under the header, as in the cloud) or a Parquet
//! file's rows (each an object of its typed columns, [`parquet_rows`]). Bounded:
//! at most `take` items are kept and reading stops there; an object with more than
//! `bound` items (when `take` does not stop it first), a line or row over
//! [`MAX_ROW_BYTES`] or a header over [`MAX_CSV_HEADER_BYTES`] is refused, so no input
//! makes the host hold more than the object and its bounded items.

use std::cell::Cell;

use serde::de::{Deserializer as _, IgnoredAny, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::distributed::{CsvHeader, InputType};

mod parquet_rows;

/// The longest JSON line or CSV row: a child's input is at most 256 KiB.
pub const MAX_ROW_BYTES: usize = 256 * 1024;
/// The longest CSV header, as in the cloud (10 KiB).
pub const MAX_CSV_HEADER_BYTES: usize = 10 * 1024;

/// Why an object's items cannot be read: `States.ItemReaderFailed`'s cause.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ItemsError(pub String);

fn fail(what: impl Into<String>) -> ItemsError {
    ItemsError(what.into())
}

/// How many items to read: `take` (from `MaxItems`; `None`: all), and past how many
/// the read is refused.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub take: Option<usize>,
    pub bound: usize,
}

impl Bounds {
    /// Whether `MaxItems` are read: reading stops.
    fn taken(&self, items: &[Value]) -> bool {
        self.take.is_some_and(|t| items.len() >= t)
    }

    /// Refuses one more item past the bound.
    fn room(&self, items: &[Value]) -> Result<(), ItemsError> {
        if items.len() >= self.bound {
            return Err(too_many(self.bound));
        }
        Ok(())
    }
}

fn too_many(bound: usize) -> ItemsError {
    fail(format!(
        "the object has more than {bound} items, the most a Map reads; set ReaderConfig.MaxItems or split the object"
    ))
}

/// The items of an object of type `input`.
pub fn decode(data: &[u8], input: &InputType, bounds: Bounds) -> Result<Vec<Value>, ItemsError> {
    match input {
        InputType::Json => json_array(data, bounds),
        InputType::Jsonl => json_lines(data, bounds),
        InputType::Csv { header, delimiter } => csv(data, header, *delimiter, bounds),
        InputType::Parquet => parquet_rows::rows(data, bounds),
    }
}

/// A JSON array, read item by item: past `take` the rest is skipped unallocated, and
/// past `bound` reading stops.
fn json_array(data: &[u8], bounds: Bounds) -> Result<Vec<Value>, ItemsError> {
    struct Items<'b> {
        bounds: Bounds,
        over: &'b Cell<bool>,
    }
    impl<'de> Visitor<'de> for Items<'_> {
        type Value = Vec<Value>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON array")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Value>, A::Error> {
            let mut items = Vec::new();
            loop {
                if self.bounds.taken(&items) {
                    while seq.next_element::<IgnoredAny>()?.is_some() {}
                    return Ok(items);
                }
                match seq.next_element::<Value>()? {
                    Some(v) => {
                        if let Err(e) = self.bounds.room(&items) {
                            self.over.set(true);
                            return Err(<A::Error as serde::de::Error>::custom(e));
                        }
                        items.push(v);
                    }
                    None => return Ok(items),
                }
            }
        }
    }
    let over = Cell::new(false);
    let mut de = serde_json::Deserializer::from_slice(data);
    let read = (&mut de)
        .deserialize_seq(Items {
            bounds,
            over: &over,
        })
        .and_then(|items| de.end().map(|()| items));
    read.map_err(|e| {
        if over.get() {
            too_many(bounds.bound)
        } else {
            fail(format!("the object is not a JSON array: {e}"))
        }
    })
}

/// One JSON value per line; blank lines are skipped.
fn json_lines(data: &[u8], bounds: Bounds) -> Result<Vec<Value>, ItemsError> {
    let mut items = Vec::new();
    for (n, line) in data.split(|b| *b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if bounds.taken(&items) {
            break;
        }
        bounds.room(&items)?;
        if line.len() > MAX_ROW_BYTES {
            return Err(fail(format!(
                "line {} is {} bytes, over the {MAX_ROW_BYTES}-byte limit of an item",
                n + 1,
                line.len()
            )));
        }
        items.push(
            serde_json::from_slice(line)
                .map_err(|e| fail(format!("line {} is not JSON: {e}", n + 1)))?,
        );
    }
    Ok(items)
}

/// CSV (RFC 4180): fields split by `delimiter`, `"` quotes a field (`""` inside is a
/// quote, and a quoted field may span lines); each row an object of strings under the
/// header. A row with another number of fields than the header is refused.
fn csv(
    data: &[u8],
    header: &CsvHeader,
    delimiter: u8,
    bounds: Bounds,
) -> Result<Vec<Value>, ItemsError> {
    let text = std::str::from_utf8(data).map_err(|e| fail(format!("the CSV is not UTF-8: {e}")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rows = Rows {
        text,
        at: 0,
        delimiter,
        line: 1,
    };
    let names = match header {
        CsvHeader::Given(names) => names.clone(),
        CsvHeader::FirstRow => {
            let start = rows.at;
            let names = rows
                .record()?
                .ok_or_else(|| fail("the CSV has no header row"))?;
            if rows.at - start > MAX_CSV_HEADER_BYTES {
                return Err(fail(format!(
                    "the CSV header is over {MAX_CSV_HEADER_BYTES} bytes"
                )));
            }
            names
        }
    };
    let mut items = Vec::new();
    loop {
        if bounds.taken(&items) {
            break;
        }
        let line = rows.line;
        let Some(fields) = rows.record()? else {
            break;
        };
        if fields.len() == 1 && fields[0].is_empty() {
            continue; // a blank line
        }
        bounds.room(&items)?;
        if fields.len() != names.len() {
            return Err(fail(format!(
                "CSV row at line {line} has {} fields, the header {}",
                fields.len(),
                names.len()
            )));
        }
        let row: Map<String, Value> = names
            .iter()
            .cloned()
            .zip(fields.into_iter().map(Value::String))
            .collect();
        items.push(Value::Object(row));
    }
    Ok(items)
}

/// CSV records, one at a time. The delimiter, quote and line ends are ASCII, so every
/// byte position cut at is a character boundary.
struct Rows<'a> {
    text: &'a str,
    at: usize,
    delimiter: u8,
    /// The line the next record starts on (for messages).
    line: usize,
}

impl Rows<'_> {
    fn record(&mut self) -> Result<Option<Vec<String>>, ItemsError> {
        let bytes = self.text.as_bytes();
        if self.at >= bytes.len() {
            return Ok(None);
        }
        let start = self.at;
        let first_line = self.line;
        let mut fields = Vec::new();
        loop {
            let mut field = String::new();
            if bytes.get(self.at) == Some(&b'"') {
                self.at += 1;
                loop {
                    let Some(q) = self.text[self.at..].find('"') else {
                        return Err(fail(format!(
                            "CSV row at line {first_line} has a quote that is never closed"
                        )));
                    };
                    let part = &self.text[self.at..self.at + q];
                    self.line += part.matches('\n').count();
                    field.push_str(part);
                    self.at += q + 1;
                    if bytes.get(self.at) == Some(&b'"') {
                        field.push('"');
                        self.at += 1;
                    } else {
                        break;
                    }
                    if self.at - start > MAX_ROW_BYTES {
                        break;
                    }
                }
            } else {
                let end = bytes[self.at..]
                    .iter()
                    .position(|b| *b == self.delimiter || *b == b'\n' || *b == b'\r')
                    .map_or(bytes.len(), |p| self.at + p);
                field.push_str(&self.text[self.at..end]);
                self.at = end;
            }
            if self.at - start > MAX_ROW_BYTES {
                return Err(fail(format!(
                    "CSV row at line {first_line} is over the {MAX_ROW_BYTES}-byte limit of an item"
                )));
            }
            fields.push(field);
            match bytes.get(self.at) {
                None => return Ok(Some(fields)),
                Some(b) if *b == self.delimiter => self.at += 1,
                Some(b'\n') => {
                    self.at += 1;
                    self.line += 1;
                    return Ok(Some(fields));
                }
                Some(b'\r') if bytes.get(self.at + 1) == Some(&b'\n') => {
                    self.at += 2;
                    self.line += 1;
                    return Ok(Some(fields));
                }
                Some(_) => {
                    return Err(fail(format!(
                        "CSV row at line {first_line}: a quoted field must end at a delimiter or the line's end"
                    )));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn all() -> Bounds {
        Bounds {
            take: None,
            bound: 1000,
        }
    }

    fn csv_first(delimiter: u8) -> InputType {
        InputType::Csv {
            header: CsvHeader::FirstRow,
            delimiter,
        }
    }

    #[test]
    fn each_format_gives_the_clouds_items() {
        let given = InputType::Csv {
            header: CsvHeader::Given(vec!["a".into(), "b".into()]),
            delimiter: b',',
        };
        let cases: Vec<(&str, InputType, &str, Value)> = vec![
            (
                "json array",
                InputType::Json,
                r#"[1, {"a": 2}, "x"]"#,
                json!([1, {"a": 2}, "x"]),
            ),
            ("empty array", InputType::Json, " [] ", json!([])),
            (
                "jsonl",
                InputType::Jsonl,
                "{\"a\":1}\n\n2\r\n\"x\"\n",
                json!([{"a": 1}, 2, "x"]),
            ),
            (
                "csv first row: values are strings",
                csv_first(b','),
                "id,qty\n1,20\n2,30\n",
                json!([{"id": "1", "qty": "20"}, {"id": "2", "qty": "30"}]),
            ),
            (
                "csv crlf, no final newline",
                csv_first(b','),
                "id,qty\r\n1,20\r\n2,30",
                json!([{"id": "1", "qty": "20"}, {"id": "2", "qty": "30"}]),
            ),
            (
                "csv quotes, delimiter and newline inside",
                csv_first(b','),
                "n,t\n\"a,b\",\"say \"\"hi\"\"\nthere\"\n",
                json!([{"n": "a,b", "t": "say \"hi\"\nthere"}]),
            ),
            (
                "csv given headers",
                given,
                "1,2\n3,4\n",
                json!([{"a": "1", "b": "2"}, {"a": "3", "b": "4"}]),
            ),
            (
                "csv pipe",
                csv_first(b'|'),
                "a|b\nx|y,z\n",
                json!([{"a": "x", "b": "y,z"}]),
            ),
            (
                "csv tab, empty fields",
                csv_first(b'\t'),
                "a\tb\n\t\n",
                json!([{"a": "", "b": ""}]),
            ),
            (
                "csv utf-8 and BOM",
                csv_first(b';'),
                "\u{feff}nombre;ciudad\nJosé;Bogotá\n",
                json!([{"nombre": "José", "ciudad": "Bogotá"}]),
            ),
        ];
        for (name, input, text, want) in cases {
            assert_eq!(
                decode(text.as_bytes(), &input, all()).map(Value::Array),
                Ok(want),
                "{name}"
            );
        }
    }

    #[test]
    fn malformed_objects_are_refused_with_the_place() {
        let cases: Vec<(&str, InputType, &[u8], &str)> = vec![
            (
                "json not an array",
                InputType::Json,
                br#"{"a": 1}"#,
                "not a JSON array",
            ),
            (
                "json truncated",
                InputType::Json,
                b"[1, 2",
                "not a JSON array",
            ),
            (
                "json trailing",
                InputType::Json,
                b"[1] [2]",
                "not a JSON array",
            ),
            (
                "jsonl bad line",
                InputType::Jsonl,
                b"1\n{oops\n",
                "line 2 is not JSON",
            ),
            (
                "csv short row",
                csv_first(b','),
                b"a,b\n1\n",
                "line 2 has 1 fields, the header 2",
            ),
            (
                "csv long row",
                csv_first(b','),
                b"a,b\n1,2,3\n",
                "has 3 fields",
            ),
            (
                "csv open quote",
                csv_first(b','),
                b"a\n\"x\n",
                "never closed",
            ),
            (
                "csv junk after quote",
                csv_first(b','),
                b"a\n\"x\"y\n",
                "must end at a delimiter",
            ),
            ("csv not utf-8", csv_first(b','), b"a\n\xff\n", "not UTF-8"),
            ("csv empty", csv_first(b','), b"", "no header row"),
        ];
        for (name, input, data, want) in cases {
            let err = decode(data, &input, all()).unwrap_err();
            assert!(err.0.contains(want), "{name}: {err}");
        }
    }

    #[test]
    fn max_items_stops_reading_and_the_bound_refuses_more() {
        let many = format!("[{}]", vec!["1"; 5000].join(","));
        let take = Bounds {
            take: Some(3),
            bound: 10,
        };
        assert_eq!(
            decode(many.as_bytes(), &InputType::Json, take)
                .unwrap()
                .len(),
            3
        );
        let bound = Bounds {
            take: None,
            bound: 10,
        };
        let err = decode(many.as_bytes(), &InputType::Json, bound).unwrap_err();
        assert!(err.0.contains("more than 10 items"), "{err}");
        // Millions of tiny CSV rows: refused at the bound, without reading them all.
        let rows = format!("a\n{}", "1\n".repeat(2_000_000));
        let err = decode(rows.as_bytes(), &csv_first(b','), bound).unwrap_err();
        assert!(err.0.contains("more than 10 items"), "{err}");
        let lines = "1\n".repeat(100);
        assert_eq!(
            decode(lines.as_bytes(), &InputType::Jsonl, take)
                .unwrap()
                .len(),
            3
        );
        // Exactly the bound is fine.
        let ten = "1\n".repeat(10);
        assert_eq!(
            decode(ten.as_bytes(), &InputType::Jsonl, bound)
                .unwrap()
                .len(),
            10
        );
    }

    #[test]
    fn huge_rows_lines_and_headers_are_refused() {
        let big = "x".repeat(MAX_ROW_BYTES + 1);
        let err = decode(format!("a\n{big}\n").as_bytes(), &csv_first(b','), all()).unwrap_err();
        assert!(err.0.contains("over the"), "{err}");
        let err = decode(
            format!("a\n\"{big}\"\n").as_bytes(),
            &csv_first(b','),
            all(),
        )
        .unwrap_err();
        assert!(err.0.contains("over the"), "{err}");
        let err = decode(format!("\"{big}\"\n").as_bytes(), &InputType::Jsonl, all()).unwrap_err();
        assert!(err.0.contains("over the"), "{err}");
        let header = vec!["col"; MAX_CSV_HEADER_BYTES / 3].join(",");
        let err = decode(format!("{header}\n").as_bytes(), &csv_first(b','), all()).unwrap_err();
        assert!(err.0.contains("header is over"), "{err}");
    }

    #[test]
    fn fifty_thousand_rows_of_csv_and_jsonl() {
        let bounds = Bounds {
            take: None,
            bound: 100_000,
        };
        let mut csv_text = String::from("sku,qty,warehouse\n");
        let mut jsonl = String::new();
        for i in 0..50_000 {
            csv_text.push_str(&format!("SKU-{i},{},BOG\n", i % 7));
            jsonl.push_str(&format!("{{\"sku\":\"SKU-{i}\",\"qty\":{}}}\n", i % 7));
        }
        let rows = decode(csv_text.as_bytes(), &csv_first(b','), bounds).unwrap();
        assert_eq!(rows.len(), 50_000);
        assert_eq!(
            rows[49_999],
            json!({"sku": "SKU-49999", "qty": "5", "warehouse": "BOG"})
        );
        let lines = decode(jsonl.as_bytes(), &InputType::Jsonl, bounds).unwrap();
        assert_eq!(lines.len(), 50_000);
        assert_eq!(lines[7], json!({"sku": "SKU-7", "qty": 0}));
    }
}
