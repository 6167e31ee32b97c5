//! JSONata state machines: what loads and what is refused (with the reason), and runs
//! with scripted tasks, from the developer guide's "Transforming data with JSONata" and
//! "Passing data between states with variables".

use serde_json::{Value, json};

use super::definition::Machine;
use super::definition_error::{DefinitionError, Problem};
use super::executor_tests::{ok, run, throw};
use crate::store::testing::{Stores, each_store, store_test};
use crate::store::workflow::HistoryEntry;

fn jsonata(states: Value) -> Value {
    json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": states})
}

#[test]
fn jsonata_definitions_load() {
    let table = [
        jsonata(
            json!({"A": {"Type": "Pass", "Output": {"x": "{% $states.input.a %}"}, "Assign": {"v": 1}, "End": true}}),
        ),
        // One JSONata state in a JSONPath machine.
        json!({"StartAt": "A", "States": {
            "A": {"Type": "Pass", "QueryLanguage": "JSONata", "Output": "{% $states.input %}", "Next": "B"},
            "B": {"Type": "Pass", "InputPath": "$.x", "End": true}}}),
        jsonata(json!({"A": {"Type": "Task", "Resource": "api",
            "Arguments": {"id": "{% $states.input.id %}", "fixed": 1},
            "TimeoutSeconds": "{% $states.input.t %}", "HeartbeatSeconds": 5,
            "Output": "{% $states.result.v %}",
            "Retry": [{"ErrorEquals": ["States.QueryEvaluationError"], "MaxAttempts": 1}],
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "F",
                       "Output": "{% $states.errorOutput %}", "Assign": {"err": "{% $states.errorOutput.Error %}"}}],
            "End": true},
            "F": {"Type": "Fail", "Error": "{% $err %}", "Cause": "static"}})),
        jsonata(json!({"A": {"Type": "Choice", "Choices": [
                {"Condition": "{% $states.input.n > 1 %}", "Next": "W", "Output": {"big": true}, "Assign": {"seen": true}},
                {"Condition": true, "Next": "W"}],
            "Default": "W", "Assign": {"seen": false}},
            "W": {"Type": "Wait", "Seconds": "{% $states.input.s %}", "Next": "T"},
            "T": {"Type": "Wait", "Timestamp": "{% $states.input.at %}", "Next": "U"},
            "U": {"Type": "Wait", "Timestamp": "2026-01-01T00:00:00Z", "Next": "S"},
            "S": {"Type": "Succeed", "Output": "{% $seen %}"}})),
        jsonata(
            json!({"A": {"Type": "Map", "Items": "{% $states.input.list %}",
            "ItemSelector": {"i": "{% $states.context.Map.Item.Index %}"},
            "MaxConcurrency": 2,
            "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "Output": "{% $states.input.i %}", "End": true}}},
            "End": true}}),
        ),
        jsonata(json!({"A": {"Type": "Parallel", "Arguments": {"x": 1},
            "Branches": [{"StartAt": "B", "States": {"B": {"Type": "Pass", "End": true}}}],
            "End": true}})),
        jsonata(
            json!({"A": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
            "Arguments": {"FunctionName": "{% $states.input.fn %}", "Payload": {}}, "End": true}}),
        ),
    ];
    for def in table {
        if let Err(e) = Machine::parse(&def) {
            panic!("{def} was refused: {e}");
        }
    }
}

#[test]
fn jsonata_definitions_are_refused_as_the_cloud_refuses_them() {
    let pass = |extra: Value| {
        let mut state = json!({"Type": "Pass", "End": true});
        if let (Some(s), Some(e)) = (state.as_object_mut(), extra.as_object()) {
            s.extend(e.clone());
        }
        jsonata(json!({ "A": state }))
    };
    let field = |name: &str, instead: &'static str| Problem::JsonPathField(name.into(), instead);
    // (definition, where, problem)
    let table = [
        (
            json!({"QueryLanguage": "XPath", "StartAt": "A", "States": {"A": {"Type": "Succeed"}}}),
            "QueryLanguage",
            Problem::QueryLanguage("XPath".into()),
        ),
        (
            pass(json!({"QueryLanguage": "JSONPath"})),
            "States.A.QueryLanguage",
            Problem::JsonPathInJsonata,
        ),
        (
            pass(json!({"InputPath": "$.a"})),
            "States.A.InputPath",
            field(
                "InputPath",
                "`Arguments` and `Output` reading `$states.input`",
            ),
        ),
        (
            pass(json!({"OutputPath": "$.a"})),
            "States.A.OutputPath",
            field("OutputPath", "`Output`"),
        ),
        (
            pass(json!({"ResultPath": "$.a"})),
            "States.A.ResultPath",
            field("ResultPath", "`Output` and `Assign`"),
        ),
        (
            pass(json!({"Parameters": {}})),
            "States.A.Parameters",
            field("Parameters", "`Arguments`"),
        ),
        (
            pass(json!({"Result": 1})),
            "States.A.Result",
            field("Result", "`Output`"),
        ),
        (
            jsonata(
                json!({"A": {"Type": "Task", "Resource": "api", "ResultSelector": {}, "End": true}}),
            ),
            "States.A.ResultSelector",
            field("ResultSelector", "`Output` reading `$states.result`"),
        ),
        (
            jsonata(json!({"A": {"Type": "Wait", "SecondsPath": "$.s", "End": true}})),
            "States.A.SecondsPath",
            field("SecondsPath", "`Seconds` with an expression"),
        ),
        (
            jsonata(json!({"A": {"Type": "Fail", "ErrorPath": "$.e"}})),
            "States.A.ErrorPath",
            field("ErrorPath", "`Error` with an expression"),
        ),
        (
            jsonata(
                json!({"A": {"Type": "Map", "ItemsPath": "$.l", "ItemProcessor":
                {"StartAt": "P", "States": {"P": {"Type": "Succeed"}}}, "End": true}}),
            ),
            "States.A.ItemsPath",
            field("ItemsPath", "`Items`"),
        ),
        (
            jsonata(json!({"A": {"Type": "Task", "Resource": "api", "End": true,
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.e", "Next": "A"}]}})),
            "States.A.Catch[0].ResultPath",
            field("ResultPath", "`Output` and `Assign`"),
        ),
        (
            pass(json!({"Output": "{% 1 + %}"})),
            "States.A.Output",
            Problem::Jsonata("1 +".into(), String::new()),
        ),
        (
            pass(json!({"Assign": {"x": {"deep": ["{% $states.input.[ %}"]}}})),
            "States.A.Assign.x.deep[0]",
            Problem::Jsonata("$states.input.[".into(), String::new()),
        ),
        (
            pass(json!({"Assign": {"bad-name": 1}})),
            "States.A.Assign.bad-name",
            Problem::VariableName(crate::workflow::path::VariableNameError::Invalid(
                "bad-name".into(),
            )),
        ),
        (
            pass(json!({"Arguments": {}})),
            "States.A",
            Problem::UnknownField("Arguments".into()),
        ),
        (
            jsonata(
                json!({"A": {"Type": "Choice", "Choices": [{"Variable": "$.a", "BooleanEquals": true, "Next": "A"}]}}),
            ),
            "States.A.Choices[0]",
            Problem::NoCondition,
        ),
        (
            jsonata(
                json!({"A": {"Type": "Choice", "Choices": [{"Condition": "yes", "Next": "A"}]}}),
            ),
            "States.A.Choices[0].Condition",
            Problem::NotValueOrExpression("a boolean"),
        ),
        (
            jsonata(
                json!({"A": {"Type": "Task", "Resource": "api", "TimeoutSeconds": "ten", "End": true}}),
            ),
            "States.A.TimeoutSeconds",
            Problem::NotValueOrExpression("a positive integer"),
        ),
        (
            jsonata(
                json!({"A": {"Type": "Map", "Items": {"a": 1}, "ItemProcessor":
                {"StartAt": "P", "States": {"P": {"Type": "Succeed"}}}, "End": true}}),
            ),
            "States.A.Items",
            Problem::NotValueOrExpression("an array"),
        ),
        // A branch's states inherit the machine's language.
        (
            jsonata(json!({"A": {"Type": "Parallel", "End": true, "Branches": [
                {"StartAt": "B", "States": {"B": {"Type": "Pass", "InputPath": "$", "End": true}}}]}})),
            "States.A.Branches[0].States.B.InputPath",
            field(
                "InputPath",
                "`Arguments` and `Output` reading `$states.input`",
            ),
        ),
    ];
    for (def, at, problem) in table {
        match Machine::parse(&def) {
            Ok(_) => panic!("{def} loaded"),
            Err(DefinitionError {
                at: got_at,
                problem: got,
            }) => {
                assert_eq!(got_at, at, "{def}");
                match (&problem, &got) {
                    // The parser's own message follows the expression.
                    (Problem::Jsonata(expr, _), Problem::Jsonata(got_expr, why)) => {
                        assert_eq!(expr, got_expr);
                        assert!(!why.is_empty());
                    }
                    _ => assert_eq!(got, problem, "{def}"),
                }
            }
        }
    }
}

#[test]
fn a_refused_expression_names_its_state_and_text() {
    let def = jsonata(
        json!({"A": {"Type": "Pass", "Output": {"x": "{% $states.input. %}"}, "End": true}}),
    );
    let text = Machine::parse(&def).unwrap_err().to_string();
    assert!(
        text.starts_with("States.A.Output.x: invalid JSONata expression \"$states.input.\""),
        "{text}"
    );
}

store_test!(jsonata_machine_passes_data_through_arguments_output_and_variables);
async fn jsonata_machine_passes_data_through_arguments_output_and_variables(stores: Stores) {
    each_store(stores, |s| async move {
        let def = jsonata(json!({
            "A": {"Type": "Pass", "Assign": {"customerName": "{% $states.input.name %}", "limit": 2},
                  "Output": {"title": "{% $states.input.title %}"}, "Next": "Call"},
            "Call": {"Type": "Task", "Resource": "api",
                "Arguments": {"static": "Hello", "title": "{% $states.input.title %}",
                              "name": "{% $customerName %}", "not-evaluated": "$customerName"},
                "TimeoutSeconds": "{% $limit * 30 %}",
                "Output": {"total": "{% $sum($states.result.items) %}", "was": "{% $states.input %}"},
                "Assign": {"count": "{% $count($states.result.items) %}"},
                "Next": "Pick"},
            "Pick": {"Type": "Choice", "Choices": [
                {"Condition": "{% $count > 5 %}", "Next": "Many"},
                {"Condition": "{% $states.input.total = 6 %}", "Next": "Done",
                 "Output": "{% $merge([$states.input, {'rule': 2}]) %}"}],
                "Default": "Many"},
            "Many": {"Type": "Fail", "Error": "{% 'TooMany' %}", "Cause": "{% 'count ' & $string($count) %}"},
            "Done": {"Type": "Succeed", "Output": "{% $merge([$states.input, {'count': $count, 'exec': $states.context.Execution.Name != ''}]) %}"}
        }));
        let r = run(
            s,
            def,
            json!({"name": "María", "title": "Doctor"}),
            &[("Call", vec![ok(json!({"items": [1, 2, 3]}))])],
        )
        .await;
        assert_eq!(r.row.status, "SUCCEEDED", "{:?}", r.error());
        let calls = r.tasks.calls();
        assert_eq!(
            calls[0].input,
            json!({"static": "Hello", "title": "Doctor", "name": "María", "not-evaluated": "$customerName"})
        );
        assert_eq!(
            r.output(),
            json!({"total": 6, "was": {"title": "Doctor"}, "rule": 2, "count": 3, "exec": true})
        );
        assert_eq!(r.path(), ["A", "Call", "Pick", "Done"]);
    })
    .await;
}

store_test!(jsonata_catch_reads_the_error_output);
async fn jsonata_catch_reads_the_error_output(stores: Stores) {
    each_store(stores, |s| async move {
        let def = jsonata(json!({
            "A": {"Type": "Task", "Resource": "api", "Arguments": "{% $states.input %}",
                "Catch": [{"ErrorEquals": ["Busy"], "Next": "Handle",
                    "Output": {"caught": "{% $states.errorOutput.Error %}", "input": "{% $states.input.k %}"},
                    "Assign": {"why": "{% $states.errorOutput.Cause %}"}}],
                "End": true},
            "Handle": {"Type": "Pass", "Output": "{% $merge([$states.input, {'why': $why}]) %}", "End": true}
        }));
        let r = run(s, def, json!({"k": "v"}), &[("A", vec![throw("Busy")])]).await;
        assert_eq!(r.row.status, "SUCCEEDED", "{:?}", r.error());
        assert_eq!(r.output(), json!({"caught": "Busy", "input": "v", "why": "scripted"}));
    })
    .await;
}

store_test!(jsonata_evaluation_errors_fail_or_are_caught);
async fn jsonata_evaluation_errors_fail_or_are_caught(stores: Stores) {
    each_store(stores, |s| async move {
        let def = jsonata(json!({
            "A": {"Type": "Pass", "Output": "{% $states.input.missing %}", "End": true}
        }));
        let r = run(s.clone(), def, json!({}), &[]).await;
        assert_eq!(r.row.status, "FAILED");
        let (error, cause) = r.error();
        assert_eq!(error, "States.QueryEvaluationError");
        assert!(
            cause.contains("The JSONata expression '$states.input.missing' specified for the field 'Output' returned nothing (undefined)"),
            "{cause}"
        );
        // A task's Arguments that fail are caught like any error of the state.
        let def = jsonata(json!({
            "A": {"Type": "Task", "Resource": "api", "Arguments": {"x": "{% $error('bad input') %}"},
                "Catch": [{"ErrorEquals": ["States.QueryEvaluationError"], "Next": "B"}], "End": true},
            "B": {"Type": "Pass", "Output": "{% $states.input.Error %}", "End": true}
        }));
        let r = run(s.clone(), def, json!({}), &[]).await;
        assert_eq!(r.row.status, "SUCCEEDED", "{:?}", r.error());
        assert_eq!(r.output(), json!("States.QueryEvaluationError"));
        assert!(r.tasks.calls().is_empty(), "the plugin was not called");
        // A Condition that is not a boolean.
        let def = jsonata(json!({
            "A": {"Type": "Choice", "Choices": [{"Condition": "{% 'yes' %}", "Next": "B"}]},
            "B": {"Type": "Succeed"}
        }));
        let r = run(s, def, json!({}), &[]).await;
        assert_eq!(r.error().0, "States.QueryEvaluationError");
        assert!(r.error().1.contains("expected a boolean"), "{}", r.error().1);
    })
    .await;
}

store_test!(jsonata_map_and_parallel_run_their_children_in_jsonata);
async fn jsonata_map_and_parallel_run_their_children_in_jsonata(stores: Stores) {
    each_store(stores, |s| async move {
        let def = jsonata(json!({
            "A": {"Type": "Map", "Items": "{% $states.input.list %}",
                "ItemSelector": {"i": "{% $states.context.Map.Item.Index %}", "v": "{% $states.context.Map.Item.Value %}", "k": "{% $k %}"},
                "ItemProcessor": {"StartAt": "P", "States": {
                    "P": {"Type": "Pass", "Output": "{% $states.input.v * 10 + $states.input.i + $k %}", "End": true}}},
                "Output": "{% $states.result %}", "Next": "Par"},
            "Par": {"Type": "Parallel", "Arguments": {"sum": "{% $sum($states.input) %}"},
                "Branches": [
                    {"StartAt": "B1", "States": {"B1": {"Type": "Pass", "Output": "{% $states.input.sum %}", "End": true}}},
                    {"StartAt": "B2", "States": {"B2": {"Type": "Pass", "Output": "{% $states.input.sum * 2 %}", "End": true}}}],
                "End": true}
        }));
        let def = {
            let mut d = def;
            d["States"]["A"]["Assign"] = json!({"unused": 0});
            d["StartAt"] = json!("K");
            d["States"]["K"] = json!({"Type": "Pass", "Assign": {"k": 100}, "Next": "A"});
            d
        };
        let r = run(s, def, json!({"list": [1, 2, 3]}), &[]).await;
        assert_eq!(r.row.status, "SUCCEEDED", "{:?}", r.error());
        // Items 110, 121, 132: 363; the branches give it and twice it.
        assert_eq!(r.output(), json!([363, 726]));
    })
    .await;
}

store_test!(a_jsonata_state_in_a_jsonpath_machine);
async fn a_jsonata_state_in_a_jsonpath_machine(stores: Stores) {
    each_store(stores, |s| async move {
        let def = json!({"StartAt": "A", "States": {
            "A": {"Type": "Pass", "Parameters": {"n.$": "$.n"}, "Assign": {"base": 10}, "Next": "B"},
            "B": {"Type": "Pass", "QueryLanguage": "JSONata",
                  "Output": {"m": "{% $states.input.n + $base %}"}, "Next": "W"},
            "W": {"Type": "Wait", "QueryLanguage": "JSONata", "Seconds": "{% $states.input.m - 11 %}", "Next": "C"},
            "C": {"Type": "Pass", "ResultPath": "$.copy", "End": true}
        }});
        let r = run(s, def, json!({"n": 1}), &[]).await;
        assert_eq!(r.row.status, "SUCCEEDED", "{:?}", r.error());
        assert_eq!(r.output(), json!({"m": 11, "copy": {"m": 11}}));
    })
    .await;
}

/// A JSONata Map whose item processor is one Task `W`, with `fields` added.
fn jsonata_map(fields: Value) -> Value {
    let mut state = json!({"Type": "Map", "Items": "{% $states.input.items %}", "End": true,
        "ItemProcessor": {"StartAt": "W", "States": {"W": {"Type": "Task", "Resource": "p", "End": true}}}});
    for (k, v) in fields.as_object().cloned().unwrap_or_default() {
        state[k] = v;
    }
    jsonata(json!({ "A": state }))
}

#[test]
fn a_jsonata_maps_limits_take_expressions() {
    let limits = json!({"MaxConcurrency": "{% $states.input.mc %}",
        "ToleratedFailureCount": "{% $states.input.tc %}",
        "ToleratedFailurePercentage": "{% $states.input.tp %}"});
    Machine::parse(&jsonata_map(limits)).unwrap();
    let literal = json!({"MaxConcurrency": 2, "ToleratedFailureCount": 0, "ToleratedFailurePercentage": 12.5});
    Machine::parse(&jsonata_map(literal)).unwrap();
    let field = |name: &str, instead: &'static str| Problem::JsonPathField(name.into(), instead);
    let table = [
        (
            json!({"MaxConcurrency": "ten"}),
            "MaxConcurrency",
            Problem::NotValueOrExpression("a non-negative integer"),
        ),
        (
            json!({"MaxConcurrency": -1}),
            "MaxConcurrency",
            Problem::NotValueOrExpression("a non-negative integer"),
        ),
        (
            json!({"ToleratedFailureCount": 1.5}),
            "ToleratedFailureCount",
            Problem::NotValueOrExpression("a non-negative integer"),
        ),
        (
            json!({"ToleratedFailurePercentage": 101}),
            "ToleratedFailurePercentage",
            Problem::NotValueOrExpression("a number between 0 and 100"),
        ),
        (
            json!({"MaxConcurrencyPath": "$.m"}),
            "MaxConcurrencyPath",
            field("MaxConcurrencyPath", "`MaxConcurrency`"),
        ),
        (
            json!({"ToleratedFailureCountPath": "$.m"}),
            "ToleratedFailureCountPath",
            field("ToleratedFailureCountPath", "`ToleratedFailureCount`"),
        ),
    ];
    for (fields, at, problem) in table {
        let err = Machine::parse(&jsonata_map(fields.clone())).expect_err(&fields.to_string());
        assert_eq!(
            (err.at, err.problem),
            (format!("States.A.{at}"), problem),
            "{fields}"
        );
    }
}

store_test!(a_jsonata_maps_limits_are_read_when_it_starts);
/// `MaxConcurrency`, `ToleratedFailureCount` and `ToleratedFailurePercentage` written
/// as expressions are read from the state's input when it starts; a value the field
/// cannot take is `States.QueryEvaluationError`, as in the cloud.
async fn a_jsonata_maps_limits_are_read_when_it_starts(stores: Stores) {
    each_store(stores, |s| async move {
        let def = jsonata_map(json!({"MaxConcurrency": "{% $states.input.mc %}",
            "ToleratedFailureCount": "{% $states.input.tc %}",
            "ToleratedFailurePercentage": "{% $states.input.tp %}"}));
        let one_fails = || vec![("W", vec![ok(json!(1)), throw("Bad"), ok(json!(3))])];
        let items = json!([1, 2, 3]);
        // (mc, tc, tp, status, error, cause fragment)
        let table = [
            (json!(1), json!(1), json!(100), "SUCCEEDED", "", ""),
            (json!(1.0), json!(1), json!(50), "SUCCEEDED", "", ""),
            (json!(1), json!(0), json!(0), "FAILED", "States.ExceedToleratedFailureThreshold", ""),
            (json!(1), json!(5), json!(10), "FAILED", "States.ExceedToleratedFailureThreshold", ""),
            (json!("1"), json!(1), json!(0), "FAILED", "States.QueryEvaluationError",
                "the field 'MaxConcurrency' returned an unexpected value: expected a non-negative integer"),
            (json!(-2), json!(1), json!(0), "FAILED", "States.QueryEvaluationError", "'MaxConcurrency'"),
            (json!(1), json!(0.5), json!(0), "FAILED", "States.QueryEvaluationError", "'ToleratedFailureCount'"),
            (json!(1), json!(1), json!(150), "FAILED", "States.QueryEvaluationError",
                "'ToleratedFailurePercentage' returned an unexpected value: expected a number between 0 and 100"),
            (json!(1), json!(1), json!(null), "FAILED", "States.QueryEvaluationError", "'ToleratedFailurePercentage'"),
        ];
        for (mc, tc, tp, status, error, cause) in table {
            let input = json!({"items": items, "mc": mc, "tc": tc, "tp": tp});
            let script = one_fails();
            let r = run(s.clone(), def.clone(), input.clone(), &script).await;
            assert_eq!(r.row.status, status, "{input}: {:?}", r.error());
            assert_eq!(r.error().0, error, "{input}");
            assert!(r.error().1.contains(cause), "{input}: {:?}", r.error());
            if error == "States.QueryEvaluationError" {
                assert!(r.tasks.calls().is_empty(), "{input}: no item started");
            }
        }
        // The percentage tolerates one failure of three (33%) at 34, not at 33.
        for (tp, status) in [(34, "SUCCEEDED"), (33, "FAILED")] {
            let input = json!({"items": items, "mc": 1, "tc": 5, "tp": tp});
            let r = run(s.clone(), def.clone(), input, &one_fails()).await;
            assert_eq!(r.row.status, status, "{tp}: {:?}", r.error());
        }
    })
    .await;
}

/// Scripted task results by state name.
type Script = Vec<(&'static str, Vec<crate::workflow::scripted::Attempt>)>;

store_test!(a_failed_evaluation_is_recorded_as_evaluation_failed);
/// The cloud's history has an `EvaluationFailed` event (error, cause, location, state)
/// when a JSONata evaluation fails, before the failure, retry or catch that follows;
/// none for errors of other kinds, nor in a parent for its child's.
async fn a_failed_evaluation_is_recorded_as_evaluation_failed(stores: Stores) {
    each_store(stores, |s| async move {
        let kinds = |r: &super::executor_tests::Run| -> Vec<String> {
            r.history.iter().map(|e| e.event.kind.clone()).collect()
        };
        let evaluation = |r: &super::executor_tests::Run| -> Vec<Value> {
            r.history
                .iter()
                .filter(|e| e.event.kind == "EvaluationFailed")
                .map(|e| e.event.detail.clone())
                .collect()
        };
        // (definition, script, the events' locations, the status)
        let failing_output = jsonata(json!({
            "A": {"Type": "Pass", "Output": {"x": "{% $states.input.missing %}"}, "End": true}}));
        let caught_arguments = jsonata(json!({
            "A": {"Type": "Task", "Resource": "api", "Arguments": {"id": "{% $error('no id') %}"},
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "B"}], "End": true},
            "B": {"Type": "Succeed"}}));
        let retried_condition = jsonata(json!({
            "A": {"Type": "Task", "Resource": "api", "Output": "{% $states.result.nothing %}",
                "Retry": [{"ErrorEquals": ["States.QueryEvaluationError"], "MaxAttempts": 1}], "End": true}}));
        let failing_catcher = jsonata(json!({
            "A": {"Type": "Task", "Resource": "api",
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "B", "Output": "{% $states.errorOutput.none %}"}], "End": true},
            "B": {"Type": "Succeed"}}));
        let wait_seconds = jsonata(json!({
            "A": {"Type": "Wait", "Seconds": "{% 'soon' %}", "End": true}}));
        let plain_failure = jsonata(json!({
            "A": {"Type": "Task", "Resource": "api", "End": true}}));
        let child_fails = jsonata(json!({
            "A": {"Type": "Map", "Items": [1], "End": true, "ItemProcessor": {"StartAt": "P", "States": {
                "P": {"Type": "Pass", "Output": "{% $states.input.none %}", "End": true}}}}}));
        let table: Vec<(Value, Script, Vec<&str>, &str)> = vec![
            (failing_output, vec![], vec!["Output/x"], "FAILED"),
            (caught_arguments, vec![], vec!["Arguments/id"], "SUCCEEDED"),
            (retried_condition, vec![("A", vec![ok(json!({})), ok(json!({}))])], vec!["Output", "Output"], "FAILED"),
            (failing_catcher, vec![("A", vec![throw("Bad")])], vec!["Output"], "FAILED"),
            (wait_seconds, vec![], vec!["Seconds"], "FAILED"),
            (plain_failure, vec![("A", vec![throw("Bad")])], vec![], "FAILED"),
            (child_fails, vec![], vec![], "FAILED"),
        ];
        for (def, script, locations, status) in table {
            let r = run(s.clone(), def.clone(), json!({}), &script).await;
            assert_eq!(r.row.status, status, "{def}: {:?}", r.error());
            let events = evaluation(&r);
            let got: Vec<&str> = events.iter().map(|e| e["location"].as_str().unwrap_or_default()).collect();
            assert_eq!(got, locations, "{def}: {:?}", kinds(&r));
            for e in &events {
                assert_eq!(e["error"], "States.QueryEvaluationError", "{e}");
                assert_eq!(e["state"], "A", "{e}");
                assert!(e["cause"].as_str().is_some_and(|c| c.contains("An error occurred while executing the state 'A'")), "{e}");
            }
            // Each before what follows it: a retry, a catch, or the execution's end.
            let all = kinds(&r);
            for (i, k) in all.iter().enumerate() {
                if k == "EvaluationFailed" {
                    let next = all.get(i + 1).map(String::as_str);
                    assert!(
                        matches!(next, Some("StateRetryScheduled" | "ErrorCaught" | "ExecutionFailed" | "EvaluationFailed")),
                        "{def}: {all:?}"
                    );
                }
            }
        }
    })
    .await;
}

// The causes of errors raised in a state, word for word as the cloud's (each string
// below is one the cloud gave for the same definition and input): the state's name, the
// history event it was entered at, the field as `Output/v` (an object key after `/`),
// and the closing full stop of a JSONata cause.
store_test!(state_errors_are_worded_as_the_clouds);
async fn state_errors_are_worded_as_the_clouds(stores: Stores) {
    each_store(stores, |s| async move {
        let table = [
            (
                json!({"QueryLanguage": "JSONata", "StartAt": "Transform", "States": {
                    "Transform": {"Type": "Pass", "Output": {"v": "{% $states.input.missing %}"}, "End": true}}}),
                json!({}),
                "States.QueryEvaluationError",
                "An error occurred while executing the state 'Transform' (entered at the event id #2). The JSONata expression '$states.input.missing' specified for the field 'Output/v' returned nothing (undefined).",
            ),
            (
                json!({"StartAt": "Check Address", "States": {"Check Address": {"Type": "Pass",
                    "Parameters": {"address.$": "$.application.address"}, "End": true}}}),
                json!({"flagged": false}),
                "States.Runtime",
                "An error occurred while executing the state 'Check Address' (entered at the event id #2). The JSONPath '$.application.address' specified for the field 'address.$' could not be found in the input '{\"flagged\":false}'",
            ),
            // A later state: ExecutionStarted, StateEntered, StateExited, StateEntered.
            (
                jsonata(json!({"A": {"Type": "Pass", "Next": "B"},
                    "B": {"Type": "Pass", "Output": {"a": [1, {"b": "{% $states.input.none %}"}]}, "End": true}})),
                json!({}),
                "States.QueryEvaluationError",
                "An error occurred while executing the state 'B' (entered at the event id #4). The JSONata expression '$states.input.none' specified for the field 'Output/a[1]/b' returned nothing (undefined).",
            ),
            (
                jsonata(json!({"A": {"Type": "Choice", "Choices": [
                    {"Condition": "{% true %}", "Next": "B", "Output": "{% 1 %}"}],
                    "Default": "B"}, "B": {"Type": "Choice", "Choices": [
                    {"Condition": "{% false %}", "Next": "C"}, {"Condition": "{% 'yes' %}", "Next": "C"}]},
                    "C": {"Type": "Succeed"}})),
                json!({}),
                "States.QueryEvaluationError",
                "An error occurred while executing the state 'B' (entered at the event id #4). The JSONata expression specified for the field 'Choices[1]/Condition' returned an unexpected value: expected a boolean, got \"yes\".",
            ),
            // A Fail state's own error and cause are its own, even when named as the
            // interpreter's.
            (
                json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "States.Runtime", "Cause": "mine"}}}),
                json!({}),
                "States.Runtime",
                "mine",
            ),
            // ...while a path of its that fails is raised in the state.
            (
                json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "ErrorPath": "$.e", "Cause": "x"}}}),
                json!({}),
                "States.Runtime",
                "An error occurred while executing the state 'F' (entered at the event id #2). The JSONPath '$.e' specified for the field 'ErrorPath' could not be found in the input '{}'",
            ),
        ];
        for (def, input, error, cause) in table {
            let r = run(s.clone(), def.clone(), input, &[]).await;
            assert_eq!(r.row.status, "FAILED", "{def}");
            assert_eq!(r.error(), (error.to_string(), cause.to_string()), "{def}");
            let history = serde_json::to_string(&r.history.iter().map(|e| &e.event.detail).collect::<Vec<_>>()).unwrap();
            assert!(!history.contains("\\u0001"), "the mark left in the history: {history}");
        }

        // A caught error's output and a retried one's history carry the number, not
        // the mark: in the next state's input, a variable and the final output.
        let def = jsonata(json!({
            "A": {"Type": "Pass", "Next": "T"},
            "T": {"Type": "Task", "Resource": "api", "Arguments": {"x": "{% $states.input.gone %}"},
                "Retry": [{"ErrorEquals": ["States.QueryEvaluationError"], "MaxAttempts": 1, "IntervalSeconds": 1}],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Done",
                    "Output": "{% $states.errorOutput %}", "Assign": {"why": "{% $states.errorOutput.Cause %}"}}],
                "End": true},
            "Done": {"Type": "Pass", "Output": {"cause": "{% $states.input.Cause %}", "why": "{% $why %}"}, "End": true}
        }));
        let r = run(s.clone(), def, json!({}), &[]).await;
        assert_eq!(r.row.status, "SUCCEEDED", "{:?}", r.error());
        let cause = "An error occurred while executing the state 'T' (entered at the event id #4). The JSONata expression '$states.input.gone' specified for the field 'Arguments/x' returned nothing (undefined).";
        assert_eq!(r.output(), json!({"cause": cause, "why": cause}));
        let retried: Vec<&HistoryEntry> = r.history.iter().filter(|e| e.event.kind == "StateRetryScheduled").collect();
        assert_eq!(retried.len(), 1);
        assert_eq!(retried[0].event.detail["cause"], json!(cause));
        let failed: Vec<&HistoryEntry> = r.history.iter().filter(|e| e.event.kind == "EvaluationFailed").collect();
        assert_eq!(failed.len(), 2, "one per attempt");
        assert!(failed.iter().all(|e| e.event.detail["cause"] == json!(cause) && e.event.detail["location"] == json!("Arguments/x")));
        let history = serde_json::to_string(&r.history.iter().map(|e| &e.event.detail).collect::<Vec<_>>()).unwrap();
        assert!(!history.contains("\\u0001"), "the mark left in the history: {history}");
    })
    .await;
}
