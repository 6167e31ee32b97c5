//! `hostile`: misbehaves on request, so the tests can show the host contains it. A task
//! event's input `{"attack": NAME, ...}` picks the misbehaviour:
//! `loop`, `memory`, `recursion`, `panic`, `output` (a huge result), `sleep` (a host call
//! that never returns in time), `kv-write` / `kv-read` (probe another tenant's keys),
//! `blob-put` (write `bytes` bytes to `bucket`/`key` and read them back), `publish` and
//! `put-event` (to a topic or bus), `sql` (run `steps` of `{sql, params, query}` against
//! `database` and return what each gave),
//! `start-execution` (of `workflow` with `input`, optionally `name`),
//! `queue-send` (to `queue` with options, answering the id or the refusal),
//! `nap` (sleep `ms`, then answer: a slow but honest request), `whoami` (echo the verified
//! caller) and `log-secret` (try to log the secret `token`); `exit`, `stack-smash` and
//! `burn` are in `runaway`. Over HTTP, the request body
//! is the input. `batch`, `failure`, `log-line`, `log-flood`, `log-forge` and
//! `http-response` try to make the host convert or buffer too much (see `outputs`).
//! A task input with `"count": true` is counted in kv
//! (`runs:EXECUTION:STATE`), so workflow tests see how often each state ran.
//! `kv-fill`, `kv-drop`, `blob-fill`, `blob-drop`, `queue-fill` fill and free storage
//! (`storage`); `fetch` GETs `url` (`fetch`).
//! `marked-nap` (`operations`): counts itself in kv (`TAG:started`), then naps `ms`.
//! `keep-token`, `task-success`, `task-failure`, `task-heartbeat` answer workflow
//! callback tasks (`task_answers`).
//!
//! As a queue consumer, each message body is `{"n": N, "attack": ...}`: `panic` traps the
//! batch, `fail` reports that message failed, `nap` sleeps `ms` first (with `"tag": T`,
//! counting naps at once in `T:overlap:K`, for concurrency checks); every message it
//! completes is counted in kv (`seen:N`) and appended to `order:GROUP` for FIFO checks.
//!
//! `remember` and `leak` (`warm`): globals kept between invocations of a warm instance.
//!
//! `loops`: a topic, queue or bus delivery that feeds itself back (recursive loops).

mod fetch;
mod storage;

mod queue_send;
mod task_answers;

mod operations;

use orquesta_sdk::{Event, Failure, Handler, Response, blob, config, kv, log, parse_json, sql};
use serde_json::{Value, json};

mod loops;
mod outputs;
mod runaway;
mod warm;

struct Hostile;

impl Handler for Hostile {
    fn handle(event: Event) -> Result<Response, Failure> {
        if let Some(answer) = loops::handle(&event) {
            return answer;
        }
        let mut identity = None;
        let input = match event {
            Event::Task(task) => {
                let input = parse_json(&task.input)?;
                // Workflow tests count each run of a state of an execution.
                if input["count"] == json!(true) {
                    let key = format!("runs:{}:{}", task.execution_id, task.state);
                    kv::increment("default", &key, 1)?;
                }
                input
            }
            Event::Http(req) => {
                identity = req.identity;
                parse_json(&String::from_utf8_lossy(&req.body))?
            }
            Event::Queue(messages) => return consume(messages),
            // Deliveries from topics, buses and schedules are counted in kv:
            // `topic:TOPIC:SUBJECT`, `bus:BUS:DETAIL_TYPE`, `tick:SCHEDULE:DUE`. A subject
            // or detail type starting `fail` fails each delivery once counted (retry
            // policies and dead-letter queues). A bus event's detail is kept in
            // `bus-detail:BUS:DETAIL_TYPE:SOURCE`.
            Event::Topic(n) => {
                let subject = n.subject.unwrap_or_default();
                kv::increment("default", &format!("topic:{}:{subject}", n.topic), 1)?;
                return failing(&subject);
            }
            Event::Schedule(tick) => {
                let name = &tick.schedule;
                kv::increment("default", &format!("tick:{name}:{}", tick.scheduled_at), 1)?;
                kv::increment("default", &format!("ticks:{name}"), 1)?;
                return Ok(Response::None);
            }
            Event::Bus(e) => {
                kv::increment("default", &format!("bus:{}:{}", e.bus, e.detail_type), 1)?;
                // What the event's detail was, for rule targets' input transformation.
                let seen = format!("bus-detail:{}:{}:{}", e.bus, e.detail_type, e.source);
                kv::set("default", &seen, e.detail.as_bytes(), None)?;
                return failing(&e.detail_type);
            }
        };
        match input["attack"].as_str().unwrap_or_default() {
            "loop" => spin(),
            "memory" => hoard(),
            "recursion" => Ok(Response::json(&json!(recurse(std::hint::black_box(
                u64::MAX
            ))))),
            "panic" => panic!("hostile plugin panicked on purpose"),
            "output" => {
                let mb = input["megabytes"].as_u64().unwrap_or(8) as usize;
                Ok(Response::Json(format!("\"{}\"", "x".repeat(mb << 20))))
            }
            "chatter" => {
                // Output the host captures per invocation, up to its cap.
                let kb = input["kilobytes"].as_u64().unwrap_or(40) as usize;
                eprintln!("{}", "x".repeat(kb << 10));
                Ok(Response::None)
            }
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(3_600));
                Ok(Response::None)
            }
            "kv-write" => {
                let key = input["key"].as_str().unwrap_or("secret");
                let value = input["value"].as_str().unwrap_or("");
                kv::set("default", key, value.as_bytes(), None)?;
                Ok(Response::None)
            }
            "kv-read" => probe(input["key"].as_str().unwrap_or("secret")),
            "sql" => run_sql(&input),
            "publish" => {
                let attributes: Vec<(String, String)> = input["attributes"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect();
                let id = orquesta_sdk::notify::publish(
                    input["topic"].as_str().unwrap_or_default(),
                    input["subject"].as_str(),
                    &input["body"].to_string(),
                    &attributes,
                )?;
                Ok(Response::json(&json!({ "id": id })))
            }
            "put-event" => {
                let id = orquesta_sdk::messaging::put_event(
                    input["bus"].as_str().unwrap_or_default(),
                    input["source"].as_str().unwrap_or_default(),
                    input["detail_type"].as_str().unwrap_or_default(),
                    &input["detail"].to_string(),
                )?;
                Ok(Response::json(&json!({ "id": id })))
            }
            "start-execution" => {
                let id = orquesta_sdk::messaging::start_execution(
                    input["workflow"].as_str().unwrap_or_default(),
                    &input["input"].to_string(),
                    input["name"].as_str(),
                )?;
                Ok(Response::json(&json!({ "execution_id": id })))
            }
            "queue-send" => queue_send::send(&input),
            "blob-put" => {
                let bucket = input["bucket"].as_str().unwrap_or("files");
                let key = input["key"].as_str().unwrap_or("object");
                let bytes = input["bytes"].as_u64().unwrap_or(4) as usize;
                blob::put(bucket, key, &vec![b'x'; bytes])?;
                let back = blob::get(bucket, key)?.map(|b| b.len());
                Ok(Response::json(&json!({ "read_back": back })))
            }
            "nap" => {
                let ms = input["ms"].as_u64().unwrap_or(100);
                std::thread::sleep(std::time::Duration::from_millis(ms));
                Ok(Response::json(&json!({ "slept_ms": ms })))
            }
            "whoami" => Ok(Response::json(&match identity {
                Some(who) => json!({
                    "subject": who.subject, "email": who.email, "name": who.name,
                    "groups": who.groups, "scopes": who.scopes,
                }),
                None => Value::Null,
            })),
            "log-secret" => {
                let secret = config::secret("token").unwrap_or_default();
                log::log(
                    log::Level::Warn,
                    &format!("the token is {secret}"),
                    &[("token".into(), secret.clone())],
                );
                println!("stdout says {secret}");
                Ok(Response::None)
            }
            name if outputs::handles(name) => outputs::attack(name, &input),
            name if warm::handles(name) => warm::attack(name, &input),
            name if task_answers::handles(name) => task_answers::attack(name, &input),
            name @ ("kv-fill" | "kv-drop" | "blob-fill" | "blob-drop" | "queue-fill") => {
                storage::attack(name, &input)
            }
            "fetch" => Ok(fetch::attack(&input)),
            "marked-nap" => operations::marked_nap(&input),
            name @ ("exit" | "stack-smash" | "burn") => runaway::attack(name, &input),
            other => Err(Failure::new(
                "UnknownAttack",
                format!("no attack named {other:?}"),
            )),
        }
    }
}

/// Fails a delivery tagged `fail...`, answers others.
fn failing(tag: &str) -> Result<Response, Failure> {
    if tag.to_ascii_lowercase().starts_with("fail") {
        return Err(Failure::new(
            "DeliveryFailed",
            format!("failing `{tag}` on purpose"),
        ));
    }
    Ok(Response::None)
}

fn spin() -> Result<Response, Failure> {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

fn hoard() -> Result<Response, Failure> {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        // Touch every page so the memory is really committed.
        hoard.push(vec![1u8; 1 << 20]);
        std::hint::black_box(&hoard);
    }
}

#[inline(never)]
fn recurse(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    // Two operations on the result keep the compiler from turning this into a loop.
    recurse(n - 1).wrapping_mul(31).wrapping_add(n)
}

/// Everything this plugin can see under its own names, and under names that try to step
/// into another scope.
fn probe(key: &str) -> Result<Response, Failure> {
    let mut found = serde_json::Map::new();
    for (bucket, k) in [
        ("default", key.to_string()),
        ("default", format!("../{key}")),
        ("../default", key.to_string()),
        ("%", key.to_string()),
    ] {
        let value = match kv::get(bucket, &k) {
            Ok(Some(entry)) => Value::String(String::from_utf8_lossy(&entry.value).into()),
            Ok(None) => Value::Null,
            Err(e) => Value::String(format!("error: {e}")),
        };
        found.insert(format!("{bucket}/{k}"), value);
    }
    let listed = kv::list_keys("default", "", None, 1000)?.keys;
    Ok(Response::json(&json!({ "found": found, "listed": listed })))
}

/// Runs each step's statement; a query's rows come back as JSON arrays.
fn run_sql(input: &Value) -> Result<Response, Failure> {
    let database = input["database"].as_str().unwrap_or("app");
    let mut results = Vec::new();
    for step in input["steps"].as_array().into_iter().flatten() {
        let statement = step["sql"].as_str().unwrap_or_default();
        let params: Vec<sql::Value> = step["params"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| match p {
                Value::Null => sql::Value::Null,
                Value::Bool(b) => sql::Value::Boolean(*b),
                Value::Number(n) if n.is_i64() => sql::Value::Integer(n.as_i64().unwrap_or(0)),
                Value::Number(n) => sql::Value::Real(n.as_f64().unwrap_or(0.0)),
                Value::String(s) => sql::Value::Text(s.clone()),
                other => sql::Value::Blob(
                    other["blob"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|b| b.as_u64().unwrap_or(0) as u8)
                        .collect(),
                ),
            })
            .collect();
        if step["query"].as_bool().unwrap_or(false) {
            let rows = sql::query(database, statement, &params)?;
            let columns = rows.columns;
            let rows: Vec<Value> = rows
                .rows
                .into_iter()
                .map(|row| {
                    row.into_iter()
                        .map(|v| match v {
                            sql::Value::Null => Value::Null,
                            sql::Value::Boolean(b) => json!(b),
                            sql::Value::Integer(i) => json!(i),
                            sql::Value::Real(f) => json!(f),
                            sql::Value::Text(t) => json!(t),
                            sql::Value::Blob(b) => json!({ "blob": b }),
                        })
                        .collect()
                })
                .collect();
            results.push(json!({ "columns": columns, "rows": rows }));
        } else {
            results.push(json!(sql::execute(database, statement, &params)?));
        }
    }
    Ok(Response::json(&json!(results)))
}

/// Records each message (see the module docs); returns the ids that failed.
fn consume(messages: Vec<orquesta_sdk::QueueMessage>) -> Result<Response, Failure> {
    let mut failed = Vec::new();
    for m in messages {
        let body: Value = serde_json::from_str(&m.body).unwrap_or(Value::Null);
        let n = body["n"]
            .as_i64()
            .map_or_else(|| m.id.clone(), |n| n.to_string());
        match body["attack"].as_str().unwrap_or_default() {
            "panic" => panic!("consumer trapped on message {n}"),
            "fail" => {
                failed.push(m.id);
                continue;
            }
            "nap" => {
                // With a `tag`, naps in flight at once are counted: `TAG:overlap:K` is
                // set once K of them ran at the same time.
                let tag = body["tag"].as_str();
                if let Some(tag) = tag {
                    let now = kv::increment("default", &format!("{tag}:napping"), 1)?;
                    kv::increment("default", &format!("{tag}:overlap:{now}"), 1)?;
                }
                std::thread::sleep(std::time::Duration::from_millis(
                    body["ms"].as_u64().unwrap_or(100),
                ));
                if let Some(tag) = tag {
                    kv::increment("default", &format!("{tag}:napping"), -1)?;
                }
            }
            _ => {}
        }
        kv::increment("default", &format!("seen:{n}"), 1)?;
        if let Some(group) = &m.group_id {
            let key = format!("order:{group}");
            loop {
                let current = kv::get("default", &key)?;
                let (mut list, version) = match current {
                    Some(e) => (String::from_utf8_lossy(&e.value).into_owned(), e.version),
                    None => (String::new(), 0),
                };
                if !list.is_empty() {
                    list.push(',');
                }
                list.push_str(&n);
                if kv::compare_and_swap("default", &key, version, list.as_bytes(), None)?.is_some()
                {
                    break;
                }
            }
        }
    }
    Ok(Response::Batch(failed))
}

orquesta_sdk::export!(Hostile);
