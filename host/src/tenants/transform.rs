//! EventBridge's input transformation for bus rule targets: `input` (constant JSON),
//! `input_path` (a JSONPath into the event) or `input_transformer` (`input_paths_map`
//! of names to JSONPaths, and an `input_template` with `<name>` placeholders and the
//! predefined `<aws.events.*>` variables). Paths and templates are checked as the tenant
//! file is read, so a bad one is refused with its line (docs/EVENTS.md).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// EventBridge: at most 100 entries in `InputPathsMap`, 8,192 characters of template.
const MAX_PATHS: usize = 100;
const MAX_TEMPLATE_CHARS: usize = 8192;

/// A JSONPath into the event as EventBridge writes them (`$.detail.instance-id`: dot
/// names may hold any character but `.` and `[`), checked when read: `$`, `.name`,
/// `['name']` / `["name"]`, `[N]`, and `*` / `[*]` for every member or element.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct InputPath {
    text: String,
    steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Name(String),
    Index(usize),
    All,
}

impl PartialEq for InputPath {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl TryFrom<String> for InputPath {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let bad = |why: &str| format!("`{text}` is not a JSONPath: {why}");
        let Some(mut rest) = text.strip_prefix('$') else {
            return Err(bad("it starts with `$`"));
        };
        let mut steps = Vec::new();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('.') {
                let end = after.find(['.', '[']).unwrap_or(after.len());
                let name = &after[..end];
                if name.is_empty() {
                    return Err(bad("an empty name after `.`"));
                }
                steps.push(if name == "*" {
                    Step::All
                } else {
                    Step::Name(name.to_string())
                });
                rest = &after[end..];
            } else if let Some(after) = rest.strip_prefix('[') {
                let end = after
                    .find(']')
                    .ok_or_else(|| bad("a `[` without its `]`"))?;
                let inside = after[..end].trim();
                let quoted = ['\'', '"'].iter().find_map(|q| {
                    inside
                        .strip_prefix(*q)
                        .and_then(|i| i.strip_suffix(*q))
                        .map(str::to_string)
                });
                steps.push(match (inside, quoted) {
                    ("*", _) => Step::All,
                    (_, Some(name)) => Step::Name(name),
                    (index, None) => Step::Index(
                        index
                            .parse()
                            .map_err(|_| bad("brackets hold a quoted name, an index or `*`"))?,
                    ),
                });
                rest = &after[end + 1..];
            } else {
                return Err(bad("steps are `.name` or `[...]`"));
            }
        }
        Ok(InputPath { text, steps })
    }
}

impl InputPath {
    /// What the path selects: one value; every match as an array when it has `*`; `None`
    /// when nothing is there.
    fn select(&self, event: &Value) -> Option<Value> {
        let mut nodes = vec![event];
        for step in &self.steps {
            nodes = nodes
                .into_iter()
                .flat_map(|v| -> Vec<&Value> {
                    match (step, v) {
                        (Step::Name(n), Value::Object(m)) => m.get(n).into_iter().collect(),
                        (Step::Index(i), Value::Array(a)) => a.get(*i).into_iter().collect(),
                        (Step::All, Value::Object(m)) => m.values().collect(),
                        (Step::All, Value::Array(a)) => a.iter().collect(),
                        _ => Vec::new(),
                    }
                })
                .collect();
        }
        if self.steps.contains(&Step::All) {
            return Some(Value::Array(nodes.into_iter().cloned().collect()));
        }
        nodes.first().map(|v| (*v).clone())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTransformer {
    #[serde(default)]
    input_paths_map: BTreeMap<String, InputPath>,
    input_template: String,
}

/// `input_transformer = { input_paths_map = { name = "$.detail.x" }, input_template = "..." }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawTransformer")]
pub struct InputTransformer {
    paths: BTreeMap<String, InputPath>,
    template: String,
}

impl TryFrom<RawTransformer> for InputTransformer {
    type Error = String;

    fn try_from(raw: RawTransformer) -> Result<Self, String> {
        if raw.input_paths_map.len() > MAX_PATHS {
            return Err(format!(
                "input_paths_map has {} entries; at most {MAX_PATHS}",
                raw.input_paths_map.len()
            ));
        }
        for name in raw.input_paths_map.keys() {
            if name.is_empty() || !name.chars().all(name_char) {
                return Err(format!(
                    "input_paths_map: `{name}` is not a name (letters, digits, `_`, `-`, `.`)"
                ));
            }
            if name.to_ascii_lowercase().starts_with("aws.") {
                return Err(format!(
                    "input_paths_map: `{name}`: names starting with `aws.` are reserved for the predefined variables"
                ));
            }
        }
        let chars = raw.input_template.chars().count();
        if chars > MAX_TEMPLATE_CHARS {
            return Err(format!(
                "input_template is {chars} characters; at most {MAX_TEMPLATE_CHARS}"
            ));
        }
        Ok(InputTransformer {
            paths: raw.input_paths_map,
            template: raw.input_template,
        })
    }
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// What a transformation may read besides the event.
pub struct Context<'a> {
    pub event: &'a Value,
    pub rule_name: &'a str,
    pub rule_arn: &'a str,
    /// RFC 3339.
    pub ingestion_time: &'a str,
    /// What a target may receive at most (the tenant's `limits.max_message_kb`): a
    /// template that fills past it stops there.
    pub max_bytes: usize,
}

impl InputTransformer {
    /// The target's input: the filled template as JSON when it is JSON, else as text;
    /// refused as soon as it passes `cx.max_bytes` (8,192 characters of template, each
    /// `<aws.events.event>` a whole event, would otherwise make megabytes first).
    pub fn apply(&self, cx: &Context<'_>) -> Result<Value, TooLarge> {
        // A template that is not a JSON object, array or string is text throughout:
        // values go in as their text, not as JSON.
        let trimmed = self.template.trim_start();
        let mut in_string = !trimmed.starts_with(['{', '[', '"']);
        let text_template = in_string;
        let mut out = String::with_capacity(self.template.len());
        let mut rest = self.template.as_str();
        let mut escaped = false;
        while let Some(c) = rest.chars().next() {
            if c == '<'
                && let Some(end) = rest[1..].find('>')
                && let Some(value) = self.variable(&rest[1..=end], cx)
            {
                match (in_string, value) {
                    (true, Some(Value::String(s))) => out.push_str(&escape(&s, text_template)),
                    (true, Some(other)) => out.push_str(&escape(&other.to_string(), text_template)),
                    (true, None) => {}
                    (false, Some(v)) => out.push_str(&v.to_string()),
                    (false, None) => out.push_str("null"),
                }
                if out.len() > cx.max_bytes {
                    return Err(TooLarge(cx.max_bytes));
                }
                rest = &rest[end + 2..];
                continue;
            }
            if !text_template {
                match c {
                    '"' if !escaped => in_string = !in_string,
                    _ => {}
                }
                escaped = c == '\\' && !escaped;
            }
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
        if out.len() > cx.max_bytes {
            return Err(TooLarge(cx.max_bytes));
        }
        if text_template {
            return Ok(Value::String(out));
        }
        Ok(serde_json::from_str(&out).unwrap_or(Value::String(out)))
    }

    /// The value of placeholder `name`: `None` when it names no variable (the text
    /// stays as written), `Some(None)` when its path selects nothing.
    fn variable(&self, name: &str, cx: &Context<'_>) -> Option<Option<Value>> {
        if let Some(path) = self.paths.get(name) {
            return Some(path.select(cx.event));
        }
        let value = match name {
            "aws.events.rule-name" => Value::String(cx.rule_name.to_string()),
            "aws.events.rule-arn" => Value::String(cx.rule_arn.to_string()),
            "aws.events.event.ingestion-time" => Value::String(cx.ingestion_time.to_string()),
            "aws.events.event" | "aws.events.event.json" => cx.event.clone(),
            _ => return None,
        };
        Some(Some(value))
    }
}

/// An input template that filled past the most a target may receive (the bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "input_template fills past {0} bytes, the most a target may receive (limits.max_message_kb)"
)]
pub struct TooLarge(pub usize);

/// Text for inside a JSON string (escaped), or for a text template (as it is).
fn escape(text: &str, raw: bool) -> String {
    if raw {
        return text.to_string();
    }
    let quoted = Value::String(text.to_string()).to_string();
    quoted[1..quoted.len() - 1].to_string()
}

/// A rule target's input: the event itself, or what `input`, `input_path` or
/// `input_transformer` makes of it (at most one is set; the config checks).
pub fn target_input(
    input: Option<&Value>,
    input_path: Option<&InputPath>,
    transformer: Option<&InputTransformer>,
    cx: &Context<'_>,
) -> Result<Value, TooLarge> {
    match (input, input_path, transformer) {
        (Some(constant), _, _) => Ok(constant.clone()),
        (_, Some(path), _) => Ok(path.select(cx.event).unwrap_or(Value::Null)),
        (_, _, Some(t)) => t.apply(cx),
        (None, None, None) => Ok(cx.event.clone()),
    }
}

#[cfg(test)]
mod tests {
    //! Cases from EventBridge's "input transformation" page.
    use super::*;
    use serde_json::json;

    fn transformer(paths: &[(&str, &str)], template: &str) -> InputTransformer {
        InputTransformer::try_from(RawTransformer {
            input_paths_map: paths
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        InputPath::try_from(v.to_string()).expect("a valid path"),
                    )
                })
                .collect(),
            input_template: template.to_string(),
        })
        .expect("a valid transformer")
    }

    fn event() -> Value {
        json!({"version": "0", "id": "7bf73129-1428-4cd3-a780-95db273d1602",
            "detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2",
            "account": "123456789012", "time": "2015-11-11T21:29:54Z", "region": "us-east-1",
            "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"],
            "detail": {"instance-id": "i-0123456789", "state": "RUNNING", "n": 5}})
    }

    fn cx(event: &Value) -> Context<'_> {
        Context {
            event,
            rule_name: "running",
            rule_arn: "orquesta:acme:default/running",
            ingestion_time: "2026-12-05T10:00:00.000Z",
            max_bytes: 256 * 1024,
        }
    }

    #[test]
    fn templates_fill_as_the_documentation_shows() {
        let e = event();
        let paths = [
            ("instance", "$.detail.instance-id"),
            ("state", "$.detail.state"),
        ];
        for (template, want) in [
            (
                r#"{"instance": <instance>, "state": [9, <state>, true], "Transformed": "Yes"}"#,
                json!({"instance": "i-0123456789", "state": [9, "RUNNING", true], "Transformed": "Yes"}),
            ),
            (
                r#""instance <instance> is in <state>""#,
                json!("instance i-0123456789 is in RUNNING"),
            ),
            (
                "instance <instance> is in <state>",
                json!("instance i-0123456789 is in RUNNING"),
            ),
            (
                r#"{"message": "<instance> is <state>", "rule": "<aws.events.rule-name>"}"#,
                json!({"message": "i-0123456789 is RUNNING", "rule": "running"}),
            ),
            (
                r#"{"arn": <aws.events.rule-arn>, "at": <aws.events.event.ingestion-time>, "original": <aws.events.event.json>}"#,
                json!({"arn": "orquesta:acme:default/running", "at": "2026-12-05T10:00:00.000Z", "original": event()}),
            ),
            // Unknown placeholders stay as written; a path that selects nothing is null.
            (r#"{"a": "<unknown>"}"#, json!({"a": "<unknown>"})),
        ] {
            assert_eq!(
                transformer(&paths, template).apply(&cx(&e)),
                Ok(want),
                "{template}"
            );
        }
        let numbers = transformer(
            &[("n", "$.detail.n"), ("gone", "$.detail.nothing")],
            r#"{"n": <n>, "text": "<n>", "gone": <gone>, "g": "<gone>"}"#,
        );
        assert_eq!(
            numbers.apply(&cx(&e)),
            Ok(json!({"n": 5, "text": "5", "gone": null, "g": ""}))
        );
        // A value with quotes stays one string inside the template's string.
        let quoted = json!({"detail": {"m": "say \"hi\""}});
        let t = transformer(&[("m", "$.detail.m")], r#"{"said": "<m>!"}"#);
        assert_eq!(t.apply(&cx(&quoted)), Ok(json!({"said": "say \"hi\"!"})));
    }

    #[test]
    fn input_and_input_path() {
        let e = event();
        let path = InputPath::try_from("$.detail".to_string()).expect("valid");
        assert_eq!(
            target_input(None, Some(&path), None, &cx(&e)),
            Ok(e["detail"].clone())
        );
        for (path, want) in [
            ("$", e.clone()),
            ("$.resources[0]", e["resources"][0].clone()),
            ("$['detail']['instance-id']", json!("i-0123456789")),
            ("$.detail.*", json!(["i-0123456789", 5, "RUNNING"])),
            ("$.nothing", Value::Null),
        ] {
            let p = InputPath::try_from(path.to_string()).expect("valid");
            assert_eq!(
                target_input(None, Some(&p), None, &cx(&e)),
                Ok(want),
                "{path}"
            );
        }
        let constant = json!({"fixed": true});
        assert_eq!(
            target_input(Some(&constant), None, None, &cx(&e)),
            Ok(constant)
        );
        assert_eq!(target_input(None, None, None, &cx(&e)), Ok(e));
    }

    /// Attack: a template of 8,192 characters that repeats the whole event (or a large
    /// field) would fill to hundreds of megabytes before any size check; the fill stops
    /// as soon as it passes the cap, having built little more than the cap.
    #[test]
    fn a_template_that_amplifies_stops_at_the_cap() {
        let big = json!({"detail": {"blob": "x".repeat(200 * 1024)}, "id": "e"});
        let event = transformer(&[], &"<aws.events.event>".repeat(450));
        let field = transformer(
            &[("b", "$.detail.blob")],
            &format!("\"{}\"", "<b>".repeat(2700)),
        );
        for (name, t) in [("event", &event), ("field", &field)] {
            let started = std::time::Instant::now();
            let err = t.apply(&cx(&big)).unwrap_err();
            assert_eq!(err, TooLarge(262_144), "{name}");
            // 2 of 450 (or 2700) fills made: well under the time of building them all.
            assert!(
                started.elapsed() < std::time::Duration::from_secs(1),
                "{name}"
            );
        }
        // At the cap exactly, a fill passes; one byte more does not.
        let small = json!({"v": "abcd"});
        let t = transformer(&[("v", "$.v")], "<v><v>");
        let at = |max_bytes| {
            t.apply(&Context {
                max_bytes,
                ..cx(&small)
            })
        };
        assert_eq!(at(8), Ok(json!("abcdabcd")));
        assert_eq!(at(7), Err(TooLarge(7)));
    }

    #[test]
    fn bad_paths_and_names_are_refused() {
        assert!(
            InputPath::try_from("detail.x".to_string())
                .unwrap_err()
                .contains("starts with `$`")
        );
        assert!(
            InputPath::try_from("$.[".to_string())
                .unwrap_err()
                .contains("not a JSONPath")
        );
        let raw = |name: &str| RawTransformer {
            input_paths_map: [(
                name.to_string(),
                InputPath::try_from("$.id".to_string()).expect("valid"),
            )]
            .into(),
            input_template: "<x>".into(),
        };
        assert!(
            InputTransformer::try_from(raw("aws.events.x"))
                .unwrap_err()
                .contains("reserved")
        );
        assert!(
            InputTransformer::try_from(raw("a b"))
                .unwrap_err()
                .contains("not a name")
        );
        let long = RawTransformer {
            input_paths_map: BTreeMap::new(),
            input_template: "x".repeat(MAX_TEMPLATE_CHARS + 1),
        };
        assert!(
            InputTransformer::try_from(long)
                .unwrap_err()
                .contains("at most 8192")
        );
    }
}
