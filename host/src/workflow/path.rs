//! Paths in state machines. A *path* (`InputPath`, `ItemsPath`, a Choice `Variable`, a
//! `.$` field) is an RFC 9535 JSONPath, evaluated by `serde_json_path`; a path starting
//! with `$$` reads the context object instead of the state's input. A *reference path*
//! (`ResultPath`) names one place to write, so it is only fields and indexes.
//!
//! The cloud's paths are Jayway JsonPath, which reads more than RFC 9535 does: any
//! characters after a dot up to the next `.` or `[` (`$.delivery-partner`), and both
//! `\'` and `\"` inside either kind of quotes. [`normalize`] rewrites such a path into
//! the RFC form that selects the same nodes.

use serde_json::{Map, Value};
use serde_json_path::JsonPath;

/// How deep a path may nest brackets and parentheses. serde_json_path's parser
/// backtracks through nested filters and function calls, doubling its time at each
/// level (found by fuzzing: 30 levels took minutes); real paths nest two or three.
const MAX_NESTING: usize = 10;

/// The key of the context object under which the executor passes the variables in
/// scope; a path `$name...` reads variable `name` there. Not a name a `$$.` path
/// writes by accident, and removed from the context a plugin receives.
pub const VARIABLES: &str = "orquesta:variables";

/// Why a name is not a variable's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VariableNameError {
    #[error("variable name {0:?}: 1 to 80 letters, digits or `_`, not starting with a digit")]
    Invalid(String),
    #[error("`$states` is reserved")]
    Reserved,
}

/// A variable's name, as the developer guide allows it: 1 to 80 characters, a letter
/// or `_` first, then letters, digits or `_`; `states` is reserved.
pub fn check_variable_name(name: &str) -> Result<(), VariableNameError> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_alphanumeric() || c == '_') || name.chars().count() > 80 {
        return Err(VariableNameError::Invalid(name.to_string()));
    }
    if name == "states" {
        return Err(VariableNameError::Reserved);
    }
    Ok(())
}

/// Why a path or reference path is refused; each names the path's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path {text:?}: {error}")]
    Variable {
        text: String,
        error: VariableNameError,
    },
    #[error("path {0:?} must start with `$`")]
    NoRoot(String),
    #[error("path {0:?} nests brackets and parentheses more than {MAX_NESTING} deep")]
    TooDeep(String),
    #[error("path {0:?}: a `\\u` escape needs 4 hex digits")]
    UnfinishedEscape(String),
    #[error("path {0:?}: a quoted name is not closed or has a bad escape")]
    BadQuote(String),
    /// The JSONPath parser's own message: read by people, never matched.
    #[error("path {text:?}: {message}")]
    Syntax { text: String, message: String },
    #[error("reference path {text:?}: {problem}")]
    Reference {
        text: String,
        problem: ReferenceProblem,
    },
}

/// What is wrong in a reference path (`ResultPath`): it names one place to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceProblem {
    #[error("must start with `$`")]
    NoRoot,
    #[error("cannot write to the context object")]
    Context,
    #[error("expected a field name after `.`")]
    NoFieldName,
    #[error("a field name after `.` has no spaces; write ['a b']")]
    SpaceInName,
    #[error("unclosed `[`")]
    Unclosed,
    #[error("a quoted field name is not a valid string")]
    BadQuotedName,
    #[error("only field names and non-negative indexes are allowed")]
    NotFieldOrIndex,
    #[error("expected `.` or `[`")]
    Unexpected,
}

/// Why a result cannot be written at a reference path (the spec's
/// `States.ResultPathMatchFailure`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot write the result at {path:?} in the state's input: {problem}")]
pub struct WriteError {
    pub path: String,
    pub problem: WriteProblem,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteProblem {
    #[error("index {0} is past the end of the array")]
    PastTheEnd(usize),
    #[error("field `{name}` cannot be set on a {kind}")]
    FieldOfNonObject { name: String, kind: &'static str },
    #[error("[{index}] cannot be set on a {kind}")]
    IndexOfNonArray { index: usize, kind: &'static str },
}

/// A parsed path: where it reads from, and the query.
#[derive(Debug, Clone)]
pub struct Path {
    text: String,
    context: bool,
    /// `$name...`: the path reads the variable `name`.
    variable: Option<String>,
    query: JsonPath,
    /// A definite path selects at most one node and yields it; others yield an array.
    definite: bool,
}

impl Path {
    pub fn parse(text: &str) -> Result<Self, PathError> {
        let variable_name = text
            .strip_prefix('$')
            .filter(|rest| rest.starts_with(|c: char| c.is_alphabetic() || c == '_'))
            .map(|rest| &rest[..rest.find(['.', '[']).unwrap_or(rest.len())]);
        let (context, variable, query_text) = match (text.strip_prefix("$$"), variable_name) {
            (Some(rest), _) => (true, None, format!("${rest}")),
            (None, Some(name)) => {
                check_variable_name(name).map_err(|error| PathError::Variable {
                    text: text.to_string(),
                    error,
                })?;
                let rest = &text[1 + name.len()..];
                (false, Some(name.to_string()), format!("${rest}"))
            }
            (None, None) => (false, None, text.to_string()),
        };
        if !query_text.starts_with('$') {
            return Err(PathError::NoRoot(text.to_string()));
        }
        match nesting(&query_text) {
            Some(n) if n > MAX_NESTING => return Err(PathError::TooDeep(text.to_string())),
            Some(_) => {}
            None => return Err(PathError::UnfinishedEscape(text.to_string())),
        }
        let query_text =
            normalize(&query_text).ok_or_else(|| PathError::BadQuote(text.to_string()))?;
        let query = JsonPath::parse(&query_text).map_err(|e| PathError::Syntax {
            text: text.to_string(),
            message: e.to_string(),
        })?;
        Ok(Path {
            text: text.to_string(),
            context,
            variable,
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
        let doc = match &self.variable {
            Some(name) => context.get(VARIABLES)?.get(name)?,
            None if self.context => context,
            None => input,
        };
        let nodes = self.query.query(doc);
        if self.definite {
            nodes.at_most_one().ok().flatten().cloned()
        } else {
            Some(Value::Array(nodes.all().into_iter().cloned().collect()))
        }
    }
}

/// A Jayway-style path in RFC 9535 form: a name after `.` or `..` that RFC 9535's
/// shorthand does not allow becomes `['name']`, and every quoted string is re-quoted
/// with RFC escapes. Names are only rewritten outside brackets and parentheses, where
/// a `.` cannot be part of a filter expression. `None`: a quoted name is not closed or
/// has a bad escape.
fn normalize(query: &str) -> Option<String> {
    let mut out = String::with_capacity(query.len() + 8);
    let mut depth = 0usize;
    let mut rest = query;
    while let Some(c) = rest.chars().next() {
        match c {
            '\'' | '"' => {
                let (value, len) = quoted(rest)?;
                out.push_str(&single_quoted(&value));
                rest = &rest[len..];
            }
            '[' | '(' => {
                depth += 1;
                out.push(c);
                rest = &rest[1..];
            }
            ']' | ')' => {
                depth = depth.saturating_sub(1);
                out.push(c);
                rest = &rest[1..];
            }
            '.' if depth == 0 => {
                let dots = if rest.starts_with("..") { 2 } else { 1 };
                let after = &rest[dots..];
                let end = after
                    .find(|c: char| c == '.' || c == '[' || c.is_whitespace())
                    .unwrap_or(after.len());
                let name = &after[..end];
                if name.is_empty() || name == "*" || is_shorthand(name) {
                    out.push_str(&rest[..dots + end]);
                } else {
                    out.push_str(if dots == 2 { ".." } else { "" });
                    out.push('[');
                    out.push_str(&single_quoted(name));
                    out.push(']');
                }
                rest = &after[end..];
            }
            c => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    Some(out)
}

/// RFC 9535's `member-name-shorthand`: a letter, `_` or non-ASCII character, then
/// those or digits.
fn is_shorthand(name: &str) -> bool {
    let ok = |c: char, first: bool| {
        c.is_ascii_alphabetic() || c == '_' || !c.is_ascii() || (!first && c.is_ascii_digit())
    };
    let mut chars = name.chars();
    chars.next().is_some_and(|c| ok(c, true)) && chars.all(|c| ok(c, false))
}

/// The string a quoted literal at the start of `text` holds, and the literal's length.
/// As in Jayway, `\'` and `\"` escape a quote in either kind of quotes; the other
/// escapes are JSON's.
fn quoted(text: &str) -> Option<(String, usize)> {
    let quote = text.chars().next()?;
    let mut json = String::from("\"");
    let mut chars = text.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                (_, '\'') => json.push('\''),
                (_, '"') => json.push_str("\\\""),
                (_, e) => {
                    json.push('\\');
                    json.push(e);
                }
            },
            c if c == quote => {
                json.push('"');
                return serde_json::from_str(&json).ok().map(|s| (s, i + 1));
            }
            '"' => json.push_str("\\\""),
            c => json.push(c),
        }
    }
    None
}

/// `value` as an RFC 9535 single-quoted string literal.
fn single_quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The deepest nesting of `[` and `(` outside string literals, as the parser sees it;
/// `None` for a `\u` escape without its 4 hex digits, on which serde_json_path 0.7
/// panics when it ends the text (found by fuzzing: `$["\u`).
fn nesting(query: &str) -> Option<usize> {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut quote: Option<char> = None;
    let mut chars = query.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(_), '\\') => {
                if chars.next() == Some('u')
                    && !(0..4).all(|_| chars.next().is_some_and(|h| h.is_ascii_hexdigit()))
                {
                    return None;
                }
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[' | '(') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (None, ']' | ')') => depth = depth.saturating_sub(1),
            (None, _) => {}
        }
    }
    Some(deepest)
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
    pub fn parse(text: &str) -> Result<Self, PathError> {
        let bad = |problem| PathError::Reference {
            text: text.to_string(),
            problem,
        };
        let mut rest = text
            .strip_prefix('$')
            .ok_or_else(|| bad(ReferenceProblem::NoRoot))?;
        if rest.starts_with('$') {
            return Err(bad(ReferenceProblem::Context));
        }
        let mut segments = Vec::new();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('.') {
                let end = after.find(['.', '[']).unwrap_or(after.len());
                let name = &after[..end];
                if name.is_empty() || name == "*" {
                    return Err(bad(ReferenceProblem::NoFieldName));
                }
                // JSONPath reads `$.a .b` as `$.a.b`: a space here would write elsewhere.
                if name.contains(char::is_whitespace) {
                    return Err(bad(ReferenceProblem::SpaceInName));
                }
                segments.push(Segment::Field(name.to_string()));
                rest = &after[end..];
            } else if let Some(after) = rest.strip_prefix('[') {
                let end = after
                    .find(']')
                    .ok_or_else(|| bad(ReferenceProblem::Unclosed))?;
                let inner = after[..end].trim();
                match quoted_name(inner) {
                    Some(name) => segments.push(Segment::Field(
                        name.ok_or_else(|| bad(ReferenceProblem::BadQuotedName))?,
                    )),
                    None => segments.push(Segment::Index(
                        inner
                            .parse()
                            .map_err(|_| bad(ReferenceProblem::NotFieldOrIndex))?,
                    )),
                }
                rest = &after[end + 1..];
            } else {
                return Err(bad(ReferenceProblem::Unexpected));
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
    pub fn write(&self, doc: Value, value: Value) -> Result<Value, WriteError> {
        write_at(doc, &self.segments, value).map_err(|problem| WriteError {
            path: self.text.clone(),
            problem,
        })
    }
}

/// The name in `'...'` or `"..."`, unescaped as paths read it ([`quoted`]), so a
/// `ResultPath` writes the field the same text reads; `Some(None)` when quoted but not
/// a valid string.
fn quoted_name(inner: &str) -> Option<Option<String>> {
    let quote = inner.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    if !inner.ends_with(quote) || inner.len() < 2 {
        return None;
    }
    Some(
        quoted(inner)
            .filter(|(_, len)| *len == inner.len())
            .map(|(s, _)| s),
    )
}

fn write_at(doc: Value, segments: &[Segment], value: Value) -> Result<Value, WriteProblem> {
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
            let slot = items.get_mut(*i).ok_or(WriteProblem::PastTheEnd(*i))?;
            *slot = write_at(slot.take(), rest, value)?;
            Ok(Value::Array(items))
        }
        (Segment::Field(name), other) => Err(WriteProblem::FieldOfNonObject {
            name: name.clone(),
            kind: kind_of(&other),
        }),
        (Segment::Index(i), other) => Err(WriteProblem::IndexOfNonArray {
            index: *i,
            kind: kind_of(&other),
        }),
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

    /// Paths as the cloud (Jayway JsonPath) reads them: any characters after a dot up
    /// to the next `.` or `[`, and escaped quotes of either kind inside either quotes.
    #[test]
    fn paths_the_cloud_accepts_select_what_it_selects() {
        let doc = json!({
            "delivery-partner": {"name": "Ana", "zone-id": 4},
            "it's": 1, "say \"hi\"": 2, "0day": 3, "a:b": 4, "list": [{"x-y": 5}, {"x-y": 6}]
        });
        let ctx = json!({"Execution": {"Id": "e1"}});
        let cases = [
            ("$.delivery-partner", Some(doc["delivery-partner"].clone())),
            ("$.delivery-partner.zone-id", Some(json!(4))),
            ("$.delivery-partner['name']", Some(json!("Ana"))),
            ("$.0day", Some(json!(3))),
            ("$.a:b", Some(json!(4))),
            ("$.list[1].x-y", Some(json!(6))),
            ("$.list[*].x-y", Some(json!([5, 6]))),
            ("$..zone-id", Some(json!([4]))),
            (r"$['it\'s']", Some(json!(1))),
            (r#"$["it\'s"]"#, Some(json!(1))),
            (r#"$['say \"hi\"']"#, Some(json!(2))),
            (r#"$["say \"hi\""]"#, Some(json!(2))),
            ("$.missing-field", None),
        ];
        for (text, want) in cases {
            let path = Path::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(path.select(&doc, &ctx), want, "{text}");
        }
        // A reference path writes where the same text reads.
        for text in [
            "$.delivery-partner.zone-id",
            r#"$["it\'s"]"#,
            r#"$['say \"hi\"']"#,
        ] {
            let written = ReferencePath::parse(text)
                .unwrap_or_else(|e| panic!("{text}: {e}"))
                .write(json!({}), json!(7))
                .unwrap();
            assert_eq!(
                Path::parse(text).unwrap().select(&written, &ctx),
                Some(json!(7)),
                "{text}"
            );
        }
    }

    /// Found by the intrinsic fuzz target: a 1.3 KB path argument of nested filters
    /// and function calls took 185 s to refuse.
    #[test]
    fn deeply_nested_paths_are_refused_at_once() {
        let nested = |levels: usize| format!("$[?{}1", "length(@.a, $[?".repeat(levels));
        let started = std::time::Instant::now();
        let e = Path::parse(&nested(30)).unwrap_err();
        assert_eq!(e, PathError::TooDeep(nested(30)));
        assert!(e.to_string().ends_with("more than 10 deep"), "{e}");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        // Quoted brackets do not count, and neither can quoted closers hide nesting.
        assert!(Path::parse("$['((((((((((((']").is_ok());
        let hidden = format!("$[?{}1", "length(')))', $[?".repeat(6));
        assert!(matches!(Path::parse(&hidden), Err(PathError::TooDeep(_))));
        assert!(Path::parse("$.a[?@.b[?@.c[?length(@.d) > 1]]]").is_ok());
    }

    /// Found by the intrinsic fuzz target: serde_json_path panicked ("we do not use
    /// streaming parsers") on a string ending in `\u`.
    #[test]
    fn an_unfinished_unicode_escape_is_refused_without_panic() {
        for text in [r#"$["\u"#, r"$['\u", r#"$["\uD800\u"#, r#"$[?@.a == "\u"#] {
            let e = Path::parse(text).unwrap_err();
            assert_eq!(e, PathError::UnfinishedEscape(text.to_string()));
        }
        assert_eq!(
            Path::parse(r#"$["\u00e9"]"#)
                .unwrap()
                .select(&json!({"é": 1}), &json!({})),
            Some(json!(1))
        );
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
        assert_eq!(
            write("$.a.x.z", json!(1)).unwrap_err().problem,
            WriteProblem::FieldOfNonObject {
                name: "z".into(),
                kind: "number"
            }
        );
        assert_eq!(
            write("$.list[5]", json!(1)).unwrap_err().problem,
            WriteProblem::PastTheEnd(5)
        );
        for bad in ["a", "$$.x", "$.a[*]", "$..a", "$.a[-1]", "$.a[", "$x"] {
            assert!(ReferencePath::parse(bad).is_err(), "{bad}");
        }
    }

    /// Found by the json_path fuzz target: `$['a\'b']` read the field `a'b` but wrote
    /// the field `a\'b`.
    #[test]
    fn reference_paths_write_the_field_the_same_text_reads() {
        let ctx = json!({});
        for (text, field) in [
            (r"$['a\'b']", "a'b"),
            (r#"$["b\"c"]"#, "b\"c"),
            (r"$['back\\slash']", "back\\slash"),
            (r#"$['say "hi"']"#, "say \"hi\""),
            (r"$['\u00e9\n']", "é\n"),
        ] {
            let written = ReferencePath::parse(text)
                .unwrap()
                .write(json!({}), json!(1))
                .unwrap();
            assert_eq!(written, json!({ field: 1 }), "{text}");
            let read = Path::parse(text).unwrap().select(&written, &ctx);
            assert_eq!(read, Some(json!(1)), "{text}");
        }
        // JSONPath allows spaces between segments: `$.a .b` reads `b` in `a`.
        let e = ReferencePath::parse("$.a .b").unwrap_err();
        assert_eq!(
            e,
            PathError::Reference {
                text: "$.a .b".into(),
                problem: ReferenceProblem::SpaceInName
            }
        );
        // Not one field: a union, an unescaped quote, a bad escape.
        for bad in ["$['a','b']", r"$['a'b']", r"$['a\q']"] {
            assert!(ReferencePath::parse(bad).is_err(), "{bad}");
        }
    }
}
