//! `orquesta:plugin/notify`: publish to the tenant's topics.

use async_trait::async_trait;

use super::{Caller, CapError, Grant};
use crate::bindings::notify::Host;
use crate::bindings::types::HostError;
use crate::engine::Invocation;

/// The tenant's topics.
pub const TOPICS: Grant = Grant {
    key: "topics",
    names: "topic",
};

pub const CAPABILITY: super::Capability = super::Capability {
    interface: "notify",
    grants: &[TOPICS],
};

/// A message for a topic.
#[derive(Debug, Clone, PartialEq)]
pub struct Publication {
    pub topic: String,
    pub subject: Option<String>,
    pub body: String,
    pub attributes: Vec<(String, String)>,
}

/// Fans a publication out to the topic's subscriptions. Returns the message id.
#[async_trait]
pub trait Notifier: Send + Sync {
    async fn publish(
        &self,
        caller: &Caller<'_>,
        publication: Publication,
    ) -> Result<String, CapError>;
}

impl Host for Invocation {
    async fn publish(
        &mut self,
        topic: String,
        subject: Option<String>,
        body: String,
        attributes: Vec<(String, String)>,
    ) -> Result<String, HostError> {
        self.ctx.capabilities.grants.check(TOPICS, &topic)?;
        let publication = Publication {
            topic,
            subject,
            body,
            attributes,
        };
        let caller = self.caller();
        Ok(self
            .ctx
            .capabilities
            .backends
            .notify
            .publish(&caller, publication)
            .await?)
    }
}

/// The answer where this host has no notify backend.
#[async_trait]
impl Notifier for super::Unavailable {
    async fn publish(&self, _: &Caller<'_>, _: Publication) -> Result<String, CapError> {
        super::unavailable::answer("notify")
    }
}
