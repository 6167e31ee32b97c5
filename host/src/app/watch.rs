//! Watches the plugin and tenant directories, and the directories of every file a tenant
//! references (workflow definitions, JWKS, init SQL, secret files), and rescans after
//! changes settle.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::app::App;

/// Editors and `cp` write in several steps; a rescan waits for this much quiet.
const SETTLE: Duration = Duration::from_millis(150);

/// The watcher; watching stops when it is dropped.
pub struct Watching {
    _watcher: Arc<Mutex<notify::RecommendedWatcher>>,
}

/// Starts watching.
pub fn start(app: Arc<App>) -> notify::Result<Watching> {
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
    let watcher = Arc::new(Mutex::new(watcher));
    // The task holds the watcher weakly: dropping `Watching` drops the watcher and its
    // sender, which ends the task.
    let weak = Arc::downgrade(&watcher);
    let mut references = BTreeSet::new();
    sync(&app, &weak, &mut references);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                event = rx.recv() => {
                    if event.is_none() {
                        break;
                    }
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
                // A reload through the admin API may have changed what tenants reference.
                () = app.tenants.references_changed.notified() => {}
            }
            sync(&app, &weak, &mut references);
        }
    });
    Ok(Watching { _watcher: watcher })
}

/// Watches the directories tenants reference now, and stops watching the ones they no
/// longer do (the plugin and tenant directories stay watched).
fn sync(
    app: &App,
    watcher: &Weak<Mutex<notify::RecommendedWatcher>>,
    watched: &mut BTreeSet<PathBuf>,
) {
    let Some(watcher) = watcher.upgrade() else {
        return;
    };
    let mut watcher = watcher.lock().unwrap_or_else(|p| p.into_inner());
    // Canonical, so `tenants/../workflows` and `workflows` are one directory.
    let fixed: Vec<PathBuf> = [&app.config.plugin_dir, &app.config.tenant_dir]
        .into_iter()
        .filter_map(|d| std::fs::canonicalize(d).ok())
        .collect();
    let wanted: BTreeSet<PathBuf> = app
        .tenants
        .referenced_dirs()
        .into_iter()
        .filter_map(|d| std::fs::canonicalize(d).ok())
        .filter(|d| !fixed.contains(d))
        .collect();
    for gone in watched.difference(&wanted) {
        // Already gone with its directory, or never added: nothing to undo either way.
        let _ = watcher.unwatch(gone);
    }
    watched.retain(|d| wanted.contains(d));
    for dir in wanted {
        if watched.contains(&dir) {
            continue;
        }
        match watcher.watch(&dir, RecursiveMode::NonRecursive) {
            Ok(()) => {
                watched.insert(dir);
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot watch a directory a tenant references; edits there need POST /admin/v1/reload");
            }
        }
    }
}
