//! `orquesta:plugin/workflow-tasks` (0.1.2): a plugin answers workflow callback tasks
//! (`.waitForTaskToken`) as a Lambda answers them in the cloud, with SendTaskSuccess,
//! SendTaskFailure and SendTaskHeartbeat for a token it was given.
//!
//! Only tokens of the calling tenant's tasks, in the workflows its grant names: another
//! tenant's token is refused exactly as a made-up one (`task-does-not-exist`), so a
//! plugin learns nothing about other tenants' tasks. Every answer is a write to the
//! store, so one invocation may send at most [`ANSWERS_PER_INVOCATION`].

use async_trait::async_trait;

use super::{Caller, CapError, Grant, Grants};
use crate::bindings::types::HostError;
use crate::bindings::workflow_tasks::{Host, TaskError};
use crate::engine::Invocation;
use crate::engine::limits::capability::TASK_ANSWERS_PER_INVOCATION as ANSWERS_PER_INVOCATION;
use crate::store::task_tokens::{self, Answer, AnswerError};

/// The workflows whose tasks a plugin may answer.
pub const WORKFLOW_TASKS: Grant = Grant {
    key: "workflow_tasks",
    names: "workflow",
};

pub const CAPABILITY: super::Capability = super::Capability {
    interface: "workflow-tasks",
    grants: &[WORKFLOW_TASKS],
};

/// Which workflows' tasks a caller may answer, by workflow name.
pub type WorkflowAllowed<'a> = dyn for<'w> Fn(&'w str) -> bool + Sync + 'a;

/// Answers the tenant's callback tasks: the service's executor, or a recorder in the
/// test harness. `workflow_allowed` says which workflows' tasks the caller may answer.
#[async_trait]
pub trait WorkflowTasks: Send + Sync {
    async fn answer(
        &self,
        caller: &Caller<'_>,
        token: &str,
        answer: &Answer,
        workflow_allowed: &WorkflowAllowed<'_>,
    ) -> Result<(), TaskError>;
}

impl From<AnswerError> for TaskError {
    fn from(e: AnswerError) -> Self {
        let text = e.to_string();
        match e {
            AnswerError::InvalidToken => TaskError::InvalidToken(text),
            AnswerError::TaskDoesNotExist => TaskError::TaskDoesNotExist(text),
            AnswerError::TaskTimedOut => TaskError::TaskTimedOut(text),
            AnswerError::InvalidOutput(why) => TaskError::InvalidOutput(why),
            AnswerError::Denied(_) => TaskError::Host(HostError::Denied(text)),
            // The store's own words stay in the host's log, as other capabilities'.
            AnswerError::Store(e) => {
                tracing::warn!(error = %e, "answering a workflow task failed in the store");
                TaskError::Host(HostError::Failed("the store failed".into()))
            }
        }
    }
}

impl From<CapError> for TaskError {
    fn from(e: CapError) -> Self {
        TaskError::Host(e.into())
    }
}

/// Whether `grants` let a plugin answer the tasks of `workflow`.
fn allows(grants: &Grants, workflow: &str) -> bool {
    grants
        .list(WORKFLOW_TASKS)
        .iter()
        .any(|g| g == "*" || g == workflow)
}

/// Task answers one invocation has sent (each a write to the store; capped by
/// `ANSWERS_PER_INVOCATION`).
#[derive(Default)]
struct AnswersSent(u32);

impl Invocation {
    async fn answer_task(&mut self, token: String, answer: Answer) -> Result<(), TaskError> {
        if self.ctx.capabilities.grants.list(WORKFLOW_TASKS).is_empty() {
            return Err(CapError::Denied(
                "no workflow's tasks are granted to this plugin (allow.workflow_tasks)".into(),
            )
            .into());
        }
        let AnswersSent(sent) = self.state.get::<AnswersSent>();
        *sent += 1;
        if *sent > ANSWERS_PER_INVOCATION {
            return Err(CapError::Invalid(format!(
                "at most {ANSWERS_PER_INVOCATION} task answers per invocation"
            ))
            .into());
        }
        // Here too, so the test harness refuses what the service refuses.
        task_tokens::check_answer(&token, &answer)?;
        let caller = self.caller();
        let grants = &self.ctx.capabilities.grants;
        let allowed = |workflow: &str| allows(grants, workflow);
        self.ctx
            .capabilities
            .backends
            .workflow_tasks
            .answer(&caller, &token, &answer, &allowed)
            .await
    }
}

impl Host for Invocation {
    async fn send_task_success(
        &mut self,
        task_token: String,
        output: String,
    ) -> Result<(), TaskError> {
        self.answer_task(task_token, Answer::Success(output)).await
    }

    async fn send_task_failure(
        &mut self,
        task_token: String,
        error: Option<String>,
        cause: Option<String>,
    ) -> Result<(), TaskError> {
        let answer = Answer::Failure {
            error: error.unwrap_or_default(),
            cause: cause.unwrap_or_default(),
        };
        self.answer_task(task_token, answer).await
    }

    async fn send_task_heartbeat(&mut self, task_token: String) -> Result<(), TaskError> {
        self.answer_task(task_token, Answer::Heartbeat).await
    }
}

/// The answer where this host runs no workflows (`orquesta invoke`).
#[async_trait]
impl WorkflowTasks for super::Unavailable {
    async fn answer(
        &self,
        _: &Caller<'_>,
        _: &str,
        _: &Answer,
        _: &WorkflowAllowed<'_>,
    ) -> Result<(), TaskError> {
        Ok(super::unavailable::answer("workflows")?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_names_workflows_or_all() {
        let none = Grants::default();
        let one = Grants::default().with(WORKFLOW_TASKS, &["approvals"]);
        let any = Grants::default().with(WORKFLOW_TASKS, &["*"]);
        assert!(!allows(&none, "approvals"));
        assert!(allows(&one, "approvals") && !allows(&one, "payments"));
        assert!(allows(&any, "payments"));
    }

    #[test]
    fn each_refusal_keeps_its_cloud_name() {
        use TaskError as T;
        fn e(a: AnswerError) -> TaskError {
            a.into()
        }
        assert!(matches!(e(AnswerError::InvalidToken), T::InvalidToken(_)));
        assert!(matches!(
            e(AnswerError::TaskDoesNotExist),
            T::TaskDoesNotExist(_)
        ));
        assert!(matches!(e(AnswerError::TaskTimedOut), T::TaskTimedOut(_)));
        assert!(matches!(
            e(AnswerError::InvalidOutput("big".into())),
            T::InvalidOutput(w) if w == "big"
        ));
        assert!(matches!(
            e(AnswerError::Denied("w".into())),
            T::Host(HostError::Denied(w)) if w.contains("`w`")
        ));
    }
}
