//! Blobs on the filesystem (`[blobs] backend = "files"`, the default on SQLite): `ROOT/<tenant>/<bucket>/<key segments>`, each segment
//! percent-encoded so no key can name a path outside its bucket. Writes go to a
//! temporary file first and are renamed into place, so readers never see half an object.
//! Listing walks the bucket: fine for the embedded default; an object store suits more.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::bindings::blob::ObjectPage;
use crate::capabilities::CapError;
use crate::capabilities::blob::{BlobBucket, Blobs, ObjectInfo};

/// Everything but letters, digits, `-`, `_` and `.` is encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');
/// Longest file name most filesystems take.
const MAX_SEGMENT: usize = 255;

#[derive(Debug, Clone)]
pub struct FsBlobs {
    root: PathBuf,
}

fn failed(what: &str, e: std::io::Error) -> CapError {
    CapError::Failed(format!("blob store: {what}: {e}"))
}

/// A key segment as a file name. A leading `.` is encoded too, so `.` and `..` never
/// appear and names starting with `.` stay free for temporary files.
fn encode_segment(segment: &str) -> Result<String, CapError> {
    let mut encoded = utf8_percent_encode(segment, SEGMENT).to_string();
    if encoded.starts_with('.') {
        encoded.replace_range(0..1, "%2E");
    }
    if encoded.len() > MAX_SEGMENT {
        return Err(CapError::Invalid(format!(
            "blob key segment {segment:?} is too long once encoded for the filesystem"
        )));
    }
    Ok(encoded)
}

impl FsBlobs {
    pub fn new(root: PathBuf) -> Self {
        FsBlobs { root }
    }

    fn bucket_dir(&self, at: &BlobBucket) -> Result<PathBuf, CapError> {
        // Tenant and bucket names were checked by the caller; encoding keeps that true.
        Ok(self
            .root
            .join(encode_segment(&at.tenant)?)
            .join(encode_segment(&at.bucket)?))
    }

    /// Why `key` cannot be stored, if another key is in its way: the filesystem cannot
    /// hold an object and a folder of one name, so `a/b` cannot be an object while
    /// `a/b/c` is, nor `a/b/c` while `a/b` is. Asked after a write failed.
    async fn conflict(&self, at: &BlobBucket, key: &str) -> Option<CapError> {
        let mut prefix = String::new();
        for segment in key.split('/') {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(segment);
            let path = self.object_path(at, &prefix).ok()?;
            let Ok(meta) = tokio::fs::metadata(&path).await else {
                return None;
            };
            if prefix.len() < key.len() && meta.is_file() {
                return Some(CapError::Conflict(format!(
                    "blob key `{key}` cannot be stored: `{prefix}` is an object, and a key \
                     cannot be both an object and a folder of other keys"
                )));
            }
            if prefix.len() == key.len() && meta.is_dir() {
                return Some(CapError::Conflict(format!(
                    "blob key `{key}` cannot be stored: it is a folder of other keys \
                     (`{key}/...`), and a key cannot be both an object and a folder"
                )));
            }
        }
        None
    }

    fn object_path(&self, at: &BlobBucket, key: &str) -> Result<PathBuf, CapError> {
        let mut path = self.bucket_dir(at)?;
        for segment in key.split('/') {
            path.push(encode_segment(segment)?);
        }
        Ok(path)
    }
}

/// Every object key under `dir`, decoded.
fn walk(dir: &Path, prefix: &str, keys: &mut Vec<String>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue; // a write in progress
        }
        let segment = percent_decode_str(&name).decode_utf8_lossy().into_owned();
        let key = if prefix.is_empty() {
            segment
        } else {
            format!("{prefix}/{segment}")
        };
        if entry.file_type()?.is_dir() {
            walk(&entry.path(), &key, keys)?;
        } else {
            keys.push(key);
        }
    }
    Ok(())
}

#[async_trait]
impl Blobs for FsBlobs {
    async fn get(&self, at: &BlobBucket, key: &str) -> Result<Option<Vec<u8>>, CapError> {
        let path = self.object_path(at, key)?;
        match tokio::fs::read(&path).await {
            Ok(data) => Ok(Some(data)),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                Ok(None)
            }
            // A key that is a "directory" of other keys is not an object.
            Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => Ok(None),
            Err(e) => Err(failed("read", e)),
        }
    }

    async fn head(&self, at: &BlobBucket, key: &str) -> Result<Option<ObjectInfo>, CapError> {
        let path = self.object_path(at, key)?;
        match tokio::fs::metadata(&path).await {
            Ok(meta) if meta.is_file() => Ok(Some(ObjectInfo {
                size: meta.len(),
                modified_ms: meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            })),
            Ok(_) => Ok(None),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(failed("stat", e)),
        }
    }

    async fn put(&self, at: &BlobBucket, key: &str, data: &[u8]) -> Result<(), CapError> {
        let path = self.object_path(at, key)?;
        let dir = path
            .parent()
            .ok_or_else(|| CapError::Invalid("empty key".into()))?;
        if let Err(e) = tokio::fs::create_dir_all(dir).await {
            return Err(self
                .conflict(at, key)
                .await
                .unwrap_or_else(|| failed("cannot create the key's folder", e)));
        }
        let tmp = dir.join(format!(".put-{}", uuid::Uuid::new_v4()));
        tokio::fs::write(&tmp, data)
            .await
            .map_err(|e| failed("write", e))?;
        if let Err(e) = tokio::fs::rename(&tmp, &path).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(self
                .conflict(at, key)
                .await
                .unwrap_or_else(|| failed("cannot store the object", e)));
        }
        Ok(())
    }

    async fn delete(&self, at: &BlobBucket, key: &str) -> Result<bool, CapError> {
        let path = self.object_path(at, key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(true),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound
                        | std::io::ErrorKind::NotADirectory
                        | std::io::ErrorKind::IsADirectory
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(failed("delete", e)),
        }
    }

    async fn list(
        &self,
        at: &BlobBucket,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<ObjectPage, CapError> {
        let dir = self.bucket_dir(at)?;
        let mut keys = tokio::task::spawn_blocking(move || {
            let mut keys = Vec::new();
            walk(&dir, "", &mut keys).map(|_| keys)
        })
        .await
        .map_err(|e| CapError::Failed(format!("blob listing stopped: {e}")))?
        .map_err(|e| failed("list", e))?;
        keys.retain(|k| k.starts_with(prefix) && cursor.is_none_or(|c| k.as_str() > c));
        keys.sort();
        let limit = limit as usize;
        let cursor = if keys.len() > limit {
            keys.truncate(limit);
            keys.last().cloned()
        } else {
            None
        };
        Ok(ObjectPage { keys, cursor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(tenant: &str) -> BlobBucket {
        BlobBucket {
            tenant: tenant.into(),
            bucket: "files".into(),
        }
    }

    #[tokio::test]
    async fn put_get_overwrite_delete() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = FsBlobs::new(dir.path().to_path_buf());
        let at = bucket("acme");
        assert_eq!(blobs.get(&at, "raw/a.json").await.unwrap(), None);
        blobs.put(&at, "raw/a.json", b"one").await.unwrap();
        blobs.put(&at, "raw/a.json", b"two").await.unwrap();
        assert_eq!(
            blobs.get(&at, "raw/a.json").await.unwrap(),
            Some(b"two".to_vec())
        );
        assert_eq!(
            blobs.get(&at, "raw").await.unwrap(),
            None,
            "a prefix is not an object"
        );
        assert!(blobs.delete(&at, "raw/a.json").await.unwrap());
        assert!(!blobs.delete(&at, "raw/a.json").await.unwrap());
    }

    #[tokio::test]
    async fn listing_pages_by_prefix_in_key_order() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = FsBlobs::new(dir.path().to_path_buf());
        let at = bucket("acme");
        for key in ["p/3", "p/1", "p/2", "q/1", "p/sub/4", "p ü/5"] {
            blobs.put(&at, key, b"x").await.unwrap();
        }
        let first = blobs.list(&at, "p/", None, 2).await.unwrap();
        assert_eq!(first.keys, ["p/1", "p/2"]);
        let rest = blobs
            .list(&at, "p/", first.cursor.as_deref(), 10)
            .await
            .unwrap();
        assert_eq!(rest.keys, ["p/3", "p/sub/4"]);
        assert_eq!(rest.cursor, None);
        assert_eq!(
            blobs.list(&at, "p ", None, 10).await.unwrap().keys,
            ["p ü/5"]
        );
    }

    #[tokio::test]
    async fn hostile_keys_stay_inside_the_bucket_and_tenants_apart() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("blobs");
        let blobs = FsBlobs::new(root.clone());
        let (a, b) = (bucket("a"), bucket("b"));
        for key in [
            "../x",
            "../../escape",
            ".",
            "a/../../b",
            "/etc/passwd".trim_start_matches('/'),
            "%2e%2e",
        ] {
            blobs.put(&a, key, key.as_bytes()).await.unwrap();
            assert_eq!(
                blobs.get(&a, key).await.unwrap(),
                Some(key.as_bytes().to_vec()),
                "{key}"
            );
            assert_eq!(
                blobs.get(&b, key).await.unwrap(),
                None,
                "{key} seen by another tenant"
            );
        }
        // Nothing was written outside the root.
        let outside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(outside, ["blobs"]);
        assert_eq!(blobs.list(&b, "", None, 100).await.unwrap().keys.len(), 0);
        assert_eq!(blobs.list(&a, "", None, 100).await.unwrap().keys.len(), 6);
        // `..` alone is a file name too; in `a` it would clash with the folder `../x` made.
        let c = bucket("c");
        blobs.put(&c, "..", b"dots").await.unwrap();
        assert_eq!(blobs.get(&c, "..").await.unwrap(), Some(b"dots".to_vec()));
        assert!(
            matches!(
                blobs.put(&a, "..", b"clash").await,
                Err(CapError::Conflict(_))
            ),
            "a key that is a prefix of other keys"
        );
        for bad in ["", "/lead", "trail/", "a//b"] {
            assert!(
                crate::capabilities::blob::check_key(bad).is_err(),
                "{bad:?}"
            );
        }
        assert!(crate::capabilities::blob::check_key(&"k".repeat(2000)).is_err());
    }
}
