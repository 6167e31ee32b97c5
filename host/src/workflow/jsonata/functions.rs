//! The functions Step Functions adds to JSONata (the developer guide's "JSONata
//! functions provided by Step Functions"): `$partition`, `$range`, `$hash`, `$random`
//! (with an optional seed), `$uuid` and `$parse`, the JSONata forms of the intrinsics
//! `States.ArrayPartition`, `States.ArrayRange`, `States.Hash`, `States.MathRandom`,
//! `States.UUID` and `States.StringToJson`.

use bumpalo::Bump;
use jsonata_rs::{ArrayFlags, Error, FunctionContext, JsonAta, Value as J};

use super::convert::to_jsonata;
use crate::workflow::intrinsics::{MAX_RANGE, hash as digest};

/// The cloud's functions, bound as `$PREFIX{name}` and named `$name` by the prelude of
/// an expression that mentions them.
pub const NAMES: [&str; 6] = ["partition", "range", "hash", "random", "uuid", "parse"];
pub const PREFIX: &str = "__orquesta_fn_";

/// Built-in functions that build a string outside the arena, before its limit can
/// apply (`$pad('', 1e12)` would otherwise ask for a terabyte): each is bound, by the
/// prelude of an expression that mentions it, to a guard that checks the size of what
/// it would build, then calls the built-in (kept as `$ORIGINAL{name}`).
pub const GUARDED: [&str; 4] = ["pad", "join", "string", "replace"];
pub const ORIGINAL: &str = "__orquesta_builtin_";
/// The most a guarded built-in may build.
pub const MAX_STRING_BYTES: usize = 16 * 1024 * 1024;

/// The most a `$parse` may read: a payload.
const MAX_PARSE_BYTES: usize = 256 * 1024;

type Native =
    for<'a, 'e> fn(FunctionContext<'a, 'e>, &[&'a J<'a>]) -> jsonata_rs::Result<&'a J<'a>>;

/// Binds the cloud's functions in `jsonata`.
pub fn register(jsonata: &JsonAta) {
    let table: [(&str, usize, Native); 6] = [
        ("partition", 2, partition),
        ("range", 3, range),
        ("hash", 2, hash),
        ("random", 1, random),
        ("uuid", 0, uuid),
        ("parse", 1, parse),
    ];
    for (name, arity, f) in table {
        jsonata.register_function(&format!("{PREFIX}{name}"), arity, f);
    }
    let guards: [(&str, usize, Native); 4] = [
        ("pad", 3, guard_pad),
        ("join", 2, guard_join),
        ("string", 2, guard_string),
        ("replace", 4, guard_replace),
    ];
    for (name, arity, f) in guards {
        jsonata.register_function(&format!("{PREFIX}{name}"), arity, f);
    }
}

/// Calls the built-in `name` once its guard let it.
fn builtin<'a>(
    ctx: &FunctionContext<'a, '_>,
    name: &str,
    args: &[&'a J<'a>],
) -> jsonata_rs::Result<&'a J<'a>> {
    match ctx.frame.lookup(&format!("{ORIGINAL}{name}")) {
        Some(f) => ctx.evaluate_function(f, args),
        None => refuse(name, "the built-in function is missing"),
    }
}

fn too_big<T>(name: &str) -> jsonata_rs::Result<T> {
    refuse(
        name,
        format!("the result would be over the limit of {MAX_STRING_BYTES} bytes"),
    )
}

/// About how many bytes `value` takes as JSON text, counted up to `cap` (past it,
/// `cap + 1`): a value may share one large value many times over.
fn text_size<'a>(value: &'a J<'a>, cap: usize) -> usize {
    fn walk<'a>(v: &'a J<'a>, cap: usize, total: &mut usize, depth: usize) {
        if *total > cap {
            return;
        }
        // Pretty printing indents each level: count it.
        *total += 2 * depth;
        match v {
            J::String(s) => *total += s.len() + 2,
            J::Range(_) => *total += v.len().saturating_mul(12),
            J::Array(..) => {
                *total += 2;
                for item in v.members() {
                    walk(item, cap, total, depth + 1);
                    *total += 1;
                    if *total > cap {
                        return;
                    }
                }
            }
            J::Object(_) => {
                *total += 2;
                for (k, item) in v.entries() {
                    *total += k.len() + 4;
                    walk(item, cap, total, depth + 1);
                    if *total > cap {
                        return;
                    }
                }
            }
            _ => *total += 24,
        }
    }
    let mut total = 0;
    walk(value, cap, &mut total, 0);
    total.min(cap + 1)
}

fn guard_pad<'a>(
    ctx: FunctionContext<'a, '_>,
    args: &[&'a J<'a>],
) -> jsonata_rs::Result<&'a J<'a>> {
    let width = arg(args, 1);
    let pad_bytes = if arg(args, 2).is_string() {
        arg(args, 2).as_str().len().max(1)
    } else {
        1
    };
    if let J::Number(w) = width
        && w.abs() * pad_bytes as f64 > MAX_STRING_BYTES as f64
    {
        return too_big("pad");
    }
    builtin(&ctx, "pad", args)
}

fn guard_join<'a>(
    ctx: FunctionContext<'a, '_>,
    args: &[&'a J<'a>],
) -> jsonata_rs::Result<&'a J<'a>> {
    let (strings, separator) = (arg(args, 0), arg(args, 1));
    if strings.is_array() {
        let separator = if separator.is_string() {
            separator.as_str().len()
        } else {
            0
        };
        let mut total = 0usize;
        for s in strings.members() {
            total = total.saturating_add(separator);
            if s.is_string() {
                total = total.saturating_add(s.as_str().len());
            }
            if total > MAX_STRING_BYTES {
                return too_big("join");
            }
        }
    }
    builtin(&ctx, "join", args)
}

fn guard_string<'a>(
    ctx: FunctionContext<'a, '_>,
    args: &[&'a J<'a>],
) -> jsonata_rs::Result<&'a J<'a>> {
    if text_size(arg(args, 0), MAX_STRING_BYTES) > MAX_STRING_BYTES {
        return too_big("string");
    }
    builtin(&ctx, "string", args)
}

fn guard_replace<'a>(
    ctx: FunctionContext<'a, '_>,
    args: &[&'a J<'a>],
) -> jsonata_rs::Result<&'a J<'a>> {
    let (text, pattern, replacement) = (arg(args, 0), arg(args, 1), arg(args, 2));
    if text.is_string() && replacement.is_string() {
        let text = text.as_str();
        // A string pattern's matches are counted; a regex may match at every place.
        let matches = if pattern.is_string() && !pattern.as_str().is_empty() {
            text.matches(pattern.as_str().as_ref()).count()
        } else {
            text.len() + 1
        };
        let grows = matches.saturating_mul(replacement.as_str().len());
        if text.len().saturating_add(grows) > MAX_STRING_BYTES {
            return too_big("replace");
        }
    }
    builtin(&ctx, "replace", args)
}

fn refuse<T>(function: &str, why: impl std::fmt::Display) -> jsonata_rs::Result<T> {
    Err(Error::D3137Error(format!("${function}: {why}")))
}

/// An argument that must be an integer.
fn integer(function: &str, what: &str, v: &J) -> jsonata_rs::Result<i64> {
    match v {
        J::Number(n) if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 => Ok(*n as i64),
        _ => refuse(function, format!("{what} must be an integer")),
    }
}

fn arg<'a>(args: &[&'a J<'a>], i: usize) -> &'a J<'a> {
    args.get(i).copied().unwrap_or_else(J::undefined)
}

/// `$partition(array, size)`: the array in chunks of `size` (the last may be shorter).
fn partition<'a>(
    ctx: FunctionContext<'a, '_>,
    args: &[&'a J<'a>],
) -> jsonata_rs::Result<&'a J<'a>> {
    let (array, size) = (arg(args, 0), arg(args, 1));
    if !array.is_array() {
        return refuse("partition", "the first argument must be an array");
    }
    let size = integer("partition", "the chunk size", size)?;
    if size <= 0 {
        return refuse("partition", "the chunk size must be positive");
    }
    let size = size as usize;
    let out = J::array(ctx.arena, ArrayFlags::empty());
    let mut chunk = J::array(ctx.arena, ArrayFlags::empty());
    for item in array.members() {
        chunk.push(item);
        if chunk.len() == size {
            out.push(chunk);
            chunk = J::array(ctx.arena, ArrayFlags::empty());
        }
    }
    if !chunk.is_empty() {
        out.push(chunk);
    }
    Ok(out)
}

/// `$range(start, end, step)`: integers from `start` to `end` included, `step` apart,
/// at most 1000 of them (the limit of `States.ArrayRange`).
fn range<'a>(ctx: FunctionContext<'a, '_>, args: &[&'a J<'a>]) -> jsonata_rs::Result<&'a J<'a>> {
    let start = integer("range", "the start", arg(args, 0))?;
    let end = integer("range", "the end", arg(args, 1))?;
    let step = integer("range", "the step", arg(args, 2))?;
    if step == 0 {
        return refuse("range", "the step must not be 0");
    }
    let out = J::array(ctx.arena, ArrayFlags::empty());
    let mut i = start;
    while (step > 0 && i <= end) || (step < 0 && i >= end) {
        if out.len() == MAX_RANGE {
            return refuse(
                "range",
                format!("the range has more than {MAX_RANGE} items"),
            );
        }
        out.push(J::number(ctx.arena, i as f64));
        match i.checked_add(step) {
            Some(next) => i = next,
            None => break,
        }
    }
    Ok(out)
}

/// `$hash(data, algorithm)`: the hex digest of a string by MD5, SHA-1, SHA-256,
/// SHA-384 or SHA-512.
fn hash<'a>(ctx: FunctionContext<'a, '_>, args: &[&'a J<'a>]) -> jsonata_rs::Result<&'a J<'a>> {
    let (data, algorithm) = (arg(args, 0), arg(args, 1));
    if !data.is_string() || !algorithm.is_string() {
        return refuse("hash", "the data and the algorithm must be strings");
    }
    match digest(data.as_str().as_bytes(), &algorithm.as_str()) {
        Ok(hex) => Ok(J::string(ctx.arena, &hex)),
        Err(e) => refuse("hash", e),
    }
}

/// `$random([seed])`: a number from 0 (included) to 1 (excluded); the same seed gives
/// the same number.
fn random<'a>(ctx: FunctionContext<'a, '_>, args: &[&'a J<'a>]) -> jsonata_rs::Result<&'a J<'a>> {
    let seed = arg(args, 0);
    let mut rng = if seed.is_undefined() {
        fastrand::Rng::new()
    } else {
        fastrand::Rng::with_seed(integer("random", "the seed", seed)? as u64)
    };
    Ok(J::number(ctx.arena, rng.f64()))
}

/// `$uuid()`: a version 4 UUID.
fn uuid<'a>(ctx: FunctionContext<'a, '_>, _args: &[&'a J<'a>]) -> jsonata_rs::Result<&'a J<'a>> {
    Ok(J::string(ctx.arena, &uuid::Uuid::new_v4().to_string()))
}

/// `$parse(text)`: the JSON value a string holds (the cloud's replacement for `$eval`).
fn parse<'a>(ctx: FunctionContext<'a, '_>, args: &[&'a J<'a>]) -> jsonata_rs::Result<&'a J<'a>> {
    let text = arg(args, 0);
    if !text.is_string() {
        return refuse("parse", "the argument must be a string");
    }
    let text = text.as_str();
    if text.len() > MAX_PARSE_BYTES {
        return refuse(
            "parse",
            format!("the text is over the limit of {MAX_PARSE_BYTES} bytes"),
        );
    }
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(v) => Ok(to_jsonata(arena(&ctx), &v)),
        Err(e) => refuse("parse", format!("the text is not JSON: {e}")),
    }
}

fn arena<'a>(ctx: &FunctionContext<'a, '_>) -> &'a Bump {
    ctx.arena
}
