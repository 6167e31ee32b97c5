//! JSON values into the evaluator's arena and back, the way back bounded: a result may
//! share one large value many times over in the arena (`[1..100000].($big)`), so its
//! size is counted as it is copied out, and the copy stops at the payload limit.

use bumpalo::Bump;
use jsonata_rs::{ArrayFlags, Value as J};
use serde_json::{Map, Number, Value};

use super::limits::{MAX_OUTPUT_BYTES, MAX_OUTPUT_NESTING};

/// `value` as an evaluator value in `arena`.
pub fn to_jsonata<'a>(arena: &'a Bump, value: &Value) -> &'a J<'a> {
    let converted: &'a J<'a> = match value {
        Value::Null => J::null(arena),
        Value::Bool(b) => J::bool(*b),
        Value::Number(n) => J::number(arena, n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => J::string(arena, s),
        Value::Array(items) => {
            let array = J::array_with_capacity(arena, items.len(), ArrayFlags::empty());
            for item in items {
                array.push(to_jsonata(arena, item));
            }
            array
        }
        Value::Object(map) => {
            let object = J::object_with_capacity(arena, map.len());
            for (k, v) in map {
                object.insert(k, to_jsonata(arena, v));
            }
            object
        }
    };
    converted
}

/// An evaluator value as JSON, refused past `budget` bytes of JSON text (counted
/// roughly: values and separators, strings without their escapes) or past
/// [`MAX_OUTPUT_NESTING`] levels.
pub fn from_jsonata<'a>(value: &'a J<'a>, budget: &mut usize) -> Result<Value, String> {
    copy(value, budget, 0)
}

fn spend(budget: &mut usize, bytes: usize) -> Result<(), String> {
    *budget = budget
        .checked_sub(bytes)
        .ok_or_else(|| format!("returned a value over the limit of {MAX_OUTPUT_BYTES} bytes"))?;
    Ok(())
}

fn copy<'a>(value: &'a J<'a>, budget: &mut usize, depth: usize) -> Result<Value, String> {
    if depth > MAX_OUTPUT_NESTING {
        return Err(format!(
            "returned a value nested deeper than {MAX_OUTPUT_NESTING} levels"
        ));
    }
    Ok(match value {
        J::Undefined | J::Null => {
            spend(budget, 4)?;
            Value::Null
        }
        J::Bool(b) => {
            spend(budget, 5)?;
            Value::Bool(*b)
        }
        J::Number(n) => {
            spend(budget, 24)?;
            number(*n)?
        }
        J::String(s) => {
            spend(budget, s.len() + 2)?;
            Value::String(s.to_string())
        }
        J::Array(..) | J::Range(..) => {
            spend(budget, 2)?;
            let mut out = Vec::new();
            for item in value.members() {
                // An array never holds undefined in JSON (JSONata drops it).
                if item.is_undefined() {
                    continue;
                }
                spend(budget, 1)?;
                out.push(copy(item, budget, depth + 1)?);
            }
            Value::Array(out)
        }
        J::Object(_) => {
            spend(budget, 2)?;
            let mut out = Map::new();
            for (k, v) in value.entries() {
                // An undefined value leaves its key out, as JSON.stringify does.
                if v.is_undefined() {
                    continue;
                }
                spend(budget, k.len() + 4)?;
                out.insert(k.to_string(), copy(v, budget, depth + 1)?);
            }
            Value::Object(out)
        }
        J::Lambda { .. } | J::NativeFn { .. } | J::Transformer { .. } => {
            return Err("returned a function, which JSON cannot hold".to_string());
        }
        J::Regex(_) => {
            return Err("returned a regular expression, which JSON cannot hold".to_string());
        }
    })
}

/// A JSONata number as JSON: integers as integers (`3`, not `3.0`), as the cloud
/// writes them.
fn number(n: f64) -> Result<Value, String> {
    if !n.is_finite() {
        return Err(format!("returned {n}, which JSON cannot hold"));
    }
    if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        return Ok(Value::from(n as i64));
    }
    Number::from_f64(n)
        .map(Value::Number)
        .ok_or_else(|| format!("returned {n}, which JSON cannot hold"))
}
