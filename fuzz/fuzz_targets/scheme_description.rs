//! The scheme description parser (TOML or JSON). Any text: no panic. A
//! description it accepts must work end to end: a verifier and a signer
//! build from it, and what the signer writes the verifier accepts.
#![no_main]

use hookseal::{Location, Message, Scheme, Secret, Signer, UnixTime, Verifier};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(scheme) = Scheme::from_text(text) else {
        return;
    };
    if scheme.asymmetric.is_some() || matches!(scheme.signature, Location::Query(_)) {
        // Keys and signed URLs have their own targets and tests.
        return;
    }
    let secret = Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let (Ok(signer), Ok(verifier)) = (
        Signer::new(scheme.clone(), &[secret.clone()]),
        Verifier::new(scheme.clone(), &[secret]),
    ) else {
        // Too short a secret for min_secret_len, and the like: refused
        // by both alike is fine; one building and not the other is not.
        assert_eq!(
            Signer::new(scheme.clone(), &[Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()]).is_ok(),
            Verifier::new(scheme, &[Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()]).is_ok(),
            "signer and verifier disagree on a description"
        );
        return;
    };
    let body = br#"{"type":"invoice.paid","amount":1250}"#;
    let now = UnixTime::from_secs(1_735_421_346);
    let named = [("x-request-id", "req_1"), ("content-type", "application/json")];
    let signed = if scheme.signed_headers.is_some() {
        signer.sign_with_headers(
            &Message { body, id: Some("msg_1"), timestamp: Some(now) },
            &named,
        )
    } else {
        signer.sign(&Message { body, id: Some("msg_1"), timestamp: Some(now) })
    };
    let Ok(signed) = signed else {
        return;
    };
    let mut headers: Vec<(String, String)> = signed.headers.clone();
    headers.extend(named.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let sent = signed.body_to_send(body);
    if let Err(e) = verifier.verify_request(sent, &headers, None, now) {
        panic!("a description's own signature does not verify: {e} ({scheme:?}, {headers:?})");
    }
});
