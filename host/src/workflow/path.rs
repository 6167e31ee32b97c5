//! Paths in state machines. A *path* (`InputPath`, `ItemsPath`, a Choice `Variable`, a
//! `.$` field) is an RFC 9535 JSONPath, evaluated by `serde_json_path`; a path starting
//! with `$$` reads the context object instead of the state's input. A *reference path*
//! (`ResultPath`) names one place to write, so it is only fields and indexes.

use serde_json::{Map, Value};
use serde_json_path::JsonPath;

/// A parsed path: where it reads from, and the query.
#[derive(Debug, Clone)]
pub struct Path {
    text: String,
    context: bool,
    query: JsonPath,
    /// A definite path selects at most one node and yields it; others yield an array.
    definite: bool,
}

impl Path {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (context, query_text) = match text.strip_prefix("$$") {
            Some(rest) => (true, format!("${rest}")),
            None => (false, text.to_string()),
        };
        if !query_text.starts_with('$') {
            return Err(format!("path {text:?} must start with `$`"));
        }
        let query = JsonPath::parse(&query_text).map_err(|e| format!("path {text:?}: {e}"))?;
        Ok(Path {
            text: text.to_string(),
            context,
            definite: is_definite(&query_text),
            query,
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The value the path selects in `input` (or in `context` for `$$` paths); `None`
    /// when a definite path selects nothing.
    pub fn select(&self, input: &Value, context: &Value) -> Option<Value> {
        let doc = if self.context { context } else { input };
        let nodes = self.query.query(doc);
        if self.definite {
            nodes.at_most_one().ok().flatten().cloned()
        } else {
            Some(Value::Array(nodes.all().into_iter().cloned().collect()))
        }
    }
}

/// Without wildcards, descendants, filters, slices or unions, a path selects one node.
fn is_definite(query: &str) -> bool {
    let mut in_quote: Option<char> = None;
    let mut prev = '\0';
    for c in query.chars() {
        match in_quote {
            Some(q) if c == q && prev != '\\' => in_quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' => in_quote = Some(c),
                '*' | '?' | ':' | ',' => return false,
                '.' if prev == '.' => return false,
                _ => {}
            },
        }
        prev = c;
    }
    true
}

/// One step of a reference path.
#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    Field(String),
    Index(usize),
}

/// A reference path: `$`, `$.a.b`, `$['a b']`, `$.list[0]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferencePath {
    pub text: String,
    pub segments: Vec<Segment>,
}

impl ReferencePath {
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("reference path {text:?}: {why}");
        let mut rest = text
            .strip_prefix('$')
            .ok_or_else(|| bad("must start with `$`"))?;
        if rest.starts_with('$') {
            return Err(bad("cannot write to the context object"));
        }
        let mut segments = Vec::new();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('.') {
                let end = after.find(['.', '[']).unwrap_or(after.len());
                let name = &after[..end];
                if name.is_empty() || name == "*" {
                    return Err(bad("expected a field name after `.`"));
                }
                segments.push(Segment::Field(name.to_string()));
                rest = &after[end..];
            } else if let Some(after) = rest.strip_prefix('[') {
                let end = after.find(']').ok_or_else(|| bad("unclosed `[`"))?;
                let inner = after[..end].trim();
                let quoted = inner
                    .strip_prefix('\'')
                    .and_then(|s| s.strip_suffix('\''))
                    .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')));
                match quoted {
                    Some(name) => segments.push(Segment::Field(name.to_string())),
                    None => segments.push(Segment::Index(inner.parse().map_err(|_| {
                        bad("only field names and non-negative indexes are allowed")
                    })?)),
                }
                rest = &after[end + 1..];
            } else {
                return Err(bad("expected `.` or `[`"));
            }
        }
        Ok(ReferencePath {
            text: text.to_string(),
            segments,
        })
    }

    /// Writes `value` into `doc` at this path, creating objects on the way. Fails (the
    /// spec's `States.ResultPathMatchFailure`) where the document has a non-object in
    /// the way or an index past the end of an array.
    pub fn write(&self, doc: Value, value: Value) -> Result<Value, String> {
        write_at(doc, &self.segments, value).map_err(|why| {
            format!(
                "cannot write the result at {:?} in the state's input: {why}",
                self.text
            )
        })
    }
}

fn write_at(doc: Value, segments: &[Segment], value: Value) -> Result<Value, String> {
    let Some((first, rest)) = segments.split_first() else {
        return Ok(value);
    };
    match (first, doc) {
        (Segment::Field(name), Value::Object(mut map)) => {
            let child = map.remove(name).unwrap_or(Value::Object(Map::new()));
            let child = if rest.is_empty() {
                value
            } else {
                write_at(child, rest, value)?
            };
            map.insert(name.clone(), child);
            Ok(Value::Object(map))
        }
        (Segment::Index(i), Value::Array(mut items)) => {
            let slot = items
                .get_mut(*i)
                .ok_or_else(|| format!("index {i} is past the end of the array"))?;
            *slot = write_at(slot.take(), rest, value)?;
            Ok(Value::Array(items))
        }
        (Segment::Field(name), other) => Err(format!(
            "field `{name}` cannot be set on a {}",
            kind_of(&other)
        )),
        (Segment::Index(i), other) => Err(format!("[{i}] cannot be set on a {}", kind_of(&other))),
    }
}

pub fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn definite_paths_yield_the_node_and_others_an_array() {
        let doc = json!({"a": {"b": [1, 2, 3]}, "c": [{"n": 1}, {"n": 2}], "weird key": 5});
        let ctx = json!({"Execution": {"Id": "e1"}});
        let cases = [
            ("$", Some(doc.clone())),
            ("$.a.b", Some(json!([1, 2, 3]))),
            ("$.a.b[1]", Some(json!(2))),
            ("$['weird key']", Some(json!(5))),
            ("$.missing", None),
            ("$.c[*].n", Some(json!([1, 2]))),
            ("$..n", Some(json!([1, 2]))),
            ("$.c[?@.n > 1]", Some(json!([{"n": 2}]))),
            ("$.a.b[0:2]", Some(json!([1, 2]))),
            ("$$.Execution.Id", Some(json!("e1"))),
        ];
        for (text, want) in cases {
            let path = Path::parse(text).unwrap();
            assert_eq!(path.select(&doc, &ctx), want, "{text}");
        }
    }

    #[test]
    fn bad_paths_are_refused() {
        for text in ["a.b", "$.", "$[", "$.a[?]"] {
            assert!(Path::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn reference_paths_write_and_create_objects() {
        let doc = json!({"a": {"x": 1}, "list": [1, {"k": 0}]});
        let write =
            |path: &str, v: Value| ReferencePath::parse(path).unwrap().write(doc.clone(), v);
        assert_eq!(write("$", json!(7)).unwrap(), json!(7));
        assert_eq!(
            write("$.a.y", json!(2)).unwrap(),
            json!({"a": {"x": 1, "y": 2}, "list": [1, {"k": 0}]})
        );
        assert_eq!(
            write("$.new.deep", json!(true)).unwrap(),
            json!({"a": {"x": 1}, "new": {"deep": true}, "list": [1, {"k": 0}]})
        );
        assert_eq!(
            write("$.list[1]['k']", json!(9)).unwrap(),
            json!({"a": {"x": 1}, "list": [1, {"k": 9}]})
        );
        assert!(write("$.a.x.z", json!(1)).is_err());
        assert!(write("$.list[5]", json!(1)).is_err());
        for bad in ["a", "$$.x", "$.a[*]", "$..a", "$.a[-1]", "$.a[", "$x"] {
            assert!(ReferencePath::parse(bad).is_err(), "{bad}");
        }
    }
}
