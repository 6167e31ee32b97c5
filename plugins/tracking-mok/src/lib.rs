//! `tracking-mok`: the TrackingMok task of the `tracking-mok` workflow (FLOWS.md section
//! 1). For a provider event it finds the EventProvider row in the tenant's `mok` database
//! and tells the MOK API about it:
//!
//! - `EVENT_PROVIDER_CREATE`: the closed row's case -> `POST /createOT`; the new OT id is
//!   stored back on the row (`ExternalRequestId = "CaseId|IdOT"`, `ExternalData`).
//! - `EVENT_PROVIDER_START` / `EVENT_PROVIDER_RESOLVE`: the open row's OT ->
//!   `POST /processService` with `startService` 0 / 1.
//! - `NOTE_REGISTER`: the newest row's OT -> `POST /processService` (a comment), then
//!   `POST /updateScript` with the case summary from the `VwSummaryEventMOK` view.
//!
//! MOK takes OAuth2 client-credential tokens: one is cached in kv until 5 minutes before
//! it expires, shared by every invocation; a 401 drops it and retries once. Failed calls
//! (5xx, timeouts) are retried with exponential backoff, and a circuit breaker in kv stops
//! calling MOK for a while after repeated failures. Like the Lambda it replaces, it
//! answers `{statusCode, body, action, current_status}` rather than failing: 400 for bad
//! parameters, 500 for upstream or internal errors, with `{"error", "details"}` in `body`.

use orquesta_sdk::{Event, Failure, Handler, HostError, Response, config, http, kv, log, sql};
use serde_json::{Value, json};

const CLOSED: &str = "4";
const TOKEN_KEY: &str = "mok-token";
const CIRCUIT_KEY: &str = "mok-circuit";
/// The seed caches tokens until five minutes before they expire.
const TOKEN_MARGIN_S: u64 = 300;

struct TrackingMok;

impl Handler for TrackingMok {
    fn handle(event: Event) -> Result<Response, Failure> {
        let Event::Task(task) = event else {
            return Err(Failure::new(
                "UnsupportedEvent",
                "tracking-mok runs as a workflow task",
            ));
        };
        let input: Value = match serde_json::from_str(&task.input) {
            Ok(v) => v,
            Err(e) => return Ok(reply("", Err(Problem::invalid(format!("input: {e}"))))),
        };
        let action = input["logData"]["action"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let outcome = track(&input, &action);
        if outcome.is_ok() {
            correlate(&input)?;
        }
        Ok(reply(&action, outcome))
    }
}

orquesta_sdk::export!(TrackingMok);

/// Why an action did not complete: the seed's 400 and 500 answers.
#[derive(Debug)]
enum Problem {
    Invalid(String),
    Internal(String),
}

impl Problem {
    fn invalid(why: impl Into<String>) -> Self {
        Problem::Invalid(why.into())
    }
    fn internal(why: impl Into<String>) -> Self {
        Problem::Internal(why.into())
    }
}

impl From<HostError> for Problem {
    fn from(e: HostError) -> Self {
        let f = Failure::from(e);
        Problem::Internal(format!("{}: {}", f.error, f.cause))
    }
}

fn reply(action: &str, outcome: Result<Value, Problem>) -> Response {
    let (status, body) = match outcome {
        Ok(body) => (200, body),
        Err(Problem::Invalid(details)) => (
            400,
            json!({ "error": "Parametros invalidos", "details": details }),
        ),
        Err(Problem::Internal(details)) => (
            500,
            json!({ "error": "Error interno del servidor", "details": details }),
        ),
    };
    if status != 200 {
        log::log(
            log::Level::Warn,
            "tracking-mok action failed",
            &[
                ("action".into(), action.into()),
                ("status".into(), status.to_string()),
                ("body".into(), body.to_string()),
            ],
        );
    }
    Response::json(&json!({
        "statusCode": status,
        "body": body.to_string(),
        "action": action,
        "current_status": if status == 200 { "success" } else { "error" },
    }))
}

fn track(input: &Value, action: &str) -> Result<Value, Problem> {
    let log_data = &input["logData"];
    let event_id = log_data["eventId"]
        .as_i64()
        .or_else(|| log_data["eventId"].as_str().and_then(|s| s.parse().ok()))
        .ok_or_else(|| Problem::invalid("logData.eventId must be an integer"))?;
    let comment = log_data["description"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mok = Mok::from_config()?;
    match action {
        "EVENT_PROVIDER_CREATE" => {
            let row = provider(event_id, Status::Closed)?;
            let ids = parse_external_request_id(&row.external_request_id);
            let case_id: i64 = ids.case_id.parse().map_err(|_| {
                Problem::invalid(format!(
                    "ExternalRequestId {:?} has no case id",
                    row.external_request_id
                ))
            })?;
            let payload = json!({
                "IdCase": case_id,
                "IdProvider": config_int("provider_id")?,
                "IdService": config_int("service_id")?,
                "DateScheduled": now_rfc3339(),
                "Comments": comment,
            });
            let answer = mok.post("/createOT", &payload)?;
            let id_ot = answer["IdOT"].as_i64().ok_or_else(|| {
                Problem::internal(format!("/createOT answered no IdOT: {answer}"))
            })?;
            sql::execute(
                &database(),
                "UPDATE EventProvider SET ExternalData = ?, ExternalRequestId = ? WHERE Id = ?",
                &[
                    sql::Value::Text(answer.to_string()),
                    sql::Value::Text(format!("{case_id}|{id_ot}")),
                    sql::Value::Integer(row.id),
                ],
            )?;
            Ok(json!({ "message": "OT creada", "IdOT": id_ot, "IdCase": case_id, "mok": answer }))
        }
        "EVENT_PROVIDER_START" | "EVENT_PROVIDER_RESOLVE" => {
            let row = provider(event_id, Status::Open)?;
            let id_ot = ot_of(&row)?;
            let start = i64::from(action == "EVENT_PROVIDER_RESOLVE");
            let payload = json!({ "addComment": 1, "IdOT": id_ot, "startService": start, "comment": comment });
            let answer = mok.post("/processService", &payload)?;
            Ok(json!({ "message": "servicio actualizado", "IdOT": id_ot, "mok": answer }))
        }
        "NOTE_REGISTER" => {
            let row = provider(event_id, Status::Any)?;
            let id_ot = ot_of(&row)?;
            let payload = json!({
                "addComment": 0, "IdOT": id_ot, "DateScheduled": now_rfc3339(), "comment": comment,
            });
            let note = mok.post("/processService", &payload)?;
            let script = handle_update_script(&mok, &row, &comment)?;
            Ok(
                json!({ "message": "nota registrada", "IdOT": id_ot, "mok": note, "script": script }),
            )
        }
        "" => Err(Problem::invalid("logData.action is required")),
        other => Err(Problem::invalid(format!("unknown action {other:?}"))),
    }
}

/// `/updateScript` with the case summary: the first guarantee payment's type, service and
/// estimate, the last one's estimate, exchange rate and diagnosis.
fn handle_update_script(mok: &Mok, row: &Provider, comment: &str) -> Result<Value, Problem> {
    let ids = parse_external_request_id(&row.external_request_id);
    let case_id: i64 = ids.case_id.parse().map_err(|_| {
        Problem::invalid(format!(
            "ExternalRequestId {:?} has no case id",
            row.external_request_id
        ))
    })?;
    let rows = sql::query(
        &database(),
        "SELECT SelfAssistanceType, SelfAssistance, Estimate, TRM, CIE10Diagnosis \
         FROM VwSummaryEventMOK WHERE CaseId = ? ORDER BY GuaranteePaymentCreatedAt ASC",
        &[sql::Value::Integer(case_id)],
    )?;
    let (Some(first), Some(last)) = (rows.rows.first(), rows.rows.last()) else {
        return Err(Problem::invalid(format!(
            "VwSummaryEventMOK has no rows for case {case_id}"
        )));
    };
    let payload = json!({
        "caseId": case_id,
        "comment": comment,
        "script": {
            "selfAssistanceType": text(&first[0]),
            "selfAssistance": text(&first[1]),
            "initialStimate": number(&first[2]),
            "finalStimate": number(&last[2]),
            "trm": number(&last[3]),
            "finalCIE10Diagnosis": text(&last[4]),
        },
    });
    mok.post("/updateScript", &payload)
}

fn text(v: &sql::Value) -> Value {
    match v {
        sql::Value::Text(s) => json!(s),
        sql::Value::Integer(i) => json!(i.to_string()),
        sql::Value::Real(f) => json!(f.to_string()),
        _ => json!(""),
    }
}

fn number(v: &sql::Value) -> Value {
    match v {
        sql::Value::Integer(i) => json!(i),
        sql::Value::Real(f) => json!(f),
        sql::Value::Text(s) => s.parse::<f64>().map_or(json!(s), |f| json!(f)),
        _ => json!(0),
    }
}

// ---- the EventProvider table ----------------------------------------------------------

struct Provider {
    id: i64,
    external_request_id: String,
}

#[derive(Clone, Copy)]
enum Status {
    Open,
    Closed,
    Any,
}

fn database() -> String {
    config::get("database").unwrap_or_else(|| "mok".into())
}

/// The newest EventProvider row of the event in that status.
fn provider(event_id: i64, status: Status) -> Result<Provider, Problem> {
    let mut params = vec![sql::Value::Integer(event_id)];
    let filter = match status {
        Status::Open => "AND EventProviderStatusId != ?",
        Status::Closed => "AND EventProviderStatusId = ?",
        Status::Any => "",
    };
    if !filter.is_empty() {
        params.push(sql::Value::Text(CLOSED.into()));
    }
    let statement = format!(
        "SELECT Id, ExternalRequestId FROM EventProvider WHERE EventId = ? {filter} \
         ORDER BY CreatedAt DESC LIMIT 1"
    );
    let rows = sql::query(&database(), &statement, &params)?;
    let Some(row) = rows.rows.first() else {
        let which = match status {
            Status::Open => "open ",
            Status::Closed => "closed ",
            Status::Any => "",
        };
        return Err(Problem::invalid(format!(
            "no {which}EventProvider for event {event_id}"
        )));
    };
    let id = match row.first() {
        Some(sql::Value::Integer(i)) => *i,
        _ => return Err(Problem::internal("EventProvider.Id is not an integer")),
    };
    let external_request_id = match row.get(1) {
        Some(sql::Value::Text(t)) => t.clone(),
        _ => String::new(),
    };
    Ok(Provider {
        id,
        external_request_id,
    })
}

struct ExternalIds {
    case_id: String,
    id_ot: String,
}

/// `"CaseId|IdOt"`, as the seed stores it.
fn parse_external_request_id(text: &str) -> ExternalIds {
    match text.split_once('|') {
        Some((case, ot)) => ExternalIds {
            case_id: case.trim().into(),
            id_ot: ot.trim().into(),
        },
        None => ExternalIds {
            case_id: String::new(),
            id_ot: String::new(),
        },
    }
}

fn ot_of(row: &Provider) -> Result<i64, Problem> {
    parse_external_request_id(&row.external_request_id)
        .id_ot
        .parse()
        .map_err(|_| {
            Problem::invalid(format!(
                "ExternalRequestId {:?} has no OT id",
                row.external_request_id
            ))
        })
}

/// Sets the correlation `client_id` on the assistances logger item `(PK, SK)`, as the
/// seed's DynamoDB `update_item` does (creating it when absent).
fn correlate(input: &Value) -> Result<(), Failure> {
    let (Some(pk), Some(sk)) = (input["PK"].as_str(), input["SK"].as_str()) else {
        return Ok(());
    };
    let bucket = config::get("logger_bucket").unwrap_or_else(|| "assistances-logger".into());
    let key = format!("{pk}#{sk}");
    let mut item = match kv::get(&bucket, &key)? {
        Some(entry) => serde_json::from_slice(&entry.value).unwrap_or_else(|_| json!({})),
        None => json!({ "PK": pk, "SK": sk }),
    };
    item["client_id"] = json!(setting("MOK_CLIENT_ID").unwrap_or_default());
    kv::set(&bucket, &key, item.to_string().as_bytes(), None)?;
    Ok(())
}

// ---- settings -------------------------------------------------------------------------

/// A secret, or the config value of the same name (URLs need not be secret).
fn setting(name: &str) -> Option<String> {
    config::secret(name).or_else(|| config::get(name))
}

fn required(name: &str) -> Result<String, Problem> {
    setting(name).ok_or_else(|| Problem::internal(format!("{name} is not configured")))
}

fn config_int(name: &str) -> Result<i64, Problem> {
    required(name)?
        .parse()
        .map_err(|_| Problem::internal(format!("{name} must be an integer")))
}

fn config_u64(name: &str, default: u64) -> u64 {
    config::get(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

// ---- the MOK API ----------------------------------------------------------------------

struct Mok {
    auth_url: String,
    base_url: String,
    client_id: String,
    client_secret: String,
    timeout_ms: u32,
    retries: u32,
    backoff_ms: u64,
    circuit_threshold: u64,
    circuit_open_ms: u64,
}

impl Mok {
    fn from_config() -> Result<Self, Problem> {
        Ok(Mok {
            auth_url: required("MOK_AUTH_URL")?,
            base_url: required("MOK_BASE_URL")?.trim_end_matches('/').to_string(),
            client_id: required("MOK_CLIENT_ID")?,
            client_secret: required("MOK_CLIENT_SECRET")?,
            // The seed's defaults: 30 s per call, one retry, backoff from 1 s.
            timeout_ms: config_u64("timeout_ms", 30_000) as u32,
            retries: config_u64("retries", 1) as u32,
            backoff_ms: config_u64("backoff_ms", 1_000),
            circuit_threshold: config_u64("circuit_threshold", 5).max(1),
            circuit_open_ms: config_u64("circuit_open_seconds", 60) * 1000,
        })
    }

    /// POSTs `payload` to `path` with a valid token, retrying as the seed does; the
    /// answer's JSON when MOK accepted it.
    fn post(&self, path: &str, payload: &Value) -> Result<Value, Problem> {
        self.circuit_allows()?;
        let url = format!("{}{path}", self.base_url);
        let body = payload.to_string().into_bytes();
        let mut attempt = 0;
        loop {
            match self.send_authorized(&url, &body) {
                Ok(answer) if answer.status < 300 => {
                    self.circuit_record(true)?;
                    return Ok(serde_json::from_slice(&answer.body).unwrap_or(Value::Null));
                }
                Ok(answer) if answer.status < 500 => {
                    // MOK refused the request itself: retrying will not help, and MOK is up.
                    self.circuit_record(true)?;
                    return Err(Problem::internal(format!(
                        "MOK {path} answered {}: {}",
                        answer.status,
                        String::from_utf8_lossy(&answer.body)
                    )));
                }
                outcome => {
                    let why = match outcome {
                        Ok(answer) => format!(
                            "MOK {path} answered {}: {}",
                            answer.status,
                            String::from_utf8_lossy(&answer.body)
                        ),
                        Err(e) => format!("MOK {path}: {e}"),
                    };
                    if attempt >= self.retries {
                        self.circuit_record(false)?;
                        return Err(Problem::internal(format!(
                            "{why} (after {} attempts)",
                            attempt + 1
                        )));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(
                        self.backoff_ms.saturating_mul(1 << attempt.min(10)),
                    ));
                    attempt += 1;
                }
            }
        }
    }

    /// One call with the cached token; on 401, once more with a new one.
    fn send_authorized(&self, url: &str, body: &[u8]) -> Result<http::Response, String> {
        let token = self.token(false)?;
        let answer = self.send(url, &token, body)?;
        if answer.status != 401 {
            return Ok(answer);
        }
        let token = self.token(true)?;
        self.send(url, &token, body)
    }

    fn send(&self, url: &str, token: &str, body: &[u8]) -> Result<http::Response, String> {
        http::send(&http::Request {
            method: "POST".into(),
            url: url.into(),
            headers: vec![
                ("authorization".into(), format!("Bearer {token}")),
                ("content-type".into(), "application/json".into()),
            ],
            body: body.to_vec(),
            timeout_ms: Some(self.timeout_ms),
        })
        .map_err(|e| {
            let f = Failure::from(e);
            format!("{}: {}", f.error, f.cause)
        })
    }

    /// The cached token, or a new one from the token endpoint (cached until five minutes
    /// before it expires). `renew` drops the cached one first.
    fn token(&self, renew: bool) -> Result<String, String> {
        let host = |e: HostError| {
            let f = Failure::from(e);
            format!("{}: {}", f.error, f.cause)
        };
        if renew {
            kv::delete("default", TOKEN_KEY).map_err(host)?;
        } else if let Some(entry) = kv::get("default", TOKEN_KEY).map_err(host)? {
            return Ok(String::from_utf8_lossy(&entry.value).into_owned());
        }
        let form = format!(
            "grant_type=client_credentials&client_id={}&client_secret={}",
            form_encode(&self.client_id),
            form_encode(&self.client_secret)
        );
        let answer = http::send(&http::Request {
            method: "POST".into(),
            url: self.auth_url.clone(),
            headers: vec![(
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            )],
            body: form.into_bytes(),
            timeout_ms: Some(self.timeout_ms),
        })
        .map_err(host)?;
        if answer.status != 200 {
            return Err(format!(
                "the MOK token endpoint answered {}: {}",
                answer.status,
                String::from_utf8_lossy(&answer.body)
            ));
        }
        let doc: Value = serde_json::from_slice(&answer.body)
            .map_err(|e| format!("the MOK token endpoint answered no JSON: {e}"))?;
        let token = doc["access_token"]
            .as_str()
            .ok_or("the MOK token endpoint answered no access_token")?
            .to_string();
        let expires_in = doc["expires_in"].as_u64().unwrap_or(0);
        if expires_in > TOKEN_MARGIN_S {
            let ttl = (expires_in - TOKEN_MARGIN_S) * 1000;
            kv::set("default", TOKEN_KEY, token.as_bytes(), Some(ttl)).map_err(host)?;
        }
        Ok(token)
    }

    /// Fails fast while the circuit is open: `failures` consecutive failed calls open it
    /// for `circuit_open_seconds`; then one call is let through to try MOK again.
    fn circuit_allows(&self) -> Result<(), Problem> {
        let state = circuit()?;
        let open_until = state["open_until"].as_u64().unwrap_or(0);
        if open_until > now_ms() {
            return Err(Problem::internal(format!(
                "circuit open: MOK failed {} times in a row; calls resume in {} s",
                state["failures"],
                (open_until - now_ms()).div_ceil(1000)
            )));
        }
        Ok(())
    }

    fn circuit_record(&self, ok: bool) -> Result<(), Problem> {
        if ok {
            kv::delete("default", CIRCUIT_KEY)?;
            return Ok(());
        }
        let failures = circuit()?["failures"].as_u64().unwrap_or(0) + 1;
        let open_until = if failures >= self.circuit_threshold {
            now_ms() + self.circuit_open_ms
        } else {
            0
        };
        let state = json!({ "failures": failures, "open_until": open_until });
        kv::set("default", CIRCUIT_KEY, state.to_string().as_bytes(), None)?;
        Ok(())
    }
}

fn circuit() -> Result<Value, Problem> {
    Ok(match kv::get("default", CIRCUIT_KEY)? {
        Some(entry) => serde_json::from_slice(&entry.value).unwrap_or_else(|_| json!({})),
        None => json!({}),
    })
}

/// `application/x-www-form-urlencoded` value encoding.
fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
