//! The fake Siesa over HTTP: Conni credentials, query validation, pagination (raw and
//! encoded `|`), the incremental filter after `touch`, a 50,000-product catalogue, and
//! scripted answers.

use std::time::{Duration, Instant};

use orquesta_fakes::script::Forced;
use orquesta_fakes::siesa::{self, GENERATED_AT};
use reqwest::{Client, RequestBuilder};
use serde_json::{Value, json};

const PATH: &str = "/api/v3/ejecutarconsulta";

struct Fake {
    base: String,
    handle: siesa::Handle,
    http: Client,
}

async fn fake(products: u64) -> anyhow::Result<Fake> {
    let (router, handle) = siesa::router(siesa::Config::demo());
    handle.generate(products);
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
    /// A query with the demo credentials and `query` as the raw query string.
    fn raw(&self, query: &str) -> RequestBuilder {
        self.http
            .get(format!("{}{PATH}?{query}", self.base))
            .header("ConniKey", "demo-conni-key")
            .header("ConniToken", "demo-conni-token")
    }

    async fn page(&self, page: u64, size: u64, after: Option<&str>) -> anyhow::Result<Value> {
        let mut query = vec![
            ("idCompania", "1".to_string()),
            ("descripcion", "API_v2_ItemsInventario".to_string()),
            ("paginacion", format!("numPag={page}|tamPag={size}")),
        ];
        if let Some(after) = after {
            query.push(("parametros", format!("fecha_actualizacion={after}")));
        }
        // `.query` percent-encodes `|`, `=` and `:`.
        let req = self
            .http
            .get(format!("{}{PATH}", self.base))
            .header("ConniKey", "demo-conni-key")
            .header("ConniToken", "demo-conni-token")
            .query(&query);
        let (code, body) = send(req).await?;
        assert_eq!(code, 200, "{body}");
        Ok(body)
    }
}

fn ids(page: &Value) -> Vec<u64> {
    page["detalle"]["Datos"]
        .as_array()
        .map(|rows| rows.iter().filter_map(|r| r["f120_id"].as_u64()).collect())
        .unwrap_or_default()
}

const QUERY: &str = "idCompania=1&descripcion=API_v2_ItemsInventario&paginacion=numPag=1|tamPag=10";

#[tokio::test]
async fn queries_need_both_conni_headers() -> anyhow::Result<()> {
    let f = fake(5).await?;
    let url = format!("{}{PATH}?{QUERY}", f.base);
    let refused = json!({ "codigo": 401, "mensaje": "Credenciales invalidas" });
    let attempts = [
        f.http.get(&url),
        f.http.get(&url).header("ConniKey", "demo-conni-key"),
        f.http.get(&url).header("ConniToken", "demo-conni-token"),
        f.http
            .get(&url)
            .header("ConniKey", "demo-conni-key")
            .header("ConniToken", "wrong"),
        f.http
            .get(&url)
            .header("ConniKey", "wrong")
            .header("ConniToken", "demo-conni-token"),
    ];
    for req in attempts {
        assert_eq!(send(req).await?, (401, refused.clone()));
    }
    let (code, body) = send(f.raw(QUERY)).await?;
    assert_eq!((code, ids(&body)), (200, vec![1, 2, 3, 4, 5]));
    Ok(())
}

#[tokio::test]
async fn bad_queries_answer_connekta_errors() -> anyhow::Result<()> {
    let f = fake(5).await?;
    let paging = "paginacion=numPag=1|tamPag=10";
    let cases = [
        (
            format!("idCompania=2&descripcion=API_v2_ItemsInventario&{paging}"),
            400,
        ),
        (format!("descripcion=API_v2_ItemsInventario&{paging}"), 400),
        (
            format!("idCompania=uno&descripcion=API_v2_ItemsInventario&{paging}"),
            400,
        ),
        (
            format!("idCompania=1&descripcion=API_v2_Terceros&{paging}"),
            404,
        ),
        (
            "idCompania=1&descripcion=API_v2_ItemsInventario&paginacion=numPag=1|tamPag=1001"
                .to_string(),
            400,
        ),
        (
            "idCompania=1&descripcion=API_v2_ItemsInventario".to_string(),
            400,
        ),
        (
            format!(
                "idCompania=1&descripcion=API_v2_ItemsInventario&{paging}&parametros=fecha_actualizacion=ayer"
            ),
            400,
        ),
    ];
    for (query, want) in cases {
        let (code, body) = send(f.raw(&query)).await?;
        assert_eq!(code, want, "{query}: {body}");
        assert_eq!(body["codigo"], want, "{query}");
        assert!(body["mensaje"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let (_, body) = send(f.raw(&format!(
        "idCompania=1&descripcion=API_v2_Terceros&{paging}"
    )))
    .await?;
    assert_eq!(body["mensaje"], "La consulta API_v2_Terceros no existe");
    // 1000 is the largest page allowed.
    let (code, body) = send(
        f.raw("idCompania=1&descripcion=API_v2_ItemsInventario&paginacion=numPag=1|tamPag=1000"),
    )
    .await?;
    assert_eq!((code, ids(&body).len()), (200, 5));
    Ok(())
}

#[tokio::test]
async fn products_page_out_in_id_order() -> anyhow::Result<()> {
    let f = fake(2500).await?;
    let mut all = Vec::new();
    for (page, want_rows) in [(1, 1000), (2, 1000), (3, 500)] {
        let body = f.page(page, 1000, None).await?;
        assert_eq!(body["codigo"], 0);
        assert_eq!(body["mensaje"], "Consulta exitosa");
        assert_eq!(
            body["paginacion"],
            json!({ "numPag": page, "tamPag": 1000, "total_paginas": 3, "total_registros": 2500 })
        );
        let got = ids(&body);
        assert_eq!(got.len(), want_rows);
        all.extend(got);
    }
    assert_eq!(all, (1..=2500).collect::<Vec<_>>());
    let past = f.page(4, 1000, None).await?;
    assert_eq!(past["detalle"]["Datos"], json!([]));
    assert_eq!(past["paginacion"]["total_paginas"], 3);

    // The `|` raw and as %7C, and `=` as %3D, read the same.
    for paging in [
        "numPag=2|tamPag=1000",
        "numPag=2%7CtamPag=1000",
        "numPag%3D2%7ctamPag%3D1000",
    ] {
        let q = format!("idCompania=1&descripcion=API_v2_ItemsInventario&paginacion={paging}");
        let (code, body) = send(f.raw(&q)).await?;
        assert_eq!(code, 200, "{paging}: {body}");
        assert_eq!(ids(&body).first(), Some(&1001), "{paging}");
    }

    let first = f.page(1, 1, None).await?;
    let product = &first["detalle"]["Datos"][0];
    assert_eq!(product["f120_id"], 1);
    assert_eq!(product["f120_referencia"], "REF-1");
    assert_eq!(product["f120_ind_estado"], "A");
    assert_eq!(product["f120_fecha_actualizacion"], GENERATED_AT);
    assert!(["UND", "KG", "CAJ"].contains(&product["f120_id_unidad_inventario"].as_str().unwrap()));
    let barcode = product["f121_codigo_barras"].as_str().unwrap();
    assert!(
        barcode.len() == 13 && barcode.bytes().all(|b| b.is_ascii_digit()),
        "{barcode}"
    );
    assert!(product["precio_venta"].as_f64().unwrap() > 0.0);
    assert!(
        product["f120_descripcion"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
    assert!(
        product["f120_id_grupo"]
            .as_str()
            .is_some_and(|g| !g.is_empty())
    );
    Ok(())
}

#[tokio::test]
async fn the_incremental_filter_keeps_products_touched_after_the_date() -> anyhow::Result<()> {
    let f = fake(100).await?;
    let none = f.page(1, 1000, Some(GENERATED_AT)).await?;
    assert_eq!(none["paginacion"]["total_registros"], 0);
    assert_eq!(
        ids(&f.page(1, 1000, Some("2025-12-31T23:59:59Z")).await?).len(),
        100
    );

    assert_eq!(f.handle.touch(&[7, 5, 9999], "Guante de nitrilo x 200"), 2);
    let changed = f.page(1, 1000, Some(GENERATED_AT)).await?;
    assert_eq!(ids(&changed), [5, 7]);
    assert_eq!(changed["paginacion"]["total_registros"], 2);
    let row = &changed["detalle"]["Datos"][0];
    assert_eq!(row["f120_descripcion"], "Guante de nitrilo x 200");
    let stamp = row["f120_fecha_actualizacion"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        stamp.starts_with("20") && stamp.ends_with('Z') && stamp != GENERATED_AT,
        "{stamp}"
    );
    assert_eq!(
        f.handle.get(6).unwrap().f120_fecha_actualizacion,
        GENERATED_AT
    );

    // Since the last stamp seen, nothing; a later touch shows up alone.
    assert_eq!(
        ids(&f.page(1, 1000, Some(&stamp)).await?),
        Vec::<u64>::new()
    );
    f.handle.touch(&[8], "Venda elastica 10 cm");
    assert_eq!(ids(&f.page(1, 1000, Some(&stamp)).await?), [8]);
    // An offset is honoured: 19:00 in Bogota is midnight UTC.
    let bogota = f.page(1, 1000, Some("2025-12-31T19:00:00-05:00")).await?;
    assert_eq!(ids(&bogota), [5, 7, 8]);
    // A `+` sent unencoded decodes to a space, which still reads as the offset.
    let q = "idCompania=1&descripcion=API_v2_ItemsInventario&paginacion=numPag=1|tamPag=50\
             &parametros=fecha_actualizacion=2026-01-01T05:00:00+05:00";
    let (code, body) = send(f.raw(q)).await?;
    assert_eq!((code, ids(&body)), (200, vec![5, 7, 8]));
    Ok(())
}

#[tokio::test]
async fn inserted_products_join_the_catalogue_in_order() -> anyhow::Result<()> {
    let f = fake(3).await?;
    let product = json!({
        "f120_id": 2, "f120_referencia": "REF-2", "f120_descripcion": "Camilla plegable",
        "f120_id_unidad_inventario": "UND", "f120_id_grupo": "EQUIPOS",
        "f121_codigo_barras": "7700000000026", "precio_venta": 850000.0,
        "f120_ind_estado": "A", "f120_fecha_actualizacion": "2026-02-01T00:00:00Z",
    });
    f.handle
        .insert(product.clone())
        .map_err(anyhow::Error::msg)?;
    let mut later = product.clone();
    later["f120_id"] = json!(10);
    f.handle.insert(later).map_err(anyhow::Error::msg)?;
    assert_eq!(f.handle.count(), 4);
    assert!(f.handle.insert(json!({ "f120_id": 11 })).is_err());
    let mut bad_date = product.clone();
    bad_date["f120_fecha_actualizacion"] = json!("ayer");
    assert!(f.handle.insert(bad_date).is_err());
    assert_eq!(f.handle.count(), 4);

    let body = f.page(1, 10, None).await?;
    assert_eq!(ids(&body), [1, 2, 3, 10]);
    assert_eq!(body["detalle"]["Datos"][1], product);
    let since = f.page(1, 10, Some(GENERATED_AT)).await?;
    assert_eq!(ids(&since), [2, 10]);
    Ok(())
}

#[tokio::test]
async fn fifty_thousand_products_page_out_in_fifty_requests() -> anyhow::Result<()> {
    let f = fake(50_000).await?;
    assert_eq!(f.handle.count(), 50_000);
    let mut seen = Vec::with_capacity(50_000);
    let mut requests = 0;
    loop {
        let body = f.page(requests + 1, 1000, None).await?;
        let got = ids(&body);
        if got.is_empty() {
            break;
        }
        requests += 1;
        assert_eq!(got.len(), 1000);
        assert_eq!(body["paginacion"]["total_paginas"], 50);
        seen.extend(got);
    }
    assert_eq!(requests, 50);
    assert_eq!(seen, (1..=50_000).collect::<Vec<_>>());
    Ok(())
}

#[tokio::test]
async fn scripted_answers_are_served_through_the_fake() -> anyhow::Result<()> {
    let f = fake(10).await?;
    let busy = json!({ "codigo": 503, "mensaje": "Servicio no disponible" });
    f.handle
        .script()
        .push(Forced::once(PATH, 503, busy.clone()));
    let refused = json!({ "codigo": 401, "mensaje": "Token vencido" });
    f.handle
        .script()
        .push(Forced::once(PATH, 401, refused.clone()));
    f.handle.script().push(Forced::slow(PATH, 300, 1));
    assert_eq!(send(f.raw(QUERY)).await?, (503, busy));
    assert_eq!(send(f.raw(QUERY)).await?, (401, refused));
    let started = Instant::now();
    let (code, body) = send(f.raw(QUERY)).await?;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!((code, ids(&body).len()), (200, 10));

    let log = f.handle.script().requests_to(PATH);
    let statuses: Vec<u16> = log.iter().map(|s| s.status).collect();
    assert_eq!(statuses, [503, 401, 200]);
    assert_eq!(log[0].method, "GET");
    assert!(
        log[0].query.contains("descripcion=API_v2_ItemsInventario"),
        "{}",
        log[0].query
    );
    Ok(())
}
