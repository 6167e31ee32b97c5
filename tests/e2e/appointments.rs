//! The appointments flow end to end through the service with the shipped tenant file:
//! API -> topic with country filters -> PE/CL queues -> processors inserting into their
//! country's database -> bus rule -> confirmation queue -> `completed`. On the embedded
//! SQLite databases always, and on MariaDB and PostgreSQL when `.ci/run`'s URLs are set.
//! The TypeScript port (plugins/typescript/appointments) runs each case too.

use std::time::{Duration, Instant};

use orquesta_tests::server::TestServer;
use serde_json::{Value, json};

const KEY: &str = "demo-key";

/// The example tenant, with its country databases pointed at `url` in `dialect`.
fn tenant(databases: Option<(&str, &str)>) -> String {
    let text = std::fs::read_to_string(
        orquesta_tests::workspace().join("examples/tenants/appointments.toml"),
    )
    .unwrap();
    let Some((url, dialect)) = databases else {
        return text;
    };
    let mut swaps = vec![
        (
            "url = \"sqlite://appointments-pe.db\"",
            format!("url = {url:?}"),
        ),
        (
            "url = \"sqlite://appointments-cl.db\"",
            format!("url = {url:?}"),
        ),
    ];
    swaps.push(("dialect = \"sqlite\"", format!("dialect = {dialect:?}")));
    swaps.into_iter().fold(text, |text, (from, to)| {
        assert!(
            text.contains(from),
            "the example tenant no longer has {from}"
        );
        text.replace(from, &to)
    })
}

async fn run_flow(s: &TestServer, insured: &str) -> Vec<Value> {
    let url = format!("{}/t/acme/appointments", s.url);
    let post = |body: Value| {
        s.client
            .post(&url)
            .header("x-api-key", KEY)
            .json(&body)
            .send()
    };
    // Bad input is refused and stores nothing.
    for bad in [
        json!({ "insuredId": insured, "dateSchedule": "2026-12-01T09:30", "country": "AR" }),
        json!({ "insuredId": "12", "dateSchedule": "2026-12-01T09:30", "country": "PE" }),
        json!({ "insuredId": insured, "dateSchedule": "tomorrow", "country": "PE" }),
        json!({ "insuredId": insured, "dateSchedule": "2026-13-01T09:30", "country": "PE" }),
    ] {
        let r = post(bad.clone()).await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }
    let r = s
        .client
        .post(&url)
        .header("x-api-key", KEY)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    let mut ids = Vec::new();
    for (date, country) in [
        ("2026-12-03T10:00", "PE"),
        ("2026-12-01T09:30", "CL"),
        ("2026-12-02T08:15", "PE"),
    ] {
        let r = post(json!({ "insuredId": insured, "dateSchedule": date, "country": country }))
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let created: Value = r.json().await.unwrap();
        assert_eq!(created["status"], "pending");
        ids.push(created["appointmentId"].as_str().unwrap().to_string());
    }
    let started = Instant::now();
    loop {
        let list: Value = s
            .client
            .get(format!("{url}/{insured}"))
            .header("x-api-key", KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let items = list["items"].as_array().unwrap().clone();
        assert_eq!(
            items.len(),
            3,
            "only the valid appointments are stored: {list}"
        );
        if items.iter().all(|i| i["status"] == "completed") {
            let dates: Vec<_> = items
                .iter()
                .map(|i| i["dateSchedule"].as_str().unwrap())
                .collect();
            assert_eq!(
                dates,
                ["2026-12-01T09:30", "2026-12-02T08:15", "2026-12-03T10:00"]
            );
            return items;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not completed: {list}"
        );
        // Well under the usage plan's 10 requests/s.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn start(text: &str) -> TestServer {
    TestServer::start(&["appointments"], &[("acme", text)], |_| {}).await
}

#[tokio::test]
async fn appointments_complete_on_the_embedded_databases() {
    let s = start(&tenant(None)).await;
    on_embedded(s).await;
}

/// The same flow with the TypeScript port (plugins/typescript/appointments) in place of
/// the Rust plugin: the same tenant file but the component's name.
#[tokio::test]
#[cfg_attr(
    no_componentize_js,
    ignore = "componentize-js 0.23.0 is not installed (docs/PLUGINS.md)"
)]
async fn appointments_complete_on_the_embedded_databases_with_the_typescript_port() {
    on_embedded(start_typescript(&tenant(None)).await).await;
}

/// A host serving `text` with the TypeScript port in place of the Rust plugin: the same
/// tenant file but the component's name.
async fn start_typescript(text: &str) -> TestServer {
    let from = "source = \"appointments.wasm\"";
    assert!(
        text.contains(from),
        "the example tenant no longer has {from}"
    );
    let text = text.replace(from, "source = \"appointments-ts.wasm\"");
    TestServer::start(&["appointments-ts"], &[("acme", &text)], |_| {}).await
}

async fn on_embedded(s: TestServer) {
    let items = run_flow(&s, "01234").await;
    // Each country's rows are in its own SQLite file under the data directory.
    for (country, want) in [("pe", 2), ("cl", 1)] {
        let file = s
            .dir
            .path()
            .join(format!("data/databases/acme/appointments-{country}.db"));
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", file.display()))
            .await
            .unwrap();
        let rows: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT appointment_id, country FROM appointment_{country}"
        )))
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(rows.len(), want, "{country}");
        assert!(rows.iter().all(|(id, c)| c.eq_ignore_ascii_case(country)
            && items.iter().any(|i| i["appointmentId"] == id.as_str())));
    }
    let dlq = s
        .admin("tenants/acme/queues/appointment-dlq/messages")
        .await;
    assert_eq!(dlq["messages"], json!([]));
    s.shutdown().await;
}

async fn on_server(url: String, dialect: &str, typescript: bool) {
    // A fresh insured id per run (and port) keeps runs apart in the shared tables.
    let insured = format!(
        "{:05}",
        (std::process::id() + u32::from(typescript)) % 100_000
    );
    let text = tenant(Some((&url, dialect)));
    let s = if typescript {
        start_typescript(&text).await
    } else {
        start(&text).await
    };
    let items = run_flow(&s, &insured).await;
    let ids: Vec<String> = items
        .iter()
        .map(|i| i["appointmentId"].as_str().unwrap().to_string())
        .collect();
    let count = |table: &'static str| {
        let (url, ids) = (url.clone(), ids.clone());
        async move {
            let pool = sqlx::AnyPool::connect(&url).await.unwrap();
            let mut n = 0;
            for id in &ids {
                let sql = if url.starts_with("postgres") {
                    format!(
                        "SELECT CAST(COUNT(*) AS BIGINT) FROM {table} WHERE appointment_id = $1"
                    )
                } else {
                    format!("SELECT CAST(COUNT(*) AS SIGNED) FROM {table} WHERE appointment_id = ?")
                };
                let (c,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(id)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                n += c;
            }
            n
        }
    };
    assert_eq!(count("appointment_pe").await, 2);
    assert_eq!(count("appointment_cl").await, 1);
    s.shutdown().await;
}

#[tokio::test]
#[cfg_attr(no_mysql, ignore = "ORQUESTA_TEST_MYSQL_URL is not set")]
async fn appointments_complete_on_mariadb() {
    on_server(orquesta_tests::db::mysql(), "mysql", false).await;
}

#[tokio::test]
#[cfg_attr(no_postgres, ignore = "ORQUESTA_TEST_POSTGRES_URL is not set")]
async fn appointments_complete_on_postgres() {
    on_server(orquesta_tests::db::postgres(), "postgres", false).await;
}

#[tokio::test]
#[cfg_attr(no_mysql, ignore = "ORQUESTA_TEST_MYSQL_URL is not set")]
#[cfg_attr(
    no_componentize_js,
    ignore = "componentize-js 0.23.0 is not installed (docs/PLUGINS.md)"
)]
async fn appointments_complete_on_mariadb_with_the_typescript_port() {
    on_server(orquesta_tests::db::mysql(), "mysql", true).await;
}

#[tokio::test]
#[cfg_attr(no_postgres, ignore = "ORQUESTA_TEST_POSTGRES_URL is not set")]
#[cfg_attr(
    no_componentize_js,
    ignore = "componentize-js 0.23.0 is not installed (docs/PLUGINS.md)"
)]
async fn appointments_complete_on_postgres_with_the_typescript_port() {
    on_server(orquesta_tests::db::postgres(), "postgres", true).await;
}
