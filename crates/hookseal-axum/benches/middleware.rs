//! The receive wing's cost per request, in process (`tower::ServiceExt::oneshot`
//! on the router, no sockets): a Standard Webhooks request of 1 KiB through
//! - `plain`: the same axum route reading the body as `Bytes`, no verification
//!   (the floor);
//! - `hookseal`: `Receiver::post` (body limit, verification, inbound id);
//! - `hookseal+replay`: the same with the in-memory replay guard (every
//!   request a fresh id, signed in criterion's untimed setup);
//! - `axum-standardwebhooks`: the `StandardWebhook<Bytes>` extractor
//!   (`standardwebhooks` crate).
//!
//! Same run, same request bytes. `cargo bench -p hookseal-axum --bench middleware`.

use std::hint::black_box;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use axum::routing::post;
use axum::Router;
use axum_standardwebhooks::{SharedWebhook, StandardWebhook};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use hookseal::{Message, Scheme, Secret, Signer, UnixTime, Verifier};
use hookseal_axum::{MemoryReplayStore, Receiver, Webhook};
use tower::ServiceExt;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn body() -> Vec<u8> {
    let mut b = br#"{"type":"payment.created","data":{"pad":""#.to_vec();
    b.resize(1024 - 3, b'x');
    b.extend_from_slice(br#""}}"#);
    b
}

fn request(body: &[u8], id: &str, now: UnixTime) -> Request<Body> {
    let signer = Signer::new(
        Scheme::preset("standard").unwrap(),
        &[Secret::new(SECRET).unwrap()],
    )
    .unwrap();
    let signed = signer
        .sign(&Message {
            body,
            id: Some(id),
            timestamp: Some(now),
        })
        .unwrap();
    let mut r = Request::post("/hook").header("content-type", "application/json");
    for (k, v) in signed.headers {
        r = r.header(k, v);
    }
    r.body(Body::from(body.to_vec())).unwrap()
}

fn clone(r: &Request<Body>, body: &[u8]) -> Request<Body> {
    let mut c = Request::post("/hook");
    for (k, v) in r.headers() {
        c = c.header(k, v);
    }
    c.body(Body::from(body.to_vec())).unwrap()
}

fn receiver() -> Receiver {
    Receiver::new(
        Verifier::new(
            Scheme::preset("standard").unwrap(),
            &[Secret::new(SECRET).unwrap()],
        )
        .unwrap()
        .with_tolerance(Duration::from_secs(3600)),
    )
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let b = body();
    let now = UnixTime::now();
    let req = request(&b, "msg_bench", now);
    let mut g = c.benchmark_group("receive/standard-1KiB");

    let plain: Router = Router::new().route("/hook", post(|_b: Bytes| async { StatusCode::OK }));
    let hookseal: Router = Router::new().route(
        "/hook",
        receiver().post(|_h: Webhook| async { StatusCode::OK }),
    );
    let theirs: Router = Router::new()
        .route(
            "/hook",
            post(|StandardWebhook(_b): StandardWebhook<Bytes>| async { StatusCode::OK }),
        )
        .with_state(SharedWebhook::new(
            axum_standardwebhooks::Webhook::new(SECRET).unwrap(),
        ));
    for (name, router) in [
        ("plain", &plain),
        ("hookseal", &hookseal),
        ("axum-standardwebhooks", &theirs),
    ] {
        let status = rt
            .block_on(router.clone().oneshot(clone(&req, &b)))
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::OK, "{name} accepts the request");
        g.bench_function(name, |bch| {
            bch.iter(|| {
                rt.block_on(router.clone().oneshot(black_box(clone(&req, &b))))
                    .unwrap()
            })
        });
    }

    // With the replay guard every request needs a fresh id: pre-sign enough.
    let guarded: Router = Router::new().route(
        "/hook",
        receiver()
            .replay_guard(MemoryReplayStore::default())
            .post(|_h: Webhook| async { StatusCode::OK }),
    );
    // Each request is signed in criterion's untimed setup.
    let mut n = 0u64;
    g.bench_function("hookseal+replay", |bch| {
        bch.iter_batched(
            || {
                n += 1;
                request(&b, &format!("msg_{n}"), now)
            },
            |r| {
                let resp = rt.block_on(guarded.clone().oneshot(r)).unwrap();
                assert_eq!(resp.status(), StatusCode::OK);
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench
}
criterion_main!(benches);
