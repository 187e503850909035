//! The middleware through real axum servers on 127.0.0.1: every preset's
//! vector, rotation, the status table, the replay guard, the body limit.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::Router;
use hookseal::{Message, Scheme, Secret, Signer, Verifier};
use hookseal_axum::{not_found, MemoryReplayStore, Receiver, Webhook};
use serde_json::{json, Value};

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn ok(hook: Webhook) -> axum::response::Response {
    hookseal_axum::json_response(
        StatusCode::OK,
        json!({"ok": true, "id": hook.id, "secret_index": hook.verified.secret_index,
               "len": hook.body.len()}),
    )
}

/// Sends `body` with `headers` to `url`; status and JSON answer.
async fn send(url: &str, headers: &[(String, String)], body: &[u8]) -> (u16, Value) {
    let mut req = reqwest::Client::new().post(url).body(body.to_vec());
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    assert_eq!(
        resp.headers()["content-type"],
        "application/json",
        "every answer is JSON"
    );
    (
        status,
        serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap(),
    )
}

fn vectors() -> Vec<Value> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/schemes.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    doc["schemes"].as_array().unwrap().clone()
}

/// Vectors carry timestamps from 2024: a century of tolerance lets them
/// verify today (the tolerance rule has its own tests below and in the core).
const CENTURY: Duration = Duration::from_secs(100 * 365 * 86_400);

fn verifier(scheme: &str, secrets: &[&str]) -> Verifier {
    let secrets: Vec<Secret> = secrets.iter().map(|s| Secret::new(*s).unwrap()).collect();
    Verifier::new(Scheme::preset(scheme).unwrap(), &secrets)
        .unwrap()
        .with_tolerance(CENTURY)
}

#[tokio::test]
async fn every_preset_vector_verifies_rotates_and_is_refused_with_a_wrong_secret() {
    let mut seen = std::collections::BTreeSet::new();
    for v in vectors() {
        let scheme = v["scheme"].as_str().unwrap();
        let secret = v["secret"].as_str().unwrap();
        let wrong = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let app = Router::new()
            .route(
                "/right",
                Receiver::new(verifier(scheme, &[secret])).post(ok),
            )
            .route("/wrong", Receiver::new(verifier(scheme, &[wrong])).post(ok))
            .route(
                "/rotated",
                Receiver::new(verifier(scheme, &[wrong, secret])).post(ok),
            );
        let addr = serve(app).await;
        let body = v["body"].as_str().unwrap().as_bytes();
        let (query, headers): (String, Vec<(String, String)>) = match v["url"].as_str() {
            Some(url) => (format!("?{}", url.split_once('?').unwrap().1), vec![]),
            None => (
                String::new(),
                v["headers"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, x)| (k.clone(), x.as_str().unwrap().to_owned()))
                    .collect(),
            ),
        };
        let url = |route: &str| format!("http://{addr}/{route}{query}");
        let (status, answer) = send(&url("right"), &headers, body).await;
        assert_eq!(status, 200, "{scheme}: {answer}");
        assert_eq!(answer["secret_index"], 0);
        assert_eq!(
            answer["len"],
            body.len(),
            "{scheme}: the handler gets the raw body"
        );
        if let Some(id) = v["headers"]
            .as_object()
            .and_then(|h| h.iter().find(|(k, _)| k.ends_with("webhook-id")))
        {
            assert_eq!(
                answer["id"],
                id.1.clone(),
                "{scheme}: id from the id header"
            );
        }
        let (status, answer) = send(&url("rotated"), &headers, body).await;
        assert_eq!(status, 200, "{scheme} rotated: {answer}");
        assert_eq!(
            answer["secret_index"], 1,
            "{scheme}: the second secret matched"
        );
        let (status, answer) = send(&url("wrong"), &headers, body).await;
        let mismatch = Scheme::preset(scheme).unwrap().mismatch_status;
        assert_eq!(status, mismatch, "{scheme}: {answer}");
        assert_eq!(answer["error"], "no_matching_signature", "{scheme}");
        assert!(answer["message"].is_string());
        assert!(!answer.to_string().contains(secret));
        seen.insert(scheme.to_owned());
    }
    assert_eq!(seen.len(), 10, "all ten presets: {seen:?}");
}

/// A fresh Standard Webhooks request for `id`.
fn standard(secret: &str, id: &str, body: &[u8]) -> Vec<(String, String)> {
    let signer = Signer::new(
        Scheme::preset("standard").unwrap(),
        &[Secret::new(secret).unwrap()],
    )
    .unwrap();
    signer
        .sign(&Message {
            body,
            id: Some(id),
            timestamp: None,
        })
        .unwrap()
        .headers
}

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn standard_receiver() -> Receiver {
    let v = Verifier::new(
        Scheme::preset("standard").unwrap(),
        &[Secret::new(SECRET).unwrap()],
    )
    .unwrap();
    Receiver::new(v)
}

#[tokio::test]
async fn the_status_table_for_malformed_stale_and_oversized_requests() {
    let small = Verifier::new(
        Scheme::preset("standard").unwrap(),
        &[Secret::new(SECRET).unwrap()],
    )
    .unwrap()
    .with_max_body(Some(1024));
    let app = Router::new()
        .route("/hook", Receiver::new(small).post(ok))
        .fallback(not_found);
    let addr = serve(app).await;
    let url = format!("http://{addr}/hook");
    let body = br#"{"type":"a"}"#;

    let (status, a) = send(&url, &[], body).await;
    assert_eq!((status, a["error"].as_str()), (400, Some("missing_header")));
    let mut h = standard(SECRET, "msg_1", body);
    h.retain(|(k, _)| k != "webhook-timestamp");
    h.push(("webhook-timestamp".into(), "1".into()));
    let (status, a) = send(&url, &h, body).await;
    let mismatch = Scheme::preset("standard").unwrap().mismatch_status;
    assert_eq!(
        (status, a["error"].as_str()),
        (mismatch, Some("timestamp_too_old"))
    );
    let big = vec![b' '; 2048];
    let (status, a) = send(&url, &standard(SECRET, "msg_2", &big), &big).await;
    assert_eq!((status, a["error"].as_str()), (413, Some("body_too_large")));

    // A chunked body (no Content-Length) is cut at the limit too.
    let raw = chunked(addr, "/hook", &[&[b' '; 700], &[b' '; 700]]).await;
    assert!(raw.starts_with("HTTP/1.1 413"), "{raw}");
    assert!(raw.contains("body_too_large"), "{raw}");

    let resp = reqwest::get(&url).await.unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(resp.headers()["allow"], "POST");
    let a: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(a["error"], "method_not_allowed");
    let (status, a) = send(&format!("http://{addr}/other"), &[], body).await;
    assert_eq!((status, a["error"].as_str()), (404, Some("not_found")));
}

/// POSTs `chunks` with `Transfer-Encoding: chunked` over a plain socket;
/// the raw answer.
async fn chunked(addr: SocketAddr, path: &str, chunks: &[&[u8]]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    for c in chunks {
        // The server may answer 413 and close before the last chunk.
        let _ = s.write_all(format!("{:x}\r\n", c.len()).as_bytes()).await;
        let _ = s.write_all(c).await;
        let _ = s.write_all(b"\r\n").await;
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn a_replayed_id_is_refused_and_a_failed_one_is_not_remembered() {
    let calls = Arc::new(AtomicUsize::new(0));
    let fail_first = {
        let calls = calls.clone();
        move |hook: Webhook| async move {
            // The first call of msg_retry fails: its retry must go through.
            if hook.id == "msg_retry" && calls.fetch_add(1, Ordering::SeqCst) == 0 {
                return hookseal_axum::json_response(StatusCode::INTERNAL_SERVER_ERROR, json!({}));
            }
            ok(hook).await
        }
    };
    let store = Arc::new(MemoryReplayStore::default());
    let app = Router::new().route(
        "/hook",
        standard_receiver()
            .shared_replay_guard(store.clone())
            .post(fail_first),
    );
    let addr = serve(app).await;
    let url = format!("http://{addr}/hook");
    let body = br#"{"type":"a"}"#;

    let h = standard(SECRET, "msg_1", body);
    assert_eq!(send(&url, &h, body).await.0, 200);
    let (status, a) = send(&url, &h, body).await;
    assert_eq!((status, a["error"].as_str()), (409, Some("replayed")));
    // Re-signed (a new timestamp) under the same id: still a replay.
    let (status, _) = send(&url, &standard(SECRET, "msg_1", body), body).await;
    assert_eq!(status, 409);
    assert_eq!(
        send(&url, &standard(SECRET, "msg_2", body), body).await.0,
        200
    );

    let h = standard(SECRET, "msg_retry", body);
    assert_eq!(send(&url, &h, body).await.0, 500);
    assert_eq!(
        send(&url, &h, body).await.0,
        200,
        "the failed id was forgotten"
    );
    assert_eq!(send(&url, &h, body).await.0, 409);
    assert_eq!(store.len(), 3);
}

#[tokio::test]
async fn concurrent_copies_of_one_id_run_the_handler_once() {
    let runs = Arc::new(AtomicUsize::new(0));
    let slow = {
        let runs = runs.clone();
        move |hook: Webhook| async move {
            runs.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(300)).await;
            ok(hook).await
        }
    };
    let app = Router::new().route(
        "/hook",
        standard_receiver()
            .replay_guard(MemoryReplayStore::default())
            .post(slow),
    );
    let addr = serve(app).await;
    let url = format!("http://{addr}/hook");
    let body = br#"{"type":"a"}"#;
    let h = standard(SECRET, "msg_twice", body);
    let (a, b) = tokio::join!(send(&url, &h, body), send(&url, &h, body));
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [200, 409]);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn without_a_timestamp_an_id_is_remembered_for_the_window_then_forgotten() {
    let secret = "It's a Secret to Everybody";
    let v = Verifier::new(
        Scheme::preset("github").unwrap(),
        &[Secret::new(secret).unwrap()],
    )
    .unwrap();
    let store = Arc::new(MemoryReplayStore::default());
    let app = Router::new().route(
        "/hook",
        Receiver::new(v)
            .shared_replay_guard(store.clone())
            .replay_window(Duration::from_secs(1))
            .post(ok),
    );
    let addr = serve(app).await;
    let url = format!("http://{addr}/hook");
    let body = br#"{"id":"delivery-1","action":"opened"}"#;
    let signer = Signer::new(
        Scheme::preset("github").unwrap(),
        &[Secret::new(secret).unwrap()],
    )
    .unwrap();
    let h = signer
        .sign(&Message {
            body,
            id: None,
            timestamp: None,
        })
        .unwrap()
        .headers;
    let (status, a) = send(&url, &h, body).await;
    assert_eq!(status, 200);
    assert_eq!(a["id"], "delivery-1", "no id header: the body's id");
    assert_eq!(send(&url, &h, body).await.0, 409);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(send(&url, &h, body).await.0, 200, "the window has passed");
    assert_eq!(store.len(), 1, "the expired record was dropped");
}

/// The PostgreSQL store, shared by two servers (two replicas): run by
/// scripts/dispatch-test.sh with HOOKSEAL_TEST_PG=host:port.
#[cfg(feature = "postgres")]
#[tokio::test]
#[ignore]
async fn the_postgres_store_is_shared_by_replicas() {
    use hookseal_axum::PgReplayStore;
    let pg = std::env::var("HOOKSEAL_TEST_PG").expect("HOOKSEAL_TEST_PG=host:port");
    let (host, port) = pg.split_once(':').unwrap();
    let url = format!("host={host} port={port} user=postgres dbname=postgres");
    let store = Arc::new(PgReplayStore::from_url(&url).unwrap());
    store.create_table().await.unwrap();
    let scope = format!("test-{}", std::process::id());
    let replica = |store: Arc<PgReplayStore>| {
        Router::new().route(
            "/hook",
            standard_receiver()
                .shared_replay_guard(store)
                .scope(scope.clone())
                .post(|hook: Webhook| async move {
                    if hook.id == "msg_fails" {
                        return hookseal_axum::json_response(StatusCode::BAD_GATEWAY, json!({}));
                    }
                    ok(hook).await
                }),
        )
    };
    let other = Arc::new(PgReplayStore::from_url(&url).unwrap());
    let a = serve(replica(store.clone())).await;
    let b = serve(replica(other)).await;
    let body = br#"{"type":"a"}"#;
    let h = standard(SECRET, "msg_shared", body);
    assert_eq!(send(&format!("http://{a}/hook"), &h, body).await.0, 200);
    let (status, ans) = send(&format!("http://{b}/hook"), &h, body).await;
    assert_eq!((status, ans["error"].as_str()), (409, Some("replayed")));

    let h = standard(SECRET, "msg_fails", body);
    assert_eq!(send(&format!("http://{a}/hook"), &h, body).await.0, 502);
    // Forgetting is spawned: give it a moment, then the other replica runs it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(send(&format!("http://{b}/hook"), &h, body).await.0, 502);

    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let rows = client
        .query(
            "SELECT id, until_ms FROM hookseal_replay WHERE scope = $1 ORDER BY id",
            &[&scope],
        )
        .await
        .unwrap();
    let ids: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(ids, ["msg_shared"], "the failed id is not kept");
    let until: i64 = rows[0].get(1);
    let far = hookseal::UnixTime::from_millis(until + 1);
    assert!(store.purge(far).await.unwrap() >= 1);
    let left: i64 = client
        .query_one(
            "SELECT count(*) FROM hookseal_replay WHERE scope = $1",
            &[&scope],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
}

#[tokio::test]
async fn svix_spelled_requests_are_filed_under_the_verified_id() {
    let app = Router::new().route(
        "/hook",
        standard_receiver()
            .replay_guard(MemoryReplayStore::default())
            .post(ok),
    );
    let addr = serve(app).await;
    let url = format!("http://{addr}/hook");
    let body = br#"{"type":"a"}"#;
    // Signed as webhook-*, sent as svix-* (what Svix-powered senders do).
    let svix: Vec<(String, String)> = standard(SECRET, "msg_svix", body)
        .into_iter()
        .map(|(k, v)| (k.replace("webhook-", "svix-"), v))
        .collect();
    let mut first = svix.clone();
    first.push(("webhook-id".into(), "stray_1".into()));
    let (status, a) = send(&url, &first, body).await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(
        a["id"], "msg_svix",
        "the id the signature covered, not the stray header"
    );
    // A replay with another stray webhook-id is still the same message.
    let mut again = svix.clone();
    again.push(("webhook-id".into(), "stray_2".into()));
    let (status, a) = send(&url, &again, body).await;
    assert_eq!((status, a["error"].as_str()), (409, Some("replayed")));
}

/// Sends a request head with `extra` header lines over a plain socket;
/// the raw answer.
#[cfg(feature = "serve")]
async fn raw_head(addr: SocketAddr, extra: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST /hook HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n{extra}\r\n{{}}"
    );
    let _ = s.write_all(req.as_bytes()).await;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(feature = "serve")]
#[tokio::test]
async fn oversized_headers_get_the_json_431_through_serve() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/hook", standard_receiver().post(ok));
    tokio::spawn(hookseal_axum::serve(
        listener,
        app,
        std::future::pending(),
        Duration::from_secs(1),
    ));
    // 96 KiB in one field, and 150 small fields: over the receiver's
    // limits, within the parser's: the JSON answer.
    for extra in [
        format!("X-Big: {}\r\n", "a".repeat(96 * 1024)),
        (0..150)
            .map(|i| format!("X-H{i}: v\r\n"))
            .collect::<String>(),
    ] {
        let answer = raw_head(addr, &extra).await;
        assert!(answer.starts_with("HTTP/1.1 431"), "{answer:.200}");
        assert!(answer.contains("application/json"), "{answer:.300}");
        assert!(
            answer.contains(r#""error":"headers_too_large""#),
            "{answer:.400}"
        );
    }
    // Within the limits: the request reaches verification (and is refused
    // there for its missing signature).
    let answer = raw_head(addr, &format!("X-Big: {}\r\n", "a".repeat(32 * 1024))).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer:.200}");
    assert!(
        answer.contains(r#""error":"missing_header""#),
        "{answer:.400}"
    );
}
