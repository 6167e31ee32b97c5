//! Content filters shared by topic subscriptions (SNS filter policies) and event-bus rules
//! (EventBridge event patterns). A pattern is a JSON object whose keys name fields of the
//! matched document (nested objects nest) and whose leaves are arrays of conditions, any
//! of which may match; every key must match; `"$or": [pattern, ...]` matches when any of
//! its patterns does. Conditions:
//!
//! | condition | matches |
//! | --- | --- |
//! | `"text"`, `5`, `true`, `null` | that exact value |
//! | `{"prefix": "ab"}` / `{"suffix": "yz"}` | strings starting / ending so |
//! | `{"equals-ignore-case": "Ab"}` | strings equal ignoring ASCII case |
//! | `{"anything-but": v}` | anything except `v`: a value, a list, or `{"prefix": ..}` / `{"suffix": ..}` |
//! | `{"numeric": [">", 0, "<=", 5]}` | numbers in the range (`=`, `<`, `<=`, `>`, `>=`) |
//! | `{"exists": true}` / `{"exists": false}` | the field is present / absent |
//! | `{"wildcard": "a*z"}` | strings matching with `*` as any run of characters |
//!
//! A field holding an array matches when any element does. Patterns are checked when a
//! tenant loads, so a bad one is refused with its path and reason.

use serde_json::{Map, Value};
use thiserror::Error;

/// Limits that keep matching cheap, like SNS's 150 combinations and 5 levels.
const MAX_DEPTH: usize = 5;
const MAX_CONDITIONS: usize = 150;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("{path}: {reason}")]
pub struct PatternError {
    pub path: String,
    pub reason: String,
}

/// How leaf values compare with numeric conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Numbers {
    /// Only JSON numbers are numbers (event patterns, SNS body policies).
    Json,
    /// Strings that parse as numbers count too (SNS message attributes are strings).
    FromStrings,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    /// Every field must match.
    fields: Vec<(String, Node)>,
    /// Any of these must match too, when present.
    any_of: Vec<Pattern>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Nested(Pattern),
    Conditions(Vec<Condition>),
}

#[derive(Debug, Clone, PartialEq)]
enum Condition {
    Exact(Value),
    Prefix(String),
    Suffix(String),
    EqualsIgnoreCase(String),
    AnythingBut(Vec<Condition>),
    Numeric(Vec<(Cmp, f64)>),
    Exists(bool),
    Wildcard(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

fn err(path: &str, reason: impl Into<String>) -> PatternError {
    PatternError {
        path: path.into(),
        reason: reason.into(),
    }
}

impl Pattern {
    /// Parses and checks a pattern.
    pub fn parse(value: &Value) -> Result<Self, PatternError> {
        let mut count = 0;
        let pattern = parse_object(value, "", 0, &mut count)?;
        if count > MAX_CONDITIONS {
            return Err(err(
                "",
                format!("{count} conditions; at most {MAX_CONDITIONS}"),
            ));
        }
        Ok(pattern)
    }

    /// Whether `doc` matches.
    pub fn matches(&self, doc: &Value, numbers: Numbers) -> bool {
        let fields_match = self.fields.iter().all(|(key, node)| {
            let field = doc.get(key);
            match node {
                Node::Nested(inner) => match field {
                    Some(Value::Array(items)) => items.iter().any(|i| inner.matches(i, numbers)),
                    Some(v @ Value::Object(_)) => inner.matches(v, numbers),
                    // Nothing to look inside: only `exists: false` conditions could hold.
                    _ => inner.matches(&Value::Null, numbers),
                },
                Node::Conditions(conditions) => {
                    conditions.iter().any(|c| c.matches(field, numbers))
                }
            }
        });
        fields_match
            && (self.any_of.is_empty() || self.any_of.iter().any(|p| p.matches(doc, numbers)))
    }
}

fn parse_object(
    value: &Value,
    path: &str,
    depth: usize,
    count: &mut usize,
) -> Result<Pattern, PatternError> {
    let Value::Object(map) = value else {
        return Err(err(path, "a pattern is a JSON object"));
    };
    if depth > MAX_DEPTH {
        return Err(err(path, format!("nested deeper than {MAX_DEPTH} levels")));
    }
    if map.is_empty() && depth > 0 {
        return Err(err(path, "an empty object matches nothing useful"));
    }
    let mut pattern = Pattern {
        fields: Vec::new(),
        any_of: Vec::new(),
    };
    for (key, v) in map {
        let here = format!("{path}.{key}");
        if key == "$or" {
            let Value::Array(alternatives) = v else {
                return Err(err(&here, "`$or` takes an array of patterns"));
            };
            if alternatives.len() < 2 {
                return Err(err(&here, "`$or` needs at least two patterns"));
            }
            for (i, alt) in alternatives.iter().enumerate() {
                pattern.any_of.push(parse_object(
                    alt,
                    &format!("{here}[{i}]"),
                    depth + 1,
                    count,
                )?);
            }
            continue;
        }
        let node = match v {
            Value::Object(_) => Node::Nested(parse_object(v, &here, depth + 1, count)?),
            Value::Array(items) => {
                if items.is_empty() {
                    return Err(err(&here, "an empty list of conditions matches nothing"));
                }
                *count += items.len();
                Node::Conditions(
                    items
                        .iter()
                        .map(|c| parse_condition(c, &here))
                        .collect::<Result<_, _>>()?,
                )
            }
            _ => {
                return Err(err(
                    &here,
                    "a field's conditions are a list, e.g. [\"value\"] or [{\"prefix\": \"x\"}]",
                ));
            }
        };
        pattern.fields.push((key.clone(), node));
    }
    Ok(pattern)
}

fn one_key(map: &Map<String, Value>, path: &str) -> Result<(String, Value), PatternError> {
    let mut entries = map.iter();
    match (entries.next(), entries.next()) {
        (Some((k, v)), None) => Ok((k.clone(), v.clone())),
        _ => Err(err(path, "a condition object has exactly one operator")),
    }
}

fn string_of(v: &Value, path: &str, op: &str) -> Result<String, PatternError> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| err(path, format!("`{op}` takes a string")))
}

fn parse_condition(c: &Value, path: &str) -> Result<Condition, PatternError> {
    let Value::Object(map) = c else {
        return match c {
            Value::Array(_) => Err(err(path, "conditions do not nest lists")),
            exact => Ok(Condition::Exact(exact.clone())),
        };
    };
    let (op, arg) = one_key(map, path)?;
    match op.as_str() {
        "prefix" => Ok(Condition::Prefix(string_of(&arg, path, &op)?)),
        "suffix" => Ok(Condition::Suffix(string_of(&arg, path, &op)?)),
        "equals-ignore-case" => Ok(Condition::EqualsIgnoreCase(string_of(&arg, path, &op)?)),
        "wildcard" => Ok(Condition::Wildcard(string_of(&arg, path, &op)?)),
        "exists" => match arg {
            Value::Bool(b) => Ok(Condition::Exists(b)),
            _ => Err(err(path, "`exists` takes true or false")),
        },
        "anything-but" => {
            let inner = match &arg {
                Value::Array(items) if items.is_empty() => {
                    return Err(err(path, "`anything-but` needs at least one value"));
                }
                Value::Array(items) => items
                    .iter()
                    .map(|v| match v {
                        Value::String(_) | Value::Number(_) => Ok(Condition::Exact(v.clone())),
                        _ => Err(err(path, "`anything-but` lists strings or numbers")),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                Value::String(_) | Value::Number(_) => vec![Condition::Exact(arg.clone())],
                Value::Object(m) => {
                    let (inner_op, inner_arg) = one_key(m, path)?;
                    match inner_op.as_str() {
                        "prefix" => vec![Condition::Prefix(string_of(&inner_arg, path, "prefix")?)],
                        "suffix" => vec![Condition::Suffix(string_of(&inner_arg, path, "suffix")?)],
                        other => {
                            return Err(err(
                                path,
                                format!("`anything-but` takes prefix or suffix, not `{other}`"),
                            ));
                        }
                    }
                }
                _ => {
                    return Err(err(
                        path,
                        "`anything-but` takes a value, a list or a prefix/suffix",
                    ));
                }
            };
            Ok(Condition::AnythingBut(inner))
        }
        "numeric" => {
            let Value::Array(items) = &arg else {
                return Err(err(path, "`numeric` takes [op, number, ...]"));
            };
            if items.is_empty() || items.len() % 2 != 0 || items.len() > 4 {
                return Err(err(path, "`numeric` takes one or two [op, number] pairs"));
            }
            let mut ranges = Vec::new();
            for pair in items.chunks(2) {
                let cmp = match pair[0].as_str() {
                    Some("=") => Cmp::Eq,
                    Some("<") => Cmp::Lt,
                    Some("<=") => Cmp::Le,
                    Some(">") => Cmp::Gt,
                    Some(">=") => Cmp::Ge,
                    _ => {
                        return Err(err(
                            path,
                            format!("`numeric` operator {} is not one of = < <= > >=", pair[0]),
                        ));
                    }
                };
                let n = pair[1].as_f64().ok_or_else(|| {
                    err(path, format!("`numeric` bound {} is not a number", pair[1]))
                })?;
                ranges.push((cmp, n));
            }
            if ranges.len() == 2 {
                let lower = matches!(ranges[0].0, Cmp::Gt | Cmp::Ge);
                let upper = matches!(ranges[1].0, Cmp::Lt | Cmp::Le);
                if !(lower && upper) || ranges[0].1 >= ranges[1].1 {
                    return Err(err(
                        path,
                        "a `numeric` range is a lower bound (> or >=) then a greater upper bound (< or <=)",
                    ));
                }
            }
            Ok(Condition::Numeric(ranges))
        }
        other => Err(err(path, format!("unknown operator `{other}`"))),
    }
}

fn number_of(v: &Value, numbers: Numbers) -> Option<f64> {
    match (v, numbers) {
        (Value::Number(n), _) => n.as_f64(),
        (Value::String(s), Numbers::FromStrings) => s.trim().parse().ok(),
        _ => None,
    }
}

fn wildcard(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

impl Condition {
    /// Whether the field (absent: `None`) satisfies this condition. Arrays match when
    /// any element does.
    fn matches(&self, field: Option<&Value>, numbers: Numbers) -> bool {
        match (self, field) {
            (Condition::Exists(want), f) => f.is_some() == *want,
            (Condition::AnythingBut(_), None) => false,
            (_, None) => false,
            (c, Some(Value::Array(items))) => items.iter().any(|i| c.matches_value(i, numbers)),
            (c, Some(v)) => c.matches_value(v, numbers),
        }
    }

    fn matches_value(&self, v: &Value, numbers: Numbers) -> bool {
        match self {
            Condition::Exact(want) => match (want, number_of(v, numbers)) {
                (Value::Number(n), Some(got)) => n.as_f64() == Some(got),
                _ => want == v,
            },
            Condition::Prefix(p) => v.as_str().is_some_and(|s| s.starts_with(p.as_str())),
            Condition::Suffix(p) => v.as_str().is_some_and(|s| s.ends_with(p.as_str())),
            Condition::EqualsIgnoreCase(p) => v.as_str().is_some_and(|s| s.eq_ignore_ascii_case(p)),
            Condition::Wildcard(p) => v.as_str().is_some_and(|s| wildcard(p, s)),
            Condition::AnythingBut(excluded) => {
                !excluded.iter().any(|c| c.matches_value(v, numbers))
            }
            Condition::Numeric(ranges) => number_of(v, numbers).is_some_and(|n| {
                ranges.iter().all(|(cmp, bound)| match cmp {
                    Cmp::Eq => n == *bound,
                    Cmp::Lt => n < *bound,
                    Cmp::Le => n <= *bound,
                    Cmp::Gt => n > *bound,
                    Cmp::Ge => n >= *bound,
                })
            }),
            Condition::Exists(want) => *want,
        }
    }
}

#[cfg(test)]
mod tests {
    //! Cases follow the SNS filter-policy and EventBridge event-pattern documentation.
    use super::*;
    use serde_json::json;

    /// (pattern, document, expected) for JSON-number matching.
    fn table(rows: &[(Value, Value, bool)], numbers: Numbers) {
        for (i, (pattern, doc, want)) in rows.iter().enumerate() {
            let p = Pattern::parse(pattern).unwrap_or_else(|e| panic!("row {i}: {e}"));
            assert_eq!(
                p.matches(doc, numbers),
                *want,
                "row {i}: {pattern} on {doc}"
            );
        }
    }

    #[test]
    fn exact_values_strings_numbers_booleans_null() {
        table(
            &[
                (json!({"country": ["PE"]}), json!({"country": "PE"}), true),
                (json!({"country": ["PE"]}), json!({"country": "CL"}), false),
                (
                    json!({"country": ["PE", "CL"]}),
                    json!({"country": "CL"}),
                    true,
                ),
                (json!({"country": ["PE"]}), json!({}), false),
                (json!({"n": [5]}), json!({"n": 5}), true),
                (json!({"n": [5]}), json!({"n": 5.0}), true),
                (json!({"n": [5]}), json!({"n": "5"}), false),
                (json!({"ok": [true]}), json!({"ok": true}), true),
                (json!({"ok": [true]}), json!({"ok": "true"}), false),
                (json!({"x": [null]}), json!({"x": null}), true),
                (json!({"x": [null]}), json!({}), false),
                (json!({"tags": ["b"]}), json!({"tags": ["a", "b"]}), true),
                (json!({"tags": ["c"]}), json!({"tags": ["a", "b"]}), false),
                (
                    json!({"a": ["1"], "b": ["2"]}),
                    json!({"a": "1", "b": "2"}),
                    true,
                ),
                (
                    json!({"a": ["1"], "b": ["2"]}),
                    json!({"a": "1", "b": "3"}),
                    false,
                ),
            ],
            Numbers::Json,
        );
    }

    #[test]
    fn nested_fields() {
        table(
            &[
                (
                    json!({"detail": {"state": ["ok"]}}),
                    json!({"detail": {"state": "ok"}}),
                    true,
                ),
                (
                    json!({"detail": {"state": ["ok"]}}),
                    json!({"detail": {"state": "no"}}),
                    false,
                ),
                (
                    json!({"detail": {"state": ["ok"]}}),
                    json!({"detail": "ok"}),
                    false,
                ),
                (json!({"detail": {"state": ["ok"]}}), json!({}), false),
                (
                    json!({"items": {"sku": [{"prefix": "A"}]}}),
                    json!({"items": [{"sku": "B1"}, {"sku": "A2"}]}),
                    true,
                ),
            ],
            Numbers::Json,
        );
    }

    #[test]
    fn prefix_suffix_ignore_case_and_wildcard() {
        table(
            &[
                (
                    json!({"s": [{"prefix": "ord-"}]}),
                    json!({"s": "ord-1"}),
                    true,
                ),
                (
                    json!({"s": [{"prefix": "ord-"}]}),
                    json!({"s": "xord-1"}),
                    false,
                ),
                (json!({"s": [{"prefix": "1"}]}), json!({"s": 12}), false),
                (
                    json!({"f": [{"suffix": ".png"}]}),
                    json!({"f": "a.png"}),
                    true,
                ),
                (
                    json!({"f": [{"suffix": ".png"}]}),
                    json!({"f": "a.jpg"}),
                    false,
                ),
                (
                    json!({"c": [{"equals-ignore-case": "pe"}]}),
                    json!({"c": "PE"}),
                    true,
                ),
                (
                    json!({"c": [{"equals-ignore-case": "pe"}]}),
                    json!({"c": "PEX"}),
                    false,
                ),
                (
                    json!({"k": [{"wildcard": "dir/*.png"}]}),
                    json!({"k": "dir/a/b.png"}),
                    true,
                ),
                (
                    json!({"k": [{"wildcard": "dir/*.png"}]}),
                    json!({"k": "dir/a.jpg"}),
                    false,
                ),
                (
                    json!({"k": [{"wildcard": "a*b*c"}]}),
                    json!({"k": "a-x-b-y-c"}),
                    true,
                ),
                (
                    json!({"k": [{"wildcard": "a*b*c"}]}),
                    json!({"k": "acb"}),
                    false,
                ),
            ],
            Numbers::Json,
        );
    }

    #[test]
    fn anything_but() {
        table(
            &[
                (
                    json!({"s": [{"anything-but": "cancelled"}]}),
                    json!({"s": "open"}),
                    true,
                ),
                (
                    json!({"s": [{"anything-but": "cancelled"}]}),
                    json!({"s": "cancelled"}),
                    false,
                ),
                (
                    json!({"s": [{"anything-but": ["a", "b"]}]}),
                    json!({"s": "b"}),
                    false,
                ),
                (
                    json!({"s": [{"anything-but": ["a", "b"]}]}),
                    json!({"s": "c"}),
                    true,
                ),
                (
                    json!({"n": [{"anything-but": [1, 2]}]}),
                    json!({"n": 3}),
                    true,
                ),
                (
                    json!({"n": [{"anything-but": [1, 2]}]}),
                    json!({"n": 2}),
                    false,
                ),
                (
                    json!({"s": [{"anything-but": {"prefix": "test-"}}]}),
                    json!({"s": "test-1"}),
                    false,
                ),
                (
                    json!({"s": [{"anything-but": {"prefix": "test-"}}]}),
                    json!({"s": "prod-1"}),
                    true,
                ),
                (
                    json!({"s": [{"anything-but": {"suffix": ".tmp"}}]}),
                    json!({"s": "a.tmp"}),
                    false,
                ),
                // Absent fields do not match anything-but (SNS and EventBridge agree).
                (json!({"s": [{"anything-but": "x"}]}), json!({}), false),
            ],
            Numbers::Json,
        );
    }

    #[test]
    fn numeric_ranges() {
        table(
            &[
                (
                    json!({"p": [{"numeric": ["=", 100]}]}),
                    json!({"p": 100}),
                    true,
                ),
                (
                    json!({"p": [{"numeric": ["=", 100]}]}),
                    json!({"p": 100.5}),
                    false,
                ),
                (
                    json!({"p": [{"numeric": [">", 0, "<=", 5]}]}),
                    json!({"p": 5}),
                    true,
                ),
                (
                    json!({"p": [{"numeric": [">", 0, "<=", 5]}]}),
                    json!({"p": 0}),
                    false,
                ),
                (
                    json!({"p": [{"numeric": [">=", 0, "<", 5]}]}),
                    json!({"p": 5}),
                    false,
                ),
                (
                    json!({"p": [{"numeric": ["<", 10]}]}),
                    json!({"p": -3}),
                    true,
                ),
                (
                    json!({"p": [{"numeric": ["<", 10]}]}),
                    json!({"p": "3"}),
                    false,
                ),
                (
                    json!({"p": [{"numeric": [">=", 2]}]}),
                    json!({"p": "x"}),
                    false,
                ),
            ],
            Numbers::Json,
        );
        // Message attributes are strings: numbers are read from them.
        table(
            &[
                (
                    json!({"p": [{"numeric": ["<", 10]}]}),
                    json!({"p": "3"}),
                    true,
                ),
                (
                    json!({"p": [{"numeric": ["<", 10]}]}),
                    json!({"p": "30"}),
                    false,
                ),
                (json!({"p": [100]}), json!({"p": "100"}), true),
            ],
            Numbers::FromStrings,
        );
    }

    #[test]
    fn exists() {
        table(
            &[
                (json!({"a": [{"exists": true}]}), json!({"a": "x"}), true),
                (json!({"a": [{"exists": true}]}), json!({"b": "x"}), false),
                (json!({"a": [{"exists": false}]}), json!({"b": "x"}), true),
                (json!({"a": [{"exists": false}]}), json!({"a": "x"}), false),
                (json!({"d": {"a": [{"exists": false}]}}), json!({}), true),
            ],
            Numbers::Json,
        );
    }

    #[test]
    fn or_alternatives() {
        let pattern = json!({
            "source": ["orders"],
            "$or": [{"country": ["PE"]}, {"priority": [{"numeric": [">", 5]}]}],
        });
        table(
            &[
                (
                    pattern.clone(),
                    json!({"source": "orders", "country": "PE"}),
                    true,
                ),
                (
                    pattern.clone(),
                    json!({"source": "orders", "country": "CL", "priority": 9}),
                    true,
                ),
                (
                    pattern.clone(),
                    json!({"source": "orders", "country": "CL", "priority": 1}),
                    false,
                ),
                (
                    pattern,
                    json!({"source": "billing", "country": "PE"}),
                    false,
                ),
            ],
            Numbers::Json,
        );
    }

    #[test]
    fn invalid_patterns_are_refused_with_their_path() {
        for (pattern, path, reason) in [
            (json!("x"), "", "a pattern is a JSON object"),
            (json!({"a": "x"}), ".a", "conditions are a list"),
            (json!({"a": []}), ".a", "matches nothing"),
            (
                json!({"a": [{"regex": "x"}]}),
                ".a",
                "unknown operator `regex`",
            ),
            (
                json!({"a": [{"prefix": 1}]}),
                ".a",
                "`prefix` takes a string",
            ),
            (
                json!({"a": [{"prefix": "x", "suffix": "y"}]}),
                ".a",
                "exactly one operator",
            ),
            (json!({"a": [{"exists": "yes"}]}), ".a", "true or false"),
            (
                json!({"a": [{"numeric": [">", "x"]}]}),
                ".a",
                "is not a number",
            ),
            (
                json!({"a": [{"numeric": ["!=", 1]}]}),
                ".a",
                "is not one of",
            ),
            (
                json!({"a": [{"numeric": ["<", 5, ">", 1]}]}),
                ".a",
                "lower bound",
            ),
            (
                json!({"a": [{"numeric": [">", 5, "<", 1]}]}),
                ".a",
                "lower bound",
            ),
            (json!({"a": [{"anything-but": []}]}), ".a", "at least one"),
            (
                json!({"a": [{"anything-but": {"numeric": [">", 1]}}]}),
                ".a",
                "prefix or suffix",
            ),
            (json!({"$or": [{"a": ["x"]}]}), ".$or", "at least two"),
            (json!({"a": [["x"]]}), ".a", "do not nest lists"),
            (
                json!({"a": {"b": {"c": {"d": {"e": {"f": {"g": ["x"]}}}}}}}),
                ".a.b.c.d.e.f",
                "deeper",
            ),
        ] {
            let e = Pattern::parse(&pattern).unwrap_err();
            assert_eq!(e.path, path, "{pattern}: {e}");
            assert!(e.reason.contains(reason), "{pattern}: {e}");
        }
        let many: Vec<Value> = (0..200).map(|i| json!(i)).collect();
        assert!(
            Pattern::parse(&json!({ "a": many }))
                .unwrap_err()
                .reason
                .contains("at most 150")
        );
    }
}
