//! Svix-powered senders write Standard Webhooks as `svix-id`,
//! `svix-timestamp`, `svix-signature`: the `standard` preset reads that
//! spelling too (its `header_aliases`), one spelling per request. The
//! signature comes from the `svix` crate, an implementation we did not write.

use hookseal::{Scheme, Secret, UnixTime, Verifier, VerifyError};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn svix_signed(id: &str, ts: i64, body: &[u8]) -> String {
    svix::webhooks::Webhook::new(SECRET)
        .unwrap()
        .sign(id, ts, body)
        .unwrap()
}

fn verifier() -> Verifier {
    Verifier::new(
        Scheme::preset("standard").unwrap(),
        &[Secret::new(SECRET).unwrap()],
    )
    .unwrap()
}

#[test]
fn svix_spelling_verifies() {
    let body = br#"{"type":"user.created"}"#;
    let ts = 1_735_421_346;
    let sig = svix_signed("msg_svix1", ts, body);
    let h = [
        ("svix-id", "msg_svix1".to_owned()),
        ("svix-timestamp", ts.to_string()),
        ("svix-signature", sig.clone()),
    ];
    verifier()
        .verify(body, &h[..], UnixTime::from_secs(ts))
        .unwrap();
    // The same under the webhook-* spelling.
    let h = [
        ("webhook-id", "msg_svix1".to_owned()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", sig),
    ];
    verifier()
        .verify(body, &h[..], UnixTime::from_secs(ts))
        .unwrap();
}

#[test]
fn one_spelling_per_request_and_a_wrong_body_still_fails() {
    let body = br#"{"type":"user.created"}"#;
    let ts = 1_735_421_346;
    let sig = svix_signed("msg_svix2", ts, body);
    let now = UnixTime::from_secs(ts);
    // svix-signature with webhook-id: the svix spelling is chosen, and its id is missing.
    let mixed = [
        ("webhook-id", "msg_svix2".to_owned()),
        ("svix-timestamp", ts.to_string()),
        ("svix-signature", sig.clone()),
    ];
    assert_eq!(
        verifier().verify(body, &mixed[..], now),
        Err(VerifyError::MissingHeader {
            name: "svix-id".into()
        })
    );
    // Both signature headers: the scheme's own spelling wins, and its id is missing.
    let both = [
        ("svix-id", "msg_svix2".to_owned()),
        ("svix-timestamp", ts.to_string()),
        ("svix-signature", sig.clone()),
        ("webhook-signature", sig.clone()),
    ];
    assert_eq!(
        verifier().verify(body, &both[..], now),
        Err(VerifyError::MissingHeader {
            name: "webhook-id".into()
        })
    );
    let h = [
        ("svix-id", "msg_svix2".to_owned()),
        ("svix-timestamp", ts.to_string()),
        ("svix-signature", sig),
    ];
    assert_eq!(
        verifier().verify(br#"{"type":"user.deleted"}"#, &h[..], now),
        Err(VerifyError::NoMatchingSignature)
    );
    // Neither spelling: the scheme's own name is reported missing.
    let none: [(&str, String); 0] = [];
    assert_eq!(
        verifier().verify(body, &none[..], now),
        Err(VerifyError::MissingHeader {
            name: "webhook-signature".into()
        })
    );
}
