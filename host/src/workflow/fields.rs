//! Reading a definition's objects field by field, so that any field not read is refused
//! by name; and the Map settings given literally or by a path.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::definition_error::{DefinitionError, Problem, path_at};
use super::jsonata::{Tmpl, expression};
use super::path::Path;
use super::template::Template;

/// A Map setting given literally, by a reference path into the state's input
/// (`MaxConcurrency` / `MaxConcurrencyPath`, ...) or, in a JSONata state, by an
/// expression (`"MaxConcurrency": "{% $states.input.n %}"`), read when the state starts.
#[derive(Debug, Clone)]
pub enum Limit<T> {
    Fixed(T),
    /// Boxed: a path is large, and most Maps have none.
    Path(Box<Path>),
    /// A JSONata expression's text (without `{%` and `%}`), its syntax checked at load.
    Expr(String),
}

/// Reads an object's fields, remembering which were used, so that any other field can
/// be refused by name.
pub(super) struct Fields<'a> {
    pub(super) map: &'a Map<String, Value>,
    pub(super) at: String,
    used: BTreeSet<&'static str>,
}

impl<'a> Fields<'a> {
    pub(super) fn new(value: &'a Value, at: &str) -> Result<Self, DefinitionError> {
        let map = value
            .as_object()
            .ok_or_else(|| DefinitionError::new(at, Problem::NotObject))?;
        let mut used = BTreeSet::new();
        used.insert("Comment");
        Ok(Fields {
            map,
            at: at.to_string(),
            used,
        })
    }

    pub(super) fn here(&self, key: &str) -> String {
        format!("{}.{key}", self.at)
    }

    /// `problem` at the field `key`.
    pub(super) fn refuse(&self, key: &str, problem: Problem) -> DefinitionError {
        DefinitionError::new(self.here(key), problem)
    }

    pub(super) fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        self.used.insert(key);
        self.map.get(key)
    }

    pub(super) fn string(&mut self, key: &'static str) -> Result<Option<String>, DefinitionError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.refuse(key, Problem::NotString)),
        }
    }

    pub(super) fn required(&mut self, key: &'static str) -> Result<String, DefinitionError> {
        self.string(key)?
            .ok_or_else(|| self.refuse(key, Problem::Required))
    }

    pub(super) fn path(&mut self, key: &'static str) -> Result<Option<Path>, DefinitionError> {
        self.string(key)?
            .map(|t| path_at(&t, &self.here(key)))
            .transpose()
    }

    /// A path field whose `null` means "nothing": absent gives `$`.
    pub(super) fn nullable_path(
        &mut self,
        key: &'static str,
    ) -> Result<Option<Path>, DefinitionError> {
        match self.get(key) {
            Some(Value::Null) => Ok(None),
            None => Ok(Some(path_at("$", &self.here(key))?)),
            Some(_) => self.path(key),
        }
    }

    pub(super) fn integer(&mut self, key: &'static str) -> Result<Option<u64>, DefinitionError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| self.refuse(key, Problem::NotCount)),
        }
    }

    pub(super) fn number(&mut self, key: &'static str) -> Result<Option<f64>, DefinitionError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| self.refuse(key, Problem::NotNumber)),
        }
    }

    pub(super) fn template(
        &mut self,
        key: &'static str,
    ) -> Result<Option<Template>, DefinitionError> {
        let here = self.here(key);
        self.get(key).map(|v| Template::parse(v, &here)).transpose()
    }

    /// Refuses every field not read.
    pub(super) fn finish(self) -> Result<(), DefinitionError> {
        match self.map.keys().find(|k| !self.used.contains(k.as_str())) {
            Some(k) => Err(DefinitionError::new(
                self.at,
                Problem::UnknownField(k.clone()),
            )),
            None => Ok(()),
        }
    }
}

impl Fields<'_> {
    /// A count given literally (`fixed`) or by a reference path (`path`), not both.
    pub(super) fn count(
        &mut self,
        fixed: &'static str,
        path: &'static str,
    ) -> Result<Option<Limit<u64>>, DefinitionError> {
        match (self.integer(fixed)?, self.path(path)?) {
            (Some(_), Some(_)) => Err(self.refuse(fixed, Problem::GivenWith(path))),
            (n, p) => Ok(n.map(Limit::Fixed).or(p.map(|p| Limit::Path(Box::new(p))))),
        }
    }
}

impl Fields<'_> {
    /// A limit of a JSONata state: a value `parse` takes, or a `{% %}` expression read
    /// when the state starts. Its `...Path` twin (`path`) is JSONPath's, refused with
    /// what to write instead (`hint`).
    pub(super) fn limit_or_expression<T>(
        &mut self,
        key: &'static str,
        path: &'static str,
        hint: &'static str,
        what: &'static str,
        parse: impl Fn(&Value) -> Option<T>,
    ) -> Result<Option<Limit<T>>, DefinitionError> {
        if self.map.contains_key(path) {
            return Err(self.refuse(path, Problem::JsonPathField(path.to_string(), hint)));
        }
        let here = self.here(key);
        match self.get(key) {
            None => Ok(None),
            Some(v @ Value::String(s)) if expression(s).is_some() => match Tmpl::parse(v, &here)? {
                Tmpl::Expr(e) => Ok(Some(Limit::Expr(e))),
                _ => Err(DefinitionError::new(
                    here,
                    Problem::NotValueOrExpression(what),
                )),
            },
            Some(v) => parse(v)
                .map(|n| Some(Limit::Fixed(n)))
                .ok_or_else(|| DefinitionError::new(here, Problem::NotValueOrExpression(what))),
        }
    }

    /// A count of a JSONata state: a non-negative integer or an expression.
    pub(super) fn count_or_expression(
        &mut self,
        key: &'static str,
        path: &'static str,
        hint: &'static str,
    ) -> Result<Option<Limit<u64>>, DefinitionError> {
        self.limit_or_expression(key, path, hint, "a non-negative integer", Value::as_u64)
    }
}
