//! RedriveExecution, from the developer guide's "Restarting state machine executions
//! with redrive": from the state that did not succeed, with its input; the states that
//! succeeded, and the Map items and Parallel branches that did, not run again;
//! `$$.Execution.RedriveCount`; which executions may be redriven.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::executor::{Executor, ExecutorOptions, RedriveError, redrivable};
use super::scripted::{Attempt, ScriptedTasks};
use crate::store::task_tokens::{Answer, AnswerError};
use crate::store::testing::{Stores, each_store, store_test, tenant};
use crate::store::workflow::ExecutionRow;

fn executor(store: &crate::store::Store, tasks: Arc<ScriptedTasks>, t: &str) -> Arc<Executor> {
    let options = ExecutorOptions {
        concurrency: 4,
        skip_waits: true,
        tenant: Some(t.to_string()),
    };
    Executor::new(store.clone(), tasks, options)
}

fn output(row: &ExecutionRow) -> Value {
    serde_json::from_str(row.output.as_deref().unwrap_or("null")).unwrap()
}

const LIMIT: Duration = Duration::from_secs(20);

#[test]
fn which_executions_may_be_redriven() {
    let day = 24 * 3600 * 1000;
    let now = 400 * day;
    let table = [
        ("FAILED", now - day, Some(now - day), Ok(())),
        ("TIMED_OUT", now - day, Some(now - day), Ok(())),
        ("ABORTED", now - day, Some(now - day), Ok(())),
        ("FAILED", now - 20 * day, Some(now - 14 * day), Ok(())),
        (
            "FAILED",
            now - 20 * day,
            Some(now - 14 * day - 1),
            Err("Execution redrivable period exceeded."),
        ),
        (
            "FAILED",
            now - 366 * day,
            Some(now - day),
            Err("Execution has exceeded the max execution time."),
        ),
        (
            "RUNNING",
            now - day,
            None,
            Err("Execution is RUNNING and cannot be redriven."),
        ),
        (
            "SUCCEEDED",
            now - day,
            Some(now),
            Err("Execution is SUCCEEDED and cannot be redriven."),
        ),
    ];
    for (status, started, stopped, expected) in table {
        assert_eq!(
            redrivable(status, started, stopped, now),
            expected,
            "{status} {stopped:?}"
        );
    }
}

store_test!(a_redrive_runs_again_from_the_failed_state_with_its_input);
async fn a_redrive_runs_again_from_the_failed_state_with_its_input(stores: Stores) {
    each_store(stores, |s| async move {
        let def = json!({"StartAt": "Fetch", "States": {
            "Fetch": {"Type": "Task", "Resource": "p", "ResultPath": "$.fetched", "Next": "Count",
                      "Assign": {"seen.$": "$"}},
            "Count": {"Type": "Pass", "Parameters": {"redrives.$": "$$.Execution.RedriveCount",
                      "fetched.$": "$.fetched", "seen.$": "$seen"}, "Next": "Save"},
            "Save": {"Type": "Task", "Resource": "p", "ResultPath": "$.saved", "End": true}
        }});
        let tasks = Arc::new(ScriptedTasks::new());
        tasks.script("Fetch", [Attempt::ok(json!("f"))]);
        tasks.script("Save", [Attempt::throw("Boom", "db down")]);
        let t = tenant("redrive");
        let exec = executor(&s, tasks.clone(), &t);
        let started = exec
            .start(&t, "flow", &def, json!({"id": 1}), None)
            .await
            .unwrap();
        let row = exec.run_to_end(&t, &started.id, LIMIT).await.unwrap();
        assert_eq!(
            (row.status.as_str(), row.error.as_deref()),
            ("FAILED", Some("Boom"))
        );

        // Another tenant cannot redrive it; it is as unknown there.
        let e = exec
            .redrive(&tenant("intruder"), &started.id)
            .await
            .unwrap_err();
        assert!(matches!(e, RedriveError::NotFound), "{e}");

        tasks.script("Save", [Attempt::ok(json!("s"))]);
        assert_eq!(exec.redrive(&t, &started.id).await.unwrap(), 1);
        let row = exec.run_to_end(&t, &started.id, LIMIT).await.unwrap();
        assert_eq!(row.status, "SUCCEEDED", "{:?} {:?}", row.error, row.cause);
        let expected_save_input = json!({"redrives": 0, "fetched": "f", "seen": "f"});
        assert_eq!(
            output(&row),
            json!({"redrives": 0, "fetched": "f", "seen": "f", "saved": "s"})
        );
        let calls = tasks.calls();
        let states: Vec<&str> = calls.iter().map(|c| c.state.as_str()).collect();
        assert_eq!(
            states,
            ["Fetch", "Save", "Save"],
            "Fetch succeeded: it does not run again"
        );
        assert_eq!(
            calls[2].input, expected_save_input,
            "the failed state's input, again"
        );
        let history = s.wf_history(&row.id).await.unwrap();
        let kinds: Vec<&str> = history.iter().map(|e| e.event.kind.as_str()).collect();
        let failed = kinds.iter().position(|k| *k == "ExecutionFailed").unwrap();
        assert_eq!(kinds[failed + 1], "ExecutionRedriven", "{kinds:?}");
        assert_eq!(history[failed + 1].event.detail["redriveCount"], json!(1));

        // A SUCCEEDED execution is not redriven, for the cloud's reason word for word.
        let e = exec.redrive(&t, &started.id).await.unwrap_err();
        assert!(
            matches!(e, RedriveError::NotRedrivable(ref why)
                if why == "Execution is SUCCEEDED and cannot be redriven."),
            "{e}"
        );
    })
    .await;
}

store_test!(redrive_count_is_in_the_context_after_a_redrive);
async fn redrive_count_is_in_the_context_after_a_redrive(stores: Stores) {
    each_store(stores, |s| async move {
        let def = json!({"StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": "p", "ResultPath": null, "Next": "Count"},
            "Count": {"Type": "Pass", "Parameters": {"n.$": "$$.Execution.RedriveCount",
                      "at.$": "$$.Execution.RedriveTime"}, "End": true}
        }});
        let tasks = Arc::new(ScriptedTasks::new());
        tasks.script(
            "T",
            [
                Attempt::throw("A", ""),
                Attempt::throw("B", ""),
                Attempt::ok(json!(1)),
            ],
        );
        let t = tenant("redrive");
        let exec = executor(&s, tasks.clone(), &t);
        let started = exec.start(&t, "flow", &def, json!({}), None).await.unwrap();
        exec.run_to_end(&t, &started.id, LIMIT).await.unwrap();
        for (n, expected) in [(1, "FAILED"), (2, "SUCCEEDED")] {
            assert_eq!(exec.redrive(&t, &started.id).await.unwrap(), n);
            let row = exec.run_to_end(&t, &started.id, LIMIT).await.unwrap();
            assert_eq!(row.status, expected);
        }
        let row = s.wf_get(&t, &started.id).await.unwrap().unwrap();
        assert_eq!(output(&row)["n"], json!(2));
        assert!(
            output(&row)["at"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z'))
        );
    })
    .await;
}

store_test!(a_redrive_of_a_map_runs_only_the_items_that_did_not_succeed);
/// Of a Map, only the items that did not succeed run again, and those never started
/// start; the items that succeeded keep their results.
async fn a_redrive_of_a_map_runs_only_the_items_that_did_not_succeed(stores: Stores) {
    each_store(stores, |s| async move {
        let def = json!({"StartAt": "Each", "States": {"Each": {
            "Type": "Map", "MaxConcurrency": 1,
            "ItemProcessor": {"StartAt": "Item", "States": {
                "Item": {"Type": "Task", "Resource": "p", "End": true}}},
            "End": true}}});
        let tasks = Arc::new(ScriptedTasks::new());
        tasks.script(
            "Item",
            [Attempt::ok(json!(10)), Attempt::throw("Boom", "item 2")],
        );
        let t = tenant("redrive");
        let exec = executor(&s, tasks.clone(), &t);
        let started = exec
            .start(&t, "flow", &def, json!([1, 2, 3]), None)
            .await
            .unwrap();
        let row = exec.run_to_end(&t, &started.id, LIMIT).await.unwrap();
        assert_eq!(row.error.as_deref(), Some("Boom"));
        assert_eq!(tasks.calls().len(), 2, "item 3 never started");

        tasks.script("Item", [Attempt::ok(json!(20)), Attempt::ok(json!(30))]);
        exec.redrive(&t, &started.id).await.unwrap();
        let row = exec.run_to_end(&t, &started.id, LIMIT).await.unwrap();
        assert_eq!(row.status, "SUCCEEDED", "{:?} {:?}", row.error, row.cause);
        assert_eq!(output(&row), json!([10, 20, 30]));
        let inputs: Vec<Value> = tasks.calls().iter().map(|c| c.input.clone()).collect();
        assert_eq!(inputs, [json!(1), json!(2), json!(2), json!(3)]);
    })
    .await;
}

store_test!(a_timed_out_callback_execution_is_redriven_with_a_new_token);
/// An ABORTED or TIMED_OUT execution is redriven too; a callback task waiting when it
/// ended runs again with a new token, and the old one is refused.
async fn a_timed_out_callback_execution_is_redriven_with_a_new_token(stores: Stores) {
    each_store(stores, |s| async move {
        let def = json!({"StartAt": "Wait", "TimeoutSeconds": 2, "States": {"Wait": {
            "Type": "Task", "Resource": "p.waitForTaskToken",
            "Parameters": {"token.$": "$$.Task.Token"}, "End": true}}});
        let tasks = Arc::new(ScriptedTasks::new());
        tasks.script("Wait", [Attempt::ok(json!(null)), Attempt::ok(json!(null))]);
        let t = tenant("redrive");
        let exec = executor(&s, tasks.clone(), &t);
        let started = exec.start(&t, "flow", &def, json!({}), None).await.unwrap();
        let row = exec.run_to_end(&t, &started.id, LIMIT).await.unwrap();
        assert_eq!(row.status, "TIMED_OUT");
        let first = tasks.calls()[0].input["token"]
            .as_str()
            .unwrap()
            .to_string();

        exec.redrive(&t, &started.id).await.unwrap();
        let mut second = None;
        for _ in 0..500 {
            exec.work_once().await.unwrap();
            if let Some(c) = tasks.calls().get(1) {
                second = c.input["token"].as_str().map(str::to_string);
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let second = second.expect("the task runs again");
        assert_ne!(first, second);
        let e = exec
            .answer_task(&t, &first, &Answer::Success("1".into()))
            .await
            .unwrap_err();
        assert!(matches!(e, AnswerError::TaskTimedOut), "{e}");
        exec.answer_task(&t, &second, &Answer::Success("2".into()))
            .await
            .unwrap();
        let row = exec.run_to_end(&t, &started.id, LIMIT).await.unwrap();
        assert_eq!((row.status.as_str(), output(&row)), ("SUCCEEDED", json!(2)));

        // Stopped by hand: redriven from where it was.
        tasks.script("Wait", [Attempt::ok(json!(null))]);
        let started = exec.start(&t, "flow", &def, json!({}), None).await.unwrap();
        for _ in 0..500 {
            exec.work_once().await.unwrap();
            if tasks.calls().len() == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(s.wf_stop(&t, &started.id, None, None).await.unwrap());
        tasks.script("Wait", [Attempt::ok(json!(null))]);
        exec.redrive(&t, &started.id).await.unwrap();
        let row = s.wf_get(&t, &started.id).await.unwrap().unwrap();
        assert_eq!(row.status, "RUNNING");
    })
    .await;
}
