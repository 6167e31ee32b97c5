//! Comparing expected and actual JSON in fixtures.

use serde_json::Value;

/// `exact`: equal documents. `subset`: every field the expectation names is present
/// with a matching value; arrays match element by element and must be the same length.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchMode {
    #[default]
    Exact,
    Subset,
}

pub fn matches(mode: MatchMode, expected: &Value, actual: &Value) -> bool {
    match mode {
        MatchMode::Exact => same(expected, actual),
        MatchMode::Subset => subset(expected, actual),
    }
}

/// Equality where `1` and `1.0` are the same number.
fn same(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| same(v, w)))
        }
        _ => expected == actual,
    }
}

pub fn subset(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => e
            .iter()
            .all(|(k, v)| a.get(k).is_some_and(|w| subset(v, w))),
        (Value::Array(e), Value::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(x, y)| subset(x, y))
        }
        _ => same(expected, actual),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subset_ignores_extra_fields_but_not_wrong_ones() {
        let actual = json!({"status": 200, "body": {"message": "hi", "count": 2}});
        assert!(subset(&json!({"body": {"count": 2}}), &actual));
        assert!(!subset(&json!({"body": {"count": 3}}), &actual));
        assert!(!subset(&json!({"missing": null}), &actual));
        assert!(!matches(MatchMode::Exact, &json!({"status": 200}), &actual));
        assert!(matches(
            MatchMode::Exact,
            &json!({"status": 200.0, "body": {"count": 2, "message": "hi"}}),
            &actual
        ));
    }

    #[test]
    fn arrays_must_have_the_same_length() {
        assert!(subset(&json!([{"a": 1}]), &json!([{"a": 1, "b": 2}])));
        assert!(!subset(&json!([{"a": 1}]), &json!([{"a": 1}, {"a": 2}])));
    }
}
