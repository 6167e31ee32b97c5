//! A JSONata state's fields: JSON whose `{% expr %}` strings are expressions.

use serde_json::Value;

use super::syntax::check_syntax;
use crate::workflow::definition_error::{DefinitionError, Problem};

/// A JSONata state's field: JSON whose `{% expr %}` strings are expressions.
#[derive(Debug, Clone, PartialEq)]
pub enum Tmpl {
    Literal(Value),
    Object(Vec<(String, Tmpl)>),
    Array(Vec<Tmpl>),
    /// The expression's text, without `{%` and `%}`; its syntax was checked at load.
    Expr(String),
}

/// The expression a string holds: the cloud reads a string as JSONata only when it
/// starts with `{%` and ends with `%}`.
pub fn expression(text: &str) -> Option<&str> {
    text.strip_prefix("{%")?.strip_suffix("%}")
}

impl Tmpl {
    /// Parses the field at `at` (`States.A.Output`), checking every expression's syntax.
    pub fn parse(value: &Value, at: &str) -> Result<Self, DefinitionError> {
        Ok(match value {
            Value::String(s) => match expression(s) {
                Some(expr) => {
                    check_syntax(expr).map_err(|e| {
                        DefinitionError::new(at, Problem::Jsonata(expr.trim().to_string(), e))
                    })?;
                    Tmpl::Expr(expr.to_string())
                }
                None => Tmpl::Literal(value.clone()),
            },
            Value::Object(map) => Tmpl::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), Tmpl::parse(v, &format!("{at}.{k}"))?)))
                    .collect::<Result<_, DefinitionError>>()?,
            ),
            Value::Array(items) => Tmpl::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| Tmpl::parse(v, &format!("{at}[{i}]")))
                    .collect::<Result<_, _>>()?,
            ),
            other => Tmpl::Literal(other.clone()),
        })
    }

    /// The literal value, if the field holds no expression.
    pub fn literal(&self) -> Option<&Value> {
        match self {
            Tmpl::Literal(v) => Some(v),
            _ => None,
        }
    }
}

/// A JSONata state's (or catcher's, or choice rule's) fields that take `{% %}`
/// expressions: `Arguments` (Task, Parallel), `Output` and `Assign`.
#[derive(Debug, Clone, Default)]
pub struct JsonataIo {
    pub arguments: Option<Tmpl>,
    pub output: Option<Tmpl>,
    /// An object whose keys are variable names.
    pub assign: Option<Tmpl>,
}

/// A JSONata Choice rule: its `Condition`, `Next`, and own `Output` / `Assign`.
#[derive(Debug, Clone)]
pub struct JsonataRule {
    pub condition: Tmpl,
    pub next: String,
    pub io: JsonataIo,
}
