//! The workflow trigger: Task states call the tenant's plugins with a `task` event.

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use crate::app::App;
use crate::bindings::handler::{Event, Response as PluginResponse, TaskInput};
use crate::capabilities::blob::Blobs;
use crate::engine::InvokeError;
use crate::event::response_to_json;
use crate::workflow::errors::{
    LAMBDA_RESOURCE_NOT_FOUND, LAMBDA_SERVICE_EXCEPTION, LAMBDA_UNKNOWN,
};
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
            .ok_or_else(|| StateError::new(LAMBDA_SERVICE_EXCEPTION, "the service is stopping"))
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
                LAMBDA_SERVICE_EXCEPTION,
                format!("tenant `{}` is not serving", call.tenant),
            )
        })?;
        let ctx = runtime
            .plugins
            .get(&call.resource)
            .cloned()
            .ok_or_else(|| {
                StateError::new(
                    LAMBDA_RESOURCE_NOT_FOUND,
                    format!("`{}` is not one of the tenant's plugins", call.resource),
                )
            })?;
        let component = runtime
            .component_of(&call.resource)
            .and_then(|c| app.plugins.get(&c))
            .ok_or_else(|| {
                StateError::new(
                    LAMBDA_RESOURCE_NOT_FOUND,
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
            Ok(response) => response_to_json(&response)
                .map_err(|e| StateError::new(LAMBDA_UNKNOWN, format!("invalid-output: {e}"))),
            Err(e) => Err(task_error(&e)),
        }
    }

    /// A serving tenant's blobs under its quota, as its plugins and the admin API
    /// write them: a distributed Map reads and writes them.
    fn blobs(&self, tenant: &str) -> Option<Arc<dyn Blobs>> {
        let app = self.app().ok()?;
        let limits = app.tenants.get(tenant)?.config.limits.clone();
        Some(Arc::new(app.services.tenant_blobs(&limits)))
    }
}

/// A failed invocation as a Task's error: the plugin's own typed error as it is (as a
/// Lambda function's error type), and every host error as `Lambda.Unknown`, its
/// orquesta name leading the cause (`trap: ...`, `memory-limit: ...`).
fn task_error(e: &InvokeError) -> StateError {
    match e {
        InvokeError::Plugin { error, cause } => StateError::new(error, cause.clone()),
        other => StateError::new(LAMBDA_UNKNOWN, other.to_string()),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/WORKFLOWS.md, "Host errors in a Task": a plugin's own error keeps its name;
    /// every host error is `Lambda.Unknown`, as the developer guide names a Lambda
    /// function's unhandled errors, out-of-memory errors and timeouts.
    #[test]
    fn host_errors_in_a_task_carry_the_names_of_a_lambda_functions_failures() {
        let table = [
            (
                InvokeError::Plugin {
                    error: "ValidationError".into(),
                    cause: "no id".into(),
                },
                "ValidationError",
                "no id",
            ),
            (
                InvokeError::Trap("unreachable".into()),
                LAMBDA_UNKNOWN,
                "trap: unreachable",
            ),
            (
                InvokeError::MemoryLimit { limit_mb: 64 },
                LAMBDA_UNKNOWN,
                "memory-limit:",
            ),
            (
                InvokeError::Timeout { limit_ms: 500 },
                LAMBDA_UNKNOWN,
                "timeout:",
            ),
            (
                InvokeError::StackOverflow,
                LAMBDA_UNKNOWN,
                "stack-overflow:",
            ),
            (InvokeError::Exited { status: 3 }, LAMBDA_UNKNOWN, "exited:"),
            (
                InvokeError::OutputTooLarge { size: 9, limit: 8 },
                LAMBDA_UNKNOWN,
                "output-too-large:",
            ),
        ];
        for (invoke, name, cause) in table {
            let e = task_error(&invoke);
            assert_eq!(e.error, name, "{invoke}");
            assert!(e.cause.starts_with(cause), "{invoke}: {}", e.cause);
        }
    }
}
