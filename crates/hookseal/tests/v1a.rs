//! Ed25519 (Standard Webhooks `v1a`) against `tests/vectors/ed25519.json`,
//! which Python's `cryptography` computed (tests/vectors/gen/ed25519.py):
//! RFC 8032's own test vectors through a described scheme, then v1a accept,
//! reject (each for its stated reason) and bad-key cases through `standard`.

use std::path::PathBuf;

use hookseal::{
    public_key, Message, Scheme, Secret, SecretError, SetupError, Signer, UnixTime, Verifier,
};
use serde_json::Value;

fn doc() -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/ed25519.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn secrets(v: &Value) -> Vec<Secret> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|k| Secret::new(k.as_str().unwrap()).unwrap())
        .collect()
}

fn headers(v: &Value) -> Vec<(String, String)> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, x)| (k.clone(), x.as_str().unwrap().to_owned()))
        .collect()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A described scheme whose signed text is the body alone and whose
/// signatures are hex: exactly RFC 8032's message and signature.
fn rfc_scheme() -> Scheme {
    Scheme::from_json(
        r#"{"name": "rfc8032", "algorithm": "sha256", "encoding": "hex", "key": "utf8",
            "signature": {"header": "sig"},
            "format": {"tag": "hmac", "tag_separator": "=", "list_separator": " "},
            "message": "{body}", "mismatch_status": 401,
            "asymmetric": {"tag": "ed25519", "secret_prefix": "sk_", "public_prefix": "pk_"}}"#,
    )
    .unwrap()
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn rfc8032_test_vectors() {
    let d = doc();
    let now = UnixTime::from_secs(0);
    for v in d["rfc8032"].as_array().unwrap() {
        let name = v["test"].as_str().unwrap();
        let seed = hex(v["secret_key"].as_str().unwrap());
        let public = hex(v["public_key"].as_str().unwrap());
        let message = hex(v["message"].as_str().unwrap());
        let sk = Secret::new(format!("sk_{}", b64(&[seed, public.clone()].concat()))).unwrap();
        let pk = Secret::new(format!("pk_{}", b64(&public))).unwrap();
        let signer = Signer::new(rfc_scheme(), std::slice::from_ref(&sk)).unwrap();
        let signed = signer.sign(&Message::new(&message)).unwrap();
        assert_eq!(
            signed.headers[0].1,
            format!("ed25519={}", v["signature"].as_str().unwrap()),
            "{name}"
        );
        let verifier = Verifier::new(rfc_scheme(), &[pk]).unwrap();
        verifier.verify(&message, &signed.headers, now).unwrap();
        let mut other = message.clone();
        other.push(0);
        assert!(
            verifier.verify(&other, &signed.headers, now).is_err(),
            "{name}"
        );
    }
}

#[test]
fn v1a_accepts_and_signs_byte_for_byte() {
    let d = &doc()["v1a"];
    let body = d["body"].as_str().unwrap().as_bytes();
    let now = UnixTime::from_secs(d["now"].as_i64().unwrap());
    let standard = Scheme::preset("standard").unwrap();
    for v in d["accept"].as_array().unwrap() {
        let name = v["name"].as_str().unwrap();
        let h = headers(&v["headers"]);
        let verifier = Verifier::new(standard.clone(), &secrets(&v["keys"])).unwrap();
        let got = verifier
            .verify(body, &h, now)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            got.secret_index as u64,
            v["secret_index"].as_u64().unwrap(),
            "{name}"
        );
        if let Some(with) = v.get("sign_with") {
            let signer = Signer::new(standard.clone(), &secrets(with)).unwrap();
            let signed = signer
                .sign(&Message {
                    body,
                    id: v["headers"]["webhook-id"].as_str(),
                    timestamp: Some(now),
                })
                .unwrap();
            assert_eq!(
                signed.headers[0].1,
                v["headers"]["webhook-signature"].as_str().unwrap(),
                "{name}: signing reproduces the header"
            );
        }
    }
}

#[test]
fn v1a_refuses_each_attack_for_its_reason() {
    let d = &doc()["v1a"];
    let now = UnixTime::from_secs(d["now"].as_i64().unwrap());
    let standard = Scheme::preset("standard").unwrap();
    for v in d["reject"].as_array().unwrap() {
        let name = v["name"].as_str().unwrap();
        let body = v
            .get("body")
            .unwrap_or(&d["body"])
            .as_str()
            .unwrap()
            .as_bytes();
        let verifier = Verifier::new(standard.clone(), &secrets(&v["keys"])).unwrap();
        let err = verifier
            .verify(body, &headers(&v["headers"]), now)
            .expect_err(name);
        assert_eq!(err.code(), v["code"].as_str().unwrap(), "{name}: {err}");
    }
    for v in d["bad_keys"].as_array().unwrap() {
        let name = v["name"].as_str().unwrap();
        let key = Secret::new(v["key"].as_str().unwrap()).unwrap();
        match Verifier::new(standard.clone(), &[key]) {
            Err(SetupError::Secret(SecretError::Ed25519(reason))) => {
                assert_eq!(reason, v["reason"].as_str().unwrap(), "{name}")
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn a_public_key_cannot_sign_and_gives_its_own_public_key() {
    let d = &doc()["v1a"];
    let standard = Scheme::preset("standard").unwrap();
    let pk = Secret::new(d["public_key"].as_str().unwrap()).unwrap();
    let sk = Secret::new(d["signing_key"].as_str().unwrap()).unwrap();
    assert!(matches!(
        Signer::new(standard.clone(), std::slice::from_ref(&pk)),
        Err(SetupError::PublicKeyCannotSign)
    ));
    let a = standard.asymmetric.as_ref().unwrap();
    assert_eq!(
        public_key(a, &sk).unwrap(),
        d["public_key"].as_str().unwrap()
    );
    assert_eq!(
        public_key(a, &pk).unwrap(),
        d["public_key"].as_str().unwrap()
    );
    // The native scheme has no asymmetric form: whsk_ is an HMAC secret there.
    assert!(Scheme::preset("native").unwrap().asymmetric.is_none());
}
