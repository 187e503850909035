//! Sign and verify throughput against the raw HMAC floor and the `svix` and
//! `standardwebhooks` crates, measured in the same run.
//!
//! Run with `bench/core.sh` (which also writes the ratios table), or
//! `cargo bench -p hookseal --features http --bench sign_verify`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hmac::{Hmac, Mac};
use hookseal::{Message, Scheme, Secret, Signer, UnixTime, Verifier};
use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::{Sha256, Sha512};

const SIZES: [usize; 3] = [128, 1024, 64 * 1024];
const STANDARD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const UTF8_SECRET: &str = "pwaKGYs638fjjpwEuJFFczsYfbD3O7Kg";

/// A compact JSON body of exactly `n` bytes.
fn body(n: usize) -> Vec<u8> {
    let head = br#"{"type":"payment.created","data":{"pad":""#;
    let tail = br#""}}"#;
    let mut b = head.to_vec();
    b.resize(n - tail.len(), b'x');
    b.extend_from_slice(tail);
    assert_eq!(b.len(), n);
    b
}

fn header_map(pairs: &[(String, String)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn secret_for(scheme: &str) -> Secret {
    Secret::new(if scheme == "standard" {
        STANDARD_SECRET
    } else {
        UTF8_SECRET
    })
    .unwrap()
}

/// Signed headers for `scheme` over `b`, timestamped now.
fn signed(scheme: &str, b: &[u8]) -> Vec<(String, String)> {
    let signer = Signer::new(Scheme::preset(scheme).unwrap(), &[secret_for(scheme)]).unwrap();
    signer
        .sign(&Message {
            body: b,
            id: Some("msg_p5jXN8AQM9LWM0D4loKWxJek"),
            timestamp: Some(UnixTime::now()),
        })
        .unwrap()
        .headers
}

/// The exact bytes `scheme` MACs for these headers (for the floor).
fn signed_bytes(scheme: &str, b: &[u8], h: &[(String, String)]) -> Vec<u8> {
    let get = |n: &str| {
        h.iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    match scheme {
        "standard" => [get("webhook-id"), get("webhook-timestamp")]
            .join(".")
            .into_bytes(),
        "native" => [get("x-webhook-id"), get("x-webhook-timestamp")]
            .join(".")
            .into_bytes(),
        _ => Vec::new(),
    }
    .into_iter()
    .chain(if matches!(scheme, "standard" | "native") {
        vec![b'.']
    } else {
        vec![]
    })
    .chain(b.iter().copied())
    .collect()
}

fn key_bytes(scheme: &str) -> Vec<u8> {
    match scheme {
        "standard" => base64_decode(&STANDARD_SECRET[6..]),
        _ => UTF8_SECRET.as_bytes().to_vec(),
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn floor_mac(scheme: &str, key: &[u8], msg: &[u8]) -> usize {
    if scheme == "fincra" {
        let mut m = Hmac::<Sha512>::new_from_slice(key).unwrap();
        m.update(msg);
        m.finalize().into_bytes().len()
    } else {
        let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
        m.update(msg);
        m.finalize().into_bytes().len()
    }
}

fn verify(c: &mut Criterion) {
    for scheme in ["standard", "native", "x-signature", "fincra"] {
        let mut g = c.benchmark_group(format!("verify/{scheme}"));
        for n in SIZES {
            let b = body(n);
            g.throughput(Throughput::Bytes(n as u64));
            let key = key_bytes(scheme);
            let verifier =
                Verifier::new(Scheme::preset(scheme).unwrap(), &[secret_for(scheme)]).unwrap();

            let pairs = signed(scheme, &b);
            let h = header_map(&pairs);
            g.bench_with_input(BenchmarkId::new("hookseal", n), &b, |bch, b| {
                bch.iter(|| {
                    verifier
                        .verify(black_box(b), black_box(&h), UnixTime::now())
                        .unwrap()
                })
            });

            let msg = signed_bytes(scheme, &b, &pairs);
            g.bench_with_input(BenchmarkId::new("hmac-floor", n), &msg, |bch, m| {
                bch.iter(|| floor_mac(scheme, black_box(&key), black_box(m)))
            });

            if scheme == "standard" {
                let sv = svix::webhooks::Webhook::new(STANDARD_SECRET).unwrap();
                let h = header_map(&signed(scheme, &b));
                g.bench_with_input(BenchmarkId::new("svix", n), &b, |bch, b| {
                    bch.iter(|| sv.verify(black_box(b), black_box(&h)).unwrap())
                });
                let sw = standardwebhooks::Webhook::new(STANDARD_SECRET).unwrap();
                let h = header_map(&signed(scheme, &b));
                g.bench_with_input(BenchmarkId::new("standardwebhooks", n), &b, |bch, b| {
                    bch.iter(|| sw.verify(black_box(b), black_box(&h)).unwrap())
                });
            }
        }
        g.finish();
    }
}

fn sign(c: &mut Criterion) {
    for scheme in ["standard", "native", "x-signature", "fincra"] {
        let mut g = c.benchmark_group(format!("sign/{scheme}"));
        let signer = Signer::new(Scheme::preset(scheme).unwrap(), &[secret_for(scheme)]).unwrap();
        let ts = UnixTime::now();
        for n in SIZES {
            let b = body(n);
            g.throughput(Throughput::Bytes(n as u64));
            g.bench_with_input(BenchmarkId::new("hookseal", n), &b, |bch, b| {
                bch.iter(|| {
                    signer
                        .sign(&Message {
                            body: black_box(b),
                            id: Some("msg_p5jXN8AQM9LWM0D4loKWxJek"),
                            timestamp: Some(ts),
                        })
                        .unwrap()
                })
            });
            let key = key_bytes(scheme);
            let msg = signed_bytes(scheme, &b, &signed(scheme, &b));
            g.bench_with_input(BenchmarkId::new("hmac-floor", n), &msg, |bch, m| {
                bch.iter(|| floor_mac(scheme, black_box(&key), black_box(m)))
            });
            if scheme == "standard" {
                let sv = svix::webhooks::Webhook::new(STANDARD_SECRET).unwrap();
                g.bench_with_input(BenchmarkId::new("svix", n), &b, |bch, b| {
                    bch.iter(|| {
                        sv.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", ts.as_secs(), black_box(b))
                            .unwrap()
                    })
                });
                let sw = standardwebhooks::Webhook::new(STANDARD_SECRET).unwrap();
                g.bench_with_input(BenchmarkId::new("standardwebhooks", n), &b, |bch, b| {
                    bch.iter(|| {
                        sw.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", ts.as_secs(), black_box(b))
                            .unwrap()
                    })
                });
            }
        }
        g.finish();
    }
}

/// A pretty-printed 1 KiB event, as Stripe indents its payloads, with the
/// number forms `JSON.stringify` rewrites (`2.50`, `1.0`, `1e3`).
fn pretty_event() -> Vec<u8> {
    let mut items = String::new();
    let mut i = 0;
    while items.len() < 870 {
        items.push_str(&format!(
            "      {{\n        \"sku\": \"sku_{i:04}\",\n        \"price\": 2.50,\n        \"qty\": 1.0,\n        \"weight\": 1e3\n      }},\n"
        ));
        i += 1;
    }
    items.truncate(items.len() - 2);
    let b = format!(
        "{{\n  \"id\": \"evt_1NG8Du2eZvKYlo2CUI79vXWy\",\n  \"type\": \"charge.succeeded\",\n  \"data\": {{\n    \"amount\": 1250.00,\n    \"items\": [\n{items}\n    ]\n  }}\n}}\n"
    );
    b.into_bytes()
}

/// The JSON re-serialization's cost for `x-signature` at ~1 KiB: "before"
/// is the same scheme without re-serialization (what 0.1 signed and how it
/// matched a raw body), "after" the preset as it is now.
fn json_fallback(c: &mut Criterion) {
    let mut g = c.benchmark_group("json/x-signature");
    let after = Scheme::preset("x-signature").unwrap();
    let before = Scheme {
        json_fallback: hookseal::JsonFallback::None,
        ..after.clone()
    };
    let secret = [secret_for("x-signature")];
    let pretty = pretty_event();
    let compact = hookseal::json::compact(&pretty).unwrap();
    let ts = Some(UnixTime::now());
    let sign = |s: &Signer, b: &[u8]| {
        s.sign(&Message {
            body: black_box(b),
            id: None,
            timestamp: ts,
        })
        .unwrap()
    };
    let (signer_before, signer_after) = (
        Signer::new(before.clone(), &secret).unwrap(),
        Signer::new(after.clone(), &secret).unwrap(),
    );
    g.bench_function("sign-before", |b| b.iter(|| sign(&signer_before, &compact)));
    g.bench_function("sign-after-compact-input", |b| {
        b.iter(|| sign(&signer_after, &compact))
    });
    g.bench_function("sign-after-pretty-input", |b| {
        b.iter(|| sign(&signer_after, &pretty))
    });
    let headers = header_map(&sign(&signer_after, &pretty).headers);
    let (verifier_before, verifier_after) = (
        Verifier::new(before, &secret).unwrap(),
        Verifier::new(after, &secret).unwrap(),
    );
    let now = UnixTime::now();
    g.bench_function("verify-before-raw-match", |b| {
        b.iter(|| {
            verifier_before
                .verify(black_box(&compact), &headers, now)
                .unwrap()
        })
    });
    g.bench_function("verify-after-raw-match", |b| {
        b.iter(|| {
            verifier_after
                .verify(black_box(&compact), &headers, now)
                .unwrap()
        })
    });
    g.bench_function("verify-after-fallback-match", |b| {
        b.iter(|| {
            verifier_after
                .verify(black_box(&pretty), &headers, now)
                .unwrap()
        })
    });
    g.bench_function("compact-only", |b| {
        b.iter(|| hookseal::json::compact(black_box(&pretty)).unwrap())
    });
    let key = key_bytes("x-signature");
    g.bench_function("hmac-floor", |b| {
        b.iter(|| floor_mac("x-signature", black_box(&key), black_box(&compact)))
    });
    g.finish();
    eprintln!(
        "json/x-signature bodies: pretty {} B, compact {} B",
        pretty.len(),
        compact.len()
    );
}

/// Standard Webhooks v1 (HMAC-SHA256) next to v1a (ed25519), 1 KiB body:
/// sign, and verify with the secret / the public key.
fn v1a(c: &mut Criterion) {
    let mut g = c.benchmark_group("v1a/standard-1KiB");
    let scheme = Scheme::preset("standard").unwrap();
    let (sk, pk) = scheme.new_keypair().unwrap();
    let hmac = Secret::new(STANDARD_SECRET).unwrap();
    let b = body(1024);
    let now = UnixTime::now();
    let msg = Message {
        body: &b,
        id: Some("msg_bench"),
        timestamp: Some(now),
    };
    for (name, signing, verifying) in [
        ("v1", hmac.clone(), hmac.clone()),
        ("v1a", sk, Secret::new(pk).unwrap()),
    ] {
        let signer = Signer::new(scheme.clone(), &[signing]).unwrap();
        g.bench_function(format!("sign-{name}"), |bch| {
            bch.iter(|| signer.sign(black_box(&msg)).unwrap())
        });
        let headers = header_map(&signer.sign(&msg).unwrap().headers);
        let verifier = Verifier::new(scheme.clone(), &[verifying]).unwrap();
        g.bench_function(format!("verify-{name}"), |bch| {
            bch.iter(|| {
                verifier
                    .verify(black_box(&b), black_box(&headers), now)
                    .unwrap()
            })
        });
    }
    g.finish();
}

/// The MAC comparison: the hand-written XOR fold it used to be (with
/// `subtle` only on the folded byte) against `subtle`'s slice `ct_eq`, which
/// it is now; equal inputs (the whole length is always read), 32 and 64 bytes.
fn compare(c: &mut Criterion) {
    use subtle::ConstantTimeEq;
    let mut g = c.benchmark_group("ct_eq");
    for n in [32usize, 64] {
        let a = vec![0x5au8; n];
        let b = a.clone();
        g.bench_function(format!("xor-fold-{n}"), |bch| {
            bch.iter(|| {
                let (a, b) = (black_box(&a), black_box(&b));
                let diff = a
                    .iter()
                    .zip(b.iter())
                    .fold(0u8, |acc, (x, y)| acc | (x ^ y));
                bool::from(diff.ct_eq(&0))
            })
        });
        g.bench_function(format!("subtle-{n}"), |bch| {
            bch.iter(|| bool::from(black_box(&a[..]).ct_eq(black_box(&b[..]))))
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(700))
        .measurement_time(Duration::from_secs(2))
        .sample_size(40)
}

criterion_group! {
    name = benches;
    config = config();
    targets = verify, sign, json_fallback, v1a, compare
}
criterion_main!(benches);
