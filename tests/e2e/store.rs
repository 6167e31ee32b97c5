//! The service on PostgreSQL: two hosts sharing one database share the tenants' state.
//! Needs `ORQUESTA_TEST_POSTGRES_URL` (set by `.ci/run`); without it the test is ignored.

use orquesta_tests::server::TestServer;
use serde_json::Value;

const TENANT: &str = r#"
[plugins.hello]
source = "hello.wasm"

[[routes]]
method = "GET"
path = "/hello"
plugin = "hello"
"#;

#[tokio::test]
#[cfg_attr(no_postgres, ignore = "ORQUESTA_TEST_POSTGRES_URL is not set")]
async fn two_hosts_on_one_postgres_database_share_kv() {
    let url = orquesta_tests::db::postgres();
    // A tenant name of its own, so earlier runs' counters do not show.
    let tenant = format!("pg{}", uuid_like());
    let start = || {
        let url = url.clone();
        let tenant = tenant.clone();
        async move { TestServer::start(&["hello"], &[(&tenant, TENANT)], |c| c.store = Some(url)).await }
    };
    let (a, b) = (start().await, start().await);
    let mut counts = Vec::new();
    for host in [&a, &b, &a, &b] {
        let body: Value = host
            .client
            .get(format!("{}/t/{tenant}/hello?name=Ana", host.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        counts.push(body["count"].as_i64().unwrap());
    }
    assert_eq!(counts, [1, 2, 3, 4], "one counter across both hosts");
    a.shutdown().await;
    b.shutdown().await;
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{nanos:x}")
}
