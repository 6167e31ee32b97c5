//! Blob bytes in an S3-compatible bucket (`[blobs] backend = "s3"`), through
//! `object_store`: each object at `[PREFIX/]TENANT/BUCKET/KEY`, every segment encoded by
//! `object_store` (`.` and `..` as `%2E`, `%`, control bytes and `/` escaped), so no key
//! names another tenant's or bucket's object. A PUT and a completed multipart upload are
//! atomic in S3: readers see the old object or the new one. Writes stream: up to
//! [`PART_BYTES`] in memory, larger objects in parts of that size.

use std::sync::Arc;

use futures::StreamExt as _;
use object_store::ObjectStoreExt as _;
use object_store::path::{Path, PathPart};
use object_store::{ObjectStore, PutPayload, WriteMultipart};

use crate::capabilities::CapError;
use crate::capabilities::blob::{BlobBucket, BlobChunks, BlobRead, too_long, too_short};

/// Objects up to this size are one PUT; larger ones a multipart upload of parts this
/// size (S3 wants parts of at least 5 MiB but the last).
pub(super) const PART_BYTES: usize = 8 << 20;

/// Parts uploaded at once by one write.
const PARTS_IN_FLIGHT: usize = 2;

#[derive(Clone)]
pub struct S3Blobs {
    store: Arc<dyn ObjectStore>,
    /// Folders in the bucket before the tenant's, from the URL's path.
    prefix: Vec<String>,
    /// Where it points, for messages: the bucket and endpoint, never credentials.
    described: String,
}

/// Never prints the client (its configuration holds the credentials).
impl std::fmt::Debug for S3Blobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Blobs")
            .field("at", &self.described)
            .finish_non_exhaustive()
    }
}

impl S3Blobs {
    pub(super) fn new(store: Arc<dyn ObjectStore>, prefix: Vec<String>, described: String) -> Self {
        S3Blobs {
            store,
            prefix,
            described,
        }
    }

    fn path(&self, at: &BlobBucket, key: &str) -> Path {
        let parts = self
            .prefix
            .iter()
            .map(String::as_str)
            .chain([at.tenant.as_str(), at.bucket.as_str()])
            .chain(key.split('/'))
            .map(PathPart::from);
        Path::from_iter(parts)
    }

    fn failed(&self, what: &str, e: object_store::Error) -> CapError {
        // object_store's messages name the path and the answer, not the credentials.
        CapError::Failed(format!("blob store ({}): {what}: {e}", self.described))
    }

    pub(super) async fn get(
        &self,
        at: &BlobBucket,
        key: &str,
    ) -> Result<Option<Vec<u8>>, CapError> {
        match self.store.get(&self.path(at, key)).await {
            Ok(found) => Ok(Some(
                found
                    .bytes()
                    .await
                    .map_err(|e| self.failed("read", e))?
                    .to_vec(),
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.failed("read", e)),
        }
    }

    pub(super) async fn open(
        &self,
        at: &BlobBucket,
        key: &str,
    ) -> Result<Option<BlobRead>, CapError> {
        match self.store.get(&self.path(at, key)).await {
            Ok(found) => {
                let bytes = found.meta.size;
                let described = self.described.clone();
                let chunks = found.into_stream().map(move |piece| {
                    piece.map_err(|e| {
                        CapError::Failed(format!("blob store ({described}): read: {e}"))
                    })
                });
                Ok(Some(BlobRead {
                    bytes,
                    chunks: Box::pin(chunks),
                }))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.failed("read", e)),
        }
    }

    /// One PUT when the stream fits a part, else a multipart upload, aborted (leaving
    /// the old object) when the stream fails, ends early or runs long.
    pub(super) async fn put_stream(
        &self,
        at: &BlobBucket,
        key: &str,
        bytes: u64,
        mut chunks: BlobChunks,
    ) -> Result<(), CapError> {
        let path = self.path(at, key);
        let first = usize::try_from(bytes).unwrap_or(PART_BYTES).min(PART_BYTES);
        let mut buffer = Vec::with_capacity(first);
        let mut total = 0_u64;
        let mut upload: Option<WriteMultipart> = None;
        let streamed: Result<(), CapError> = async {
            while let Some(piece) = chunks.next().await {
                let piece = piece?;
                total += piece.len() as u64;
                if total > bytes {
                    return Err(too_long(bytes));
                }
                if let Some(upload) = upload.as_mut() {
                    upload
                        .wait_for_capacity(PARTS_IN_FLIGHT)
                        .await
                        .map_err(|e| self.failed("write", e))?;
                    upload.write(&piece);
                    continue;
                }
                buffer.extend_from_slice(&piece);
                if buffer.len() > PART_BYTES {
                    let parts = self
                        .store
                        .put_multipart(&path)
                        .await
                        .map_err(|e| self.failed("write", e))?;
                    let mut started = WriteMultipart::new_with_chunk_size(parts, PART_BYTES);
                    started.write(&std::mem::take(&mut buffer));
                    upload = Some(started);
                }
            }
            if total < bytes {
                return Err(too_short(total, bytes));
            }
            Ok(())
        }
        .await;
        match (streamed, upload) {
            (Ok(()), None) => {
                self.store
                    .put(&path, PutPayload::from(buffer))
                    .await
                    .map_err(|e| self.failed("write", e))?;
                Ok(())
            }
            (Ok(()), Some(upload)) => {
                upload.finish().await.map_err(|e| self.failed("write", e))?;
                Ok(())
            }
            (Err(e), Some(upload)) => {
                if let Err(abort) = upload.abort().await {
                    tracing::warn!(error = %abort, "cannot abort a failed blob upload");
                }
                Err(e)
            }
            (Err(e), None) => Err(e),
        }
    }

    pub(super) async fn delete(&self, at: &BlobBucket, key: &str) -> Result<bool, CapError> {
        let path = self.path(at, key);
        match self.store.head(&path).await {
            Ok(_) => {}
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(self.failed("delete", e)),
        }
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(true),
            Err(e) => Err(self.failed("delete", e)),
        }
    }
}
