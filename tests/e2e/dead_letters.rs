//! Retry policies and dead-letter queues of deliveries: a topic subscription's or bus rule
//! target's delivery that fails past its policy goes to its dead-letter queue as the
//! cloud leaves it there (SNS's envelope; the event with EventBridge's error attributes),
//! or is dropped; either way it is listed as failed in the admin API, for its tenant only.

use std::time::{Duration, Instant};

use orquesta_tests::server::{ADMIN_TOKEN, TestServer, post};
use serde_json::{Value, json};

const TENANT: &str = r#"
[plugins.worker]
source = "hostile.wasm"
allow = { topics = ["news", "bare"], buses = ["default"] }

[[routes]]
method = "POST"
path = "/act"
plugin = "worker"

[queues.dlq]

[topics.news]
subscriptions = [
  { plugin = "worker", retry_policy = { maximum_retry_attempts = 1 }, dead_letter = { queue = "dlq" } },
]

[topics.bare]
subscriptions = [{ plugin = "worker", retry_policy = { maximum_retry_attempts = 0 } }]

[[buses.default.rules]]
name = "paid"
pattern = { source = ["billing"] }
targets = [
  { plugin = "worker", retry_policy = { maximum_retry_attempts = 2, maximum_event_age_seconds = 60 }, dead_letter = { queue = "dlq" } },
]
"#;

async fn publish(s: &TestServer, tenant: &str, topic: &str, subject: &str) {
    let (code, r) = post(
        s,
        &format!("/admin/v1/tenants/{tenant}/topics/{topic}/messages"),
        json!({ "subject": subject, "body": { "n": 1 }, "attributes": { "k": "v" } }),
    )
    .await;
    assert_eq!(code, 200, "{r}");
}

async fn failed(s: &TestServer, tenant: &str) -> Vec<Value> {
    let r = s
        .admin(&format!("tenants/{tenant}/deliveries?state=failed"))
        .await;
    r["deliveries"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .clone()
}

/// How often the plugin of `tenant` counted `key` (hostile counts each delivery).
async fn counted(s: &TestServer, tenant: &str, key: &str) -> Value {
    let (_, r) = post(
        s,
        &format!("/t/{tenant}/act"),
        json!({ "attack": "kv-read", "key": key }),
    )
    .await;
    r["found"][format!("default/{key}")].clone()
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what} never happened"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn deliveries_failing_past_their_policy_are_dead_lettered_or_dropped_and_listed() {
    let s = TestServer::start(&["hostile"], &[("acme", TENANT), ("other", TENANT)], |_| {}).await;
    publish(&s, "acme", "news", "fail-news").await;
    publish(&s, "acme", "news", "fine").await;
    publish(&s, "acme", "bare", "fail-bare").await;
    publish(&s, "other", "bare", "fail-other").await;
    let (code, r) = post(
        &s,
        "/admin/v1/tenants/acme/buses/default/events",
        json!({ "source": "billing", "detail_type": "FailPaid", "detail": { "order": 7 } }),
    )
    .await;
    assert_eq!(code, 200, "{r}");
    let event_id = r["id"].as_str().unwrap().to_string();

    eventually("three failed deliveries of acme", async || {
        failed(&s, "acme").await.len() == 3
    })
    .await;
    // Each was tried as its policy says: 1 retry, none, 2 retries; the good one once.
    assert_eq!(counted(&s, "acme", "topic:news:fail-news").await, "2");
    assert_eq!(counted(&s, "acme", "topic:bare:fail-bare").await, "1");
    assert_eq!(counted(&s, "acme", "bus:default:FailPaid").await, "3");
    assert_eq!(counted(&s, "acme", "topic:news:fine").await, "1");

    let list = failed(&s, "acme").await;
    let by_origin = |origin: &str| {
        list.iter()
            .find(|d| d["origin"] == origin)
            .unwrap_or_else(|| panic!("no {origin} in {list:?}"))
            .clone()
    };
    let news = by_origin("orquesta:acme:news");
    assert_eq!(
        (news["attempts"].clone(), news["dead_letter"].clone()),
        (json!(2), json!("dlq"))
    );
    assert!(
        news["last_error"]
            .as_str()
            .unwrap()
            .contains("failing `fail-news` on purpose"),
        "{news}"
    );
    let bare = by_origin("orquesta:acme:bare");
    assert_eq!(bare["dead_letter"], Value::Null, "dropped: {bare}");
    assert_eq!(bare["state"], "failed");
    let paid = by_origin("orquesta:acme:rule/default/paid");
    assert_eq!(
        (paid["attempts"].clone(), paid["max_attempts"].clone()),
        (json!(3), json!(3))
    );
    assert_eq!(paid["target"], "worker");

    // The dead-letter queue holds SNS's envelope and the event with EventBridge's
    // attributes; the dropped one is not there.
    let dlq = s.admin("tenants/acme/queues/dlq/messages").await;
    let letters = dlq["messages"].as_array().unwrap();
    assert_eq!(letters.len(), 2, "{dlq}");
    let body = |m: &Value| -> Value { serde_json::from_str(m["body"].as_str().unwrap()).unwrap() };
    let envelope = letters
        .iter()
        .map(body)
        .find(|b| b["Type"] == "Notification")
        .unwrap_or_else(|| panic!("no envelope in {dlq}"));
    assert_eq!(envelope["Subject"], "fail-news");
    assert_eq!(envelope["TopicArn"], "orquesta:acme:news");
    assert_eq!(envelope["Message"], "{\"n\":1}");
    assert_eq!(
        envelope["MessageAttributes"]["k"],
        json!({ "Type": "String", "Value": "v" })
    );
    let event = letters
        .iter()
        .find(|m| body(m)["detail-type"] == "FailPaid")
        .unwrap_or_else(|| panic!("no event in {dlq}"));
    assert_eq!(body(event)["id"], event_id.as_str());
    assert_eq!(body(event)["detail"], json!({ "order": 7 }));
    let attributes = &event["attributes"];
    assert_eq!(attributes["ERROR_CODE"], "SDK_CLIENT_ERROR", "{event}");
    assert!(
        attributes["ERROR_MESSAGE"]
            .as_str()
            .unwrap()
            .contains("DeliveryFailed"),
        "{event}"
    );
    assert_eq!(
        attributes["EXHAUSTED_RETRY_CONDITION"],
        "MaximumRetryAttemptsExhausted"
    );
    assert_eq!(attributes["RETRY_ATTEMPTS"], "2");
    assert_eq!(attributes["RULE_ARN"], "orquesta:acme:rule/default/paid");
    assert_eq!(attributes["TARGET_ARN"], "orquesta:acme:plugin/worker");

    // Nothing is pending any more, and the failed ones are not tried again.
    let pending = s.admin("tenants/acme/deliveries?state=pending").await;
    assert_eq!(pending["deliveries"], json!([]), "{pending}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(counted(&s, "acme", "bus:default:FailPaid").await, "3");

    // Dropped deliveries are counted.
    for outcome in ["dropped", "dead_lettered"] {
        let labels = [("tenant", "acme"), ("outcome", outcome)];
        let n = s.metric("orquesta_deliveries_failed_total", &labels).await;
        assert!(n > 0.0, "no {outcome} delivery counted");
    }
    s.shutdown().await;
}

/// Attack: one tenant's listing never shows another's deliveries, whatever the path;
/// the route needs the admin token and a serving tenant.
#[tokio::test]
async fn a_tenants_deliveries_are_listed_for_that_tenant_only() {
    let s = a_failed_delivery_each().await;
    let mine = failed(&s, "acme").await;
    assert!(
        mine.iter().all(|d| d["origin"] == "orquesta:acme:bare"
            && !d["event"].as_str().unwrap().contains("fail-secret")),
        "{mine:?}"
    );
    let theirs = failed(&s, "other").await;
    assert!(theirs[0]["event"].as_str().unwrap().contains("fail-secret"));
    // Paging past the tenant's own rows reaches nobody else's.
    let past = s
        .admin(&format!(
            "tenants/acme/deliveries?state=failed&after={}",
            mine[0]["seq"]
        ))
        .await;
    assert_eq!(past["deliveries"], json!([]), "{past}");
    for (path, want) in [
        ("tenants/nobody/deliveries", 404),
        ("tenants/acme%27%20OR%20%271%27=%271/deliveries", 404),
        ("tenants/acme/deliveries?state=everything", 400),
        ("tenants/acme/deliveries?tenant=other", 400),
    ] {
        let r = s
            .client
            .get(format!("{}/admin/v1/{path}", s.url))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), want, "{path}");
    }
    let r = s
        .client
        .get(format!("{}/admin/v1/tenants/acme/deliveries", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // Through a plugin's own route nothing of it is reachable either.
    let r = s
        .client
        .get(format!(
            "{}/t/acme/admin/v1/tenants/other/deliveries",
            s.url
        ))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    s.shutdown().await;
}

/// `orquesta deliveries` lists what the admin API lists, from the host's store: a
/// tenant's own failed or pending deliveries only. Attack: a tenant name that tries to
/// reach further (SQL, another tenant) is refused or finds nothing of anyone else's, and
/// a directory without a store is refused rather than given an empty one.
#[tokio::test]
async fn the_cli_lists_a_tenants_deliveries_from_the_store() {
    let s = a_failed_delivery_each().await;
    let db = s.dir.path().join("data/orquesta.db");
    let store = format!("sqlite://{}", db.display());
    let cli = |args: Vec<String>| {
        let dir = s.dir.path().to_path_buf();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            orquesta_tests::run_orquesta(&dir, &args, None)
        })
    };
    let list = |tenant: &str, extra: &[&str]| {
        let mut args = vec!["deliveries".to_string(), tenant.to_string()];
        args.extend(["--store".to_string(), store.clone()]);
        args.extend(extra.iter().map(|a| a.to_string()));
        cli(args)
    };
    let (code, stdout, stderr) = list("acme", &[]).await.unwrap();
    assert_eq!(code, 0, "{stderr}");
    let page: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let api = s.admin("tenants/acme/deliveries").await;
    assert_eq!(page, api, "the CLI and the admin API agree");
    let listed = page["deliveries"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{page}");
    assert_eq!(listed[0]["origin"], "orquesta:acme:bare");
    assert!(!stdout.contains("fail-secret"), "{stdout}");
    let (code, stdout, _) = list("acme", &["--state", "pending"]).await.unwrap();
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&stdout).unwrap()["deliveries"],
        json!([])
    );
    // Paging: a page of one names where the next starts, and that page is empty.
    let (_, stdout, _) = list("acme", &["--limit", "1"]).await.unwrap();
    let first: Value = serde_json::from_str(&stdout).unwrap();
    let after = first["next_after"].to_string();
    let (_, stdout, _) = list("acme", &["--after", &after]).await.unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&stdout).unwrap()["deliveries"],
        json!([]),
        "paging past acme's rows reaches nobody else's"
    );
    for tenant in ["acme' OR '1'='1", "../other", ".other"] {
        let (code, stdout, stderr) = list(tenant, &[]).await.unwrap();
        assert_eq!(code, 2, "{tenant}: {stdout}");
        assert!(stderr.starts_with("error: "), "{tenant}: {stderr}");
        assert!(!stdout.contains("fail-secret"), "{tenant}: {stdout}");
    }
    for args in [
        vec!["deliveries", "acme", "--state", "everything"],
        vec!["deliveries", "acme", "--limit", "0"],
    ] {
        let (code, _, stderr) = cli(args.iter().map(|a| a.to_string()).collect())
            .await
            .unwrap();
        assert_eq!(code, 2, "{args:?}: {stderr}");
    }
    // No store where the default data directory would be: refused, nothing created.
    let empty = tempfile::tempdir().unwrap();
    let (code, _, stderr) = tokio::task::spawn_blocking({
        let dir = empty.path().to_path_buf();
        move || orquesta_tests::run_orquesta(&dir, &["deliveries", "acme"], None)
    })
    .await
    .unwrap();
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no store at"), "{stderr}");
    assert!(!empty.path().join(".orquesta").exists());
    s.shutdown().await;
}

/// Tenants `acme` and `other`, each with one failed delivery (`fail-mine`, `fail-secret`).
async fn a_failed_delivery_each() -> TestServer {
    let s = TestServer::start(&["hostile"], &[("acme", TENANT), ("other", TENANT)], |_| {}).await;
    publish(&s, "other", "bare", "fail-secret").await;
    publish(&s, "acme", "bare", "fail-mine").await;
    eventually("a failed delivery each", async || {
        failed(&s, "other").await.len() == 1 && failed(&s, "acme").await.len() == 1
    })
    .await;
    s
}
