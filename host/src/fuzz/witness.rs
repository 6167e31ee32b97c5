//! A document that a pattern must match, built from the pattern's own values: for each
//! field, the first condition whose witness is certain (an exact value, the prefix itself,
//! a number in the range, ...). Fields that several parts of the pattern constrain hold
//! an array of their values, since a field matches when any element does.

use std::collections::BTreeMap;

use serde_json::{Map, Number, Value};

/// What the document holds at one field.
#[derive(Debug, Clone, Default)]
struct Slot {
    /// `{"exists": false}` chose this field's absence.
    absent: bool,
    values: Vec<Value>,
    nested: Option<Fields>,
}

type Fields = BTreeMap<String, Slot>;

/// `None` when no certain witness exists (a field with only `anything-but` conditions, a
/// numeric range too narrow, parts that want a field both present and absent).
pub fn document(pattern: &Value) -> Option<Value> {
    Some(render(object(pattern)?))
}

fn object(pattern: &Value) -> Option<Fields> {
    let map = pattern.as_object()?;
    let mut fields = Fields::new();
    for (key, v) in map.iter().filter(|(k, _)| *k != "$or") {
        // A dotted key is a path that other keys may also reach: no certain witness.
        if key.contains('.') {
            return None;
        }
        let slot = match v {
            Value::Object(_) => Slot {
                nested: Some(object(v)?),
                ..Slot::default()
            },
            Value::Array(conditions) => conditions.iter().find_map(condition)?,
            _ => return None,
        };
        add(&mut fields, key, slot)?;
    }
    match map.get("$or") {
        // Any alternative will do: the first that agrees with the other fields.
        Some(Value::Array(alternatives)) => alternatives.iter().find_map(|alt| {
            let mut with = fields.clone();
            for (key, slot) in object(alt)? {
                add(&mut with, &key, slot)?;
            }
            Some(with)
        }),
        Some(_) => None,
        None => Some(fields),
    }
}

fn add(fields: &mut Fields, key: &str, slot: Slot) -> Option<()> {
    let Some(have) = fields.get_mut(key) else {
        fields.insert(key.to_string(), slot);
        return Some(());
    };
    have.absent |= slot.absent;
    have.values.extend(slot.values);
    match (&mut have.nested, slot.nested) {
        (Some(mine), Some(theirs)) => {
            for (k, s) in theirs {
                add(mine, &k, s)?;
            }
        }
        (mine @ None, theirs) => *mine = theirs,
        (Some(_), None) => {}
    }
    (!have.absent || (have.values.is_empty() && have.nested.is_none())).then_some(())
}

fn condition(c: &Value) -> Option<Slot> {
    let value = match c {
        Value::Object(map) if map.len() == 1 => {
            let (op, arg) = map.iter().next()?;
            match (op.as_str(), arg) {
                ("prefix" | "suffix" | "equals-ignore-case", Value::String(s)) => {
                    Value::String(s.clone())
                }
                ("prefix" | "suffix", Value::Object(inner)) => {
                    match inner.get("equals-ignore-case") {
                        Some(Value::String(s)) if inner.len() == 1 => Value::String(s.clone()),
                        _ => return None,
                    }
                }
                ("wildcard", Value::String(s)) => Value::String(unstarred(s)),
                // The block's own address lies in it.
                ("cidr", Value::String(s)) => Value::String(s.split_once('/')?.0.to_string()),
                ("exists", Value::Bool(true)) => Value::String("present".into()),
                ("exists", Value::Bool(false)) => {
                    return Some(Slot {
                        absent: true,
                        ..Slot::default()
                    });
                }
                ("numeric", Value::Array(items)) => Value::Number(in_range(items)?),
                _ => return None,
            }
        }
        Value::Object(_) | Value::Array(_) => return None,
        exact => exact.clone(),
    };
    Some(Slot {
        values: vec![value],
        ..Slot::default()
    })
}

/// The text a wildcard matches with every `*` matching nothing: escapes (`\*`, `\\`)
/// stand for their character.
fn unstarred(pattern: &str) -> String {
    let mut out = String::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '*' => {}
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// A number within `[op, bound, ...]`, when one is certain.
/// Past a strict bound by more than the coarser dialect's precision (SNS compares to five
/// decimal places, EventBridge six), so the value is beyond the bound in both.
const STEP: f64 = 2.0e-5;

fn in_range(items: &[Value]) -> Option<Number> {
    let bound = |i: usize| items.get(i)?.as_f64();
    let op = |i: usize| items.get(i)?.as_str();
    let n = match items.len() {
        2 => match op(0)? {
            "=" | ">=" | "<=" => bound(1)?,
            ">" => bound(1)? + STEP,
            "<" => bound(1)? - STEP,
            _ => return None,
        },
        4 => {
            let (low, high) = (bound(1)?, bound(3)?);
            let n = match op(0)? {
                ">=" => low,
                ">" => low + STEP,
                _ => return None,
            };
            let inside = match op(2)? {
                "<=" => n <= high,
                "<" => n + STEP <= high,
                _ => false,
            };
            inside.then_some(n)?
        }
        _ => return None,
    };
    Number::from_f64(n)
}

fn render(fields: Fields) -> Value {
    let mut map = Map::new();
    for (key, slot) in fields {
        if slot.absent {
            continue;
        }
        let mut items = slot.values;
        if let Some(nested) = slot.nested {
            items.push(render(nested));
        }
        let value = match items.len() {
            1 => items.remove(0),
            _ => Value::Array(items),
        };
        map.insert(key, value);
    }
    Value::Object(map)
}
