//! `tests/vectors/attacks.json` (computed by Python's hmac, see
//! tests/vectors/gen/attacks.py): every case accepted with the right secret
//! or refused for its stated reason, naming the stated header.

use std::path::PathBuf;

use hookseal::{Scheme, Secret, SecretError, SetupError, UnixTime, Verifier};
use serde_json::Value;

fn doc() -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/attacks.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// Header pairs; a list value is the header sent several times.
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

#[test]
fn every_case_for_its_reason() {
    let d = doc();
    let mut refused = 0;
    for c in d["cases"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let secrets: Vec<Secret> = c["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| Secret::new(s.as_str().unwrap()).unwrap())
            .collect();
        let verifier = Verifier::new(
            Scheme::preset(c["scheme"].as_str().unwrap()).unwrap(),
            &secrets,
        )
        .unwrap();
        let got = verifier.verify(
            c["body"].as_str().unwrap().as_bytes(),
            &headers(&c["headers"]),
            UnixTime::from_secs(c["now"].as_i64().unwrap()),
        );
        match c.get("accept") {
            Some(i) => {
                let v = got.unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(v.secret_index as u64, i.as_u64().unwrap(), "{name}");
            }
            None => {
                let e = got.expect_err(name);
                assert_eq!(e.code(), c["code"].as_str().unwrap(), "{name}: {e}");
                if let Some(h) = c["header"].as_str() {
                    assert!(
                        e.to_string().contains(&format!("`{h}`")),
                        "{name}: {e} names {h}"
                    );
                }
                refused += 1;
            }
        }
    }
    assert!(refused >= 25, "{refused} refusals checked");
    for b in d["bad_secrets"].as_array().unwrap() {
        let why = b["why"].as_str().unwrap();
        let got = Secret::new(b["secret"].as_str().unwrap())
            .map_err(SetupError::from)
            .and_then(|s| {
                Verifier::new(Scheme::preset(b["scheme"].as_str().unwrap()).unwrap(), &[s])
                    .map(drop)
            });
        let reason = match got {
            Err(SetupError::Secret(SecretError::NotBase64)) => "not_base64",
            Err(SetupError::Secret(SecretError::TooShort { .. })) => "too_short",
            Err(SetupError::Secret(SecretError::Empty)) => "empty",
            other => panic!("{why}: {other:?}"),
        };
        assert_eq!(reason, b["reason"].as_str().unwrap(), "{why}");
    }
}
