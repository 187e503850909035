//! The refusal table is one: `REFUSALS`. The docs that show it (this
//! crate's documentation, the README) hold its text, and every way the
//! wing refuses a request (each `Rejection` constructor, each
//! `VerifyError` under every preset) answers a status and code the table
//! lists. (Before 0.3.0 the table stood in four documents and the crate's
//! copy lacked 431 and `missing_signed_header`.)

use axum::http::StatusCode;
use hookseal::{JsonError, Scheme, VerifyError, PRESETS};
use hookseal_axum::{refusal_table, Rejection, REFUSALS};

fn root(path: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn the_crate_docs_and_the_readme_show_the_one_table() {
    let table = refusal_table();
    let docs: String = root("src/lib.rs")
        .lines()
        .filter_map(|l| l.strip_prefix("//! |"))
        .map(|l| format!("|{l}\n"))
        .collect();
    assert_eq!(docs, table, "src/lib.rs's table differs from REFUSALS");
    assert!(
        root("../../README.md").contains(&table),
        "README.md does not hold REFUSALS' table:\n{table}"
    );
}

/// The row of `code`: (status, or None for the scheme's).
fn row(code: &str) -> Option<u16> {
    let r = REFUSALS
        .iter()
        .find(|r| r.codes.contains(&code))
        .unwrap_or_else(|| panic!("`{code}` is not in REFUSALS"));
    r.status
}

fn assert_listed(r: &Rejection, scheme: Option<&Scheme>) {
    match (row(r.code()), scheme) {
        (Some(s), _) => assert_eq!(r.status().as_u16(), s, "{}", r.code()),
        (None, Some(scheme)) => assert_eq!(r.status().as_u16(), scheme.mismatch_status),
        (None, None) => panic!("`{}` has the scheme's status", r.code()),
    }
}

#[test]
fn every_constructor_answers_what_the_table_says() {
    for r in [
        Rejection::body_too_large(10),
        Rejection::headers_too_large(70_000, 3),
        Rejection::replayed("evt_1"),
        Rejection::replay_store_unavailable(),
        Rejection::method_not_allowed(),
        Rejection::not_found(),
    ] {
        assert_listed(&r, None);
    }
    // The codes made with Rejection::new inside the wing.
    assert_eq!(
        row("body_unreadable"),
        Some(StatusCode::BAD_REQUEST.as_u16())
    );
    assert_eq!(
        row("receiver_not_configured"),
        Some(StatusCode::INTERNAL_SERVER_ERROR.as_u16())
    );
}

/// One of each VerifyError (a match without a wildcard: a new variant
/// does not compile until it is listed here).
fn every_verify_error() -> Vec<VerifyError> {
    let all = vec![
        VerifyError::MissingHeader { name: "h".into() },
        VerifyError::MalformedHeader {
            name: "h".into(),
            reason: "r",
        },
        VerifyError::MissingSignedHeader { name: "h".into() },
        VerifyError::MissingQueryParameter { name: "q".into() },
        VerifyError::MalformedQueryParameter {
            name: "q".into(),
            reason: "r",
        },
        VerifyError::BodyNotJson(JsonError::TooDeep),
        VerifyError::BodyTooLarge { limit: 1 },
        VerifyError::TimestampTooOld {
            age_secs: 400,
            tolerance_secs: 300,
        },
        VerifyError::TimestampTooNew {
            ahead_secs: 400,
            tolerance_secs: 300,
        },
        VerifyError::NoMatchingSignature,
    ];
    for e in &all {
        match e {
            VerifyError::MissingHeader { .. }
            | VerifyError::MalformedHeader { .. }
            | VerifyError::MissingSignedHeader { .. }
            | VerifyError::MissingQueryParameter { .. }
            | VerifyError::MalformedQueryParameter { .. }
            | VerifyError::BodyNotJson(_)
            | VerifyError::BodyTooLarge { .. }
            | VerifyError::TimestampTooOld { .. }
            | VerifyError::TimestampTooNew { .. }
            | VerifyError::NoMatchingSignature => {}
        }
    }
    all
}

#[test]
fn every_verify_error_answers_what_the_table_says_under_every_preset() {
    for name in PRESETS {
        let scheme = Scheme::preset(name).unwrap();
        for e in every_verify_error() {
            assert_listed(&Rejection::verify(&e, &scheme), Some(&scheme));
        }
    }
}
