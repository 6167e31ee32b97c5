//! Blob bytes in the store itself (`[blobs] backend = "store"`, the default on
//! PostgreSQL, so hosts sharing the database share the objects): each write of an object
//! is a new *version*, its bytes in `blob_chunks` rows of [`CHUNK_BYTES`], written as
//! they arrive. The object's `blob_objects` row names the version it reads; the
//! transaction that counts the object's size under the quota switches it and deletes
//! the old version's chunks. A reader sees the old object or the new one, never part of
//! either, and a write that fails leaves the old one (its chunks are dropped; a host
//! that died midway leaves chunks no row names, swept after [`ABANDONED_AFTER_MS`]).

use futures::StreamExt as _;
use sqlx::Connection as _;

use super::super::usage::{self, Kind, Quota, Usage};
use super::super::{Store, now_ms};
use super::sizes_failed;
use crate::capabilities::CapError;
use crate::capabilities::blob::{
    BlobBucket, BlobChunks, BlobRead, ObjectInfo, too_long, too_short,
};

/// One row's bytes: a 64 MiB object is 128 rows. Small enough that a write or a read
/// holds one chunk in memory (and PostgreSQL one TOAST value per statement), large
/// enough that a big object is few round trips.
pub(super) const CHUNK_BYTES: usize = 512 << 10;

/// Chunks no object names after this long are a write that died with its host: far
/// past the admin API's body deadline (120 s) and any plugin's run.
pub(super) const ABANDONED_AFTER_MS: i64 = 3_600_000;

/// Reads that met a version replaced midway try again this many times in all.
const READ_ATTEMPTS: usize = 3;

fn failed(what: &str, e: impl std::fmt::Display) -> CapError {
    CapError::Failed(format!("blob store: {what}: {e}"))
}

/// A new version's name: its creation time first (zero-padded, so names sort by age and
/// the sweep can compare them), then a random part.
fn new_version() -> String {
    format!("{:016}-{}", now_ms(), uuid::Uuid::new_v4().simple())
}

/// The object's version and size, when its bytes are in the store.
type Current = (String, i64);

/// What a reader finds when the version it reads was replaced and its chunks deleted.
fn replaced(key: &str) -> CapError {
    CapError::Conflict(format!(
        "blob `{key}` was replaced while it was being read; read it again"
    ))
}

impl Store {
    async fn blob_current(&self, at: &BlobBucket, key: &str) -> Result<Option<Current>, CapError> {
        sqlx::query_as(
            "SELECT version, bytes FROM blob_objects
             WHERE tenant = $1 AND bucket = $2 AND key = $3 AND version IS NOT NULL",
        )
        .bind(&at.tenant)
        .bind(&at.bucket)
        .bind(key)
        .fetch_optional(&mut *self.reader().await.map_err(|e| failed("read", e))?)
        .await
        .map_err(|e| failed("read", e))
    }

    /// The object's size and the time its version was written (its name starts with
    /// it), without reading a chunk.
    pub(super) async fn blob_chunks_head(
        &self,
        at: &BlobBucket,
        key: &str,
    ) -> Result<Option<ObjectInfo>, CapError> {
        let Some((version, bytes)) = self.blob_current(at, key).await? else {
            return Ok(None);
        };
        Ok(Some(ObjectInfo {
            size: u64::try_from(bytes).map_err(|e| failed("read", e))?,
            modified_ms: version
                .split('-')
                .next()
                .and_then(|ms| ms.parse().ok())
                .unwrap_or(0),
        }))
    }

    /// Streams the object one chunk per query, holding no connection between chunks.
    pub(super) async fn blob_chunks_open(
        &self,
        at: &BlobBucket,
        key: &str,
    ) -> Result<Option<BlobRead>, CapError> {
        let Some((version, bytes)) = self.blob_current(at, key).await? else {
            return Ok(None);
        };
        let bytes = u64::try_from(bytes).map_err(|e| failed("read", e))?;
        let state = (self.clone(), version, 0_i64, 0_u64, key.to_string());
        let chunks = futures::stream::unfold(Some(state), move |state| async move {
            let (store, version, seq, read, key) = state?;
            if read >= bytes {
                return None;
            }
            let mut conn = match store.reader().await {
                Ok(conn) => conn,
                Err(e) => return Some((Err(failed("read", e)), None)),
            };
            let data: Option<Vec<u8>> = match sqlx::query_scalar(
                "SELECT data FROM blob_chunks WHERE version = $1 AND seq = $2",
            )
            .bind(&version)
            .bind(seq)
            .fetch_optional(&mut *conn)
            .await
            {
                Ok(data) => data,
                Err(e) => return Some((Err(failed("read", e)), None)),
            };
            match data {
                // An empty chunk would loop forever: only the size's last one is short.
                Some(data) if !data.is_empty() => {
                    let read = read + data.len() as u64;
                    let next = (store, version, seq + 1, read, key);
                    Some((Ok(bytes::Bytes::from(data)), Some(next)))
                }
                _ => Some((Err(replaced(&key)), None)),
            }
        });
        Ok(Some(BlobRead {
            bytes,
            chunks: Box::pin(chunks),
        }))
    }

    /// The whole object; a read that met an overwrite starts again on the new version.
    pub(super) async fn blob_chunks_get(
        &self,
        at: &BlobBucket,
        key: &str,
    ) -> Result<Option<Vec<u8>>, CapError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let Some(read) = self.blob_chunks_open(at, key).await? else {
                return Ok(None);
            };
            match crate::capabilities::blob::gather(read.bytes, read.chunks).await {
                Ok(data) => return Ok(Some(data)),
                Err(CapError::Conflict(_)) if attempt < READ_ATTEMPTS => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes `bytes` bytes from `chunks` as `key`'s new version, then switches the
    /// object to it under the quota.
    pub(super) async fn blob_chunks_put(
        &self,
        at: &BlobBucket,
        key: &str,
        bytes: u64,
        chunks: BlobChunks,
        quota: Quota,
    ) -> Result<(), CapError> {
        let size = i64::try_from(bytes).map_err(sizes_failed)?;
        // Refused before any byte is stored when the quota cannot take it now; checked
        // again, exactly, when the object switches.
        self.blob_precheck(at, key, size, quota).await?;
        let version = new_version();
        let mut stored = self.blob_chunks_write(&version, bytes, chunks).await;
        if stored.is_ok() {
            stored = self
                .blob_chunks_switch(at, key, size, &version, quota)
                .await;
        }
        if stored.is_err()
            && let Err(e) = self.blob_chunks_drop(&version).await
        {
            tracing::warn!(tenant = %at.tenant, bucket = %at.bucket, error = %e,
                           "a failed blob write's chunks stay until the sweep");
        }
        stored
    }

    async fn blob_precheck(
        &self,
        at: &BlobBucket,
        key: &str,
        size: i64,
        quota: Quota,
    ) -> Result<(), CapError> {
        if quota.is_unlimited() {
            return Ok(());
        }
        let previous: Option<i64> = sqlx::query_scalar(
            "SELECT bytes FROM blob_objects WHERE tenant = $1 AND bucket = $2 AND key = $3",
        )
        .bind(&at.tenant)
        .bind(&at.bucket)
        .bind(key)
        .fetch_optional(&mut *self.reader().await.map_err(sizes_failed)?)
        .await
        .map_err(sizes_failed)?;
        let usage = self
            .storage_usage(&at.tenant, Kind::Blob)
            .await
            .map_err(sizes_failed)?;
        let added = Usage {
            items: i64::from(previous.is_none()),
            bytes: size - previous.unwrap_or(0),
        };
        usage::admit(Kind::Blob, quota, usage, added)
    }

    /// Stores the stream as `version`'s chunks, one statement per chunk (no transaction
    /// held while a client sends), holding at most one chunk in memory.
    async fn blob_chunks_write(
        &self,
        version: &str,
        bytes: u64,
        mut chunks: BlobChunks,
    ) -> Result<(), CapError> {
        let first = usize::try_from(bytes)
            .unwrap_or(CHUNK_BYTES)
            .min(CHUNK_BYTES);
        let mut buffer = Vec::with_capacity(first);
        let mut seq = 0_i64;
        let mut total = 0_u64;
        while let Some(piece) = chunks.next().await {
            let piece = piece?;
            total += piece.len() as u64;
            if total > bytes {
                return Err(too_long(bytes));
            }
            let mut rest = &piece[..];
            while !rest.is_empty() {
                let take = (CHUNK_BYTES - buffer.len()).min(rest.len());
                buffer.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if buffer.len() == CHUNK_BYTES {
                    self.blob_chunk_insert(version, seq, &buffer).await?;
                    seq += 1;
                    buffer.clear();
                }
            }
        }
        if total < bytes {
            return Err(too_short(total, bytes));
        }
        if !buffer.is_empty() {
            self.blob_chunk_insert(version, seq, &buffer).await?;
        }
        Ok(())
    }

    pub(super) async fn blob_chunk_insert(
        &self,
        version: &str,
        seq: i64,
        data: &[u8],
    ) -> Result<(), CapError> {
        let mut conn = self.writer().await.map_err(|e| failed("write", e))?;
        sqlx::query("INSERT INTO blob_chunks (version, seq, data) VALUES ($1, $2, $3)")
            .bind(version)
            .bind(seq)
            .bind(data)
            .execute(&mut *conn)
            .await
            .map_err(|e| failed("write", e))?;
        Ok(())
    }

    /// Points the object at `version` and deletes the chunks it read before, in the
    /// transaction that admits its size.
    async fn blob_chunks_switch(
        &self,
        at: &BlobBucket,
        key: &str,
        size: i64,
        version: &str,
        quota: Quota,
    ) -> Result<(), CapError> {
        let mut conn = self.writer().await.map_err(sizes_failed)?;
        let mut tx = conn.begin().await.map_err(sizes_failed)?;
        let previous = super::lock_object(self, &mut tx, at, key).await?;
        let usage = usage::lock(&mut tx, &at.tenant, Kind::Blob)
            .await
            .map_err(sizes_failed)?;
        let added = Usage {
            // A new key's row is counted already (by the trigger, as an empty object).
            items: 0,
            bytes: size - previous.as_ref().map_or(0, |(bytes, _)| *bytes),
        };
        usage::admit(Kind::Blob, quota, usage, added)?;
        sqlx::query(
            "UPDATE blob_objects SET bytes = $4, version = $5
             WHERE tenant = $1 AND bucket = $2 AND key = $3",
        )
        .bind(&at.tenant)
        .bind(&at.bucket)
        .bind(key)
        .bind(size)
        .bind(version)
        .execute(&mut *tx)
        .await
        .map_err(sizes_failed)?;
        if let Some((_, Some(old))) = &previous {
            sqlx::query("DELETE FROM blob_chunks WHERE version = $1")
                .bind(old)
                .execute(&mut *tx)
                .await
                .map_err(|e| failed("delete", e))?;
        }
        tx.commit().await.map_err(sizes_failed)?;
        Ok(())
    }

    async fn blob_chunks_drop(&self, version: &str) -> Result<(), CapError> {
        let mut conn = self.writer().await.map_err(|e| failed("delete", e))?;
        sqlx::query("DELETE FROM blob_chunks WHERE version = $1")
            .bind(version)
            .execute(&mut *conn)
            .await
            .map_err(|e| failed("delete", e))?;
        Ok(())
    }

    /// Deletes the object and its chunks together.
    pub(super) async fn blob_chunks_delete(
        &self,
        at: &BlobBucket,
        key: &str,
    ) -> Result<bool, CapError> {
        let mut conn = self.writer().await.map_err(|e| failed("delete", e))?;
        let mut tx = conn.begin().await.map_err(|e| failed("delete", e))?;
        let version: Option<String> = sqlx::query_scalar(
            "DELETE FROM blob_objects
             WHERE tenant = $1 AND bucket = $2 AND key = $3 AND version IS NOT NULL
             RETURNING version",
        )
        .bind(&at.tenant)
        .bind(&at.bucket)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| failed("delete", e))?;
        if let Some(version) = &version {
            sqlx::query("DELETE FROM blob_chunks WHERE version = $1")
                .bind(version)
                .execute(&mut *tx)
                .await
                .map_err(|e| failed("delete", e))?;
        }
        tx.commit().await.map_err(|e| failed("delete", e))?;
        Ok(version.is_some())
    }

    /// Deletes the chunks of writes that died with their host (older than
    /// [`ABANDONED_AFTER_MS`] and named by no object); how many.
    pub async fn blob_sweep_abandoned(&self) -> Result<u64, super::super::StoreError> {
        let cutoff = format!("{:016}", now_ms() - ABANDONED_AFTER_MS);
        let mut conn = self.writer().await?;
        let done = sqlx::query(
            "DELETE FROM blob_chunks WHERE version < $1
             AND NOT EXISTS (SELECT 1 FROM blob_objects o WHERE o.version = blob_chunks.version)",
        )
        .bind(cutoff)
        .execute(&mut *conn)
        .await?;
        Ok(done.rows_affected())
    }
}
