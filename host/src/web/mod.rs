//! HTTP plumbing the admin API and the HTTP trigger share: refusals as RFC 9457 problem
//! documents, and request bodies read within a size and a deadline.

pub mod body;
pub mod problem;
