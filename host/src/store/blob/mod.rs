//! Tenants' blobs: where their bytes live (a [`BlobBackend`]: files on this host's disk,
//! chunks in the store, or an S3-compatible bucket) and their sizes in the store's
//! `blob_objects` index, under the tenant's quota, so every host sharing the store counts
//! them. Which backend a host uses: `[blobs]` in its config (`config.rs`).

mod chunks;
mod config;
mod files;
mod s3;

pub use config::{BlobBackendKind, BlobsConfig, BlobsConfigError};
pub use files::FsBlobs;
pub use s3::S3Blobs;

use async_trait::async_trait;
use sqlx::Connection as _;

use super::Store;
use super::usage::{self, Kind, Quota, Usage};
use crate::bindings::blob::ObjectPage;
use crate::capabilities::CapError;
use crate::capabilities::blob::{BlobBucket, BlobChunks, BlobRead, Blobs, ObjectInfo};

/// Where a host keeps blob bytes. Hosts sharing a store must share this too: `Store`
/// and `S3` are shared by construction, `Files` only with a shared directory.
#[derive(Debug, Clone)]
pub enum BlobBackend {
    /// Files under the data directory (the default on SQLite).
    Files(FsBlobs),
    /// Chunks in the store's `blob_chunks` table (the default on PostgreSQL).
    Store,
    /// Objects in an S3-compatible bucket.
    S3(S3Blobs),
}

/// A tenant's blobs as the service serves them: bytes in the host's backend, sizes in
/// the store under the tenant's quota.
#[derive(Debug, Clone)]
pub struct TenantBlobs {
    pub backend: BlobBackend,
    pub store: Store,
    pub quota: Quota,
}

fn sizes_failed(e: impl std::fmt::Display) -> CapError {
    CapError::Failed(format!("blob store: sizes: {e}"))
}

fn listing_failed(e: sqlx::Error) -> CapError {
    CapError::Failed(format!("blob store: list: {e}"))
}

/// The size and version `key` had (`None`: no object), its row locked, created empty
/// if new. The object's row is locked first, then the usage row: the order every write
/// takes them in (the usage triggers too). Creating the row is what locks a new key: two
/// writers of one new key then wait for each other at the row, where each would
/// otherwise find no row, take the usage lock, and meet again at the insert, holding
/// what the other waits for.
pub(super) async fn lock_object(
    store: &Store,
    tx: &mut sqlx::AnyConnection,
    at: &BlobBucket,
    key: &str,
) -> Result<Option<(i64, Option<String>)>, CapError> {
    let created = sqlx::query(
        "INSERT INTO blob_objects (tenant, bucket, key, bytes) VALUES ($1, $2, $3, 0)
         ON CONFLICT (tenant, bucket, key) DO NOTHING",
    )
    .bind(&at.tenant)
    .bind(&at.bucket)
    .bind(key)
    .execute(&mut *tx)
    .await
    .map_err(sizes_failed)?
    .rows_affected()
        == 1;
    let row: (i64, Option<String>) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT bytes, version FROM blob_objects WHERE tenant = $1 AND bucket = $2 AND key = $3{}",
        store.row_lock()
    )))
    .bind(&at.tenant)
    .bind(&at.bucket)
    .bind(key)
    .fetch_one(&mut *tx)
    .await
    .map_err(sizes_failed)?;
    Ok((!created).then_some(row))
}

impl Store {
    /// Records that `key` is about to hold `bytes`, if the quota allows; the size it
    /// had before (`None`: no object), for [`Store::blob_restore`]. For the backends
    /// whose bytes live outside the store (files, S3), written after this.
    async fn blob_reserve(
        &self,
        at: &BlobBucket,
        key: &str,
        bytes: u64,
        quota: Quota,
    ) -> Result<Option<i64>, CapError> {
        let bytes = i64::try_from(bytes).map_err(sizes_failed)?;
        let mut conn = self.writer().await.map_err(sizes_failed)?;
        let mut tx = conn.begin().await.map_err(sizes_failed)?;
        let previous = lock_object(self, &mut tx, at, key).await?;
        let previous = previous.map(|(bytes, _)| bytes);
        let usage = usage::lock(&mut tx, &at.tenant, Kind::Blob)
            .await
            .map_err(sizes_failed)?;
        let added = Usage {
            // A new key's row is counted already (by the trigger, as an empty object).
            items: 0,
            bytes: bytes - previous.unwrap_or(0),
        };
        usage::admit(Kind::Blob, quota, usage, added)?;
        sqlx::query(
            "UPDATE blob_objects SET bytes = $4 WHERE tenant = $1 AND bucket = $2 AND key = $3",
        )
        .bind(&at.tenant)
        .bind(&at.bucket)
        .bind(key)
        .bind(bytes)
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

    /// The size the index gives an object whose bytes live outside the store (S3).
    async fn blob_index_size(&self, at: &BlobBucket, key: &str) -> Result<Option<u64>, CapError> {
        let bytes: Option<i64> = sqlx::query_scalar(
            "SELECT bytes FROM blob_objects
             WHERE tenant = $1 AND bucket = $2 AND key = $3 AND version IS NULL",
        )
        .bind(&at.tenant)
        .bind(&at.bucket)
        .bind(key)
        .fetch_optional(&mut *self.reader().await.map_err(sizes_failed)?)
        .await
        .map_err(sizes_failed)?;
        bytes
            .map(|b| u64::try_from(b).map_err(sizes_failed))
            .transpose()
    }

    /// A page of the bucket's keys from the index, in byte order (PostgreSQL's column is
    /// `COLLATE "C"`, SQLite compares bytes): `in_store` picks the objects whose chunks
    /// are in the store, else those whose bytes live outside it (S3).
    async fn blob_index_list(
        &self,
        at: &BlobBucket,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
        in_store: bool,
    ) -> Result<ObjectPage, CapError> {
        let which = if in_store { "NOT NULL" } else { "NULL" };
        let mut keys: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT key FROM blob_objects
             WHERE tenant = $1 AND bucket = $2 AND version IS {which} AND key > $3
               AND substr(key, 1, length($4)) = $4
             ORDER BY key LIMIT $5"
        )))
        .bind(&at.tenant)
        .bind(&at.bucket)
        .bind(cursor.unwrap_or(""))
        .bind(prefix)
        .bind(i64::from(limit) + 1)
        .fetch_all(&mut *self.reader().await.map_err(listing_failed)?)
        .await
        .map_err(listing_failed)?;
        let cursor = if keys.len() > limit as usize {
            keys.truncate(limit as usize);
            keys.last().cloned()
        } else {
            None
        };
        Ok(ObjectPage { keys, cursor })
    }
}

impl TenantBlobs {
    /// Writes bytes kept outside the store after reserving their size, and gives the
    /// size back if the write fails: the object kept what it had, so does its size.
    async fn reserved<F>(
        &self,
        at: &BlobBucket,
        key: &str,
        bytes: u64,
        write: F,
    ) -> Result<(), CapError>
    where
        F: std::future::Future<Output = Result<(), CapError>>,
    {
        let previous = self.store.blob_reserve(at, key, bytes, self.quota).await?;
        if let Err(e) = write.await {
            if let Err(undo) = self.store.blob_restore(at, key, previous).await {
                tracing::warn!(tenant = %at.tenant, bucket = %at.bucket, error = %undo,
                               "a failed blob write's size stays recorded");
            }
            return Err(e);
        }
        Ok(())
    }

    async fn forget(&self, at: &BlobBucket, key: &str) -> Result<(), CapError> {
        let mut conn = self.store.writer().await.map_err(sizes_failed)?;
        self.store
            .blob_forget_query(at, key)
            .execute(&mut *conn)
            .await
            .map_err(sizes_failed)?;
        Ok(())
    }
}

/// One piece as a stream.
fn one_chunk(data: &[u8]) -> BlobChunks {
    let piece = bytes::Bytes::copy_from_slice(data);
    Box::pin(futures::stream::once(async move { Ok(piece) }))
}

#[async_trait]
impl Blobs for TenantBlobs {
    async fn get(&self, at: &BlobBucket, key: &str) -> Result<Option<Vec<u8>>, CapError> {
        match &self.backend {
            BlobBackend::Files(files) => files.get(at, key).await,
            BlobBackend::Store => self.store.blob_chunks_get(at, key).await,
            BlobBackend::S3(s3) => s3.get(at, key).await,
        }
    }

    async fn head(&self, at: &BlobBucket, key: &str) -> Result<Option<ObjectInfo>, CapError> {
        match &self.backend {
            BlobBackend::Files(files) => files.head(at, key).await,
            BlobBackend::Store => self.store.blob_chunks_head(at, key).await,
            // The index every write passes through knows the size: no request to S3
            // per key (a listing's ItemReader asks for each). The write time is not kept.
            BlobBackend::S3(_) => self.store.blob_index_size(at, key).await.map(|size| {
                size.map(|size| ObjectInfo {
                    size,
                    modified_ms: 0,
                })
            }),
        }
    }

    async fn open(&self, at: &BlobBucket, key: &str) -> Result<Option<BlobRead>, CapError> {
        match &self.backend {
            BlobBackend::Files(files) => files.open(at, key).await,
            BlobBackend::Store => self.store.blob_chunks_open(at, key).await,
            BlobBackend::S3(s3) => s3.open(at, key).await,
        }
    }

    async fn put(&self, at: &BlobBucket, key: &str, data: &[u8]) -> Result<(), CapError> {
        self.put_stream(at, key, data.len() as u64, one_chunk(data))
            .await
    }

    async fn put_stream(
        &self,
        at: &BlobBucket,
        key: &str,
        bytes: u64,
        chunks: BlobChunks,
    ) -> Result<(), CapError> {
        match &self.backend {
            BlobBackend::Files(files) => {
                // Files are written whole; gathered first, so a short or long stream
                // is refused before its size is counted.
                let data = crate::capabilities::blob::gather(bytes, chunks).await?;
                self.reserved(at, key, bytes, files.put(at, key, &data))
                    .await
            }
            BlobBackend::Store => {
                self.store
                    .blob_chunks_put(at, key, bytes, chunks, self.quota)
                    .await
            }
            BlobBackend::S3(s3) => {
                self.reserved(at, key, bytes, s3.put_stream(at, key, bytes, chunks))
                    .await
            }
        }
    }

    async fn delete(&self, at: &BlobBucket, key: &str) -> Result<bool, CapError> {
        match &self.backend {
            BlobBackend::Files(files) => {
                let found = files.delete(at, key).await?;
                self.forget(at, key).await?;
                Ok(found)
            }
            BlobBackend::Store => self.store.blob_chunks_delete(at, key).await,
            BlobBackend::S3(s3) => {
                let found = s3.delete(at, key).await?;
                self.forget(at, key).await?;
                Ok(found)
            }
        }
    }

    async fn list(
        &self,
        at: &BlobBucket,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<ObjectPage, CapError> {
        match &self.backend {
            BlobBackend::Files(files) => files.list(at, prefix, cursor, limit).await,
            // The index lists in key order with a cursor; an S3 listing pages by its
            // encoded names, whose order is not the keys'.
            BlobBackend::Store => {
                self.store
                    .blob_index_list(at, prefix, cursor, limit, true)
                    .await
            }
            BlobBackend::S3(_) => {
                self.store
                    .blob_index_list(at, prefix, cursor, limit, false)
                    .await
            }
        }
    }
}

#[cfg(test)]
mod tests;
