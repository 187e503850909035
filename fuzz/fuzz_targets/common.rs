//! Shared by the fuzz targets: the verifiers under test and input splitting.
#![allow(dead_code)]

use std::sync::OnceLock;
use std::time::Duration;

use hookseal::{Location, Scheme, Secret, Verifier};

/// A base64 `whsec_` secret every preset takes.
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The v1a vectors' public key.
pub const PUBLIC_KEY: &str = "whpk_PBaFwmp6RhOeQ0U6nDxkfMLqkw8M8ss0Ap48VlrPDV8=";
/// The described scheme with a stronger version over named headers.
pub const NAMED: &str = include_str!("../../tests/vectors/named-headers.json");
/// Hook0's scheme as a description (names joined by a space, values by `.`).
pub const HOOK0: &str = include_str!("../../tests/vectors/hook0.json");
/// The vectors' "now": timestamps near it are within the tolerance.
pub const NOW: i64 = 1_735_421_346;

/// Every preset with a shared secret, `standard` with a v1a public key and
/// with a secret and a public key (mixed lists), and the named-headers and
/// Hook0 descriptions.
pub fn verifiers() -> &'static [Verifier] {
    static V: OnceLock<Vec<Verifier>> = OnceLock::new();
    V.get_or_init(|| {
        let secret = Secret::new(SECRET).unwrap();
        let mut out: Vec<Verifier> = hookseal::PRESETS
            .iter()
            .map(|name| Verifier::new(Scheme::preset(name).unwrap(), &[secret.clone()]).unwrap())
            .collect();
        let standard = Scheme::preset("standard").unwrap();
        let public = Secret::new(PUBLIC_KEY).unwrap();
        out.push(Verifier::new(standard.clone(), &[public.clone()]).unwrap());
        out.push(Verifier::new(standard, &[secret, public]).unwrap());
        for text in [NAMED, HOOK0] {
            let doc: serde_json::Value = serde_json::from_str(text).unwrap();
            let named = Scheme::from_text(&doc["scheme"].to_string()).unwrap();
            let named_secret = Secret::new(doc["secret"].as_str().unwrap()).unwrap();
            out.push(Verifier::new(named, &[named_secret]).unwrap());
        }
        out.into_iter()
            .map(|v| v.with_tolerance(Duration::from_secs(300)))
            .collect()
    })
}

/// The header names a scheme reads: signature, timestamp, id, aliases.
pub fn header_names(scheme: &Scheme) -> Vec<String> {
    let mut names = Vec::new();
    if let Location::Header(h) = &scheme.signature {
        names.push(h.clone());
    }
    if let Some(h) = scheme.timestamp.as_ref().and_then(|t| t.header.clone()) {
        names.push(h);
    }
    if let Some(h) = &scheme.id_header {
        names.push(h.clone());
    }
    if scheme.header_aliases.is_some() {
        names.extend(["svix-signature", "svix-timestamp", "svix-id"].map(String::from));
    }
    if scheme.signed_headers.is_some() {
        names.extend(["x-request-id", "content-type", "x-event-id", "x-event-type"].map(String::from));
    }
    names
}

/// `data` cut at 0xFF bytes into at most `n` parts (the last takes the rest).
pub fn split(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut parts = Vec::with_capacity(n);
    let mut rest = data;
    while parts.len() + 1 < n {
        match rest.iter().position(|&b| b == 0xFF) {
            Some(i) => {
                parts.push(&rest[..i]);
                rest = &rest[i + 1..];
            }
            None => break,
        }
    }
    parts.push(rest);
    while parts.len() < n {
        parts.push(&[]);
    }
    parts
}
