//! Fake third-party APIs that cannot be reached from here, behaving like the real ones
//! closely enough for the demo and the tests: Databricks (the IPP flow) and an identity
//! provider that signs demo tokens.

pub mod databricks;
pub mod idp;

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
