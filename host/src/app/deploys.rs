//! Deploys through the store, applied on this host. A plugin or tenant file deployed
//! through the admin API (or `orquesta deploy`) is recorded in the store
//! (`store::deploys`) and written into the deployed directory (`data_dir/deployed`,
//! `plugins/` and `tenants/`) of the host that took it; every other host of the store
//! finds it within `deploy_poll_ms` and writes the same file into its own. The plugin
//! catalog and the tenant registry read that directory over the plugin and tenant
//! directories, so the directories' rules apply as to a file dropped in: a new version
//! replaces the old only once it has loaded on that host, and a refused one leaves the
//! old serving.
//!
//! Precedence: for a name in both, the store's version serves; deleting it through the
//! admin API lets the directory's serve again. The deployed directory is a copy of the
//! store's state, made again from the store by a host that starts without it (a new
//! pod).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, watch};

use super::App;
use super::plugins::valid_name;
use super::tenants::tenant_of_file;
use crate::store::StoreError;
use crate::store::deploys::{DeployKind, artifact_hash};

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("the store: {0}")]
    Store(#[from] StoreError),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A name no admin route accepts: a store written by something else. Never a path.
    #[error("the store holds a {kind} deployment named {name:?}, which is not a valid name")]
    Name { kind: &'static str, name: String },
}

/// What the deployed directory holds: (kind, name) -> the content's hash.
type Applied = BTreeMap<(DeployKind, String), String>;

pub struct Deploys {
    /// `data_dir/deployed`.
    dir: PathBuf,
    /// What its files hold, read from them at the first look and kept since; held while
    /// a deploy is written, so the poller and an admin call never write one file at once.
    applied: Mutex<Option<Applied>>,
}

impl Deploys {
    pub fn new(dir: &Path) -> Self {
        Deploys {
            dir: dir.to_path_buf(),
            applied: Mutex::new(None),
        }
    }

    fn plugins(&self) -> PathBuf {
        self.dir.join("plugins")
    }

    fn tenants(&self) -> PathBuf {
        self.dir.join("tenants")
    }

    /// The file of `kind` `name` in the deployed directory, if the name is valid.
    pub fn file(&self, kind: DeployKind, name: &str) -> Option<PathBuf> {
        file_of(&self.plugins(), &self.tenants(), kind, name).ok()
    }

    /// Makes the deployed directory the store's state: writes what is new or changed,
    /// removes what was deleted (or is unknown to the store), then loads what changed (one
    /// rescan for the lot). Answers how many files it wrote or removed.
    pub async fn sync(&self, app: &App) -> Result<usize, DeployError> {
        let store = &app.services.resources.store;
        let deployments = store.deploy_list().await?;
        let mut guard = self.applied.lock().await;
        let applied = guard.get_or_insert_with(|| self.read_files());
        let mut count = 0;
        let mut wanted = BTreeMap::new();
        for d in deployments {
            let key = (d.kind, d.name.clone());
            if let Some(hash) = &d.hash {
                wanted.insert(key.clone(), hash.clone());
            }
            if applied.get(&key) == d.hash.as_ref() {
                continue;
            }
            let content = match &d.hash {
                Some(hash) => match store.deploy_artifact(hash).await? {
                    Some(content) => Some(content),
                    // Replaced while this host read the list: the next look finds the new.
                    None => continue,
                },
                None => None,
            };
            let (plugins, tenants) = (self.plugins(), self.tenants());
            write_file(&plugins, &tenants, d.kind, &d.name, content.as_deref())?;
            tracing::info!(kind = d.kind.as_str(), name = %d.name, hash = ?d.hash, by = %d.deployed_by, "deploy from the store applied");
            match d.hash {
                Some(hash) => applied.insert(key, hash),
                None => applied.remove(&key),
            };
            count += 1;
        }
        // Files the store does not name (left from another store, or written by hand):
        // the directory is the store's copy, nothing else.
        let strays: Vec<(DeployKind, String)> = applied
            .keys()
            .filter(|key| !wanted.contains_key(*key))
            .cloned()
            .collect();
        for (kind, name) in strays {
            write_file(&self.plugins(), &self.tenants(), kind, &name, None)?;
            applied.remove(&(kind, name));
            count += 1;
        }
        if count > 0 {
            drop(guard);
            app.reload().await;
        }
        Ok(count)
    }

    /// Writes what this host itself just deployed (`None`: deleted) into the deployed
    /// directory, so the poller does not write it again. The caller loads it.
    pub async fn write_here(
        &self,
        kind: DeployKind,
        name: &str,
        content: Option<&[u8]>,
    ) -> Result<(), DeployError> {
        let mut guard = self.applied.lock().await;
        let applied = guard.get_or_insert_with(|| self.read_files());
        write_file(&self.plugins(), &self.tenants(), kind, name, content)?;
        match content {
            Some(bytes) => applied.insert((kind, name.to_string()), artifact_hash(bytes)),
            None => applied.remove(&(kind, name.to_string())),
        };
        Ok(())
    }

    /// What the deployed directory's files hold now.
    fn read_files(&self) -> Applied {
        let mut found = Applied::new();
        for (kind, dir, extension) in [
            (DeployKind::Plugin, self.plugins(), "wasm"),
            (DeployKind::Tenant, self.tenants(), "toml"),
        ] {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for path in entries.filter_map(Result::ok).map(|e| e.path()) {
                let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
                let ours = path.extension().is_some_and(|e| e == extension)
                    && self.file(kind, name).as_deref() == Some(path.as_path());
                if let (true, Ok(bytes)) = (ours, std::fs::read(&path)) {
                    found.insert((kind, name.to_string()), artifact_hash(&bytes));
                }
            }
        }
        found
    }
}

/// Looks for deploys every `deploy_poll_ms` until `stop`.
pub async fn poll(app: Arc<App>, mut stop: watch::Receiver<bool>) {
    let every = Duration::from_millis(app.config.deploy_poll_ms);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(every) => {}
        }
        if let Err(e) = app.deploys.sync(&app).await {
            tracing::warn!(error = %e, "cannot apply the store's deploys; trying again");
        }
    }
}

/// The file a deployment is in the deployed directory: `plugins/NAME.wasm` or
/// `tenants/NAME.toml`, the name checked so that it can only be a file there.
fn file_of(
    plugin_dir: &Path,
    tenant_dir: &Path,
    kind: DeployKind,
    name: &str,
) -> Result<PathBuf, DeployError> {
    let refused = || DeployError::Name {
        kind: kind.as_str(),
        name: name.to_string(),
    };
    match kind {
        DeployKind::Plugin if valid_name(name) => Ok(plugin_dir.join(format!("{name}.wasm"))),
        DeployKind::Tenant => {
            let file = format!("{name}.toml");
            match tenant_of_file(Path::new(&file)) {
                Ok(Some(n)) if n == name => Ok(tenant_dir.join(file)),
                _ => Err(refused()),
            }
        }
        DeployKind::Plugin => Err(refused()),
    }
}

/// Writes (or, with no content, removes) a deployment's file.
fn write_file(
    plugin_dir: &Path,
    tenant_dir: &Path,
    kind: DeployKind,
    name: &str,
    content: Option<&[u8]>,
) -> Result<(), DeployError> {
    let path = file_of(plugin_dir, tenant_dir, kind, name)?;
    let failed = |source| DeployError::Write {
        path: path.clone(),
        source,
    };
    match content {
        Some(bytes) => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(failed)?;
            }
            write_atomically(&path, bytes).map_err(failed)
        }
        None => match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(failed(e)),
            _ => Ok(()),
        },
    }
}

/// A hidden temporary file renamed over the target: a scan never reads half a file (the
/// directories' scans skip hidden files).
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.deploying"));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_the_store_cannot_leave_their_directory() {
        let (plugins, tenants) = (Path::new("/p"), Path::new("/t"));
        for name in ["../x", "a/b", "", ".hidden", "a b", "..", "x\0y"] {
            for kind in [DeployKind::Plugin, DeployKind::Tenant] {
                assert!(
                    file_of(plugins, tenants, kind, name).is_err(),
                    "{kind:?} {name:?}"
                );
            }
        }
        assert_eq!(
            file_of(plugins, tenants, DeployKind::Plugin, "hello").unwrap(),
            Path::new("/p/hello.wasm")
        );
        assert_eq!(
            file_of(plugins, tenants, DeployKind::Tenant, "acme").unwrap(),
            Path::new("/t/acme.toml")
        );
    }

    #[test]
    fn a_deletion_removes_the_file_and_tolerates_its_absence() {
        let dir = tempfile::tempdir().unwrap();
        let (p, t) = (dir.path().join("p"), dir.path().join("t"));
        write_file(&p, &t, DeployKind::Tenant, "acme", Some(b"x = 1")).unwrap();
        assert_eq!(std::fs::read(t.join("acme.toml")).unwrap(), b"x = 1");
        write_file(&p, &t, DeployKind::Tenant, "acme", None).unwrap();
        assert!(!t.join("acme.toml").exists());
        write_file(&p, &t, DeployKind::Tenant, "acme", None).unwrap();
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(&t).unwrap().count(), 0);
    }
}
