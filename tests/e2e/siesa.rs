//! The Siesa ETL flow end to end through the service with the shipped tenant files and
//! workflow, against fake Siesa, Kong and WMS APIs: a full sync then an incremental one
//! that picks up only the changed products, Siesa failing (retried, then caught with a
//! `failed` sync record and an alert), a transient failure recovered by a retry, and
//! 50,000 products in one sync.

use std::time::Duration;

use orquesta_fakes::script::Forced;
use orquesta_fakes::{kong, siesa, wms};
use orquesta_tests::server::{ADMIN_TOKEN, TestServer, WorkflowAdmin};
use orquesta_tests::workspace;
use serde_json::{Value, json};

const SIESA_QUERY: &str = "/api/v3/ejecutarconsulta";

struct Flow {
    server: TestServer,
    _secrets: tempfile::TempDir,
    tenant: String,
    admin: WorkflowAdmin,
    siesa: siesa::Handle,
    kong: kong::Handle,
    wms: wms::Handle,
}

/// Serves the fakes and the shipped tenant of `client` (`a`: Kong, `b`: WMS), with the
/// client's field mappings uploaded through the admin API.
async fn start(client: &str, products: u64) -> Flow {
    let (router, siesa) = siesa::router(siesa::Config::demo());
    siesa.generate(products);
    let siesa_addr = orquesta_fakes::spawn("127.0.0.1:0".parse().unwrap(), router)
        .await
        .unwrap();
    let (router, kong) = kong::router(kong::Config::demo());
    let kong_addr = orquesta_fakes::spawn("127.0.0.1:0".parse().unwrap(), router)
        .await
        .unwrap();
    let (router, wms) = wms::router(wms::Config::demo());
    let wms_addr = orquesta_fakes::spawn("127.0.0.1:0".parse().unwrap(), router)
        .await
        .unwrap();

    let secrets = tempfile::tempdir().unwrap();
    let file = |name: &str, value: &str| {
        let path = secrets.path().join(name);
        std::fs::write(&path, value).unwrap();
        format!("{{ file = {path:?} }}")
    };
    let tenant = format!("siesa-cliente-{client}");
    let text = std::fs::read_to_string(workspace().join(format!("examples/tenants/{tenant}.toml")))
        .unwrap();
    let mut swaps = vec![
        ("http://127.0.0.1:8783", format!("http://{siesa_addr}")),
        (
            "{ env = \"SIESA_CONNI_KEY\" }",
            file("conni-key", "demo-conni-key"),
        ),
        (
            "{ env = \"SIESA_CONNI_TOKEN\" }",
            file("conni-token", "demo-conni-token"),
        ),
        ("../siesa/", String::new()),
    ];
    if client == "a" {
        swaps.push(("http://127.0.0.1:8784", format!("http://{kong_addr}")));
        swaps.push(("{ env = \"KONG_API_KEY\" }", file("kong", "demo-kong-key")));
    } else {
        swaps.push(("http://127.0.0.1:8785", format!("http://{wms_addr}")));
        swaps.push(("{ env = \"WMS_API_KEY\" }", file("wms", "demo-wms-key")));
    }
    let text = swaps.into_iter().fold(text, |text, (from, to)| {
        assert!(
            text.contains(from),
            "the example tenant no longer has {from}"
        );
        text.replace(from, &to)
    });
    let server = TestServer::start(&["siesa"], &[(tenant.as_str(), &text)], |c| {
        std::fs::create_dir_all(&c.tenant_dir).unwrap();
        std::fs::copy(
            workspace().join("examples/siesa/siesa-sync.asl.json"),
            c.tenant_dir.join("siesa-sync.asl.json"),
        )
        .unwrap();
    })
    .await;
    let tenants = server.admin("tenants").await;
    assert!(tenants["tenants"][0]["error"].is_null(), "{tenants}");
    let mappings = std::fs::read(workspace().join(format!(
        "examples/siesa/mappings/{}.json",
        if client == "a" { "kong" } else { "wms" }
    )))
    .unwrap();
    let put = server
        .client
        .put(format!(
            "{}/admin/v1/tenants/{tenant}/blobs/siesa-config/field-mappings.json",
            server.url
        ))
        .bearer_auth(ADMIN_TOKEN)
        .body(mappings)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let admin = WorkflowAdmin::new(&server.url, &tenant, ADMIN_TOKEN);
    Flow {
        server,
        _secrets: secrets,
        tenant,
        admin,
        siesa,
        kong,
        wms,
    }
}

impl Flow {
    /// Runs one sync to its end; its description.
    async fn sync(&self, sync_type: &str, limit: Duration) -> Value {
        let client = self.tenant.trim_start_matches("siesa-");
        let id = self
            .admin
            .start(
                "siesa-sync",
                json!({ "client_id": client, "sync_type": sync_type }),
            )
            .await;
        self.admin.finished(&id, limit).await
    }

    /// `GET /t/TENANT/syncs` with the operators' key.
    async fn syncs(&self, query: &str) -> Value {
        self.server
            .client
            .get(format!(
                "{}/t/{}/syncs{query}",
                self.server.url, self.tenant
            ))
            .header("x-api-key", "demo-key")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn messages(&self, queue: &str) -> Vec<Value> {
        let path = format!("/tenants/{}/queues/{queue}/messages", self.tenant);
        let (_, body) = self.admin.call(reqwest::Method::GET, &path, None).await;
        body["messages"].as_array().cloned().unwrap_or_default()
    }
}

#[tokio::test]
async fn a_full_sync_then_an_incremental_one_that_takes_only_the_changed_products() {
    let flow = start("a", 2_500).await;
    let done = flow.sync("initial", Duration::from_secs(60)).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let out = &done["output"];
    assert_eq!(out["status"], "success", "{out}");
    assert_eq!(
        (
            out["records_processed"].clone(),
            out["records_success"].clone()
        ),
        (json!(2500), json!(2500))
    );
    assert_eq!(out["product_type"], "kong");
    assert_eq!(flow.kong.count(), 2500);
    let kong = flow.kong.get("REF-1").expect("REF-1 in Kong");
    let siesa = flow.siesa.get(1).unwrap();
    assert_eq!(kong["name"], json!(siesa.f120_descripcion));
    assert_eq!(kong["barcode"], json!(siesa.f121_codigo_barras));
    // Three pages of 1,000.
    assert_eq!(flow.siesa.script().requests_to(SIESA_QUERY).len(), 3);

    let syncs = flow.syncs("").await;
    assert_eq!(syncs["syncs"][0]["status"], "success", "{syncs}");
    assert_eq!(syncs["syncs"][0]["records_success"], 2500);
    let watermark = syncs["watermark"]
        .as_str()
        .expect("a watermark")
        .to_string();

    // Three products change in Siesa; the next incremental sync sends only those.
    assert_eq!(flow.siesa.touch(&[7, 700, 2_000], "Nueva descripcion"), 3);
    let done = flow.sync("incremental", Duration::from_secs(60)).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(done["output"]["records_processed"], 3, "{done}");
    for sku in ["REF-7", "REF-700", "REF-2000"] {
        assert_eq!(flow.kong.get(sku).unwrap()["name"], "Nueva descripcion");
    }
    assert_ne!(flow.kong.get("REF-8").unwrap()["name"], "Nueva descripcion");
    let last = flow.siesa.script().requests_to(SIESA_QUERY).pop().unwrap();
    assert!(
        last.query.contains("parametros=fecha_actualizacion"),
        "{}",
        last.query
    );
    let syncs = flow.syncs("").await;
    assert_eq!(syncs["syncs"].as_array().unwrap().len(), 2, "{syncs}");
    assert!(syncs["watermark"].as_str().unwrap() > watermark.as_str());

    // The client's schedule targets the workflow.
    let (_, schedules) = flow
        .admin
        .call(
            reqwest::Method::GET,
            &format!("/tenants/{}/schedules", flow.tenant),
            None,
        )
        .await;
    let schedule = &schedules["schedules"][0];
    assert_eq!(schedule["expression"], "rate(6 hours)", "{schedules}");
    assert!(schedule["next_fire_at"].is_number(), "{schedules}");
    flow.server.shutdown().await;
}

#[tokio::test]
async fn siesa_failing_is_retried_then_caught_with_a_failed_record_and_an_alert() {
    let flow = start("a", 10).await;
    // A single 503 is absorbed by the first retry.
    flow.siesa.script().push(Forced::once(
        SIESA_QUERY,
        503,
        json!({ "codigo": 503, "mensaje": "mantenimiento" }),
    ));
    let done = flow.sync("initial", Duration::from_secs(30)).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(done["output"]["records_processed"], 10);
    let id = done["execution_id"].as_str().unwrap();
    let retries = flow
        .admin
        .history(id)
        .await
        .into_iter()
        .filter(|e| e["type"] == "StateRetryScheduled")
        .count();
    assert_eq!(retries, 1);

    // Down for good: the initial try and three retries (2 + 4 + 8 s apart), then caught.
    flow.siesa.script().push(Forced::always(
        SIESA_QUERY,
        503,
        json!({ "codigo": 503, "mensaje": "mantenimiento" }),
    ));
    let before = flow.siesa.script().requests_to(SIESA_QUERY).len();
    let done = flow.sync("initial", Duration::from_secs(60)).await;
    assert_eq!(done["status"], "FAILED", "{done}");
    assert_eq!(done["error"], "SiesaUnavailable");
    assert_eq!(
        flow.siesa.script().requests_to(SIESA_QUERY).len() - before,
        4
    );
    let id = done["execution_id"].as_str().unwrap();
    let entered: Vec<Value> = flow
        .admin
        .history(id)
        .await
        .into_iter()
        .filter(|e| e["type"] == "StateEntered")
        .map(|e| e["state"].clone())
        .collect();
    assert_eq!(
        entered,
        ["ExtractFromSiesa", "LogFailure", "SyncFailed"].map(|s| json!(s))
    );
    let failed = flow.syncs("?status=failed").await;
    let record = &failed["syncs"][0];
    assert_eq!(record["error"], "SiesaUnavailable", "{failed}");
    assert_eq!(record["product_type"], "kong");
    assert_eq!(record["execution_id"], id);
    let alerts = flow.messages("siesa-alerts").await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    // The alerts queue gets SNS's notification document, attributes typed.
    let notice: Value = serde_json::from_str(alerts[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        notice["MessageAttributes"]["product_type"],
        json!({ "Type": "String", "Value": "kong" }),
        "{notice}"
    );
    let alert: Value = serde_json::from_str(notice["Message"].as_str().unwrap()).unwrap();
    assert_eq!(alert["error"], "SiesaUnavailable");
    // The failure did not move the watermark of the earlier success.
    let syncs = flow.syncs("").await;
    assert_eq!(
        syncs["watermark"],
        flow.syncs("?status=success").await["syncs"][0]["extraction_timestamp"]
    );
    flow.server.shutdown().await;
}

#[tokio::test]
async fn fifty_thousand_products_sync_to_wms_within_the_payload_limits() {
    let flow = start("b", 50_000).await;
    let done = flow.sync("initial", Duration::from_secs(240)).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    let out = &done["output"];
    assert_eq!(out["records_processed"], 50_000, "{out}");
    assert_eq!(out["records_success"], 50_000, "{out}");
    assert_eq!(out["batches"], 250, "batches of 200");
    assert_eq!(flow.wms.count(), 50_000);
    let item = flow.wms.get("REF-49999").unwrap();
    assert_eq!(
        item["uom"],
        json!(flow.siesa.get(49_999).unwrap().f120_id_unidad_inventario)
    );
    // No state carried the products: each transition's data stayed small.
    let id = done["execution_id"].as_str().unwrap();
    for event in flow.admin.history(id).await {
        assert!(
            event.to_string().len() < 8 * 1024,
            "{} carries {} bytes",
            event["type"],
            event.to_string().len()
        );
    }
    flow.server.shutdown().await;
}
