//! The Lambda handler in-process: Function URL events built as JSON, through
//! `handle` (the same function the Lambda runtime calls), to response JSON.
//! The relay target and the Parameters and Secrets extension are real HTTP
//! servers on 127.0.0.1.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use hookseal::{Message, Scheme, Secret, Signer, Verifier};
use hookseal_lambda::{handle, App, Loader};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{json, Value};

mod common;
use common::{call, event, receiver, receiver_with_delay};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const RELAY_SECRET: &str = "pwaKGYs638fjjpwEuJFFczsYfbD3O7Kg";
const SCHEMES: [&str; 10] = hookseal::PRESETS;

fn routes_json() -> String {
    let routes: Vec<Value> = SCHEMES
        .iter()
        .map(|s| json!({"path": format!("/{s}"), "scheme": s, "secret_env": "S"}))
        .collect();
    Value::Array(routes).to_string()
}

async fn app_with(vars: &[(&str, &str)]) -> (Arc<App>, Router) {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let env = move |k: &str| map.get(k).cloned();
    let settings = Loader::new(&env).load().await.unwrap();
    let app = App::new(settings).unwrap();
    let router = app.router();
    (app, router)
}

/// Signs `body` for `scheme`: (headers, query string).
fn sign(scheme: &str, body: &[u8], id: &str) -> (Vec<(String, String)>, String) {
    let signer = Signer::new(
        Scheme::preset(scheme).unwrap(),
        &[Secret::new(SECRET).unwrap()],
    )
    .unwrap();
    if scheme == "signed-url" {
        let signed = signer
            .sign_url(
                "https://abc.lambda-url.eu-west-1.on.aws/signed-url",
                Some("pay_1"),
            )
            .unwrap();
        let query = signed.url.split_once('?').unwrap().1.to_owned();
        return (vec![], query);
    }
    let signed = signer
        .sign(&Message {
            body,
            id: Some(id),
            timestamp: None,
        })
        .unwrap();
    (signed.headers, String::new())
}

fn mismatch_status(scheme: &str) -> u16 {
    match scheme {
        "x-signature" | "standard" | "native" => 400,
        "flinks" | "signed-url" => 403,
        _ => 401,
    }
}

fn body_for(scheme: &str) -> Vec<u8> {
    if scheme == "signed-url" {
        br#"{"externalId":"pay_1","status":"COMPLETED"}"#.to_vec()
    } else {
        br#"{"id":"evt_body_1","type":"payment.created","amount":1250}"#.to_vec()
    }
}

#[tokio::test]
async fn every_scheme_accepts_a_signed_request_and_rejects_by_the_table() {
    let routes = routes_json();
    let (app, router) = app_with(&[
        ("HOOKSEAL_ROUTES", &routes),
        ("S", SECRET),
        ("HOOKSEAL_MODE", "verify-only"),
    ])
    .await;
    for scheme in SCHEMES {
        let path = format!("/{scheme}");
        let body = body_for(scheme);
        let (headers, query) = sign(scheme, &body, "msg_inbound_1");

        let (status, answer) =
            call(&app, &router, event("POST", &path, &query, &headers, &body)).await;
        assert_eq!(status, 200, "{scheme}: {answer}");
        assert_eq!(answer["ok"], true, "{scheme}");

        // Tampered body: the scheme's mismatch status. (signed-url signs
        // only the externalId the callback URL was made for.)
        let tampered: Vec<u8> = String::from_utf8(body.clone())
            .unwrap()
            .replace("1250", "9999")
            .replace("pay_1", "pay_2")
            .into_bytes();
        let (status, answer) = call(
            &app,
            &router,
            event("POST", &path, &query, &headers, &tampered),
        )
        .await;
        assert_eq!(status, mismatch_status(scheme), "{scheme}: {answer}");
        assert!(answer["error"].is_string(), "{scheme}: {answer}");

        // No signature at all: 400.
        let (status, answer) = call(&app, &router, event("POST", &path, "", &[], &body)).await;
        assert_eq!(status, 400, "{scheme}: {answer}");

        // Other methods: 405 with Allow.
        for method in ["GET", "PUT", "DELETE"] {
            let out = handle(
                &app,
                &router,
                LambdaEvent::new(
                    event(method, &path, &query, &headers, &body),
                    Context::default(),
                ),
            )
            .await
            .unwrap();
            assert_eq!(out["statusCode"], 405, "{scheme} {method}");
            assert_eq!(out["headers"]["allow"], "POST");
        }

        // Over the body limit: 413.
        let big = vec![b'x'; hookseal::DEFAULT_MAX_BODY + 1];
        let (status, _) = call(&app, &router, event("POST", &path, &query, &headers, &big)).await;
        assert_eq!(status, 413, "{scheme}");

        // Nothing in any answer echoes the secret.
        assert!(!answer.to_string().contains(SECRET));
    }
}

#[tokio::test]
async fn malformed_input_gets_4xx_never_5xx() {
    let routes = routes_json();
    let (app, router) = app_with(&[
        ("HOOKSEAL_ROUTES", &routes),
        ("S", SECRET),
        ("HOOKSEAL_MODE", "verify-only"),
    ])
    .await;
    let garbage_headers: Vec<(String, String)> = vec![
        ("webhook-id".into(), "msg_1".into()),
        ("webhook-timestamp".into(), "not-a-number".into()),
        ("webhook-signature".into(), "v1,@@@@".into()),
        ("x-signature".into(), "zz".into()),
        ("stripe-signature".into(), "t=,v1=".into()),
        ("x-hub-signature-256".into(), "sha256=".into()),
        ("x-slack-signature".into(), "v0=".repeat(3000)),
        (
            "x-slack-request-timestamp".into(),
            "99999999999999999999".into(),
        ),
    ];
    let bodies: [&[u8]; 4] = [
        b"",
        b"\xff\xfe\x00binary",
        b"{\"unterminated\": ",
        &[b'['; 5000],
    ];
    for scheme in SCHEMES {
        for body in bodies {
            let (status, answer) = call(
                &app,
                &router,
                event(
                    "POST",
                    &format!("/{scheme}"),
                    "sig=%%%&externalId=",
                    &garbage_headers,
                    body,
                ),
            )
            .await;
            assert!((400..500).contains(&status), "{scheme}: {status} {answer}");
            assert!(answer["error"].is_string());
        }
    }
    // An unknown path is 404, not a crash.
    let (status, _) = call(&app, &router, event("POST", "/nope", "", &[], b"{}")).await;
    assert_eq!(status, 404);
    // A path, query or host that is not a valid URI (lambda_http panics on
    // it; found by fuzzing): a 400, not a panic.
    let (status, answer) = call(
        &app,
        &router,
        event("POST", "/github", "head ers", &[], b"{}"),
    )
    .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("malformed_event"))
    );
    for (path, query) in [
        ("/git hub", ""),
        ("/github", "a\u{7f}b"),
        ("/github\u{0}", ""),
    ] {
        let (status, answer) = call(&app, &router, event("POST", path, query, &[], b"{}")).await;
        assert!((400..500).contains(&status), "{path:?}?{query:?}: {status}");
        assert!(answer["error"].is_string(), "{answer}");
    }
    // A payload that is not an HTTP event is an invocation error, not a panic.
    let err = handle(
        &app,
        &router,
        LambdaEvent::new(json!({"foo": 1}), Context::default()),
    )
    .await;
    assert!(err.is_err());
}

#[tokio::test]
async fn single_route_shorthand_and_described_scheme() {
    // INBOUND_SCHEME may be a full description: github's shape under another header.
    let mut described = serde_json::to_value(Scheme::preset("github").unwrap()).unwrap();
    described["name"] = "acme".into();
    described["signature"] = json!({"header": "x-acme-signature"});
    let described = described.to_string();
    let (app, router) = app_with(&[
        ("INBOUND_SCHEME", &described),
        // A rotation: numbered variables, each one whole secret.
        ("INBOUND_SECRET", "old_secret_1-rotating"),
        ("INBOUND_SECRET_2", "new_secret_2-rotating"),
        ("INBOUND_PATH", "/acme"),
        ("HOOKSEAL_MODE", "verify-only"),
    ])
    .await;
    let scheme: Scheme = serde_json::from_str(&described).unwrap();
    let body = br#"{"hello":"world"}"#;
    for secret in ["old_secret_1-rotating", "new_secret_2-rotating"] {
        let signer = Signer::new(scheme.clone(), &[Secret::new(secret).unwrap()]).unwrap();
        let headers = signer.sign(&Message::new(body)).unwrap().headers;
        let (status, answer) =
            call(&app, &router, event("POST", "/acme", "", &headers, body)).await;
        assert_eq!(status, 200, "{answer}");
        // No id header and no body id: a content id, stable across retries.
        assert_eq!(answer["id"], hookseal::content_id(body));
    }
}

// ------------------------------------------------------------------ relay

#[tokio::test]
async fn verified_messages_are_relayed_re_signed_with_their_id() {
    let (url, seen) = receiver(200).await;
    let routes = routes_json();
    for outbound in ["x-signature", "native", "standard"] {
        let relay_secret = if outbound == "standard" {
            SECRET
        } else {
            RELAY_SECRET
        };
        let (app, router) = app_with(&[
            ("HOOKSEAL_ROUTES", &routes),
            ("S", SECRET),
            ("WEBHOOK_URL", &url),
            ("OUTBOUND_SCHEME", outbound),
            ("WEBHOOK_SECRET", relay_secret),
        ])
        .await;
        seen.0.lock().unwrap().clear();
        for scheme in SCHEMES {
            let body = body_for(scheme);
            let (headers, query) = sign(scheme, &body, "msg_inbound_7");
            let (status, answer) = call(
                &app,
                &router,
                event("POST", &format!("/{scheme}"), &query, &headers, &body),
            )
            .await;
            assert_eq!(status, 200, "{scheme} -> {outbound}: {answer}");
            assert_eq!(answer["relayed"], 200);
        }
        let got = seen.0.lock().unwrap().clone();
        assert_eq!(got.len(), SCHEMES.len());
        let verifier = Verifier::new(
            Scheme::preset(outbound).unwrap(),
            &[Secret::new(relay_secret).unwrap()],
        )
        .unwrap();
        for (i, (headers, body, at)) in got.iter().enumerate() {
            verifier.verify(body, headers, *at).unwrap_or_else(|e| {
                panic!("{outbound} relay of {} does not verify: {e}", SCHEMES[i])
            });
            assert_eq!(
                body.as_ref(),
                body_for(SCHEMES[i]).as_slice(),
                "original body"
            );
            let key = headers["idempotency-key"].to_str().unwrap();
            let want = match SCHEMES[i] {
                "native" | "standard" => "msg_inbound_7".to_owned(), // the scheme's id header
                "signed-url" => hookseal::content_id(body),          // no id anywhere
                _ => "evt_body_1".to_owned(),                        // the body's id
            };
            assert_eq!(key, want, "{}", SCHEMES[i]);
        }
    }
}

#[tokio::test]
async fn a_failing_downstream_makes_the_provider_retry() {
    let routes = routes_json();
    let body = body_for("stripe");
    let (headers, _) = sign("stripe", &body, "x");
    let (url, seen) = receiver(500).await;
    let (app, router) = app_with(&[
        ("HOOKSEAL_ROUTES", &routes),
        ("S", SECRET),
        ("WEBHOOK_URL", &url),
        ("WEBHOOK_SECRET", RELAY_SECRET),
    ])
    .await;
    let (status, answer) = call(&app, &router, event("POST", "/stripe", "", &headers, &body)).await;
    assert_eq!(
        (status, answer["status"].as_u64()),
        (502, Some(500)),
        "{answer}"
    );
    assert_eq!(seen.0.lock().unwrap().len(), 1);

    // Nobody listening at all.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/x", l.local_addr().unwrap())
    };
    let (app, router) = app_with(&[
        ("HOOKSEAL_ROUTES", &routes),
        ("S", SECRET),
        ("WEBHOOK_URL", &closed),
        ("WEBHOOK_SECRET", RELAY_SECRET),
    ])
    .await;
    let (status, answer) = call(&app, &router, event("POST", "/stripe", "", &headers, &body)).await;
    assert_eq!(status, 502, "{answer}");
    assert_eq!(answer["error"], "relay_unreachable");

    // Too slow: 504 within RELAY_TIMEOUT_SECONDS.
    let (slow, _) = receiver_with_delay(200, std::time::Duration::from_secs(3)).await;
    let (app, router) = app_with(&[
        ("HOOKSEAL_ROUTES", &routes),
        ("S", SECRET),
        ("WEBHOOK_URL", &slow),
        ("WEBHOOK_SECRET", RELAY_SECRET),
        ("RELAY_TIMEOUT_SECONDS", "1"),
    ])
    .await;
    let started = std::time::Instant::now();
    let (status, answer) = call(&app, &router, event("POST", "/stripe", "", &headers, &body)).await;
    assert_eq!(status, 504, "{answer}");
    assert_eq!(answer["error"], "relay_timeout");
    assert!(started.elapsed() < std::time::Duration::from_millis(2500));
}

// ------------------------------------------------------ secrets extension

/// The Parameters and Secrets extension's HTTP interface, on 127.0.0.1.
async fn extension(token: &'static str) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: http::Request<hyper::body::Incoming>| async move {
                        let authorized = req
                            .headers()
                            .get("x-aws-parameters-secrets-token")
                            .is_some_and(|v| v == token);
                        let (status, body) = match (authorized, req.uri().path(), req.uri().query()) {
                        (false, _, _) => (403, "{}".to_owned()),
                        (true, "/secretsmanager/get", Some("secretId=prod%2Fstripe")) => {
                            (200, json!({"Name": "prod/stripe", "SecretString": SECRET}).to_string())
                        }
                        (
                            true,
                            "/systemsmanager/parameters/get",
                            Some("name=%2Fhooks%2Frelay&withDecryption=true"),
                        ) => {
                            (200, json!({"Parameter": {"Name": "/hooks/relay", "Value": RELAY_SECRET}}).to_string())
                        }
                        _ => (400, "{}".to_owned()),
                    };
                        let mut r = http::Response::new(http_body_util::Full::new(
                            bytes::Bytes::from(body),
                        ));
                        *r.status_mut() = http::StatusCode::from_u16(status).unwrap();
                        Ok::<_, Infallible>(r)
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    port
}

#[tokio::test]
async fn secrets_come_from_secrets_manager_and_ssm_through_the_extension() {
    let port = extension("session-token-1").await.to_string();
    let (url, seen) = receiver(200).await;
    let (app, router) = app_with(&[
        ("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", &port),
        ("AWS_SESSION_TOKEN", "session-token-1"),
        ("INBOUND_SCHEME", "stripe"),
        ("INBOUND_SECRET_ID", "prod/stripe"),
        ("WEBHOOK_URL", &url),
        ("WEBHOOK_SECRET_PARAMETER", "/hooks/relay"),
    ])
    .await;
    let body = body_for("stripe");
    let (headers, _) = sign("stripe", &body, "x");
    let (status, answer) = call(
        &app,
        &router,
        event("POST", "/webhook", "", &headers, &body),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let got = seen.0.lock().unwrap().clone();
    let v = Verifier::new(
        Scheme::preset("x-signature").unwrap(),
        &[Secret::new(RELAY_SECRET).unwrap()],
    )
    .unwrap();
    v.verify(&got[0].1, &got[0].0, got[0].2).unwrap();

    // A wrong session token: a clear start-up error that names the variable only.
    let env: HashMap<&str, String> = [
        ("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", port.clone()),
        ("AWS_SESSION_TOKEN", "wrong".to_owned()),
        ("INBOUND_SCHEME", "stripe".to_owned()),
        ("INBOUND_SECRET_ID", "prod/stripe".to_owned()),
    ]
    .into_iter()
    .collect();
    let lookup = move |k: &str| env.get(k).cloned();
    let err = match Loader::new(&lookup).load().await {
        Ok(_) => panic!("loaded with a wrong token"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("INBOUND_SECRET_ID") && err.contains("403"),
        "{err}"
    );
    assert!(!err.contains(SECRET));
}

#[tokio::test]
async fn configuration_errors_name_the_variable_not_the_value() {
    let cases: [(&[(&str, &str)], &str); 5] = [
        (&[], "nothing to do"),
        (&[("INBOUND_SCHEME", "nope")], "INBOUND_SECRET"),
        (
            &[
                ("INBOUND_SCHEME", "nope"),
                ("INBOUND_SECRET", "s3cr3t-value-0123456789"),
            ],
            "INBOUND_SCHEME",
        ),
        (
            &[
                ("INBOUND_SCHEME", "github"),
                ("INBOUND_SECRET", "s3cr3t-value-0123456789"),
                ("WEBHOOK_URL", "ftp://x"),
            ],
            "WEBHOOK_URL",
        ),
        (
            &[
                ("INBOUND_SCHEME", "github"),
                ("INBOUND_SECRET", "s3cr3t-value-0123456789"),
                ("DATABASE_URL", "postgres://u:s3cr3t-value-0123456789@h/db"),
            ],
            "HOOKSEAL_APP",
        ),
    ];
    for (vars, want) in cases {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let env = move |k: &str| map.get(k).cloned();
        let err = match Loader::new(&env).load().await {
            Ok(_) => panic!("{vars:?} loaded"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(want), "{vars:?}: {err}");
        assert!(!err.contains("s3cr3t-value"), "{err}");
    }
}

#[tokio::test]
async fn dispatch_needs_a_token_and_a_database() {
    let routes = routes_json();
    let (app, router) = app_with(&[
        ("HOOKSEAL_ROUTES", &routes),
        ("S", SECRET),
        ("DISPATCH_TOKEN", "tok-123"),
        ("HOOKSEAL_MODE", "verify-only"),
    ])
    .await;
    let auth = |t: &str| vec![("authorization".to_owned(), format!("Bearer {t}"))];
    let (status, _) = call(
        &app,
        &router,
        event("POST", "/dispatch", "", &auth("wrong"), b""),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = call(&app, &router, event("POST", "/dispatch", "", &[], b"")).await;
    assert_eq!(status, 401);
    let (status, answer) = call(
        &app,
        &router,
        event("POST", "/dispatch", "", &auth("tok-123"), b""),
    )
    .await;
    assert_eq!(status, 404, "{answer}");
    // A scheduled invocation without a database answers, does not fail.
    let out = handle(
        &app,
        &router,
        LambdaEvent::new(json!({"hookseal": "dispatch"}), Context::default()),
    )
    .await
    .unwrap();
    assert!(out["error"].as_str().unwrap().contains("DATABASE_URL"));
}

#[test]
fn http_events_never_count_as_schedules() {
    let mut ev = event("POST", "/dispatch", "", &[], br#"{"hookseal":"dispatch"}"#);
    assert!(!hookseal_lambda::is_schedule(&ev));
    ev["hookseal"] = "dispatch".into();
    assert!(!hookseal_lambda::is_schedule(&ev), "requestContext present");
    assert!(hookseal_lambda::is_schedule(
        &json!({"hookseal": "dispatch"})
    ));
    assert!(hookseal_lambda::is_schedule(
        &json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}})
    ));
}

/// `json-stringify.json` through the Lambda: each `raw` body verifies on an
/// `x-signature` and a `fincra` route with the vector's signature, and the
/// relay to a re-serializing scheme forwards `canonical` signed exactly as
/// the vector says.
#[tokio::test]
async fn json_stringify_vectors_verify_and_relay_in_canonical_form() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/vectors/json-stringify.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let secret = doc["secret"].as_str().unwrap();
    let vectors = doc["vectors"].as_array().unwrap();
    let routes = json!([
        {"path": "/x-signature", "scheme": "x-signature", "secret_env": "S"},
        {"path": "/fincra", "scheme": "fincra", "secret_env": "S"},
    ])
    .to_string();
    let (url, seen) = receiver(200).await;
    for (outbound, header) in [("x-signature", "x-signature"), ("fincra", "signature")] {
        let (app, router) = app_with(&[
            ("HOOKSEAL_ROUTES", &routes),
            ("S", secret),
            ("WEBHOOK_URL", &url),
            ("OUTBOUND_SCHEME", outbound),
            ("WEBHOOK_SECRET", secret),
        ])
        .await;
        for (inbound, in_header) in [("x-signature", "x-signature"), ("fincra", "signature")] {
            seen.0.lock().unwrap().clear();
            for v in vectors {
                let raw = v["raw"].as_str().unwrap();
                let headers = vec![(
                    in_header.to_owned(),
                    v[inbound].as_str().unwrap().to_owned(),
                )];
                let (status, answer) = call(
                    &app,
                    &router,
                    event("POST", &format!("/{inbound}"), "", &headers, raw.as_bytes()),
                )
                .await;
                assert_eq!(status, 200, "{inbound} -> {outbound} {v}: {answer}");
            }
            let got = seen.0.lock().unwrap().clone();
            assert_eq!(got.len(), vectors.len());
            for ((headers, body, _), v) in got.iter().zip(vectors) {
                assert_eq!(body.as_ref(), v["canonical"].as_str().unwrap().as_bytes());
                assert_eq!(
                    headers[header].to_str().unwrap(),
                    v[outbound].as_str().unwrap()
                );
            }
        }
    }
}

/// Issue 24: the relay continues the provider's trace: `WEBHOOK_URL` gets a
/// `traceparent` of the same trace, naming the relay's span (not the
/// provider's), and `tracestate` as it came.
#[tokio::test]
async fn the_relay_continues_the_incoming_trace() {
    let _telemetry = hookseal_otel::Telemetry::init("hookseal-lambda-test").unwrap();
    let (url, seen) = receiver(200).await;
    let routes = routes_json();
    let (app, router) = app_with(&[
        ("HOOKSEAL_ROUTES", &routes),
        ("S", SECRET),
        ("WEBHOOK_URL", &url),
        ("WEBHOOK_SECRET", RELAY_SECRET),
    ])
    .await;
    let body = body_for("stripe");
    let (mut headers, _) = sign("stripe", &body, "x");
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    headers.push(("traceparent".into(), incoming.into()));
    headers.push(("tracestate".into(), "vendor=7".into()));
    let (status, answer) = call(&app, &router, event("POST", "/stripe", "", &headers, &body)).await;
    assert_eq!(status, 200, "{answer}");
    let got = seen.0.lock().unwrap().clone();
    let sent = got[0].0["traceparent"].to_str().unwrap().to_owned();
    assert_eq!(&sent[..36], &incoming[..36], "{sent}");
    assert_ne!(
        &sent[36..52],
        &incoming[36..52],
        "the relay's own span: {sent}"
    );
    assert_eq!(got[0].0["tracestate"], "vendor=7");
}
