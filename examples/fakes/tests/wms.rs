//! The fake WMS over HTTP: the `ApiKey` scheme, batch upserts answering 200 or 207 with
//! per-item results, the batch limit, item reads, and scripted answers.

use std::time::{Duration, Instant};

use orquesta_fakes::script::Forced;
use orquesta_fakes::wms;
use reqwest::{Client, RequestBuilder};
use serde_json::{Value, json};

const BATCH: &str = "/wms/v2/items:batchUpsert";

struct Fake {
    base: String,
    handle: wms::Handle,
    http: Client,
}

async fn fake(config: wms::Config) -> anyhow::Result<Fake> {
    let (router, handle) = wms::router(config);
    let addr = orquesta_fakes::spawn("127.0.0.1:0".parse()?, router).await?;
    Ok(Fake {
        base: format!("http://{addr}"),
        handle,
        http: Client::new(),
    })
}

async fn send(req: RequestBuilder) -> anyhow::Result<(u16, Value)> {
    let answer = req.send().await?;
    let status = answer.status().as_u16();
    Ok((status, answer.json().await?))
}

impl Fake {
    async fn upsert(&self, body: Value) -> anyhow::Result<(u16, Value)> {
        let req = self
            .http
            .post(format!("{}{BATCH}", self.base))
            .header("Authorization", "ApiKey demo-wms-key")
            .json(&body);
        send(req).await
    }

    async fn get(&self, code: &str) -> anyhow::Result<(u16, Value)> {
        let req = self
            .http
            .get(format!("{}/wms/v2/items/{code}", self.base))
            .header("Authorization", "ApiKey demo-wms-key");
        send(req).await
    }
}

fn item(code: &str, description: &str) -> Value {
    json!({ "itemCode": code, "description": description, "uom": "EA",
            "ean": "7700000000019", "family": "MEDICAL", "listPrice": 12.5 })
}

#[tokio::test]
async fn calls_need_the_api_key_scheme() -> anyhow::Result<()> {
    let f = fake(wms::Config::demo()).await?;
    let unauthorized = json!({ "message": "Unauthorized" });
    let body = json!({ "items": [item("IT-1", "Gasa")] });
    let batch = format!("{}{BATCH}", f.base);
    let one = format!("{}/wms/v2/items/IT-1", f.base);
    let attempts = [
        f.http.post(&batch).json(&body),
        f.http
            .post(&batch)
            .header("Authorization", "ApiKey wrong")
            .json(&body),
        f.http
            .post(&batch)
            .header("Authorization", "Bearer demo-wms-key")
            .json(&body),
        f.http
            .post(&batch)
            .header("Authorization", "demo-wms-key")
            .json(&body),
        f.http.get(&one),
    ];
    for req in attempts {
        assert_eq!(send(req).await?, (401, unauthorized.clone()));
    }
    assert_eq!(f.handle.count(), 0);
    assert_eq!(f.upsert(body).await?.0, 200);
    assert_eq!(f.get("IT-1").await?.0, 200);
    Ok(())
}

#[tokio::test]
async fn a_clean_batch_is_200_with_created_and_updated_results() -> anyhow::Result<()> {
    let f = fake(wms::Config::demo()).await?;
    let (code, body) = f
        .upsert(json!({ "items": [item("IT-2", "Jeringa"), item("IT-1", "Gasa")] }))
        .await?;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body,
        json!({ "results": [
            { "itemCode": "IT-2", "status": 201, "message": "created" },
            { "itemCode": "IT-1", "status": 201, "message": "created" },
        ]})
    );
    let minimal = json!({ "itemCode": "IT-1", "description": "Gasa esteril", "uom": "BOX" });
    let (code, body) = f
        .upsert(json!({ "items": [minimal, item("IT-3", "Venda")] }))
        .await?;
    assert_eq!(code, 200);
    let statuses: Vec<u64> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 201]);

    let (code, stored) = f.get("IT-1").await?;
    assert_eq!(code, 200);
    assert_eq!(stored["description"], "Gasa esteril");
    assert_eq!(stored["uom"], "BOX");
    assert_eq!(stored["listPrice"], Value::Null);
    assert_eq!(stored["version"], 2);
    let codes: Vec<Value> = f
        .handle
        .items()
        .iter()
        .map(|i| i["itemCode"].clone())
        .collect();
    assert_eq!(codes, [json!("IT-1"), json!("IT-2"), json!("IT-3")]);
    assert_eq!(f.handle.get("IT-2").unwrap()["listPrice"], 12.5);

    let (code, body) = f.get("IT-404").await?;
    assert_eq!(
        (code, body),
        (404, json!({ "message": "Item IT-404 not found" }))
    );
    Ok(())
}

#[tokio::test]
async fn a_batch_with_refused_items_is_207_in_input_order() -> anyhow::Result<()> {
    let f = fake(wms::Config::demo()).await?;
    f.upsert(json!({ "items": [item("IT-OLD", "Existente")] }))
        .await?;
    let mut bad_price = item("IT-PRICE", "Suero");
    bad_price["listPrice"] = json!("12.5");
    let batch = json!({ "items": [
        item("IT-NEW", "Nuevo"),
        { "description": "Sin codigo", "uom": "EA" },
        item("IT-OLD", "Existente v2"),
        { "itemCode": "IT-NOUOM", "description": "Sin unidad" },
        bad_price,
        { "itemCode": "IT-NODESC", "uom": "EA", "description": "  " },
        7,
    ]});
    let (code, body) = f.upsert(batch).await?;
    assert_eq!(code, 207, "{body}");
    assert_eq!(
        body["results"],
        json!([
            { "itemCode": "IT-NEW", "status": 201, "message": "created" },
            { "itemCode": null, "status": 422, "message": "itemCode is required" },
            { "itemCode": "IT-OLD", "status": 200, "message": "updated" },
            { "itemCode": "IT-NOUOM", "status": 422, "message": "uom is required" },
            { "itemCode": "IT-PRICE", "status": 422, "message": "listPrice must be a number" },
            { "itemCode": "IT-NODESC", "status": 422, "message": "description is required" },
            { "itemCode": null, "status": 422, "message": "item must be an object" },
        ])
    );
    assert_eq!(f.handle.count(), 2);
    assert_eq!(
        f.handle.get("IT-OLD").unwrap()["description"],
        "Existente v2"
    );
    assert_eq!(f.get("IT-PRICE").await?.0, 404);
    Ok(())
}

#[tokio::test]
async fn batches_are_limited_and_bodies_checked() -> anyhow::Result<()> {
    let f = fake(wms::Config::demo()).await?;
    let many = |n: usize| -> Value {
        let items: Vec<Value> = (0..n)
            .map(|i| item(&format!("IT-{i:04}"), "Item"))
            .collect();
        json!({ "items": items })
    };
    let (code, body) = f.upsert(many(201)).await?;
    assert_eq!(code, 413);
    assert_eq!(body["message"], "A batch holds at most 200 items, got 201");
    assert_eq!(f.handle.count(), 0);
    let (code, body) = f.upsert(many(200)).await?;
    assert_eq!(
        (code, body["results"].as_array().map(Vec::len)),
        (200, Some(200))
    );
    assert_eq!(f.handle.count(), 200);

    for bad in [json!({ "products": [] }), json!({ "items": "IT-1" })] {
        let (code, body) = f.upsert(bad.clone()).await?;
        assert_eq!(code, 400, "{bad}");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("items")),
            "{body}"
        );
    }
    let not_json = f
        .http
        .post(format!("{}{BATCH}", f.base))
        .header("Authorization", "ApiKey demo-wms-key")
        .body("{items");
    let (code, body) = send(not_json).await?;
    assert_eq!(code, 400);
    assert!(body["message"].as_str().unwrap().contains("not valid JSON"));

    let small = fake(wms::Config {
        max_batch: 1,
        ..wms::Config::demo()
    })
    .await?;
    assert_eq!(small.upsert(many(2)).await?.0, 413);
    assert_eq!(small.upsert(many(1)).await?.0, 200);
    Ok(())
}

#[tokio::test]
async fn scripted_answers_are_served_through_the_fake() -> anyhow::Result<()> {
    let f = fake(wms::Config::demo()).await?;
    let batch = json!({ "items": [item("IT-1", "Gasa")] });
    let down = json!({ "message": "Service Unavailable" });
    f.handle.script().push(Forced {
        times: 2,
        ..Forced::once(BATCH, 503, down.clone())
    });
    assert_eq!(f.upsert(batch.clone()).await?, (503, down.clone()));
    assert_eq!(f.upsert(batch.clone()).await?, (503, down));
    assert_eq!(f.handle.count(), 0);

    let expired = json!({ "message": "Unauthorized" });
    f.handle
        .script()
        .push(Forced::once(BATCH, 401, expired.clone()));
    assert_eq!(f.upsert(batch.clone()).await?, (401, expired));

    f.handle
        .script()
        .push(Forced::slow("/wms/v2/items/IT-1", 300, 1));
    assert_eq!(f.upsert(batch).await?.0, 200);
    let started = Instant::now();
    let (code, body) = f.get("IT-1").await?;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!((code, body["itemCode"].as_str()), (200, Some("IT-1")));

    let statuses: Vec<u16> = f
        .handle
        .script()
        .requests_to(BATCH)
        .iter()
        .map(|s| s.status)
        .collect();
    assert_eq!(statuses, [503, 503, 401, 200]);
    Ok(())
}
