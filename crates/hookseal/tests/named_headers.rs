//! `tests/vectors/named-headers.json` (Python's hmac, see
//! tests/vectors/gen/named.py): a described scheme whose stronger version
//! signs named headers. Each case accepted or refused for its reason; no
//! downgrade; signing reproduces the vector's header.

use std::path::PathBuf;

use hookseal::{Message, Scheme, Secret, Signer, UnixTime, Verifier};
use serde_json::Value;

fn doc() -> Value {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/named-headers.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn headers(v: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (k, x) in v.as_object().unwrap() {
        match x {
            Value::Array(xs) => out.extend(
                xs.iter()
                    .map(|x| (k.clone(), x.as_str().unwrap().to_owned())),
            ),
            x => out.push((k.clone(), x.as_str().unwrap().to_owned())),
        }
    }
    out
}

fn setup() -> (Scheme, Secret, UnixTime, Value) {
    let d = doc();
    let scheme = Scheme::from_json(&d["scheme"].to_string()).unwrap();
    let secret = Secret::new(d["secret"].as_str().unwrap()).unwrap();
    let now = UnixTime::from_secs(d["now"].as_i64().unwrap());
    (scheme, secret, now, d)
}

#[test]
fn every_case_for_its_reason() {
    let (scheme, secret, now, d) = setup();
    let verifier = Verifier::new(scheme, &[secret]).unwrap();
    for c in d["cases"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let got = verifier.verify(
            c["body"].as_str().unwrap().as_bytes(),
            &headers(&c["headers"]),
            now,
        );
        match c.get("accept") {
            Some(_) => {
                got.unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            None => {
                let e = got.expect_err(name);
                assert_eq!(e.code(), c["code"].as_str().unwrap(), "{name}: {e}");
                if let Some(h) = c["header"].as_str() {
                    assert!(e.to_string().contains(&format!("`{h}`")), "{name}: {e}");
                }
            }
        }
    }
}

#[test]
fn signing_names_the_headers_and_writes_every_version() {
    let (scheme, secret, now, d) = setup();
    let s = &d["sign"];
    let named: Vec<(String, String)> = s["named"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap().to_owned(),
                p[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let pairs: Vec<(&str, &str)> = named
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let signer = Signer::new(scheme.clone(), &[secret]).unwrap();
    let msg = Message {
        body: s["body"].as_str().unwrap().as_bytes(),
        id: None,
        timestamp: Some(now),
    };
    let signed = signer.sign_with_headers(&msg, &pairs).unwrap();
    assert_eq!(signed.headers[0].1, s["signature"].as_str().unwrap());
    // Without the headers to sign, signing refuses rather than sign nothing.
    assert_eq!(
        signer.sign(&msg).unwrap_err(),
        hookseal::SignError::SignedHeaders
    );
    // A description whose template names {headers} without `signed_headers`
    // is refused when read.
    let mut bad = d["scheme"].clone();
    bad.as_object_mut().unwrap().remove("signed_headers");
    assert!(Scheme::from_json(&bad.to_string()).is_err());
}
