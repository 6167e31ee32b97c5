//! The fake Kong over HTTP: the API key, bulk upserts with partial failures, the batch
//! limit, product reads, and scripted answers.

use std::time::{Duration, Instant};

use orquesta_fakes::kong;
use orquesta_fakes::script::Forced;
use reqwest::{Client, RequestBuilder};
use serde_json::{Value, json};

const BULK: &str = "/api/v1/products/bulk";

struct Fake {
    base: String,
    handle: kong::Handle,
    http: Client,
}

async fn fake(config: kong::Config) -> anyhow::Result<Fake> {
    let (router, handle) = kong::router(config);
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
    async fn bulk(&self, body: Value) -> anyhow::Result<(u16, Value)> {
        let req = self
            .http
            .post(format!("{}{BULK}", self.base))
            .header("X-Api-Key", "demo-kong-key")
            .json(&body);
        send(req).await
    }

    async fn get(&self, sku: &str) -> anyhow::Result<(u16, Value)> {
        let req = self
            .http
            .get(format!("{}/api/v1/products/{sku}", self.base))
            .header("X-Api-Key", "demo-kong-key");
        send(req).await
    }
}

fn product(sku: &str, name: &str) -> Value {
    json!({ "sku": sku, "name": name, "unit": "UND", "price": 12500.0,
            "barcode": "7700000000019", "category": "INSUMOS", "epc_prefix": "3034" })
}

#[tokio::test]
async fn calls_need_the_api_key() -> anyhow::Result<()> {
    let f = fake(kong::Config::demo()).await?;
    let unauthorized = json!({ "error": "unauthorized" });
    let body = json!({ "products": [product("SKU-1", "Gasa")] });
    let bulk = format!("{}{BULK}", f.base);
    let one = format!("{}/api/v1/products/SKU-1", f.base);
    let attempts = [
        f.http.post(&bulk).json(&body),
        f.http.post(&bulk).header("X-Api-Key", "wrong").json(&body),
        f.http.get(&one),
        f.http.get(&one).header("X-Api-Key", "wrong"),
    ];
    for req in attempts {
        assert_eq!(send(req).await?, (401, unauthorized.clone()));
    }
    assert_eq!(f.handle.count(), 0);
    let (code, _) = f.bulk(body).await?;
    assert_eq!(code, 200);
    assert_eq!(f.get("SKU-1").await?.0, 200);
    Ok(())
}

#[tokio::test]
async fn bulk_upserts_create_then_update_by_sku() -> anyhow::Result<()> {
    let f = fake(kong::Config::demo()).await?;
    let batch = json!({ "products": [product("SKU-2", "Jeringa"), product("SKU-1", "Gasa"),
                                      { "sku": "SKU-3", "name": "Alcohol" }] });
    let (code, body) = f.bulk(batch).await?;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body,
        json!({ "processed": 3, "created": 3, "updated": 0, "failed": [] })
    );
    let skus: Vec<Value> = f
        .handle
        .products()
        .iter()
        .map(|p| p["sku"].clone())
        .collect();
    assert_eq!(skus, [json!("SKU-1"), json!("SKU-2"), json!("SKU-3")]);
    let (code, stored) = f.get("SKU-1").await?;
    assert_eq!(code, 200);
    assert_eq!(stored["name"], "Gasa");
    assert_eq!(stored["price"], 12500.0);
    assert_eq!(stored["epc_prefix"], "3034");
    assert_eq!(stored["description"], Value::Null);
    assert_eq!(f.handle.get("SKU-3").unwrap()["price"], Value::Null);

    let created_at = stored["created_at"].clone();
    let mut renamed = product("SKU-1", "Gasa esteril 10x10");
    renamed["price"] = json!(0);
    let batch = json!({ "products": [renamed, product("SKU-4", "Venda")] });
    let (_, body) = f.bulk(batch).await?;
    assert_eq!(
        body,
        json!({ "processed": 2, "created": 1, "updated": 1, "failed": [] })
    );
    let (_, stored) = f.get("SKU-1").await?;
    assert_eq!(stored["name"], "Gasa esteril 10x10");
    assert_eq!(stored["price"], 0);
    assert_eq!(stored["created_at"], created_at);
    assert_eq!(f.handle.count(), 4);

    let (code, body) = f.get("SKU-404").await?;
    assert_eq!((code, body), (404, json!({ "error": "not found" })));
    Ok(())
}

#[tokio::test]
async fn invalid_items_fail_alone() -> anyhow::Result<()> {
    let f = fake(kong::Config::demo()).await?;
    let mut negative = product("SKU-NEG", "Termometro");
    negative["price"] = json!(-1);
    let mut text_price = product("SKU-TXT", "Termometro");
    text_price["price"] = json!("12");
    let batch = json!({ "products": [
        product("SKU-OK", "Tapabocas"),
        { "name": "Sin sku" },
        { "sku": "", "name": "Sku vacio" },
        negative,
        { "sku": "SKU-NONAME" },
        "not a product",
        text_price,
        { "sku": 17, "name": "Sku numerico" },
        { "sku": "SKU-OK2", "name": "Suero", "barcode": 7700000000019_u64 },
        { "sku": "SKU-OK3", "name": "Suero", "description": "500 ml" },
    ]});
    let (code, body) = f.bulk(batch).await?;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["processed"], 10);
    assert_eq!(
        (body["created"].as_u64(), body["updated"].as_u64()),
        (Some(2), Some(0))
    );
    assert_eq!(
        body["failed"],
        json!([
            { "index": 1, "sku": null, "error": "sku is required" },
            { "index": 2, "sku": "", "error": "sku is required" },
            { "index": 3, "sku": "SKU-NEG", "error": "price must be >= 0" },
            { "index": 4, "sku": "SKU-NONAME", "error": "name is required" },
            { "index": 5, "sku": null, "error": "product must be an object" },
            { "index": 6, "sku": "SKU-TXT", "error": "price must be a number" },
            { "index": 7, "sku": null, "error": "sku must be a string" },
            { "index": 8, "sku": "SKU-OK2", "error": "barcode must be a string" },
        ])
    );
    let skus: Vec<Value> = f
        .handle
        .products()
        .iter()
        .map(|p| p["sku"].clone())
        .collect();
    assert_eq!(skus, [json!("SKU-OK"), json!("SKU-OK3")]);
    assert_eq!(f.get("SKU-NEG").await?.0, 404);
    Ok(())
}

#[tokio::test]
async fn batches_are_limited_and_bodies_checked() -> anyhow::Result<()> {
    let f = fake(kong::Config::demo()).await?;
    let many = |n: usize| -> Value {
        let items: Vec<Value> = (0..n)
            .map(|i| product(&format!("SKU-{i:04}"), "Item"))
            .collect();
        json!({ "products": items })
    };
    let (code, body) = f.bulk(many(501)).await?;
    assert_eq!(
        (code, body),
        (413, json!({ "error": "batch too large", "max": 500 }))
    );
    assert_eq!(f.handle.count(), 0);
    let (code, body) = f.bulk(many(500)).await?;
    assert_eq!((code, body["created"].as_u64()), (200, Some(500)));
    assert_eq!(f.handle.count(), 500);

    for bad in [json!({}), json!({ "products": { "sku": "x" } }), json!([1])] {
        let (code, body) = f.bulk(bad.clone()).await?;
        assert_eq!(code, 400, "{bad}");
        assert_eq!(body["error"], "products must be an array");
    }
    let not_json = f
        .http
        .post(format!("{}{BULK}", f.base))
        .header("X-Api-Key", "demo-kong-key")
        .body("sku=1");
    let (code, body) = send(not_json).await?;
    assert_eq!(code, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("body is not valid JSON")
    );

    let small = fake(kong::Config {
        max_batch: 2,
        ..kong::Config::demo()
    })
    .await?;
    let (code, body) = small.bulk(many(3)).await?;
    assert_eq!((code, body["max"].as_u64()), (413, Some(2)));
    Ok(())
}

#[tokio::test]
async fn scripted_answers_are_served_through_the_fake() -> anyhow::Result<()> {
    let f = fake(kong::Config::demo()).await?;
    let down = json!({ "error": "service unavailable" });
    f.handle
        .script()
        .push(Forced::once(BULK, 503, down.clone()));
    let batch = json!({ "products": [product("SKU-1", "Gasa")] });
    assert_eq!(f.bulk(batch.clone()).await?, (503, down));
    assert_eq!(f.handle.count(), 0, "the forced answer skipped the upsert");

    f.handle.script().push(Forced::slow(BULK, 300, 1));
    let started = Instant::now();
    let (code, body) = f.bulk(batch).await?;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!((code, body["created"].as_u64()), (200, Some(1)));

    // Paths are matched exactly, so one product's reads can be made to fail.
    let unauthorized = json!({ "error": "unauthorized" });
    f.handle.script().push(Forced::always(
        "/api/v1/products/SKU-1",
        401,
        unauthorized.clone(),
    ));
    assert_eq!(f.get("SKU-1").await?, (401, unauthorized.clone()));
    assert_eq!(f.get("SKU-1").await?, (401, unauthorized));
    assert_eq!(f.get("SKU-2").await?.0, 404);
    f.handle.script().reset();
    assert_eq!(f.get("SKU-1").await?.0, 200);
    let log = f.handle.script().requests();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].method.as_str(), log[0].status), ("GET", 200));
    Ok(())
}
