//! Callback tasks (`.waitForTaskToken`), from the developer guide's "Wait for a
//! Callback with Task Token": the token in `$$.Task.Token`, the plugin called once, the
//! execution asleep until SendTaskSuccess / SendTaskFailure / a time limit, heartbeats,
//! and what a token may not do (another tenant's, used twice, of an ended execution).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch;

use super::executor::{Executor, ExecutorOptions};
use super::scripted::{Attempt, ScriptedTasks};
use crate::store::Store;
use crate::store::task_tokens::{Answer, AnswerError};
use crate::store::testing::{Stores, each_store, store_test, tenant};
use crate::store::workflow::ExecutionRow;

/// The cloud's Lambda callback form: the plugin is `FunctionName`, its input `Payload`.
fn callback_task(extra: Value) -> Value {
    let mut task = json!({
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {
            "FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:approver:live",
            "Payload": {"token.$": "$$.Task.Token", "order.$": "$.order"}
        },
        "ResultPath": "$.approval",
        "Next": "Done"
    });
    let caught = extra.get("Catch").is_some();
    if let (Some(task), Value::Object(extra)) = (task.as_object_mut(), extra) {
        task.extend(extra);
    }
    let mut states = json!({"Approve": task, "Done": {"Type": "Succeed"}});
    if caught {
        states["Rejected"] = json!({"Type": "Pass", "Result": "rejected", "End": true});
    }
    json!({"StartAt": "Approve", "States": states})
}

struct Running {
    exec: Arc<Executor>,
    tasks: Arc<ScriptedTasks>,
    tenant: String,
    id: String,
    stop: watch::Sender<bool>,
}

impl Running {
    async fn start(store: &Store, def: Value, attempts: usize) -> Running {
        let tasks = Arc::new(ScriptedTasks::new());
        tasks.script("Approve", vec![Attempt::ok(json!("submitted")); attempts]);
        let t = tenant("cb");
        let exec = executor(store, tasks.clone(), &t);
        let started = exec
            .start(&t, "flow", &def, json!({"order": 7}), None)
            .await
            .unwrap();
        let (stop, rx) = watch::channel(false);
        tokio::spawn(exec.clone().run(rx));
        Running {
            exec,
            tasks,
            tenant: t,
            id: started.id,
            stop,
        }
    }

    /// The token the `n`th call (from 1) of the task received, once it is made.
    async fn token(&self, n: usize) -> String {
        for _ in 0..1000 {
            if let Some(call) = self.tasks.calls().get(n - 1) {
                return call.input["token"].as_str().unwrap().to_string();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the task was not called {n} times")
    }

    async fn answer(&self, token: &str, answer: Answer) -> Result<(), AnswerError> {
        self.exec.answer_task(&self.tenant, token, &answer).await
    }

    async fn end(&self) -> ExecutionRow {
        for _ in 0..1000 {
            let row = self.row().await;
            if row.status != "RUNNING" {
                let _ = self.stop.send(true);
                return row;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the execution did not end")
    }

    async fn row(&self) -> ExecutionRow {
        let store = self.exec.store();
        store.wf_get(&self.tenant, &self.id).await.unwrap().unwrap()
    }

    async fn history(&self) -> Vec<String> {
        let store = self.exec.store();
        let events = store.wf_history(&self.id).await.unwrap();
        events.into_iter().map(|e| e.event.kind).collect()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

fn executor(store: &Store, tasks: Arc<ScriptedTasks>, t: &str) -> Arc<Executor> {
    let options = ExecutorOptions {
        concurrency: 4,
        skip_waits: false,
        tenant: Some(t.to_string()),
    };
    Executor::new(store.clone(), tasks, options)
}

fn success(v: Value) -> Answer {
    Answer::Success(v.to_string())
}

fn failure(error: &str, cause: &str) -> Answer {
    Answer::Failure {
        error: error.into(),
        cause: cause.into(),
    }
}

fn output(row: &ExecutionRow) -> Value {
    serde_json::from_str(row.output.as_deref().unwrap_or("null")).unwrap()
}

store_test!(the_answer_to_the_token_is_the_tasks_result);
async fn the_answer_to_the_token_is_the_tasks_result(stores: Stores) {
    each_store(stores, |s| async move {
        let catch = json!({"Catch": [{"ErrorEquals": ["Rejected"], "ResultPath": "$.why", "Next": "Rejected"}]});
        // (answer, status, output or error)
        let table = [
            (success(json!({"ok": 1})), "SUCCEEDED", json!({"order": 7, "approval": {"ok": 1}})),
            (failure("Rejected", "over budget"), "SUCCEEDED", json!("rejected")),
            (failure("Other", "boom"), "FAILED", json!(["Other", "boom"])),
            // The cloud's SendTaskFailure may give neither: `States.ALL` would match it.
            (failure("", ""), "FAILED", json!(["", ""])),
        ];
        for (answer, status, expected) in table {
            let run = Running::start(&s, callback_task(catch.clone()), 1).await;
            let token = run.token(1).await;
            // 256 bits, URL-safe base64.
            assert_eq!(token.len(), 43, "{token}");
            let call = &run.tasks.calls()[0];
            assert_eq!(call.resource, "approver", "FunctionName's function, qualifier dropped");
            assert_eq!(call.input, json!({"token": token, "order": 7}));
            // Waiting: claimed by nobody, holding no lease, until answered.
            tokio::time::sleep(Duration::from_millis(150)).await;
            let waiting = run.row().await;
            assert_eq!(waiting.status, "RUNNING");
            assert!(
                s.wf_claim("another-host", 1000, 10, Some(run.tenant.as_str())).await.unwrap().is_empty(),
                "a waiting execution is not due"
            );
            run.answer(&token, answer.clone()).await.unwrap();
            let row = run.end().await;
            assert_eq!(row.status, status, "{answer:?}: {:?} {:?}", row.error, row.cause);
            match status {
                "SUCCEEDED" => assert_eq!(output(&row), expected, "{answer:?}"),
                _ => assert_eq!(json!([row.error, row.cause]), expected, "{answer:?}"),
            }
            assert_eq!(run.tasks.calls().len(), 1, "the plugin is called once");
            let history = run.history().await;
            for kind in ["TaskScheduled", "TaskSubmitted"] {
                assert!(history.iter().any(|k| k == kind), "{kind} in {history:?}");
            }
            let ended = if matches!(answer, Answer::Success(_)) { "TaskSucceeded" } else { "TaskFailed" };
            assert!(history.iter().any(|k| k == ended), "{ended} in {history:?}");
            // Answered once: a second answer of either kind is refused as the cloud's is.
            for again in [success(json!(1)), failure("X", ""), Answer::Heartbeat] {
                let e = run.answer(&token, again).await.unwrap_err();
                assert!(matches!(e, AnswerError::TaskTimedOut), "{e}");
            }
        }
    })
    .await;
}

store_test!(a_token_answers_only_its_own_tenants_waiting_task);
async fn a_token_answers_only_its_own_tenants_waiting_task(stores: Stores) {
    each_store(stores, |s| async move {
        let run = Running::start(&s, callback_task(json!({})), 1).await;
        let token = run.token(1).await;
        // Tenant B has the token of tenant A's task: it is as unknown to B as a made-up
        // one (TaskDoesNotExist), for every kind of answer, and the task still waits for
        // A's.
        let other = tenant("intruder");
        for answer in [
            success(json!("forged")),
            failure("X", ""),
            Answer::Heartbeat,
        ] {
            let e = run
                .exec
                .answer_task(&other, &token, &answer)
                .await
                .unwrap_err();
            assert!(matches!(e, AnswerError::TaskDoesNotExist), "{e}");
        }
        for made_up in [crate::store::task_tokens::new_token(), format!("{token}x")] {
            let e = run.answer(&made_up, success(json!(1))).await.unwrap_err();
            assert!(matches!(e, AnswerError::TaskDoesNotExist), "{e}");
        }
        // What is not a token at all is InvalidToken, looked up nowhere.
        for not_a_token in [String::new(), "x".repeat(2000), format!("{token}!")] {
            let e = run
                .answer(&not_a_token, success(json!(1)))
                .await
                .unwrap_err();
            assert!(matches!(e, AnswerError::InvalidToken), "{e}");
        }
        // An output that is not JSON is InvalidOutput, as the cloud's.
        let e = run
            .answer(&token, Answer::Success("{not json".into()))
            .await
            .unwrap_err();
        assert!(matches!(e, AnswerError::InvalidOutput(_)), "{e}");
        assert_eq!(run.row().await.status, "RUNNING");
        // The store keeps the token's hash, not the token.
        let hash = crate::store::task_tokens::token_hash(&token);
        assert!(s.wf_token(&hash).await.unwrap().is_some());
        assert!(s.wf_token(&token).await.unwrap().is_none());
        // Too long an error or cause is refused as the cloud refuses it.
        let e = run
            .answer(&token, failure(&"e".repeat(257), ""))
            .await
            .unwrap_err();
        assert!(matches!(e, AnswerError::InvalidOutput(_)), "{e}");
        run.answer(&token, success(json!("real"))).await.unwrap();
        let row = run.end().await;
        assert_eq!(output(&row), json!({"order": 7, "approval": "real"}));
    })
    .await;
}

store_test!(a_token_of_an_ended_execution_is_refused);
async fn a_token_of_an_ended_execution_is_refused(stores: Stores) {
    each_store(stores, |s| async move {
        let run = Running::start(&s, callback_task(json!({})), 1).await;
        let token = run.token(1).await;
        assert!(s.wf_stop(&run.tenant, &run.id, None, None).await.unwrap());
        let e = run.answer(&token, success(json!(1))).await.unwrap_err();
        assert!(matches!(e, AnswerError::TaskTimedOut), "{e}");
        assert_eq!(run.row().await.status, "ABORTED");
    })
    .await;
}

store_test!(timeout_seconds_and_heartbeat_seconds_end_a_waiting_task);
async fn timeout_seconds_and_heartbeat_seconds_end_a_waiting_task(stores: Stores) {
    each_store(stores, |s| async move {
        // No answer within TimeoutSeconds: States.Timeout, which a Retry matches; the
        // retry's call carries a new token and the old one is refused.
        let def = callback_task(json!({
            "TimeoutSeconds": 1,
            "Retry": [{"ErrorEquals": ["States.Timeout"], "MaxAttempts": 1, "IntervalSeconds": 1}]
        }));
        let run = Running::start(&s, def, 2).await;
        let first = run.token(1).await;
        let second = run.token(2).await;
        assert_ne!(first, second);
        let e = run.answer(&first, success(json!(1))).await.unwrap_err();
        assert!(matches!(e, AnswerError::TaskTimedOut), "{e}");
        let row = run.end().await;
        assert_eq!(
            (row.status.as_str(), row.error.as_deref()),
            ("FAILED", Some("States.Timeout"))
        );
        assert!(run.history().await.iter().any(|k| k == "TaskTimedOut"));

        // HeartbeatSeconds without a heartbeat: States.HeartbeatTimeout, caught.
        let def = callback_task(json!({
            "HeartbeatSeconds": 1,
            "TimeoutSeconds": 30,
            "Catch": [{"ErrorEquals": ["States.HeartbeatTimeout"], "Next": "Rejected"}]
        }));
        let run = Running::start(&s, def, 1).await;
        run.token(1).await;
        let row = run.end().await;
        assert_eq!(output(&row), json!("rejected"));

        // Heartbeats keep it waiting past HeartbeatSeconds, until the answer.
        let def = callback_task(json!({"HeartbeatSeconds": 1, "TimeoutSeconds": 30}));
        let run = Running::start(&s, def, 1).await;
        let token = run.token(1).await;
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(400)).await;
            run.answer(&token, Answer::Heartbeat).await.unwrap();
        }
        assert_eq!(
            run.row().await.status,
            "RUNNING",
            "2 s of heartbeats, 1 s apart at most"
        );
        run.answer(&token, success(json!("late"))).await.unwrap();
        let row = run.end().await;
        assert_eq!(output(&row), json!({"order": 7, "approval": "late"}));
    })
    .await;
}

store_test!(the_plugin_call_failing_fails_the_task);
async fn the_plugin_call_failing_fails_the_task(stores: Stores) {
    each_store(stores, |s| async move {
        let tasks = Arc::new(ScriptedTasks::new());
        tasks.script(
            "Approve",
            [Attempt::throw("Lambda.Unknown", "trap: unreachable")],
        );
        let t = tenant("cb");
        let exec = executor(&s, tasks.clone(), &t);
        let started = exec
            .start(
                &t,
                "flow",
                &callback_task(json!({})),
                json!({"order": 1}),
                None,
            )
            .await
            .unwrap();
        let row = exec
            .run_to_end(&t, &started.id, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(row.error.as_deref(), Some("Lambda.Unknown"));
        // Its token is closed with it.
        let token = tasks.calls()[0].input["token"]
            .as_str()
            .unwrap()
            .to_string();
        let e = exec
            .answer_task(&t, &token, &success(json!(1)))
            .await
            .unwrap_err();
        assert!(matches!(e, AnswerError::TaskTimedOut), "{e}");
    })
    .await;
}

store_test!(the_plugin_form_and_the_request_response_lambda_form);
/// The short form: a plugin's name with the suffix, its input the state's `Parameters`;
/// and the Lambda integration without a callback, whose result wraps the plugin's in
/// `Payload` as the cloud's does.
async fn the_plugin_form_and_the_request_response_lambda_form(stores: Stores) {
    each_store(stores, |s| async move {
        let def = json!({"StartAt": "Approve", "States": {"Approve": {
            "Type": "Task", "Resource": "approver.waitForTaskToken",
            "Parameters": {"t.$": "$$.Task.Token"}, "End": true}}});
        let run = Running::start(&s, def, 1).await;
        for _ in 0..500 {
            if !run.tasks.calls().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let call = run.tasks.calls()[0].clone();
        assert_eq!(call.resource, "approver");
        let token = call.input["t"].as_str().unwrap().to_string();
        run.answer(&token, success(json!({"a": 1}))).await.unwrap();
        assert_eq!(output(&run.end().await), json!({"a": 1}));

        let def = json!({"StartAt": "Approve", "States": {"Approve": {
            "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "approver", "Payload.$": "$"},
            "ResultSelector": {"body.$": "$.Payload"}, "End": true}}});
        let run = Running::start(&s, def, 1).await;
        let row = run.end().await;
        assert_eq!(output(&row), json!({"body": "submitted"}));
        assert_eq!(run.tasks.calls()[0].input, json!({"order": 7}));
        assert_eq!(run.tasks.calls()[0].resource, "approver");
    })
    .await;
}

/// A host that stops while an execution waits: the execution is in the store only, and
/// a host started later on the same store takes the answer and finishes it.
#[tokio::test]
async fn a_waiting_execution_survives_a_restart_of_the_host_and_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let (tenant, id, token) = {
        let store = Store::open_sqlite(&path).await.unwrap();
        let run = Running::start(&store, callback_task(json!({"TimeoutSeconds": 60})), 1).await;
        let token = run.token(1).await;
        // Asleep until its timeout, not leased.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let row = run.row().await;
        assert!(
            row.wake_at > crate::store::now_ms() + 50_000,
            "{}",
            row.wake_at
        );
        (run.tenant.clone(), run.id.clone(), token)
    };
    let store = Store::open_sqlite(&path).await.unwrap();
    let exec = executor(&store, Arc::new(ScriptedTasks::new()), &tenant);
    exec.answer_task(&tenant, &token, &success(json!("after restart")))
        .await
        .unwrap();
    let row = exec
        .run_to_end(&tenant, &id, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(row.status, "SUCCEEDED");
    assert_eq!(
        output(&row),
        json!({"order": 7, "approval": "after restart"})
    );
}
