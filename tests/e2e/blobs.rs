//! Blobs on a shared backend: two `orquesta serve` processes on one PostgreSQL database
//! keep blob bytes in it by default (`[blobs]` unset), so an object written through one
//! host's admin API is read, replaced and deleted through the other's, and neither
//! host's disk holds it. Needs `ORQUESTA_TEST_POSTGRES_URL` (set by `.ci/run`).

use std::path::Path;

use orquesta_tests::server::{ADMIN_TOKEN, ServeProcess};

const CONFIG: &str = r#"
listen = "127.0.0.1:0"
data_dir = "data"
plugin_dir = "plugins"
tenant_dir = "tenants"
admin_token = { file = "admin-token" }
shutdown_grace_ms = 100
"#;

const TENANT: &str = r#"
[plugins.hello]
source = "hello.wasm"
"#;

/// A host's folder: its own data directory, the same tenants.
fn host_dir(tenants: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["plugins", "tenants"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    std::fs::write(dir.path().join("admin-token"), ADMIN_TOKEN).unwrap();
    std::fs::copy(
        orquesta_tests::plugin("hello"),
        dir.path().join("plugins/hello.wasm"),
    )
    .unwrap();
    for tenant in tenants {
        std::fs::write(dir.path().join(format!("tenants/{tenant}.toml")), TENANT).unwrap();
    }
    dir
}

/// Files under `dir`, if any.
fn files_under(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|e| {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                files_under(&e.path())
            } else {
                1
            }
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(no_postgres, ignore = "ORQUESTA_TEST_POSTGRES_URL is not set")]
async fn two_hosts_on_one_postgres_database_share_blobs() {
    let url = orquesta_tests::db::postgres();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let (tenant, other) = (format!("bl{nanos:x}"), format!("bo{nanos:x}"));
    let (dir_a, dir_b) = (host_dir(&[&tenant, &other]), host_dir(&[&tenant, &other]));
    let env = [("ORQUESTA_STORE_URL", url.as_str())];
    let a = ServeProcess::start(dir_a.path(), CONFIG, &env);
    let b = ServeProcess::start(dir_b.path(), CONFIG, &env);
    let client = reqwest::Client::new();
    let blob = |host: &ServeProcess, tenant: &str, key: &str| {
        format!("{}/admin/v1/tenants/{tenant}/blobs/files/{key}", host.url)
    };
    let auth = format!("Bearer {ADMIN_TOKEN}");

    // 3 MiB and a bit: several of the store's chunks, streamed in and out.
    let data: Vec<u8> = (0..(3 << 20) + 123_u32).map(|i| (i % 251) as u8).collect();
    let put = client
        .put(blob(&a, &tenant, "reports/2026/big.bin"))
        .header("authorization", &auth)
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200, "{}", put.text().await.unwrap());
    let stored: serde_json::Value = put.json().await.unwrap();
    assert_eq!(stored["bytes"], data.len());

    let got = client
        .get(blob(&b, &tenant, "reports/2026/big.bin"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.content_length(), Some(data.len() as u64));
    assert!(
        got.bytes().await.unwrap() == data,
        "host b reads what host a wrote"
    );

    // Replaced through b (a body without a length: read whole), read through a.
    let chunked = reqwest::Body::wrap_stream(futures::stream::iter([
        Ok::<_, std::io::Error>(b"second ".as_slice()),
        Ok(b"version".as_slice()),
    ]));
    let put = client
        .put(blob(&b, &tenant, "reports/2026/big.bin"))
        .header("authorization", &auth)
        .body(chunked)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200, "{}", put.text().await.unwrap());
    let got = client
        .get(blob(&a, &tenant, "reports/2026/big.bin"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(got.bytes().await.unwrap(), &b"second version"[..]);

    // Another tenant's bucket of the same name does not hold it, on either host; a
    // key spelled to climb out of the tenant's bucket is only a key.
    for host in [&a, &b] {
        let other_get = client
            .get(blob(host, &other, "reports/2026/big.bin"))
            .header("authorization", &auth)
            .send()
            .await
            .unwrap();
        assert_eq!(other_get.status(), 404);
    }
    let climb = format!("%2E%2E%2F%2E%2E%2F{other}%2Ffiles%2Fstolen");
    let put = client
        .put(blob(&a, &tenant, &climb))
        .header("authorization", &auth)
        .body("mine")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200, "{}", put.text().await.unwrap());
    let stolen = client
        .get(blob(&b, &other, "stolen"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(
        stolen.status(),
        404,
        "the other tenant's bucket is untouched"
    );

    // Neither host's disk holds a blob: the bytes live in the database.
    for dir in [&dir_a, &dir_b] {
        assert_eq!(files_under(&dir.path().join("data/blobs")), 0);
    }
    drop((a, b));
}
