//! One suite, every backend: each case runs on files (with a SQLite index), chunks in a
//! SQLite store, chunks in PostgreSQL and a real S3-compatible server (`s3s-fs`, started
//! per test from `ORQUESTA_TEST_S3_SERVER`). The PostgreSQL and S3 runs are ignored
//! (and listed so) when their variable was not set at build time (`build.rs`).

use std::sync::Arc;

use futures::StreamExt as _;

use super::*;
use crate::capabilities::blob::check_key;
use crate::store::testing::{postgres, tenant};

/// Where a case's blobs live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum On {
    Files,
    StoreSqlite,
    StorePostgres,
    S3,
}

/// The binary of the S3-compatible server the S3 runs start (`.ci/s3` installs it).
pub const S3_SERVER_VAR: &str = "ORQUESTA_TEST_S3_SERVER";
const S3_BUCKET: &str = "orquesta-test";

/// A running `s3s-fs`, killed when dropped.
struct S3Server {
    _child: tokio::process::Child,
    root: tempfile::TempDir,
    port: u16,
}

async fn s3_server() -> S3Server {
    let bin = match std::env::var(S3_SERVER_VAR) {
        Ok(bin) if !bin.is_empty() => bin,
        _ => panic!(
            "{S3_SERVER_VAR} is not set and this run needs an S3-compatible server; `cargo \
             test` run without the variable lists the S3 runs as ignored (.ci/s3 installs one)"
        ),
    };
    let root = tempfile::tempdir().unwrap();
    // A bucket of s3s-fs is a folder of its root.
    std::fs::create_dir(root.path().join(S3_BUCKET)).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = tokio::process::Command::new(&bin)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args([
            "--access-key",
            "orquesta-key",
            "--secret-key",
            "orquesta-secret",
        ])
        .arg(root.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{S3_SERVER_VAR}={bin} cannot be started: {e}"));
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return S3Server {
                _child: child,
                root,
                port,
            };
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{bin} did not listen on 127.0.0.1:{port} within 10 s");
}

/// A case's blobs and what they stand on.
pub struct Fixture {
    pub on: On,
    pub store: Store,
    pub backend: BlobBackend,
    dir: tempfile::TempDir,
    s3: Option<S3Server>,
}

impl Fixture {
    pub async fn new(on: On) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let (store, backend, s3) = match on {
            On::Files => (
                Store::in_memory().await.unwrap(),
                BlobBackend::Files(FsBlobs::new(dir.path().join("blobs"))),
                None,
            ),
            On::StoreSqlite => (
                Store::open_sqlite(&dir.path().join("store.db"))
                    .await
                    .unwrap(),
                BlobBackend::Store,
                None,
            ),
            On::StorePostgres => (postgres().await, BlobBackend::Store, None),
            On::S3 => {
                let server = s3_server().await;
                let secret = |name: &str, value: &str| {
                    let file = dir.path().join(name);
                    std::fs::write(&file, value).unwrap();
                    Some(crate::capabilities::secrets::SecretRef {
                        env: None,
                        file: Some(file),
                    })
                };
                let config = BlobsConfig {
                    backend: None,
                    url: Some(format!(
                        "s3://{S3_BUCKET}?endpoint=http://127.0.0.1:{}&region=us-east-1",
                        server.port
                    )),
                    access_key_id: secret("key", "orquesta-key"),
                    secret_access_key: secret("secret", "orquesta-secret"),
                };
                let store = Store::in_memory().await.unwrap();
                let backend = config.open(&store, dir.path()).unwrap();
                assert!(matches!(backend, BlobBackend::S3(_)));
                (store, backend, Some(server))
            }
        };
        Fixture {
            on,
            store,
            backend,
            dir,
            s3,
        }
    }

    pub fn blobs(&self, quota: Quota) -> TenantBlobs {
        TenantBlobs {
            backend: self.backend.clone(),
            store: self.store.clone(),
            quota,
        }
    }

    /// Chunks no object names: a write that left some behind. Only on a private store
    /// (on the shared PostgreSQL database other tests' writes are in flight).
    async fn stray_chunks(&self) -> Option<i64> {
        if self.on != On::StoreSqlite {
            return None;
        }
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM blob_chunks c
             WHERE NOT EXISTS (SELECT 1 FROM blob_objects o WHERE o.version = c.version)",
        )
        .fetch_one(&mut *self.store.reader().await.ok()?)
        .await
        .unwrap();
        Some(n)
    }
}

/// Declares `async fn NAME(on: On)` (defined beside it) as a test per backend.
macro_rules! blob_test {
    ($name:ident) => {
        mod $name {
            use super::On;

            #[tokio::test]
            async fn files() {
                super::$name(On::Files).await;
            }

            #[tokio::test]
            async fn store_sqlite() {
                super::$name(On::StoreSqlite).await;
            }

            #[tokio::test]
            #[cfg_attr(no_postgres, ignore = "ORQUESTA_TEST_POSTGRES_URL is not set")]
            async fn store_postgres() {
                super::$name(On::StorePostgres).await;
            }

            #[tokio::test]
            #[cfg_attr(no_s3, ignore = "ORQUESTA_TEST_S3_SERVER is not set")]
            async fn s3() {
                super::$name(On::S3).await;
            }
        }
    };
}

fn bucket(tenant: &str) -> BlobBucket {
    BlobBucket {
        tenant: tenant.into(),
        bucket: "files".into(),
    }
}

/// Bytes that differ along their length, so a misplaced chunk shows.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3] ^ seed)
        .collect()
}

/// `data` as a stream of pieces of `piece` bytes.
fn pieces(data: &[u8], piece: usize) -> BlobChunks {
    let parts: Vec<_> = data
        .chunks(piece.max(1))
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures::stream::iter(parts))
}

blob_test!(put_get_overwrite_delete_and_missing_objects);
async fn put_get_overwrite_delete_and_missing_objects(on: On) {
    let f = Fixture::new(on).await;
    let blobs = f.blobs(Quota::UNLIMITED);
    let at = bucket(&tenant("acme"));
    assert_eq!(blobs.get(&at, "raw/a.json").await.unwrap(), None);
    assert!(blobs.open(&at, "raw/a.json").await.unwrap().is_none());
    assert!(!blobs.delete(&at, "raw/a.json").await.unwrap());
    blobs.put(&at, "raw/a.json", b"one, longer").await.unwrap();
    blobs.put(&at, "raw/a.json", b"two").await.unwrap();
    assert_eq!(
        blobs.get(&at, "raw/a.json").await.unwrap(),
        Some(b"two".to_vec())
    );
    if on != On::S3 {
        // s3s-fs answers 500 for a key that is a folder of its (S3 answers 404).
        assert_eq!(
            blobs.get(&at, "raw").await.unwrap(),
            None,
            "a prefix is not an object"
        );
    }
    blobs.put(&at, "empty", b"").await.unwrap();
    assert_eq!(blobs.get(&at, "empty").await.unwrap(), Some(Vec::new()));
    // `head` (what a listing's ItemReader asks of each key) gives the size, no bytes.
    let size = |info: Option<ObjectInfo>| info.map(|i| i.size);
    assert_eq!(size(blobs.head(&at, "raw/a.json").await.unwrap()), Some(3));
    assert_eq!(size(blobs.head(&at, "empty").await.unwrap()), Some(0));
    assert_eq!(size(blobs.head(&at, "raw/b.json").await.unwrap()), None);
    let other = bucket(&tenant("other"));
    assert_eq!(size(blobs.head(&other, "raw/a.json").await.unwrap()), None);
    assert!(blobs.delete(&at, "raw/a.json").await.unwrap());
    assert_eq!(size(blobs.head(&at, "raw/a.json").await.unwrap()), None);
    assert!(!blobs.delete(&at, "raw/a.json").await.unwrap());
    assert_eq!(blobs.get(&at, "raw/a.json").await.unwrap(), None);
    assert_eq!(blobs.list(&at, "", None, 10).await.unwrap().keys, ["empty"]);
    assert_eq!(f.stray_chunks().await.unwrap_or(0), 0);
}

blob_test!(listing_pages_by_prefix_in_key_order);
async fn listing_pages_by_prefix_in_key_order(on: On) {
    let f = Fixture::new(on).await;
    let blobs = f.blobs(Quota::UNLIMITED);
    let at = bucket(&tenant("acme"));
    for key in ["p/3", "p/1", "p/2", "q/1", "p/sub/4", "p ü/5", "p/Z"] {
        blobs.put(&at, key, b"x").await.unwrap();
    }
    let first = blobs.list(&at, "p/", None, 2).await.unwrap();
    assert_eq!(first.keys, ["p/1", "p/2"]);
    let second = blobs
        .list(&at, "p/", first.cursor.as_deref(), 2)
        .await
        .unwrap();
    assert_eq!(second.keys, ["p/3", "p/Z"], "byte order: `Z` before `s`");
    let rest = blobs
        .list(&at, "p/", second.cursor.as_deref(), 10)
        .await
        .unwrap();
    assert_eq!(rest.keys, ["p/sub/4"]);
    assert_eq!(rest.cursor, None);
    assert_eq!(
        blobs.list(&at, "p ", None, 10).await.unwrap().keys,
        ["p ü/5"]
    );
    assert_eq!(
        blobs
            .list(&at, "nothing", None, 10)
            .await
            .unwrap()
            .keys
            .len(),
        0
    );
    let all = blobs.list(&at, "", None, 100).await.unwrap();
    assert_eq!(all.keys.len(), 7);
    assert_eq!(all.cursor, None);
}

blob_test!(large_objects_stream_in_and_out_whole);
async fn large_objects_stream_in_and_out_whole(on: On) {
    let f = Fixture::new(on).await;
    let blobs = f.blobs(Quota::UNLIMITED);
    let at = bucket(&tenant("acme"));
    // Past a store chunk many times and past an S3 part: a multipart upload.
    let data = pattern(s3::PART_BYTES + chunks::CHUNK_BYTES + 7, 1);
    blobs
        .put_stream(&at, "big", data.len() as u64, pieces(&data, 100_000))
        .await
        .unwrap();
    let read = blobs.open(&at, "big").await.unwrap().unwrap();
    assert_eq!(read.bytes, data.len() as u64);
    let parts: Vec<_> = read.chunks.collect().await;
    if matches!(on, On::StoreSqlite | On::StorePostgres) {
        assert_eq!(
            parts.len(),
            data.len().div_ceil(chunks::CHUNK_BYTES),
            "read a chunk at a time"
        );
    }
    let mut streamed = Vec::new();
    for part in parts {
        streamed.extend_from_slice(&part.unwrap());
    }
    assert!(streamed == data, "the streamed object differs");
    assert!(blobs.get(&at, "big").await.unwrap() == Some(data.clone()));
    // Overwritten by a smaller one: its old chunks go.
    blobs.put(&at, "big", b"small").await.unwrap();
    assert_eq!(
        blobs.get(&at, "big").await.unwrap(),
        Some(b"small".to_vec())
    );
    assert_eq!(f.stray_chunks().await.unwrap_or(0), 0);
}

blob_test!(a_write_that_fails_midway_leaves_the_old_object);
async fn a_write_that_fails_midway_leaves_the_old_object(on: On) {
    let f = Fixture::new(on).await;
    let blobs = f.blobs(Quota::UNLIMITED);
    let at = bucket(&tenant("acme"));
    let old = pattern(3 * chunks::CHUNK_BYTES / 2, 2);
    blobs.put(&at, "k", &old).await.unwrap();
    let usage = f.store.storage_usage(&at.tenant, Kind::Blob).await.unwrap();
    let new = pattern(s3::PART_BYTES + 10, 3);
    // Shorter than announced, longer than announced, and broken midway; each past a
    // store chunk and (the first) past an S3 part, so pieces were stored before it failed.
    let short = blobs
        .put_stream(&at, "k", new.len() as u64 + 1, pieces(&new, 65_536))
        .await;
    assert!(matches!(short, Err(CapError::Invalid(_))), "{short:?}");
    let long = blobs.put_stream(&at, "k", 10, pieces(&new, 65_536)).await;
    assert!(matches!(long, Err(CapError::Invalid(_))), "{long:?}");
    let broken: BlobChunks = Box::pin(
        futures::stream::iter(
            new.chunks(chunks::CHUNK_BYTES)
                .take(2)
                .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
                .collect::<Vec<_>>(),
        )
        .chain(futures::stream::once(async {
            Err(CapError::Invalid("the client went away".into()))
        })),
    );
    let broke = blobs.put_stream(&at, "k", new.len() as u64, broken).await;
    assert!(broke.is_err());
    assert!(
        blobs.get(&at, "k").await.unwrap() == Some(old),
        "the old object stays"
    );
    assert_eq!(
        f.store.storage_usage(&at.tenant, Kind::Blob).await.unwrap(),
        usage,
        "and so does its size"
    );
    assert_eq!(
        f.stray_chunks().await.unwrap_or(0),
        0,
        "no chunks left behind"
    );
    // A new key that failed leaves nothing.
    let none = blobs.put_stream(&at, "new", 100, pieces(b"short", 2)).await;
    assert!(none.is_err());
    assert_eq!(blobs.get(&at, "new").await.unwrap(), None);
    assert_eq!(blobs.list(&at, "", None, 10).await.unwrap().keys, ["k"]);
}

blob_test!(the_quota_counts_puts_overwrites_refusals_and_deletes);
async fn the_quota_counts_puts_overwrites_refusals_and_deletes(on: On) {
    let f = Fixture::new(on).await;
    let blobs = f.blobs(Quota {
        items: None,
        bytes: Some(1000),
    });
    let at = bucket(&tenant("acme"));
    let used = || async { f.store.storage_usage(&at.tenant, Kind::Blob).await.unwrap() };
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
    if on == On::Files {
        // A write the filesystem refuses (a key that is a prefix of another) counts nothing.
        blobs.put(&at, "c/d", &[1; 10]).await.unwrap();
        assert!(matches!(
            blobs.put(&at, "c", &[1; 20]).await,
            Err(CapError::Conflict(_))
        ));
        assert!(blobs.delete(&at, "c/d").await.unwrap());
    }
    assert!(blobs.delete(&at, "b").await.unwrap());
    assert!(!blobs.delete(&at, "b").await.unwrap());
    assert_eq!(
        used().await,
        Usage {
            items: 1,
            bytes: 300
        }
    );
    blobs.put(&at, "e", &[1; 700]).await.unwrap();
    assert!(blobs.put(&at, "f", &[1; 1]).await.is_err(), "full");
    // The host's own writes (`orquesta blob-put`) pass, and are counted.
    f.blobs(Quota::UNLIMITED)
        .put(&at, "f", &[1; 10])
        .await
        .unwrap();
    assert_eq!(
        used().await,
        Usage {
            items: 3,
            bytes: 1010
        }
    );
}

blob_test!(concurrent_overwrites_leave_one_whole_object_counted_once);
async fn concurrent_overwrites_leave_one_whole_object_counted_once(on: On) {
    let f = Fixture::new(on).await;
    let blobs = Arc::new(f.blobs(Quota::UNLIMITED));
    let at = bucket(&tenant("acme"));
    // Distinct sizes and bytes, each past a store chunk; the key is new, so the writers
    // also race to create it.
    let writers: Vec<_> = (0..6_u8)
        .map(|i| {
            let (blobs, at) = (blobs.clone(), at.clone());
            tokio::spawn(async move {
                let data = vec![i; chunks::CHUNK_BYTES + 1000 * usize::from(i)];
                blobs
                    .put_stream(&at, "k", data.len() as u64, pieces(&data, 100_000))
                    .await
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap().unwrap();
    }
    let got = blobs.get(&at, "k").await.unwrap().unwrap();
    let i = got[0];
    assert_eq!(
        got.len(),
        chunks::CHUNK_BYTES + 1000 * usize::from(i),
        "one writer's size"
    );
    assert!(got.iter().all(|b| *b == i), "one writer's bytes, whole");
    let usage = f.store.storage_usage(&at.tenant, Kind::Blob).await.unwrap();
    assert_eq!(usage.items, 1);
    if matches!(on, On::StoreSqlite | On::StorePostgres) {
        // The size counted is the object's (files and S3 reserve before writing, and the
        // last reservation need not be the last write).
        assert_eq!(usage.bytes, got.len() as i64);
    }
    assert_eq!(
        f.stray_chunks().await.unwrap_or(0),
        0,
        "replaced versions deleted"
    );
}

blob_test!(hostile_keys_stay_in_their_tenant_and_bucket);
async fn hostile_keys_stay_in_their_tenant_and_bucket(on: On) {
    let f = Fixture::new(on).await;
    let blobs = f.blobs(Quota::UNLIMITED);
    let (a, b) = (bucket(&tenant("a")), bucket(&tenant("b")));
    let other = BlobBucket {
        tenant: a.tenant.clone(),
        bucket: "other".into(),
    };
    let hostile = [
        "../x",
        "a/../../b",
        "%2e%2e",
        "%2E%2E%2Fescape",
        "./y",
        "line\nbreak",
        "back\\slash",
        "etc/passwd",
    ];
    for key in hostile {
        blobs.put(&a, key, key.as_bytes()).await.unwrap();
        assert_eq!(
            blobs.get(&a, key).await.unwrap(),
            Some(key.as_bytes().to_vec()),
            "{key:?}"
        );
        for elsewhere in [&b, &other] {
            assert_eq!(
                blobs.get(elsewhere, key).await.unwrap(),
                None,
                "{key:?} seen from {elsewhere:?}"
            );
            assert!(!blobs.delete(elsewhere, key).await.unwrap());
        }
    }
    // Another tenant's keys of the same names are its own.
    blobs.put(&b, "../x", b"b's").await.unwrap();
    assert_eq!(blobs.get(&a, "../x").await.unwrap(), Some(b"../x".to_vec()));
    assert_eq!(blobs.list(&b, "", None, 100).await.unwrap().keys, ["../x"]);
    let mut listed = blobs.list(&a, "", None, 100).await.unwrap().keys;
    let mut expected: Vec<_> = hostile.iter().map(|k| k.to_string()).collect();
    listed.sort();
    expected.sort();
    assert_eq!(listed, expected);
    assert_eq!(
        blobs.list(&other, "", None, 100).await.unwrap().keys.len(),
        0
    );
    // Keys with empty segments (absolute, trailing, doubled) never reach a backend.
    for bad in ["", "/etc/passwd", "trail/", "a//b", "/", "nul\0byte"] {
        assert!(check_key(bad).is_err(), "{bad:?}");
    }
    assert!(check_key(&"k".repeat(2000)).is_err());
    match on {
        On::Files => {
            // Every file is under the tenant's folder.
            let root = f.dir.path().join("blobs");
            let mut names: Vec<_> = std::fs::read_dir(&root)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            names.sort();
            let mut tenants = vec![a.tenant.clone(), b.tenant.clone()];
            tenants.sort();
            assert_eq!(names, tenants);
        }
        On::S3 => {
            // Every object s3s-fs holds is under BUCKET/TENANT/BUCKET/.
            let root = f.s3.as_ref().unwrap().root.path().join(S3_BUCKET);
            let mut names: Vec<_> = std::fs::read_dir(&root)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| !n.starts_with('.'))
                .collect();
            names.sort();
            let mut tenants = vec![a.tenant.clone(), b.tenant.clone()];
            tenants.sort();
            assert_eq!(names, tenants, "nothing outside the tenants' prefixes");
            let outside: Vec<_> = std::fs::read_dir(f.s3.as_ref().unwrap().root.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| !n.starts_with('.'))
                .collect();
            assert_eq!(outside, [S3_BUCKET], "nothing outside the bucket");
        }
        On::StoreSqlite | On::StorePostgres => {}
    }
}

/// Chunks of a write that died with its host are swept once old; live ones stay.
#[tokio::test]
async fn abandoned_chunks_are_swept_and_live_ones_kept() {
    let f = Fixture::new(On::StoreSqlite).await;
    let blobs = f.blobs(Quota::UNLIMITED);
    let at = bucket(&tenant("acme"));
    blobs.put(&at, "live", b"kept").await.unwrap();
    let old = format!("{:016}-dead", now_ms() - chunks::ABANDONED_AFTER_MS - 1000);
    let recent = format!("{:016}-writing", now_ms());
    for version in [&old, &recent] {
        f.store.blob_chunk_insert(version, 0, b"x").await.unwrap();
    }
    assert_eq!(f.store.blob_sweep_abandoned().await.unwrap(), 1);
    assert_eq!(
        f.stray_chunks().await,
        Some(1),
        "the write in progress stays"
    );
    assert_eq!(
        blobs.get(&at, "live").await.unwrap(),
        Some(b"kept".to_vec())
    );
}

use super::super::now_ms;
