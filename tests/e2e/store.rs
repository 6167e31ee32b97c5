//! The service on PostgreSQL: two hosts sharing one database share the tenants' state.
//! Needs `ORQUESTA_TEST_POSTGRES_URL` (set by `.ci/run`); without it the test says so
//! and checks nothing else.

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
async fn two_hosts_on_one_postgres_database_share_kv() {
    let Ok(url) = std::env::var("ORQUESTA_TEST_POSTGRES_URL") else {
        eprintln!("note: ORQUESTA_TEST_POSTGRES_URL is not set; PostgreSQL test skipped");
        return;
    };
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
