//! The intrinsic functions of the Amazon States Language (`"field.$": "States.Format(...)"`),
//! parsed once when the definition loads and evaluated against a state's input and the
//! context object. A failure is the spec's `States.IntrinsicFailure`.

use base64::Engine as _;
use serde_json::{Number, Value};

use super::path::{Path, PathError, kind_of};

/// The spec allows up to 10 nested calls in one field.
const MAX_NESTING: usize = 10;
/// `States.ArrayRange` yields at most this many items.
pub(super) const MAX_RANGE: usize = 1000;
/// `States.Base64Encode` takes at most this many characters (`Base64Decode` 10,000 bytes).
const MAX_BASE64_INPUT: usize = 10_000;

#[derive(Debug, Clone)]
pub enum Arg {
    Literal(Value),
    Path(Path),
    Call(Call),
}

#[derive(Debug, Clone)]
pub struct Call {
    pub function: Function,
    pub args: Vec<Arg>,
}

macro_rules! functions {
    ($($variant:ident = $name:literal,)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Function { $($variant,)* }
        impl Function {
            fn from_name(name: &str) -> Option<Self> {
                match name { $($name => Some(Function::$variant),)* _ => None }
            }
            pub fn name(self) -> &'static str {
                match self { $(Function::$variant => $name,)* }
            }
        }
    };
}

functions! {
    Format = "States.Format",
    StringToJson = "States.StringToJson",
    JsonToString = "States.JsonToString",
    Array = "States.Array",
    ArrayPartition = "States.ArrayPartition",
    ArrayContains = "States.ArrayContains",
    ArrayRange = "States.ArrayRange",
    ArrayGetItem = "States.ArrayGetItem",
    ArrayLength = "States.ArrayLength",
    ArrayUnique = "States.ArrayUnique",
    Base64Encode = "States.Base64Encode",
    Base64Decode = "States.Base64Decode",
    Hash = "States.Hash",
    JsonMerge = "States.JsonMerge",
    MathRandom = "States.MathRandom",
    MathAdd = "States.MathAdd",
    StringSplit = "States.StringSplit",
    Uuid = "States.UUID",
}

/// Why an intrinsic call does not parse: the call's text, where the parser was, and what
/// it found there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("intrinsic {text:?} at offset {offset}: {problem}")]
pub struct SyntaxError {
    pub text: String,
    pub offset: usize,
    pub problem: SyntaxProblem,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxProblem {
    #[error("unexpected text after the call")]
    TrailingText,
    #[error("more than {MAX_NESTING} nested calls")]
    TooDeep,
    #[error("expected `(`")]
    NoOpening,
    #[error("unknown function `{0}`")]
    UnknownFunction(String),
    #[error("expected `,` or `)`")]
    NoSeparator,
    #[error("{} does not take {count} arguments", .function.name())]
    Arity { function: Function, count: usize },
    #[error(transparent)]
    Path(PathError),
    #[error("`{0}` is not a literal, path or call")]
    NotAnArgument(String),
    #[error("bad escape in a string")]
    BadEscape,
    #[error("unclosed string")]
    UnclosedString,
}

/// Why a call failed when it ran: the spec's `States.IntrinsicFailure`, as which it
/// reaches the state (`StateError::from`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntrinsicError {
    #[error("path {0:?} selects nothing")]
    NothingSelected(String),
    #[error("{}: {problem}", .function.name())]
    Failed {
        function: Function,
        problem: Problem,
    },
}

/// What a function refused in its arguments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("{what} must be a string, not a {kind}")]
    NotString {
        what: &'static str,
        kind: &'static str,
    },
    #[error("{what} must be an array, not a {kind}")]
    NotArray {
        what: &'static str,
        kind: &'static str,
    },
    #[error("{what} must be a number, not {value}")]
    NotNumber { what: &'static str, value: Value },
    #[error("{what} must be an integer, not {value}")]
    NotInteger { what: &'static str, value: Value },
    /// serde_json's message: read by people, never matched.
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("the chunk size must be positive")]
    ChunkSize,
    #[error("the step cannot be 0")]
    ZeroStep,
    #[error("the range has more than {MAX_RANGE} items")]
    RangeTooLong,
    #[error("index {0} is out of bounds")]
    OutOfBounds(i64),
    #[error("the input is over {MAX_BASE64_INPUT} characters")]
    InputTooLong,
    #[error("not base64: {0}")]
    NotBase64(base64::DecodeError),
    #[error("the decoded data is not UTF-8")]
    NotUtf8,
    #[error("only a shallow merge (third argument false) is supported")]
    DeepMerge,
    #[error("both arguments must be objects")]
    NotObjects,
    #[error("the start must be below the end")]
    EmptyRange,
    #[error("{0} + {1} is out of the integer range")]
    Overflow(i64, i64),
    #[error("unknown algorithm `{0}` (MD5, SHA-1, SHA-256, SHA-384, SHA-512)")]
    UnknownAlgorithm(String),
    #[error("the template has more {{}} than arguments")]
    TooFewArguments,
    #[error("there are more arguments than {{}} in the template")]
    TooManyArguments,
}

/// The intrinsic functions the developer guide allows in a Fail state's `ErrorPath` and
/// `CausePath`: those that return a string.
pub const STRING_FUNCTIONS: [Function; 7] = [
    Function::Format,
    Function::JsonToString,
    Function::ArrayGetItem,
    Function::Base64Encode,
    Function::Base64Decode,
    Function::Hash,
    Function::Uuid,
];

/// Whether a `.$` value is an intrinsic call rather than a path.
pub fn is_call(text: &str) -> bool {
    text.trim_start().starts_with("States.")
}

impl Call {
    pub fn parse(text: &str) -> Result<Self, SyntaxError> {
        let mut p = Parser {
            text,
            pos: 0,
            depth: 0,
        };
        let call = p.call()?;
        p.skip_ws();
        if p.pos != text.len() {
            return Err(p.error(SyntaxProblem::TrailingText));
        }
        Ok(call)
    }

    pub fn eval(&self, input: &Value, context: &Value) -> Result<Value, IntrinsicError> {
        let args = self
            .args
            .iter()
            .map(|a| match a {
                Arg::Literal(v) => Ok(v.clone()),
                Arg::Path(p) => p
                    .select(input, context)
                    .ok_or_else(|| IntrinsicError::NothingSelected(p.text().to_string())),
                Arg::Call(c) => c.eval(input, context),
            })
            .collect::<Result<Vec<_>, _>>()?;
        apply(self.function, args).map_err(|problem| IntrinsicError::Failed {
            function: self.function,
            problem,
        })
    }
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn error(&self, problem: SyntaxProblem) -> SyntaxError {
        SyntaxError {
            text: self.text.to_string(),
            offset: self.pos,
            problem,
        }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.text.len() - trimmed.len();
    }

    fn call(&mut self) -> Result<Call, SyntaxError> {
        self.skip_ws();
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(self.error(SyntaxProblem::TooDeep));
        }
        let open = self
            .rest()
            .find('(')
            .ok_or_else(|| self.error(SyntaxProblem::NoOpening))?;
        let name = self.rest()[..open].trim();
        let function = Function::from_name(name)
            .ok_or_else(|| self.error(SyntaxProblem::UnknownFunction(name.to_string())))?;
        self.pos += open + 1;
        let mut args = Vec::new();
        self.skip_ws();
        if let Some(stripped) = self.rest().strip_prefix(')') {
            self.pos = self.text.len() - stripped.len();
        } else {
            loop {
                args.push(self.arg()?);
                self.skip_ws();
                match self.rest().chars().next() {
                    Some(',') => self.pos += 1,
                    Some(')') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.error(SyntaxProblem::NoSeparator)),
                }
            }
        }
        self.depth -= 1;
        if !takes(function, args.len()) {
            return Err(self.error(SyntaxProblem::Arity {
                function,
                count: args.len(),
            }));
        }
        Ok(Call { function, args })
    }

    fn arg(&mut self) -> Result<Arg, SyntaxError> {
        self.skip_ws();
        let rest = self.rest();
        if rest.starts_with('\'') {
            return self.string().map(|s| Arg::Literal(Value::String(s)));
        }
        if rest.starts_with("States.") {
            return self.call().map(Arg::Call);
        }
        if rest.starts_with('$') {
            let end = path_end(rest);
            let text = rest[..end].trim_end();
            self.pos += end;
            return Path::parse(text)
                .map(Arg::Path)
                .map_err(|e| self.error(SyntaxProblem::Path(e)));
        }
        let end = rest.find([',', ')']).unwrap_or(rest.len());
        let token = rest[..end].trim();
        self.pos += end;
        let value = match token {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            "null" => Value::Null,
            number => serde_json::from_str::<Number>(number)
                .map(Value::Number)
                .map_err(|_| self.error(SyntaxProblem::NotAnArgument(token.to_string())))?,
        };
        Ok(Arg::Literal(value))
    }

    /// A single-quoted string; `\'`, `\\`, `\{` and `\}` are escapes (the braces stay
    /// escaped so `States.Format` can tell them from placeholders).
    fn string(&mut self) -> Result<String, SyntaxError> {
        let mut out = String::new();
        let mut chars = self.rest().char_indices().skip(1);
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, q @ ('\'' | '\\'))) => out.push(q),
                    Some((_, b @ ('{' | '}'))) => {
                        out.push('\\');
                        out.push(b);
                    }
                    _ => return Err(self.error(SyntaxProblem::BadEscape)),
                },
                '\'' => {
                    self.pos += i + 1;
                    return Ok(out);
                }
                other => out.push(other),
            }
        }
        Err(self.error(SyntaxProblem::UnclosedString))
    }
}

/// Where a path argument ends: at a `,` or `)` outside brackets and quotes.
fn path_end(text: &str) -> usize {
    let (mut depth, mut quote) = (0i32, None);
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[' | '(') => depth += 1,
            (None, ']') => depth -= 1,
            (None, ')') if depth > 0 => depth -= 1,
            (None, ',' | ')') if depth == 0 => return i,
            _ => {}
        }
    }
    text.len()
}

/// Whether `f` takes `n` arguments.
fn takes(f: Function, n: usize) -> bool {
    use Function::*;
    match f {
        Format => n >= 1,
        Array => true,
        StringToJson | JsonToString | ArrayLength | ArrayUnique | Base64Encode | Base64Decode => {
            n == 1
        }
        ArrayPartition | ArrayContains | ArrayGetItem | Hash | MathAdd | StringSplit => n == 2,
        ArrayRange | JsonMerge => n == 3,
        MathRandom => n == 2 || n == 3,
        Uuid => n == 0,
    }
}

fn string(v: &Value, what: &'static str) -> Result<String, Problem> {
    v.as_str().map(str::to_string).ok_or(Problem::NotString {
        what,
        kind: kind_of(v),
    })
}

fn array(v: Value, what: &'static str) -> Result<Vec<Value>, Problem> {
    match v {
        Value::Array(a) => Ok(a),
        other => Err(Problem::NotArray {
            what,
            kind: kind_of(&other),
        }),
    }
}

/// A number rounded to the nearest integer, halves up, as the cloud rounds the
/// arguments of `States.MathAdd` and `States.MathRandom` (Java's `Math.round`).
fn rounded(v: &Value, what: &'static str) -> Result<i64, Problem> {
    if let Some(i) = v.as_i64() {
        return Ok(i);
    }
    match v.as_f64() {
        Some(f) if f.is_finite() && (f + 0.5).floor().abs() < 9e15 => Ok((f + 0.5).floor() as i64),
        _ => Err(Problem::NotNumber {
            what,
            value: v.clone(),
        }),
    }
}

fn integer(v: &Value, what: &'static str) -> Result<i64, Problem> {
    match v.as_i64() {
        Some(i) => Ok(i),
        None => match v.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9e15 => Ok(f as i64),
            _ => Err(Problem::NotInteger {
                what,
                value: v.clone(),
            }),
        },
    }
}

/// A call's evaluated arguments, taken in order (the arity was checked at parse time).
struct Args(std::collections::VecDeque<Value>);

impl Args {
    fn next(&mut self) -> Value {
        self.0.pop_front().unwrap_or(Value::Null)
    }
}

fn apply(f: Function, args: Vec<Value>) -> Result<Value, Problem> {
    use Function::*;
    let mut args = Args(args.into());
    Ok(match f {
        Format => {
            let template = string(&args.next(), "the template")?;
            format(&template, &mut args.0.drain(..))?
        }
        StringToJson => {
            let text = string(&args.next(), "the argument")?;
            // The cloud reads an empty (or blank) string as null.
            if text.trim().is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).map_err(|e| Problem::NotJson(e.to_string()))?
            }
        }
        JsonToString => Value::String(args.next().to_string()),
        Array => Value::Array(args.0.drain(..).collect()),
        ArrayPartition => {
            let items = array(args.next(), "the first argument")?;
            let size = integer(&args.next(), "the chunk size")?;
            if size <= 0 {
                return Err(Problem::ChunkSize);
            }
            Value::Array(
                items
                    .chunks(size as usize)
                    .map(|c| Value::Array(c.to_vec()))
                    .collect(),
            )
        }
        ArrayContains => {
            let items = array(args.next(), "the first argument")?;
            let wanted = args.next();
            Value::Bool(items.contains(&wanted))
        }
        ArrayRange => {
            let (start, end, step) = (
                integer(&args.next(), "the start")?,
                integer(&args.next(), "the end")?,
                integer(&args.next(), "the step")?,
            );
            if step == 0 {
                return Err(Problem::ZeroStep);
            }
            let mut out = Vec::new();
            let mut i = start;
            while (step > 0 && i <= end) || (step < 0 && i >= end) {
                if out.len() == MAX_RANGE {
                    return Err(Problem::RangeTooLong);
                }
                out.push(Value::from(i));
                // Past i64's end the range has no more items (and must not wrap).
                match i.checked_add(step) {
                    Some(next) => i = next,
                    None => break,
                }
            }
            Value::Array(out)
        }
        ArrayGetItem => {
            let items = array(args.next(), "the first argument")?;
            let index = integer(&args.next(), "the index")?;
            usize::try_from(index)
                .ok()
                .and_then(|i| items.get(i).cloned())
                .ok_or(Problem::OutOfBounds(index))?
        }
        ArrayLength => Value::from(array(args.next(), "the argument")?.len()),
        ArrayUnique => {
            let mut seen = Vec::new();
            for item in array(args.next(), "the argument")? {
                if !seen.contains(&item) {
                    seen.push(item);
                }
            }
            Value::Array(seen)
        }
        Base64Encode => {
            let text = string(&args.next(), "the argument")?;
            if text.len() > MAX_BASE64_INPUT {
                return Err(Problem::InputTooLong);
            }
            Value::String(base64::engine::general_purpose::STANDARD.encode(text))
        }
        Base64Decode => {
            let text = string(&args.next(), "the argument")?;
            if text.len() > MAX_BASE64_INPUT {
                return Err(Problem::InputTooLong);
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(Problem::NotBase64)?;
            Value::String(String::from_utf8(bytes).map_err(|_| Problem::NotUtf8)?)
        }
        Hash => {
            let data = match args.next() {
                Value::String(s) => s,
                other => other.to_string(),
            };
            let algorithm = string(&args.next(), "the algorithm")?;
            Value::String(hash(data.as_bytes(), &algorithm)?)
        }
        JsonMerge => {
            let (a, b, deep) = (args.next(), args.next(), args.next());
            if deep != Value::Bool(false) {
                return Err(Problem::DeepMerge);
            }
            match (a, b) {
                (Value::Object(mut a), Value::Object(b)) => {
                    a.extend(b);
                    Value::Object(a)
                }
                _ => return Err(Problem::NotObjects),
            }
        }
        MathRandom => {
            let (start, end) = (
                rounded(&args.next(), "the start")?,
                rounded(&args.next(), "the end")?,
            );
            if start >= end {
                return Err(Problem::EmptyRange);
            }
            let mut rng = match args.next() {
                Value::Null => fastrand::Rng::new(),
                seed => fastrand::Rng::with_seed(rounded(&seed, "the seed")? as u64),
            };
            Value::from(rng.i64(start..end))
        }
        MathAdd => {
            let (a, b) = (
                rounded(&args.next(), "the first number")?,
                rounded(&args.next(), "the second")?,
            );
            Value::from(a.checked_add(b).ok_or(Problem::Overflow(a, b))?)
        }
        StringSplit => {
            let text = string(&args.next(), "the string")?;
            let delimiters = string(&args.next(), "the delimiters")?;
            Value::Array(
                text.split(|c| delimiters.contains(c))
                    .filter(|s| !s.is_empty())
                    .map(|s| Value::String(s.to_string()))
                    .collect(),
            )
        }
        Uuid => Value::String(uuid::Uuid::new_v4().to_string()),
    })
}

fn format(template: &str, args: &mut dyn Iterator<Item = Value>) -> Result<Value, Problem> {
    let mut out = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(b @ ('{' | '}')) => out.push(b),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            },
            '{' if chars.peek() == Some(&'}') => {
                chars.next();
                let arg = args.next().ok_or(Problem::TooFewArguments)?;
                java_text(&arg, &mut out);
            }
            other => out.push(other),
        }
    }
    if args.next().is_some() {
        return Err(Problem::TooManyArguments);
    }
    Ok(Value::String(out))
}

/// A value as the cloud's `States.Format` prints it: Java's `toString` of the parsed
/// JSON, so strings bare, objects as `{a=1, b=[x, y]}` and arrays as `[1, 2]`.
fn java_text(value: &Value, out: &mut String) {
    match value {
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                java_text(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(k);
                out.push('=');
                java_text(v, out);
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

pub(super) fn hash(data: &[u8], algorithm: &str) -> Result<String, Problem> {
    Ok(match algorithm {
        "MD5" => hex::encode(<md5::Md5 as md5::Digest>::digest(data)),
        "SHA-1" => hex::encode(<sha1::Sha1 as sha1::Digest>::digest(data)),
        "SHA-256" => hex::encode(<sha2::Sha256 as sha2::Digest>::digest(data)),
        "SHA-384" => hex::encode(<sha2::Sha384 as sha2::Digest>::digest(data)),
        "SHA-512" => hex::encode(<sha2::Sha512 as sha2::Digest>::digest(data)),
        other => return Err(Problem::UnknownAlgorithm(other.to_string())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::errors::{INTRINSIC_FAILURE, StateError};
    use serde_json::json;

    fn eval(text: &str) -> Result<Value, IntrinsicError> {
        Call::parse(text)
            .unwrap_or_else(|e| panic!("{e}"))
            .eval(&json!({}), &json!({}))
    }

    /// Integer overflow panicked (debug builds, the fuzz targets) or wrapped (release).
    #[test]
    fn integers_past_the_i64_range_fail_instead_of_overflowing() {
        let e = eval("States.MathAdd(9223372036854775807, 1)").unwrap_err();
        assert_eq!(
            e,
            IntrinsicError::Failed {
                function: Function::MathAdd,
                problem: Problem::Overflow(i64::MAX, 1)
            }
        );
        // The cause a state sees names the function, as the cloud's does.
        assert_eq!(
            StateError::from(e),
            StateError::new(
                INTRINSIC_FAILURE,
                "States.MathAdd: 9223372036854775807 + 1 is out of the integer range"
            )
        );
        assert!(eval("States.MathAdd(-9223372036854775808, -1)").is_err());
        assert_eq!(
            eval("States.ArrayRange(9223372036854775806, 9223372036854775807, 5)"),
            Ok(json!([9_223_372_036_854_775_806_i64]))
        );
        assert_eq!(
            eval("States.ArrayRange(-9223372036854775807, -9223372036854775808, -3)"),
            Ok(json!([-9_223_372_036_854_775_807_i64]))
        );
    }
}
