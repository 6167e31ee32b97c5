//! The MOK tracking flow end to end through the service with the shipped tenant file and
//! workflow: log entries on AssistancesLoggerSQS -> the writer -> the tracking-mok
//! workflow -> TrackingMok against the fake MOK API -> SnsNotification. Each of the four
//! actions, a 401 answered by a new token, and MOK down (alert on the topic, the request
//! in the dead-letter queue, redriven once MOK is back). On the embedded SQLite database
//! always, and on MariaDB when `ORQUESTA_TEST_MYSQL_URL` is set.

use std::time::{Duration, Instant};

use orquesta_fakes::mok;
use orquesta_fakes::script::Forced;
use orquesta_tests::server::{ADMIN_TOKEN, TestServer, WorkflowAdmin};
use orquesta_tests::workspace;
use serde_json::{Value, json};

const TENANT: &str = "mok";
const CASE_CREATE: u64 = 20_836_453;
const CASE_OPEN: u64 = 321_321;
const OT_OPEN: u64 = 15_252_900;

struct Flow {
    server: TestServer,
    /// Holds the secret files.
    _secrets: tempfile::TempDir,
    admin: WorkflowAdmin,
    mok: mok::Handle,
}

/// The shipped tenant, pointed at the fake MOK at `base`, with its secrets in files and
/// (for MariaDB) its database at `database_url`.
fn tenant(
    base: &str,
    secrets: &std::path::Path,
    database_url: Option<&str>,
    more: &[(&str, &str)],
) -> String {
    let file = |name: &str| format!("{{ file = {:?} }}", secrets.join(name));
    let text = std::fs::read_to_string(workspace().join("examples/tenants/mok.toml")).unwrap();
    let mut swaps = vec![
        ("http://127.0.0.1:8782", base.to_string()),
        ("{ env = \"MOK_CLIENT_ID\" }", file("mok-client-id")),
        ("{ env = \"MOK_CLIENT_SECRET\" }", file("mok-client-secret")),
        ("../mok/", String::new()),
        // Seconds of backoff per failed call would only slow the test down.
        ("backoff_ms = 1000", "backoff_ms = 50".into()),
    ];
    swaps.extend(more.iter().map(|(a, b)| (*a, b.to_string())));
    if let Some(url) = database_url {
        swaps.push(("url = \"sqlite://mok.db\"", format!("url = {url:?}")));
        swaps.push(("schema.sqlite.sql", "schema.mariadb.sql".into()));
    }
    swaps.into_iter().fold(text, |text, (from, to)| {
        assert!(
            text.contains(from),
            "the example tenant no longer has {from}"
        );
        text.replace(from, &to)
    })
}

async fn start(database_url: Option<&str>, swaps: &[(&str, &str)]) -> Flow {
    let (router, mok) = mok::router(mok::Config::demo());
    let addr = orquesta_fakes::spawn("127.0.0.1:0".parse().unwrap(), router)
        .await
        .unwrap();
    // The open provider's OT exists upstream already.
    mok.add_ot(OT_OPEN, CASE_OPEN);
    let secrets = tempfile::tempdir().unwrap();
    std::fs::write(secrets.path().join("mok-client-id"), mok::DEMO_CLIENT_ID).unwrap();
    std::fs::write(
        secrets.path().join("mok-client-secret"),
        mok::DEMO_CLIENT_SECRET,
    )
    .unwrap();
    let text = tenant(
        &format!("http://{addr}"),
        secrets.path(),
        database_url,
        swaps,
    );
    let server = TestServer::start(
        &["tracking_mok", "sns_notification", "assistances_logger"],
        &[(TENANT, &text)],
        |c| {
            let examples = workspace().join("examples/mok");
            std::fs::create_dir_all(&c.tenant_dir).unwrap();
            for file in [
                "tracking-mok.asl.json",
                "schema.sqlite.sql",
                "schema.mariadb.sql",
            ] {
                std::fs::copy(examples.join(file), c.tenant_dir.join(file)).unwrap();
            }
            std::fs::write(c.tenant_dir.join("mok-client-id"), mok::DEMO_CLIENT_ID).unwrap();
            std::fs::write(
                c.tenant_dir.join("mok-client-secret"),
                mok::DEMO_CLIENT_SECRET,
            )
            .unwrap();
        },
    )
    .await;
    let tenants = server.admin("tenants").await;
    assert!(
        tenants["tenants"][0]["error"].is_null(),
        "the tenant loads: {tenants}"
    );
    let admin = WorkflowAdmin::new(&server.url, TENANT, ADMIN_TOKEN);
    Flow {
        server,
        _secrets: secrets,
        admin,
        mok,
    }
}

impl Flow {
    async fn send(&self, queue: &str, body: Value) {
        let (status, answer) = self
            .admin
            .call(
                reqwest::Method::POST,
                &format!("/tenants/{TENANT}/queues/{queue}/messages"),
                Some(json!({ "body": body })),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
    }

    async fn messages(&self, queue: &str) -> Vec<Value> {
        let (_, body) = self
            .admin
            .call(
                reqwest::Method::GET,
                &format!("/tenants/{TENANT}/queues/{queue}/messages"),
                None,
            )
            .await;
        body["messages"].as_array().cloned().unwrap_or_default()
    }

    /// Logs an action for `event_id` and waits for its execution to end; the
    /// execution's description and the TrackingMok result.
    async fn track(&self, action: &str, event_id: u64, note: &str) -> (Value, Value) {
        let sk = format!("LOG#{action}#{}", uuid());
        self.send(
            "AssistancesLoggerSQS",
            json!({
                "PK": format!("EVENT#{event_id}"), "SK": sk,
                "logData": { "action": action, "eventId": event_id, "eventCode": "EVT001",
                             "description": note, "sourceCode": "MOK" },
            }),
        )
        .await;
        let execution = self.execution_for(&sk).await;
        let id = execution["execution_id"].as_str().unwrap().to_string();
        let done = self.admin.finished(&id, Duration::from_secs(30)).await;
        assert_eq!(done["status"], "SUCCEEDED", "{done}");
        let tracked = self
            .admin
            .history(&id)
            .await
            .into_iter()
            .find(|e| e["type"] == "TaskSucceeded" && e["state"] == "TrackingMok")
            .map(|e| e["detail"]["output"].clone())
            .unwrap_or(Value::Null);
        (done, tracked)
    }

    /// The execution the writer started for the log entry `sk`.
    async fn execution_for(&self, sk: &str) -> Value {
        let started = Instant::now();
        loop {
            let (_, list) = self
                .admin
                .call(
                    reqwest::Method::GET,
                    &format!("/tenants/{TENANT}/executions?workflow=tracking-mok&limit=1000"),
                    None,
                )
                .await;
            let found = list["executions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|e| e["input"]["SK"] == sk)
                .cloned();
            if let Some(e) = found {
                return e;
            }
            if started.elapsed() > Duration::from_secs(20) {
                let logger = self.messages("AssistancesLoggerSQS").await;
                panic!("no execution for {sk}: {list}\nlogger queue: {logger:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn uuid() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// The four actions in order, as a provider's work goes: the closed provider's case
/// gets an OT; the open one's OT is started, annotated and resolved.
async fn four_actions(flow: &Flow) {
    let alerts = flow.messages("mok-alerts").await.len();
    let (_, created) = flow
        .track("EVENT_PROVIDER_CREATE", 1001, "Traslado a clinica")
        .await;
    assert_eq!(created["statusCode"], 200, "{created}");
    let new_ot = mok::FIRST_OT_ID + 1; // the first id is the seeded OT's
    let ot = flow.mok.ot(new_ot).expect("an OT was created");
    assert_eq!(ot["IdCase"], CASE_CREATE);
    assert_eq!(ot["IdProvider"], 90229);
    assert_eq!(ot["IdService"], 1124);
    assert_eq!(ot["comments"], json!(["Traslado a clinica"]));

    let (_, started) = flow
        .track("EVENT_PROVIDER_START", 1002, "Proveedor en camino")
        .await;
    assert_eq!(started["statusCode"], 200, "{started}");
    assert_eq!(flow.mok.ot(OT_OPEN).unwrap()["status"], "STARTED");

    let (done, noted) = flow.track("NOTE_REGISTER", 1002, "Paciente estable").await;
    assert_eq!(noted["statusCode"], 200, "{noted}");
    assert_eq!(
        done["output"],
        json!({ "status_notification": "proceso exitoso, no se notifico" })
    );
    assert_eq!(
        flow.mok.script_of(CASE_OPEN).expect("a script"),
        json!({ "selfAssistanceType": "MEDICA", "selfAssistance": "Consulta domiciliaria",
                "initialStimate": 120.5, "finalStimate": 180.0, "trm": 3961.1,
                "finalCIE10Diagnosis": "J20.9" })
    );

    let (_, resolved) = flow
        .track("EVENT_PROVIDER_RESOLVE", 1002, "Servicio terminado")
        .await;
    assert_eq!(resolved["statusCode"], 200, "{resolved}");
    let ot = flow.mok.ot(OT_OPEN).unwrap();
    assert_eq!(ot["status"], "RESOLVED");
    assert_eq!(
        ot["comments"],
        json!([
            "Proveedor en camino",
            "Paciente estable",
            "Servicio terminado"
        ])
    );
    // One token served all four: it is cached across invocations.
    assert_eq!(flow.mok.tokens_issued(), 1);
    assert_eq!(
        flow.messages("mok-alerts").await.len(),
        alerts,
        "no new alerts"
    );
}

#[tokio::test]
async fn the_four_actions_a_401_and_mok_down_on_the_embedded_database() {
    let flow = start(None, &[]).await;
    four_actions(&flow).await;
    // The OT id went back on the EventProvider row.
    let file = flow.server.dir.path().join("data/databases/mok/mok.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    let (external,): (String,) =
        sqlx::query_as("SELECT ExternalRequestId FROM EventProvider WHERE Id = 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(external, format!("{CASE_CREATE}|{}", mok::FIRST_OT_ID + 1));

    // MOK forgets its tokens: the cached one gets a 401, a new one is fetched, and the
    // call goes through.
    flow.mok.revoke_tokens();
    let (_, tracked) = flow.track("EVENT_PROVIDER_START", 1002, "otra vez").await;
    assert_eq!(tracked["statusCode"], 200, "{tracked}");
    assert_eq!(flow.mok.tokens_issued(), 2);
    let statuses: Vec<u16> = flow
        .mok
        .script()
        .requests_to("/v1/processService")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(&statuses[statuses.len() - 2..], [401, 200]);

    // MOK down: retried, then an alert on the topic and the request parked in the
    // dead-letter queue.
    flow.mok.script().push(Forced::always(
        "/v1/processService",
        503,
        json!({ "message": "Service Unavailable" }),
    ));
    let (done, tracked) = flow.track("EVENT_PROVIDER_START", 1002, "sin MOK").await;
    assert_eq!(tracked["statusCode"], 500, "{tracked}");
    assert_eq!(
        done["output"],
        json!({ "status_notification": "envio_exitoso", "dead_lettered": true })
    );
    let alerts = flow.messages("mok-alerts").await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    // The alerts queue gets SNS's notification document, subject included.
    let notice: Value = serde_json::from_str(alerts[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        notice["Subject"], "Tracking Mok Lambda EVENT_PROVIDER_START",
        "{notice}"
    );
    let alert: Value = serde_json::from_str(notice["Message"].as_str().unwrap()).unwrap();
    assert_eq!(alert["error"], "Error interno del servidor");
    assert!(
        alert["details"].as_str().unwrap().contains("503"),
        "{alert}"
    );
    let parked = flow.messages("AssistancesLoggerDLQ").await;
    assert_eq!(parked.len(), 1, "{parked:?}");
    let request: Value = serde_json::from_str(parked[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(request["logData"]["description"], "sin MOK");

    // MOK is back: the redrive sends the request through the logger again.
    flow.mok.script().reset();
    let (status, moved) = flow
        .admin
        .call(
            reqwest::Method::POST,
            &format!("/tenants/{TENANT}/queues/AssistancesLoggerDLQ/redrive"),
            None,
        )
        .await;
    assert_eq!((status, moved["moved"].clone()), (200, json!(1)));
    let started = Instant::now();
    loop {
        let comments = flow.mok.ot(OT_OPEN).unwrap()["comments"].clone();
        if comments.as_array().unwrap().iter().any(|c| c == "sin MOK") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not redriven: {comments}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(flow.messages("AssistancesLoggerDLQ").await.is_empty());
    flow.server.shutdown().await;
}

#[tokio::test]
async fn entries_the_writer_cannot_take_end_in_the_dead_letter_queue() {
    // A second of visibility instead of five minutes, so the retries come back quickly.
    let quick = [(
        "visibility_timeout_seconds = 300",
        "visibility_timeout_seconds = 1",
    )];
    let flow = start(None, &quick).await;
    flow.send(
        "AssistancesLoggerSQS",
        json!({ "logData": { "action": "NOTE_REGISTER" } }),
    )
    .await;
    let started = Instant::now();
    let parked = loop {
        let parked = flow.messages("AssistancesLoggerDLQ").await;
        if !parked.is_empty() {
            break parked;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Delivered max_receive_count (3) times, each refused, then moved.
    let failures: Vec<&Value> = parked[0]["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["event"] == "failed")
        .collect();
    assert_eq!(failures.len(), 3, "{parked:?}");
    assert!(flow.messages("AssistancesLoggerSQS").await.is_empty());
    let (_, list) = flow
        .admin
        .call(
            reqwest::Method::GET,
            &format!("/tenants/{TENANT}/executions"),
            None,
        )
        .await;
    assert_eq!(list["executions"], json!([]), "no workflow ran");
    flow.server.shutdown().await;
}

#[tokio::test]
#[cfg_attr(no_mysql, ignore = "ORQUESTA_TEST_MYSQL_URL is not set")]
async fn the_four_actions_on_mariadb() {
    let base = orquesta_tests::db::mysql();
    // A database of its own, with the demo's rows, dropped at the end.
    let name = format!("mok_{}", uuid());
    let server = sqlx::MySqlPool::connect(&base).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&server)
        .await
        .unwrap();
    let url = format!("{}/{name}", base.rsplit_once('/').unwrap().0);
    let flow = start(Some(&url), &[]).await;
    // The first statement creates the tables (the tenant's init script); seed them after.
    let (_, tracked) = flow.track("EVENT_PROVIDER_START", 1, "nada").await;
    assert_eq!(tracked["statusCode"], 400, "no provider yet: {tracked}");
    assert_eq!(
        flow.messages("mok-alerts").await.len(),
        1,
        "a 400 is alerted"
    );
    assert!(
        flow.messages("AssistancesLoggerDLQ").await.is_empty(),
        "but not parked"
    );
    let db = sqlx::MySqlPool::connect(&url).await.unwrap();
    for statement in [
        "INSERT INTO EventProvider (Id, EventId, EventProviderStatusId, ExternalRequestId, CreatedAt) VALUES \
         (1, 1001, '4', '20836453|', '2026-11-30T10:00:00Z'), (2, 1002, '2', '321321|15252900', '2026-11-30T11:00:00Z')",
        "INSERT INTO GuaranteePayment (CaseId, SelfAssistanceType, SelfAssistance, Estimate, Trm, Cie10Diagnosis, CreatedAt) VALUES \
         (321321, 'MEDICA', 'Consulta domiciliaria', 120.5, 3950.25, 'J06.9', '2026-11-30T11:05:00Z'), \
         (321321, 'MEDICA', 'Consulta domiciliaria', 180.0, 3961.1, 'J20.9', '2026-11-30T12:40:00Z')",
    ] {
        sqlx::query(statement).execute(&db).await.unwrap();
    }
    four_actions(&flow).await;
    let (external,): (String,) =
        sqlx::query_as("SELECT ExternalRequestId FROM EventProvider WHERE Id = 1")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(external, format!("{CASE_CREATE}|{}", mok::FIRST_OT_ID + 1));
    flow.server.shutdown().await;
    db.close().await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {name}")))
        .execute(&server)
        .await
        .unwrap();
}
