//! Described schemes whose stronger version signs named headers, from
//! vectors computed by Python's hmac: `tests/vectors/named-headers.json`
//! (tests/vectors/gen/named.py, hookseal's default rendering) and
//! `tests/vectors/hook0.json` (tests/vectors/gen/hook0.py, Hook0's
//! `X-Hook0-Signature`, with Hook0's own published signatures). Each case
//! accepted or refused for its reason; no downgrade; signing reproduces the
//! vector's header.

use std::path::PathBuf;

use hookseal::{Message, Scheme, Secret, Signer, UnixTime, Verifier};
use serde_json::Value;

const FILES: [&str; 2] = ["named-headers.json", "hook0.json"];

fn doc(file: &str) -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/vectors")
        .join(file);
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

fn setup(file: &str) -> (Scheme, Secret, UnixTime, Value) {
    let d = doc(file);
    let scheme = Scheme::from_json(&d["scheme"].to_string()).unwrap();
    let secret = Secret::new(d["secret"].as_str().unwrap()).unwrap();
    let now = UnixTime::from_secs(d["now"].as_i64().unwrap());
    (scheme, secret, now, d)
}

#[test]
fn every_case_for_its_reason() {
    for file in FILES {
        let (scheme, secret, now, d) = setup(file);
        check_cases(&Verifier::new(scheme, &[secret]).unwrap(), now, &d["cases"]);
    }
}

fn check_cases(verifier: &Verifier, now: UnixTime, cases: &Value) {
    for c in cases.as_array().unwrap() {
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

fn named(s: &Value) -> Vec<(String, String)> {
    s["named"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap().to_owned(),
                p[1].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Signing `s["body"]` at `now` with `s["named"]` writes `signature`.
fn sign_named(signer: &Signer, now: UnixTime, s: &Value) -> String {
    let named = named(s);
    let pairs: Vec<(&str, &str)> = named
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let msg = Message {
        body: s["body"].as_str().unwrap().as_bytes(),
        id: None,
        timestamp: Some(now),
    };
    signer.sign_with_headers(&msg, &pairs).unwrap().headers[0]
        .1
        .clone()
}

#[test]
fn signing_names_the_headers_and_writes_every_version() {
    for file in FILES {
        signing_writes_the_vector(file);
    }
}

fn signing_writes_the_vector(file: &str) {
    let (scheme, secret, now, d) = setup(file);
    let s = &d["sign"];
    let signer = Signer::new(scheme.clone(), &[secret]).unwrap();
    assert_eq!(
        sign_named(&signer, now, s),
        s["signature"].as_str().unwrap(),
        "{file}"
    );
    let msg = Message {
        body: s["body"].as_str().unwrap().as_bytes(),
        id: None,
        timestamp: Some(now),
    };
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

/// Hook0's own test signatures verify under the description, each with its
/// secret and time, and the one with both versions is what signing writes.
#[test]
fn hook0s_published_signatures() {
    let d = doc("hook0.json");
    let scheme = Scheme::from_json(&d["scheme"].to_string()).unwrap();
    let published = d["published"].as_array().unwrap();
    assert_eq!(published.len(), 3);
    for p in published {
        let secret = Secret::new(p["secret"].as_str().unwrap()).unwrap();
        let now = UnixTime::from_secs(p["now"].as_i64().unwrap());
        let c = serde_json::json!([{"name": p["name"], "body": p["body"], "headers": p["headers"], "accept": 0}]);
        let verifier = Verifier::new(scheme.clone(), std::slice::from_ref(&secret)).unwrap();
        check_cases(&verifier, now, &c);
        if p.get("named").is_some() {
            let signer = Signer::new(scheme.clone(), &[secret]).unwrap();
            assert_eq!(
                sign_named(&signer, now, p),
                p["headers"]["X-Hook0-Signature"].as_str().unwrap()
            );
        }
    }
}

/// `order` names every tag of the list once; a space separates names only
/// where it is not the list separator; `{header_names}` needs the names
/// item.
#[test]
fn hook0s_description_is_checked() {
    let d = doc("hook0.json");
    let refused = |f: &dyn Fn(&mut Value)| {
        let mut s = d["scheme"].clone();
        f(&mut s);
        Scheme::from_json(&s.to_string()).is_err()
    };
    assert!(!refused(&|_| {}));
    assert!(refused(
        &|s| s["format"]["order"] = serde_json::json!(["t", "v0", "v1"])
    ));
    assert!(refused(
        &|s| s["format"]["order"] = serde_json::json!(["t", "v0", "h", "v1", "v1"])
    ));
    assert!(refused(
        &|s| s["format"]["order"] = serde_json::json!(["t", "v0", "h", "v2"])
    ));
    assert!(refused(&|s| s["format"]["list_separator"] = " ".into()));
    assert!(refused(&|s| s["signed_headers"]["each"] = "{name}".into()));
    assert!(refused(
        &|s| s["signed_headers"]["each"] = "{value}{id}".into()
    ));
    assert!(refused(&|s| {
        s.as_object_mut().unwrap().remove("signed_headers");
        s["stronger"][0]["message"] = "{timestamp}.{header_names}.{body}".into();
    }));
}
