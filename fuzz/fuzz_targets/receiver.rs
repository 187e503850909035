//! The receiver middleware: any method, header list and body through a
//! Standard Webhooks route (v1 secret and v1a public key, memory replay
//! guard). Never a panic, never an accepted forgery, and every answer is
//! JSON with a status from the contract's table.
#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::OnceLock;

use axum::body::Body;
use axum::Router;
use hookseal::{Scheme, Secret, Verifier};
use hookseal_axum::{MemoryReplayStore, Receiver, Webhook};
use http::{Request, StatusCode};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

struct World {
    rt: tokio::runtime::Runtime,
    router: Router,
}

async fn accepted(_hook: Webhook) -> StatusCode {
    StatusCode::OK
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let verifier = Verifier::new(
            Scheme::preset("standard").unwrap(),
            &[Secret::new(common::SECRET).unwrap(), Secret::new(common::PUBLIC_KEY).unwrap()],
        )
        .unwrap();
        let receiver = Receiver::new(verifier).replay_guard(MemoryReplayStore::with_capacity(1000));
        let router = Router::new().route("/hook", receiver.post(accepted));
        World { rt, router }
    })
}

const METHODS: [&str; 4] = ["POST", "GET", "PUT", "DELETE"];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    // Parts: header lines ("name: value" per part), the last is the body.
    let parts = common::split(rest, 8);
    let mut req = Request::builder()
        .method(METHODS[pick as usize % METHODS.len()])
        .uri(if pick & 0x80 == 0 { "/hook" } else { "/hook?x=1" });
    for line in &parts[..7] {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(name),
            http::HeaderValue::from_bytes(value),
        ) {
            req = req.header(n, v);
        }
    }
    let Ok(req) = req.body(Body::from(parts[7].to_vec())) else {
        return;
    };
    let w = world();
    let resp = w.rt.block_on(w.router.clone().oneshot(req)).unwrap();
    let status = resp.status().as_u16();
    assert_ne!(status, 200, "a fuzzed request was accepted");
    assert!(
        matches!(status, 400 | 401 | 405 | 409 | 413 | 431 | 503),
        "status {status} is not in the contract's table"
    );
    assert_eq!(
        resp.headers().get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/json"[..]),
        "every answer is JSON"
    );
});
