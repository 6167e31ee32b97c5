//! A fake MOK API, the work-order ("OT", orden de trabajo) API of a medical-assistance
//! operator: OAuth2 client credentials, then JSON `POST`s under `/v1` with the bearer
//! token, answering in MOK's shapes.
//!
//! - `POST /oauth/token`: `grant_type=client_credentials` with the client id and secret in
//!   the form body or in HTTP Basic auth (RFC 6749 §2.3.1). Errors are RFC 6749's
//!   `{"error", "error_description"}`: `invalid_client` (401), `unsupported_grant_type`
//!   or `invalid_request` (400). Tokens expire after `Config::token_seconds`.
//! - `POST /v1/createOT`, `/v1/processService`, `/v1/updateScript`: validation errors are
//!   400 `{"success": false, "message"}`, an unknown OT 404 in the same shape, and a
//!   missing, unknown or expired token 401 `{"error": "invalid_token", ...}`.
//!
//! Every request goes through the fake's [`Script`], so tests can force answers.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use crate::script::Script;
use crate::util::{self, lock};

pub const DEMO_CLIENT_ID: &str = "orquesta-demo";
pub const DEMO_CLIENT_SECRET: &str = "demo-mok-secret";
/// The id the first OT created gets; later ones count up from it.
pub const FIRST_OT_ID: u64 = 15_252_900;

#[derive(Debug, Clone)]
pub struct Config {
    pub client_id: String,
    pub client_secret: String,
    /// How long an access token lives (`expires_in`).
    pub token_seconds: u64,
}

impl Config {
    /// The demo client: `orquesta-demo` / `demo-mok-secret`, tokens for an hour.
    pub fn demo() -> Self {
        Config {
            client_id: DEMO_CLIENT_ID.into(),
            client_secret: DEMO_CLIENT_SECRET.into(),
            token_seconds: 3600,
        }
    }
}

#[derive(Debug, Clone)]
struct Ot {
    case: u64,
    /// Unknown for OTs seeded with [`Handle::add_ot`].
    provider: Option<u64>,
    service: Option<u64>,
    scheduled: Option<String>,
    status: &'static str,
    comments: Vec<String>,
}

#[derive(Default)]
struct Data {
    /// Every token issued and when it expires; expired ones stay to be told apart.
    tokens: HashMap<String, Instant>,
    issued: usize,
    next_ot: u64,
    ots: BTreeMap<u64, Ot>,
    scripts: HashMap<u64, Value>,
}

/// The test's side of the fake: its script and its data. Clones share them.
#[derive(Clone)]
pub struct Handle {
    script: Script,
    data: Arc<Mutex<Data>>,
}

impl Handle {
    /// The forced answers and request log of this fake.
    pub fn script(&self) -> &Script {
        &self.script
    }

    /// Invalidates every token issued so far, as a rotated signing key would.
    pub fn revoke_tokens(&self) {
        lock(&self.data).tokens.clear();
    }

    /// How many tokens `/oauth/token` has issued (revocation does not lower it).
    pub fn tokens_issued(&self) -> usize {
        lock(&self.data).issued
    }

    /// Seeds an OT that already exists upstream, in status `CREATED` (provider, service
    /// and date unknown). An existing OT with that id is replaced.
    pub fn add_ot(&self, id_ot: u64, id_case: u64) {
        let ot = Ot {
            case: id_case,
            provider: None,
            service: None,
            scheduled: None,
            status: "CREATED",
            comments: Vec::new(),
        };
        lock(&self.data).ots.insert(id_ot, ot);
    }

    /// An OT's state: `{IdOT, IdCase, IdProvider, IdService, DateScheduled, status,
    /// comments: [text, ...]}` (the unknowns of a seeded OT are null).
    pub fn ot(&self, id: u64) -> Option<Value> {
        lock(&self.data).ots.get(&id).map(|ot| ot_json(id, ot))
    }

    /// Every OT, by id.
    pub fn ots(&self) -> Vec<Value> {
        let data = lock(&self.data);
        data.ots.iter().map(|(id, ot)| ot_json(*id, ot)).collect()
    }

    /// The last script `/v1/updateScript` stored for a case, as sent.
    pub fn script_of(&self, case_id: u64) -> Option<Value> {
        lock(&self.data).scripts.get(&case_id).cloned()
    }
}

fn ot_json(id: u64, ot: &Ot) -> Value {
    json!({
        "IdOT": id,
        "IdCase": ot.case,
        "IdProvider": ot.provider,
        "IdService": ot.service,
        "DateScheduled": ot.scheduled,
        "status": ot.status,
        "comments": ot.comments,
    })
}

#[derive(Clone)]
struct Fake {
    config: Arc<Config>,
    handle: Handle,
}

/// The fake's routes (the script's `/_fake/*` included) and the handle on its state.
pub fn router(config: Config) -> (Router, Handle) {
    let handle = Handle {
        script: Script::new(),
        data: Arc::new(Mutex::new(Data {
            next_ot: FIRST_OT_ID,
            ..Data::default()
        })),
    };
    let fake = Fake {
        config: Arc::new(config),
        handle: handle.clone(),
    };
    let router = Router::new()
        .route("/oauth/token", endpoint(Fake::token))
        .route("/v1/createOT", endpoint(Fake::create_ot))
        .route("/v1/processService", endpoint(Fake::process_service))
        .route("/v1/updateScript", endpoint(Fake::update_script))
        .fallback(|uri: Uri| async move {
            Failure::mok(
                StatusCode::NOT_FOUND,
                format!("Ruta {} no encontrada", uri.path()),
            )
            .into_response()
        })
        .with_state(fake)
        .merge(handle.script.routes());
    (router, handle)
}

type Api = fn(&Fake, &HeaderMap, &[u8]) -> Result<Value, Failure>;

/// A `POST` route answering `api`'s JSON, through the script.
fn endpoint(api: Api) -> MethodRouter<Fake> {
    post(
        move |State(fake): State<Fake>,
              method: Method,
              uri: Uri,
              headers: HeaderMap,
              body: Bytes| async move {
            util::scripted(&fake.handle.script, &method, &uri, &body, || {
                match api(&fake, &headers, &body) {
                    Ok(v) => Json(v).into_response(),
                    Err(e) => e.into_response(),
                }
            })
            .await
        },
    )
}

/// An error answer: its status, its body in the shape of the part of MOK that failed,
/// and for a 401 the `WWW-Authenticate` challenge.
struct Failure {
    status: StatusCode,
    body: Value,
    challenge: Option<String>,
}

impl Failure {
    /// The API's own shape.
    fn mok(status: StatusCode, message: String) -> Self {
        Failure {
            status,
            body: json!({ "success": false, "message": message }),
            challenge: None,
        }
    }

    fn invalid(message: String) -> Self {
        Self::mok(StatusCode::BAD_REQUEST, message)
    }

    /// RFC 6749 §5.2's shape, for the token endpoint.
    fn oauth(status: StatusCode, error: &str, description: &str) -> Self {
        let challenge = (status == StatusCode::UNAUTHORIZED)
            .then(|| "Basic realm=\"MOK\", charset=\"UTF-8\"".to_string());
        Failure {
            status,
            body: json!({ "error": error, "error_description": description }),
            challenge,
        }
    }

    /// RFC 6750 §3's, for a bearer token the API refuses.
    fn bad_token(description: &str) -> Self {
        Failure {
            status: StatusCode::UNAUTHORIZED,
            body: json!({ "error": "invalid_token", "error_description": description }),
            challenge: Some(format!(
                "Bearer realm=\"MOK\", error=\"invalid_token\", error_description=\"{description}\""
            )),
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if let Some(v) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        response
    }
}

impl Fake {
    fn token(&self, headers: &HeaderMap, body: &[u8]) -> Result<Value, Failure> {
        let form = util::form_pairs(&String::from_utf8_lossy(body));
        let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let (id, secret) = match basic_credentials(headers)? {
            Some(pair) => pair,
            None => (
                field("client_id").unwrap_or_default(),
                field("client_secret").unwrap_or_default(),
            ),
        };
        if id.is_empty() || secret.is_empty() {
            return Err(Failure::oauth(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Client authentication is required",
            ));
        }
        if id != self.config.client_id || secret != self.config.client_secret {
            return Err(Failure::oauth(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Client authentication failed: unknown client or wrong secret",
            ));
        }
        match field("grant_type").as_deref() {
            Some("client_credentials") => {}
            None | Some("") => {
                return Err(Failure::oauth(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "grant_type is required",
                ));
            }
            Some(_) => {
                return Err(Failure::oauth(
                    StatusCode::BAD_REQUEST,
                    "unsupported_grant_type",
                    "Only client_credentials is supported",
                ));
            }
        }
        let token = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let lifetime = Duration::from_secs(self.config.token_seconds);
        let mut data = lock(&self.handle.data);
        data.tokens.insert(token.clone(), Instant::now() + lifetime);
        data.issued += 1;
        Ok(json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.config.token_seconds,
        }))
    }

    fn authorize(&self, headers: &HeaderMap) -> Result<(), Failure> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| strip_scheme(v, "Bearer"))
            .ok_or_else(|| Failure::bad_token("The access token is missing"))?;
        match lock(&self.handle.data).tokens.get(token) {
            Some(expiry) if Instant::now() < *expiry => Ok(()),
            Some(_) => Err(Failure::bad_token("The access token expired")),
            None => Err(Failure::bad_token("The access token is not valid")),
        }
    }

    /// An authorized call's body, which must be a JSON object.
    fn request(&self, headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, Failure> {
        self.authorize(headers)?;
        match serde_json::from_slice(body) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(Failure::invalid("The body must be a JSON object".into())),
            Err(e) => Err(Failure::invalid(format!("The body is not valid JSON: {e}"))),
        }
    }

    fn create_ot(&self, headers: &HeaderMap, body: &[u8]) -> Result<Value, Failure> {
        let req = self.request(headers, body)?;
        let case = int(&req, "IdCase")?;
        let provider = int(&req, "IdProvider")?;
        let service = int(&req, "IdService")?;
        let scheduled = date(&req, "DateScheduled")?;
        let comments = text(&req, "Comments")?;
        let mut data = lock(&self.handle.data);
        let mut id = data.next_ot;
        // Seeded OTs may sit on the ids the counter reaches.
        while data.ots.contains_key(&id) {
            id += 1;
        }
        data.next_ot = id + 1;
        let ot = Ot {
            case,
            provider: Some(provider),
            service: Some(service),
            scheduled: Some(scheduled),
            status: "CREATED",
            comments: vec![comments],
        };
        data.ots.insert(id, ot);
        Ok(json!({ "success": true, "message": "OT creada", "IdOT": id, "IdCase": case }))
    }

    fn process_service(&self, headers: &HeaderMap, body: &[u8]) -> Result<Value, Failure> {
        let req = self.request(headers, body)?;
        let add_comment = flag(&req, "addComment")?;
        let id = int(&req, "IdOT")?;
        let comment = text(&req, "comment")?;
        // With addComment the service is started or resolved; without it the call is a
        // note and carries the date instead.
        let start_service = if add_comment {
            Some(flag(&req, "startService")?)
        } else {
            date(&req, "DateScheduled")?;
            None
        };
        let mut data = lock(&self.handle.data);
        let ot = data
            .ots
            .get_mut(&id)
            .ok_or_else(|| Failure::mok(StatusCode::NOT_FOUND, format!("OT {id} not found")))?;
        let message = match start_service {
            Some(false) => {
                ot.status = "STARTED";
                "Servicio iniciado"
            }
            Some(true) => {
                ot.status = "RESOLVED";
                "Servicio finalizado"
            }
            None => "Comentario agregado",
        };
        ot.comments.push(comment);
        Ok(json!({ "success": true, "message": message, "IdOT": id, "status": ot.status }))
    }

    fn update_script(&self, headers: &HeaderMap, body: &[u8]) -> Result<Value, Failure> {
        let req = self.request(headers, body)?;
        let case = int(&req, "caseId")?;
        text(&req, "comment")?;
        let script = match req.get("script") {
            None | Some(Value::Null) => return Err(required("script")),
            Some(Value::Object(s)) => s,
            Some(_) => return Err(Failure::invalid("script must be an object".into())),
        };
        for field in ["selfAssistanceType", "selfAssistance"] {
            text_at(script, field, "script.")?;
        }
        for field in ["initialStimate", "finalStimate", "trm"] {
            match script.get(field) {
                None | Some(Value::Null) => return Err(required(&format!("script.{field}"))),
                Some(Value::String(_) | Value::Number(_)) => {}
                Some(_) => {
                    return Err(Failure::invalid(format!(
                        "script.{field} must be a string or a number"
                    )));
                }
            }
        }
        text_at(script, "finalCIE10Diagnosis", "script.")?;
        lock(&self.handle.data)
            .scripts
            .insert(case, Value::Object(script.clone()));
        Ok(json!({ "success": true, "message": "Script actualizado", "caseId": case }))
    }
}

/// The `Authorization` header's value after `scheme` (matched case-insensitively).
fn strip_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (given, rest) = value.split_once(' ')?;
    given
        .eq_ignore_ascii_case(scheme)
        .then(|| rest.trim())
        .filter(|t| !t.is_empty())
}

/// Client credentials sent as HTTP Basic, each part form-encoded first (RFC 6749 §2.3.1).
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, Failure> {
    let Some(encoded) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| strip_scheme(v, "Basic"))
    else {
        return Ok(None);
    };
    let decoded = util::base64_decode(encoded)
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            let (id, secret) = s.split_once(':')?;
            Some((util::percent_decode(id), util::percent_decode(secret)))
        });
    match decoded {
        Some(pair) => Ok(Some(pair)),
        None => Err(Failure::oauth(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Malformed HTTP Basic client credentials",
        )),
    }
}

fn required(field: &str) -> Failure {
    Failure::invalid(format!("{field} is required"))
}

fn present<'a>(req: &'a Map<String, Value>, field: &str) -> Result<&'a Value, Failure> {
    req.get(field)
        .filter(|v| !v.is_null())
        .ok_or_else(|| required(field))
}

fn int(req: &Map<String, Value>, field: &str) -> Result<u64, Failure> {
    present(req, field)?
        .as_u64()
        .ok_or_else(|| Failure::invalid(format!("{field} must be a positive integer")))
}

fn text(req: &Map<String, Value>, field: &str) -> Result<String, Failure> {
    text_at(req, field, "")
}

/// A string field; `prefix` names the object it sits in, for the message.
fn text_at(req: &Map<String, Value>, field: &str, prefix: &str) -> Result<String, Failure> {
    match req.get(field) {
        None | Some(Value::Null) => Err(required(&format!("{prefix}{field}"))),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(Failure::invalid(format!(
            "{prefix}{field} must be a string"
        ))),
    }
}

/// A `0 | 1` flag.
fn flag(req: &Map<String, Value>, field: &str) -> Result<bool, Failure> {
    match present(req, field)?.as_u64() {
        Some(0) => Ok(false),
        Some(1) => Ok(true),
        _ => Err(Failure::invalid(format!("{field} must be 0 or 1"))),
    }
}

fn date(req: &Map<String, Value>, field: &str) -> Result<String, Failure> {
    let value = present(req, field)?;
    value
        .as_str()
        .filter(|s| util::parse_rfc3339(s).is_some())
        .map(str::to_string)
        .ok_or_else(|| {
            Failure::invalid(format!(
                "{field} must be an RFC 3339 date-time (2026-01-31T14:00:00-05:00)"
            ))
        })
}
