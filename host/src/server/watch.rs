//! Watches the plugin and tenant directories and rescans after changes settle.

use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::state::App;

/// Editors and `cp` write in several steps; a rescan waits for this much quiet.
const SETTLE: Duration = Duration::from_millis(150);

/// Starts watching; the returned watcher must be kept alive.
pub fn start(app: Arc<App>) -> notify::Result<notify::RecommendedWatcher> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok() {
            // The receiver only ends with the server; nothing to do then.
            let _ = tx.send(());
        }
    })?;
    for dir in [&app.config.plugin_dir, &app.config.tenant_dir] {
        watcher.watch(dir, RecursiveMode::NonRecursive)?;
    }
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Gather the burst, then rescan once.
            loop {
                tokio::time::sleep(SETTLE).await;
                if rx.try_recv().is_err() {
                    break;
                }
                while rx.try_recv().is_ok() {}
            }
            app.reload().await;
        }
    });
    Ok(watcher)
}
