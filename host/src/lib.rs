//! orquesta: a self-hosted WebAssembly plugin host for business flows.
//!
//! Data flows one way: a trigger resolves a tenant, the tenant's [`PluginContext`] and
//! event go to the [`engine`], which instantiates the plugin; the plugin's host calls go
//! through [`capabilities`] to the [`store`] or the network.
//!
//! [`PluginContext`]: engine::PluginContext

pub mod app;
pub mod bindings;
pub mod capabilities;
pub mod engine;
pub mod event;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz;
pub mod guest_world;
pub mod javascript;
pub mod log_format;
pub mod metrics;
pub mod pattern;
pub mod python;
pub mod schedule;
pub mod server;
pub mod store;
pub mod tenants;
pub mod testing;
pub mod text;
pub mod triggers;
pub mod web;
pub mod workflow;
