//! Content filters shared by topic subscriptions (SNS filter policies) and event-bus rules
//! (EventBridge event patterns). docs/EVENTS.md is the user's reference; in short, a
//! pattern is a JSON object whose keys name fields of the matched document (nested
//! objects nest, and `"a.b"` is the same as `{"a": {"b": ..}}`, in the pattern and in
//! the document) and whose leaves are arrays of conditions, any of which may match; every
//! key must match; `"$or": [pattern, ...]` matches when any of its patterns does.
//!
//! | condition | matches |
//! | --- | --- |
//! | `"text"`, `5`, `true`, `null` | that exact value |
//! | `{"prefix": "ab"}` / `{"suffix": "yz"}` | strings starting / ending so; the argument may be `{"equals-ignore-case": "Ab"}` |
//! | `{"equals-ignore-case": "Ab"}` | strings equal ignoring case |
//! | `{"anything-but": v}` | leaf values other than `v`: a value, a list, or a prefix / suffix / equals-ignore-case / wildcard (EventBridge; SNS: prefix) |
//! | `{"numeric": [">", 0, "<=", 5]}` | numbers in the range (`=`, `<`, `<=`, `>`, `>=`) |
//! | `{"exists": true}` / `{"exists": false}` | a leaf value is present / none is |
//! | `{"cidr": "10.0.0.0/24"}` | IPv4 or IPv6 addresses in the block |
//! | `{"wildcard": "a*z"}` | strings matching with `*` as any run of characters (EventBridge) |
//!
//! A field holding an array (arrays in arrays too) matches when any leaf element does;
//! objects are not leaves. Patterns are checked when a tenant loads, so a bad one is
//! refused with its path and reason, worded as the cloud words it where we know it.

mod cidr;
pub mod test_event;
#[cfg(test)]
mod tests;
mod wildcard;

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::{Map, Value};
use thiserror::Error;

use self::cidr::Cidr;
use self::wildcard::Wildcard;

/// EventBridge: "Event pattern size", 2,048 characters by default.
pub const EVENTBRIDGE_MAX_CHARS: usize = 2048;
/// SNS: a filter policy is at most 256 KB.
pub const SNS_MAX_BYTES: usize = 256 * 1024;
/// SNS: at most five keys and 150 combinations of values.
pub const SNS_MAX_KEYS: u64 = 5;
pub const SNS_MAX_COMBINATIONS: u64 = 150;
/// EventBridge refuses a field's wildcards when one value can match more of their
/// prefixes at once than this. AWS documents the refusal, not the figure: this is ours
/// (see docs/EVENTS.md).
pub const WILDCARD_MAX_COMPLEXITY: usize = 10;
/// Ours, not the cloud's: nesting deeper than this is refused so matching recursion
/// stays shallow (EventBridge's 2,048 characters allow ~400 levels).
const MAX_DEPTH: usize = 64;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("{path}: {reason}")]
pub struct PatternError {
    pub path: String,
    pub reason: String,
}

/// Whose rules a pattern follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// An event-bus rule's event pattern.
    EventBridge,
    /// A subscription's filter policy on message attributes: no nesting.
    SnsAttributes,
    /// A subscription's filter policy on the message body.
    SnsBody,
}

impl Dialect {
    fn is_sns(self) -> bool {
        self != Dialect::EventBridge
    }

    /// EventBridge compares numbers within ±5.0e9, SNS within ±1.0e9.
    fn numeric_limit(self) -> f64 {
        if self.is_sns() { 1.0e9 } else { 5.0e9 }
    }

    /// The decimal places numbers are compared to: EventBridge documents six, SNS five.
    /// Within the limits above, a number scaled by this is an integer `f64` holds exactly.
    fn numeric_scale(self) -> f64 {
        if self.is_sns() { 1.0e5 } else { 1.0e6 }
    }
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
    /// Each group needs one of its patterns to match.
    any_of: Vec<Vec<Pattern>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Nested(Pattern),
    Conditions(Vec<Condition>),
}

#[derive(Debug, Clone, PartialEq)]
enum Condition {
    Exact(Value),
    /// The text, lower-cased when `ignore_case`.
    Prefix(String, bool),
    Suffix(String, bool),
    /// Lower-cased.
    EqualsIgnoreCase(String),
    /// Matches a leaf value none of these match.
    AnythingBut(Vec<Condition>),
    /// Comparisons with bounds scaled to the dialect's decimal places and rounded, and
    /// that scale (`Dialect::numeric_scale`): values are rounded the same way first.
    Numeric(Vec<(Cmp, f64)>, f64),
    Exists(bool),
    Wildcard(Wildcard),
    Cidr(Cidr),
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

/// What parsing gathers besides the pattern.
struct Parsing {
    dialect: Dialect,
    /// Every wildcard by the field path it tests, for the complexity check.
    wildcards: BTreeMap<String, Vec<Wildcard>>,
}

impl Pattern {
    /// Parses and checks a pattern under `dialect`'s rules.
    pub fn parse(value: &Value, dialect: Dialect) -> Result<Self, PatternError> {
        let text = value.to_string();
        match dialect {
            Dialect::EventBridge => {
                let chars = text.chars().count();
                if chars > EVENTBRIDGE_MAX_CHARS {
                    return Err(err(
                        "",
                        format!(
                            "Event pattern is {chars} characters; at most {EVENTBRIDGE_MAX_CHARS}"
                        ),
                    ));
                }
            }
            Dialect::SnsAttributes | Dialect::SnsBody => {
                if text.len() > SNS_MAX_BYTES {
                    return Err(err(
                        "",
                        format!("Filter policy is {} bytes; at most 256 KB", text.len()),
                    ));
                }
            }
        }
        let mut parsing = Parsing {
            dialect,
            wildcards: BTreeMap::new(),
        };
        let pattern = parse_object(value, "", 0, &mut parsing)?;
        if dialect.is_sns() {
            let keys = pattern.keys();
            if keys > SNS_MAX_KEYS {
                return Err(err(
                    "",
                    format!("Filter policy can not have more than {SNS_MAX_KEYS} keys ({keys})"),
                ));
            }
            let combinations = pattern.combinations();
            if combinations > SNS_MAX_COMBINATIONS {
                return Err(err(
                    "",
                    format!(
                        "Filter policy is too complex: {combinations} combinations of values; at most {SNS_MAX_COMBINATIONS}"
                    ),
                ));
            }
        }
        for (path, wildcards) in &parsing.wildcards {
            let all: Vec<&Wildcard> = wildcards.iter().collect();
            if wildcard::complexity(&all, WILDCARD_MAX_COMPLEXITY).is_none() {
                return Err(err(
                    path,
                    "Rule is too complex - try using fewer wildcard characters or fewer repeating character sequences after a wildcard character",
                ));
            }
        }
        Ok(pattern)
    }

    /// Whether `doc` matches.
    pub fn matches(&self, doc: &Value, numbers: Numbers) -> bool {
        let fields_match = self.fields.iter().all(|(key, node)| {
            let field = field(doc, key);
            match node {
                Node::Nested(inner) => match field.as_deref() {
                    Some(Value::Array(items)) => items.iter().any(|i| inner.matches(i, numbers)),
                    Some(v @ Value::Object(_)) => inner.matches(v, numbers),
                    // Nothing to look inside: only `exists: false` conditions could hold.
                    _ => inner.matches(&Value::Null, numbers),
                },
                Node::Conditions(conditions) => {
                    let mut leaves = Vec::new();
                    if let Some(f) = field.as_deref() {
                        collect_leaves(f, &mut leaves);
                    }
                    conditions.iter().any(|c| c.matches(&leaves, numbers))
                }
            }
        });
        fields_match
            && self
                .any_of
                .iter()
                .all(|group| group.iter().any(|p| p.matches(doc, numbers)))
    }

    /// SNS's key count: the leaf fields one alternative of every `$or` can name at once.
    fn keys(&self) -> u64 {
        let own: u64 = self
            .fields
            .iter()
            .map(|(_, node)| match node {
                Node::Nested(inner) => inner.keys(),
                Node::Conditions(_) => 1,
            })
            .sum();
        let alternatives: u64 = self
            .any_of
            .iter()
            .map(|group| group.iter().map(Pattern::keys).max().unwrap_or(0))
            .sum();
        own.saturating_add(alternatives)
    }

    /// SNS's combinations: the product of every list's length, an `$or` adding its
    /// alternatives' combinations (each alternative is a policy of its own).
    fn combinations(&self) -> u64 {
        let own = self
            .fields
            .iter()
            .map(|(_, node)| match node {
                Node::Nested(inner) => inner.combinations(),
                Node::Conditions(c) => c.len() as u64,
            })
            .fold(1u64, u64::saturating_mul);
        self.any_of
            .iter()
            .map(|group| {
                group
                    .iter()
                    .map(Pattern::combinations)
                    .fold(0u64, u64::saturating_add)
            })
            .fold(own, u64::saturating_mul)
    }
}

/// The field `key` of `doc`: the value under that key, merged with the values under
/// keys that spell a path through it (`"key.rest"`), since EventBridge and SNS read a
/// dotted key as nested fields.
fn field<'a>(doc: &'a Value, key: &str) -> Option<Cow<'a, Value>> {
    let Value::Object(map) = doc else {
        return None;
    };
    let direct = map.get(key);
    let mut dotted: Option<Map<String, Value>> = None;
    for (k, v) in map {
        if let Some(rest) = k.strip_prefix(key).and_then(|r| r.strip_prefix('.')) {
            dotted
                .get_or_insert_with(Map::new)
                .insert(rest.to_string(), v.clone());
        }
    }
    let Some(dotted) = dotted else {
        return direct.map(Cow::Borrowed);
    };
    Some(Cow::Owned(match direct {
        None => Value::Object(dotted),
        Some(Value::Object(own)) => {
            let mut merged = own.clone();
            for (k, v) in dotted {
                let v = match merged.remove(&k) {
                    Some(have) => Value::Array(vec![have, v]),
                    None => v,
                };
                merged.insert(k, v);
            }
            Value::Object(merged)
        }
        Some(other) => Value::Array(vec![other.clone(), Value::Object(dotted)]),
    }))
}

/// The leaf values of a field: arrays (nested ones too) are flattened, objects are not
/// leaves.
fn collect_leaves<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| collect_leaves(i, out)),
        Value::Object(_) => {}
        leaf => out.push(leaf),
    }
}

fn parse_object(
    value: &Value,
    path: &str,
    depth: usize,
    parsing: &mut Parsing,
) -> Result<Pattern, PatternError> {
    let Value::Object(map) = value else {
        return Err(err(path, "a pattern is a JSON object"));
    };
    if depth > MAX_DEPTH {
        return Err(err(path, format!("nested deeper than {MAX_DEPTH} levels")));
    }
    if map.is_empty() && depth > 0 {
        return Err(err(path, "Empty objects are not allowed"));
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
            let group = alternatives
                .iter()
                .enumerate()
                .map(|(i, alt)| parse_object(alt, &format!("{here}[{i}]"), depth + 1, parsing))
                .collect::<Result<Vec<_>, _>>()?;
            pattern.any_of.push(group);
            continue;
        }
        let node = match v {
            Value::Object(_) => {
                if parsing.dialect == Dialect::SnsAttributes {
                    return Err(err(
                        &here,
                        "a filter policy on message attributes cannot nest objects",
                    ));
                }
                Node::Nested(parse_object(v, &here, depth + 1, parsing)?)
            }
            Value::Array(items) => {
                if items.is_empty() {
                    return Err(err(&here, "Empty arrays are not allowed"));
                }
                Node::Conditions(
                    items
                        .iter()
                        // `here` names the field as nested keys would, so `"a.b"` and
                        // `{"a": {"b": ..}}` share their wildcards' complexity.
                        .map(|c| parse_condition(c, &here, parsing))
                        .collect::<Result<_, _>>()?,
                )
            }
            _ => {
                return Err(err(
                    &here,
                    format!("\"{key}\" must be an object or an array"),
                ));
            }
        };
        let segments: Vec<&str> = key.split('.').collect();
        insert(&mut pattern, &segments, node);
    }
    Ok(pattern)
}

/// Adds `node` at the dotted path `segments`, inside the nested pattern already there
/// when there is one (so one array element must satisfy all of it, as with nesting).
fn insert(pattern: &mut Pattern, segments: &[&str], node: Node) {
    let [first, rest @ ..] = segments else {
        return;
    };
    if rest.is_empty() {
        pattern.fields.push((first.to_string(), node));
        return;
    }
    let existing = pattern.fields.iter_mut().find_map(|(k, n)| match n {
        Node::Nested(inner) if k == first => Some(inner),
        _ => None,
    });
    match existing {
        Some(inner) => insert(inner, rest, node),
        None => {
            let mut inner = Pattern {
                fields: Vec::new(),
                any_of: Vec::new(),
            };
            insert(&mut inner, rest, node);
            pattern
                .fields
                .push((first.to_string(), Node::Nested(inner)));
        }
    }
}

fn one_key<'v>(
    map: &'v Map<String, Value>,
    path: &str,
) -> Result<(&'v str, &'v Value), PatternError> {
    let mut entries = map.iter();
    match (entries.next(), entries.next()) {
        (Some((k, v)), None) => Ok((k.as_str(), v)),
        (None, _) => Err(err(path, "Empty objects are not allowed")),
        _ => Err(err(path, "Only one key allowed in match expression")),
    }
}

fn string_of(v: &Value, path: &str, op: &str) -> Result<String, PatternError> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| err(path, format!("{op} match pattern must be a string")))
}

/// `prefix` / `suffix`'s argument: a string, or `{"equals-ignore-case": string}`.
fn affix_of(v: &Value, path: &str, op: &str) -> Result<(String, bool), PatternError> {
    match v {
        Value::String(s) => Ok((s.clone(), false)),
        Value::Object(m) => match one_key(m, path)? {
            ("equals-ignore-case", Value::String(s)) => Ok((s.to_lowercase(), true)),
            ("equals-ignore-case", _) => Err(err(
                path,
                "equals-ignore-case match pattern must be a string",
            )),
            (other, _) => Err(err(path, format!("Unsupported {op} pattern: {other}"))),
        },
        _ => Err(err(path, format!("{op} match pattern must be a string"))),
    }
}

/// Strings, one or a non-empty list of them, for an operator inside `anything-but`.
fn strings_of(v: &Value, path: &str, op: &str) -> Result<Vec<String>, PatternError> {
    let items: Vec<&Value> = match v {
        Value::Array(items) if items.is_empty() => {
            return Err(err(
                path,
                format!("Empty arrays are not allowed in anything-but {op}"),
            ));
        }
        Value::Array(items) => items.iter().collect(),
        one => vec![one],
    };
    items
        .into_iter()
        .map(|i| {
            i.as_str().map(str::to_string).ok_or_else(|| {
                err(
                    path,
                    format!("anything-but {op} must be a string or an array of strings"),
                )
            })
        })
        .collect()
}

fn parse_condition(
    c: &Value,
    path: &str,
    parsing: &mut Parsing,
) -> Result<Condition, PatternError> {
    let dialect = parsing.dialect;
    let Value::Object(map) = c else {
        return match c {
            Value::Array(_) => Err(err(
                path,
                "Match value must be String, number, true, false, or null",
            )),
            Value::Number(n) => Ok(numeric_equal(n, dialect)),
            exact => Ok(Condition::Exact(exact.clone())),
        };
    };
    let (op, arg) = one_key(map, path)?;
    match op {
        "prefix" => {
            let (s, ignore_case) = affix_of(arg, path, op)?;
            Ok(Condition::Prefix(s, ignore_case))
        }
        "suffix" => {
            let (s, ignore_case) = affix_of(arg, path, op)?;
            Ok(Condition::Suffix(s, ignore_case))
        }
        "equals-ignore-case" => Ok(Condition::EqualsIgnoreCase(
            string_of(arg, path, op)?.to_lowercase(),
        )),
        "wildcard" if dialect == Dialect::EventBridge => {
            let w = Wildcard::parse(&string_of(arg, path, op)?).map_err(|e| err(path, e))?;
            parsing
                .wildcards
                .entry(field_key(path))
                .or_default()
                .push(w.clone());
            Ok(Condition::Wildcard(w))
        }
        "cidr" => Ok(Condition::Cidr(
            Cidr::parse(&string_of(arg, path, op)?).map_err(|e| err(path, e))?,
        )),
        "exists" => match arg {
            Value::Bool(b) => Ok(Condition::Exists(*b)),
            _ => Err(err(
                path,
                "exists match pattern must be either true or false.",
            )),
        },
        "anything-but" => parse_anything_but(arg, path, parsing),
        "numeric" => parse_numeric(arg, path, dialect),
        other => Err(err(path, format!("Unrecognized match type {other}"))),
    }
}

/// A field's path without the `$or` alternatives it sits in: a field's wildcards count
/// together wherever in the pattern they are.
fn field_key(path: &str) -> String {
    let mut key = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(at) = rest.find(".$or[") {
        key.push_str(&rest[..at]);
        let after = &rest[at + ".$or[".len()..];
        match after.find(']') {
            Some(end) if after[..end].bytes().all(|b| b.is_ascii_digit()) => {
                rest = &after[end + 1..];
            }
            _ => {
                key.push_str(".$or[");
                rest = after;
            }
        }
    }
    key.push_str(rest);
    key
}

fn check_number(n: Option<f64>, path: &str, dialect: Dialect) -> Result<f64, PatternError> {
    let limit = dialect.numeric_limit();
    match n {
        Some(n) if n.abs() <= limit => Ok(n),
        Some(n) => Err(err(
            path,
            format!("Value {n} is out of range: numbers are between -{limit:e} and {limit:e}"),
        )),
        None => Err(err(path, "Value of numeric must be a number")),
    }
}

fn parse_anything_but(
    arg: &Value,
    path: &str,
    parsing: &mut Parsing,
) -> Result<Condition, PatternError> {
    let dialect = parsing.dialect;
    let inner: Vec<Condition> = match arg {
        Value::Array(items) if items.is_empty() => {
            return Err(err(path, "Empty arrays are not allowed"));
        }
        // Only strings or only numbers, as both clouds document.
        Value::Array(items) if items.iter().all(Value::is_string) => {
            items.iter().map(|v| Condition::Exact(v.clone())).collect()
        }
        Value::Array(items) if items.iter().all(Value::is_number) => items
            .iter()
            .map(|v| {
                check_number(v.as_f64(), path, dialect)?;
                Ok(match v {
                    Value::Number(n) => numeric_equal(n, dialect),
                    _ => Condition::Exact(v.clone()),
                })
            })
            .collect::<Result<_, PatternError>>()?,
        Value::Array(_) => {
            return Err(err(
                path,
                "Inside anything-but list, only all strings or all numbers are allowed",
            ));
        }
        Value::String(_) => vec![Condition::Exact(arg.clone())],
        Value::Number(n) => {
            check_number(n.as_f64(), path, dialect)?;
            vec![numeric_equal(n, dialect)]
        }
        Value::Object(m) => {
            let (op, inner_arg) = one_key(m, path)?;
            let allowed = match dialect {
                Dialect::EventBridge => {
                    matches!(op, "prefix" | "suffix" | "equals-ignore-case" | "wildcard")
                }
                Dialect::SnsAttributes | Dialect::SnsBody => op == "prefix",
            };
            if !allowed {
                return Err(err(path, format!("Unsupported anything-but pattern: {op}")));
            }
            let strings = strings_of(inner_arg, path, op)?;
            if matches!(op, "prefix" | "suffix") && strings.iter().any(String::is_empty) {
                return Err(err(
                    path,
                    format!("Null {op} not allowed: anything-but {op} cannot be empty"),
                ));
            }
            strings
                .into_iter()
                .map(|s| match op {
                    "prefix" => Ok(Condition::Prefix(s, false)),
                    "suffix" => Ok(Condition::Suffix(s, false)),
                    "equals-ignore-case" => Ok(Condition::EqualsIgnoreCase(s.to_lowercase())),
                    _ => {
                        let w = Wildcard::parse(&s).map_err(|e| err(path, e))?;
                        parsing
                            .wildcards
                            .entry(field_key(path))
                            .or_default()
                            .push(w.clone());
                        Ok(Condition::Wildcard(w))
                    }
                })
                .collect::<Result<_, PatternError>>()?
        }
        _ => {
            return Err(err(
                path,
                "Value of anything-but must be an array or single string/number value.",
            ));
        }
    };
    Ok(Condition::AnythingBut(inner))
}

fn parse_numeric(arg: &Value, path: &str, dialect: Dialect) -> Result<Condition, PatternError> {
    let Value::Array(items) = arg else {
        return Err(err(path, "Value of numeric must be an array."));
    };
    if items.is_empty() || items.len() % 2 != 0 || items.len() > 4 {
        return Err(err(
            path,
            "numeric takes one comparison [op, number] or a range [lower op, number, upper op, number]",
        ));
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
                    format!("Unrecognized numeric range operator: {}", pair[0]),
                ));
            }
        };
        let n = match &pair[1] {
            Value::Number(n) => check_number(n.as_f64(), path, dialect)?,
            other => {
                return Err(err(
                    path,
                    format!("Value of {} must be a number, not {other}", pair[0]),
                ));
            }
        };
        ranges.push((cmp, n));
    }
    if ranges.len() == 2 {
        let lower = matches!(ranges[0].0, Cmp::Gt | Cmp::Ge);
        let upper = matches!(ranges[1].0, Cmp::Lt | Cmp::Le);
        if !(lower && upper) {
            return Err(err(
                path,
                "Bad value in numeric range: a range is a lower bound (> or >=) then an upper bound (< or <=)",
            ));
        }
        if ranges[0].1 >= ranges[1].1 {
            return Err(err(
                path,
                "Bad numeric range: the lower bound must be below the upper bound",
            ));
        }
    }
    let scale = dialect.numeric_scale();
    let ranges = ranges
        .into_iter()
        .map(|(cmp, n)| (cmp, (n * scale).round()))
        .collect();
    Ok(Condition::Numeric(ranges, scale))
}

/// A number in a pattern's list: equal to within the dialect's decimal places, as the
/// clouds compare numbers (`5` also matches `5.0` and `5.0000001` in an event).
fn numeric_equal(n: &serde_json::Number, dialect: Dialect) -> Condition {
    let scale = dialect.numeric_scale();
    let bound = n.as_f64().map_or(f64::NAN, |n| (n * scale).round());
    Condition::Numeric(vec![(Cmp::Eq, bound)], scale)
}

fn number_of(v: &Value, numbers: Numbers) -> Option<f64> {
    match (v, numbers) {
        (Value::Number(n), _) => n.as_f64(),
        (Value::String(s), Numbers::FromStrings) => s.trim().parse().ok(),
        _ => None,
    }
}

impl Condition {
    /// Whether a field whose leaf values are `leaves` (none: absent, an object or an
    /// empty array) satisfies this condition.
    fn matches(&self, leaves: &[&Value], numbers: Numbers) -> bool {
        match self {
            Condition::Exists(want) => leaves.is_empty() != *want,
            c => leaves.iter().any(|v| c.matches_value(v, numbers)),
        }
    }

    fn matches_value(&self, v: &Value, numbers: Numbers) -> bool {
        match self {
            // Numbers in a pattern are `Numeric` equalities: this is strings, booleans, null.
            Condition::Exact(want) => want == v,
            Condition::Prefix(p, false) => v.as_str().is_some_and(|s| s.starts_with(p.as_str())),
            Condition::Suffix(p, false) => v.as_str().is_some_and(|s| s.ends_with(p.as_str())),
            Condition::Prefix(p, true) => v
                .as_str()
                .is_some_and(|s| s.to_lowercase().starts_with(p.as_str())),
            Condition::Suffix(p, true) => v
                .as_str()
                .is_some_and(|s| s.to_lowercase().ends_with(p.as_str())),
            Condition::EqualsIgnoreCase(p) => v.as_str().is_some_and(|s| s.to_lowercase() == *p),
            Condition::Wildcard(w) => v.as_str().is_some_and(|s| w.matches(s)),
            Condition::Cidr(c) => v.as_str().is_some_and(|s| c.contains(s)),
            Condition::AnythingBut(excluded) => {
                !excluded.iter().any(|c| c.matches_value(v, numbers))
            }
            Condition::Numeric(ranges, scale) => number_of(v, numbers).is_some_and(|n| {
                let n = (n * scale).round();
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

/// SNS message attributes as the document a filter policy reads. Attributes arrive here
/// as strings, without SNS's data type: a value that is a JSON array (`["a", 1]`) is
/// taken as a `String.Array`, whose elements match one by one; any other value is a
/// `String` (or a `Number`, which `Numbers::FromStrings` reads from the string).
pub fn attributes_document(attributes: &[(String, String)]) -> Value {
    Value::Object(
        attributes
            .iter()
            .map(|(k, v)| {
                let value = match serde_json::from_str::<Value>(v) {
                    Ok(array @ Value::Array(_)) if v.trim_start().starts_with('[') => array,
                    _ => Value::String(v.clone()),
                };
                (k.clone(), value)
            })
            .collect(),
    )
}
