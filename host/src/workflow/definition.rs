//! State machine definitions in the Amazon States Language (JSONPath flavour), parsed
//! and checked once when a tenant loads: unknown fields and states, missing `Next`,
//! unreachable states, bad paths, bad Retry/Catch and bad intrinsics are refused with
//! the place they occur (`States.Fetch.Retry[0].BackoffRate: ...`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::choice::Rule;
use super::definition_error::{DefinitionError, Problem, path_at};
use super::distributed::{self, ItemBatcher, ItemReader, ResultWriter};
use super::errors::{Catcher, Retrier, check_lists};
use super::fields::Fields;
pub use super::fields::Limit;
use super::intrinsics::{Call, STRING_FUNCTIONS, is_call};
use super::jsonata::Tmpl;
pub use super::jsonata::{JsonataIo, JsonataRule};
use super::path::{Path, ReferencePath};
pub use super::template::Template;
use super::template::parse_assign;

/// A whole state machine, or a Parallel branch, or a Map's item processor.
#[derive(Debug, Clone)]
pub struct Machine {
    pub start_at: String,
    pub states: BTreeMap<String, State>,
    /// The execution timeout (top level only).
    pub timeout_seconds: Option<u64>,
    /// The JSON this was parsed from: a branch's or item processor's definition is what
    /// its child executions run.
    pub source: Value,
    /// The variables its states assign (its branches' and item processors' aside).
    pub assigned: BTreeSet<String>,
}

#[derive(Debug, Clone)]
pub struct State {
    pub kind: Kind,
    /// `None`: the field was `null` (input `{}`); the default is `$`.
    pub input_path: Option<Path>,
    pub output_path: Option<Path>,
    pub parameters: Option<Template>,
    pub result_selector: Option<Template>,
    /// `None`: the field was `null` (the result is discarded).
    pub result_path: Option<ReferencePath>,
    pub retry: Vec<Retrier>,
    pub catch: Vec<Catcher>,
    /// `None` for terminal states.
    pub next: Option<String>,
    /// `Assign`: variables set when the state ends (Choice: when the `Default` is taken).
    pub assign: Option<Template>,
    /// A JSONata state's `Arguments`, `Output` and `Assign` (its JSONPath fields above
    /// are then the identity: `$`, no templates).
    pub jsonata: Option<Box<JsonataIo>>,
}

/// The query language of a state (`QueryLanguage`, at the top or on the state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    JsonPath,
    Jsonata,
}

#[derive(Debug, Clone)]
pub enum Kind {
    Task {
        /// The plugin: the `Resource` itself, or a Lambda integration's literal
        /// `FunctionName` (empty when `FunctionName.$` names it at run time).
        resource: String,
        /// `arn:aws:states:::lambda:invoke`: the plugin is `Parameters.FunctionName`,
        /// its input `Parameters.Payload`.
        lambda: bool,
        /// `.waitForTaskToken`: the plugin is called once with `$$.Task.Token`, and the
        /// task's result is what SendTaskSuccess / SendTaskFailure answer for it.
        callback: bool,
        timeout: Option<Seconds>,
        heartbeat: Option<Seconds>,
    },
    Pass {
        result: Option<Value>,
    },
    Choice {
        choices: Vec<(Rule, String)>,
        /// Each rule's `Assign`, by the rule's index.
        assigns: Vec<Option<Template>>,
        default: Option<String>,
        /// A JSONata Choice's rules (`choices` is then empty).
        conditions: Vec<JsonataRule>,
    },
    Wait(WaitFor),
    Succeed,
    Fail {
        error: Option<Text>,
        cause: Option<Text>,
    },
    Parallel {
        branches: Vec<Machine>,
    },
    Map {
        items_path: Path,
        item_selector: Option<Template>,
        /// A JSONata Map's `Items` (absent: the state's input) and `ItemSelector`.
        items: Option<Tmpl>,
        item_template: Option<Tmpl>,
        processor: Box<Machine>,
        /// 0 means no limit; `MaxConcurrencyPath` reads it from the state's input.
        max_concurrency: Limit<u64>,
        tolerated_count: Option<Limit<u64>>,
        tolerated_percentage: Option<Limit<f64>>,
        /// Names child executions in the cloud's distributed mode: in the ARNs a
        /// `ResultWriter` writes.
        label: Option<String>,
        /// `ItemReader`: the items come from the tenant's blobs, not `ItemsPath`.
        reader: Option<Box<ItemReader>>,
        /// `ItemBatcher`: each child execution gets a batch of items.
        batcher: Option<Box<ItemBatcher>>,
        /// `ResultWriter`: the results go to the tenant's blobs, and the state's result
        /// says where.
        writer: Option<Box<ResultWriter>>,
    },
}

/// Where a machine sits: the top level, a Parallel branch (or legacy `Iterator`), or a
/// Map's `ItemProcessor`, each allowing its own fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    Top,
    Branch,
    Processor,
    /// A branch or item processor as its child execution runs it (`parse_child`): its
    /// `QueryLanguage` is the one its parent's machine gave it.
    Child,
}

/// A number of seconds given literally or by a path into the state's input.
#[derive(Debug, Clone)]
pub enum Seconds {
    Fixed(u64),
    Path(Path),
    /// A JSONata expression.
    Expr(String),
}

#[derive(Debug, Clone)]
pub enum WaitFor {
    Seconds(Seconds),
    Timestamp(String),
    TimestampPath(Path),
    /// A JSONata expression.
    TimestampExpr(String),
}

/// A string given literally, by a path or by an intrinsic function (`Error` /
/// `ErrorPath`).
#[derive(Debug, Clone)]
pub enum Text {
    Fixed(String),
    Path(Path),
    Call(Call),
    /// A JSONata expression.
    Expr(String),
}

/// The names an `Assign` sets.
fn assigned_names(assign: &Option<Template>) -> Vec<String> {
    match assign {
        Some(Template::Object(fields)) => fields.iter().map(|(n, _)| n.clone()).collect(),
        _ => Vec::new(),
    }
}

/// The names a JSONata `Assign` sets.
fn jsonata_names(io: Option<&JsonataIo>) -> Vec<String> {
    match io.and_then(|io| io.assign.as_ref()) {
        Some(Tmpl::Object(fields)) => fields.iter().map(|(n, _)| n.clone()).collect(),
        _ => Vec::new(),
    }
}

/// A `ResultPath` (at `at`): `null` discards the result, absent places it at `$`.
fn result_path(value: Option<&Value>, at: &str) -> Result<Option<ReferencePath>, DefinitionError> {
    let text = match value {
        Some(Value::Null) => return Ok(None),
        None => "$",
        Some(Value::String(s)) => s,
        Some(_) => return Err(DefinitionError::new(at, Problem::NotStringOrNull)),
    };
    ReferencePath::parse(text)
        .map(Some)
        .map_err(|e| DefinitionError::new(at, Problem::Path(e)))
}

impl Machine {
    /// Parses and checks a definition (the JSON document of a state machine).
    pub fn parse(value: &Value) -> Result<Self, DefinitionError> {
        Self::parse_at(value, "", Scope::Top, Lang::JsonPath)
    }

    /// Parses a Parallel branch or Map item processor, as a child execution runs it:
    /// its parent's load checked it already, in its place, so a field allowed there
    /// (`ProcessorConfig`) is allowed here. A definition accepted at load is never
    /// refused at run time.
    pub fn parse_child(value: &Value) -> Result<Self, DefinitionError> {
        Self::parse_at(value, "", Scope::Child, Lang::JsonPath)
    }

    /// `lang`: the query language of the machine around (a branch's states take it).
    pub(super) fn parse_at(
        value: &Value,
        at: &str,
        scope: Scope,
        lang: Lang,
    ) -> Result<Self, DefinitionError> {
        let mut f = Fields::new(value, if at.is_empty() { "definition" } else { at })?;
        let prefix = if at.is_empty() {
            String::new()
        } else {
            format!("{at}.")
        };
        let start_at = f.required("StartAt")?;
        // A child's language is the one its parent's machine wrote into its source.
        let lang = if matches!(scope, Scope::Top | Scope::Child) {
            match f.string("QueryLanguage")?.as_deref() {
                None => lang,
                Some("JSONPath") => Lang::JsonPath,
                Some("JSONata") => Lang::Jsonata,
                Some(other) => {
                    return Err(DefinitionError::new(
                        format!("{prefix}QueryLanguage"),
                        Problem::QueryLanguage(other.to_string()),
                    ));
                }
            }
        } else {
            lang
        };
        let timeout_seconds = if scope == Scope::Top {
            f.get("Version");
            f.integer("TimeoutSeconds")?
        } else {
            if matches!(scope, Scope::Processor | Scope::Child) {
                processor_config(&mut f)?;
            }
            None
        };
        let states_value = f
            .get("States")
            .ok_or_else(|| DefinitionError::new(format!("{prefix}States"), Problem::Required))?;
        let states_map = states_value
            .as_object()
            .filter(|m| !m.is_empty())
            .ok_or_else(|| DefinitionError::new(format!("{prefix}States"), Problem::NoStates))?;
        f.finish()?;
        let mut states = BTreeMap::new();
        for (name, v) in states_map {
            let here = format!("{prefix}States.{name}");
            if name.is_empty() || name.len() > 80 {
                return Err(DefinitionError::new(here, Problem::StateName));
            }
            states.insert(name.clone(), State::parse(v, &here, lang)?);
        }
        let mut assigned = BTreeSet::new();
        for state in states.values() {
            assigned.extend(assigned_names(&state.assign));
            assigned.extend(jsonata_names(state.jsonata.as_deref()));
            assigned.extend(state.catch.iter().flat_map(|c| assigned_names(&c.assign)));
            assigned.extend(
                state
                    .catch
                    .iter()
                    .flat_map(|c| jsonata_names(c.jsonata.as_ref())),
            );
            if let Kind::Choice {
                assigns,
                conditions,
                ..
            } = &state.kind
            {
                assigned.extend(assigns.iter().flat_map(assigned_names));
                assigned.extend(conditions.iter().flat_map(|r| jsonata_names(Some(&r.io))));
            }
        }
        // A JSONata machine's branches and item processors run as child executions
        // from their own source: it carries the language they inherit.
        let mut source = value.clone();
        if lang == Lang::Jsonata
            && matches!(scope, Scope::Branch | Scope::Processor)
            && let Some(map) = source.as_object_mut()
        {
            map.insert("QueryLanguage".into(), Value::from("JSONata"));
        }
        let machine = Machine {
            start_at,
            states,
            timeout_seconds,
            source,
            assigned,
        };
        machine.check(&prefix)?;
        if scope == Scope::Top {
            machine.check_scopes(&BTreeSet::new(), "")?;
        }
        Ok(machine)
    }

    /// A Parallel branch or Map item reads the variables of the scopes around it but
    /// cannot assign them (the developer guide's variable scope): an inner `Assign` of
    /// an outer name is refused. `prefix` names this machine (`States.M[0]`: the first
    /// branch, or the item processor, of state M; empty at the top).
    fn check_scopes(&self, outer: &BTreeSet<String>, prefix: &str) -> Result<(), DefinitionError> {
        if let Some(name) = self.assigned.intersection(outer).next() {
            return Err(DefinitionError::new(
                prefix,
                Problem::OuterVariable(name.clone()),
            ));
        }
        let visible: BTreeSet<String> = outer.union(&self.assigned).cloned().collect();
        for (name, state) in &self.states {
            let inner: Vec<&Machine> = match &state.kind {
                Kind::Parallel { branches } => branches.iter().collect(),
                Kind::Map { processor, .. } => vec![processor],
                _ => continue,
            };
            let dot = if prefix.is_empty() { "" } else { "." };
            for (i, m) in inner.into_iter().enumerate() {
                m.check_scopes(&visible, &format!("{prefix}{dot}States.{name}[{i}]"))?;
            }
        }
        Ok(())
    }

    /// Every target exists, and every state can be reached from `StartAt`.
    fn check(&self, prefix: &str) -> Result<(), DefinitionError> {
        if !self.states.contains_key(&self.start_at) {
            return Err(DefinitionError::new(
                format!("{prefix}StartAt"),
                Problem::NoSuchState(self.start_at.clone()),
            ));
        }
        for (name, state) in &self.states {
            for (field, target) in state.targets() {
                if !self.states.contains_key(target) {
                    return Err(DefinitionError::new(
                        format!("{prefix}States.{name}.{field}"),
                        Problem::NoSuchState(target.to_string()),
                    ));
                }
            }
        }
        let mut seen = BTreeSet::from([self.start_at.as_str()]);
        let mut todo = vec![self.start_at.as_str()];
        while let Some(name) = todo.pop() {
            for (_, target) in self.states[name].targets() {
                if seen.insert(target) {
                    todo.push(target);
                }
            }
        }
        if let Some(lost) = self.states.keys().find(|n| !seen.contains(n.as_str())) {
            return Err(DefinitionError::new(
                format!("{prefix}States.{lost}"),
                Problem::Unreachable,
            ));
        }
        Ok(())
    }

    /// The `Resource` of every Task, branches and item processors included.
    pub fn resources(&self) -> Vec<&str> {
        let mut out = Vec::new();
        for state in self.states.values() {
            match &state.kind {
                Kind::Task { resource, .. } if !resource.is_empty() => out.push(resource.as_str()),
                Kind::Parallel { branches } => {
                    out.extend(branches.iter().flat_map(Machine::resources))
                }
                Kind::Map { processor, .. } => out.extend(processor.resources()),
                _ => {}
            }
        }
        out
    }

    pub fn state(&self, name: &str) -> Option<&State> {
        self.states.get(name)
    }
}

impl State {
    /// The states this one can go to, with the field that names them.
    fn targets(&self) -> Vec<(String, &str)> {
        let mut out = Vec::new();
        if let Some(n) = &self.next {
            out.push(("Next".to_string(), n.as_str()));
        }
        if let Kind::Choice {
            choices,
            default,
            conditions,
            ..
        } = &self.kind
        {
            for (i, (_, next)) in choices.iter().enumerate() {
                out.push((format!("Choices[{i}].Next"), next.as_str()));
            }
            for (i, rule) in conditions.iter().enumerate() {
                out.push((format!("Choices[{i}].Next"), rule.next.as_str()));
            }
            if let Some(d) = default {
                out.push(("Default".to_string(), d.as_str()));
            }
        }
        for (i, c) in self.catch.iter().enumerate() {
            out.push((format!("Catch[{i}].Next"), c.next.as_str()));
        }
        out
    }

    fn parse(value: &Value, at: &str, machine_lang: Lang) -> Result<Self, DefinitionError> {
        let mut f = Fields::new(value, at)?;
        let kind_name = f.required("Type")?;
        let lang = match f.string("QueryLanguage")?.as_deref() {
            None => machine_lang,
            Some("JSONata") => Lang::Jsonata,
            Some("JSONPath") if machine_lang == Lang::Jsonata => {
                return Err(f.refuse("QueryLanguage", Problem::JsonPathInJsonata));
            }
            Some("JSONPath") => Lang::JsonPath,
            Some(other) => {
                return Err(f.refuse("QueryLanguage", Problem::QueryLanguage(other.to_string())));
            }
        };
        if lang == Lang::Jsonata {
            return jsonata_state::parse_state(f, &kind_name, value, machine_lang);
        }
        // Fields by type, as the spec's table gives them.
        let (io, params, result, errors, transitions) = match kind_name.as_str() {
            "Task" | "Parallel" | "Map" => (true, true, true, true, true),
            "Pass" => (true, true, true, false, true),
            "Wait" => (true, false, false, false, true),
            "Choice" | "Succeed" => (true, false, false, false, false),
            "Fail" => (false, false, false, false, false),
            other => {
                return Err(f.refuse("Type", Problem::UnknownStateType(other.to_string())));
            }
        };
        let dollar = path_at("$", at)?;
        let (input_path, output_path) = if io {
            (
                f.nullable_path("InputPath")?,
                f.nullable_path("OutputPath")?,
            )
        } else {
            (Some(dollar.clone()), Some(dollar))
        };
        let parameters = if params && kind_name != "Map" {
            f.template("Parameters")?
        } else {
            None
        };
        let (result_selector, result_path) = if result {
            let selector = if kind_name == "Pass" {
                None
            } else {
                f.template("ResultSelector")?
            };
            let path = result_path(f.get("ResultPath"), &f.here("ResultPath"))?;
            (selector, path)
        } else {
            (None, result_path(None, at)?)
        };
        let assign = match kind_name.as_str() {
            "Succeed" | "Fail" => None,
            _ => {
                let here = f.here("Assign");
                f.get("Assign")
                    .map(|a| parse_assign(a, &here))
                    .transpose()?
            }
        };
        let (retry, catch) = if errors {
            (parse_retry(&mut f)?, parse_catch(&mut f)?)
        } else {
            (Vec::new(), Vec::new())
        };
        let next = if transitions {
            let next = f.string("Next")?;
            let end = match f.get("End") {
                None => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err(f.refuse("End", Problem::NotBoolean)),
            };
            match (&next, end) {
                (Some(_), true) => return Err(DefinitionError::new(at, Problem::NextAndEnd)),
                (None, false) => return Err(DefinitionError::new(at, Problem::NoNextOrEnd)),
                _ => next,
            }
        } else {
            None
        };
        let kind = match kind_name.as_str() {
            "Task" => {
                let (resource, lambda, callback) =
                    task_resource(&f.required("Resource")?, value.get("Parameters"), at)?;
                Kind::Task {
                    resource,
                    lambda,
                    callback,
                    timeout: seconds(&mut f, "TimeoutSeconds", "TimeoutSecondsPath")?,
                    heartbeat: seconds(&mut f, "HeartbeatSeconds", "HeartbeatSecondsPath")?,
                }
            }
            "Pass" => Kind::Pass {
                result: f.get("Result").cloned(),
            },
            "Choice" => parse_choice(&mut f)?,
            "Wait" => parse_wait(&mut f)?,
            "Succeed" => Kind::Succeed,
            "Fail" => Kind::Fail {
                error: text(&mut f, "Error", "ErrorPath")?,
                cause: text(&mut f, "Cause", "CausePath")?,
            },
            "Parallel" => {
                let branches = f
                    .get("Branches")
                    .and_then(Value::as_array)
                    .filter(|b| !b.is_empty())
                    .ok_or_else(|| f.refuse("Branches", Problem::NotNonEmptyArray))?;
                Kind::Parallel {
                    branches: branches
                        .iter()
                        .enumerate()
                        .map(|(i, b)| {
                            Machine::parse_at(
                                b,
                                &format!("{at}.Branches[{i}]"),
                                Scope::Branch,
                                machine_lang,
                            )
                        })
                        .collect::<Result<_, _>>()?,
                }
            }
            _ => parse_map(&mut f, machine_lang)?,
        };
        if let Kind::Task {
            timeout: Some(Seconds::Fixed(t)),
            heartbeat: Some(Seconds::Fixed(h)),
            ..
        } = &kind
            && h >= t
        {
            return Err(f.refuse("HeartbeatSeconds", Problem::HeartbeatNotBelowTimeout));
        }
        let state = State {
            kind,
            input_path,
            output_path,
            parameters,
            result_selector,
            result_path,
            retry,
            catch,
            next,
            assign,
            jsonata: None,
        };
        f.finish()?;
        Ok(state)
    }
}

/// The Lambda integration's `Resource`, with or without `.waitForTaskToken`.
pub const LAMBDA_INVOKE: &str = "arn:aws:states:::lambda:invoke";
/// The suffix of a callback task's `Resource`.
pub const WAIT_FOR_TASK_TOKEN: &str = ".waitForTaskToken";

/// A Task's `Resource` as (plugin, Lambda integration, callback). A plugin's name, or
/// the cloud's Lambda integration with the plugin as `Parameters.FunctionName`, so
/// definitions written for Lambda run unchanged; either may end in
/// `.waitForTaskToken`.
pub(super) fn task_resource(
    resource: &str,
    parameters: Option<&Value>,
    at: &str,
) -> Result<(String, bool, bool), DefinitionError> {
    let (base, callback) = match resource.strip_suffix(WAIT_FOR_TASK_TOKEN) {
        Some(base) => (base, true),
        None => (resource, false),
    };
    if base != LAMBDA_INVOKE {
        if base.is_empty() {
            return Err(DefinitionError::new(
                format!("{at}.Resource"),
                Problem::NoPlugin,
            ));
        }
        return Ok((base.to_string(), false, callback));
    }
    let parameters = parameters.and_then(Value::as_object);
    let function = match (
        parameters.and_then(|p| p.get("FunctionName")),
        parameters.and_then(|p| p.get("FunctionName.$")),
    ) {
        (Some(Value::String(name)), None) => function_name(name).ok_or_else(|| {
            DefinitionError::new(format!("{at}.Parameters.FunctionName"), Problem::NoFunction)
        })?,
        // Named at run time: checked against the tenant's plugins then.
        (None, Some(Value::String(_))) => String::new(),
        _ => {
            return Err(DefinitionError::new(
                format!("{at}.Parameters"),
                Problem::NoFunctionName(LAMBDA_INVOKE),
            ));
        }
    };
    Ok((function, true, callback))
}

/// The plugin a Lambda `FunctionName` names: the name itself, or the name in a
/// function ARN (`arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`, or its
/// partial forms), without a version or alias qualifier.
pub fn function_name(text: &str) -> Option<String> {
    let name = match text.split_once(":function:") {
        Some((_, rest)) => rest,
        None => text,
    };
    let name = name.split(':').next().unwrap_or_default();
    (!name.is_empty()).then(|| name.to_string())
}

fn seconds(
    f: &mut Fields,
    fixed: &'static str,
    path: &'static str,
) -> Result<Option<Seconds>, DefinitionError> {
    match (f.integer(fixed)?, f.path(path)?) {
        (Some(_), Some(_)) => Err(f.refuse(fixed, Problem::GivenWith(path))),
        (Some(0), None) => Err(f.refuse(fixed, Problem::NotPositive)),
        (Some(n), None) => Ok(Some(Seconds::Fixed(n))),
        (None, Some(p)) => Ok(Some(Seconds::Path(p))),
        (None, None) => Ok(None),
    }
}

fn text(
    f: &mut Fields,
    fixed: &'static str,
    path: &'static str,
) -> Result<Option<Text>, DefinitionError> {
    let here = f.here(path);
    let path_value = match f.string(path)? {
        None => None,
        Some(t) if is_call(&t) => {
            let call =
                Call::parse(&t).map_err(|e| DefinitionError::new(&here, Problem::Intrinsic(e)))?;
            if !STRING_FUNCTIONS.contains(&call.function) {
                return Err(DefinitionError::new(
                    here,
                    Problem::NotStringFunction(call.function),
                ));
            }
            Some(Text::Call(call))
        }
        Some(t) => Some(Text::Path(path_at(&t, &here)?)),
    };
    match (f.string(fixed)?, path_value) {
        (Some(_), Some(_)) => Err(f.refuse(fixed, Problem::GivenWith(path))),
        (Some(t), None) => Ok(Some(Text::Fixed(t))),
        (None, Some(p)) => Ok(Some(p)),
        (None, None) => Ok(None),
    }
}

fn parse_choice(f: &mut Fields) -> Result<Kind, DefinitionError> {
    let here = f.here("Choices");
    let list = f
        .get("Choices")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| DefinitionError::new(&here, Problem::NotNonEmptyArray))?;
    let mut choices = Vec::with_capacity(list.len());
    let mut assigns = Vec::with_capacity(list.len());
    for (i, c) in list.iter().enumerate() {
        let at = format!("{here}[{i}]");
        let next = c
            .get("Next")
            .and_then(Value::as_str)
            .ok_or_else(|| DefinitionError::new(format!("{at}.Next"), Problem::Required))?;
        choices.push((Rule::parse(c, &at, true)?, next.to_string()));
        assigns.push(
            c.get("Assign")
                .map(|a| parse_assign(a, &format!("{at}.Assign")))
                .transpose()?,
        );
    }
    let default = f.string("Default")?;
    Ok(Kind::Choice {
        choices,
        assigns,
        default,
        conditions: Vec::new(),
    })
}

fn parse_wait(f: &mut Fields) -> Result<Kind, DefinitionError> {
    let seconds = seconds(f, "Seconds", "SecondsPath")?;
    let timestamp = f.string("Timestamp")?;
    let timestamp_path = f.path("TimestampPath")?;
    let here = f.at.clone();
    Ok(Kind::Wait(match (seconds, timestamp, timestamp_path) {
        (Some(s), None, None) => WaitFor::Seconds(s),
        (None, Some(t), None) => {
            if super::choice::wait_timestamp(&t).is_none() {
                return Err(f.refuse("Timestamp", Problem::NotTimestamp(t)));
            }
            WaitFor::Timestamp(t)
        }
        (None, None, Some(p)) => WaitFor::TimestampPath(p),
        _ => return Err(DefinitionError::new(here, Problem::WaitFor)),
    }))
}

type DistributedFields = (
    Option<ItemReader>,
    Option<ItemBatcher>,
    Option<ResultWriter>,
);

/// A Map's `ItemReader`, `ItemBatcher` and `ResultWriter` (`jsonata`: of a JSONata
/// state), each refused in an inline Map as the cloud refuses them.
fn distributed_fields(f: &mut Fields, jsonata: bool) -> Result<DistributedFields, DefinitionError> {
    let distributed = f
        .map
        .get("ItemProcessor")
        .and_then(|p| p.get("ProcessorConfig"))
        .and_then(|c| c.get("Mode"))
        .is_some_and(|m| m == "DISTRIBUTED");
    for field in ["ItemReader", "ResultWriter", "ItemBatcher"] {
        if f.map.contains_key(field) && !distributed {
            return Err(f.refuse(field, Problem::DistributedField));
        }
    }
    let reader = f
        .get("ItemReader")
        .map(|r| distributed::item_reader(r, &f.here("ItemReader"), jsonata))
        .transpose()?;
    let batcher = f
        .get("ItemBatcher")
        .map(|b| distributed::item_batcher(b, &f.here("ItemBatcher"), jsonata))
        .transpose()?;
    let writer = f
        .get("ResultWriter")
        .map(|w| distributed::result_writer(w, &f.here("ResultWriter"), jsonata))
        .transpose()?;
    Ok((reader, batcher, writer))
}

fn parse_map(f: &mut Fields, lang: Lang) -> Result<Kind, DefinitionError> {
    let (reader, batcher, writer) = distributed_fields(f, false)?;
    if reader.is_some() && f.map.contains_key("ItemsPath") {
        return Err(f.refuse(
            "ItemsPath",
            Problem::NotSupported("the ItemReader gives the items"),
        ));
    }
    let items_path = match f.path("ItemsPath")? {
        Some(p) => p,
        None => path_at("$", &f.here("ItemsPath"))?,
    };
    let item_selector = match (f.template("ItemSelector")?, f.template("Parameters")?) {
        (Some(_), Some(_)) => {
            return Err(DefinitionError::new(
                &f.at,
                Problem::EitherOr("ItemSelector", "Parameters"),
            ));
        }
        (a, b) => a.or(b),
    };
    let here = f.here(if f.map.contains_key("ItemProcessor") {
        "ItemProcessor"
    } else {
        "Iterator"
    });
    let processor = match (f.get("ItemProcessor"), f.get("Iterator")) {
        (Some(_), Some(_)) => {
            return Err(DefinitionError::new(
                &f.at,
                Problem::EitherOr("ItemProcessor", "Iterator"),
            ));
        }
        (Some(p), None) => Machine::parse_at(p, &here, Scope::Processor, lang)?,
        (None, Some(p)) => Machine::parse_at(p, &here, Scope::Branch, lang)?,
        (None, None) => return Err(f.refuse("ItemProcessor", Problem::Required)),
    };
    let max_concurrency = match (f.integer("MaxConcurrency")?, f.path("MaxConcurrencyPath")?) {
        (Some(_), Some(_)) => {
            return Err(f.refuse("MaxConcurrency", Problem::GivenWith("MaxConcurrencyPath")));
        }
        (Some(n), None) => Limit::Fixed(n),
        (None, Some(p)) => Limit::Path(Box::new(p)),
        (None, None) => Limit::Fixed(0),
    };
    let tolerated_count = match (
        f.integer("ToleratedFailureCount")?,
        f.path("ToleratedFailureCountPath")?,
    ) {
        (Some(_), Some(_)) => {
            return Err(f.refuse(
                "ToleratedFailureCount",
                Problem::GivenWith("ToleratedFailureCountPath"),
            ));
        }
        (n, p) => n.map(Limit::Fixed).or(p.map(|p| Limit::Path(Box::new(p)))),
    };
    let tolerated_percentage = match (
        f.number("ToleratedFailurePercentage")?,
        f.path("ToleratedFailurePercentagePath")?,
    ) {
        (Some(_), Some(_)) => {
            return Err(f.refuse(
                "ToleratedFailurePercentage",
                Problem::GivenWith("ToleratedFailurePercentagePath"),
            ));
        }
        (Some(p), None) if !(0.0..=100.0).contains(&p) => {
            return Err(f.refuse("ToleratedFailurePercentage", Problem::NotPercentage));
        }
        (n, p) => n.map(Limit::Fixed).or(p.map(|p| Limit::Path(Box::new(p)))),
    };
    let label = f.string("Label")?;
    if let Some(l) = &label {
        check_label(l).map_err(|problem| f.refuse("Label", problem))?;
    }
    Ok(Kind::Map {
        items_path,
        item_selector,
        items: None,
        item_template: None,
        processor: Box::new(processor),
        max_concurrency,
        tolerated_count,
        tolerated_percentage,
        label,
        reader: reader.map(Box::new),
        batcher: batcher.map(Box::new),
        writer: writer.map(Box::new),
    })
}

/// A Map's `Label`, as the cloud checks it: up to 40 characters, none of them
/// whitespace, a control character or one of the characters execution names refuse.
pub(super) fn check_label(label: &str) -> Result<(), Problem> {
    if label.is_empty() || label.chars().count() > 40 {
        return Err(Problem::LabelLength);
    }
    match label
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || "<>{}[]?*\"#%\\^|~`$&,;:/".contains(*c))
    {
        Some(c) => Err(Problem::LabelCharacter(c)),
        None => Ok(()),
    }
}

/// An `ItemProcessor`'s `ProcessorConfig`: `Mode` `INLINE` (the visual editor writes it)
/// or `DISTRIBUTED` with the `ExecutionType` the cloud requires there (`STANDARD` or
/// `EXPRESS`). Both run alike here: each item is already a durable child execution,
/// which is what the cloud's distributed mode gives, so the mode changes nothing at
/// run time.
fn processor_config(f: &mut Fields) -> Result<(), DefinitionError> {
    let Some(config) = f.get("ProcessorConfig") else {
        return Ok(());
    };
    let at = f.here("ProcessorConfig");
    let mut cf = Fields::new(config, &at)?;
    match cf.string("Mode")?.as_deref() {
        None | Some("INLINE") => {
            if cf.map.contains_key("ExecutionType") {
                return Err(cf.refuse("ExecutionType", Problem::InlineExecutionType));
            }
        }
        Some("DISTRIBUTED") => match cf.string("ExecutionType")?.as_deref() {
            Some("STANDARD" | "EXPRESS") => {}
            Some(other) => {
                return Err(cf.refuse(
                    "ExecutionType",
                    Problem::UnknownExecutionType(other.to_string()),
                ));
            }
            None => return Err(cf.refuse("ExecutionType", Problem::Required)),
        },
        Some(other) => {
            return Err(cf.refuse("Mode", Problem::UnknownMode(other.to_string())));
        }
    }
    cf.finish()
}

pub(super) fn error_list(v: &Value, at: &str) -> Result<Vec<String>, DefinitionError> {
    let here = || format!("{at}.ErrorEquals");
    v.get("ErrorEquals")
        .and_then(Value::as_array)
        .ok_or_else(|| DefinitionError::new(here(), Problem::Required))?
        .iter()
        .map(|e| {
            e.as_str()
                .map(str::to_string)
                .ok_or_else(|| DefinitionError::new(here(), Problem::NotErrorNames))
        })
        .collect()
}

/// The items of a `Retry` or `Catch` list (absent: none).
pub(super) fn list_items<'a>(
    f: &mut Fields<'a>,
    key: &'static str,
) -> Result<&'a [Value], DefinitionError> {
    match f.get(key) {
        None => Ok(&[]),
        Some(Value::Array(list)) => Ok(list),
        Some(_) => Err(f.refuse(key, Problem::NotArray)),
    }
}

pub(super) fn parse_retry(f: &mut Fields) -> Result<Vec<Retrier>, DefinitionError> {
    let here = f.here("Retry");
    let list = list_items(f, "Retry")?;
    let mut out = Vec::new();
    for (i, r) in list.iter().enumerate() {
        let at = format!("{here}[{i}]");
        let mut rf = Fields::new(r, &at)?;
        rf.get("ErrorEquals");
        let errors = error_list(r, &at)?;
        let interval_seconds = rf.integer("IntervalSeconds")?.unwrap_or(1);
        if interval_seconds == 0 {
            return Err(rf.refuse("IntervalSeconds", Problem::NotPositive));
        }
        let max_attempts = rf.integer("MaxAttempts")?.unwrap_or(3);
        let backoff_rate = rf.number("BackoffRate")?.unwrap_or(2.0);
        if backoff_rate < 1.0 {
            return Err(rf.refuse("BackoffRate", Problem::BackoffRate));
        }
        let max_delay_seconds = rf.integer("MaxDelaySeconds")?;
        if max_delay_seconds == Some(0) {
            return Err(rf.refuse("MaxDelaySeconds", Problem::NotPositive));
        }
        let full_jitter = match rf.string("JitterStrategy")?.as_deref() {
            None | Some("NONE") => false,
            Some("FULL") => true,
            Some(other) => {
                return Err(rf.refuse("JitterStrategy", Problem::UnknownJitter(other.to_string())));
            }
        };
        rf.finish()?;
        out.push(Retrier {
            errors,
            interval_seconds: interval_seconds as f64,
            max_attempts: u32::try_from(max_attempts).unwrap_or(u32::MAX),
            backoff_rate,
            max_delay_seconds: max_delay_seconds.map(|s| s as f64),
            full_jitter,
        });
    }
    let lists: Vec<&[String]> = out.iter().map(|r| r.errors.as_slice()).collect();
    check_lists(&lists, &here)?;
    Ok(out)
}

fn parse_catch(f: &mut Fields) -> Result<Vec<Catcher>, DefinitionError> {
    let here = f.here("Catch");
    let list = list_items(f, "Catch")?;
    let mut out = Vec::new();
    for (i, c) in list.iter().enumerate() {
        let at = format!("{here}[{i}]");
        let mut cf = Fields::new(c, &at)?;
        cf.get("ErrorEquals");
        let errors = error_list(c, &at)?;
        let next = cf.required("Next")?;
        let result_path = result_path(cf.get("ResultPath"), &cf.here("ResultPath"))?;
        let assign = match cf.get("Assign") {
            Some(a) => Some(parse_assign(a, &format!("{at}.Assign"))?),
            None => None,
        };
        cf.finish()?;
        out.push(Catcher {
            errors,
            next,
            result_path,
            assign,
            jsonata: None,
        });
    }
    let lists: Vec<&[String]> = out.iter().map(|c| c.errors.as_slice()).collect();
    check_lists(&lists, &here)?;
    Ok(out)
}

/// JSONata states (`"QueryLanguage": "JSONata"`, on the machine or the state), parsed
/// and checked at load as the cloud checks them: their fields take `{% %}` expressions
/// (whose syntax is checked here), and the JSONPath fields are refused with what to use
/// instead.
mod jsonata_state {
    use serde_json::{Value, json};

    use super::{
        Fields, JsonataIo, JsonataRule, Kind, Lang, Limit, Machine, Scope, Seconds, State, Text,
        WaitFor, check_label, error_list, list_items, parse_retry, task_resource,
    };
    use crate::workflow::definition_error::{DefinitionError, Problem, path_at};
    use crate::workflow::errors::{Catcher, check_lists};
    use crate::workflow::jsonata::{Tmpl, expression};
    use crate::workflow::path::{ReferencePath, check_variable_name};

    /// The JSONPath fields a JSONata state cannot have, with what it uses instead.
    const JSONPATH_FIELDS: [(&str, &str); 16] = [
        (
            "InputPath",
            "`Arguments` and `Output` reading `$states.input`",
        ),
        ("Parameters", "`Arguments`"),
        ("ResultSelector", "`Output` reading `$states.result`"),
        ("ResultPath", "`Output` and `Assign`"),
        ("OutputPath", "`Output`"),
        ("Result", "`Output`"),
        ("ItemsPath", "`Items`"),
        ("SecondsPath", "`Seconds` with an expression"),
        ("TimestampPath", "`Timestamp` with an expression"),
        ("ErrorPath", "`Error` with an expression"),
        ("CausePath", "`Cause` with an expression"),
        ("TimeoutSecondsPath", "`TimeoutSeconds` with an expression"),
        (
            "HeartbeatSecondsPath",
            "`HeartbeatSeconds` with an expression",
        ),
        ("MaxConcurrencyPath", "`MaxConcurrency`"),
        ("ToleratedFailureCountPath", "`ToleratedFailureCount`"),
        (
            "ToleratedFailurePercentagePath",
            "`ToleratedFailurePercentage`",
        ),
    ];

    /// A JSONata state; `f` has read its `Type` and `QueryLanguage`. `machine_lang`: the
    /// language its branches and item processor inherit.
    pub(super) fn parse_state(
        mut f: Fields,
        kind_name: &str,
        value: &Value,
        machine_lang: Lang,
    ) -> Result<State, DefinitionError> {
        for (field, instead) in JSONPATH_FIELDS {
            if f.map.contains_key(field) {
                return Err(f.refuse(field, Problem::JsonPathField(field.to_string(), instead)));
            }
        }
        let at = f.at.clone();
        // Fields by type: Arguments, Output, Assign, Retry/Catch, Next/End.
        let (arguments, output, assign, errors, transitions) = match kind_name {
            "Task" | "Parallel" => (true, true, true, true, true),
            "Map" => (false, true, true, true, true),
            "Pass" | "Wait" => (false, true, true, false, true),
            "Choice" => (false, true, true, false, false),
            "Succeed" => (false, true, false, false, false),
            "Fail" => (false, false, false, false, false),
            other => {
                return Err(f.refuse("Type", Problem::UnknownStateType(other.to_string())));
            }
        };
        let io = JsonataIo {
            arguments: if arguments {
                template(&mut f, "Arguments")?
            } else {
                None
            },
            output: if output {
                template(&mut f, "Output")?
            } else {
                None
            },
            assign: if assign {
                let here = f.here("Assign");
                f.get("Assign")
                    .map(|a| parse_assign(a, &here))
                    .transpose()?
            } else {
                None
            },
        };
        let (retry, catch) = if errors {
            (parse_retry(&mut f)?, parse_catch(&mut f)?)
        } else {
            (Vec::new(), Vec::new())
        };
        let next = if transitions {
            let next = f.string("Next")?;
            let end = match f.get("End") {
                None => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err(f.refuse("End", Problem::NotBoolean)),
            };
            match (&next, end) {
                (Some(_), true) => return Err(DefinitionError::new(&at, Problem::NextAndEnd)),
                (None, false) => return Err(DefinitionError::new(&at, Problem::NoNextOrEnd)),
                _ => next,
            }
        } else {
            None
        };
        let kind = match kind_name {
            "Task" => {
                // The Lambda integration names its function in `Arguments.FunctionName`; an
                // expression names it at run time.
                let function = value.get("Arguments").and_then(|a| a.get("FunctionName"));
                let parameters = match function {
                    Some(Value::String(s)) if expression(s).is_some() => {
                        Some(json!({ "FunctionName.$": s }))
                    }
                    Some(name) => Some(json!({ "FunctionName": name })),
                    None => None,
                };
                let (resource, lambda, callback) =
                    task_resource(&f.required("Resource")?, parameters.as_ref(), &at)?;
                let timeout = seconds(&mut f, "TimeoutSeconds")?;
                let heartbeat = seconds(&mut f, "HeartbeatSeconds")?;
                if let (Some(Seconds::Fixed(t)), Some(Seconds::Fixed(h))) = (&timeout, &heartbeat)
                    && h >= t
                {
                    return Err(f.refuse("HeartbeatSeconds", Problem::HeartbeatNotBelowTimeout));
                }
                Kind::Task {
                    resource,
                    lambda,
                    callback,
                    timeout,
                    heartbeat,
                }
            }
            "Pass" => Kind::Pass { result: None },
            "Choice" => parse_choice(&mut f)?,
            "Wait" => parse_wait(&mut f)?,
            "Succeed" => Kind::Succeed,
            "Fail" => Kind::Fail {
                error: text(&mut f, "Error")?,
                cause: text(&mut f, "Cause")?,
            },
            "Parallel" => {
                let branches = f
                    .get("Branches")
                    .and_then(Value::as_array)
                    .filter(|b| !b.is_empty())
                    .ok_or_else(|| f.refuse("Branches", Problem::NotNonEmptyArray))?;
                Kind::Parallel {
                    branches: branches
                        .iter()
                        .enumerate()
                        .map(|(i, b)| {
                            Machine::parse_at(
                                b,
                                &format!("{at}.Branches[{i}]"),
                                Scope::Branch,
                                machine_lang,
                            )
                        })
                        .collect::<Result<_, _>>()?,
                }
            }
            _ => parse_map(&mut f, machine_lang)?,
        };
        let dollar = path_at("$", &at)?;
        let whole =
            ReferencePath::parse("$").map_err(|e| DefinitionError::new(&at, Problem::Path(e)))?;
        f.finish()?;
        Ok(State {
            kind,
            input_path: Some(dollar.clone()),
            output_path: Some(dollar),
            parameters: None,
            result_selector: None,
            result_path: Some(whole),
            retry,
            catch,
            next,
            assign: None,
            jsonata: Some(Box::new(io)),
        })
    }

    fn template(f: &mut Fields, key: &'static str) -> Result<Option<Tmpl>, DefinitionError> {
        let here = f.here(key);
        f.get(key).map(|v| Tmpl::parse(v, &here)).transpose()
    }

    /// A JSONata `Assign`: an object whose keys are variable names.
    fn parse_assign(value: &Value, at: &str) -> Result<Tmpl, DefinitionError> {
        let map = value
            .as_object()
            .ok_or_else(|| DefinitionError::new(at, Problem::NotObject))?;
        for key in map.keys() {
            check_variable_name(key).map_err(|e| {
                DefinitionError::new(format!("{at}.{key}"), Problem::VariableName(e))
            })?;
        }
        Tmpl::parse(value, at)
    }

    /// A field given as a value or as an expression string, and nothing else.
    fn value_or_expression<'v>(
        f: &mut Fields<'v>,
        key: &'static str,
        what: &'static str,
        ok: impl Fn(&Value) -> bool,
    ) -> Result<Option<Result<&'v Value, String>>, DefinitionError> {
        let here = f.here(key);
        match f.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if expression(s).is_some() => {
                match Tmpl::parse(&Value::String(s.clone()), &here)? {
                    Tmpl::Expr(e) => Ok(Some(Err(e))),
                    _ => Err(DefinitionError::new(
                        here,
                        Problem::NotValueOrExpression(what),
                    )),
                }
            }
            Some(v) if ok(v) => Ok(Some(Ok(v))),
            Some(_) => Err(DefinitionError::new(
                here,
                Problem::NotValueOrExpression(what),
            )),
        }
    }

    /// `TimeoutSeconds` / `HeartbeatSeconds`: a positive integer or an expression.
    fn seconds(f: &mut Fields, key: &'static str) -> Result<Option<Seconds>, DefinitionError> {
        match value_or_expression(f, key, "a positive integer", |v| v.as_u64().is_some())? {
            None => Ok(None),
            Some(Err(expr)) => Ok(Some(Seconds::Expr(expr))),
            Some(Ok(v)) => match v.as_u64() {
                Some(0) => Err(f.refuse(key, Problem::NotPositive)),
                Some(n) => Ok(Some(Seconds::Fixed(n))),
                None => Err(f.refuse(key, Problem::NotCount)),
            },
        }
    }

    /// A Fail state's `Error` / `Cause`: a string or an expression.
    fn text(f: &mut Fields, key: &'static str) -> Result<Option<Text>, DefinitionError> {
        Ok(
            match value_or_expression(f, key, "a string", Value::is_string)? {
                None => None,
                Some(Err(expr)) => Some(Text::Expr(expr)),
                Some(Ok(v)) => Some(Text::Fixed(v.as_str().unwrap_or_default().to_string())),
            },
        )
    }

    fn parse_choice(f: &mut Fields) -> Result<Kind, DefinitionError> {
        let here = f.here("Choices");
        let list = f
            .get("Choices")
            .and_then(Value::as_array)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| DefinitionError::new(&here, Problem::NotNonEmptyArray))?;
        let mut conditions = Vec::with_capacity(list.len());
        for (i, c) in list.iter().enumerate() {
            let at = format!("{here}[{i}]");
            let mut rf = Fields::new(c, &at)?;
            let condition = template(&mut rf, "Condition")?
                .ok_or_else(|| DefinitionError::new(&at, Problem::NoCondition))?;
            if let Some(v) = condition.literal()
                && !v.is_boolean()
            {
                return Err(rf.refuse("Condition", Problem::NotValueOrExpression("a boolean")));
            }
            let next = rf.required("Next")?;
            let io = JsonataIo {
                arguments: None,
                output: template(&mut rf, "Output")?,
                assign: {
                    let here = rf.here("Assign");
                    rf.get("Assign")
                        .map(|a| parse_assign(a, &here))
                        .transpose()?
                },
            };
            rf.finish()?;
            conditions.push(JsonataRule {
                condition,
                next,
                io,
            });
        }
        let default = f.string("Default")?;
        Ok(Kind::Choice {
            choices: Vec::new(),
            assigns: Vec::new(),
            default,
            conditions,
        })
    }

    fn parse_wait(f: &mut Fields) -> Result<Kind, DefinitionError> {
        let seconds = match value_or_expression(f, "Seconds", "a non-negative integer", |v| {
            v.as_u64().is_some()
        })? {
            None => None,
            Some(Err(expr)) => Some(Seconds::Expr(expr)),
            Some(Ok(v)) => Some(Seconds::Fixed(v.as_u64().unwrap_or_default())),
        };
        let timestamp = match value_or_expression(f, "Timestamp", "an RFC 3339 timestamp", |v| {
            v.as_str()
                .is_some_and(|t| crate::workflow::choice::wait_timestamp(t).is_some())
        })? {
            None => None,
            Some(Err(expr)) => Some(WaitFor::TimestampExpr(expr)),
            Some(Ok(v)) => Some(WaitFor::Timestamp(
                v.as_str().unwrap_or_default().to_string(),
            )),
        };
        match (seconds, timestamp) {
            (Some(s), None) => Ok(Kind::Wait(WaitFor::Seconds(s))),
            (None, Some(t)) => Ok(Kind::Wait(t)),
            _ => Err(DefinitionError::new(&f.at, Problem::WaitFor)),
        }
    }

    fn parse_map(f: &mut Fields, lang: Lang) -> Result<Kind, DefinitionError> {
        let (reader, batcher, writer) = super::distributed_fields(f, true)?;
        if reader.is_some() && f.map.contains_key("Items") {
            return Err(f.refuse(
                "Items",
                Problem::NotSupported("the ItemReader gives the items"),
            ));
        }
        match f.map.get("Items") {
            None | Some(Value::Array(_)) => {}
            Some(Value::String(s)) if expression(s).is_some() => {}
            Some(_) => return Err(f.refuse("Items", Problem::NotValueOrExpression("an array"))),
        }
        let items = template(f, "Items")?;
        let item_template = template(f, "ItemSelector")?;
        let here = f.here(if f.map.contains_key("ItemProcessor") {
            "ItemProcessor"
        } else {
            "Iterator"
        });
        let processor = match (f.get("ItemProcessor"), f.get("Iterator")) {
            (Some(_), Some(_)) => {
                return Err(DefinitionError::new(
                    &f.at,
                    Problem::EitherOr("ItemProcessor", "Iterator"),
                ));
            }
            (Some(p), None) => Machine::parse_at(p, &here, Scope::Processor, lang)?,
            (None, Some(p)) => Machine::parse_at(p, &here, Scope::Branch, lang)?,
            (None, None) => return Err(f.refuse("ItemProcessor", Problem::Required)),
        };
        // Each a value or an expression read when the state starts, as in the cloud.
        let max_concurrency = f
            .count_or_expression(
                "MaxConcurrency",
                "MaxConcurrencyPath",
                "`MaxConcurrency` with an expression",
            )?
            .unwrap_or(Limit::Fixed(0));
        let tolerated_count = f.count_or_expression(
            "ToleratedFailureCount",
            "ToleratedFailureCountPath",
            "`ToleratedFailureCount` with an expression",
        )?;
        let tolerated_percentage = f.limit_or_expression(
            "ToleratedFailurePercentage",
            "ToleratedFailurePercentagePath",
            "`ToleratedFailurePercentage` with an expression",
            "a number between 0 and 100",
            |v| v.as_f64().filter(|p| (0.0..=100.0).contains(p)),
        )?;
        let label = f.string("Label")?;
        if let Some(l) = &label {
            check_label(l).map_err(|problem| f.refuse("Label", problem))?;
        }
        Ok(Kind::Map {
            items_path: path_at("$", &f.here("Items"))?,
            item_selector: None,
            items,
            item_template,
            processor: Box::new(processor),
            max_concurrency,
            tolerated_count,
            tolerated_percentage,
            label,
            reader: reader.map(Box::new),
            batcher: batcher.map(Box::new),
            writer: writer.map(Box::new),
        })
    }

    /// A JSONata state's `Catch`: `Output` and `Assign` read `$states.errorOutput`.
    fn parse_catch(f: &mut Fields) -> Result<Vec<Catcher>, DefinitionError> {
        let here = f.here("Catch");
        let list = list_items(f, "Catch")?;
        let mut out = Vec::new();
        for (i, c) in list.iter().enumerate() {
            let at = format!("{here}[{i}]");
            let mut cf = Fields::new(c, &at)?;
            if cf.map.contains_key("ResultPath") {
                return Err(cf.refuse(
                    "ResultPath",
                    Problem::JsonPathField("ResultPath".into(), "`Output` and `Assign`"),
                ));
            }
            cf.get("ErrorEquals");
            let errors = error_list(c, &at)?;
            let next = cf.required("Next")?;
            let io = JsonataIo {
                arguments: None,
                output: template(&mut cf, "Output")?,
                assign: {
                    let here = cf.here("Assign");
                    cf.get("Assign")
                        .map(|a| parse_assign(a, &here))
                        .transpose()?
                },
            };
            cf.finish()?;
            out.push(Catcher {
                errors,
                next,
                result_path: None,
                assign: None,
                jsonata: Some(io),
            });
        }
        let lists: Vec<&[String]> = out.iter().map(|c| c.errors.as_slice()).collect();
        check_lists(&lists, &here)?;
        Ok(out)
    }
}
