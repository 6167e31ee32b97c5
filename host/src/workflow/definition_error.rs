//! Why a definition is refused when its tenant loads: the place in it and what is wrong
//! there. Its text is what `orquesta check`, a tenant's status and the admin API show
//! (`States.Fetch.Retry[0].BackoffRate: must be at least 1.0`).

use serde_json::Value;

use super::intrinsics::{Function, STRING_FUNCTIONS, SyntaxError};
use super::path::{Path, PathError, VariableNameError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {problem}")]
pub struct DefinitionError {
    /// Where: the fields from the definition's top, joined by `.`, with `[i]` for a
    /// list's items (`States.Fetch.Retry[0].BackoffRate`); `definition` for the whole
    /// document. A state's name is the field after `States.`.
    pub at: String,
    pub problem: Problem,
}

impl DefinitionError {
    pub fn new(at: impl Into<String>, problem: Problem) -> Self {
        DefinitionError {
            at: at.into(),
            problem,
        }
    }
}

/// What is wrong at a place of a definition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("must be an object")]
    NotObject,
    #[error("must be a string")]
    NotString,
    #[error("must be a string or null")]
    NotStringOrNull,
    #[error("must be a boolean")]
    NotBoolean,
    #[error("must be a number")]
    NotNumber,
    #[error("must be a non-negative integer")]
    NotCount,
    #[error("must be positive")]
    NotPositive,
    #[error("must be an array")]
    NotArray,
    #[error("must be a non-empty array")]
    NotNonEmptyArray,
    #[error("is required")]
    Required,
    #[error("unknown field `{0}`")]
    UnknownField(String),
    /// Two fields that say the same thing (`MaxConcurrency` and `MaxConcurrencyPath`).
    #[error("cannot be given with {0}")]
    GivenWith(&'static str),
    #[error("use {0} or {1}, not both")]
    EitherOr(&'static str, &'static str),
    #[error("{0:?} is not JSONPath or JSONata")]
    QueryLanguage(String),
    #[error("a state of a JSONata state machine cannot use JSONPath")]
    JsonPathInJsonata,
    /// A JSONPath field in a JSONata state, with what to use instead.
    #[error("`{0}` is a JSONPath field; a JSONata state uses {1}")]
    JsonPathField(String, &'static str),
    #[error("invalid JSONata expression {0:?}: {1}")]
    Jsonata(String, String),
    #[error("a JSONata choice rule needs a `Condition`")]
    NoCondition,
    #[error("must be {0} or a JSONata expression string (\"{{% ... %}}\")")]
    NotValueOrExpression(&'static str),
    #[error("must be an object with at least one state")]
    NoStates,
    #[error("a state name has 1 to 80 characters")]
    StateName,
    #[error("unknown state type {0:?}")]
    UnknownStateType(String),
    #[error("state {0:?} does not exist")]
    NoSuchState(String),
    #[error("cannot be reached from StartAt")]
    Unreachable,
    #[error("has both `Next` and `End`")]
    NextAndEnd,
    #[error("needs `Next` or `\"End\": true`")]
    NoNextOrEnd,
    #[error(
        "assigns ${0}, a variable of an outer scope (a branch or Map item reads outer variables but cannot assign them)"
    )]
    OuterVariable(String),
    #[error(transparent)]
    VariableName(VariableNameError),
    #[error(transparent)]
    Path(PathError),
    #[error(transparent)]
    Intrinsic(SyntaxError),
    #[error("a `.$` field needs a path or intrinsic string")]
    DollarField,
    #[error("{} does not return a string; use one of {}", .0.name(), string_function_names())]
    NotStringFunction(Function),
    #[error("names no plugin")]
    NoPlugin,
    #[error("names no function")]
    NoFunction,
    /// The Lambda integration's `Resource` without the function to call.
    #[error("{0} needs `FunctionName` (a plugin of the tenant) or `FunctionName.$`")]
    NoFunctionName(&'static str),
    #[error("must be smaller than TimeoutSeconds")]
    HeartbeatNotBelowTimeout,
    #[error("{0:?} is not an RFC 3339 timestamp")]
    NotTimestamp(String),
    #[error("a Wait needs exactly one of Seconds, SecondsPath, Timestamp, TimestampPath")]
    WaitFor,
    #[error(
        "is for a distributed Map only: its ItemProcessor needs ProcessorConfig {{\"Mode\": \"DISTRIBUTED\"}}"
    )]
    DistributedField,
    #[error("{0:?} is not one of {1}")]
    UnknownResource(String, &'static str),
    #[error("{0:?} is not JSON, JSONL, CSV or PARQUET (MANIFEST is not supported)")]
    UnknownInputType(String),
    #[error("{0:?} is not FIRST_ROW or GIVEN")]
    CsvHeaderLocation(String),
    #[error("{0:?} is not COMMA, PIPE, SEMICOLON, SPACE or TAB")]
    CsvDelimiter(String),
    #[error("is given with CSVHeaderLocation GIVEN only, and required with it")]
    CsvHeaders,
    #[error("is for a CSV InputType only")]
    CsvOnly,
    #[error("{0:?} is not a parameter here (use {1})")]
    UnknownParameter(String, &'static str),
    #[error("needs {0}")]
    NeedsParameter(&'static str),
    #[error("is not supported: {0}")]
    NotSupported(&'static str),
    #[error("{0:?} is not {1}")]
    NotOneOf(String, &'static str),
    #[error(
        "needs Resource and {0} (to write the results), WriterConfig (to shape them), or all three"
    )]
    ResultWriterFields(&'static str),
    #[error("needs MaxItemsPerBatch(Path) or MaxInputBytesPerBatch(Path)")]
    BatcherNeedsMax,
    #[error("must be at most {0}")]
    AtMost(u64),
    #[error("{0:?} is not STANDARD or EXPRESS")]
    UnknownExecutionType(String),
    #[error("{0:?} is not INLINE or DISTRIBUTED")]
    UnknownMode(String),
    #[error("only a DISTRIBUTED Map has one")]
    InlineExecutionType,
    #[error("must be between 0 and 100")]
    NotPercentage,
    #[error("a label has 1 to 40 characters")]
    LabelLength,
    #[error("{0:?} is not allowed in a label")]
    LabelCharacter(char),
    #[error("must hold strings")]
    NotErrorNames,
    #[error("must name at least one error")]
    NoErrorNames,
    #[error("`States.ALL` must appear alone, in the last entry")]
    AllNotAlone,
    #[error("unknown error name `{0}`")]
    UnknownErrorName(String),
    #[error("must be at least 1.0")]
    BackoffRate,
    #[error("{0:?} is not FULL or NONE")]
    UnknownJitter(String),
    #[error("a choice rule must be an object")]
    RuleNotObject,
    #[error("`{0}` cannot be combined with other fields")]
    CombinedWithOthers(&'static str),
    #[error("must be a non-empty array of rules")]
    NoRules,
    #[error("a comparison needs a string `Variable`")]
    NoVariable,
    #[error("a comparison needs exactly one operator, found {0}")]
    OperatorCount(usize),
    #[error("unknown operator `{0}`")]
    UnknownOperator(String),
    #[error("must be a path string")]
    NotPathString,
    #[error("{0} is not a valid operand")]
    BadOperand(Value),
}

/// The functions a Fail state's `ErrorPath` / `CausePath` may call, for a refusal's text.
fn string_function_names() -> String {
    STRING_FUNCTIONS.map(Function::name).join(", ")
}

/// The path `text` of the field at `at`.
pub(super) fn path_at(text: &str, at: &str) -> Result<Path, DefinitionError> {
    Path::parse(text).map_err(|e| DefinitionError::new(at, Problem::Path(e)))
}
