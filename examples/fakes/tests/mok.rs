//! The fake MOK over HTTP: client credentials, token expiry and revocation, the three
//! work-order endpoints and their validation, and scripted answers.

use std::time::{Duration, Instant};

use orquesta_fakes::mok::{self, FIRST_OT_ID};
use orquesta_fakes::script::Forced;
use reqwest::{Client, RequestBuilder};
use serde_json::{Value, json};

struct Fake {
    base: String,
    handle: mok::Handle,
    http: Client,
}

async fn fake(token_seconds: u64) -> anyhow::Result<Fake> {
    let config = mok::Config {
        token_seconds,
        ..mok::Config::demo()
    };
    let (router, handle) = mok::router(config);
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
    fn token_request(&self, form: &[(&str, &str)]) -> RequestBuilder {
        self.http
            .post(format!("{}/oauth/token", self.base))
            .form(form)
    }

    async fn token(&self) -> anyhow::Result<String> {
        let (code, body) = send(self.token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", mok::DEMO_CLIENT_ID),
            ("client_secret", mok::DEMO_CLIENT_SECRET),
        ]))
        .await?;
        assert_eq!(code, 200, "{body}");
        Ok(body["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    async fn api(&self, path: &str, token: &str, body: Value) -> anyhow::Result<(u16, Value)> {
        let req = self
            .http
            .post(format!("{}/v1/{path}", self.base))
            .bearer_auth(token)
            .json(&body);
        send(req).await
    }
}

type Form<'a> = &'a [(&'a str, &'a str)];

fn new_ot(case: u64) -> Value {
    json!({
        "IdCase": case, "IdProvider": 31, "IdService": 7,
        "DateScheduled": "2026-03-01T10:00:00-05:00", "Comments": "Traslado programado",
    })
}

#[tokio::test]
async fn tokens_come_from_the_form_or_basic_auth() -> anyhow::Result<()> {
    let f = fake(3600).await?;
    let (code, body) = send(f.token_request(&[
        ("grant_type", "client_credentials"),
        ("client_id", "orquesta-demo"),
        ("client_secret", "demo-mok-secret"),
    ]))
    .await?;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let first = body["access_token"].as_str().unwrap().to_string();
    assert!(first.len() >= 32, "{first}");

    let basic = f
        .http
        .post(format!("{}/oauth/token", f.base))
        .basic_auth("orquesta-demo", Some("demo-mok-secret"))
        .form(&[("grant_type", "client_credentials")]);
    let (code, body) = send(basic).await?;
    assert_eq!(code, 200, "{body}");
    let second = body["access_token"].as_str().unwrap();
    assert_ne!(first, second);
    assert_eq!(f.handle.tokens_issued(), 2);

    // Both tokens open the API.
    for token in [first.as_str(), second] {
        let (code, _) = f.api("createOT", token, new_ot(1)).await?;
        assert_eq!(code, 200);
    }
    Ok(())
}

#[tokio::test]
async fn bad_client_credentials_and_grants_are_refused() -> anyhow::Result<()> {
    let f = fake(3600).await?;
    let cases: [(Form, u16, &str); 5] = [
        (
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "orquesta-demo"),
                ("client_secret", "wrong"),
            ],
            401,
            "invalid_client",
        ),
        (
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "someone-else"),
                ("client_secret", "demo-mok-secret"),
            ],
            401,
            "invalid_client",
        ),
        (
            &[("grant_type", "client_credentials")],
            401,
            "invalid_client",
        ),
        (
            &[
                ("grant_type", "password"),
                ("client_id", "orquesta-demo"),
                ("client_secret", "demo-mok-secret"),
            ],
            400,
            "unsupported_grant_type",
        ),
        (
            &[
                ("client_id", "orquesta-demo"),
                ("client_secret", "demo-mok-secret"),
            ],
            400,
            "invalid_request",
        ),
    ];
    for (form, want_code, want_error) in cases {
        let (code, body) = send(f.token_request(form)).await?;
        assert_eq!(
            (code, body["error"].as_str()),
            (want_code, Some(want_error)),
            "{form:?}"
        );
        assert!(body["error_description"].is_string(), "{body}");
    }

    let wrong_basic = f
        .http
        .post(format!("{}/oauth/token", f.base))
        .basic_auth("orquesta-demo", Some("nope"))
        .form(&[("grant_type", "client_credentials")]);
    let answer = wrong_basic.send().await?;
    assert_eq!(answer.status().as_u16(), 401);
    let challenge = answer.headers().get("www-authenticate").cloned();
    assert!(challenge.is_some_and(|c| c.as_bytes().starts_with(b"Basic")));
    let body: Value = answer.json().await?;
    assert_eq!(body["error"], "invalid_client");

    let garbage = f
        .http
        .post(format!("{}/oauth/token", f.base))
        .header("authorization", "Basic !!!")
        .form(&[("grant_type", "client_credentials")]);
    let (code, body) = send(garbage).await?;
    assert_eq!(
        (code, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    assert_eq!(f.handle.tokens_issued(), 0);
    Ok(())
}

#[tokio::test]
async fn the_api_needs_a_live_token() -> anyhow::Result<()> {
    let f = fake(1).await?;
    let no_token = f
        .http
        .post(format!("{}/v1/createOT", f.base))
        .json(&new_ot(1));
    let (code, body) = send(no_token).await?;
    assert_eq!((code, body["error"].as_str()), (401, Some("invalid_token")));

    let (code, body) = f.api("createOT", "made-up", new_ot(1)).await?;
    assert_eq!((code, body["error"].as_str()), (401, Some("invalid_token")));
    assert_eq!(body["error_description"], "The access token is not valid");

    let token = f.token().await?;
    let (code, body) = f.api("createOT", &token, new_ot(1)).await?;
    assert_eq!(code, 200, "{body}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (code, body) = f.api("createOT", &token, new_ot(1)).await?;
    assert_eq!(code, 401);
    assert_eq!(body["error"], "invalid_token");
    assert_eq!(body["error_description"], "The access token expired");
    // Only the first call made an OT.
    assert!(f.handle.ot(FIRST_OT_ID).is_some());
    assert!(f.handle.ot(FIRST_OT_ID + 1).is_none());
    Ok(())
}

#[tokio::test]
async fn revoked_tokens_stop_working() -> anyhow::Result<()> {
    let f = fake(3600).await?;
    let token = f.token().await?;
    let (code, _) = f.api("createOT", &token, new_ot(1)).await?;
    assert_eq!(code, 200);
    f.handle.revoke_tokens();
    let (code, body) = f.api("createOT", &token, new_ot(1)).await?;
    assert_eq!((code, body["error"].as_str()), (401, Some("invalid_token")));
    let fresh = f.token().await?;
    let (code, _) = f.api("createOT", &fresh, new_ot(1)).await?;
    assert_eq!(code, 200);
    assert_eq!(f.handle.tokens_issued(), 2);
    Ok(())
}

#[tokio::test]
async fn create_ot_numbers_ots_and_validates_fields() -> anyhow::Result<()> {
    let f = fake(3600).await?;
    let token = f.token().await?;
    let (code, body) = f.api("createOT", &token, new_ot(4411)).await?;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body,
        json!({ "success": true, "message": "OT creada", "IdOT": 15252900, "IdCase": 4411 })
    );
    let (_, body) = f.api("createOT", &token, new_ot(4412)).await?;
    assert_eq!(body["IdOT"], 15252901);
    assert_eq!(
        f.handle.ot(15252900),
        Some(json!({
            "IdOT": 15252900, "IdCase": 4411, "IdProvider": 31, "IdService": 7,
            "DateScheduled": "2026-03-01T10:00:00-05:00", "status": "CREATED",
            "comments": ["Traslado programado"],
        }))
    );

    let mut missing = new_ot(1);
    missing.as_object_mut().unwrap().remove("IdCase");
    let mut wrong_type = new_ot(1);
    wrong_type["IdProvider"] = json!("31");
    let mut bad_date = new_ot(1);
    bad_date["DateScheduled"] = json!("01/03/2026");
    let mut no_comments = new_ot(1);
    no_comments["Comments"] = Value::Null;
    for (body, message) in [
        (missing, "IdCase is required"),
        (wrong_type, "IdProvider must be a positive integer"),
        (no_comments, "Comments is required"),
    ] {
        let (code, answer) = f.api("createOT", &token, body).await?;
        assert_eq!(code, 400);
        assert_eq!(answer, json!({ "success": false, "message": message }));
    }
    let (code, answer) = f.api("createOT", &token, bad_date).await?;
    assert_eq!((code, answer["success"].as_bool()), (400, Some(false)));
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .starts_with("DateScheduled must be")
    );
    let (code, answer) = f.api("createOT", &token, json!([1, 2])).await?;
    assert_eq!((code, answer["success"].as_bool()), (400, Some(false)));
    // No refused call made an OT.
    assert!(f.handle.ot(15252902).is_none());
    assert_eq!(f.handle.ots().len(), 2);
    Ok(())
}

#[tokio::test]
async fn process_service_notes_starts_and_resolves() -> anyhow::Result<()> {
    let f = fake(3600).await?;
    let token = f.token().await?;
    f.handle.add_ot(15252950, 88);
    let note = json!({ "addComment": 0, "IdOT": 15252950, "comment": "Llamada al usuario",
                       "DateScheduled": "2026-03-02T08:00:00Z" });
    let (code, body) = f.api("processService", &token, note).await?;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        (body["IdOT"].as_u64(), body["status"].as_str()),
        (Some(15252950), Some("CREATED"))
    );
    let start =
        json!({ "addComment": 1, "IdOT": 15252950, "comment": "En camino", "startService": 0 });
    let (_, body) = f.api("processService", &token, start).await?;
    assert_eq!(
        (body["success"].as_bool(), body["status"].as_str()),
        (Some(true), Some("STARTED"))
    );
    assert_eq!(f.handle.ot(15252950).unwrap()["status"], "STARTED");
    let resolve =
        json!({ "addComment": 1, "IdOT": 15252950, "comment": "Atendido", "startService": 1 });
    let (_, body) = f.api("processService", &token, resolve).await?;
    assert_eq!(body["status"], "RESOLVED");
    let ot = f.handle.ot(15252950).unwrap();
    assert_eq!(ot["status"], "RESOLVED");
    assert_eq!(ot["IdCase"], 88);
    assert_eq!(
        ot["comments"],
        json!(["Llamada al usuario", "En camino", "Atendido"])
    );

    let unknown = json!({ "addComment": 1, "IdOT": 1, "comment": "x", "startService": 1 });
    let (code, body) = f.api("processService", &token, unknown).await?;
    assert_eq!(code, 404);
    assert_eq!(
        body,
        json!({ "success": false, "message": "OT 1 not found" })
    );

    for (body, message) in [
        (
            json!({ "addComment": 1, "IdOT": 15252950, "comment": "x" }),
            "startService is required",
        ),
        (
            json!({ "addComment": 0, "IdOT": 15252950, "comment": "x" }),
            "DateScheduled is required",
        ),
        (
            json!({ "addComment": 2, "IdOT": 15252950, "comment": "x", "startService": 1 }),
            "addComment must be 0 or 1",
        ),
        (
            json!({ "addComment": 1, "IdOT": 15252950, "startService": 1 }),
            "comment is required",
        ),
        (
            json!({ "addComment": 1, "comment": "x", "startService": 1 }),
            "IdOT is required",
        ),
    ] {
        let (code, answer) = f.api("processService", &token, body).await?;
        assert_eq!((code, answer["message"].as_str()), (400, Some(message)));
    }
    assert_eq!(
        f.handle.ot(15252950).unwrap()["comments"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    Ok(())
}

#[tokio::test]
async fn update_script_keeps_the_last_script_per_case() -> anyhow::Result<()> {
    let f = fake(3600).await?;
    let token = f.token().await?;
    let script = json!({
        "selfAssistanceType": "TELEMEDICINA", "selfAssistance": "Orientacion telefonica",
        "initialStimate": 120000, "finalStimate": "95000.50", "trm": 4012.3,
        "finalCIE10Diagnosis": "J06.9",
    });
    let body = json!({ "caseId": 4411, "comment": "Cierre", "script": script });
    let (code, answer) = f.api("updateScript", &token, body).await?;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(
        answer,
        json!({ "success": true, "message": "Script actualizado", "caseId": 4411 })
    );
    assert_eq!(f.handle.script_of(4411), Some(script.clone()));

    let mut newer = script.clone();
    newer["finalCIE10Diagnosis"] = json!("R50.9");
    let body = json!({ "caseId": 4411, "comment": "Corrige", "script": newer });
    f.api("updateScript", &token, body).await?;
    assert_eq!(
        f.handle.script_of(4411).unwrap()["finalCIE10Diagnosis"],
        "R50.9"
    );

    let mut no_trm = script.clone();
    no_trm.as_object_mut().unwrap().remove("trm");
    let mut bool_amount = script.clone();
    bool_amount["finalStimate"] = json!(true);
    let mut numeric_diagnosis = script.clone();
    numeric_diagnosis["finalCIE10Diagnosis"] = json!(69);
    for (body, message) in [
        (
            json!({ "caseId": 5, "comment": "x", "script": no_trm }),
            "script.trm is required",
        ),
        (
            json!({ "caseId": 5, "comment": "x", "script": bool_amount }),
            "script.finalStimate must be a string or a number",
        ),
        (
            json!({ "caseId": 5, "comment": "x", "script": numeric_diagnosis }),
            "script.finalCIE10Diagnosis must be a string",
        ),
        (json!({ "caseId": 5, "comment": "x" }), "script is required"),
        (
            json!({ "caseId": 5, "script": script }),
            "comment is required",
        ),
        (
            json!({ "comment": "x", "script": script }),
            "caseId is required",
        ),
    ] {
        let (code, answer) = f.api("updateScript", &token, body).await?;
        assert_eq!(code, 400);
        assert_eq!(answer, json!({ "success": false, "message": message }));
    }
    assert_eq!(f.handle.script_of(5), None);
    Ok(())
}

#[tokio::test]
async fn scripted_answers_override_any_path() -> anyhow::Result<()> {
    let f = fake(3600).await?;
    let unavailable = json!({ "success": false, "message": "Servicio no disponible" });
    f.handle
        .script()
        .push(Forced::once("/oauth/token", 503, unavailable.clone()));
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", mok::DEMO_CLIENT_ID),
        ("client_secret", mok::DEMO_CLIENT_SECRET),
    ];
    let (code, body) = send(f.token_request(&form)).await?;
    assert_eq!((code, body), (503, unavailable.clone()));
    assert_eq!(
        f.handle.tokens_issued(),
        0,
        "a forced answer skips the handler"
    );
    let token = f.token().await?;

    // A 401 on a live token, as when MOK rotates keys early.
    let expired =
        json!({ "error": "invalid_token", "error_description": "The access token expired" });
    f.handle
        .script()
        .push(Forced::once("/v1/createOT", 401, expired.clone()));
    let (code, body) = f.api("createOT", &token, new_ot(9)).await?;
    assert_eq!((code, body), (401, expired));
    assert!(f.handle.ots().is_empty());

    f.handle.script().push(Forced::slow("/v1/createOT", 300, 1));
    let started = Instant::now();
    let (code, body) = f.api("createOT", &token, new_ot(9)).await?;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!((code, body["IdOT"].as_u64()), (200, Some(FIRST_OT_ID)));

    // The same over HTTP, as the demo drives it.
    let script = f
        .http
        .post(format!("{}/_fake/script", f.base))
        .json(&json!({ "path": "/v1/updateScript", "status": 500, "body": { "success": false } }));
    assert_eq!(send(script).await?.0, 200);
    let (code, body) = f.api("updateScript", &token, json!({})).await?;
    assert_eq!((code, body), (500, json!({ "success": false })));
    let (_, log) = send(f.http.get(format!("{}/_fake/requests", f.base))).await?;
    let statuses: Vec<(&str, u64)> = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["path"].as_str().unwrap(), r["status"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("/oauth/token", 503),
            ("/oauth/token", 200),
            ("/v1/createOT", 401),
            ("/v1/createOT", 200),
            ("/v1/updateScript", 500),
        ]
    );
    assert_eq!(
        f.handle.script().requests_to("/v1/createOT")[1].body["IdCase"],
        9
    );
    Ok(())
}
