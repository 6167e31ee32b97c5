//! Payload templates (`Parameters`, `ResultSelector`, `ItemSelector`, `Assign`): JSON
//! whose `*.$` fields are paths or intrinsic calls, parsed when a definition loads.

use serde_json::Value;

use super::definition_error::{DefinitionError, Problem, path_at};
use super::intrinsics::{Call, is_call};
use super::path::{Path, check_variable_name};

/// A payload template (`Parameters`, `ResultSelector`, `ItemSelector`): JSON whose
/// fields named `*.$` are paths or intrinsic calls, resolved when the state runs.
#[derive(Debug, Clone)]
pub enum Template {
    Literal(Value),
    Object(Vec<(String, Template)>),
    Array(Vec<Template>),
    Path(Path),
    Call(Call),
}

impl Template {
    pub(super) fn parse(value: &Value, at: &str) -> Result<Self, DefinitionError> {
        match value {
            Value::Object(map) => {
                let mut fields = Vec::with_capacity(map.len());
                for (key, v) in map {
                    let here = format!("{at}.{key}");
                    match key.strip_suffix(".$") {
                        Some(name) => {
                            let text = v
                                .as_str()
                                .ok_or_else(|| DefinitionError::new(&here, Problem::DollarField))?;
                            let t = if is_call(text) {
                                Template::Call(Call::parse(text).map_err(|e| {
                                    DefinitionError::new(&here, Problem::Intrinsic(e))
                                })?)
                            } else {
                                Template::Path(path_at(text, &here)?)
                            };
                            fields.push((name.to_string(), t));
                        }
                        None => fields.push((key.clone(), Template::parse(v, &here)?)),
                    }
                }
                Ok(Template::Object(fields))
            }
            Value::Array(items) => Ok(Template::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| Template::parse(v, &format!("{at}[{i}]")))
                    .collect::<Result<_, _>>()?,
            )),
            other => Ok(Template::Literal(other.clone())),
        }
    }
}

/// An `Assign` field: an object whose keys are variable names (`name.$` for a path or
/// intrinsic), checked as the developer guide names variables.
pub(super) fn parse_assign(value: &Value, at: &str) -> Result<Template, DefinitionError> {
    let map = value
        .as_object()
        .ok_or_else(|| DefinitionError::new(at, Problem::NotObject))?;
    for key in map.keys() {
        let name = key.strip_suffix(".$").unwrap_or(key);
        check_variable_name(name)
            .map_err(|e| DefinitionError::new(format!("{at}.{key}"), Problem::VariableName(e)))?;
    }
    Template::parse(value, at)
}
