//! A fake Siesa ERP: the Connekta query API (`ejecutarconsulta`) answering the item
//! inventory query over a product catalogue the test controls.
//!
//! `GET /api/v3/ejecutarconsulta?idCompania=1&descripcion=API_v2_ItemsInventario
//! &paginacion=numPag=1|tamPag=1000[&parametros=fecha_actualizacion=<RFC 3339>]` with the
//! `ConniKey` and `ConniToken` headers. Products come ordered by `f120_id`; the
//! `fecha_actualizacion` parameter keeps those updated strictly after it (the incremental
//! sync). Errors are Connekta's `{"codigo", "mensaje"}` with the HTTP status as `codigo`.
//!
//! Every request goes through the fake's [`Script`], so tests can force answers.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::script::Script;
use crate::util::{self, lock};

/// The only query this fake knows: the item inventory.
pub const PRODUCTS_QUERY: &str = "API_v2_ItemsInventario";
/// The largest page Connekta serves.
pub const MAX_PAGE_SIZE: usize = 1000;
/// When generated products were last updated: 2026-01-01T00:00:00Z.
pub const GENERATED_AT: &str = "2026-01-01T00:00:00Z";
const GENERATED_AT_MS: i64 = 1_767_225_600_000;

#[derive(Debug, Clone)]
pub struct Config {
    pub conni_key: String,
    pub conni_token: String,
    pub company_id: u32,
}

impl Config {
    /// `demo-conni-key` / `demo-conni-token`, company 1.
    pub fn demo() -> Self {
        Config {
            conni_key: "demo-conni-key".into(),
            conni_token: "demo-conni-token".into(),
            company_id: 1,
        }
    }
}

/// One row of `API_v2_ItemsInventario`, with Siesa's column names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub f120_id: u64,
    pub f120_referencia: String,
    pub f120_descripcion: String,
    /// `UND`, `KG` or `CAJ`.
    pub f120_id_unidad_inventario: String,
    /// The category.
    pub f120_id_grupo: String,
    /// 13 digits (an EAN-13).
    pub f121_codigo_barras: String,
    pub precio_venta: f64,
    pub f120_ind_estado: String,
    /// RFC 3339, UTC.
    pub f120_fecha_actualizacion: String,
}

struct Entry {
    /// `f120_fecha_actualizacion` parsed, for the incremental filter.
    updated_ms: i64,
    product: Product,
}

#[derive(Default)]
struct Catalogue {
    /// Sorted by `f120_id`, ids unique.
    entries: Vec<Entry>,
    /// The latest update time handed out, so that successive touches are strictly
    /// later than each other and than the generated dates.
    last_update_ms: i64,
}

impl Catalogue {
    fn position(&self, id: u64) -> Result<usize, usize> {
        self.entries
            .binary_search_by_key(&id, |e| e.product.f120_id)
    }

    fn next_update_ms(&mut self) -> i64 {
        self.last_update_ms = util::now_ms().max(self.last_update_ms + 1);
        self.last_update_ms
    }
}

/// The test's side of the fake: its script and its catalogue. Clones share them.
#[derive(Clone)]
pub struct Handle {
    script: Script,
    catalogue: Arc<Mutex<Catalogue>>,
}

impl Handle {
    /// The forced answers and request log of this fake.
    pub fn script(&self) -> &Script {
        &self.script
    }

    /// Replaces the catalogue with `n` deterministic products, ids `1..=n`, all last
    /// updated at [`GENERATED_AT`].
    pub fn generate(&self, n: u64) {
        let entries = (1..=n)
            .map(|id| Entry {
                updated_ms: GENERATED_AT_MS,
                product: generated(id),
            })
            .collect();
        let mut catalogue = lock(&self.catalogue);
        catalogue.entries = entries;
        catalogue.last_update_ms = catalogue.last_update_ms.max(GENERATED_AT_MS);
    }

    /// Gives the products with these ids a new description and marks them updated now
    /// (later than any earlier update); returns how many existed.
    pub fn touch(&self, ids: &[u64], new_description: &str) -> usize {
        let mut catalogue = lock(&self.catalogue);
        let now = catalogue.next_update_ms();
        let stamp = util::format_rfc3339(now);
        let mut touched = 0;
        for id in ids {
            if let Ok(i) = catalogue.position(*id) {
                let entry = &mut catalogue.entries[i];
                entry.updated_ms = now;
                entry.product.f120_descripcion = new_description.to_string();
                entry.product.f120_fecha_actualizacion = stamp.clone();
                touched += 1;
            }
        }
        touched
    }

    /// Adds a product (or replaces the one with its `f120_id`); it must have every
    /// column, with an RFC 3339 `f120_fecha_actualizacion`.
    pub fn insert(&self, product: Value) -> Result<(), String> {
        let product: Product =
            serde_json::from_value(product).map_err(|e| format!("not a product: {e}"))?;
        let updated_ms = util::parse_rfc3339(&product.f120_fecha_actualizacion)
            .ok_or_else(|| "f120_fecha_actualizacion is not RFC 3339".to_string())?;
        let mut catalogue = lock(&self.catalogue);
        catalogue.last_update_ms = catalogue.last_update_ms.max(updated_ms);
        let entry = Entry {
            updated_ms,
            product,
        };
        match catalogue.position(entry.product.f120_id) {
            Ok(i) => catalogue.entries[i] = entry,
            Err(i) => catalogue.entries.insert(i, entry),
        }
        Ok(())
    }

    pub fn count(&self) -> usize {
        lock(&self.catalogue).entries.len()
    }

    pub fn get(&self, id: u64) -> Option<Product> {
        let catalogue = lock(&self.catalogue);
        let i = catalogue.position(id).ok()?;
        Some(catalogue.entries[i].product.clone())
    }
}

/// Product `id` of the generated catalogue: medical supplies, stable across runs.
fn generated(id: u64) -> Product {
    const ITEMS: [&str; 8] = [
        "Guante de nitrilo",
        "Jeringa desechable",
        "Gasa esteril",
        "Alcohol antiseptico",
        "Tapabocas quirurgico",
        "Termometro digital",
        "Venda elastica",
        "Suero fisiologico",
    ];
    const VARIANTS: [&str; 6] = ["x 10", "x 50", "x 100", "500 ml", "talla M", "talla L"];
    const GROUPS: [&str; 5] = ["INSUMOS", "MEDICAMENTOS", "EQUIPOS", "ASEO", "PAPELERIA"];
    const UNITS: [&str; 3] = ["UND", "KG", "CAJ"];
    let pick =
        |list: &[&str], salt: u64| list[((id * salt) % list.len() as u64) as usize].to_string();
    Product {
        f120_id: id,
        f120_referencia: format!("REF-{id}"),
        f120_descripcion: format!("{} {}", pick(&ITEMS, 1), pick(&VARIANTS, 7)),
        f120_id_unidad_inventario: pick(&UNITS, 1),
        f120_id_grupo: pick(&GROUPS, 3),
        f121_codigo_barras: ean13(id),
        precio_venta: (1000 + (id * 7919) % 99_000 / 50 * 50) as f64,
        f120_ind_estado: "A".into(),
        f120_fecha_actualizacion: GENERATED_AT.into(),
    }
}

/// A valid EAN-13 with the Colombian prefix 770 and `id` in the item digits.
fn ean13(id: u64) -> String {
    let body = format!("770{:09}", id % 1_000_000_000);
    let sum: u32 = body
        .bytes()
        .enumerate()
        .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

#[derive(Clone)]
struct Fake {
    config: Arc<Config>,
    handle: Handle,
}

/// The fake's routes (the script's `/_fake/*` included) and the handle on its catalogue,
/// which starts empty.
pub fn router(config: Config) -> (Router, Handle) {
    let handle = Handle {
        script: Script::new(),
        catalogue: Arc::new(Mutex::new(Catalogue::default())),
    };
    let fake = Fake {
        config: Arc::new(config),
        handle: handle.clone(),
    };
    let router = Router::new()
        .route("/api/v3/ejecutarconsulta", get(ejecutar_consulta))
        .fallback(|| async {
            error(StatusCode::NOT_FOUND, "Recurso no encontrado".into()).into_response()
        })
        .with_state(fake)
        .merge(handle.script.routes());
    (router, handle)
}

/// An error in Connekta's shape.
struct Failure {
    status: StatusCode,
    message: String,
}

fn error(status: StatusCode, message: String) -> Failure {
    Failure { status, message }
}

fn bad(message: String) -> Failure {
    error(StatusCode::BAD_REQUEST, message)
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let body = json!({ "codigo": self.status.as_u16(), "mensaje": self.message });
        (self.status, Json(body)).into_response()
    }
}

async fn ejecutar_consulta(
    State(fake): State<Fake>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    util::scripted(&fake.handle.script, &method, &uri, b"", || {
        match fake.query(&headers, uri.query().unwrap_or("")) {
            Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
            Err(e) => e.into_response(),
        }
    })
    .await
}

/// What a products query asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Request {
    page: usize,
    size: usize,
    updated_after_ms: Option<i64>,
}

impl Fake {
    fn authorize(&self, headers: &HeaderMap) -> Result<(), Failure> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        if header("ConniKey") == Some(self.config.conni_key.as_str())
            && header("ConniToken") == Some(self.config.conni_token.as_str())
        {
            Ok(())
        } else {
            Err(error(
                StatusCode::UNAUTHORIZED,
                "Credenciales invalidas".into(),
            ))
        }
    }

    /// The page's JSON, serialized while the catalogue is locked so that only the page
    /// is ever copied.
    fn query(&self, headers: &HeaderMap, raw_query: &str) -> Result<Vec<u8>, Failure> {
        self.authorize(headers)?;
        let req = parse_request(raw_query, self.config.company_id)?;
        let catalogue = lock(&self.handle.catalogue);
        let matching: Vec<&Product> = catalogue
            .entries
            .iter()
            .filter(|e| {
                req.updated_after_ms
                    .is_none_or(|after| e.updated_ms > after)
            })
            .map(|e| &e.product)
            .collect();
        let total = matching.len();
        let start = (req.page - 1).saturating_mul(req.size).min(total);
        let end = start.saturating_add(req.size).min(total);
        let body = json_page(&matching[start..end], &req, total);
        serde_json::to_vec(&body).map_err(|e| {
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Error serializando la respuesta: {e}"),
            )
        })
    }
}

#[derive(Serialize)]
struct PageBody<'a> {
    codigo: u32,
    mensaje: &'static str,
    detalle: Detalle<'a>,
    paginacion: Paginacion,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Detalle<'a> {
    datos: &'a [&'a Product],
}

#[derive(Serialize)]
struct Paginacion {
    #[serde(rename = "numPag")]
    num_pag: usize,
    #[serde(rename = "tamPag")]
    tam_pag: usize,
    total_paginas: usize,
    total_registros: usize,
}

fn json_page<'a>(rows: &'a [&'a Product], req: &Request, total: usize) -> PageBody<'a> {
    PageBody {
        codigo: 0,
        mensaje: "Consulta exitosa",
        detalle: Detalle { datos: rows },
        paginacion: Paginacion {
            num_pag: req.page,
            tam_pag: req.size,
            total_paginas: total.div_ceil(req.size),
            total_registros: total,
        },
    }
}

/// Reads the query string the way Connekta does: `paginacion` and `parametros` hold
/// `key=value` pairs separated by `|`, sent raw or percent-encoded.
fn parse_request(raw_query: &str, company_id: u32) -> Result<Request, Failure> {
    let pairs = util::form_pairs(raw_query);
    let param = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    match param("idCompania").map(str::parse::<u32>) {
        Some(Ok(id)) if id == company_id => {}
        Some(Ok(id)) => return Err(bad(format!("La compania {id} no existe"))),
        Some(Err(_)) => return Err(bad("idCompania debe ser numerico".into())),
        None => return Err(bad("El parametro idCompania es obligatorio".into())),
    }
    match param("descripcion") {
        Some(PRODUCTS_QUERY) => {}
        Some(name) => {
            return Err(error(
                StatusCode::NOT_FOUND,
                format!("La consulta {name} no existe"),
            ));
        }
        None => return Err(bad("El parametro descripcion es obligatorio".into())),
    }
    let paging = param("paginacion").ok_or_else(|| {
        bad("El parametro paginacion es obligatorio (numPag=<n>|tamPag=<n>)".into())
    })?;
    let paging = sub_pairs(paging);
    let number = |name: &str| -> Result<usize, Failure> {
        paging
            .iter()
            .find(|(k, _)| *k == name)
            .and_then(|(_, v)| v.trim().parse::<usize>().ok())
            .filter(|n| *n >= 1)
            .ok_or_else(|| bad(format!("paginacion: {name} debe ser un entero mayor a 0")))
    };
    let page = number("numPag")?;
    let size = number("tamPag")?;
    if size > MAX_PAGE_SIZE {
        return Err(bad(format!(
            "paginacion: tamPag no puede ser mayor a {MAX_PAGE_SIZE}"
        )));
    }
    let mut updated_after_ms = None;
    for (key, value) in param("parametros").map(sub_pairs).unwrap_or_default() {
        match key {
            "fecha_actualizacion" => {
                let ms = util::parse_rfc3339(value.trim()).ok_or_else(|| {
                    bad(format!(
                        "parametros: fecha_actualizacion no es una fecha RFC 3339: {value}"
                    ))
                })?;
                updated_after_ms = Some(ms);
            }
            "" => {}
            other => {
                return Err(bad(format!(
                    "parametros: {other} no es un parametro de {PRODUCTS_QUERY}"
                )));
            }
        }
    }
    Ok(Request {
        page,
        size,
        updated_after_ms,
    })
}

/// `a=1|b=2` as pairs.
fn sub_pairs(value: &str) -> Vec<(&str, &str)> {
    value
        .split('|')
        .filter(|p| !p.trim().is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .map(|(k, v)| (k.trim(), v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_raw_and_encoded() {
        let want = Request {
            page: 2,
            size: 500,
            updated_after_ms: None,
        };
        for q in [
            "idCompania=1&descripcion=API_v2_ItemsInventario&paginacion=numPag=2|tamPag=500",
            "idCompania=1&descripcion=API_v2_ItemsInventario&paginacion=numPag%3D2%7CtamPag%3D500",
            "paginacion=numPag=2%7ctamPag=500&descripcion=API_v2_ItemsInventario&idCompania=1",
        ] {
            assert_eq!(parse_request(q, 1).ok(), Some(want), "{q}");
        }
        let q = "idCompania=1&descripcion=API_v2_ItemsInventario&paginacion=numPag=1|tamPag=10\
                 &parametros=fecha_actualizacion=2026-01-01T00:00:00+00:00";
        let got = parse_request(q, 1).ok().and_then(|r| r.updated_after_ms);
        assert_eq!(got, Some(GENERATED_AT_MS));
    }

    #[test]
    fn bad_queries() {
        let status = |q: &str| parse_request(q, 1).err().map(|e| e.status.as_u16());
        let base = "descripcion=API_v2_ItemsInventario&paginacion=numPag=1|tamPag=10";
        assert_eq!(status(&format!("idCompania=2&{base}")), Some(400));
        assert_eq!(status(base), Some(400));
        let q = "idCompania=1&descripcion=Otra&paginacion=numPag=1|tamPag=10";
        assert_eq!(status(q), Some(404));
        let q = "idCompania=1&descripcion=API_v2_ItemsInventario&paginacion=numPag=1|tamPag=1001";
        assert_eq!(status(q), Some(400));
        let q = "idCompania=1&descripcion=API_v2_ItemsInventario&paginacion=numPag=0|tamPag=10";
        assert_eq!(status(q), Some(400));
        assert_eq!(
            status(&format!("idCompania=1&{base}&parametros=x=1")),
            Some(400)
        );
        let q = format!("idCompania=1&{base}&parametros=fecha_actualizacion=ayer");
        assert_eq!(status(&q), Some(400));
    }

    #[test]
    fn generated_products_are_well_formed() {
        let p = generated(42);
        assert_eq!(p.f120_referencia, "REF-42");
        assert_eq!(p.f121_codigo_barras.len(), 13);
        assert_eq!(ean13(1), "7700000000019");
        assert!(["UND", "KG", "CAJ"].contains(&p.f120_id_unidad_inventario.as_str()));
        assert_eq!(generated(42), p, "deterministic");
        assert_eq!(util::parse_rfc3339(GENERATED_AT), Some(GENERATED_AT_MS));
    }
}
