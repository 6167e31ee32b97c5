//! Table-driven tests of the language parts, with expected values taken from the Amazon
//! States Language specification and the intrinsic functions' published examples.

use serde_json::{Value, json};

use super::choice::{EvalError, Rule};
use super::definition::{LAMBDA_INVOKE, Machine};
use super::definition_error::{DefinitionError, Problem};
use super::intrinsics::{self, Call, Function, IntrinsicError, SyntaxError, SyntaxProblem};
use super::path::{PathError, ReferenceProblem, VariableNameError};
use super::payload;

fn rule(v: Value) -> Rule {
    Rule::parse(&v, "rule", false).unwrap_or_else(|e| panic!("{v}: {e}"))
}

#[test]
fn every_choice_operator() {
    let input = json!({
        "s": "hello", "n": 10, "f": 2.5, "b": true, "nul": null,
        "t": "2016-03-14T01:59:00Z", "t2": "2016-03-14T02:00:00+00:00",
        "other": "hello", "ten": 10, "yes": true, "file": "log-2024.txt",
        "star": "a*b"
    });
    let ctx = json!({});
    // (rule, expected)
    let table = [
        (json!({"Variable": "$.s", "StringEquals": "hello"}), true),
        (json!({"Variable": "$.s", "StringEquals": "Hello"}), false),
        (json!({"Variable": "$.s", "StringLessThan": "world"}), true),
        (
            json!({"Variable": "$.s", "StringGreaterThan": "world"}),
            false,
        ),
        (
            json!({"Variable": "$.s", "StringLessThanEquals": "hello"}),
            true,
        ),
        (
            json!({"Variable": "$.s", "StringGreaterThanEquals": "hellp"}),
            false,
        ),
        (
            json!({"Variable": "$.s", "StringEqualsPath": "$.other"}),
            true,
        ),
        (
            json!({"Variable": "$.s", "StringLessThanPath": "$.other"}),
            false,
        ),
        (
            json!({"Variable": "$.s", "StringGreaterThanPath": "$.other"}),
            false,
        ),
        (
            json!({"Variable": "$.s", "StringLessThanEqualsPath": "$.other"}),
            true,
        ),
        (
            json!({"Variable": "$.s", "StringGreaterThanEqualsPath": "$.other"}),
            true,
        ),
        (json!({"Variable": "$.n", "StringEquals": "10"}), false), // type mismatch
        (
            json!({"Variable": "$.file", "StringMatches": "log-*.txt"}),
            true,
        ),
        (
            json!({"Variable": "$.file", "StringMatches": "*.csv"}),
            false,
        ),
        (
            json!({"Variable": "$.star", "StringMatches": "a\\*b"}),
            true,
        ),
        (
            json!({"Variable": "$.file", "StringMatches": "a\\*b"}),
            false,
        ),
        (json!({"Variable": "$.n", "NumericEquals": 10}), true),
        (json!({"Variable": "$.n", "NumericEquals": 10.0}), true),
        (json!({"Variable": "$.f", "NumericLessThan": 3}), true),
        (json!({"Variable": "$.f", "NumericGreaterThan": 3}), false),
        (
            json!({"Variable": "$.n", "NumericLessThanEquals": 10}),
            true,
        ),
        (
            json!({"Variable": "$.n", "NumericGreaterThanEquals": 11}),
            false,
        ),
        (
            json!({"Variable": "$.n", "NumericEqualsPath": "$.ten"}),
            true,
        ),
        (
            json!({"Variable": "$.f", "NumericLessThanPath": "$.ten"}),
            true,
        ),
        (
            json!({"Variable": "$.f", "NumericGreaterThanPath": "$.ten"}),
            false,
        ),
        (
            json!({"Variable": "$.n", "NumericLessThanEqualsPath": "$.ten"}),
            true,
        ),
        (
            json!({"Variable": "$.n", "NumericGreaterThanEqualsPath": "$.ten"}),
            true,
        ),
        (json!({"Variable": "$.s", "NumericEquals": 1}), false), // type mismatch
        (json!({"Variable": "$.b", "BooleanEquals": true}), true),
        (json!({"Variable": "$.b", "BooleanEquals": false}), false),
        (
            json!({"Variable": "$.b", "BooleanEqualsPath": "$.yes"}),
            true,
        ),
        (
            json!({"Variable": "$.t", "TimestampEquals": "2016-03-14T01:59:00Z"}),
            true,
        ),
        (
            json!({"Variable": "$.t", "TimestampLessThan": "2016-03-14T02:00:00Z"}),
            true,
        ),
        (
            json!({"Variable": "$.t", "TimestampGreaterThan": "2016-03-14T02:00:00Z"}),
            false,
        ),
        (
            json!({"Variable": "$.t", "TimestampLessThanEquals": "2016-03-14T01:59:00Z"}),
            true,
        ),
        (
            json!({"Variable": "$.t", "TimestampGreaterThanEquals": "2016-03-14T02:00:00Z"}),
            false,
        ),
        (
            json!({"Variable": "$.t", "TimestampEqualsPath": "$.t2"}),
            false,
        ),
        (
            json!({"Variable": "$.t", "TimestampLessThanPath": "$.t2"}),
            true,
        ),
        (
            json!({"Variable": "$.t", "TimestampGreaterThanPath": "$.t2"}),
            false,
        ),
        (
            json!({"Variable": "$.t2", "TimestampLessThanEqualsPath": "$.t2"}),
            true,
        ),
        (
            json!({"Variable": "$.t2", "TimestampGreaterThanEqualsPath": "$.t"}),
            true,
        ),
        (
            json!({"Variable": "$.s", "TimestampEquals": "2016-03-14T01:59:00Z"}),
            false,
        ),
        (json!({"Variable": "$.nul", "IsNull": true}), true),
        (json!({"Variable": "$.s", "IsNull": true}), false),
        (json!({"Variable": "$.s", "IsPresent": true}), true),
        (json!({"Variable": "$.missing", "IsPresent": true}), false),
        (json!({"Variable": "$.missing", "IsPresent": false}), true),
        (json!({"Variable": "$.f", "IsNumeric": true}), true),
        (json!({"Variable": "$.s", "IsNumeric": false}), true),
        (json!({"Variable": "$.s", "IsString": true}), true),
        (json!({"Variable": "$.b", "IsBoolean": true}), true),
        (json!({"Variable": "$.t", "IsTimestamp": true}), true),
        (json!({"Variable": "$.s", "IsTimestamp": true}), false),
        // The spec's example of a compound rule.
        (
            json!({"And": [
                {"Variable": "$.n", "NumericGreaterThanEquals": 1},
                {"Variable": "$.n", "NumericLessThan": 20}
            ]}),
            true,
        ),
        (
            json!({"Or": [
                {"Variable": "$.n", "NumericLessThan": 1},
                {"Variable": "$.s", "StringEquals": "nope"}
            ]}),
            false,
        ),
        (
            json!({"Not": {"Variable": "$.s", "StringEquals": "world"}}),
            true,
        ),
    ];
    for (r, want) in table {
        assert_eq!(rule(r.clone()).eval(&input, &ctx), Ok(want), "{r}");
    }
    // A variable that selects nothing is a runtime error (IsPresent aside).
    assert_eq!(
        rule(json!({"Variable": "$.missing", "StringEquals": "x"})).eval(&input, &ctx),
        Err(EvalError::NoVariable("$.missing".into()))
    );
    assert_eq!(
        rule(json!({"Variable": "$.s", "StringEqualsPath": "$.missing"})).eval(&input, &ctx),
        Err(EvalError::NoOperand("$.missing".into()))
    );
}

/// What the developer guide's intrinsic functions page says of arguments beyond the
/// published examples: MathAdd and MathRandom round non-integers to the nearest
/// integer; Format prints objects and arrays as Java's `toString` does; StringToJson of
/// an empty or blank string is null.
#[test]
fn intrinsic_arguments_the_cloud_converts() {
    let input = json!({
        "args": {"Arg1": 1, "Arg2": []}, "list": [1, "two", {"k": null}, [true]],
        "half": 2.5, "neg": -1.5, "blank": "  \n ", "empty": "", "f": 1.25
    });
    let ctx = json!({});
    let eval = |text: &str| {
        Call::parse(text)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .eval(&input, &ctx)
    };
    let table: &[(&str, Value)] = &[
        ("States.MathAdd(1.4, 1)", json!(2)),
        ("States.MathAdd(1.5, 1)", json!(3)),
        ("States.MathAdd($.half, 0)", json!(3)),
        ("States.MathAdd($.neg, 0)", json!(-1)),
        ("States.MathAdd(-2.7, 0.2)", json!(-3)),
        ("States.MathRandom(4.6, 5.5)", json!(5)),
        ("States.Format('{}', $.args)", json!("{Arg1=1, Arg2=[]}")),
        (
            "States.Format('x {} y', $.list)",
            json!("x [1, two, {k=null}, [true]] y"),
        ),
        ("States.Format('{}', $.f)", json!("1.25")),
        ("States.StringToJson($.empty)", json!(null)),
        ("States.StringToJson($.blank)", json!(null)),
        ("States.StringToJson(' 1 ')", json!(1)),
    ];
    for (text, want) in table {
        assert_eq!(eval(text).as_ref(), Ok(want), "{text}");
    }
}

#[test]
fn bad_choice_rules_are_refused() {
    let refused = |at: &str, problem| DefinitionError::new(at, problem);
    let table = [
        (
            json!({"Variable": "$.s"}),
            refused("rule", Problem::OperatorCount(0)),
        ),
        (
            json!({"Variable": "$.s", "StringEquals": 1}),
            refused("rule.StringEquals", Problem::BadOperand(json!(1))),
        ),
        (
            json!({"Variable": "$.s", "NumericEquals": "1"}),
            refused("rule.NumericEquals", Problem::BadOperand(json!("1"))),
        ),
        (
            json!({"Variable": "$.s", "BooleanLessThan": true}),
            refused("rule", Problem::UnknownOperator("BooleanLessThan".into())),
        ),
        (
            json!({"Variable": "$.s", "TimestampEquals": "yesterday"}),
            refused(
                "rule.TimestampEquals",
                Problem::BadOperand(json!("yesterday")),
            ),
        ),
        (
            json!({"Variable": "$.s", "StringEquals": "a", "StringMatches": "a"}),
            refused("rule", Problem::OperatorCount(2)),
        ),
        (
            json!({"Variable": "$.s", "Frobnicate": "a"}),
            refused("rule", Problem::UnknownOperator("Frobnicate".into())),
        ),
        (
            json!({"Variable": "s", "StringEquals": "a"}),
            refused(
                "rule.Variable",
                Problem::Path(PathError::NoRoot("s".into())),
            ),
        ),
        (json!({"And": []}), refused("rule.And", Problem::NoRules)),
        (
            json!({"And": [], "Variable": "$.s"}),
            refused("rule", Problem::CombinedWithOthers("And")),
        ),
        (
            json!({"Variable": "$.s", "IsNull": "yes"}),
            refused("rule.IsNull", Problem::BadOperand(json!("yes"))),
        ),
        (json!([]), refused("rule", Problem::RuleNotObject)),
        (
            json!({"Variable": 1, "IsNull": true}),
            refused("rule", Problem::NoVariable),
        ),
        (
            json!({"Variable": "$.s", "StringEqualsPath": 1}),
            refused("rule.StringEqualsPath", Problem::NotPathString),
        ),
    ];
    for (r, want) in table {
        assert_eq!(Rule::parse(&r, "rule", false).unwrap_err(), want, "{r}");
    }
}

#[test]
fn every_intrinsic_function() {
    let input = json!({
        "name": "Arnav", "someString": "{\"number\": 20}",
        "someJson": {"name": "Foo", "zebra": "Bar"},
        "inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9],
        "dupes": [1, 2, 3, 3, 3, 3, 3, 3, 4],
        "json1": {"a": {"a1": 1, "a2": 2}, "b": 2},
        "json2": {"a": {"a3": 1, "a4": 2}, "c": 3},
        "inputString": "This.is+a,test=string", "splitter": ".+,="
    });
    let ctx = json!({"Execution": {"Id": "exec-1"}});
    let eval = |text: &str| {
        Call::parse(text)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .eval(&input, &ctx)
    };
    let table: &[(&str, Value)] = &[
        (
            "States.Format('Hello, my name is {}.', $.name)",
            json!("Hello, my name is Arnav."),
        ),
        (
            "States.Format('{} runs {}', $$.Execution.Id, 3)",
            json!("exec-1 runs 3"),
        ),
        (
            "States.Format('literal \\{\\} and \\'quotes\\'')",
            json!("literal {} and 'quotes'"),
        ),
        ("States.StringToJson($.someString)", json!({"number": 20})),
        (
            "States.JsonToString($.someJson)",
            json!("{\"name\":\"Foo\",\"zebra\":\"Bar\"}"),
        ),
        (
            "States.Array('Foo', 2020, $.someJson, null)",
            json!(["Foo", 2020, {"name": "Foo", "zebra": "Bar"}, null]),
        ),
        (
            "States.ArrayPartition($.inputArray, 4)",
            json!([[1, 2, 3, 4], [5, 6, 7, 8], [9]]),
        ),
        ("States.ArrayContains($.inputArray, 5)", json!(true)),
        ("States.ArrayContains($.inputArray, 10)", json!(false)),
        ("States.ArrayRange(1, 9, 2)", json!([1, 3, 5, 7, 9])),
        ("States.ArrayRange(9, 1, -4)", json!([9, 5, 1])),
        ("States.ArrayGetItem($.inputArray, 5)", json!(6)),
        ("States.ArrayLength($.inputArray)", json!(9)),
        ("States.ArrayUnique($.dupes)", json!([1, 2, 3, 4])),
        (
            "States.Base64Encode('Data to encode')",
            json!("RGF0YSB0byBlbmNvZGU="),
        ),
        (
            "States.Base64Decode('RGF0YSB0byBlbmNvZGU=')",
            json!("Data to encode"),
        ),
        (
            "States.Hash('input data', 'SHA-1')",
            json!("aaff4a450a104cd177d28d18d74485e8cae074b7"),
        ),
        (
            "States.Hash('abc', 'MD5')",
            json!("900150983cd24fb0d6963f7d28e17f72"),
        ),
        (
            "States.Hash('abc', 'SHA-256')",
            json!("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ),
        (
            "States.JsonMerge($.json1, $.json2, false)",
            json!({"a": {"a3": 1, "a4": 2}, "b": 2, "c": 3}),
        ),
        ("States.MathAdd(111, -1)", json!(110)),
        (
            "States.StringSplit($.inputString, $.splitter)",
            json!(["This", "is", "a", "test", "string"]),
        ),
        (
            "States.StringSplit('1,2,3,4,5', ',')",
            json!(["1", "2", "3", "4", "5"]),
        ),
        (
            "States.ArrayGetItem(States.StringSplit(States.Format('{}-x', $.name), '-'), 0)",
            json!("Arnav"),
        ),
    ];
    for (text, want) in table {
        assert_eq!(eval(text).as_ref(), Ok(want), "{text}");
    }
    let random = eval("States.MathRandom(1, 999)").unwrap().as_i64().unwrap();
    assert!((1..999).contains(&random));
    assert_eq!(
        eval("States.MathRandom(1, 999, 1234)"),
        eval("States.MathRandom(1, 999, 1234)"),
        "a seed makes it repeatable"
    );
    let id = eval("States.UUID()").unwrap();
    assert!(uuid::Uuid::parse_str(id.as_str().unwrap()).is_ok());

    // Failures at run time (States.IntrinsicFailure).
    use intrinsics::Problem as P;
    let failed = |function, problem| Err(IntrinsicError::Failed { function, problem });
    assert_eq!(
        eval("States.ArrayGetItem($.inputArray, 20)"),
        failed(Function::ArrayGetItem, P::OutOfBounds(20))
    );
    assert!(matches!(
        eval("States.StringToJson($.name)"),
        Err(IntrinsicError::Failed {
            function: Function::StringToJson,
            problem: P::NotJson(_)
        })
    ));
    assert_eq!(
        eval("States.Format('{} {}', $.name)"),
        failed(Function::Format, P::TooFewArguments)
    );
    assert_eq!(
        eval("States.Hash('x', 'SHA-3')"),
        failed(Function::Hash, P::UnknownAlgorithm("SHA-3".into()))
    );
    assert_eq!(
        eval("States.JsonMerge($.json1, $.json2, true)"),
        failed(Function::JsonMerge, P::DeepMerge)
    );
    assert_eq!(
        eval("States.ArrayRange(1, 5000, 1)"),
        failed(Function::ArrayRange, P::RangeTooLong)
    );
    assert!(matches!(
        eval("States.MathAdd($.name, 1)"),
        Err(IntrinsicError::Failed {
            function: Function::MathAdd,
            problem: P::NotNumber {
                what: "the first number",
                ..
            }
        })
    ));
    assert!(matches!(
        eval("States.Base64Decode('***')"),
        Err(IntrinsicError::Failed {
            function: Function::Base64Decode,
            problem: P::NotBase64(_)
        })
    ));
    assert_eq!(
        eval("States.ArrayLength($.missing)"),
        Err(IntrinsicError::NothingSelected("$.missing".into()))
    );
    // Failures when the definition loads.
    let deep = format!("{}1{}", "States.Array(".repeat(11), ")".repeat(11));
    for text in [
        "States.Nope(1)",
        "States.UUID(1)",
        "States.ArrayLength()",
        "States.Format('unclosed)",
        "States.Array(1,",
        "States.Array(bogus)",
        deep.as_str(),
    ] {
        assert!(Call::parse(text).is_err(), "{text}");
    }
}

fn machine(states: Value) -> Result<Machine, DefinitionError> {
    let start = states
        .as_object()
        .and_then(|m| m.keys().next().cloned())
        .unwrap_or_default();
    Machine::parse(&json!({ "StartAt": start, "States": states }))
}

#[test]
fn definitions_are_checked_when_they_load() {
    let ok = machine(json!({
        "A": {"Type": "Pass", "Next": "B"},
        "B": {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsPresent": true, "Next": "C"}], "Default": "D"},
        "C": {"Type": "Task", "Resource": "p", "Retry": [{"ErrorEquals": ["States.ALL"]}],
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "D"}], "End": true},
        "D": {"Type": "Succeed"}
    }));
    assert!(ok.is_ok(), "{ok:?}");
    // (definition, the place and the problem the refusal names)
    let refused = |at: &str, problem| DefinitionError::new(at, problem);
    let processor = json!({"StartAt": "X", "States": {"X": {"Type": "Succeed"}}});
    let table = [
        (
            json!({"A": {"Type": "Pass", "Next": "Nowhere"}}),
            refused("States.A.Next", Problem::NoSuchState("Nowhere".into())),
        ),
        (
            json!({"A": {"Type": "Pass", "End": true}, "B": {"Type": "Succeed"}}),
            refused("States.B", Problem::Unreachable),
        ),
        (
            json!({"A": {"Type": "Pass"}}),
            refused("States.A", Problem::NoNextOrEnd),
        ),
        (
            json!({"A": {"Type": "Pass", "Next": "A", "End": true}}),
            refused("States.A", Problem::NextAndEnd),
        ),
        (
            json!({"A": {"Type": "Bogus"}}),
            refused("States.A.Type", Problem::UnknownStateType("Bogus".into())),
        ),
        (
            json!({"A": {"Type": "Pass", "End": true, "Colour": "red"}}),
            refused("States.A", Problem::UnknownField("Colour".into())),
        ),
        (
            json!({"A": {"Type": "Succeed", "Next": "A"}}),
            refused("States.A", Problem::UnknownField("Next".into())),
        ),
        (
            json!({"A": {"Type": "Pass", "End": true, "InputPath": "x"}}),
            refused(
                "States.A.InputPath",
                Problem::Path(PathError::NoRoot("x".into())),
            ),
        ),
        (
            json!({"A": {"Type": "Pass", "End": true, "ResultPath": "$.a[*]"}}),
            refused(
                "States.A.ResultPath",
                Problem::Path(PathError::Reference {
                    text: "$.a[*]".into(),
                    problem: ReferenceProblem::NotFieldOrIndex,
                }),
            ),
        ),
        (
            json!({"A": {"Type": "Pass", "End": true, "Parameters": {"x.$": "States.Nope()"}}}),
            refused(
                "States.A.Parameters.x.$",
                Problem::Intrinsic(SyntaxError {
                    text: "States.Nope()".into(),
                    offset: 0,
                    problem: SyntaxProblem::UnknownFunction("States.Nope".into()),
                }),
            ),
        ),
        (
            json!({"A": {"Type": "Pass", "End": true, "Parameters": {"x.$": "nope"}}}),
            refused(
                "States.A.Parameters.x.$",
                Problem::Path(PathError::NoRoot("nope".into())),
            ),
        ),
        (
            json!({"A": {"Type": "Pass", "End": true, "Parameters": {"x.$": 1}}}),
            refused("States.A.Parameters.x.$", Problem::DollarField),
        ),
        (
            json!({"A": {"Type": "Task", "End": true}}),
            refused("States.A.Resource", Problem::Required),
        ),
        (
            json!({"A": {"Type": "Task", "Resource": "p", "End": true, "Retry": [{"ErrorEquals": []}]}}),
            refused("States.A.Retry[0].ErrorEquals", Problem::NoErrorNames),
        ),
        (
            json!({"A": {"Type": "Task", "Resource": "p", "End": true, "Retry": {}}}),
            refused("States.A.Retry", Problem::NotArray),
        ),
        (
            json!({"A": {"Type": "Task", "Resource": "p", "End": true, "Retry": [{"ErrorEquals": ["X"], "BackoffRate": 0.5}]}}),
            refused("States.A.Retry[0].BackoffRate", Problem::BackoffRate),
        ),
        (
            json!({"A": {"Type": "Task", "Resource": "p", "End": true, "Retry": [{"ErrorEquals": ["X"], "JitterStrategy": "SOME"}]}}),
            refused(
                "States.A.Retry[0].JitterStrategy",
                Problem::UnknownJitter("SOME".into()),
            ),
        ),
        (
            json!({"A": {"Type": "Task", "Resource": "p", "End": true, "Retry": [{"ErrorEquals": ["States.ALL"]}, {"ErrorEquals": ["X"]}]}}),
            refused("States.A.Retry[0].ErrorEquals", Problem::AllNotAlone),
        ),
        (
            json!({"A": {"Type": "Task", "Resource": "p", "End": true, "Catch": [{"ErrorEquals": ["X"]}]}}),
            refused("States.A.Catch[0].Next", Problem::Required),
        ),
        (
            json!({"A": {"Type": "Task", "Resource": "p", "End": true, "TimeoutSeconds": 5, "HeartbeatSeconds": 10}}),
            refused(
                "States.A.HeartbeatSeconds",
                Problem::HeartbeatNotBelowTimeout,
            ),
        ),
        (
            json!({"A": {"Type": "Choice", "Choices": []}}),
            refused("States.A.Choices", Problem::NotNonEmptyArray),
        ),
        (
            json!({"A": {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsNull": true}]}}),
            refused("States.A.Choices[0].Next", Problem::Required),
        ),
        (
            json!({"A": {"Type": "Wait", "End": true}}),
            refused("States.A", Problem::WaitFor),
        ),
        (
            json!({"A": {"Type": "Wait", "Seconds": 1, "Timestamp": "2016-03-14T01:59:00Z", "End": true}}),
            refused("States.A", Problem::WaitFor),
        ),
        (
            json!({"A": {"Type": "Wait", "Timestamp": "soon", "End": true}}),
            refused("States.A.Timestamp", Problem::NotTimestamp("soon".into())),
        ),
        (
            json!({"A": {"Type": "Fail", "Error": "X", "ErrorPath": "$.e"}}),
            refused("States.A.Error", Problem::GivenWith("ErrorPath")),
        ),
        (
            json!({"A": {"Type": "Wait", "Timestamp": "2016-03-14 01:59:00Z", "End": true}}),
            refused(
                "States.A.Timestamp",
                Problem::NotTimestamp("2016-03-14 01:59:00Z".into()),
            ),
        ),
        (
            json!({"A": {"Type": "Fail", "CausePath": "States.ArrayLength($.list)"}}),
            refused(
                "States.A.CausePath",
                Problem::NotStringFunction(Function::ArrayLength),
            ),
        ),
        (
            json!({"A": {"Type": "Fail", "ErrorPath": "States.Format('{}'"}}),
            refused(
                "States.A.ErrorPath",
                Problem::Intrinsic(SyntaxError {
                    text: "States.Format('{}'".into(),
                    offset: 18,
                    problem: SyntaxProblem::NoSeparator,
                }),
            ),
        ),
        (
            json!({"A": {"Type": "Parallel", "Branches": [], "End": true}}),
            refused("States.A.Branches", Problem::NotNonEmptyArray),
        ),
        (
            json!({"A": {"Type": "Parallel", "End": true, "Branches": [{"StartAt": "X", "States": {"Y": {"Type": "Succeed"}}}]}}),
            refused(
                "States.A.Branches[0].StartAt",
                Problem::NoSuchState("X".into()),
            ),
        ),
        (
            json!({"A": {"Type": "Map", "End": true}}),
            refused("States.A.ItemProcessor", Problem::Required),
        ),
        (
            json!({"A": {"Type": "Map", "End": true, "ItemReader": {}, "ItemProcessor": processor}}),
            refused("States.A.ItemReader", Problem::DistributedField),
        ),
        (
            json!({"A": {"Type": "Map", "End": true, "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED"}, "StartAt": "X", "States": {"X": {"Type": "Succeed"}}}}}),
            refused(
                "States.A.ItemProcessor.ProcessorConfig.ExecutionType",
                Problem::Required,
            ),
        ),
        (
            json!({"A": {"Type": "Map", "End": true, "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "FAST"}, "StartAt": "X", "States": {"X": {"Type": "Succeed"}}}}}),
            refused(
                "States.A.ItemProcessor.ProcessorConfig.ExecutionType",
                Problem::UnknownExecutionType("FAST".into()),
            ),
        ),
        (
            json!({"A": {"Type": "Map", "End": true, "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE", "ExecutionType": "STANDARD"}, "StartAt": "X", "States": {"X": {"Type": "Succeed"}}}}}),
            refused(
                "States.A.ItemProcessor.ProcessorConfig.ExecutionType",
                Problem::InlineExecutionType,
            ),
        ),
        (
            json!({"A": {"Type": "Map", "End": true, "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD", "Extra": 1}, "StartAt": "X", "States": {"X": {"Type": "Succeed"}}}}}),
            refused(
                "States.A.ItemProcessor.ProcessorConfig",
                Problem::UnknownField("Extra".into()),
            ),
        ),
        (
            json!({"A": {"Type": "Map", "End": true, "ItemProcessor": {"ProcessorConfig": {"Mode": "FAST"}, "StartAt": "X", "States": {"X": {"Type": "Succeed"}}}}}),
            refused(
                "States.A.ItemProcessor.ProcessorConfig.Mode",
                Problem::UnknownMode("FAST".into()),
            ),
        ),
        (
            json!({"A": {"Type": "Parallel", "End": true, "Branches": [{"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "X", "States": {"X": {"Type": "Succeed"}}}]}}),
            refused(
                "States.A.Branches[0]",
                Problem::UnknownField("ProcessorConfig".into()),
            ),
        ),
        (
            json!({"A": {"Type": "Map", "End": true, "Label": "has space", "ItemProcessor": processor}}),
            refused("States.A.Label", Problem::LabelCharacter(' ')),
        ),
        (
            json!({"A": {"Type": "Map", "End": true, "Label": "x".repeat(41), "ItemProcessor": processor}}),
            refused("States.A.Label", Problem::LabelLength),
        ),
        (
            json!({"A": {"Type": "Map", "End": true, "MaxConcurrency": 2, "MaxConcurrencyPath": "$.m", "ItemProcessor": processor}}),
            refused(
                "States.A.MaxConcurrency",
                Problem::GivenWith("MaxConcurrencyPath"),
            ),
        ),
        (
            json!({"A": {"Type": "Map", "End": true, "ToleratedFailureCount": 2, "ToleratedFailureCountPath": "$.m", "ItemProcessor": processor}}),
            refused(
                "States.A.ToleratedFailureCount",
                Problem::GivenWith("ToleratedFailureCountPath"),
            ),
        ),
        (
            json!({"A": {"Type": "Map", "End": true, "ToleratedFailurePercentagePath": "m", "ItemProcessor": processor}}),
            refused(
                "States.A.ToleratedFailurePercentagePath",
                Problem::Path(PathError::NoRoot("m".into())),
            ),
        ),
        (
            json!({"A": {"Type": "Map", "End": true, "ToleratedFailurePercentage": 101, "ItemProcessor": processor}}),
            refused(
                "States.A.ToleratedFailurePercentage",
                Problem::NotPercentage,
            ),
        ),
        (
            json!({"A": {"Type": "Pass", "Assign": {"1st": 1}, "End": true}}),
            refused(
                "States.A.Assign.1st",
                Problem::VariableName(VariableNameError::Invalid("1st".into())),
            ),
        ),
        (
            json!({"A": {"Type": "Pass", "Assign": {"states": 1}, "End": true}}),
            refused(
                "States.A.Assign.states",
                Problem::VariableName(VariableNameError::Reserved),
            ),
        ),
        (
            json!({"A": {"Type": "Succeed", "Assign": {"x": 1}}}),
            refused("States.A", Problem::UnknownField("Assign".into())),
        ),
        (
            json!({"A": {"Type": "Pass", "Assign": {"x": 1}, "Next": "M"},
                   "M": {"Type": "Map", "End": true, "ItemProcessor": {"StartAt": "X", "States": {"X": {"Type": "Pass", "Assign": {"x": 2}, "End": true}}}}}),
            refused("States.M[0]", Problem::OuterVariable("x".into())),
        ),
    ];
    for (states, want) in table {
        let err = machine(states.clone()).expect_err(&states.to_string());
        assert_eq!(err, want, "{states}");
    }
    // A `$name` path names a variable, and `9lives` is none: the JSONPath parser refuses it.
    let err =
        machine(json!({"A": {"Type": "Pass", "Parameters": {"v.$": "$9lives"}, "End": true}}))
            .unwrap_err();
    assert_eq!(err.at, "States.A.Parameters.v.$");
    assert!(
        matches!(err.problem, Problem::Path(PathError::Syntax { ref text, .. }) if text == "$9lives"),
        "{err}"
    );
    // The text `orquesta check` and a tenant's status show: the place, then why.
    let err = machine(json!({"A": {"Type": "Task", "Resource": "p", "End": true,
        "Retry": [{"ErrorEquals": ["X"], "BackoffRate": 0.5}]}}))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "States.A.Retry[0].BackoffRate: must be at least 1.0"
    );
    let err = machine(
        json!({"A": {"Type": "Pass", "End": true, "Parameters": {"x.$": "States.Nope()"}}}),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"States.A.Parameters.x.$: intrinsic "States.Nope()" at offset 0: unknown function `States.Nope`"#
    );
    let err = machine(json!({"A": {"Type": "Fail", "CausePath": "States.ArrayLength($.list)"}}))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "States.A.CausePath: States.ArrayLength does not return a string; use one of States.Format, States.JsonToString, States.ArrayGetItem, States.Base64Encode, States.Base64Decode, States.Hash, States.UUID"
    );
    // A scope inside a scope is named by both.
    let inner =
        json!({"StartAt": "X", "States": {"X": {"Type": "Pass", "Assign": {"x": 2}, "End": true}}});
    let err = machine(
        json!({"A": {"Type": "Pass", "Assign": {"x": 1}, "Next": "P"},
        "P": {"Type": "Parallel", "End": true, "Branches": [{"StartAt": "M", "States": {
            "M": {"Type": "Map", "End": true, "ItemProcessor": inner}}}]}}),
    )
    .unwrap_err();
    assert_eq!(
        err,
        refused(
            "States.P[0].States.M[0]",
            Problem::OuterVariable("x".into())
        )
    );
    for fail in [
        json!({"Type": "Fail", "ErrorPath": "States.Format('E.{}', $.code)", "CausePath": "States.JsonToString($.detail)"}),
        json!({"Type": "Fail", "ErrorPath": "States.ArrayGetItem($.codes, 0)", "CausePath": "States.UUID()"}),
        json!({"Type": "Fail", "ErrorPath": "States.Base64Decode($.b)", "CausePath": "States.Hash($.x, 'MD5')"}),
        json!({"Type": "Fail", "CausePath": "States.Base64Encode($.x)"}),
    ] {
        let m = machine(json!({ "A": fail.clone() }));
        assert!(m.is_ok(), "{fail}: {m:?}");
    }
    assert_eq!(
        Machine::parse(&json!({"StartAt": "A"})).unwrap_err(),
        refused("States", Problem::Required)
    );
    assert_eq!(
        Machine::parse(&json!({"StartAt": "A", "States": {"A": {"Type": "Succeed"}}, "QueryLanguage": "JSONPath2"}))
            .unwrap_err(),
        refused("QueryLanguage", Problem::QueryLanguage("JSONPath2".into()))
    );
    assert_eq!(
        Machine::parse(&json!([])).unwrap_err(),
        refused("definition", Problem::NotObject)
    );
}

/// The processor configurations the cloud accepts, each accepted at load and again as
/// the child execution of an item reads its sub-machine (`parse_child`).
#[test]
fn map_processor_configs_the_cloud_accepts() {
    let table = [
        json!({"Mode": "INLINE"}),
        json!({"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}),
        json!({"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"}),
    ];
    for config in table {
        let processor = json!({"ProcessorConfig": config, "StartAt": "X",
            "States": {"X": {"Type": "Pass", "End": true}}});
        let m = machine(
            json!({"A": {"Type": "Map", "End": true, "MaxConcurrency": 3,
            "Label": "rows", "ItemProcessor": processor.clone()}}),
        );
        assert!(m.is_ok(), "{config}: {m:?}");
        let child = Machine::parse_child(&processor);
        assert!(child.is_ok(), "{config} as a child: {child:?}");
    }
}

#[test]
fn input_and_output_processing_follows_the_spec() {
    // The spec's example: InputPath selects the numbers, the result lands at
    // ResultPath in the raw input, and OutputPath picks what goes on.
    let m = machine(json!({
        "Add": {"Type": "Task", "Resource": "adder", "InputPath": "$.numbers",
                "ResultPath": "$.sum", "End": true}
    }))
    .unwrap();
    let state = m.state("Add").unwrap();
    let raw = json!({"title": "Numbers to add", "numbers": {"val1": 3, "val2": 4}});
    let ctx = json!({});
    assert_eq!(
        payload::effective_input(state, &raw, &ctx).unwrap(),
        json!({"val1": 3, "val2": 4})
    );
    assert_eq!(
        payload::state_output(state, &raw, json!(7), &ctx).unwrap(),
        json!({"title": "Numbers to add", "numbers": {"val1": 3, "val2": 4}, "sum": 7})
    );

    let m = machine(json!({
        "T": {"Type": "Task", "Resource": "p",
              "Parameters": {"flagged": true, "parts": {"first.$": "$.vals[0]", "last.$": "$.vals[-1:]"},
                             "who.$": "$$.Execution.Id", "greeting.$": "States.Format('hi {}', $.name)"},
              "ResultSelector": {"code.$": "$.status", "static": 1},
              "ResultPath": "$.result", "OutputPath": "$.result", "End": true}
    }))
    .unwrap();
    let state = m.state("T").unwrap();
    let raw = json!({"vals": [1, 2, 3], "name": "Ana"});
    let ctx = json!({"Execution": {"Id": "e-9"}});
    assert_eq!(
        payload::effective_input(state, &raw, &ctx).unwrap(),
        json!({"flagged": true, "parts": {"first": 1, "last": [3]}, "who": "e-9", "greeting": "hi Ana"})
    );
    assert_eq!(
        payload::state_output(state, &raw, json!({"status": 200, "body": "x"}), &ctx).unwrap(),
        json!({"code": 200, "static": 1})
    );
    // A path the input lacks: States.Runtime, as the cloud reports it, naming the field.
    let err = payload::effective_input(state, &json!({"name": "x"}), &ctx).unwrap_err();
    assert_eq!(err.error, "States.Runtime");
    assert!(
        err.cause.contains(
            "The JSONPath '$.vals[0]' specified for the field 'first.$' could not be found"
        ),
        "{}",
        err.cause
    );

    // null InputPath gives {}, null ResultPath keeps the input, null OutputPath gives {}.
    let m = machine(json!({
        "P": {"Type": "Pass", "InputPath": null, "ResultPath": null, "End": true}
    }))
    .unwrap();
    let state = m.state("P").unwrap();
    let raw = json!({"keep": 1});
    assert_eq!(
        payload::effective_input(state, &raw, &ctx).unwrap(),
        json!({})
    );
    assert_eq!(
        payload::state_output(state, &raw, json!(5), &ctx).unwrap(),
        raw
    );
    let m = machine(json!({"Q": {"Type": "Pass", "OutputPath": null, "End": true}})).unwrap();
    assert_eq!(
        payload::state_output(m.state("Q").unwrap(), &raw, json!(5), &ctx).unwrap(),
        json!({})
    );

    // A result that cannot be placed: States.ResultPathMatchFailure.
    let m = machine(json!({"P": {"Type": "Pass", "ResultPath": "$.a.b", "End": true}})).unwrap();
    let err =
        payload::state_output(m.state("P").unwrap(), &json!({"a": 1}), json!(1), &ctx).unwrap_err();
    assert_eq!(err.error, "States.ResultPathMatchFailure");
}

/// A Task's `Resource` forms: a plugin, or the cloud's Lambda integration with the
/// plugin as `FunctionName` (a name or a function ARN), each with or without
/// `.waitForTaskToken`; (resource, parameters, the plugins the tenant must have, or the
/// word the refusal contains).
#[test]
fn task_resources_as_the_cloud_writes_them() {
    let lambda = "arn:aws:states:::lambda:invoke";
    let callback = "arn:aws:states:::lambda:invoke.waitForTaskToken";
    let arn = "arn:aws:lambda:us-east-1:123456789012:function:approver";
    let no_function = DefinitionError::new(
        "States.T.Parameters",
        Problem::NoFunctionName(LAMBDA_INVOKE),
    );
    type Case<'a> = (&'a str, Value, Result<Vec<&'a str>, DefinitionError>);
    let table: [Case; 10] = [
        ("approver", Value::Null, Ok(vec!["approver"])),
        (
            "approver.waitForTaskToken",
            Value::Null,
            Ok(vec!["approver"]),
        ),
        (
            lambda,
            json!({"FunctionName": "approver"}),
            Ok(vec!["approver"]),
        ),
        (
            callback,
            json!({"FunctionName": arn, "Payload": {"t.$": "$$.Task.Token"}}),
            Ok(vec!["approver"]),
        ),
        (
            callback,
            json!({"FunctionName": format!("{arn}:live")}),
            Ok(vec!["approver"]),
        ),
        (
            lambda,
            json!({"FunctionName": "123456789012:function:approver:3"}),
            Ok(vec!["approver"]),
        ),
        // Named at run time: nothing to check at load.
        (callback, json!({"FunctionName.$": "$.fn"}), Ok(vec![])),
        (lambda, json!({"Payload": {}}), Err(no_function.clone())),
        (callback, Value::Null, Err(no_function)),
        (
            ".waitForTaskToken",
            Value::Null,
            Err(DefinitionError::new("States.T.Resource", Problem::NoPlugin)),
        ),
    ];
    for (resource, parameters, expected) in table {
        let mut task = json!({"Type": "Task", "Resource": resource, "End": true});
        if !parameters.is_null() {
            task["Parameters"] = parameters.clone();
        }
        match (machine(json!({ "T": task })), expected) {
            (Ok(m), Ok(plugins)) => assert_eq!(m.resources(), plugins, "{resource} {parameters}"),
            (Err(e), Err(want)) => assert_eq!(e, want, "{resource}"),
            (got, want) => panic!("{resource} {parameters}: {got:?}, expected {want:?}"),
        }
    }
}
