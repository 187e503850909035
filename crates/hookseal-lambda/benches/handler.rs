//! A verified 1 KiB POST handled in-process, from the Function URL event
//! JSON text to the response JSON text (what the Lambda runtime hands the
//! function and gets back), against the same path through a router that
//! answers 200 without verifying (the lambda_http + axum floor).

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::Router;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use hookseal::{Message, Scheme, Secret, Signer};
use hookseal_lambda::{handle, App, Loader};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{json, Value};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn event_text(scheme: &str) -> String {
    let mut body = String::from(r#"{"id":"evt_bench","type":"payment.created","data":{"pad":""#);
    while body.len() < 1024 - 3 {
        body.push('x');
    }
    body.push_str(r#""}}"#);
    let signer = Signer::new(
        Scheme::preset(scheme).unwrap(),
        &[Secret::new(SECRET).unwrap()],
    )
    .unwrap();
    let signed = signer
        .sign(&Message {
            body: body.as_bytes(),
            id: Some("msg_bench"),
            timestamp: None,
        })
        .unwrap();
    let mut headers = serde_json::Map::new();
    headers.insert("content-type".into(), "application/json".into());
    headers.insert("host".into(), "abc.lambda-url.eu-west-1.on.aws".into());
    headers.insert("user-agent".into(), "provider/1.0".into());
    for (k, v) in signed.headers {
        headers.insert(k.to_ascii_lowercase(), v.into());
    }
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/webhook", "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous", "apiId": "abc", "domainName": "abc.lambda-url.eu-west-1.on.aws",
            "domainPrefix": "abc",
            "http": {"method": "POST", "path": "/webhook", "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.7", "userAgent": "provider/1.0"},
            "requestId": "req-1", "routeKey": "$default", "stage": "$default",
            "time": "23/Nov/2026:19:00:00 +0000", "timeEpoch": 1795460400000i64
        },
        "body": body, "isBase64Encoded": false
    })
    .to_string()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("lambda_1KiB_post");
    for scheme in ["x-signature", "standard"] {
        let vars: HashMap<&str, &str> = [
            ("INBOUND_SCHEME", scheme),
            ("INBOUND_SECRET", SECRET),
            ("HOOKSEAL_MODE", "verify-only"),
            // The signature is made once, before the measurement; keep it in tolerance.
            ("TOLERANCE_SECONDS", "86400"),
        ]
        .into_iter()
        .collect();
        let env = move |k: &str| vars.get(k).map(|v| v.to_string());
        let app = rt
            .block_on(Loader::new(&env).load())
            .map(App::new)
            .unwrap()
            .unwrap();
        let router = app.router();
        let floor: Router = Router::new().fallback(|| async { (StatusCode::OK, "{\"ok\":true}") });
        let text = event_text(scheme);
        let run = |router: &Router| {
            rt.block_on(async {
                let ev: Value = serde_json::from_str(black_box(&text)).unwrap();
                let out = handle(&app, router, LambdaEvent::new(ev, Context::default()))
                    .await
                    .unwrap();
                assert_eq!(out["statusCode"], 200);
                serde_json::to_string(&out).unwrap()
            })
        };
        assert!(run(&router).contains("\"statusCode\":200"));
        group.bench_function(format!("{scheme}/verified"), |b| b.iter(|| run(&router)));
        group.bench_function(format!("{scheme}/floor_no_verify"), |b| {
            b.iter(|| run(&floor))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
