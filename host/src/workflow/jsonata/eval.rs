//! Bounded evaluation. Each field is evaluated on a thread of its own with a large
//! stack, so that the evaluator's recursion ends in its depth limit rather than in a
//! stack overflow of an executor thread; its values live in an arena with an allocation
//! limit (going past it panics inside the arena, which ends that thread only and is an
//! error of the state); evaluation stops past a time limit; and the result is refused
//! past the payload limit before it is copied out of the arena.

use std::sync::Mutex;
use std::time::Instant;

use bumpalo::Bump;
use jsonata_rs::JsonAta;
use serde_json::{Map, Value};

use super::convert::{from_jsonata, to_jsonata};
use super::functions;
use super::limits::{MAX_ARENA_BYTES, MAX_DEPTH, MAX_OUTPUT_BYTES, STACK_BYTES, TIME_LIMIT};
use super::syntax::panic_text;
use super::template::Tmpl;
use crate::workflow::errors::StateError;

/// What an expression can read: `$states` and the workflow's variables.
pub struct Env<'e> {
    /// `$states`: an object with `input`, `context`, and `result` or `errorOutput`
    /// where the field may read them.
    pub states: Value,
    /// The variables in scope, by name (without `$`).
    pub vars: Option<&'e Map<String, Value>>,
}

/// Evaluates a field (`field` names it in causes as the cloud does: `Output`,
/// `Arguments/id`, `Output/items[0]`).
pub fn evaluate(template: &Tmpl, env: &Env, field: &str) -> Result<Value, StateError> {
    if let Tmpl::Literal(v) = template {
        return Ok(v.clone());
    }
    let current = Mutex::new((field.to_string(), String::new()));
    off_the_async_workers(|| evaluate_on_a_thread(template, env, field, &current))
}

/// Runs `work`, which blocks for up to [`TIME_LIMIT`], so that the async workers it is
/// called from go on serving: on a multi-threaded runtime this worker hands its other
/// tasks to another first. Without it two hostile expressions at a time would hold both
/// workers of a 2-core host, and every tenant's requests with them.
fn off_the_async_workers<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

fn evaluate_on_a_thread(
    template: &Tmpl,
    env: &Env,
    field: &str,
    current: &Mutex<(String, String)>,
) -> Result<Value, StateError> {
    let outcome = std::thread::scope(|scope| {
        let spawned = std::thread::Builder::new()
            .name("jsonata".into())
            .stack_size(STACK_BYTES)
            .spawn_scoped(scope, || {
                let arena = Bump::new();
                arena.set_allocation_limit(Some(MAX_ARENA_BYTES));
                let run = Run {
                    arena: &arena,
                    env,
                    deadline: Instant::now() + TIME_LIMIT,
                    current,
                };
                run.fill(template, field)
            });
        match spawned {
            Ok(handle) => handle.join().map_err(|panic| Some(panic_text(&panic))),
            Err(e) => Err(Some(format!("the evaluation could not start: {e}"))),
        }
    });
    match outcome {
        Ok(result) => result,
        Err(why) => {
            let (field, expr) = current.lock().map(|c| c.clone()).unwrap_or_default();
            Err(failed(
                &expr,
                &field,
                &why.unwrap_or_else(|| "it stopped".into()),
            ))
        }
    }
}

/// Evaluates one expression (a Choice rule's `Condition`, a Wait's `Seconds`).
pub fn evaluate_one(expr: &str, env: &Env, field: &str) -> Result<Value, StateError> {
    evaluate(&Tmpl::Expr(expr.to_string()), env, field)
}

/// The `States.QueryEvaluationError` of an expression, worded as the cloud's (which
/// begins with the state's name, added where the error ends the state:
/// `errors::in_state`).
pub fn failed(expr: &str, field: &str, why: &str) -> StateError {
    StateError::evaluation(
        field,
        format!(
            "The JSONata expression '{}' specified for the field '{field}' {why}.",
            expr.trim()
        ),
    )
}

/// One field's evaluation, on its thread.
struct Run<'a, 'e> {
    arena: &'a Bump,
    env: &'e Env<'e>,
    deadline: Instant,
    /// The field and expression being evaluated, for the cause of a panic.
    current: &'e Mutex<(String, String)>,
}

impl<'a, 'e> Run<'a, 'e> {
    fn fill(&self, template: &Tmpl, field: &str) -> Result<Value, StateError> {
        let mut budget = MAX_OUTPUT_BYTES;
        self.fill_within(template, field, &mut budget)
    }

    fn fill_within(
        &self,
        template: &Tmpl,
        field: &str,
        budget: &mut usize,
    ) -> Result<Value, StateError> {
        match template {
            Tmpl::Literal(v) => Ok(v.clone()),
            Tmpl::Object(fields) => {
                let mut out = Map::with_capacity(fields.len());
                for (key, t) in fields {
                    let value = self.fill_within(t, &format!("{field}/{key}"), budget)?;
                    out.insert(key.clone(), value);
                }
                Ok(Value::Object(out))
            }
            Tmpl::Array(items) => Ok(Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, t)| self.fill_within(t, &format!("{field}[{i}]"), budget))
                    .collect::<Result<_, _>>()?,
            )),
            Tmpl::Expr(expr) => self.expression(expr, field, budget),
        }
    }

    fn expression(&self, expr: &str, field: &str, budget: &mut usize) -> Result<Value, StateError> {
        if let Ok(mut c) = self.current.lock() {
            *c = (field.to_string(), expr.to_string());
        }
        let fail = |why: String| failed(expr, field, &why);
        let text = self.with_prelude(expr);
        let jsonata =
            JsonAta::new(&text, self.arena).map_err(|e| fail(format!("is invalid: {e}")))?;
        jsonata.assign_var("states", to_jsonata(self.arena, &self.env.states));
        for (name, value) in self.variables_read(expr) {
            jsonata.assign_var(
                &format!("{VARIABLE_PREFIX}{name}"),
                to_jsonata(self.arena, value),
            );
        }
        functions::register(&jsonata);
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(fail(format!(
                "ran past the time limit of {} ms",
                TIME_LIMIT.as_millis()
            )));
        }
        let result = jsonata
            .evaluate_timeboxed(
                None,
                Some(MAX_DEPTH),
                Some(left.as_millis().max(1) as usize),
            )
            .map_err(|e| fail(format!("threw an error: {}", describe(&e))))?;
        if result.is_undefined() {
            return Err(fail("returned nothing (undefined)".to_string()));
        }
        from_jsonata(result, budget).map_err(fail)
    }

    /// The variables `expr` names (`$name`): only those are copied into the arena.
    fn variables_read(&self, expr: &str) -> Vec<(&'e String, &'e Value)> {
        let Some(vars) = self.env.vars else {
            return Vec::new();
        };
        vars.iter().filter(|(name, _)| names(expr, name)).collect()
    }

    /// `expr` in a block that first binds the variables it reads and the cloud's
    /// functions under their own names: the evaluator binds its built-in functions after
    /// any variable given to it, so a variable or cloud function named as a built-in one
    /// (`$count`, `$random`) would otherwise be shadowed by it.
    fn with_prelude(&self, expr: &str) -> String {
        let mut text = String::from("(");
        let variables = self.variables_read(expr);
        for (name, _) in &variables {
            text.push_str(&format!("${name} := ${VARIABLE_PREFIX}{name}; "));
        }
        // A variable shadows a function of the same name.
        let free = |name: &str| names(expr, name) && !variables.iter().any(|(v, _)| *v == name);
        for name in functions::NAMES {
            if free(name) {
                text.push_str(&format!("${name} := ${}{name}; ", functions::PREFIX));
            }
        }
        for name in functions::GUARDED {
            if free(name) {
                text.push_str(&format!(
                    "${}{name} := ${name}; ${name} := ${}{name}; ",
                    functions::ORIGINAL,
                    functions::PREFIX
                ));
            }
        }
        text.push('\n');
        text.push_str(expr);
        text.push_str("\n)");
        text
    }
}

/// The prefix a variable is bound under before the prelude names it.
const VARIABLE_PREFIX: &str = "__orquesta_var_";

/// Whether `expr` mentions `$name` (as a whole name: not `$names`).
fn names(expr: &str, name: &str) -> bool {
    let needle = format!("${name}");
    expr.match_indices(&needle).any(|(at, _)| {
        !expr[at + needle.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// An evaluator error as the cause tells it: its code and message.
fn describe(e: &jsonata_rs::Error) -> String {
    let text = e.to_string();
    let code = e.code();
    if text.starts_with(code) {
        text
    } else {
        format!("{code}: {text}")
    }
}
