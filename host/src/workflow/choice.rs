//! Choice rules: comparisons of a `Variable` with a literal or another path, the `Is*`
//! type tests, and `And` / `Or` / `Not`. A comparison between values of different types
//! is false, as in the spec; a `Variable` (or `...Path` operand) that selects nothing is
//! a `States.Runtime` error, except for `IsPresent`.

use chrono::{DateTime, FixedOffset};
use serde_json::{Map, Value};

use super::definition_error::{DefinitionError, Problem, path_at};
use super::path::Path;

#[derive(Debug, Clone)]
pub enum Rule {
    And(Vec<Rule>),
    Or(Vec<Rule>),
    Not(Box<Rule>),
    Compare {
        variable: Path,
        op: Op,
        operand: Operand,
    },
}

#[derive(Debug, Clone)]
pub enum Operand {
    Literal(Value),
    Path(Path),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Numeric,
    Boolean,
    Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Equals,
    LessThan,
    GreaterThan,
    LessThanEquals,
    GreaterThanEquals,
}

/// The spec's `Is*` operators, named as it names them.
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Test {
    IsNull,
    IsPresent,
    IsNumeric,
    IsString,
    IsBoolean,
    IsTimestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Compare(Kind, Cmp),
    StringMatches,
    Test(Test),
}

const CMPS: [(&str, Cmp); 5] = [
    ("Equals", Cmp::Equals),
    ("LessThanEquals", Cmp::LessThanEquals),
    ("GreaterThanEquals", Cmp::GreaterThanEquals),
    ("LessThan", Cmp::LessThan),
    ("GreaterThan", Cmp::GreaterThan),
];
const KINDS: [(&str, Kind); 4] = [
    ("String", Kind::String),
    ("Numeric", Kind::Numeric),
    ("Boolean", Kind::Boolean),
    ("Timestamp", Kind::Timestamp),
];
const TESTS: [(&str, Test); 6] = [
    ("IsNull", Test::IsNull),
    ("IsPresent", Test::IsPresent),
    ("IsNumeric", Test::IsNumeric),
    ("IsString", Test::IsString),
    ("IsBoolean", Test::IsBoolean),
    ("IsTimestamp", Test::IsTimestamp),
];

/// An operator name: the op, and whether its operand is a path.
fn operator(name: &str) -> Option<(Op, bool)> {
    if name == "StringMatches" {
        return Some((Op::StringMatches, false));
    }
    if let Some((_, t)) = TESTS.iter().find(|(n, _)| *n == name) {
        return Some((Op::Test(*t), false));
    }
    let (base, is_path) = match name.strip_suffix("Path") {
        Some(base) => (base, true),
        None => (name, false),
    };
    KINDS.iter().find_map(|(prefix, kind)| {
        let rest = base.strip_prefix(prefix)?;
        let (_, cmp) = CMPS.iter().find(|(n, _)| *n == rest)?;
        // BooleanEquals is the only Boolean comparison.
        (*kind != Kind::Boolean || *cmp == Cmp::Equals)
            .then_some((Op::Compare(*kind, *cmp), is_path))
    })
}

/// Why a rule cannot be evaluated: a path it reads selects nothing. The state fails
/// with `States.Runtime` (`StateError::from`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    #[error("the choice operand path {0:?} selects nothing")]
    NoOperand(String),
    #[error("the choice variable {0:?} selects nothing in the input")]
    NoVariable(String),
}

impl Rule {
    /// Parses a rule; `top` rules carry `Next` (checked by the caller), nested ones not.
    pub fn parse(value: &Value, at: &str, top: bool) -> Result<Self, DefinitionError> {
        let refuse = |problem| DefinitionError::new(at, problem);
        let map = value
            .as_object()
            .ok_or_else(|| refuse(Problem::RuleNotObject))?;
        let allowed = |k: &str| k == "Comment" || (top && (k == "Next" || k == "Assign"));
        let keys: Vec<&String> = map.keys().filter(|k| !allowed(k)).collect();
        if let Some(combinator) = ["And", "Or", "Not"]
            .into_iter()
            .find(|c| map.contains_key(*c))
        {
            if keys.len() != 1 {
                return Err(refuse(Problem::CombinedWithOthers(combinator)));
            }
            let inner = &map[combinator];
            let at = format!("{at}.{combinator}");
            return match combinator {
                "Not" => Ok(Rule::Not(Box::new(Rule::parse(inner, &at, false)?))),
                _ => {
                    let rules = inner
                        .as_array()
                        .filter(|a| !a.is_empty())
                        .ok_or_else(|| DefinitionError::new(&at, Problem::NoRules))?
                        .iter()
                        .enumerate()
                        .map(|(i, r)| Rule::parse(r, &format!("{at}[{i}]"), false))
                        .collect::<Result<_, _>>()?;
                    Ok(if combinator == "And" {
                        Rule::And(rules)
                    } else {
                        Rule::Or(rules)
                    })
                }
            };
        }
        Self::comparison(map, &keys, at)
    }

    fn comparison(
        map: &Map<String, Value>,
        keys: &[&String],
        at: &str,
    ) -> Result<Self, DefinitionError> {
        let refuse = |problem| DefinitionError::new(at, problem);
        let variable = map
            .get("Variable")
            .and_then(Value::as_str)
            .ok_or_else(|| refuse(Problem::NoVariable))?;
        let variable = path_at(variable, &format!("{at}.Variable"))?;
        let ops: Vec<&&String> = keys.iter().filter(|k| k.as_str() != "Variable").collect();
        let [name] = ops.as_slice() else {
            return Err(refuse(Problem::OperatorCount(ops.len())));
        };
        let (op, is_path) =
            operator(name).ok_or_else(|| refuse(Problem::UnknownOperator(name.to_string())))?;
        let raw = &map[name.as_str()];
        let at = format!("{at}.{name}");
        let operand = if is_path {
            let text = raw
                .as_str()
                .ok_or_else(|| DefinitionError::new(&at, Problem::NotPathString))?;
            Operand::Path(path_at(text, &at)?)
        } else {
            let fits = match op {
                Op::Compare(Kind::String, _) | Op::StringMatches => raw.is_string(),
                Op::Compare(Kind::Numeric, _) => raw.is_number(),
                Op::Compare(Kind::Boolean, _) | Op::Test(_) => raw.is_boolean(),
                Op::Compare(Kind::Timestamp, _) => raw.as_str().and_then(timestamp).is_some(),
            };
            if !fits {
                return Err(DefinitionError::new(at, Problem::BadOperand(raw.clone())));
            }
            Operand::Literal(raw.clone())
        };
        Ok(Rule::Compare {
            variable,
            op,
            operand,
        })
    }

    /// Evaluates the rule.
    pub fn eval(&self, input: &Value, context: &Value) -> Result<bool, EvalError> {
        match self {
            Rule::And(rules) => {
                for r in rules {
                    if !r.eval(input, context)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Rule::Or(rules) => {
                for r in rules {
                    if r.eval(input, context)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Rule::Not(rule) => Ok(!rule.eval(input, context)?),
            Rule::Compare {
                variable,
                op,
                operand,
            } => {
                let value = variable.select(input, context);
                let expected = match operand {
                    Operand::Literal(v) => v.clone(),
                    Operand::Path(p) => p
                        .select(input, context)
                        .ok_or_else(|| EvalError::NoOperand(p.text().to_string()))?,
                };
                if *op == Op::Test(Test::IsPresent) {
                    return Ok(value.is_some() == (expected == Value::Bool(true)));
                }
                let value =
                    value.ok_or_else(|| EvalError::NoVariable(variable.text().to_string()))?;
                Ok(compare(&value, *op, &expected))
            }
        }
    }
}

fn compare(value: &Value, op: Op, expected: &Value) -> bool {
    use std::cmp::Ordering;
    let holds = |ord: Option<Ordering>, cmp: Cmp| {
        ord.is_some_and(|o| match cmp {
            Cmp::Equals => o == Ordering::Equal,
            Cmp::LessThan => o == Ordering::Less,
            Cmp::GreaterThan => o == Ordering::Greater,
            Cmp::LessThanEquals => o != Ordering::Greater,
            Cmp::GreaterThanEquals => o != Ordering::Less,
        })
    };
    match op {
        Op::Compare(Kind::String, cmp) => match (value.as_str(), expected.as_str()) {
            (Some(a), Some(b)) => holds(Some(a.cmp(b)), cmp),
            _ => false,
        },
        Op::Compare(Kind::Numeric, cmp) => match (value, expected) {
            (Value::Number(a), Value::Number(b)) => holds(a.as_f64().partial_cmp(&b.as_f64()), cmp),
            _ => false,
        },
        Op::Compare(Kind::Boolean, _) => value.is_boolean() && value == expected,
        Op::Compare(Kind::Timestamp, cmp) => {
            match (
                value.as_str().and_then(timestamp),
                expected.as_str().and_then(timestamp),
            ) {
                (Some(a), Some(b)) => holds(Some(a.cmp(&b)), cmp),
                _ => false,
            }
        }
        Op::StringMatches => match (value.as_str(), expected.as_str()) {
            (Some(text), Some(pattern)) => string_matches(pattern, text),
            _ => false,
        },
        Op::Test(test) => {
            let is = match test {
                Test::IsNull => value.is_null(),
                Test::IsNumeric => value.is_number(),
                Test::IsString => value.is_string(),
                Test::IsBoolean => value.is_boolean(),
                Test::IsTimestamp => value.as_str().and_then(timestamp).is_some(),
                Test::IsPresent => true,
            };
            is == (*expected == Value::Bool(true))
        }
    }
}

/// An RFC 3339 timestamp, as the spec requires (`2016-03-14T01:59:00Z`).
pub fn timestamp(text: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(text).ok()
}

/// A Wait state's timestamp: RFC 3339 with the `T` between date and time that the
/// cloud requires (RFC 3339 itself also allows a space, which the cloud refuses).
pub fn wait_timestamp(text: &str) -> Option<DateTime<FixedOffset>> {
    if text.as_bytes().get(10) != Some(&b'T') {
        return None;
    }
    timestamp(text)
}

/// `*` matches any run of characters; `\*` is a literal star and `\\` a backslash.
fn string_matches(pattern: &str, text: &str) -> bool {
    #[derive(PartialEq)]
    enum Tok {
        Star,
        Char(char),
    }
    let mut toks = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => toks.push(Tok::Char(chars.next().unwrap_or('\\'))),
            '*' => toks.push(Tok::Star),
            c => toks.push(Tok::Char(c)),
        }
    }
    let text: Vec<char> = text.chars().collect();
    // Greedy matching with backtracking to the last star: linear in practice.
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match toks.get(p) {
            Some(Tok::Char(c)) if *c == text[t] => {
                t += 1;
                p += 1;
            }
            Some(Tok::Star) => {
                star = Some((p, t));
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    toks[p..].iter().all(|tok| *tok == Tok::Star)
}
