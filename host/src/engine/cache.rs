//! Compiled components, keyed by content hash: compiled once, shared by every tenant,
//! and kept on disk as precompiled artifacts so a restart does not recompile.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;

pub struct ComponentCache {
    dir: Option<PathBuf>,
    /// Identifies the engine's settings and version: an artifact from another build or
    /// configuration is never loaded.
    engine_key: String,
    loaded: Mutex<HashMap<String, Component>>,
}

/// The SHA-256 of a plugin file, hex encoded.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl ComponentCache {
    pub fn new(engine: &wasmtime::Engine, dir: Option<PathBuf>) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        ComponentCache {
            dir,
            engine_key: format!("{:016x}", hasher.finish()),
            loaded: Mutex::new(HashMap::new()),
        }
    }

    /// The compiled component for `bytes` (whose hash is `hash`), compiling at most once.
    pub fn get_or_compile(
        &self,
        engine: &wasmtime::Engine,
        hash: &str,
        bytes: &[u8],
    ) -> wasmtime::Result<Component> {
        if let Some(c) = self.lock().get(hash) {
            return Ok(c.clone());
        }
        let component = match self.artifact_path(hash) {
            Some(path) => match self.load_artifact(engine, &path) {
                Some(c) => c,
                None => {
                    let artifact = engine.precompile_component(bytes)?;
                    if let Err(e) = write_atomically(&path, &artifact) {
                        // The cache is an optimisation: a read-only disk still serves.
                        tracing::warn!(path = %path.display(), error = %e, "cannot write compiled plugin to the cache");
                    }
                    // SAFETY: `artifact` was produced just now by this engine.
                    unsafe { Component::deserialize(engine, &artifact)? }
                }
            },
            None => Component::new(engine, bytes)?,
        };
        self.lock().insert(hash.to_string(), component.clone());
        Ok(component)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Component>> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.loaded.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn artifact_path(&self, hash: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        Some(dir.join(format!("{hash}-{}.cwasm", self.engine_key)))
    }

    fn load_artifact(&self, engine: &wasmtime::Engine, path: &Path) -> Option<Component> {
        if !path.exists() {
            return None;
        }
        // SAFETY: the cache directory holds only artifacts this host wrote (atomically,
        // named by the engine's compatibility key); wasmtime also checks the header.
        match unsafe { Component::deserialize_file(engine, path) } {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "discarding unreadable compiled plugin");
                None
            }
        }
    }
}

fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)
}
