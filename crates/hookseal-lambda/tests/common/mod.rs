//! Helpers shared by the Lambda tests: Function URL events, invoking the
//! handler, and a real receiver on 127.0.0.1.
#![allow(dead_code)]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::Router;
use base64::Engine;
use hookseal::UnixTime;
use hookseal_lambda::{handle, App};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{json, Value};

/// A Function URL event (payload format 2.0).
pub fn event(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Value {
    let mut h = serde_json::Map::new();
    for (k, v) in headers {
        h.insert(k.to_ascii_lowercase(), Value::String(v.clone()));
    }
    h.insert("host".into(), "abc.lambda-url.eu-west-1.on.aws".into());
    let (body, b64) = match std::str::from_utf8(body) {
        Ok(s) => (s.to_owned(), false),
        Err(_) => (base64::engine::general_purpose::STANDARD.encode(body), true),
    };
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": h,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abc",
            "domainName": "abc.lambda-url.eu-west-1.on.aws",
            "domainPrefix": "abc",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.7", "userAgent": "provider/1.0"},
            "requestId": "req-1",
            "routeKey": "$default",
            "stage": "$default",
            "time": "23/Nov/2026:19:00:00 +0000",
            "timeEpoch": 1795460400000i64
        },
        "body": body,
        "isBase64Encoded": b64
    })
}

pub async fn call(app: &Arc<App>, router: &Router, ev: Value) -> (u16, Value) {
    let out = handle(app, router, LambdaEvent::new(ev, Context::default()))
        .await
        .expect("an HTTP event always gets an HTTP answer");
    let status = out["statusCode"].as_u64().unwrap() as u16;
    let body: Value = match out["body"].as_str() {
        Some(b) => serde_json::from_str(b).unwrap_or(Value::String(b.to_owned())),
        None => Value::Null,
    };
    (status, body)
}

#[derive(Clone, Default)]
pub struct Seen(pub Arc<Mutex<Vec<(http::HeaderMap, bytes::Bytes, UnixTime)>>>);

/// A real receiver on 127.0.0.1 answering `status`.
pub async fn receiver(status: u16) -> (String, Seen) {
    receiver_with_delay(status, std::time::Duration::ZERO).await
}

/// A real receiver on 127.0.0.1 answering `status` after `delay`.
pub async fn receiver_with_delay(status: u16, delay: std::time::Duration) -> (String, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Seen::default();
    let s2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let s3 = s2.clone();
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let s4 = s3.clone();
                        async move {
                            use http_body_util::BodyExt;
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await.unwrap().to_bytes();
                            s4.0.lock()
                                .unwrap()
                                .push((parts.headers, body, UnixTime::now()));
                            tokio::time::sleep(delay).await;
                            let mut r = http::Response::new(http_body_util::Full::new(
                                bytes::Bytes::from_static(b"ok"),
                            ));
                            *r.status_mut() = http::StatusCode::from_u16(status).unwrap();
                            Ok::<_, Infallible>(r)
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (format!("http://{addr}/hooks"), seen)
}
