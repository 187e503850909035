//! Every vector in `tests/vectors/` (a copy of `../shared/vectors/`, checked
//! by `.ci/run`) reproduced: signed where the vector allows, verified always.

use std::path::PathBuf;

use hookseal::{json, Location, Message, Scheme, Secret, ServerKey, Signer, UnixTime, Verifier};
use serde_json::Value;

fn load(name: &str) -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/vectors")
        .join(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap()
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("vector lacks string `{k}`: {v}"))
}

/// Checks one scheme vector; returns how many sign checks it made.
fn check(v: &Value) -> usize {
    let scheme = Scheme::preset(s(v, "scheme")).unwrap();
    let secret = Secret::new(s(v, "secret")).unwrap();
    let body = s(v, "body").as_bytes();
    let now = UnixTime::from_secs(v["now"].as_i64().unwrap_or(0));
    let reject = v["expect"].as_str() == Some("reject");
    let verifier = Verifier::new(scheme.clone(), std::slice::from_ref(&secret)).unwrap();
    let signer = Signer::new(scheme.clone(), &[secret]).unwrap();

    if let Location::Query(_) = scheme.signature {
        let url = s(v, "url");
        let got = verifier.verify_url(body, url, now);
        assert_eq!(got.is_err(), reject, "verify {v}: {got:?}");
        let base = url.split_once('?').unwrap().0;
        let signed = signer.sign_url(base, Some(s(v, "external_id"))).unwrap();
        assert_eq!(signed.url, url);
        assert_eq!(signed.signature, s(v, "signature"));
        return 1;
    }

    let headers: Vec<(String, String)> = v["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, x)| (k.clone(), x.as_str().unwrap().to_owned()))
        .collect();
    let got = verifier.verify(body, &headers, now);
    assert_eq!(got.is_err(), reject, "verify {v}: {got:?}");
    if reject {
        return 0;
    }

    // Sign the same message and expect the same headers, byte for byte.
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, x)| x.as_str())
    };
    let timestamp =
        scheme
            .timestamp
            .as_ref()
            .map(|spec| match spec.header.as_deref().and_then(header) {
                Some(t) => match spec.unit {
                    hookseal::TimeUnit::Seconds => UnixTime::from_secs(t.parse().unwrap()),
                    hookseal::TimeUnit::Milliseconds => UnixTime::from_millis(t.parse().unwrap()),
                },
                None => now,
            });
    // A body that arrives pretty-printed was signed in its compact form:
    // the signer of a re-serializing scheme sends and signs that form.
    let signed = signer
        .sign(&Message {
            body,
            id: scheme.id_header.as_deref().and_then(header),
            timestamp,
        })
        .unwrap();
    if scheme.json_fallback != hookseal::JsonFallback::None {
        assert_eq!(signed.body_to_send(body), json::compact(body).unwrap());
    } else {
        assert_eq!(signed.body, None, "{v}");
    }
    assert_eq!(signed.headers.len(), headers.len(), "{v}");
    for (k, x) in &signed.headers {
        assert_eq!(header(k), Some(x.as_str()), "header {k} of {v}");
    }
    1
}

#[test]
fn scheme_vectors() {
    let doc = load("schemes.json");
    let vs = doc["schemes"].as_array().unwrap();
    let mut seen: Vec<&str> = Vec::new();
    let mut signed = 0;
    for v in vs {
        signed += check(v);
        seen.push(s(v, "scheme"));
    }
    for name in hookseal::PRESETS {
        assert!(seen.contains(&name), "no vector for {name}");
    }
    assert_eq!(signed, vs.len());
}

#[test]
fn published_vectors() {
    let doc = load("published.json");
    let vs = doc["vectors"].as_array().unwrap();
    let rejects = vs.iter().filter(|v| v["expect"] == "reject").count();
    let signed: usize = vs.iter().map(check).sum();
    assert_eq!(signed + rejects, vs.len());
    assert!(rejects >= 2);
}

#[test]
fn secret_vectors_decrypt_and_hash() {
    let doc = load("schemes.json");
    let secrets = doc["secrets"].as_array().unwrap();
    assert!(!secrets.is_empty());
    for v in secrets {
        let key = ServerKey::from_hex(s(v, "server_key_hex")).unwrap();
        let secret = key.decrypt(s(v, "stored")).unwrap();
        assert_eq!(secret.expose(), s(v, "secret"));
        assert_eq!(secret.hash_hex(), s(v, "hash"));
        // A fresh encryption decrypts back and differs from the stored one.
        let again = key.encrypt(&secret).unwrap();
        assert_ne!(again, s(v, "stored"));
        assert_eq!(key.decrypt(&again).unwrap(), secret);
    }
}

/// `json-stringify.json`: every body verifies from `raw` under both
/// re-serializing schemes, and signing `raw` sends `canonical` with the
/// vector's signature.
#[test]
fn json_stringify_vectors() {
    let doc = load("json-stringify.json");
    let secret = Secret::new(s(&doc, "secret")).unwrap();
    let vs = doc["vectors"].as_array().unwrap();
    assert!(vs.len() >= 20);
    let now = UnixTime::from_secs(0);
    for scheme_name in ["x-signature", "fincra"] {
        let scheme = Scheme::preset(scheme_name).unwrap();
        let header = scheme.signature_header().unwrap().to_owned();
        let verifier = Verifier::new(scheme.clone(), std::slice::from_ref(&secret)).unwrap();
        let signer = Signer::new(scheme, std::slice::from_ref(&secret)).unwrap();
        for v in vs {
            let (raw, canonical) = (s(v, "raw").as_bytes(), s(v, "canonical").as_bytes());
            let sig = s(v, scheme_name);
            assert_eq!(json::compact(raw).unwrap(), canonical, "{v}");
            let headers = [(header.as_str(), sig)];
            let got = verifier.verify(raw, &headers, now);
            assert!(got.is_ok(), "{scheme_name} verify {v}: {got:?}");
            assert!(verifier.verify(canonical, &headers, now).is_ok());
            let signed = signer.sign(&Message::new(raw)).unwrap();
            assert_eq!(signed.body_to_send(raw), canonical, "{scheme_name} {v}");
            assert_eq!(signed.body.is_some(), raw != canonical);
            assert_eq!(signed.headers, vec![(header.clone(), sig.to_owned())]);
        }
    }
}
