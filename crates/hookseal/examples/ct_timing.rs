//! A dudect-style timing check of the MAC comparison, through the public
//! API: does `Verifier::verify` take longer when a wrong signature differs
//! from the right one late than when it differs early? Run by `bench/ct.sh`
//! (not in CI: it needs a quiet machine and minutes).
//!
//! Two classes of requests, interleaved in random order: the correct `github`
//! signature with a hex digit of its first byte changed, and with one of its
//! last byte changed (every such variant, picked at random per call).
//! Each call is timed; the slowest 10% of each class is cropped (interrupts,
//! preemption), and Welch's t statistic compares the means. dudect's
//! threshold: |t| > 4.5 means a timing difference was detected.
//!
//! Usage: ct_timing [SAMPLES (default 2,000,000)]

use std::hint::black_box;
use std::time::Instant;

use hookseal::{Message, Scheme, Secret, Signer, UnixTime, Verifier};

fn main() {
    let samples: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000_000);
    let scheme = Scheme::preset("github").expect("preset");
    let secret = Secret::new("It's a Secret to Everybody").expect("secret");
    let body = br#"{"action":"opened","number":528}"#;
    let signer = Signer::new(scheme.clone(), std::slice::from_ref(&secret)).expect("signer");
    let good = signer.sign(&Message::new(body)).expect("sign").headers[0]
        .1
        .clone();
    // "sha256=" + 64 hex digits. Class 0: a digit of the first byte
    // replaced; class 1: a digit of the last byte. Each class holds every
    // such variant (2 digits x 15 other values), one picked at random per
    // call, so no single string's layout stands for its class.
    let variants = |positions: [usize; 2]| -> Vec<Vec<(String, String)>> {
        let mut out = Vec::new();
        for pos in positions {
            for d in b"0123456789abcdef" {
                let mut s = good.clone().into_bytes();
                if s[pos] == *d {
                    continue;
                }
                s[pos] = *d;
                let v = String::from_utf8(s).expect("ascii");
                out.push(vec![("X-Hub-Signature-256".to_owned(), v)]);
            }
        }
        out
    };
    let n = good.len();
    // HOOKSEAL_CT_CONTROL=1: both classes differ early (separately built):
    // what the test reports when position cannot matter.
    let control = std::env::var_os("HOOKSEAL_CT_CONTROL").is_some();
    let classes = if control {
        [variants([7, 8]), variants([7, 8])]
    } else {
        [variants([7, 8]), variants([n - 2, n - 1])]
    };
    let verifier = Verifier::new(scheme, &[secret]).expect("verifier");
    let now = UnixTime::now();
    // xorshift for the class order (not cryptography).
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ now.as_millis() as u64;
    let mut times: [Vec<u64>; 2] = [
        Vec::with_capacity(samples / 2),
        Vec::with_capacity(samples / 2),
    ];
    for _ in 0..samples {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let c = (x & 1) as usize;
        let req = &classes[c][(x >> 8) as usize % classes[c].len()];
        let t0 = Instant::now();
        let r = verifier.verify(black_box(body), black_box(req), now);
        let dt = t0.elapsed().as_nanos() as u64;
        assert!(r.is_err(), "a changed signature never verifies");
        times[c].push(dt);
    }
    let stats = |v: &mut Vec<u64>| {
        v.sort_unstable();
        v.truncate(v.len() * 9 / 10);
        let n = v.len() as f64;
        let mean = v.iter().sum::<u64>() as f64 / n;
        let var = v.iter().map(|&t| (t as f64 - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (n, mean, var)
    };
    let [mut early, mut late] = times;
    let (n1, m1, v1) = stats(&mut early);
    let (n2, m2, v2) = stats(&mut late);
    let t = (m1 - m2) / (v1 / n1 + v2 / n2).sqrt();
    println!(
        "samples {samples}: first byte differs {m1:.1} ns (n={n1}), last byte differs {m2:.1} ns (n={n2}), Welch t = {t:.2} ({})",
        if t.abs() > 4.5 { "timing difference DETECTED" } else { "no timing difference detected" }
    );
    if t.abs() > 4.5 {
        std::process::exit(1);
    }
}
