//! JSONata states (`"QueryLanguage": "JSONata"`, on the machine or the state), parsed
//! and checked at load as the cloud checks them: their fields take `{% %}` expressions
//! (whose syntax is checked here), and the JSONPath fields are refused with what to use
//! instead.

use serde_json::{Value, json};

use super::definition::{
    Fields, JsonataIo, JsonataRule, Kind, Lang, Limit, Machine, Scope, Seconds, State, Text,
    WaitFor, check_label, error_list, list_items, parse_retry, task_resource,
};
use super::definition_error::{DefinitionError, Problem, path_at};
use super::errors::{Catcher, check_lists};
use super::jsonata::{Tmpl, expression};
use super::path::{ReferencePath, check_variable_name};

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
        check_variable_name(key)
            .map_err(|e| DefinitionError::new(format!("{at}.{key}"), Problem::VariableName(e)))?;
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
            .is_some_and(|t| super::choice::wait_timestamp(t).is_some())
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
    for unsupported in ["ItemReader", "ResultWriter", "ItemBatcher"] {
        if f.map.contains_key(unsupported) {
            return Err(f.refuse(unsupported, Problem::DistributedField));
        }
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
    let max_concurrency = Limit::Fixed(f.integer("MaxConcurrency")?.unwrap_or(0));
    let tolerated_count = f.integer("ToleratedFailureCount")?.map(Limit::Fixed);
    let tolerated_percentage = match f.number("ToleratedFailurePercentage")? {
        Some(p) if !(0.0..=100.0).contains(&p) => {
            return Err(f.refuse("ToleratedFailurePercentage", Problem::NotPercentage));
        }
        p => p.map(Limit::Fixed),
    };
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
