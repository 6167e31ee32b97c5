//! `orquesta:plugin/messaging`: queues, the event bus and workflow executions.

use async_trait::async_trait;

use super::{Caller, CapError, Grant};
use crate::bindings::messaging::{Host, SendOptions};
use crate::bindings::types::HostError;
use crate::engine::Invocation;

/// The tenant's queues, event buses and workflows, each its own allow-list.
pub const QUEUES: Grant = Grant {
    key: "queues",
    names: "queue",
};
pub const BUSES: Grant = Grant {
    key: "buses",
    names: "bus",
};
pub const WORKFLOWS: Grant = Grant {
    key: "workflows",
    names: "workflow",
};

pub const CAPABILITY: super::Capability = super::Capability {
    interface: "messaging",
    grants: &[QUEUES, BUSES, WORKFLOWS],
};

#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingMessage {
    pub queue: String,
    pub body: String,
    pub delay_seconds: u32,
    pub attributes: Vec<(String, String)>,
    pub group_id: Option<String>,
    pub deduplication_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingEvent {
    pub bus: String,
    pub source: String,
    pub detail_type: String,
    /// JSON, checked before it reaches the backend.
    pub detail: String,
}

#[async_trait]
pub trait Messaging: Send + Sync {
    /// Returns the message id.
    async fn send(&self, caller: &Caller<'_>, message: OutgoingMessage)
    -> Result<String, CapError>;
    /// Returns the event id.
    async fn put_event(
        &self,
        caller: &Caller<'_>,
        event: OutgoingEvent,
    ) -> Result<String, CapError>;
    /// Returns the execution id.
    async fn start_execution(
        &self,
        caller: &Caller<'_>,
        workflow: &str,
        input: &str,
        name: Option<&str>,
    ) -> Result<String, CapError>;
}

/// Refuses a message of `size` bytes past the tenant's cap, naming it.
pub fn check_message_size(what: &str, size: usize, max_bytes: usize) -> Result<(), CapError> {
    if size > max_bytes {
        return Err(CapError::Invalid(format!(
            "{what} is at most {max_bytes} bytes (limits.max_message_kb), body and attributes \
             together; got {size}"
        )));
    }
    Ok(())
}

/// A message's own delay: at most `QUEUE_MAX_DELAY_S` (15 minutes), as SQS refuses
/// more; a longer wait belongs in a workflow's `Wait` state or a schedule.
pub fn check_delay(seconds: u32) -> Result<(), CapError> {
    use crate::engine::limits::capability::QUEUE_MAX_DELAY_S;
    if seconds > QUEUE_MAX_DELAY_S {
        return Err(CapError::Invalid(format!(
            "delay_seconds is at most {QUEUE_MAX_DELAY_S} (15 minutes), got {seconds}"
        )));
    }
    Ok(())
}

fn check_json(what: &str, text: &str) -> Result<(), CapError> {
    serde_json::from_str::<serde::de::IgnoredAny>(text)
        .map(|_| ())
        .map_err(|e| CapError::Invalid(format!("{what} must be JSON: {e}")))
}

impl Host for Invocation {
    async fn send(
        &mut self,
        queue: String,
        body: String,
        options: SendOptions,
    ) -> Result<String, HostError> {
        self.ctx.capabilities.grants.check(QUEUES, &queue)?;
        // Here too, so `orquesta test` refuses what the service refuses.
        check_delay(options.delay_seconds)?;
        let message = OutgoingMessage {
            queue,
            body,
            delay_seconds: options.delay_seconds,
            attributes: options.attributes,
            group_id: options.group_id,
            deduplication_id: options.deduplication_id,
        };
        let caller = self.caller();
        Ok(self
            .ctx
            .capabilities
            .backends
            .messaging
            .send(&caller, message)
            .await?)
    }

    async fn put_event(
        &mut self,
        bus: String,
        source: String,
        detail_type: String,
        detail: String,
    ) -> Result<String, HostError> {
        self.ctx.capabilities.grants.check(BUSES, &bus)?;
        check_json("event detail", &detail)?;
        let event = OutgoingEvent {
            bus,
            source,
            detail_type,
            detail,
        };
        let caller = self.caller();
        Ok(self
            .ctx
            .capabilities
            .backends
            .messaging
            .put_event(&caller, event)
            .await?)
    }

    async fn start_execution(
        &mut self,
        workflow: String,
        input: String,
        name: Option<String>,
    ) -> Result<String, HostError> {
        self.ctx.capabilities.grants.check(WORKFLOWS, &workflow)?;
        check_json("execution input", &input)?;
        let caller = self.caller();
        let messaging = &self.ctx.capabilities.backends.messaging;
        Ok(messaging
            .start_execution(&caller, &workflow, &input, name.as_deref())
            .await?)
    }
}

/// The answer where this host has no messaging backend.
#[async_trait]
impl Messaging for super::Unavailable {
    async fn send(&self, _: &Caller<'_>, _: OutgoingMessage) -> Result<String, CapError> {
        super::unavailable::answer("messaging")
    }
    async fn put_event(&self, _: &Caller<'_>, _: OutgoingEvent) -> Result<String, CapError> {
        super::unavailable::answer("the event bus")
    }
    async fn start_execution(
        &self,
        _: &Caller<'_>,
        _: &str,
        _: &str,
        _: Option<&str>,
    ) -> Result<String, CapError> {
        super::unavailable::answer("workflows")
    }
}
