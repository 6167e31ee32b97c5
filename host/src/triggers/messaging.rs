//! The `notify`, `messaging` and `workflow-tasks` capabilities' backend for one tenant:
//! each call is handed to the trigger it starts (a topic, a queue, a bus, a workflow) or
//! answers (a workflow's callback task).

use async_trait::async_trait;
use serde_json::Value;

use super::fanout::TenantFanout;
use crate::bindings::workflow_tasks::TaskError;
use crate::capabilities::messaging::{Messaging, OutgoingEvent, OutgoingMessage};
use crate::capabilities::notify::{Notifier, Publication};
use crate::capabilities::workflow_tasks::{WorkflowAllowed, WorkflowTasks};
use crate::capabilities::{Caller, CapError};
use crate::store::task_tokens::Answer;

#[async_trait]
impl Notifier for TenantFanout {
    async fn publish(
        &self,
        caller: &Caller<'_>,
        publication: Publication,
    ) -> Result<String, CapError> {
        crate::triggers::topic::publish(self, caller, publication).await
    }
}

#[async_trait]
impl Messaging for TenantFanout {
    async fn send(
        &self,
        caller: &Caller<'_>,
        message: OutgoingMessage,
    ) -> Result<String, CapError> {
        let queue = message.queue.clone();
        crate::triggers::queue::send::send(
            &self.store,
            &self.wakes,
            &self.tenant,
            &self.queues,
            &queue,
            self.sending(caller.depth),
            message,
        )
        .await
    }

    async fn put_event(
        &self,
        caller: &Caller<'_>,
        event: OutgoingEvent,
    ) -> Result<String, CapError> {
        crate::triggers::bus::put_event(self, caller, event).await
    }

    async fn start_execution(
        &self,
        caller: &Caller<'_>,
        workflow: &str,
        input: &str,
        name: Option<&str>,
    ) -> Result<String, CapError> {
        let input: Value = serde_json::from_str(input)
            .map_err(|e| CapError::Invalid(format!("execution input must be JSON: {e}")))?;
        self.to_workflow(workflow, input, name, caller.depth).await
    }
}

#[async_trait]
impl WorkflowTasks for TenantFanout {
    async fn answer(
        &self,
        _: &Caller<'_>,
        token: &str,
        answer: &Answer,
        workflow_allowed: &WorkflowAllowed<'_>,
    ) -> Result<(), TaskError> {
        Ok(self
            .executor
            .answer_task_in(&self.tenant, token, answer, workflow_allowed)
            .await?)
    }
}
