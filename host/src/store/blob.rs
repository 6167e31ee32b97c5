//! Blobs on the filesystem: `ROOT/<tenant>/<bucket>/<key segments>`, each segment
//! percent-encoded so no key can name a path outside its bucket. Writes go to a
//! temporary file first and are renamed into place, so readers never see half an object.
//! Listing walks the bucket: fine for the embedded default; an object store suits more.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use sqlx::Connection as _;

use super::Store;
use super::usage::{self, Kind, Quota, Usage};
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

/// A tenant's blobs as the service serves them: files in [`FsBlobs`], their sizes in the
/// store under the tenant's quota, so every host sharing the store counts them.
#[derive(Debug, Clone)]
pub struct TenantBlobs {
    pub files: FsBlobs,
    pub store: Store,
    pub quota: Quota,
}

fn sizes_failed(e: impl std::fmt::Display) -> CapError {
    CapError::Failed(format!("blob store: sizes: {e}"))
}

impl Store {
    /// Records that `key` is about to hold `bytes`, if the quota allows; the size it
    /// had before (`None`: no object), for [`Store::blob_restore`].
    async fn blob_reserve(
        &self,
        at: &BlobBucket,
        key: &str,
        bytes: usize,
        quota: Quota,
    ) -> Result<Option<i64>, CapError> {
        let mut conn = self.writer().await.map_err(sizes_failed)?;
        let mut tx = conn.begin().await.map_err(sizes_failed)?;
        // The object's row first, then the usage row: the order every write locks them in.
        let previous: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT bytes FROM blob_objects WHERE tenant = $1 AND bucket = $2 AND key = $3{}",
            self.row_lock()
        )))
        .bind(&at.tenant)
        .bind(&at.bucket)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(sizes_failed)?;
        let usage = usage::lock(&mut tx, &at.tenant, Kind::Blob)
            .await
            .map_err(sizes_failed)?;
        let added = Usage {
            items: i64::from(previous.is_none()),
            bytes: bytes as i64 - previous.unwrap_or(0),
        };
        usage::admit(Kind::Blob, quota, usage, added)?;
        sqlx::query(
            "INSERT INTO blob_objects (tenant, bucket, key, bytes) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant, bucket, key) DO UPDATE SET bytes = excluded.bytes",
        )
        .bind(&at.tenant)
        .bind(&at.bucket)
        .bind(key)
        .bind(bytes as i64)
        .execute(&mut *tx)
        .await
        .map_err(sizes_failed)?;
        tx.commit().await.map_err(sizes_failed)?;
        Ok(previous)
    }

    /// Puts back the size `key` had before a write that failed.
    async fn blob_restore(
        &self,
        at: &BlobBucket,
        key: &str,
        previous: Option<i64>,
    ) -> Result<(), CapError> {
        let query = match previous {
            Some(bytes) => sqlx::query(
                "UPDATE blob_objects SET bytes = $4 WHERE tenant = $1 AND bucket = $2 AND key = $3",
            )
            .bind(&at.tenant)
            .bind(&at.bucket)
            .bind(key)
            .bind(bytes),
            None => self.blob_forget_query(at, key),
        };
        let mut conn = self.writer().await.map_err(sizes_failed)?;
        query.execute(&mut *conn).await.map_err(sizes_failed)?;
        Ok(())
    }

    fn blob_forget_query<'q>(
        &self,
        at: &'q BlobBucket,
        key: &'q str,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
        sqlx::query("DELETE FROM blob_objects WHERE tenant = $1 AND bucket = $2 AND key = $3")
            .bind(&at.tenant)
            .bind(&at.bucket)
            .bind(key)
    }
}

#[async_trait]
impl Blobs for TenantBlobs {
    async fn get(&self, at: &BlobBucket, key: &str) -> Result<Option<Vec<u8>>, CapError> {
        self.files.get(at, key).await
    }

    async fn head(&self, at: &BlobBucket, key: &str) -> Result<Option<ObjectInfo>, CapError> {
        self.files.head(at, key).await
    }

    async fn put(&self, at: &BlobBucket, key: &str, data: &[u8]) -> Result<(), CapError> {
        let previous = self
            .store
            .blob_reserve(at, key, data.len(), self.quota)
            .await?;
        if let Err(e) = self.files.put(at, key, data).await {
            // The object kept what it had (or stayed absent): so does its size.
            if let Err(undo) = self.store.blob_restore(at, key, previous).await {
                tracing::warn!(tenant = %at.tenant, bucket = %at.bucket, error = %undo,
                               "a failed blob write's size stays recorded");
            }
            return Err(e);
        }
        Ok(())
    }

    async fn delete(&self, at: &BlobBucket, key: &str) -> Result<bool, CapError> {
        let found = self.files.delete(at, key).await?;
        let mut conn = self.store.writer().await.map_err(sizes_failed)?;
        self.store
            .blob_forget_query(at, key)
            .execute(&mut *conn)
            .await
            .map_err(sizes_failed)?;
        Ok(found)
    }

    async fn list(
        &self,
        at: &BlobBucket,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<ObjectPage, CapError> {
        self.files.list(at, prefix, cursor, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{Stores, each_store, store_test};

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

    store_test!(the_blob_quota_counts_puts_overwrites_failures_and_deletes);
    async fn the_blob_quota_counts_puts_overwrites_failures_and_deletes(stores: Stores) {
        each_store(stores, |store| async move {
            let dir = tempfile::tempdir().unwrap();
            let blobs = TenantBlobs {
                files: FsBlobs::new(dir.path().to_path_buf()),
                store: store.clone(),
                quota: Quota {
                    items: None,
                    bytes: Some(1000),
                },
            };
            let at = bucket(&crate::store::testing::tenant("acme"));
            let used = || async { store.storage_usage(&at.tenant, Kind::Blob).await.unwrap() };
            blobs.put(&at, "a", &[1; 600]).await.unwrap();
            let err = blobs.put(&at, "b", &[1; 600]).await.unwrap_err();
            assert!(matches!(err, CapError::Denied(_)), "{err}");
            assert!(err.to_string().contains("600 more bytes"), "{err}");
            assert_eq!(blobs.get(&at, "b").await.unwrap(), None, "nothing written");
            // A smaller overwrite frees room.
            blobs.put(&at, "a", &[1; 300]).await.unwrap();
            blobs.put(&at, "b", &[1; 600]).await.unwrap();
            assert_eq!(
                used().await,
                Usage {
                    items: 2,
                    bytes: 900
                }
            );
            // A write the filesystem refuses (a key that is a prefix of another) counts nothing.
            blobs.put(&at, "c/d", &[1; 10]).await.unwrap();
            assert!(blobs.put(&at, "c", &[1; 20]).await.is_err());
            assert_eq!(
                used().await,
                Usage {
                    items: 3,
                    bytes: 910
                }
            );
            assert!(blobs.delete(&at, "b").await.unwrap());
            assert!(!blobs.delete(&at, "b").await.unwrap());
            assert_eq!(
                used().await,
                Usage {
                    items: 2,
                    bytes: 310
                }
            );
            blobs.put(&at, "e", &[1; 690]).await.unwrap();
        })
        .await;
    }
}
