//! Fake third-party APIs that cannot be reached from here, behaving like the real ones
//! closely enough for the demo and the tests:
//!
//! - [`databricks`]: Databricks (the IPP flow);
//! - [`idp`]: an identity provider that signs demo tokens;
//! - [`mok`]: MOK, a medical-assistance operator's work-order API (OAuth2 client
//!   credentials);
//! - [`siesa`]: Siesa ERP's Connekta query API with a product catalogue;
//! - [`kong`]: Kong, an RFID inventory product taking bulk product upserts;
//! - [`wms`]: a warehouse-management system's item service taking batch upserts.
//!
//! MOK, Siesa, Kong and WMS serve every request through a [`script::Script`], so tests can
//! force errors and delays on any path and read back what the fake was sent.

pub mod databricks;
pub mod idp;
pub mod kong;
pub mod mok;
pub mod script;
pub mod siesa;
mod util;
pub mod wms;

use std::net::SocketAddr;

use anyhow::Context as _;

/// Serves `router` on `addr` until the process ends; returns the bound address once
/// listening (port 0 picks a free one).
pub async fn spawn(addr: SocketAddr, router: axum::Router) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!("fake server stopped: {e}");
        }
    });
    Ok(bound)
}
