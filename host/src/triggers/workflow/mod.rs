//! The workflow trigger: Task states call the tenant's plugins with a `task` event.

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use crate::app::App;
use crate::bindings::handler::{Event, Response as PluginResponse, TaskInput};
use crate::engine::InvokeError;
use crate::event::response_to_json;
use crate::workflow::errors::{PERMISSIONS, TASK_FAILED, TIMEOUT};
use crate::workflow::{StateError, TaskCall, TaskRunner};

/// The service, reached from the executor's task runner once it exists: the executor is
/// built before the [`App`] that holds it.
pub type AppHandle = Arc<OnceLock<Weak<App>>>;

/// Runs Task states on the tenant's deployed plugins.
pub struct ServiceTasks {
    pub app: AppHandle,
}

impl ServiceTasks {
    fn app(&self) -> Result<Arc<App>, StateError> {
        self.app
            .get()
            .and_then(Weak::upgrade)
            .ok_or_else(|| StateError::new(TASK_FAILED, "the service is stopping"))
    }
}

#[async_trait]
impl TaskRunner for ServiceTasks {
    fn default_timeout(&self, tenant: &str, resource: &str) -> Duration {
        let limit = self
            .app()
            .ok()
            .and_then(|app| app.tenants.get(tenant))
            .and_then(|t| t.plugins.get(resource).map(|p| p.limits.timeout_ms));
        Duration::from_millis(limit.unwrap_or(crate::engine::Limits::default().timeout_ms))
    }

    async fn run(&self, call: TaskCall) -> Result<Value, StateError> {
        let app = self.app()?;
        if crate::triggers::recursion::past_bound(call.depth) {
            crate::triggers::recursion::stopped(&call.tenant, "workflow", &call.resource);
            return Err(StateError::new(
                crate::triggers::recursion::STOPPED,
                format!(
                    "recursive loop stopped: the task would be invocation {} of one chain",
                    call.depth + 1
                ),
            ));
        }
        let runtime = app.tenants.get(&call.tenant).ok_or_else(|| {
            StateError::new(
                TASK_FAILED,
                format!("tenant `{}` is not serving", call.tenant),
            )
        })?;
        let ctx = runtime
            .plugins
            .get(&call.resource)
            .cloned()
            .ok_or_else(|| {
                StateError::new(
                    PERMISSIONS,
                    format!("`{}` is not one of the tenant's plugins", call.resource),
                )
            })?;
        let component = runtime
            .component_of(&call.resource)
            .and_then(|c| app.plugins.get(&c))
            .ok_or_else(|| {
                StateError::new(
                    TASK_FAILED,
                    format!("plugin `{}` is not deployed", call.resource),
                )
            })?;
        let event = Event::Task(TaskInput {
            execution_id: call.execution_id,
            state: call.state,
            input: call.input.to_string(),
            context: call.context.to_string(),
        });
        let outcome = app
            .engine
            .invoke_in_chain(&component, ctx, &event, call.depth)
            .await;
        match outcome {
            Ok(PluginResponse::None) => Ok(Value::Null),
            Ok(response) => {
                response_to_json(&response).map_err(|e| StateError::new(TASK_FAILED, e.to_string()))
            }
            Err(InvokeError::Timeout { limit_ms }) => Err(StateError::new(
                TIMEOUT,
                format!("the plugin ran past its {limit_ms} ms limit"),
            )),
            Err(e) => Err(StateError::new(e.name(), e.cause())),
        }
    }
}

/// Workflow executions: the executor's lease loop, which runs Task states through
/// [`ServiceTasks`].
pub struct Tasks;

impl super::Trigger for Tasks {
    fn name(&self) -> &'static str {
        "workflow"
    }

    fn run(&self, app: Arc<App>, stop: tokio::sync::watch::Receiver<bool>) -> Option<super::Run> {
        let executor = app.services.executor.clone();
        Some(Box::pin(executor.run(stop)))
    }
}
