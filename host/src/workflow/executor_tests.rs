//! The executor on the store (in-memory SQLite, and PostgreSQL when configured), with
//! scripted task results: each state type, Retry and Catch, each predefined error, and
//! resuming an interrupted task.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::execution_name::NameError;
use super::executor::{Executor, ExecutorOptions, StartError};
use super::scripted::{Attempt, ScriptedTasks};
use crate::store::Store;
use crate::store::testing::{Stores, each_store, store_test, tenant};
use crate::store::workflow::{ExecutionRow, HistoryEntry};

pub(super) struct Run {
    pub(super) row: ExecutionRow,
    pub(super) history: Vec<HistoryEntry>,
    pub(super) tasks: Arc<ScriptedTasks>,
}

impl Run {
    pub(super) fn output(&self) -> Value {
        serde_json::from_str(self.row.output.as_deref().unwrap_or("null")).unwrap()
    }
    /// The states entered, in order.
    pub(super) fn path(&self) -> Vec<String> {
        self.history
            .iter()
            .filter(|e| e.event.kind == "StateEntered")
            .filter_map(|e| e.event.state.clone())
            .collect()
    }
    fn count(&self, kind: &str) -> usize {
        self.history.iter().filter(|e| e.event.kind == kind).count()
    }
    pub(super) fn error(&self) -> (String, String) {
        (
            self.row.error.clone().unwrap_or_default(),
            self.row.cause.clone().unwrap_or_default(),
        )
    }
}

async fn run_with(
    store: Store,
    definition: Value,
    input: Value,
    script: &[(&str, Vec<Attempt>)],
    skip_waits: bool,
) -> Run {
    let tasks = Arc::new(ScriptedTasks::new());
    for (state, attempts) in script {
        tasks.script(state, attempts.clone());
    }
    let t = tenant("wf");
    let exec = executor(&store, tasks.clone(), &t, skip_waits);
    let started = exec
        .start(&t, "flow", &definition, input, None)
        .await
        .unwrap();
    let row = exec
        .run_to_end(&t, &started.id, Duration::from_secs(20))
        .await
        .unwrap();
    let history = store.wf_history(&row.id).await.unwrap();
    Run {
        row,
        history,
        tasks,
    }
}

/// An executor that works on tenant `t` only: the tests share one PostgreSQL database.
fn executor(store: &Store, tasks: Arc<ScriptedTasks>, t: &str, skip_waits: bool) -> Arc<Executor> {
    let options = ExecutorOptions {
        concurrency: 8,
        skip_waits,
        tenant: Some(t.to_string()),
    };
    Executor::new(store.clone(), tasks, options)
}

pub(super) async fn run(
    store: Store,
    definition: Value,
    input: Value,
    script: &[(&str, Vec<Attempt>)],
) -> Run {
    run_with(store, definition, input, script, true).await
}

pub(super) fn ok(v: Value) -> Attempt {
    Attempt::ok(v)
}
pub(super) fn throw(e: &str) -> Attempt {
    Attempt::throw(e, "scripted")
}

store_test!(pass_choice_wait_succeed);
async fn pass_choice_wait_succeed(stores: Stores) {
    each_store(stores, |s| async move {
        let def = json!({
            "StartAt": "Init",
            "States": {
                "Init": {"Type": "Pass", "Result": {"n": 3}, "ResultPath": "$.data", "Next": "Pick"},
                "Pick": {"Type": "Choice", "Choices": [
                    {"Variable": "$.data.n", "NumericGreaterThan": 5, "Next": "Big"},
                    {"And": [{"Variable": "$.data.n", "NumericGreaterThan": 1},
                             {"Variable": "$.kind", "StringEquals": "a"}], "Next": "Pause"}
                ], "Default": "Big"},
                "Big": {"Type": "Fail", "Error": "TooBig"},
                "Pause": {"Type": "Wait", "Seconds": 3600, "Next": "Done"},
                "Done": {"Type": "Succeed", "OutputPath": "$.data"}
            }
        });
        let r = run(s, def, json!({"kind": "a"}), &[]).await;
        assert_eq!(r.row.status, "SUCCEEDED", "{:?}", r.error());
        assert_eq!(r.output(), json!({"n": 3}));
        assert_eq!(r.path(), ["Init", "Pick", "Pause", "Done"]);
        assert_eq!(r.count("WaitStateEntered"), 1);
    })
    .await;
}

store_test!(task_retries_with_backoff_then_succeeds);
async fn task_retries_with_backoff_then_succeeds(stores: Stores) {
    each_store(stores, |s| async move {
        let def = json!({
            "StartAt": "Call",
            "States": {"Call": {"Type": "Task", "Resource": "api",
                "Parameters": {"id.$": "$.id"},
                "Retry": [{"ErrorEquals": ["Busy"], "MaxAttempts": 3, "IntervalSeconds": 1}],
                "ResultSelector": {"value.$": "$.v"}, "ResultPath": "$.result", "End": true}}
        });
        let script = [(
            "Call",
            vec![throw("Busy"), throw("Busy"), ok(json!({"v": 42}))],
        )];
        let r = run(s, def, json!({"id": 7}), &script).await;
        assert_eq!(r.row.status, "SUCCEEDED", "{:?}", r.error());
        assert_eq!(r.output(), json!({"id": 7, "result": {"value": 42}}));
        assert_eq!(r.count("StateRetryScheduled"), 2);
        assert_eq!(r.count("TaskFailed"), 2);
        assert_eq!(r.tasks.calls().len(), 3);
        assert_eq!(r.tasks.calls()[0].input, json!({"id": 7}));
    })
    .await;
}

store_test!(exhausted_retries_are_caught_with_the_error_at_result_path);
async fn exhausted_retries_are_caught_with_the_error_at_result_path(stores: Stores) {
    each_store(stores, |s| async move {
        let def = json!({
            "StartAt": "Call",
            "States": {
                "Call": {"Type": "Task", "Resource": "api",
                    "Retry": [{"ErrorEquals": ["Other"], "MaxAttempts": 5},
                              {"ErrorEquals": ["States.TaskFailed"], "MaxAttempts": 1}],
                    "Catch": [{"ErrorEquals": ["NotThis"], "Next": "Wrong"},
                              {"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "Recover"}],
                    "End": true},
                "Wrong": {"Type": "Fail"},
                "Recover": {"Type": "Pass", "End": true}
            }
        });
        let script = [("Call", vec![throw("Upstream.500"), throw("Upstream.500")])];
        let r = run(s, def, json!({"a": 1}), &script).await;
        assert_eq!(r.row.status, "SUCCEEDED");
        assert_eq!(
            r.output(),
            json!({"a": 1, "failure": {"Error": "Upstream.500", "Cause": "scripted"}})
        );
        assert_eq!(r.path(), ["Call", "Recover"]);
        assert_eq!(r.count("StateRetryScheduled"), 1);
        assert_eq!(r.count("ErrorCaught"), 1);
    })
    .await;
}

store_test!(every_context_field_the_developer_guide_lists_is_readable);
/// The developer guide's context object: `Execution` (`Id`, `Input`, `Name`, `RoleArn`,
/// `StartTime`, `RedriveCount`, `RedriveTime`), `State` (`EnteredTime`, `Name`,
/// `RetryCount`), `StateMachine` (`Id`, `Name`), `Task` (`Token`); a path to any of them
/// selects something, in every state type that reads paths.
async fn every_context_field_the_developer_guide_lists_is_readable(stores: Stores) {
    each_store(stores, |s| async move {
        let fields = [
            "Execution.Id",
            "Execution.Input",
            "Execution.Name",
            "Execution.RoleArn",
            "Execution.StartTime",
            "Execution.RedriveCount",
            "Execution.RedriveTime",
            "State.EnteredTime",
            "State.Name",
            "State.RetryCount",
            "StateMachine.Id",
            "StateMachine.Name",
            "Task.Token",
        ];
        let params: serde_json::Map<String, Value> = fields
            .iter()
            .map(|f| {
                (
                    format!("{}.$", f.replace('.', "_")),
                    json!(format!("$$.{f}")),
                )
            })
            .collect();
        let def = json!({"StartAt": "Read", "States": {
            "Read": {"Type": "Pass", "Parameters": params.clone(), "Next": "Each"},
            "Each": {"Type": "Map", "ItemsPath": "$.items",
                "ItemSelector": {"i.$": "$$.Map.Item.Index", "v.$": "$$.Map.Item.Value"},
                "ItemProcessor": {"StartAt": "Inner", "States": {"Inner": {"Type": "Pass",
                    "Parameters": params, "ResultPath": "$.ctx", "End": true}}},
                "ResultPath": "$.mapped", "End": true}
        }});
        let mut first = run(s.clone(), def.clone(), json!({"items": ["a"]}), &[]).await;
        // The first state's output is its Parameters, without `items`: read it from history.
        assert_eq!(
            first.row.status, "FAILED",
            "Each has no items in Read's output"
        );
        first.history.retain(|e| e.event.kind == "StateExited");
        let read = first.history[0].event.detail["output"].clone();
        for f in fields {
            assert!(read.get(f.replace('.', "_")).is_some(), "{f}: {read}");
        }
        assert_eq!(read["Execution_Input"], json!({"items": ["a"]}));
        assert_eq!(read["Execution_RedriveCount"], json!(0));
        assert_eq!(read["State_Name"], json!("Read"));
        assert_eq!(read["StateMachine_Name"], json!("flow"));
        assert!(
            read["Execution_RoleArn"]
                .as_str()
                .is_some_and(|a| a.starts_with("arn:")),
            "{read}"
        );

        // Inside a Map item: the same fields, the execution's own.
        let mut def = def;
        def["States"]["Read"]["ResultPath"] = json!("$.read");
        let r = run(s, def, json!({"items": ["a", "b"]}), &[]).await;
        assert_eq!(r.row.status, "SUCCEEDED", "{:?}", r.error());
        let mapped = &r.output()["mapped"];
        assert_eq!(mapped[1]["i"], json!(1));
        assert_eq!(mapped[1]["v"], json!("b"));
        assert_eq!(mapped[1]["ctx"]["Execution_Id"], json!(r.row.id));
        assert_eq!(mapped[1]["ctx"]["State_Name"], json!("Inner"));
        assert_eq!(mapped[1]["ctx"]["Task_Token"], json!(null));
    })
    .await;
}

store_test!(variables_are_assigned_read_and_scoped_as_the_developer_guide_says);
/// The developer guide's "Passing data between states with variables", JSONPath
/// flavour: `Assign` on Pass, Task, Choice (its rules, and the state for `Default`),
/// Wait, Map and Catch; `$name` in paths, Parameters, intrinsics and Choice rules; every
/// value of one `Assign` read before any is set; a Map item reads outer variables, and
/// its own are not seen outside; the size limits.
async fn variables_are_assigned_read_and_scoped_as_the_developer_guide_says(stores: Stores) {
    each_store(stores, |s| async move {
        let def = json!({"StartAt": "Init", "States": {
            "Init": {"Type": "Pass", "Result": {"n": 2},
                "ResultPath": "$.init",
                "Assign": {"count.$": "$.n", "label": "order", "a": 1}, "Next": "Swap"},
            "Swap": {"Type": "Pass", "Assign": {"a": 5, "b.$": "$a"}, "Next": "Call"},
            "Call": {"Type": "Task", "Resource": "p",
                "Parameters": {"who.$": "$label", "text.$": "States.Format('{} x{}', $label, $count)"},
                "ResultSelector": {"id.$": "$.id"},
                "ResultPath": "$.call", "Assign": {"id.$": "$.id"}, "Next": "Pick"},
            "Pick": {"Type": "Choice", "Choices": [
                {"Variable": "$count", "NumericGreaterThan": 5, "Next": "Big", "Assign": {"size": "big"}}
            ], "Default": "Pause", "Assign": {"size": "small"}},
            "Big": {"Type": "Fail", "Error": "TooBig"},
            "Pause": {"Type": "Wait", "Seconds": 1, "Assign": {"waited": true}, "Next": "Each"},
            "Each": {"Type": "Map", "ItemsPath": "$.items",
                "ItemProcessor": {"StartAt": "Item", "States": {"Item": {"Type": "Pass",
                    "Parameters": {"v.$": "$", "label.$": "$label"}, "Assign": {"inner": 1}, "End": true}}},
                "ResultPath": "$.mapped", "Next": "Out"},
            "Out": {"Type": "Pass", "Parameters": {"a.$": "$a", "b.$": "$b", "id.$": "$id",
                "size.$": "$size", "waited.$": "$waited", "mapped.$": "$.mapped"}, "End": true}
        }});
        let script = [("Call", vec![ok(json!({"id": "T-1", "other": 0}))])];
        let r = run(s.clone(), def.clone(), json!({"items": [1, 2]}), &script).await;
        assert_eq!(r.row.status, "SUCCEEDED", "{:?}", r.error());
        assert_eq!(
            r.tasks.calls()[0].input,
            json!({"who": "order", "text": "order x2"})
        );
        assert_eq!(
            r.output(),
            json!({"a": 5, "b": 1, "id": "T-1", "size": "small", "waited": true,
                   "mapped": [{"v": 1, "label": "order"}, {"v": 2, "label": "order"}]})
        );

        // A Map item's own variables are not seen outside it.
        let mut outside = def.clone();
        outside["States"]["Out"]["Parameters"] = json!({"inner.$": "$inner"});
        let r = run(s.clone(), outside, json!({"items": [1]}), &script).await;
        assert_eq!(r.error().0, "States.Runtime", "{:?}", r.error());

        // A Catch assigns from the error output.
        let caught = json!({"StartAt": "Call", "States": {
            "Call": {"Type": "Task", "Resource": "p", "Catch": [{"ErrorEquals": ["States.ALL"],
                "Assign": {"why.$": "$.Cause", "err.$": "$.Error"}, "Next": "Report"}], "End": true},
            "Report": {"Type": "Pass", "Parameters": {"why.$": "$why", "err.$": "$err"}, "End": true}
        }});
        let r = run(s.clone(), caught, json!({}), &[("Call", vec![Attempt::throw("Boom", "it broke")])]).await;
        assert_eq!(r.output(), json!({"why": "it broke", "err": "Boom"}));

        // Over the limit of one variable: States.DataLimitExceeded.
        let big = json!({"StartAt": "P", "States": {"P": {"Type": "Pass",
            "Assign": {"big.$": "States.Format('{}{}', $.s, $.s)"}, "ResultPath": null, "End": true}}});
        let r = run(s, big, json!({"s": "x".repeat(130 * 1024)}), &[]).await;
        assert_eq!(r.error().0, "States.DataLimitExceeded", "{:?}", r.error());
    })
    .await;
}

store_test!(fail_reads_error_and_cause_paths);
async fn fail_reads_error_and_cause_paths(stores: Stores) {
    each_store(stores, |s| async move {
        let def = json!({"StartAt": "F", "States": {"F": {"Type": "Fail",
            "ErrorPath": "$.code", "CausePath": "$.why"}}});
        let r = run(s.clone(), def, json!({"code": "Bad.Input", "why": "no id"}), &[]).await;
        assert_eq!(r.row.status, "FAILED");
        assert_eq!(r.error(), ("Bad.Input".into(), "no id".into()));
        assert_eq!(r.count("ExecutionFailed"), 1);

        // The developer guide's Fail state: ErrorPath and CausePath may be intrinsic
        // functions that return a string.
        let def = json!({"StartAt": "F", "States": {"F": {"Type": "Fail",
            "ErrorPath": "States.Format('{}.{}', $.kind, $.code)",
            "CausePath": "States.JsonToString($.detail)"}}});
        let r = run(s.clone(), def, json!({"kind": "Order", "code": "Late", "detail": {"days": 3}}), &[]).await;
        assert_eq!(r.error(), ("Order.Late".into(), "{\"days\":3}".into()));
        let def = json!({"StartAt": "F", "States": {"F": {"Type": "Fail",
            "ErrorPath": "States.ArrayGetItem($.codes, 1)", "CausePath": "States.Base64Decode($.b64)"}}});
        let r = run(s.clone(), def, json!({"codes": ["A", "B"], "b64": "Zm9v"}), &[]).await;
        assert_eq!(r.error(), ("B".into(), "foo".into()));
        // An ArrayGetItem that gives a number is no error name: States.Runtime.
        let def = json!({"StartAt": "F", "States": {"F": {"Type": "Fail",
            "ErrorPath": "States.ArrayGetItem($.codes, 0)"}}});
        let r = run(s, def, json!({"codes": [1]}), &[]).await;
        assert_eq!(r.error().0, "States.Runtime");
    })
    .await;
}

store_test!(parallel_branches_run_as_children_and_join_in_order);
async fn parallel_branches_run_as_children_and_join_in_order(stores: Stores) {
    each_store(stores, |s| async move {
        let branch = |state: &str| json!({"StartAt": state, "States": {state: {"Type": "Task", "Resource": "p", "End": true}}});
        let def = json!({
            "StartAt": "Both",
            "States": {"Both": {"Type": "Parallel", "Branches": [branch("Left"), branch("Right")],
                "ResultSelector": {"l.$": "$[0].v", "r.$": "$[1].v"}, "End": true}}
        });
        let script = [("Left", vec![ok(json!({"v": "L"}))]), ("Right", vec![ok(json!({"v": "R"}))])];
        let r = run(s.clone(), def.clone(), json!({}), &script).await;
        assert_eq!(r.row.status, "SUCCEEDED", "{:?}", r.error());
        assert_eq!(r.output(), json!({"l": "L", "r": "R"}));

        // One failing branch fails the state with that branch's error (caught here).
        let mut def = def;
        def["States"]["Both"]["Catch"] = json!([{"ErrorEquals": ["Boom"], "Next": "Caught"}]);
        def["States"]["Caught"] = json!({"Type": "Pass", "End": true});
        let script = [("Left", vec![throw("Boom")]), ("Right", vec![ok(json!({"v": "R"}))])];
        let r = run(s, def, json!({}), &script).await;
        assert_eq!(r.row.status, "SUCCEEDED", "{:?}", r.error());
        assert_eq!(r.path(), ["Both", "Caught"]);
        assert_eq!(r.output()["Error"], "Boom");
    })
    .await;
}

store_test!(map_items_with_selector_and_concurrency);
async fn map_items_with_selector_and_concurrency(stores: Stores) {
    each_store(stores, |s| async move {
        let def = json!({
            "StartAt": "Each",
            "States": {"Each": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 2,
                "ItemSelector": {"index.$": "$$.Map.Item.Index", "value.$": "$$.Map.Item.Value", "tag.$": "$.tag"},
                "ItemProcessor": {"StartAt": "Double", "States": {"Double": {"Type": "Pass",
                    "Parameters": {"i.$": "$.index", "t.$": "States.Format('{}-{}', $.tag, $.value)"}, "End": true}}},
                "ResultPath": "$.out", "End": true}}
        });
        let r = run(s.clone(), def.clone(), json!({"items": ["a", "b", "c", "d", "e"], "tag": "x"}), &[]).await;
        assert_eq!(r.row.status, "SUCCEEDED", "{:?}", r.error());
        let out: Vec<Value> = (0..5)
            .map(|i| json!({"i": i, "t": format!("x-{}", ["a", "b", "c", "d", "e"][i])}))
            .collect();
        assert_eq!(r.output()["out"], Value::Array(out));

        // No items: an empty result at once.
        let r = run(s.clone(), def.clone(), json!({"items": [], "tag": "x"}), &[]).await;
        assert_eq!(r.output()["out"], json!([]));
        // ItemsPath that is not an array: States.Runtime.
        let r = run(s, def, json!({"items": 3, "tag": "x"}), &[]).await;
        assert_eq!(r.error().0, "States.Runtime");
    })
    .await;
}

store_test!(map_tolerates_failures_up_to_its_threshold);
async fn map_tolerates_failures_up_to_its_threshold(stores: Stores) {
    each_store(stores, |s| async move {
        let def = |tolerated: u64| json!({
            "StartAt": "Each",
            "States": {"Each": {"Type": "Map", "ToleratedFailureCount": tolerated,
                "ItemProcessor": {"StartAt": "Work", "States": {"Work": {"Type": "Task", "Resource": "p", "End": true}}},
                "End": true}}
        });
        let script = || [("Work", vec![ok(json!(1)), throw("Bad"), ok(json!(3))])];
        let r = run(s.clone(), def(1), json!([1, 2, 3]), &script()).await;
        assert_eq!(r.row.status, "SUCCEEDED", "{:?}", r.error());
        let out = r.output();
        assert_eq!(out.as_array().unwrap().len(), 3);
        assert_eq!(out.as_array().unwrap().iter().filter(|v| v.get("Error") == Some(&json!("Bad"))).count(), 1);
        let r = run(s, def(0), json!([1, 2, 3]), &script()).await;
        assert_eq!(r.row.status, "FAILED");
        assert_eq!(r.error().0, "States.ExceedToleratedFailureThreshold");
    })
    .await;
}

store_test!(map_runs_the_fields_the_visual_editor_and_the_developer_guide_write);
/// The Map state page of the Step Functions developer guide: `ItemProcessor` with
/// `ProcessorConfig` (`"Mode": "INLINE"`), `MaxConcurrencyPath`,
/// `ToleratedFailureCountPath`, `ToleratedFailurePercentagePath` (reference paths into
/// the state input) and `Label`. A definition accepted at load runs.
async fn map_runs_the_fields_the_visual_editor_and_the_developer_guide_write(stores: Stores) {
    each_store(stores, |s| async move {
        let map = |extra: Value| {
            let mut state = json!({"Type": "Map", "ItemsPath": "$.items",
                "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Work",
                    "States": {"Work": {"Type": "Task", "Resource": "p", "End": true}}},
                "End": true});
            for (k, v) in extra.as_object().unwrap() {
                state[k] = v.clone();
            }
            json!({"StartAt": "Each", "States": {"Each": state}})
        };
        let distributed = |execution_type: &str, mut extra: Value| {
            extra["ItemProcessor"] = json!({"StartAt": "Work",
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": execution_type},
                "States": {"Work": {"Type": "Task", "Resource": "p", "End": true}}});
            extra
        };
        let items = |n: usize| json!({"items": (0..n).collect::<Vec<_>>(), "max": 1, "count": 1, "share": 40, "bad": "x"});
        let all_ok = || [("Work", vec![Attempt { repeat: true, ..ok(json!("done")) }])];
        // (extra fields, input, script, expected status, expected error, Work calls)
        type Script<'a> = Vec<(&'a str, Vec<Attempt>)>;
        type Case<'a> = (Value, Value, Script<'a>, &'a str, &'a str, usize);
        let failing = || vec![("Work", vec![Attempt { repeat: true, ..throw("Bad") }])];
        let cases: Vec<Case> = vec![
            (json!({}), items(3), all_ok().to_vec(), "SUCCEEDED", "", 3),
            (json!({"Label": "Each-item_1"}), items(2), all_ok().to_vec(), "SUCCEEDED", "", 2),
            (json!({"MaxConcurrencyPath": "$.max"}), items(3), all_ok().to_vec(), "SUCCEEDED", "", 3),
            // One item at a time: the first failure ends the Map before the next starts.
            (json!({"MaxConcurrencyPath": "$.max"}), items(3), failing(), "FAILED", "Bad", 1),
            (json!({"MaxConcurrencyPath": "$.missing"}), items(3), vec![], "FAILED", "States.Runtime", 0),
            (json!({"MaxConcurrencyPath": "$.bad"}), items(3), vec![], "FAILED", "States.Runtime", 0),
            (json!({"ToleratedFailureCountPath": "$.count"}), items(3),
             vec![("Work", vec![ok(json!(1)), throw("Bad"), ok(json!(3))])], "SUCCEEDED", "", 3),
            (json!({"ToleratedFailureCountPath": "$.count", "MaxConcurrency": 1}), items(3),
             failing(), "FAILED", "States.ExceedToleratedFailureThreshold", 2),
            // 2 of 5 is 40%: tolerated; 3 of 5 is not.
            (json!({"ToleratedFailurePercentagePath": "$.share", "MaxConcurrency": 1}), items(5),
             vec![("Work", vec![throw("Bad"), throw("Bad"), ok(json!(1)), ok(json!(1)), ok(json!(1))])],
             "SUCCEEDED", "", 5),
            (json!({"ToleratedFailurePercentagePath": "$.share", "MaxConcurrency": 1}), items(5),
             vec![("Work", vec![throw("Bad"), throw("Bad"), throw("Bad"), ok(json!(1)), ok(json!(1))])],
             "FAILED", "States.ExceedToleratedFailureThreshold", 3),
            (json!({"ToleratedFailurePercentagePath": "$.bad"}), items(3), vec![], "FAILED", "States.Runtime", 0),
            // Distributed mode runs each item as the same durable child execution, with
            // MaxConcurrency honoured: one at a time, the first failure ends the Map.
            (distributed("STANDARD", json!({"MaxConcurrency": 2})), items(4), all_ok().to_vec(), "SUCCEEDED", "", 4),
            (distributed("EXPRESS", json!({})), items(3), all_ok().to_vec(), "SUCCEEDED", "", 3),
            (distributed("STANDARD", json!({"MaxConcurrency": 1})), items(3), failing(), "FAILED", "Bad", 1),
        ];
        for (extra, input, script, status, error, calls) in cases {
            let def = map(extra.clone());
            let r = run(s.clone(), def, input, &script).await;
            assert_eq!(r.row.status, status, "{extra}: {:?}", r.error());
            assert_eq!(r.error().0, error, "{extra}");
            assert_eq!(r.tasks.calls().len(), calls, "{extra}");
        }
    })
    .await;
}

store_test!(each_predefined_error_is_raised_where_the_spec_says);
async fn each_predefined_error_is_raised_where_the_spec_says(stores: Stores) {
    each_store(stores, |s| async move {
        let one = |state: Value| json!({"StartAt": "S", "States": {"S": state}});
        let catch_all = json!([{"ErrorEquals": ["States.ALL"], "Next": "C"}]);
        // (definition, input, script, expected final error)
        type Script<'a> = Vec<(&'a str, Vec<Attempt>)>;
        let cases: Vec<(Value, Value, Script, &str)> = vec![
            (one(json!({"Type": "Choice", "Choices": [{"Variable": "$.x", "IsNull": true, "Next": "S"}]})),
             json!({"x": 1}), vec![], "States.NoChoiceMatched"),
            (one(json!({"Type": "Pass", "InputPath": "$.missing", "End": true})),
             json!({}), vec![], "States.Runtime"),
            (one(json!({"Type": "Pass", "Parameters": {"a.$": "$.missing"}, "End": true})),
             json!({}), vec![], "States.Runtime"),
            (one(json!({"Type": "Task", "Resource": "p", "Parameters": {"a.$": "$.missing"}, "End": true})),
             json!({}), vec![], "States.Runtime"),
            (one(json!({"Type": "Task", "Resource": "p", "ResultSelector": {"a.$": "$.missing"}, "End": true})),
             json!({}), vec![("S", vec![ok(json!({}))])], "States.Runtime"),
            (one(json!({"Type": "Pass", "Result": "x".repeat(300 * 1024), "End": true})),
             json!({}), vec![], "States.DataLimitExceeded"),
            (one(json!({"Type": "Pass", "Parameters": {"big.$": "States.Format('{}{}', $.s, $.s)"}, "End": true})),
             json!({"s": "x".repeat(200 * 1024)}), vec![], "States.DataLimitExceeded"),
            (one(json!({"Type": "Wait", "TimestampPath": "$.t", "End": true})),
             json!({"t": "2016-03-14 01:59:00Z"}), vec![], "States.Runtime"),
            (one(json!({"Type": "Fail", "ErrorPath": "$.missing", "Cause": "c"})),
             json!({}), vec![], "States.Runtime"),
            (one(json!({"Type": "Fail", "Error": "E", "CausePath": "$.missing"})),
             json!({}), vec![], "States.Runtime"),
            (one(json!({"Type": "Fail", "ErrorPath": "$.n"})),
             json!({"n": 5}), vec![], "States.Runtime"),
            (one(json!({"Type": "Pass", "Parameters": {"a.$": "States.StringToJson($.s)"}, "End": true})),
             json!({"s": "{"}), vec![], "States.IntrinsicFailure"),
            (one(json!({"Type": "Pass", "Result": 1, "ResultPath": "$.a.b", "End": true})),
             json!({"a": 5}), vec![], "States.ResultPathMatchFailure"),
            (one(json!({"Type": "Task", "Resource": "p", "TimeoutSeconds": 1, "End": true})),
             json!({}), vec![("S", vec![Attempt { delay: Duration::from_secs(3), ..ok(json!(1)) }])], "States.Timeout"),
            (one(json!({"Type": "Task", "Resource": "p", "TimeoutSeconds": 10, "HeartbeatSeconds": 1, "End": true})),
             json!({}), vec![("S", vec![Attempt { delay: Duration::from_secs(3), ..ok(json!(1)) }])], "States.HeartbeatTimeout"),
            // Host errors (Lambda.Unknown, Lambda.ResourceNotFoundException) are named
            // by the service's task runner, not here: a script throwing them would only
            // show that the name passes through (tests/e2e/permissions.rs has the
            // service raise one).
            (one(json!({"Type": "Map", "ToleratedFailurePercentage": 10,
                "ItemProcessor": {"StartAt": "W", "States": {"W": {"Type": "Task", "Resource": "p", "End": true}}}, "End": true})),
             json!([1]), vec![("W", vec![throw("X")])], "States.ExceedToleratedFailureThreshold"),
            (one(json!({"Type": "Task", "Resource": "p", "End": true})),
             json!({}), vec![("S", vec![ok(json!("x".repeat(300 * 1024)))])], "States.DataLimitExceeded"),
            (one(json!({"Type": "Parallel", "Branches": [
                {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "p", "End": true}}},
                {"StartAt": "B", "States": {"B": {"Type": "Task", "Resource": "p", "End": true}}}], "End": true})),
             json!({}), vec![("A", vec![ok(json!("x".repeat(200 * 1024)))]), ("B", vec![ok(json!("y".repeat(200 * 1024)))])],
             "States.DataLimitExceeded"),
        ];
        for (def, input, script, want) in cases {
            let r = run(s.clone(), def.clone(), input, &script).await;
            assert_eq!(r.row.status, "FAILED", "{def}");
            assert_eq!(r.error().0, want, "{def}: {:?}", r.error());
        }
        // States.Runtime and States.DataLimitExceeded are not caught by States.ALL;
        // States.Timeout is.
        let mut def = one(json!({"Type": "Task", "Resource": "p", "Catch": catch_all.clone(), "End": true}));
        def["States"]["C"] = json!({"Type": "Succeed"});
        let big = [("S", vec![ok(json!("x".repeat(300 * 1024)))])];
        let r = run(s.clone(), def, json!({}), &big).await;
        assert_eq!(r.error().0, "States.DataLimitExceeded");
        // States.Runtime is caught and retried by nothing, even a list that names it.
        for errors in [json!(["States.ALL"]), json!(["States.Runtime"]), json!(["States.TaskFailed"])] {
            let mut def = one(json!({"Type": "Task", "Resource": "p", "InputPath": "$.missing",
                "Retry": [{"ErrorEquals": errors.clone()}],
                "Catch": [{"ErrorEquals": errors.clone(), "Next": "C"}], "End": true}));
            def["States"]["C"] = json!({"Type": "Succeed"});
            let r = run(s.clone(), def, json!({}), &[]).await;
            assert_eq!(r.row.status, "FAILED", "{errors}");
            assert_eq!(r.error().0, "States.Runtime", "{errors}");
            assert_eq!(r.count("StateRetryScheduled"), 0, "{errors}");
        }
        // States.DataLimitExceeded is caught by its own name only; so is a Pass result
        // over the limit.
        let mut def = one(json!({"Type": "Task", "Resource": "p",
            "Catch": [{"ErrorEquals": ["States.DataLimitExceeded"], "Next": "C"}], "End": true}));
        def["States"]["C"] = json!({"Type": "Succeed"});
        let r = run(s.clone(), def, json!({}), &big).await;
        assert_eq!(r.row.status, "SUCCEEDED", "{:?}", r.error());
        assert_eq!(r.output()["Error"], "States.DataLimitExceeded");
        let mut def = one(json!({"Type": "Task", "Resource": "p", "TimeoutSeconds": 1, "Catch": catch_all, "End": true}));
        def["States"]["C"] = json!({"Type": "Succeed"});
        let script = [("S", vec![Attempt { delay: Duration::from_secs(3), ..ok(json!(1)) }])];
        let r = run(s.clone(), def, json!({}), &script).await;
        assert_eq!(r.row.status, "SUCCEEDED");
        assert_eq!(r.output()["Error"], "States.Timeout");
        // States.TaskFailed matches a plugin's own error name, not States.Timeout.
        let def = one(json!({"Type": "Task", "Resource": "p", "End": true,
            "Retry": [{"ErrorEquals": ["States.TaskFailed"], "MaxAttempts": 1}]}));
        let r = run(s.clone(), def, json!({}), &[("S", vec![throw("Custom"), ok(json!("fine"))])]).await;
        assert_eq!(r.output(), json!("fine"));
    })
    .await;
}

store_test!(the_execution_timeout_ends_a_waiting_execution);
async fn the_execution_timeout_ends_a_waiting_execution(stores: Stores) {
    each_store(stores, |s| async move {
        let def = json!({"StartAt": "W", "TimeoutSeconds": 1,
            "States": {"W": {"Type": "Wait", "Seconds": 60, "End": true}}});
        let r = run_with(s, def, json!({}), &[], false).await;
        assert_eq!(r.row.status, "TIMED_OUT");
        assert_eq!(r.error().0, "States.Timeout");
    })
    .await;
}

store_test!(names_make_starts_idempotent_and_stop_aborts);
async fn names_make_starts_idempotent_and_stop_aborts(stores: Stores) {
    each_store(stores, |s| async move {
        let t = tenant("wf");
        let exec = executor(&s, Arc::new(ScriptedTasks::new()), &t, false);
        let def =
            json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 600, "End": true}}});
        let a = exec
            .start(&t, "flow", &def, json!({"x": 1}), Some("order-1"))
            .await
            .unwrap();
        let b = exec
            .start(&t, "flow", &def, json!({"x": 1}), Some("order-1"))
            .await
            .unwrap();
        assert!(a.created && !b.created);
        assert_eq!(a.id, b.id);
        let err = exec
            .start(&t, "flow", &def, json!({"x": 2}), Some("order-1"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StartError::AlreadyExists(ref name) if name == "order-1"),
            "{err}"
        );
        let err = exec
            .start(&t, "flow", &def, json!({"x": 1}), Some("order 1"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StartError::Name(NameError::Forbidden(' '))),
            "{err}"
        );
        let err = exec
            .start(&t, "flow", &def, json!("x".repeat(300 * 1024)), None)
            .await
            .unwrap_err();
        assert!(matches!(err, StartError::InputTooLarge(_)), "{err}");

        exec.work_once().await.unwrap();
        let row = s.wf_get(&t, &a.id).await.unwrap().unwrap();
        assert_eq!(row.status, "RUNNING");
        assert!(
            row.wake_at > crate::store::now_ms() + 500_000,
            "a waiting execution sleeps"
        );
        assert!(
            s.wf_stop(&t, &a.id, Some("Stopped"), Some("by test"))
                .await
                .unwrap()
        );
        assert!(!s.wf_stop(&t, &a.id, None, None).await.unwrap());
        let row = s.wf_get(&t, &a.id).await.unwrap().unwrap();
        assert_eq!(row.status, "ABORTED");
        let listed = s
            .wf_list(&t, Some("flow"), Some("ABORTED"), 10)
            .await
            .unwrap();
        assert_eq!(listed.len(), 1);
    })
    .await;
}

store_test!(an_interrupted_task_is_retried_under_its_policy);
async fn an_interrupted_task_is_retried_under_its_policy(stores: Stores) {
    each_store(stores, |s| async move {
        let tasks = Arc::new(ScriptedTasks::new());
        tasks.script("T", [ok(json!("second time"))]);
        let t = tenant("wf");
        let exec = executor(&s, tasks.clone(), &t, true);
        let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "p", "End": true,
            "Retry": [{"ErrorEquals": ["States.TaskFailed"], "MaxAttempts": 1}]}}});
        let started = exec.start(&t, "flow", &def, json!({}), None).await.unwrap();
        // A host takes the execution, records the task as scheduled, and dies.
        let rows = s.wf_claim("dead-host", 1, 10, Some(&t)).await.unwrap();
        let row = rows.into_iter().find(|r| r.id == started.id).unwrap();
        let commit = crate::store::workflow::Commit {
            status: "RUNNING",
            cursor: json!({"state": "T", "input": {}, "entered_at": 0, "retries": [], "phase": "task"}).to_string(),
            output: None, error: None, cause: None,
            wake_at: 0, lease_ms: 1, history: Vec::new(), spawn: Vec::new(),
            token: Default::default(),
        };
        assert!(s.wf_commit(&row, "dead-host", commit).await.unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
        let row = exec.run_to_end(&t, &started.id, Duration::from_secs(10)).await.unwrap();
        let history = s.wf_history(&row.id).await.unwrap();
        assert_eq!(row.status, "SUCCEEDED", "{history:#?}");
        assert!(history.iter().any(|e| e.event.kind == "TaskFailed" && e.event.detail["interrupted"] == json!(true)));
        assert_eq!(tasks.calls().len(), 1);
    })
    .await;
}

store_test!(a_stopped_branch_fails_its_parallel_state_with_branch_failed);
async fn a_stopped_branch_fails_its_parallel_state_with_branch_failed(stores: Stores) {
    each_store(stores, |s| async move {
        let t = tenant("wf");
        let exec = executor(&s, Arc::new(ScriptedTasks::new()), &t, false);
        let long =
            json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 600, "End": true}}});
        let def = json!({"StartAt": "P", "States": {
            "P": {"Type": "Parallel", "Branches": [long.clone(), long], "End": true,
                  "Catch": [{"ErrorEquals": ["States.BranchFailed"], "Next": "Stopped"}]},
            "Stopped": {"Type": "Pass", "End": true}}});
        let root = exec.start(&t, "flow", &def, json!({}), None).await.unwrap();
        // Fan out, then let both branches reach their wait.
        while exec.work_once().await.unwrap() > 0 {}
        let row = s.wf_get(&t, &root.id).await.unwrap().unwrap();
        let generation = serde_json::from_str::<Value>(&row.cursor).unwrap()["generation"].clone();
        let child = format!("{}:{generation}:1", root.id);
        assert_eq!(
            s.wf_get(&t, &child).await.unwrap().unwrap().status,
            "RUNNING"
        );
        assert!(s.wf_stop(&t, &child, None, Some("by hand")).await.unwrap());
        let row = exec
            .run_to_end(&t, &root.id, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(row.status, "SUCCEEDED");
        let output: Value = serde_json::from_str(row.output.as_deref().unwrap()).unwrap();
        assert_eq!(output["Error"], "States.BranchFailed");
        assert_eq!(output["Cause"], "branch 1 was stopped: by hand");
        // The other branch was stopped with its state.
        let other = s
            .wf_get(&t, &format!("{}:{generation}:0", root.id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(other.status, "ABORTED");
    })
    .await;
}

/// A new execution waiting 600 s, claimed by `host-a` for a minute.
async fn claimed_by_host_a(s: &Store, exec: &Executor, t: &str) -> ExecutionRow {
    let def =
        json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 600, "End": true}}});
    let started = exec.start(t, "flow", &def, json!({}), None).await.unwrap();
    let rows = s.wf_claim("host-a", 60_000, 10, Some(t)).await.unwrap();
    rows.into_iter().find(|r| r.id == started.id).unwrap()
}

fn transition(events: usize) -> crate::store::workflow::Commit {
    crate::store::workflow::Commit {
        status: "RUNNING",
        cursor: json!({"state": "W", "input": {}, "entered_at": 0, "retries": []}).to_string(),
        output: None,
        error: None,
        cause: None,
        wake_at: 0,
        lease_ms: 60_000,
        history: (0..events)
            .map(|i| crate::store::workflow::HistoryEvent {
                kind: "PassStateExited".into(),
                state: Some(format!("S{i}")),
                detail: json!({"i": i}),
            })
            .collect(),
        spawn: Vec::new(),
        token: Default::default(),
    }
}

store_test!(a_transition_is_written_whole_and_only_at_the_version_and_lease_it_read);
/// A transition is written whole, and only by the lease holder at the version it read:
/// on every store, with no history, with one statement's worth and with more than one
/// (on the SQLite file the first two are one query of their own transaction).
async fn a_transition_is_written_whole_and_only_at_the_version_and_lease_it_read(stores: Stores) {
    each_store(stores, |s| async move {
        let t = tenant("wf");
        let exec = executor(&s, Arc::new(ScriptedTasks::new()), &t, false);
        let mut row = claimed_by_host_a(&s, &exec, &t).await;
        let entries = |s: Store, id: String| async move { s.wf_history(&id).await.unwrap() };
        let before = entries(s.clone(), row.id.clone()).await.len();

        assert!(
            !s.wf_commit(&row, "host-b", transition(2)).await.unwrap(),
            "not the lease holder"
        );
        let mut stale = row.clone();
        stale.version -= 1;
        assert!(
            !s.wf_commit(&stale, "host-a", transition(2)).await.unwrap(),
            "an old version"
        );
        assert_eq!(
            entries(s.clone(), row.id.clone()).await.len(),
            before,
            "a refused transition writes no history"
        );
        assert_eq!(
            s.wf_get(&t, &row.id).await.unwrap().unwrap().version,
            row.version
        );

        let mut written = before;
        for events in [2, 0, 150, 100] {
            assert!(
                s.wf_commit(&row, "host-a", transition(events))
                    .await
                    .unwrap(),
                "{events} events"
            );
            row.version += 1;
            written += events;
            let history = entries(s.clone(), row.id.clone()).await;
            assert_eq!(history.len(), written, "{events} events");
            let seqs: Vec<i64> = history.iter().map(|e| e.seq).collect();
            assert_eq!(
                seqs,
                (1..=written as i64).collect::<Vec<_>>(),
                "numbered in turn"
            );
            assert_eq!(
                s.wf_get(&t, &row.id).await.unwrap().unwrap().version,
                row.version
            );
            // The same row again is now stale, and changes nothing.
            let mut again = row.clone();
            again.version -= 1;
            assert!(!s.wf_commit(&again, "host-a", transition(1)).await.unwrap());
            assert_eq!(entries(s.clone(), row.id.clone()).await.len(), written);
        }
        let last = entries(s.clone(), row.id.clone()).await.pop().unwrap();
        assert_eq!(last.event.state.as_deref(), Some("S99"));
        assert_eq!(last.event.detail, json!({"i": 99}));
    })
    .await;
}

store_test!(a_commit_dropped_midway_is_whole_or_absent_and_the_store_writes_on);
/// A commit whose future is dropped while the store runs it (a cancelled task) leaves
/// the transition written whole or not at all, and the store writing on.
async fn a_commit_dropped_midway_is_whole_or_absent_and_the_store_writes_on(stores: Stores) {
    each_store(stores, |s| async move {
        let t = tenant("wf");
        let exec = executor(&s, Arc::new(ScriptedTasks::new()), &t, false);
        for _ in 0..20 {
            let row = claimed_by_host_a(&s, &exec, &t).await;
            let before = s.wf_history(&row.id).await.unwrap().len();
            // Polled once (the query is sent), then dropped.
            let _ =
                tokio::time::timeout(Duration::ZERO, s.wf_commit(&row, "host-a", transition(3)))
                    .await;
            let second = s.wf_commit(&row, "host-a", transition(3)).await.unwrap();
            let now = s.wf_get(&t, &row.id).await.unwrap().unwrap();
            let history = s.wf_history(&row.id).await.unwrap().len();
            // Exactly one of the two commits took: the first (and the second saw its
            // version) or the second.
            assert_eq!(now.version, row.version + 1, "second took: {second}");
            assert_eq!(history, before + 3);
        }
    })
    .await;
}
