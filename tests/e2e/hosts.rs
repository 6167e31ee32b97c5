//! The host registry (`GET /admin/v1/hosts`): a host lists itself on SQLite; hosts
//! sharing one PostgreSQL database list each other, a SIGKILLed one as gone within three
//! of its heartbeats and one shut down cleanly as stopped. The listing is the host admin
//! token's alone and shows no secret.

use std::time::{Duration, Instant};

use orquesta_tests::plugin;
use orquesta_tests::server::{ADMIN_TOKEN, ServeProcess, TestServer};
use orquesta_tests::wait::{wait_for, wait_until};
use serde_json::{Value, json};

const TENANT: &str = r#"
[plugins.worker]
source = "hostile.wasm"

[[routes]]
method = "POST"
path = "/probe"
plugin = "worker"
"#;

/// The heartbeat of the processes: short, so a test sees a host gone in about a second.
const HEARTBEAT_MS: u64 = 200;

fn process_config(advertise: &str) -> String {
    format!(
        r#"
listen = "127.0.0.1:0"
data_dir = "data"
plugin_dir = "plugins"
tenant_dir = "tenants"
admin_token = {{ file = "admin-token" }}
heartbeat_ms = {HEARTBEAT_MS}
advertise = "{advertise}"
"#
    )
}

fn process_dir(tenant: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("plugins")).unwrap();
    std::fs::create_dir_all(dir.path().join("tenants")).unwrap();
    std::fs::copy(plugin("hostile"), dir.path().join("plugins/hostile.wasm")).unwrap();
    std::fs::write(dir.path().join(format!("tenants/{tenant}.toml")), TENANT).unwrap();
    std::fs::write(dir.path().join("admin-token"), ADMIN_TOKEN).unwrap();
    dir
}

/// `GET /admin/v1/hosts` with `token`: status and body (JSON, or the text).
async fn hosts_with(url: &str, token: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new().get(format!("{url}/admin/v1/hosts"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let r = request.send().await.expect("the host answers");
    (r.status().as_u16(), r.text().await.expect("a body"))
}

async fn hosts(url: &str) -> Value {
    let (status, body) = hosts_with(url, Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("JSON")
}

/// The host `id` in a listing.
fn host<'a>(listing: &'a Value, id: &str) -> Option<&'a Value> {
    listing["hosts"].as_array()?.iter().find(|h| h["id"] == id)
}

fn state(listing: &Value, id: &str) -> String {
    host(listing, id)
        .and_then(|h| h["state"].as_str())
        .unwrap_or("absent")
        .to_string()
}

/// The listing's attack surface: no token and a wrong one are refused, and what it
/// shows holds none of `secrets`.
async fn admin_only_and_no_secrets(url: &str, secrets: &[&str]) {
    for token in [None, Some("wrong-token"), Some("")] {
        let (status, body) = hosts_with(url, token).await;
        assert_eq!(status, 401, "{token:?}: {body}");
        assert!(!body.contains("\"hosts\""), "{body}");
    }
    let (_, body) = hosts_with(url, Some(ADMIN_TOKEN)).await;
    for secret in secrets {
        assert!(
            !body.contains(secret),
            "the listing shows {secret:?}: {body}"
        );
    }
}

#[tokio::test]
async fn a_host_on_sqlite_lists_itself_with_its_tenants_and_work_in_flight() {
    let s = TestServer::start(&["hostile"], &[("acme", TENANT)], |c| {
        c.heartbeat_ms = 100;
    })
    .await;
    // Listed from its start: the first heartbeat is written before it serves.
    let listing = s.admin("hosts").await;
    let me = listing["this_host"]
        .as_str()
        .expect("its own id")
        .to_string();
    let hosts = listing["hosts"].as_array().expect("hosts");
    assert_eq!(hosts.len(), 1, "{listing}");
    let h = &hosts[0];
    assert_eq!(h["id"], me.as_str());
    assert_eq!(h["state"], "up");
    // The address defaults to where it listens.
    assert_eq!(h["address"], s.url.as_str());
    assert_eq!(h["version"], env!("CARGO_PKG_VERSION"), "{h}");
    assert_eq!(h["heartbeat_ms"], 100);
    let started = h["started_at"].as_i64().expect("a start time");
    assert!(h["heartbeat_at"].as_i64().expect("a heartbeat") >= started);
    assert!(h["stopped_at"].is_null());
    // Its tenant, with the component its plugin runs and that component's hash.
    let plugins = s.admin("plugins").await;
    let hash = plugins["plugins"][0]["hash"].clone();
    assert!(hash.is_string(), "{plugins}");
    assert_eq!(
        h["tenants"],
        json!([{ "name": "acme", "plugins": [
            { "name": "worker", "component": "hostile", "hash": hash }
        ]}]),
    );

    // An invocation in flight shows at the next heartbeat, and is gone after it ends.
    let client = s.client.clone();
    let url = format!("{}/t/acme/probe", s.url);
    let napping = tokio::spawn(async move {
        client
            .post(url)
            .body(json!({ "attack": "nap", "ms": 1500 }).to_string())
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    wait_until(
        "the nap listed in flight",
        Duration::from_secs(10),
        async || s.admin("hosts").await["hosts"][0]["in_flight"] == 1,
    )
    .await;
    assert_eq!(napping.await.unwrap().unwrap(), 200);
    wait_until("nothing in flight", Duration::from_secs(10), async || {
        s.admin("hosts").await["hosts"][0]["in_flight"] == 0
    })
    .await;
    // Beats go on.
    let beat = s.admin("hosts").await["hosts"][0]["heartbeat_at"].clone();
    wait_until("a later heartbeat", Duration::from_secs(10), async || {
        s.admin("hosts").await["hosts"][0]["heartbeat_at"] != beat
    })
    .await;

    let token_file = s.dir.path().join("admin-token");
    let data_dir = s.dir.path().join("data");
    admin_only_and_no_secrets(
        &s.url,
        &[
            ADMIN_TOKEN,
            &orquesta::triggers::http::auth::sha256_hex(ADMIN_TOKEN),
            &token_file.display().to_string(),
            &data_dir.display().to_string(),
            "sqlite:",
            "orquesta.db",
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
#[cfg_attr(no_postgres, ignore = "ORQUESTA_TEST_POSTGRES_URL is not set")]
async fn hosts_on_one_postgres_list_each_other_and_a_killed_one_as_gone() {
    let url = orquesta_tests::db::postgres();
    let env = [("ORQUESTA_STORE_URL", url.as_str())];
    // A tenant of its own, told apart from earlier runs' hosts (listed gone for a day).
    let tenant = format!(
        "hosts-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let (dir_a, dir_b) = (process_dir(&tenant), process_dir(&tenant));
    let mut a = ServeProcess::start(dir_a.path(), &process_config("http://a.example:8080"), &env);
    let b = ServeProcess::start(dir_b.path(), &process_config("http://b.example:8080"), &env);
    let id_a = hosts(&a.url).await["this_host"]
        .as_str()
        .unwrap()
        .to_string();
    let id_b = hosts(&b.url).await["this_host"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(id_a, id_b);

    // Each lists both, up, at the address each advertises, serving the tenant.
    for process in [&a, &b] {
        let listing = hosts(&process.url).await;
        for (id, address) in [
            (&id_a, "http://a.example:8080"),
            (&id_b, "http://b.example:8080"),
        ] {
            let h = host(&listing, id).unwrap_or_else(|| panic!("{id} not listed: {listing}"));
            assert_eq!(h["state"], "up", "{h}");
            assert_eq!(h["address"], address, "{h}");
            assert_eq!(h["heartbeat_ms"], HEARTBEAT_MS);
            let served = h["tenants"].as_array().expect("tenants");
            assert!(
                served.iter().any(|t| t["name"] == tenant.as_str()
                    && t["plugins"][0]["hash"]
                        .as_str()
                        .is_some_and(|h| h.len() == 64)),
                "{h}"
            );
        }
    }
    admin_only_and_no_secrets(&a.url, &[ADMIN_TOKEN, &url, "postgres://", "postgresql://"]).await;

    // SIGKILL b: it writes nothing more, and a lists it as gone within three of its
    // heartbeats (and the poll's slack), while it stays up itself.
    assert_eq!(state(&hosts(&a.url).await, &id_b), "up");
    let killed = Instant::now();
    drop(b);
    let seen_gone = wait_for("b listed as gone", Duration::from_secs(30), async || {
        let listing = hosts(&a.url).await;
        assert_eq!(state(&listing, &id_a), "up", "{listing}");
        (state(&listing, &id_b) == "gone").then(Instant::now)
    })
    .await;
    let after = seen_gone - killed;
    let bound = Duration::from_millis(3 * HEARTBEAT_MS);
    assert!(
        after <= bound + Duration::from_millis(2 * HEARTBEAT_MS) + Duration::from_secs(1),
        "gone after {after:?}, the bound is {bound:?}"
    );
    eprintln!("a SIGKILLed host was listed as gone {after:?} after the kill (bound {bound:?})");

    // a shuts down cleanly: a host started next lists it as stopped, b still gone.
    assert_eq!(
        a.terminate(Duration::from_secs(30)),
        Some(0),
        "{}",
        a.logs()
    );
    let dir_c = process_dir(&tenant);
    let c = ServeProcess::start(dir_c.path(), &process_config("http://c.example:8080"), &env);
    let listing = hosts(&c.url).await;
    assert_eq!(state(&listing, &id_a), "stopped", "{listing}");
    assert_eq!(host(&listing, &id_a).unwrap()["in_flight"], 0);
    assert_eq!(state(&listing, &id_b), "gone", "{listing}");
    let id_c = listing["this_host"].as_str().unwrap();
    assert_eq!(state(&listing, id_c), "up");
}
