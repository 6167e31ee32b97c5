//! The backend of a capability this host does not provide: every call answers
//! `unavailable`, so a plugin can handle the absence instead of failing to load.

use async_trait::async_trait;

use super::blob::{BlobBucket, Blobs};
use super::http::{OutboundHttp, Request, Response};
use super::kv::{Entry, KeyPage, KeyValue, Namespace};
use super::messaging::{Messaging, OutgoingEvent, OutgoingMessage};
use super::notify::{Notifier, Publication};
use super::sql::{Rows, SqlDatabases, SqlValue};
use super::{Caller, CapError};

pub struct Unavailable;

fn unavailable<T>(what: &str) -> Result<T, CapError> {
    Err(CapError::Unavailable(format!(
        "{what} is not configured on this host"
    )))
}

#[async_trait]
impl KeyValue for Unavailable {
    async fn get(&self, _: &Namespace, _: &str) -> Result<Option<Entry>, CapError> {
        unavailable("kv")
    }
    async fn set(&self, _: &Namespace, _: &str, _: &[u8], _: Option<u64>) -> Result<u64, CapError> {
        unavailable("kv")
    }
    async fn delete(&self, _: &Namespace, _: &str) -> Result<bool, CapError> {
        unavailable("kv")
    }
    async fn list(
        &self,
        _: &Namespace,
        _: &str,
        _: Option<&str>,
        _: u32,
    ) -> Result<KeyPage, CapError> {
        unavailable("kv")
    }
    async fn compare_and_swap(
        &self,
        _: &Namespace,
        _: &str,
        _: u64,
        _: &[u8],
        _: Option<u64>,
    ) -> Result<Option<u64>, CapError> {
        unavailable("kv")
    }
    async fn increment(&self, _: &Namespace, _: &str, _: i64) -> Result<i64, CapError> {
        unavailable("kv")
    }
}

#[async_trait]
impl Blobs for Unavailable {
    async fn get(&self, _: &BlobBucket, _: &str) -> Result<Option<Vec<u8>>, CapError> {
        unavailable("blob")
    }
    async fn put(&self, _: &BlobBucket, _: &str, _: &[u8]) -> Result<(), CapError> {
        unavailable("blob")
    }
    async fn delete(&self, _: &BlobBucket, _: &str) -> Result<bool, CapError> {
        unavailable("blob")
    }
    async fn list(
        &self,
        _: &BlobBucket,
        _: &str,
        _: Option<&str>,
        _: u32,
    ) -> Result<crate::bindings::blob::ObjectPage, CapError> {
        unavailable("blob")
    }
}

#[async_trait]
impl OutboundHttp for Unavailable {
    async fn send(&self, _: &Caller<'_>, _: Request) -> Result<Response, CapError> {
        unavailable("outbound http")
    }
}

#[async_trait]
impl Notifier for Unavailable {
    async fn publish(&self, _: &Caller<'_>, _: Publication) -> Result<String, CapError> {
        unavailable("notify")
    }
}

#[async_trait]
impl Messaging for Unavailable {
    async fn send(&self, _: &Caller<'_>, _: OutgoingMessage) -> Result<String, CapError> {
        unavailable("messaging")
    }
    async fn put_event(&self, _: &Caller<'_>, _: OutgoingEvent) -> Result<String, CapError> {
        unavailable("the event bus")
    }
    async fn start_execution(
        &self,
        _: &Caller<'_>,
        _: &str,
        _: &str,
        _: Option<&str>,
    ) -> Result<String, CapError> {
        unavailable("workflows")
    }
}

#[async_trait]
impl SqlDatabases for Unavailable {
    async fn query(&self, _: &str, _: &str, _: Vec<SqlValue>) -> Result<Rows, CapError> {
        unavailable("sql")
    }
    async fn execute(&self, _: &str, _: &str, _: Vec<SqlValue>) -> Result<u64, CapError> {
        unavailable("sql")
    }
}
