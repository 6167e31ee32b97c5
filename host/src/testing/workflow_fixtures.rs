//! Workflow fixtures for `orquesta test DEFINITION.asl.json FIXTURES.toml`: each case runs
//! the state machine on the real executor over a fresh in-memory store, with every Task's
//! result scripted per attempt (return or throw) and Wait states and retry pauses taking
//! no time, then compares the status, output or error, the path of states entered and
//! the inputs the tasks received.
//!
//! ```toml
//! [[case]]
//! name = "a declined card is retried once"
//! input = { order = "A1" }
//! [case.tasks]
//! Charge = [{ throw = { error = "PaymentDeclined", cause = "expired" } }, { return = { charged = true } }]
//! [case.expect]
//! output = { charged = true }
//! path = ["Charge", "Done"]
//! ```
//! See `docs/TESTING.md` for every field.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::fixtures::CaseResult;
use super::matching::{MatchMode, matches, subset};
use crate::capabilities::blob::{BlobBucket, Blobs as _};
use crate::store::task_tokens::Answer;
use crate::store::workflow::{ExecutionRow, FAILED, RUNNING, SUCCEEDED};
use crate::store::{FsBlobs, Store};
use crate::tenants::ConfigError;
use crate::workflow::scripted::{Attempt, ScriptedTasks};
use crate::workflow::{Executor, ExecutorOptions, Machine, StateError};

/// Longest one case may run. Waits take no time here, so only a scripted delay or a
/// loop that never ends gets near it.
const CASE_LIMIT: Duration = Duration::from_secs(60);
/// Skips to a time limit in a row after which, with nothing new in the execution's
/// history, it is taken to wait forever for an answer.
const MAX_FRUITLESS_SKIPS: u32 = 200;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowFixtures {
    /// The names the execution runs as (`$$.StateMachine.Name`, the tenant).
    #[serde(default = "default_workflow")]
    pub workflow: String,
    #[serde(default = "default_tenant")]
    pub tenant: String,
    #[serde(default, rename = "case")]
    pub cases: Vec<WorkflowCase>,
}

fn default_workflow() -> String {
    "workflow".into()
}

fn default_tenant() -> String {
    "test".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowCase {
    pub name: String,
    /// The execution's input; `{}` when absent.
    #[serde(default)]
    pub input: Option<Value>,
    /// Per Task state (by state name, in any branch or iterator), the answers of its
    /// attempts in order.
    #[serde(default)]
    pub tasks: BTreeMap<String, Vec<ScriptedAnswer>>,
    /// Objects in the tenant's blob buckets before the run, for a distributed Map's
    /// `ItemReader` (its `ResultWriter` writes beside them).
    #[serde(default)]
    pub blobs: Vec<FixtureBlob>,
    #[serde(default)]
    pub expect: WorkflowExpect,
}

/// An object in one of the tenant's blob buckets: its text.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureBlob {
    pub bucket: String,
    pub key: String,
    pub text: String,
}

/// One attempt's answer: exactly one of `return`, `throw` and `no_answer`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedAnswer {
    #[serde(default, rename = "return")]
    pub returns: Option<Value>,
    #[serde(default)]
    pub throw: Option<Thrown>,
    /// How long the task takes before answering (to exercise `TimeoutSeconds`).
    #[serde(default)]
    pub delay_ms: u64,
    /// Answers every later attempt too (Map items, loops).
    #[serde(default)]
    pub repeat: bool,
    /// A callback task's token is never answered: its `TimeoutSeconds` or
    /// `HeartbeatSeconds` fire (at once: fixtures take no time).
    #[serde(default)]
    pub no_answer: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thrown {
    pub error: String,
    #[serde(default)]
    pub cause: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowExpect {
    /// `SUCCEEDED`, `FAILED` or `TIMED_OUT`. Default: `FAILED` when `error` is given,
    /// `SUCCEEDED` otherwise.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub output: Option<Value>,
    #[serde(default, rename = "match")]
    pub mode: MatchMode,
    /// The execution's error name (`States.Timeout`, a plugin's `PaymentDeclined`, ...).
    #[serde(default)]
    pub error: Option<String>,
    /// Text the execution's cause must contain.
    #[serde(default)]
    pub cause: Option<String>,
    /// The top-level states entered, in order.
    #[serde(default)]
    pub path: Option<Vec<String>>,
    /// The task calls made, in order and number: `{ state, resource, input }` each, every
    /// one matched as a subset.
    #[serde(default)]
    pub calls: Option<Vec<Value>>,
    /// The execution's variables at its end (`Assign`), matched as a subset: the names
    /// given must have these values; others may exist.
    #[serde(default)]
    pub variables: Option<serde_json::Map<String, Value>>,
}

impl ScriptedAnswer {
    fn attempt(&self) -> Result<Attempt, String> {
        let outcome = match (&self.returns, &self.throw, self.no_answer) {
            (Some(value), None, false) => Ok(value.clone()),
            (None, Some(t), false) => Err(StateError::new(&t.error, &t.cause)),
            (None, None, true) => Ok(Value::Null),
            _ => {
                return Err("give exactly one of `return`, `throw` and `no_answer = true`".into());
            }
        };
        Ok(Attempt {
            outcome,
            delay: Duration::from_millis(self.delay_ms),
            repeat: self.repeat,
            no_answer: self.no_answer,
        })
    }
}

impl WorkflowFixtures {
    pub fn load(path: &Path) -> Result<Self, ConfigError<String>> {
        Self::parse(path, &crate::tenants::read::<String>(path)?)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError<String>> {
        let file = crate::tenants::parse_toml::<WorkflowFixtures, String>(path, text)?;
        if file.cases.is_empty() {
            return Err(ConfigError::new(
                path,
                "no [[case]] in the file".to_string(),
            ));
        }
        for case in &file.cases {
            for (state, answers) in &case.tasks {
                for (i, answer) in answers.iter().enumerate() {
                    answer.attempt().map_err(|reason| {
                        ConfigError::new(
                            path,
                            format!("case {:?}: tasks.{state}[{i}]: {reason}", case.name),
                        )
                    })?;
                }
            }
            if let Some(status) = &case.expect.status
                && ![SUCCEEDED, FAILED, "TIMED_OUT"].contains(&status.as_str())
            {
                return Err(ConfigError::new(
                    path,
                    format!(
                        "case {:?}: expect.status {status:?} is not SUCCEEDED, FAILED or TIMED_OUT",
                        case.name
                    ),
                ));
            }
        }
        Ok(file)
    }

    /// Runs every case of `definition` (checked first: an invalid definition is an error,
    /// not a failed case).
    pub async fn run(&self, definition: &Value) -> anyhow::Result<Vec<CaseResult>> {
        Machine::parse(definition).map_err(|e| anyhow::anyhow!("invalid definition: {e}"))?;
        let mut results = Vec::with_capacity(self.cases.len());
        for case in &self.cases {
            results.push(CaseResult {
                name: case.name.clone(),
                failures: self.run_case(definition, case).await?,
            });
        }
        Ok(results)
    }

    /// Works on the execution until it ends, sending each callback task's scripted
    /// answer for its token (SendTaskSuccess / SendTaskFailure) once its plugin was
    /// called; an answer refused is a failure of the case.
    async fn run_answering(
        &self,
        executor: &Executor,
        tasks: &ScriptedTasks,
        id: &str,
    ) -> anyhow::Result<(ExecutionRow, Vec<String>)> {
        let mut failures = Vec::new();
        let deadline = tokio::time::Instant::now() + CASE_LIMIT;
        let mut fruitless = 0;
        loop {
            let row = executor
                .store()
                .wf_get(&self.tenant, id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("execution {id} is gone"))?;
            if row.status != RUNNING || tokio::time::Instant::now() >= deadline {
                return Ok((row, failures));
            }
            for (token, outcome) in tasks.take_callback_answers() {
                let answer = match outcome {
                    Ok(output) => Answer::Success(output.to_string()),
                    Err(e) => Answer::Failure {
                        error: e.error,
                        cause: e.cause,
                    },
                };
                if let Err(e) = executor.answer_task(&self.tenant, &token, &answer).await {
                    failures.push(format!("tasks: a callback answer was refused: {e}"));
                }
            }
            if executor.work_once().await? > 0 {
                continue;
            }
            // Nothing is due and no answer is coming: what sleeps waits on a callback
            // task nobody answers, so time skips to its first limit.
            let before = executor.store().wf_history(id).await?.len();
            if executor.store().wf_wake_sleeping(id).await? > 0 {
                while executor.work_once().await? > 0 {}
                // A task with no limit goes back to sleep, and nothing happens: after
                // many skips in a row with nothing new, it waits forever. (Map items
                // and branches move on without the root's history growing, so one
                // fruitless skip does not prove it.)
                let grew = executor.store().wf_history(id).await?.len() != before;
                fruitless = if grew { 0 } else { fruitless + 1 };
                if fruitless >= MAX_FRUITLESS_SKIPS {
                    failures.push(
                        "tasks: the execution waits for a callback answer that never comes, \
                         with no TimeoutSeconds or HeartbeatSeconds to end it"
                            .to_string(),
                    );
                    return Ok((row, failures));
                }
                continue;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn run_case(
        &self,
        definition: &Value,
        case: &WorkflowCase,
    ) -> anyhow::Result<Vec<String>> {
        let store = Store::in_memory().await?;
        let dir = tempfile::tempdir()?;
        let blobs = FsBlobs::new(dir.path().to_path_buf());
        for b in &case.blobs {
            let at = BlobBucket {
                tenant: self.tenant.clone(),
                bucket: b.bucket.clone(),
            };
            crate::capabilities::check_name("blob bucket", &b.bucket)?;
            crate::capabilities::blob::check_object(&b.key, b.text.len())?;
            blobs.put(&at, &b.key, b.text.as_bytes()).await?;
        }
        let tasks = Arc::new(ScriptedTasks::answering_callbacks().with_blobs(Arc::new(blobs)));
        for (state, answers) in &case.tasks {
            let attempts: Result<Vec<Attempt>, String> =
                answers.iter().map(ScriptedAnswer::attempt).collect();
            tasks.script(state, attempts.map_err(anyhow::Error::msg)?);
        }
        let executor = Executor::new(
            store.clone(),
            tasks.clone(),
            ExecutorOptions {
                concurrency: 8,
                skip_waits: true,
                tenant: None,
            },
        );
        let input = case.input.clone().unwrap_or_else(|| json!({}));
        let started = executor
            .start(&self.tenant, &self.workflow, definition, input, None)
            .await?;
        let (row, mut failures) = self.run_answering(&executor, &tasks, &started.id).await?;
        let history = store.wf_history(&row.id).await?;
        let path: Vec<String> = history
            .iter()
            .filter(|e| e.event.kind == "StateEntered")
            .filter_map(|e| e.event.state.clone())
            .collect();
        let calls: Vec<Value> = tasks
            .calls()
            .into_iter()
            .map(|c| json!({ "state": c.state, "resource": c.resource, "input": c.input }))
            .collect();

        let expect = &case.expect;
        failures.extend(tasks.unscripted().into_iter().map(|(state, attempt)| {
            format!("tasks: no answer was scripted for attempt {attempt} of {state}")
        }));
        let wanted_status = expect
            .status
            .as_deref()
            .unwrap_or(if expect.error.is_some() {
                FAILED
            } else {
                SUCCEEDED
            });
        let error = row.error.clone().unwrap_or_default();
        let cause = row.cause.clone().unwrap_or_default();
        if row.status != wanted_status {
            let ended = if row.status == SUCCEEDED {
                format!("output {}", row.output.as_deref().unwrap_or("null"))
            } else {
                format!("error `{error}`: {cause}")
            };
            failures.push(format!(
                "status:\n  expected: {wanted_status}\n  actual:   {} ({ended})",
                row.status
            ));
        }
        if let Some(expected) = &expect.output {
            let actual: Value = row
                .output
                .as_deref()
                .and_then(|o| serde_json::from_str(o).ok())
                .unwrap_or(Value::Null);
            if !matches(expect.mode, expected, &actual) {
                failures.push(format!(
                    "output ({:?} match):\n  expected: {expected}\n  actual:   {actual}",
                    expect.mode
                ));
            }
        }
        if let Some(expected) = &expect.error
            && *expected != error
        {
            failures.push(format!(
                "error:\n  expected: `{expected}`\n  actual:   `{error}` ({cause})"
            ));
        }
        if let Some(expected) = &expect.cause
            && !cause.contains(expected.as_str())
        {
            failures.push(format!(
                "error cause:\n  expected to contain: {expected}\n  actual: {cause}"
            ));
        }
        if let Some(expected) = &expect.path
            && *expected != path
        {
            failures.push(format!(
                "path:\n  expected: {}\n  actual:   {}",
                expected.join(" -> "),
                path.join(" -> ")
            ));
        }
        if let Some(expected) = &expect.variables {
            let actual = Value::Object(crate::workflow::execution_variables(&row));
            let expected = Value::Object(expected.clone());
            if !subset(&expected, &actual) {
                failures.push(format!(
                    "variables (subset match):\n  expected: {expected}\n  actual:   {actual}"
                ));
            }
        }
        if let Some(expected) = &expect.calls {
            let ok = expected.len() == calls.len()
                && expected.iter().zip(&calls).all(|(e, a)| subset(e, a));
            if !ok {
                failures.push(format!(
                    "calls:\n  expected: {}\n  actual:   {}",
                    Value::Array(expected.clone()),
                    Value::Array(calls)
                ));
            }
        }
        Ok(failures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFINITION: &str = r#"{
      "StartAt": "Charge",
      "States": {
        "Charge": {"Type": "Task", "Resource": "payments",
                   "Parameters": {"order.$": "$.order"},
                   "Retry": [{"ErrorEquals": ["PaymentDeclined"], "MaxAttempts": 1}],
                   "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Refused"}],
                   "Next": "Rest"},
        "Rest": {"Type": "Wait", "Seconds": 86400, "Next": "Done"},
        "Done": {"Type": "Succeed"},
        "Refused": {"Type": "Fail", "Error": "Refused", "Cause": "the card was declined"}
      }
    }"#;

    async fn run(fixtures: &str) -> Vec<CaseResult> {
        let file = WorkflowFixtures::parse(Path::new("f.toml"), fixtures).unwrap();
        file.run(&serde_json::from_str(DEFINITION).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn cases_pass_when_the_run_matches_and_fail_with_each_difference() {
        let results = run(r#"
[[case]]
name = "declined once, then charged"
input = { order = "A1" }
[case.tasks]
Charge = [{ throw = { error = "PaymentDeclined", cause = "expired" } }, { return = { charged = true } }]
[case.expect]
output = { charged = true }
path = ["Charge", "Rest", "Done"]
calls = [{ state = "Charge", input = { order = "A1" } }, { resource = "payments" }]

[[case]]
name = "declined twice is refused"
input = { order = "A2" }
[case.tasks]
Charge = [{ throw = { error = "PaymentDeclined" }, repeat = true }]
[case.expect]
error = "Refused"
cause = "declined"
path = ["Charge", "Refused"]

[[case]]
name = "wrong on every count"
input = { order = "B2" }
[case.tasks]
Charge = [{ return = { charged = false } }]
[case.expect]
output = { charged = true }
path = ["Charge", "Done"]
calls = []

[[case]]
name = "expects a failure that does not come"
input = { order = "C3" }
[case.tasks]
Charge = [{ return = {} }]
[case.expect]
error = "Refused"
"#)
        .await;
        assert!(results[0].passed(), "{:?}", results[0].failures);
        assert!(results[1].passed(), "{:?}", results[1].failures);
        let wrong = results[2].failures.join("\n");
        assert_eq!(results[2].failures.len(), 3, "{wrong}");
        assert!(
            wrong.contains("output") && wrong.contains("\"charged\":false"),
            "{wrong}"
        );
        assert!(wrong.contains("Charge -> Rest -> Done"), "{wrong}");
        assert!(wrong.contains("calls"), "{wrong}");
        let missing = results[3].failures.join("\n");
        assert!(
            missing.contains("expected: FAILED") && missing.contains("SUCCEEDED"),
            "{missing}"
        );
        assert!(missing.contains("expected: `Refused`"), "{missing}");
    }

    /// A callback task's scripted answer is its token's: SendTaskSuccess with `return`,
    /// SendTaskFailure with `throw`, caught as the cloud's would be.
    #[tokio::test]
    async fn callback_tasks_are_answered_per_token_from_the_script() {
        let definition = json!({"StartAt": "Approve", "States": {
            "Approve": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {"FunctionName": "approver", "Payload": {"token.$": "$$.Task.Token", "id.$": "$.id"}},
                "ResultPath": "$.approval",
                "Retry": [{"ErrorEquals": ["Busy"], "MaxAttempts": 1}],
                "Catch": [{"ErrorEquals": ["Rejected"], "Next": "No"}], "Next": "Yes"},
            "Yes": {"Type": "Succeed"},
            "No": {"Type": "Fail", "Error": "NotApproved"}
        }});
        let file = WorkflowFixtures::parse(
            Path::new("f.toml"),
            r#"
[[case]]
name = "approved after one busy answer"
input = { id = 1 }
[case.tasks]
Approve = [{ throw = { error = "Busy" } }, { return = { by = "ana" } }]
[case.expect]
output = { id = 1, approval = { by = "ana" } }
calls = [{ state = "Approve", resource = "approver", input = { id = 1 } }, { input = { id = 1 } }]

[[case]]
name = "rejected"
input = { id = 2 }
[case.tasks]
Approve = [{ throw = { error = "Rejected", cause = "no budget" } }]
[case.expect]
error = "NotApproved"
path = ["Approve", "No"]
"#,
        )
        .unwrap();
        let results = file.run(&definition).await.unwrap();
        for r in &results {
            assert!(r.passed(), "{}: {:?}", r.name, r.failures);
        }
    }

    /// A distributed Map reads a case's blobs: CSV rows, as strings, to its tasks.
    #[tokio::test]
    async fn a_cases_blobs_feed_a_distributed_maps_item_reader() {
        let definition = json!({"StartAt": "Rows", "States": {"Rows": {"Type": "Map",
            "ItemReader": {"Resource": "arn:aws:states:::s3:getObject",
                "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
                "Parameters": {"Bucket": "in", "Key": "rows.csv"}},
            "MaxConcurrency": 1,
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "Row", "States": {"Row": {"Type": "Task", "Resource": "rows", "End": true}}},
            "End": true}}});
        let file = WorkflowFixtures::parse(
            Path::new("f.toml"),
            r#"
[[case]]
name = "two rows"
blobs = [{ bucket = "in", key = "rows.csv", text = "sku,qty\nA,1\nB,2\n" }]
[case.tasks]
Row = [{ return = "ok", repeat = true }]
[case.expect]
output = ["ok", "ok"]
calls = [{ input = { sku = "A", qty = "1" } }, { input = { sku = "B", qty = "2" } }]

[[case]]
name = "no such object"
[case.expect]
error = "States.ItemReaderFailed"
cause = "rows.csv"
"#,
        )
        .unwrap();
        let results = file.run(&definition).await.unwrap();
        for r in &results {
            assert!(r.passed(), "{}: {:?}", r.name, r.failures);
        }
    }

    /// The example of docs/TESTING.md: a callback task answered, failed, and never
    /// answered (its HeartbeatSeconds fire), with the variables each case ends with.
    #[tokio::test]
    async fn the_approval_example_passes() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/workflows");
        let definition: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("approval.asl.json")).unwrap())
                .unwrap();
        let file = WorkflowFixtures::load(&dir.join("approval.fixtures.toml")).unwrap();
        let results = file.run(&definition).await.unwrap();
        assert_eq!(results.len(), 3);
        for r in &results {
            assert!(r.passed(), "{}: {:?}", r.name, r.failures);
        }
    }

    fn waiting(limits: Value, top: Value) -> Value {
        let mut ask = json!({"Type": "Task", "Resource": "approver.waitForTaskToken",
            "Parameters": {"token.$": "$$.Task.Token"}, "End": true});
        for (k, v) in limits.as_object().unwrap() {
            ask[k] = v.clone();
        }
        let mut def = json!({"StartAt": "Ask", "States": {"Ask": ask}});
        for (k, v) in top.as_object().unwrap() {
            def[k] = v.clone();
        }
        def
    }

    async fn unanswered(definition: Value, expect: &str) -> CaseResult {
        let text = format!(
            "[[case]]\nname = \"x\"\n[case.tasks]\nAsk = [{{ no_answer = true }}]\n[case.expect]\n{expect}\n"
        );
        let file = WorkflowFixtures::parse(Path::new("f.toml"), &text).unwrap();
        let started = std::time::Instant::now();
        let mut results = file.run(&definition).await.unwrap();
        // A day's TimeoutSeconds takes no time here.
        assert!(started.elapsed() < Duration::from_secs(20));
        results.remove(0)
    }

    /// An unanswered token meets the first of its limits: TimeoutSeconds,
    /// HeartbeatSeconds, or the execution's TimeoutSeconds, whichever comes first.
    #[tokio::test]
    async fn an_unanswered_callback_meets_its_first_time_limit() {
        let cases = [
            (
                json!({"TimeoutSeconds": 86400}),
                json!({}),
                "error = \"States.Timeout\"",
            ),
            (
                json!({"TimeoutSeconds": 86400, "HeartbeatSeconds": 3600}),
                json!({}),
                "error = \"States.HeartbeatTimeout\"",
            ),
            (
                json!({"TimeoutSeconds": 600}),
                json!({"TimeoutSeconds": 86400}),
                "status = \"FAILED\"\nerror = \"States.Timeout\"",
            ),
            (
                json!({"HeartbeatSeconds": 3600}),
                json!({"TimeoutSeconds": 60}),
                "status = \"TIMED_OUT\"\nerror = \"States.Timeout\"",
            ),
        ];
        for (limits, top, expect) in cases {
            let r = unanswered(waiting(limits.clone(), top), expect).await;
            assert!(r.passed(), "{limits}: {:?}", r.failures);
        }
        // The wrong expectation fails the case: the limits are really compared.
        let r = unanswered(
            waiting(
                json!({"TimeoutSeconds": 86400, "HeartbeatSeconds": 3600}),
                json!({}),
            ),
            "error = \"States.Timeout\"",
        )
        .await;
        assert!(!r.passed());
    }

    #[tokio::test]
    async fn an_unanswered_callback_with_no_limit_is_reported_not_waited_for() {
        let r = unanswered(waiting(json!({}), json!({})), "status = \"SUCCEEDED\"").await;
        let text = r.failures.join("\n");
        assert!(text.contains("never comes"), "{text}");
    }

    #[tokio::test]
    async fn no_answer_on_a_plain_task_is_named() {
        let r = unanswered(
            json!({"StartAt": "Ask", "States": {"Ask": {"Type": "Task", "Resource": "approver", "End": true}}}),
            "error = \"orquesta.NoAnswerOnPlainTask\"",
        )
        .await;
        assert!(r.passed(), "{:?}", r.failures);
    }

    #[tokio::test]
    async fn variables_are_matched_as_a_subset_at_the_end() {
        let definition = json!({"StartAt": "A", "States": {
            "A": {"Type": "Pass", "Assign": {"x": 1, "y": {"z": [1, 2]}}, "Next": "B"},
            "B": {"Type": "Pass", "Assign": {"x.$": "States.MathAdd($x, 1)"}, "End": true}
        }});
        let file = WorkflowFixtures::parse(
            Path::new("f.toml"),
            r#"
[[case]]
name = "right"
[case.expect]
variables = { x = 2, y = { z = [1, 2] } }

[[case]]
name = "only some"
[case.expect]
variables = { x = 2 }

[[case]]
name = "wrong"
[case.expect]
variables = { x = 1, w = true }
"#,
        )
        .unwrap();
        let results = file.run(&definition).await.unwrap();
        assert!(results[0].passed(), "{:?}", results[0].failures);
        assert!(results[1].passed(), "{:?}", results[1].failures);
        let wrong = results[2].failures.join("\n");
        assert!(
            wrong.contains("variables") && wrong.contains("\"x\":2"),
            "{wrong}"
        );
    }

    #[tokio::test]
    async fn an_unscripted_attempt_fails_the_execution_visibly() {
        let results = run(r#"
[[case]]
name = "nothing scripted"
input = { order = "A1" }
[case.expect]
error = "Refused"
"#)
        .await;
        // The Catch hides the error from the execution, not from the report.
        let text = results[0].failures.join("\n");
        assert_eq!(results[0].failures.len(), 1, "{text}");
        assert!(
            text.contains("no answer was scripted for attempt 1 of Charge"),
            "{text}"
        );
    }

    #[test]
    fn bad_fixture_files_are_refused_with_the_reason() {
        let bad = [
            (
                "[[case]]\nname = \"x\"\n[case.tasks]\nCharge = [{}]\n",
                "exactly one of",
            ),
            (
                "[[case]]\nname = \"x\"\n[case.tasks]\nCharge = [{ return = 1, throw = { error = \"E\" } }]\n",
                "exactly one of",
            ),
            (
                "[[case]]\nname = \"x\"\n[case.tasks]\nCharge = [{ return = 1, no_answer = true }]\n",
                "exactly one of",
            ),
            (
                "[[case]]\nname = \"x\"\n[case.expect]\nstatus = \"DONE\"\n",
                "expect.status",
            ),
            ("[[case]]\nname = \"x\"\nimput = {}\n", "unknown field"),
            ("workflow = \"w\"\n", "no [[case]]"),
        ];
        for (text, reason) in bad {
            let err = WorkflowFixtures::parse(Path::new("f.toml"), text).unwrap_err();
            assert!(err.to_string().contains(reason), "{text}: {err}");
        }
    }

    #[tokio::test]
    async fn an_invalid_definition_is_an_error_not_a_failed_case() {
        let file =
            WorkflowFixtures::parse(Path::new("f.toml"), "[[case]]\nname = \"x\"\n").unwrap();
        let err = file
            .run(&json!({"StartAt": "Nowhere", "States": {"A": {"Type": "Succeed"}}}))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("invalid definition"), "{err}");
    }
}
