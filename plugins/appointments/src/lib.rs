//! `appointments`: the appointments-by-country flow (FLOWS.md section 2). One component,
//! deployed as several plugins that differ by config `role`:
//!
//! - `api`: `POST /appointments` validates, stores the appointment (`pending`) in the
//!   shared kv bucket and publishes it to `appointment-notifications` with attribute
//!   `country`; `GET /appointments/{insuredId}` lists an insured's appointments by date.
//! - `processor` (config `country`, `database`, `dialect`): consumes its country's queue,
//!   inserts each appointment into `appointment_pe` / `appointment_cl` (idempotently:
//!   delivery is at least once), then puts `AppointmentConfirmation` on the bus.
//! - `confirmation`: consumes the confirmation queue and marks the appointment
//!   `completed`.

use orquesta_sdk::{
    Event, Failure, Handler, HttpRequest, QueueMessage, Response, config, field, kv, messaging,
    notify, sql,
};
use serde_json::{Value, json};

const BUCKET: &str = "appointments";
const TOPIC: &str = "appointment-notifications";
const BUS: &str = "appointment-events-bus";
const COUNTRIES: [&str; 2] = ["PE", "CL"];

struct Appointments;

impl Handler for Appointments {
    fn handle(event: Event) -> Result<Response, Failure> {
        let role = config::get("role").unwrap_or_default();
        match (role.as_str(), event) {
            ("api", Event::Http(req)) => Ok(api(&req)),
            ("processor", Event::Queue(messages)) => each(messages, process),
            ("confirmation", Event::Queue(messages)) => each(messages, confirm),
            (role, _) => Err(Failure::new(
                "UnsupportedEvent",
                format!("role {role:?} does not take this event"),
            )),
        }
    }
}

fn reply(status: u16, body: Value) -> Response {
    Response::http_json(status, &body)
}

fn bad_request(message: impl Into<String>) -> Response {
    reply(
        400,
        json!({ "error": "ValidationError", "message": message.into() }),
    )
}

// ---- api ------------------------------------------------------------------------------

fn api(req: &HttpRequest) -> Response {
    let outcome = match req.method.as_str() {
        "POST" => create(&req.body),
        "GET" => list(field(&req.params, "insuredId").unwrap_or_default()),
        other => Ok(reply(
            405,
            json!({ "error": "MethodNotAllowed", "message": other }),
        )),
    };
    outcome.unwrap_or_else(|f| reply(500, json!({ "error": f.error, "message": f.cause })))
}

/// Five digits, as the seed's insured ids are.
fn valid_insured(id: &str) -> bool {
    id.len() == 5 && id.bytes().all(|b| b.is_ascii_digit())
}

/// `YYYY-MM-DDTHH:MM` or with seconds and zone: enough shape to sort and to refuse junk.
fn valid_date(d: &str) -> bool {
    let b = d.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    d.len() >= 16
        && d.len() <= 30
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && (1..=12).contains(&d[5..7].parse::<u8>().unwrap_or(0))
        && (1..=31).contains(&d[8..10].parse::<u8>().unwrap_or(0))
        && d[11..13].parse::<u8>().unwrap_or(99) < 24
        && d[14..16].parse::<u8>().unwrap_or(99) < 60
}

fn create(body: &[u8]) -> Result<Response, Failure> {
    let Ok(doc) = serde_json::from_slice::<Value>(body) else {
        return Ok(bad_request("the body is not JSON"));
    };
    let insured = doc["insuredId"].as_str().unwrap_or_default();
    let date = doc["dateSchedule"].as_str().unwrap_or_default();
    let country = doc["country"].as_str().unwrap_or_default();
    if !valid_insured(insured) {
        return Ok(bad_request("insuredId must be 5 digits"));
    }
    if !valid_date(date) {
        return Ok(bad_request(
            "dateSchedule must be a date and time like 2026-12-01T09:30",
        ));
    }
    if !COUNTRIES.contains(&country) {
        return Ok(bad_request("country must be PE or CL"));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let appointment = json!({
        "appointmentId": id, "insuredId": insured, "dateSchedule": date,
        "country": country, "status": "pending",
    });
    // Keyed by insured and date, so a prefix listing comes back in date order.
    let key = format!("appt:{insured}:{date}:{id}");
    kv::set(BUCKET, &key, appointment.to_string().as_bytes(), None)?;
    kv::set(BUCKET, &format!("id:{id}"), key.as_bytes(), None)?;
    notify::publish(
        TOPIC,
        Some("AppointmentCreated"),
        &appointment.to_string(),
        &[("country".into(), country.into())],
    )?;
    Ok(reply(201, appointment))
}

fn list(insured: &str) -> Result<Response, Failure> {
    if !valid_insured(insured) {
        return Ok(bad_request("insuredId must be 5 digits"));
    }
    let prefix = format!("appt:{insured}:");
    let mut items = Vec::new();
    let mut cursor = None;
    loop {
        let page = kv::list_keys(BUCKET, &prefix, cursor.as_deref(), 500)?;
        for key in &page.keys {
            if let Some(entry) = kv::get(BUCKET, key)? {
                items.push(serde_json::from_slice::<Value>(&entry.value).unwrap_or(Value::Null));
            }
        }
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    Ok(reply(200, json!({ "insuredId": insured, "items": items })))
}

// ---- queue consumers ------------------------------------------------------------------

/// Runs `step` on each message; the ones that fail come back (a partial batch failure).
fn each(
    messages: Vec<QueueMessage>,
    step: fn(&QueueMessage) -> Result<(), Failure>,
) -> Result<Response, Failure> {
    let mut failed = Vec::new();
    for m in messages {
        if let Err(f) = step(&m) {
            orquesta_sdk::log::log(
                orquesta_sdk::log::Level::Warn,
                "appointment message failed",
                &[
                    ("id".into(), m.id.clone()),
                    ("error".into(), format!("{}: {}", f.error, f.cause)),
                ],
            );
            failed.push(m.id);
        }
    }
    Ok(Response::Batch(failed))
}

/// The appointment a country queue's message carries. The topic delivers SNS's
/// notification document, as the cloud does to SQS by default (the seed's subscriptions
/// set no `RawMessageDelivery`): the appointment is its `Message`. A subscription with
/// `raw_message_delivery = true` delivers the appointment itself, read as it is.
fn appointment(body: &str) -> Result<Value, Failure> {
    let invalid = |e: serde_json::Error| Failure::new("InvalidMessage", e.to_string());
    let doc: Value = serde_json::from_str(body).map_err(invalid)?;
    match (&doc["Type"], &doc["Message"]) {
        (Value::String(kind), Value::String(message)) if kind == "Notification" => {
            serde_json::from_str(message).map_err(invalid)
        }
        _ => Ok(doc),
    }
}

fn process(m: &QueueMessage) -> Result<(), Failure> {
    let country = config::get("country").unwrap_or_default();
    let database = config::get("database").unwrap_or_else(|| country.to_lowercase());
    let dialect = config::get("dialect").unwrap_or_else(|| "sqlite".into());
    let doc = appointment(&m.body)?;
    if doc["country"] != country.as_str() {
        return Err(Failure::new(
            "WrongCountry",
            format!(
                "a {} appointment reached the {country} processor",
                doc["country"]
            ),
        ));
    }
    let table = format!("appointment_{}", country.to_lowercase());
    let create = format!(
        "CREATE TABLE IF NOT EXISTS {table} (appointment_id VARCHAR(64) PRIMARY KEY, \
         insured_id VARCHAR(16) NOT NULL, date_schedule VARCHAR(32) NOT NULL, \
         country VARCHAR(2) NOT NULL, status VARCHAR(16) NOT NULL)"
    );
    // Two batches creating the table at once on PostgreSQL: the later one fails on the
    // catalog's unique index once the first commits, and then sees the table. Once more
    // is enough; without it the message waits out its visibility timeout.
    if sql::execute(&database, &create, &[]).is_err() {
        sql::execute(&database, &create, &[])?;
    }
    let (insert, tail) = match dialect.as_str() {
        "mysql" | "mariadb" => ("INSERT IGNORE INTO", "(?, ?, ?, ?, ?)".to_string()),
        "postgres" => (
            "INSERT INTO",
            "($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING".into(),
        ),
        _ => (
            "INSERT INTO",
            "(?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING".into(),
        ),
    };
    let text = |k: &str| sql::Value::Text(doc[k].as_str().unwrap_or_default().to_string());
    sql::execute(
        &database,
        &format!(
            "{insert} {table} (appointment_id, insured_id, date_schedule, country, status) VALUES {tail}"
        ),
        &[
            text("appointmentId"),
            text("insuredId"),
            text("dateSchedule"),
            text("country"),
            sql::Value::Text("scheduled".into()),
        ],
    )?;
    messaging::put_event(
        BUS,
        "appointment.service",
        "AppointmentConfirmation",
        &json!({ "appointmentId": doc["appointmentId"], "insuredId": doc["insuredId"],
                 "country": country })
        .to_string(),
    )?;
    Ok(())
}

fn confirm(m: &QueueMessage) -> Result<(), Failure> {
    let envelope: Value =
        serde_json::from_str(&m.body).map_err(|e| Failure::new("InvalidMessage", e.to_string()))?;
    let id = envelope["detail"]["appointmentId"]
        .as_str()
        .unwrap_or_default();
    let Some(pointer) = kv::get(BUCKET, &format!("id:{id}"))? else {
        return Err(Failure::new(
            "UnknownAppointment",
            format!("no appointment {id}"),
        ));
    };
    let key = String::from_utf8_lossy(&pointer.value).into_owned();
    // Compare-and-swap: a concurrent writer makes this retry, not lose an update.
    loop {
        let Some(entry) = kv::get(BUCKET, &key)? else {
            return Err(Failure::new(
                "UnknownAppointment",
                format!("no appointment {id}"),
            ));
        };
        let mut doc: Value = serde_json::from_slice(&entry.value)
            .map_err(|e| Failure::new("CorruptRecord", e.to_string()))?;
        doc["status"] = json!("completed");
        let value = doc.to_string();
        if kv::compare_and_swap(BUCKET, &key, entry.version, value.as_bytes(), None)?.is_some() {
            return Ok(());
        }
    }
}

orquesta_sdk::export!(Appointments);
