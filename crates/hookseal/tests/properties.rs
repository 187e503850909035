//! Property tests for the core crate.
//!
//! - Round trips: every preset signs and verifies random bodies (raw bytes,
//!   and random JSON for the JSON-aware schemes), secrets, ids and
//!   timestamps; several secrets under the rotating schemes.
//! - Single-bit flips of the body and of every signature, id and timestamp
//!   value, over all bit positions, are rejected; the JSON fallback schemes
//!   accept a flip exactly when the contract's re-serialization makes it the
//!   signed bytes again.
//! - The replay window's edges are exact, to the millisecond.
//! - Garbage and damaged input never panics and never verifies; stored
//!   secrets and JSON bodies survive hostile input too.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hookseal::{
    json, JsonFallback, Location, Matched, Message, Scheme, Secret, ServerKey, SetupError,
    SignError, Signed, Signer, TimeUnit, UnixTime, Verified, Verifier, VerifyError, MAX_VALUE_LEN,
    PRESETS,
};
use proptest::collection::vec as pvec;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::TestCaseError;

/// Headers as they arrive: names, and raw (possibly non-UTF-8) values.
type Headers = Vec<(String, Vec<u8>)>;

/// Where a `signed-url` signature is appended; it already has a query.
const BASE_URL: &str = "https://receiver.example/hooks/in?ref=a%20b";

/// The schemes that carry a timestamp.
const TIMESTAMPED: [&str; 4] = ["native", "standard", "stripe", "slack"];

/// The schemes that carry one signature per active secret.
const ROTATING: [&str; 3] = ["standard", "native", "stripe"];

/// `cases` per test, unless `PROPTEST_CASES` asks for a longer (or shorter)
/// run.
fn cfg(cases: u32) -> ProptestConfig {
    let base = ProptestConfig::default(); // reads PROPTEST_CASES
    ProptestConfig {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            base.cases
        } else {
            cases
        },
        // Failures are reported with their minimal input; no files are written.
        failure_persistence: None,
        ..base
    }
}

fn preset(name: &str) -> Scheme {
    Scheme::preset(name).expect("every name in PRESETS is a preset")
}

fn secret(s: &str) -> Secret {
    Secret::new(s).expect("generated secrets are non-empty")
}

/// The status the contract (SCHEMES.md, "HTTP answers") gives a mismatch.
fn contract_mismatch_status(name: &str) -> u16 {
    match name {
        "x-signature" | "standard" | "native" => 400,
        "flinks" | "signed-url" => 403,
        _ => 401,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Percent-encodes every byte but RFC 3986 unreserved characters.
fn pct_encode(bytes: &[u8]) -> String {
    let mut s = String::new();
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

/// Decodes `%XX` escapes (hex digits of either case); `None` on a broken one.
fn pct_decode(text: &str) -> Option<Vec<u8>> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            if !h.bytes().all(|c| c.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Every single-bit flip of `v`, with the flipped bit's index.
fn bit_flips(v: &[u8]) -> impl Iterator<Item = (usize, Vec<u8>)> + '_ {
    (0..v.len() * 8).map(move |bit| {
        let mut f = v.to_vec();
        f[bit / 8] ^= 1 << (bit % 8);
        (bit, f)
    })
}

/// The `externalId` string of a JSON body, as the crate reads it. Wherever
/// `serde_json` (an independent parser) reads the body too, it must agree;
/// it is not the oracle itself because it rejects numbers beyond `f64`
/// (`1e310`) that `JSON.parse`, and so the contract, accept.
fn external_id_of(body: &[u8]) -> Result<Option<String>, TestCaseError> {
    let ours = json::string_field(body, "externalId").ok();
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        let theirs = v
            .get("externalId")
            .and_then(|x| x.as_str())
            .map(str::to_owned);
        prop_assert_eq!(&ours, &theirs, "{:?}", String::from_utf8_lossy(body));
    }
    Ok(ours)
}

// ---------------------------------------------------------------------------
// Random JSON, written compactly (the contract's `JSON.stringify` form) or
// "pretty": random whitespace between tokens, `\uXXXX` escapes in either hex
// case, and `\/`.

#[derive(Debug, Clone)]
enum J {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

struct Writer<'a> {
    out: Vec<u8>,
    choices: &'a [u8],
    at: usize,
    pretty: bool,
}

impl Writer<'_> {
    fn choice(&mut self) -> u8 {
        if !self.pretty || self.choices.is_empty() {
            return 0xff;
        }
        let c = self.choices[self.at % self.choices.len()];
        self.at += 1;
        c
    }

    fn ws(&mut self) {
        let c = self.choice();
        if !self.pretty {
            return;
        }
        for k in 0..c % 3 {
            self.out
                .push(b" \t\n\r"[usize::from((c >> (2 + 2 * k)) & 3)]);
        }
    }

    fn string(&mut self, s: &str) {
        self.out.push(b'"');
        for ch in s.chars() {
            let c = self.choice();
            if self.pretty && c.is_multiple_of(4) {
                let mut units = [0u16; 2];
                for u in ch.encode_utf16(&mut units) {
                    let h = if c & 0x10 != 0 {
                        format!("\\u{u:04X}")
                    } else {
                        format!("\\u{u:04x}")
                    };
                    self.out.extend_from_slice(h.as_bytes());
                }
            } else if self.pretty && ch == '/' && c % 4 == 1 {
                self.out.extend_from_slice(b"\\/");
            } else {
                compact_char(&mut self.out, ch);
            }
        }
        self.out.push(b'"');
    }

    fn value(&mut self, j: &J) {
        match j {
            J::Null => self.out.extend_from_slice(b"null"),
            J::Bool(b) => self
                .out
                .extend_from_slice(if *b { b"true" } else { b"false" }),
            J::Num(n) => {
                let spelled = number_spelling(n, self.choice());
                self.out.extend_from_slice(spelled.as_bytes())
            }
            J::Str(s) => self.string(s),
            J::Arr(items) => {
                self.out.push(b'[');
                self.ws();
                for (i, it) in items.iter().enumerate() {
                    if i > 0 {
                        self.ws();
                        self.out.push(b',');
                        self.ws();
                    }
                    self.value(it);
                }
                self.ws();
                self.out.push(b']');
            }
            J::Obj(fields) => {
                self.out.push(b'{');
                self.ws();
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        self.ws();
                        self.out.push(b',');
                        self.ws();
                    }
                    self.string(k);
                    self.ws();
                    self.out.push(b':');
                    self.ws();
                    self.value(v);
                }
                self.ws();
                self.out.push(b'}');
            }
        }
    }
}

/// The contract's compact escaping of one character.
fn compact_char(out: &mut Vec<u8>, ch: char) {
    match ch {
        '"' => out.extend_from_slice(b"\\\""),
        '\\' => out.extend_from_slice(b"\\\\"),
        '\u{8}' => out.extend_from_slice(b"\\b"),
        '\u{c}' => out.extend_from_slice(b"\\f"),
        '\n' => out.extend_from_slice(b"\\n"),
        '\r' => out.extend_from_slice(b"\\r"),
        '\t' => out.extend_from_slice(b"\\t"),
        c if (c as u32) < 0x20 => out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes()),
        c => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
    }
}

/// `j` written compactly, or pretty as `choices` dictate.
fn render(j: &J, choices: &[u8], pretty: bool) -> Vec<u8> {
    let mut w = Writer {
        out: Vec::new(),
        choices,
        at: 0,
        pretty,
    };
    w.ws();
    w.value(j);
    w.ws();
    w.out
}

fn compact(j: &J) -> Vec<u8> {
    render(j, &[], false)
}

fn json_char() -> impl Strategy<Value = char> {
    prop_oneof![
        8 => proptest::char::range('a', 'z'),
        1 => proptest::char::range('\u{0}', '\u{1f}'),
        2 => select(vec!['"', '\\', '/', '\u{7f}', 'é', '\u{2028}', '😀', ' ', 'E']),
    ]
}

fn json_str() -> impl Strategy<Value = String> {
    pvec(json_char(), 0..5).prop_map(String::from_iter)
}

/// A number as `JSON.stringify` writes it: here an integer of at most 15
/// digits, or one with a short decimal fraction that does not end in 0, so
/// this file's own compact writer needs no float printing (the Node
/// differential test covers every other number form).
fn json_num() -> impl Strategy<Value = String> {
    "0|-?[1-9][0-9]{0,9}(\\.[0-9]{0,3}[1-9])?|-?0\\.[0-9]{0,3}[1-9]"
}

/// `n` (in `JSON.stringify` form) spelled as `choice` says: as it is, with
/// trailing fraction zeros, with an exponent, or (for 0) as `-0`; every
/// spelling parses to the same double, so its compact form is `n` again.
fn number_spelling(n: &str, choice: u8) -> String {
    if choice == 0xff {
        return n.to_owned(); // compact rendering
    }
    match choice % 5 {
        1 if n == "0" => "-0.0".to_owned(),
        4 if n == "0" => "0.0e5".to_owned(),
        1 if n.contains('.') => format!("{n}00"),
        1 => format!("{n}.0"),
        2 => format!("{n}e0"),
        3 => format!("{n}E+0"),
        4 if !n.contains('.') => format!("{n}0e-1"),
        _ => n.to_owned(),
    }
}

/// Keeps the first of each key, so objects have no duplicate keys.
fn dedupe(kv: Vec<(String, J)>) -> Vec<(String, J)> {
    let mut out: Vec<(String, J)> = Vec::new();
    for (k, v) in kv {
        if !out.iter().any(|(x, _)| *x == k) {
            out.push((k, v));
        }
    }
    out
}

fn json_tree() -> BoxedStrategy<J> {
    let leaf = prop_oneof![
        Just(J::Null),
        any::<bool>().prop_map(J::Bool),
        json_num().prop_map(J::Num),
        json_str().prop_map(J::Str),
    ];
    leaf.prop_recursive(3, 10, 3, |inner| {
        prop_oneof![
            pvec(inner.clone(), 0..3).prop_map(J::Arr),
            pvec((json_str(), inner), 0..3).prop_map(|kv| J::Obj(dedupe(kv))),
        ]
    })
    .boxed()
}

/// Drives the pretty writer's whitespace and escape choices.
fn choices() -> impl Strategy<Value = Vec<u8>> {
    pvec(any::<u8>(), 1..16)
}

/// Inserts `extras` among `fields`, skipping keys already present.
fn insert_extras(fields: &mut Vec<(String, J)>, extras: Vec<(String, J)>, pos: usize) {
    for (i, (k, v)) in extras.into_iter().enumerate() {
        if !fields.iter().any(|(x, _)| *x == k) {
            let at = pos.wrapping_add(i * 7) % (fields.len() + 1);
            fields.insert(at, (k, v));
        }
    }
}

// ---------------------------------------------------------------------------
// Inputs.

/// (bytes that travel, bytes handed to the signer, this file's own compact
/// rendering of the travelling body when it is generated JSON).
type BodyCase = (Vec<u8>, Vec<u8>, Option<Vec<u8>>);

#[derive(Debug, Clone)]
struct Input {
    secret: String,
    wrong_secret: String,
    body: Vec<u8>,
    signed_body: Vec<u8>,
    compact: Option<Vec<u8>>,
    external_id: Option<String>,
    id: String,
    ts_ms: i64,
}

fn standard_secret() -> impl Strategy<Value = String> {
    pvec(any::<u8>(), 24..=64).prop_map(|b| format!("whsec_{}", B64.encode(b)))
}

/// A printable secret of at least `min` characters (ASCII or any Unicode
/// character outside the "Other" categories).
fn printable_secret(min: usize) -> BoxedStrategy<String> {
    prop_oneof![
        proptest::string::string_regex(&format!("[!-~][ -~]{{{},39}}", min - 1)).unwrap(),
        proptest::string::string_regex(&format!("\\PC{{{min},40}}")).unwrap(),
    ]
    .boxed()
}

fn secret_for(name: &str) -> BoxedStrategy<String> {
    match name {
        "standard" => standard_secret().boxed(),
        "x-signature" => printable_secret(10),
        _ => printable_secret(1),
    }
}

/// Printable ASCII without spaces, up to the 256 characters an id header
/// can carry.
fn message_id() -> impl Strategy<Value = String> {
    prop_oneof![4 => "[!-~]{1,40}", 1 => "[!-~]{250,256}"]
}

/// Unix milliseconds from the epoch to 2100.
fn timestamp_ms() -> impl Strategy<Value = i64> {
    0i64..=4_102_444_800_000
}

fn raw_body() -> impl Strategy<Value = BodyCase> {
    pvec(any::<u8>(), 0..=64).prop_map(|b| (b.clone(), b, None))
}

/// x-signature: the sender signs compact JSON; the body arrives compact or
/// pretty.
fn json_body() -> impl Strategy<Value = BodyCase> {
    (json_tree(), choices(), any::<bool>()).prop_map(|(j, ch, pretty)| {
        let c = compact(&j);
        (render(&j, &ch, pretty), c.clone(), Some(c))
    })
}

/// fincra: the sender signs compact `{event, data}`; the body arrives with
/// that payload compact or pretty, possibly reordered and with extra fields.
fn fincra_body() -> impl Strategy<Value = BodyCase> {
    (
        json_str(),
        json_tree(),
        pvec((json_str(), json_tree()), 0..3),
        any::<bool>(),
        any::<usize>(),
        choices(),
        any::<bool>(),
    )
        .prop_map(|(event, data, extras, data_first, pos, ch, pretty)| {
            let mut fields = vec![
                ("event".to_owned(), J::Str(event)),
                ("data".to_owned(), data),
            ];
            let signed = compact(&J::Obj(fields.clone()));
            if data_first {
                fields.swap(0, 1);
            }
            insert_extras(&mut fields, extras, pos);
            let sent = J::Obj(fields);
            (render(&sent, &ch, pretty), signed, Some(compact(&sent)))
        })
}

/// signed-url: a JSON object with a string `externalId` among other fields.
fn signed_url_body() -> impl Strategy<Value = (BodyCase, String)> {
    let ext = prop_oneof!["[A-Za-z0-9_-]{1,30}", json_str(), "\\PC{0,20}"];
    (
        ext,
        pvec((json_str(), json_tree()), 0..3),
        any::<usize>(),
        choices(),
        any::<bool>(),
    )
        .prop_map(|(ext, extras, pos, ch, pretty)| {
            let mut fields = vec![("externalId".to_owned(), J::Str(ext.clone()))];
            insert_extras(&mut fields, extras, pos);
            let obj = J::Obj(fields);
            let body = render(&obj, &ch, pretty);
            ((body.clone(), body, Some(compact(&obj))), ext)
        })
}

fn input(name: &'static str) -> BoxedStrategy<Input> {
    let body: BoxedStrategy<(BodyCase, Option<String>)> = match name {
        "x-signature" => prop_oneof![raw_body(), json_body()]
            .prop_map(|b| (b, None))
            .boxed(),
        "fincra" => prop_oneof![raw_body(), fincra_body()]
            .prop_map(|b| (b, None))
            .boxed(),
        "signed-url" => signed_url_body().prop_map(|(b, e)| (b, Some(e))).boxed(),
        _ => raw_body().prop_map(|b| (b, None)).boxed(),
    };
    (
        secret_for(name),
        secret_for(name),
        body,
        message_id(),
        timestamp_ms(),
    )
        .prop_filter("two different secrets", |(a, b, ..)| a != b)
        .prop_map(
            |(secret, wrong_secret, ((body, signed_body, compact), external_id), id, ts_ms)| {
                Input {
                    secret,
                    wrong_secret,
                    body,
                    signed_body,
                    compact,
                    external_id,
                    id,
                    ts_ms,
                }
            },
        )
        .boxed()
}

// ---------------------------------------------------------------------------
// Signing and verifying one request.

struct Req {
    headers: Headers,
    url: Option<String>,
    signed: Signed,
}

impl Req {
    fn verify(&self, v: &Verifier, body: &[u8], now: UnixTime) -> Result<Verified, VerifyError> {
        v.verify_request(body, &self.headers, self.url.as_deref(), now)
    }

    fn with_headers(
        &self,
        v: &Verifier,
        body: &[u8],
        h: &Headers,
        now: UnixTime,
    ) -> Result<Verified, VerifyError> {
        v.verify_request(body, h, self.url.as_deref(), now)
    }
}

fn sign_req(scheme: &Scheme, secrets: &[Secret], body: &[u8], id: &str, t: UnixTime) -> Req {
    let signer = Signer::new(scheme.clone(), secrets).expect("signer");
    let signed = signer
        .sign(&Message {
            body,
            id: Some(id),
            timestamp: Some(t),
        })
        .expect("sign");
    let headers = signed
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
        .collect();
    let url = match scheme.signature {
        Location::Query(_) => Some(signed.url(BASE_URL)),
        Location::Header(_) => None,
    };
    Req {
        headers,
        url,
        signed,
    }
}

/// Which bytes a correct signature should be found over. A re-serializing
/// signer signs the compact form of a JSON body, so a raw body that is JSON
/// but not compact is matched through its compact form.
fn expected_matched(scheme: &Scheme, inp: &Input, signed: &Signed) -> Matched {
    if scheme.json_fallback == JsonFallback::None
        || (inp.body == inp.signed_body && signed.body.is_none())
    {
        Matched::RawBody
    } else if inp.body == inp.signed_body || inp.compact.as_ref() == Some(&inp.signed_body) {
        Matched::CompactJson
    } else {
        Matched::JsonFields
    }
}

fn check_roundtrip(name: &str, inp: &Input) -> Result<(), TestCaseError> {
    let scheme = preset(name);
    let t = UnixTime::from_millis(inp.ts_ms);
    let key = [secret(&inp.secret)];
    let req = sign_req(&scheme, &key, &inp.signed_body, &inp.id, t);

    // Headers named as the scheme says, signature header first.
    let names: Vec<&str> = req.signed.headers.iter().map(|(k, _)| k.as_str()).collect();
    prop_assert_eq!(names, scheme.headers());
    prop_assert_eq!(
        req.signed.id.as_deref(),
        scheme.id_header.as_ref().map(|_| inp.id.as_str())
    );
    prop_assert_eq!(req.signed.timestamp, scheme.timestamp.as_ref().map(|_| t));

    // This file's compact rendering agrees with the crate's.
    if let Some(c) = &inp.compact {
        prop_assert_eq!(json::compact(&inp.body).ok(), Some(c.clone()));
    }

    let v = Verifier::new(scheme.clone(), &key).unwrap();
    let ok = req
        .verify(&v, &inp.body, t)
        .map_err(|e| TestCaseError::fail(format!("{name}: round trip rejected: {e:?}")))?;
    prop_assert_eq!(ok.secret_index, 0);
    prop_assert_eq!(ok.matched, expected_matched(&scheme, inp, &req.signed));
    // What the signer sends is what it signed: the compact form of a JSON
    // body under a re-serializing scheme, the bytes given otherwise.
    let sent = req.signed.body_to_send(&inp.signed_body);
    match (&scheme.json_fallback, json::compact(&inp.signed_body)) {
        (JsonFallback::None, _) | (_, Err(_)) => prop_assert_eq!(sent, &inp.signed_body[..]),
        (_, Ok(c)) => prop_assert_eq!(sent, &c[..]),
    }
    prop_assert!(req.verify(&v, sent, t).is_ok());
    let header_ts = scheme.timestamp.as_ref().map(|spec| match spec.unit {
        TimeUnit::Seconds => UnixTime::from_secs(t.as_secs()),
        TimeUnit::Milliseconds => t,
    });
    prop_assert_eq!(ok.timestamp, header_ts);

    // Header names match case-insensitively.
    let shouting: Headers = req
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_uppercase(), v.clone()))
        .collect();
    prop_assert!(req.with_headers(&v, &inp.body, &shouting, t).is_ok());

    // Another secret is rejected, with the contract's status...
    let wrong = Verifier::new(scheme.clone(), &[secret(&inp.wrong_secret)]).unwrap();
    let err = req.verify(&wrong, &inp.body, t).unwrap_err();
    prop_assert_eq!(&err, &VerifyError::NoMatchingSignature);
    prop_assert_eq!(err.status(&scheme), contract_mismatch_status(name));
    // ...and the right one found among several.
    let both = Verifier::new(scheme.clone(), &[secret(&inp.wrong_secret), key[0].clone()]).unwrap();
    prop_assert_eq!(
        req.verify(&both, &inp.body, t).map(|v| v.secret_index),
        Ok(1)
    );

    // signed-url: `sign_url` and `sign` agree, and the URL verifies.
    if let Location::Query(q) = &scheme.signature {
        let ext = inp.external_id.as_deref().unwrap();
        prop_assert_eq!(external_id_of(&inp.body)?, Some(ext.to_owned()));
        let su = Signer::new(scheme.clone(), &key)
            .unwrap()
            .sign_url(BASE_URL, Some(ext))
            .unwrap();
        prop_assert_eq!(Some(&su.url), req.url.as_ref());
        prop_assert_eq!(&su.external_id, ext);
        prop_assert_eq!(&req.signed.query, &vec![(q.clone(), su.signature.clone())]);
        prop_assert!(v.verify_url(&inp.body, &su.url, t).is_ok());
        // A sender that forgets to percent-encode `+`, `/` and `=` still
        // verifies.
        let raw = format!("{BASE_URL}&signature={}", su.signature);
        prop_assert!(v.verify_url(&inp.body, &raw, t).is_ok(), "{}", raw);
    } else {
        prop_assert!(req.signed.query.is_empty());
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Bit flips.

/// Whether a body with one bit flipped must verify: never for raw-body
/// schemes; for the JSON fallback schemes exactly when a re-serialization the
/// contract allows turns it back into the signed bytes; for `signed-url`
/// exactly when the body still carries the signed `externalId`.
fn body_flip_accepted(name: &str, inp: &Input, flipped: &[u8]) -> bool {
    let fields = ["event".to_owned(), "data".to_owned()];
    // The text the signer MACed: the compact form (fincra: of `{event,
    // data}` when the object has either) of a JSON body, else the body.
    let signed = match name {
        "x-signature" => json::compact(&inp.signed_body).unwrap_or(inp.signed_body.clone()),
        "fincra" => json::reserialize(&inp.signed_body, Some(&fields))
            .map(|r| r.signed_text().to_vec())
            .unwrap_or(inp.signed_body.clone()),
        _ => inp.signed_body.clone(),
    };
    let signed = &signed[..];
    let compact_is = |b: &[u8]| json::compact(b).is_ok_and(|c| c == signed);
    match name {
        "x-signature" => flipped == signed || compact_is(flipped),
        "fincra" => {
            flipped == signed
                || compact_is(flipped)
                || json::reserialize(flipped, Some(&fields))
                    .is_ok_and(|r| r.fields.as_deref() == Some(signed))
        }
        "signed-url" => json::string_field(flipped, "externalId").ok() == inp.external_id,
        _ => false,
    }
}

fn check_flips(name: &str, inp: &Input) -> Result<(), TestCaseError> {
    let scheme = preset(name);
    let t = UnixTime::from_millis(inp.ts_ms);
    let key = [secret(&inp.secret)];
    let req = sign_req(&scheme, &key, &inp.signed_body, &inp.id, t);
    let v = Verifier::new(scheme.clone(), &key).unwrap();
    prop_assert!(req.verify(&v, &inp.body, t).is_ok());

    // Every bit of the body.
    let fields = ["event".to_owned(), "data".to_owned()];
    for (bit, fb) in bit_flips(&inp.body) {
        let got = req.verify(&v, &fb, t);
        let model = body_flip_accepted(name, inp, &fb);
        if name == "signed-url" {
            external_id_of(&fb)?; // cross-checked against serde_json
        }
        prop_assert_eq!(got.is_ok(), model, "body bit {}: {:?}", bit, got);
        match &got {
            Ok(_) if name == "x-signature" => {
                prop_assert_eq!(json::compact(&fb).ok(), json::compact(&inp.body).ok());
            }
            Ok(_) if name == "fincra" => {
                let same_compact = json::compact(&fb).ok() == json::compact(&inp.body).ok();
                let same_projection = json::compact_fields(&fb, &fields).ok()
                    == json::compact_fields(&inp.body, &fields).ok();
                prop_assert!(same_compact || same_projection, "body bit {}", bit);
            }
            Ok(_) => {}
            Err(VerifyError::NoMatchingSignature) => {}
            Err(VerifyError::BodyNotJson(_)) if name == "signed-url" => {}
            Err(e) => prop_assert!(false, "body bit {}: unexpected {:?}", bit, e),
        }
    }

    // Every bit of every header value.
    let ts_header = scheme.timestamp.as_ref().and_then(|s| s.header.as_deref());
    for (i, (hname, value)) in req.headers.iter().enumerate() {
        for (bit, fv) in bit_flips(value) {
            let mut h = req.headers.clone();
            h[i].1 = fv.clone();
            let err = match req.with_headers(&v, &inp.body, &h, t) {
                Ok(_) => return Err(TestCaseError::fail(format!("{hname} bit {bit} accepted"))),
                Err(e) => e,
            };
            if Some(hname.as_str()) == ts_header {
                // A flip that still parses (once the spaces and tabs around
                // it are trimmed, as for every header value) is a different,
                // signed-over timestamp: a mismatch or outside the window.
                let trimmed = hookseal::trim_header_value(&fv);
                if !trimmed.is_empty() && trimmed.iter().all(u8::is_ascii_digit) {
                    prop_assert!(
                        matches!(
                            err,
                            VerifyError::NoMatchingSignature
                                | VerifyError::TimestampTooOld { .. }
                                | VerifyError::TimestampTooNew { .. }
                        ),
                        "{} bit {}: {:?}",
                        hname,
                        bit,
                        err
                    );
                } else {
                    prop_assert!(
                        matches!(&err, VerifyError::MalformedHeader { name, .. } if name == hname),
                        "{} bit {}: {:?}",
                        hname,
                        bit,
                        err
                    );
                }
            }
            if Some(hname) == scheme.id_header.as_ref() {
                prop_assert!(
                    matches!(
                        &err,
                        VerifyError::NoMatchingSignature | VerifyError::MalformedHeader { .. }
                    ),
                    "{} bit {}: {:?}",
                    hname,
                    bit,
                    err
                );
            }
        }
    }

    // Every bit of the signature query parameter.
    if let Some(url) = &req.url {
        let sig = req.signed.query[0].1.as_bytes();
        let enc = hookseal::percent_encode(&req.signed.query[0].1);
        prop_assert_eq!(url, &format!("{BASE_URL}&signature={enc}"));
        // The signature itself, whatever the flip yields, percent-encoded.
        for (bit, fs) in bit_flips(sig) {
            let u = format!("{BASE_URL}&signature={}", pct_encode(&fs));
            let got = v.verify_url(&inp.body, &u, t);
            prop_assert!(got.is_err(), "signature bit {} accepted", bit);
        }
        // The percent-encoded text as it travels: accepted exactly when it
        // still decodes to the signature (`%2B` and `%2b` are the same).
        for (bit, fe) in bit_flips(enc.as_bytes()) {
            let Ok(fe) = String::from_utf8(fe) else {
                continue; // not text, so not a URL; covered by the loop above
            };
            let u = format!("{BASE_URL}&signature={fe}");
            let got = v.verify_url(&inp.body, &u, t);
            let model = pct_decode(&fe).as_deref() == Some(sig);
            prop_assert_eq!(
                got.is_ok(),
                model,
                "encoded bit {} ({}): {:?}",
                bit,
                fe,
                got
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Garbage.

fn sig_item() -> impl Strategy<Value = String> {
    (
        select(vec!["v1", "v0", "t", "sha256", "v2", "", "V1"]),
        select(vec![",", "=", ""]),
        prop_oneof![
            pvec(any::<u8>(), 0..70).prop_map(|b| hex(&b)),
            pvec(any::<u8>(), 0..70).prop_map(|b| B64.encode(b)),
            "[0-9]{0,20}",
            "[ -~]{0,20}",
        ],
    )
        .prop_map(|(t, s, v)| format!("{t}{s}{v}"))
}

fn garbage_value() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        4 => pvec(any::<u8>(), 0..48),
        1 => Just(Vec::new()),
        1 => pvec(any::<u8>(), MAX_VALUE_LEN + 1..MAX_VALUE_LEN + 300),
        1 => (MAX_VALUE_LEN - 10..MAX_VALUE_LEN + 100, select(vec![b' ', b',', b'0', b'a']))
            .prop_map(|(n, b)| vec![b; n]),
        4 => (pvec(sig_item(), 0..24), select(vec![" ", ",", ", ", ""]))
            .prop_map(|(items, sep)| items.join(sep).into_bytes()),
        2 => "[0-9]{0,24}".prop_map(String::into_bytes),
        1 => "\\PC{0,40}".prop_map(String::into_bytes),
    ]
    .boxed()
}

fn garbage_headers(scheme: &Scheme) -> BoxedStrategy<Headers> {
    let mut names: Vec<String> = Vec::new();
    for h in scheme.headers() {
        names.push(h.to_owned());
        names.push(h.to_ascii_uppercase());
        names.push(h.to_ascii_lowercase());
    }
    names.extend(["signature", "x-unrelated", "t"].map(String::from));
    pvec((select(names), garbage_value()), 0..8).boxed()
}

fn garbage_query() -> BoxedStrategy<String> {
    let value = prop_oneof![
        "[ -~]{0,40}",
        pvec(any::<u8>(), 0..70).prop_map(|b| pct_encode(B64.encode(b).as_bytes())),
        pvec(any::<u8>(), 0..70).prop_map(|b| B64.encode(b)),
        "(%[0-9a-fA-F]{0,2}[a-z+/=]?){0,12}",
        (MAX_VALUE_LEN - 2..MAX_VALUE_LEN + 40).prop_map(|n| "A".repeat(n)),
    ];
    let pair = (
        select(vec!["signature", "Signature", "sig", "x", ""]),
        value,
    )
        .prop_map(|(k, v)| format!("{k}={v}"));
    prop_oneof![
        "\\PC{0,60}",
        (
            select(vec!["", "?", "https://r.example/cb?", "?a=1&"]),
            pvec(pair, 0..4),
            select(vec!["", "#frag", "#signature=x"]),
        )
            .prop_map(|(pre, pairs, frag)| format!("{pre}{}{frag}", pairs.join("&"))),
    ]
    .boxed()
}

fn garbage_body() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        pvec(any::<u8>(), 0..128),
        (json_tree(), choices()).prop_map(|(j, ch)| render(&j, &ch, true)),
        signed_url_body().prop_map(|((b, ..), _)| b),
    ]
    .boxed()
}

/// A fixed secret usable under `name`.
fn fixed_secret(name: &str) -> Secret {
    secret(match name {
        "standard" => "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        _ => "a-fixed-test-secret",
    })
}

fn check_garbage(
    name: &str,
    headers: &Headers,
    body: &[u8],
    query: Option<&str>,
    now: i64,
) -> Result<(), TestCaseError> {
    let scheme = preset(name);
    let v = Verifier::new(scheme, &[fixed_secret(name)]).unwrap();
    let now = UnixTime::from_millis(now);
    let got = v.verify_request(body, headers, query, now);
    prop_assert!(got.is_err(), "garbage accepted: {:?}", got);
    prop_assert!(v.verify(body, headers, now).is_err());
    if let Some(q) = query {
        prop_assert!(v.verify_url(body, q, now).is_err());
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// One round-trip, bit-flip and garbage test per preset.

macro_rules! per_preset {
    ($($test:ident: $name:literal),* $(,)?) => {
        mod roundtrip {
            use super::*;
            proptest! {
                #![proptest_config(cfg(64))]
                $(
                    #[test]
                    fn $test(inp in input($name)) {
                        check_roundtrip($name, &inp)?;
                    }
                )*
            }
        }

        mod bit_flip {
            use super::*;
            proptest! {
                #![proptest_config(cfg(64))]
                $(
                    #[test]
                    fn $test(inp in input($name)) {
                        check_flips($name, &inp)?;
                    }
                )*
            }
        }

        mod garbage {
            use super::*;
            proptest! {
                #![proptest_config(cfg(64))]
                $(
                    #[test]
                    fn $test(
                        headers in garbage_headers(&preset($name)),
                        body in garbage_body(),
                        query in proptest::option::of(garbage_query()),
                        now in any::<i64>(),
                    ) {
                        check_garbage($name, &headers, &body, query.as_deref(), now)?;
                    }
                )*
            }
        }
    };
}

per_preset! {
    native: "native",
    standard: "standard",
    x_signature: "x-signature",
    flinks: "flinks",
    fincra: "fincra",
    signed_url: "signed-url",
    stripe: "stripe",
    github: "github",
    shopify: "shopify",
    slack: "slack",
}

#[test]
fn per_preset_tests_cover_every_preset() {
    assert_eq!(PRESETS.len(), 10);
    for name in PRESETS {
        assert_eq!(preset(name).name, name);
    }
}

// ---------------------------------------------------------------------------
// Rotation.

fn distinct(list: &[String]) -> bool {
    list.iter()
        .enumerate()
        .all(|(i, a)| list[..i].iter().all(|b| a != b))
}

proptest! {
    #![proptest_config(cfg(48))]

    /// Signed with 2-3 secrets, every one of them alone verifies.
    #[test]
    fn rotation_every_secret_verifies_alone(
        b64 in pvec(standard_secret(), 4).prop_filter("distinct", |l| distinct(l)),
        plain in pvec(printable_secret(1), 4).prop_filter("distinct", |l| distinct(l)),
        n in 2usize..=3,
        body in pvec(any::<u8>(), 0..=64),
        id in message_id(),
        ts in timestamp_ms(),
    ) {
        for name in ROTATING {
            let scheme = preset(name);
            let all = if name == "standard" { &b64 } else { &plain };
            // The last one never signs: an outsider.
            let (active, outsider) = (&all[..n], &all[all.len() - 1]);
            let keys: Vec<Secret> = active.iter().map(|s| secret(s)).collect();
            let t = UnixTime::from_millis(ts);
            let req = sign_req(&scheme, &keys, &body, &id, t);

            // One signature per secret in the one signature header.
            let value = std::str::from_utf8(&req.headers[0].1).unwrap();
            let (sep, tag) = if name == "stripe" { (",", "v1=") } else { (" ", "v1,") };
            prop_assert_eq!(value.split(sep).filter(|i| i.starts_with(tag)).count(), n);

            for (i, k) in keys.iter().enumerate() {
                let alone = Verifier::new(scheme.clone(), std::slice::from_ref(k)).unwrap();
                let got = req.verify(&alone, &body, t);
                prop_assert_eq!(got.map(|v| v.secret_index), Ok(0), "{} secret {}", name, i);
                let after = Verifier::new(scheme.clone(), &[secret(outsider), k.clone()]).unwrap();
                prop_assert_eq!(req.verify(&after, &body, t).map(|v| v.secret_index), Ok(1));
            }
            let all_keys = Verifier::new(scheme.clone(), &keys).unwrap();
            prop_assert!(req.verify(&all_keys, &body, t).is_ok());
            let stranger = Verifier::new(scheme.clone(), &[secret(outsider)]).unwrap();
            prop_assert_eq!(req.verify(&stranger, &body, t).err(), Some(VerifyError::NoMatchingSignature));
        }
    }
}

#[test]
fn single_signature_schemes_sign_with_one_secret() {
    for name in PRESETS {
        let scheme = preset(name);
        let two = [fixed_secret(name), fixed_secret(name)];
        let got = Signer::new(scheme, &two);
        if ROTATING.contains(&name) {
            assert!(got.is_ok(), "{name}");
        } else {
            assert!(
                matches!(got, Err(SetupError::OneSecretOnly(ref n)) if n == name),
                "{name}: {got:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Replay window.

/// With the header naming instant `at` (ms) and a tolerance of `tol_ms`:
/// exactly `tol_ms` either way verifies, a millisecond or a second more does
/// not, with the error naming the direction.
fn check_edges(
    req: &Req,
    v: &Verifier,
    body: &[u8],
    at: i64,
    tol_ms: i64,
) -> Result<(), TestCaseError> {
    let tolerance_secs = (tol_ms / 1000) as u64;
    let at_now = |d: i64| req.verify(v, body, UnixTime::from_millis(at + d)).err();
    prop_assert_eq!(at_now(0), None);
    prop_assert_eq!(at_now(tol_ms), None, "exactly the tolerance in the past");
    prop_assert_eq!(at_now(-tol_ms), None, "exactly the tolerance in the future");
    for over in [1, 1000] {
        let d = tol_ms + over;
        prop_assert_eq!(
            at_now(d),
            Some(VerifyError::TimestampTooOld {
                age_secs: d / 1000,
                tolerance_secs
            })
        );
        prop_assert_eq!(
            at_now(-d),
            Some(VerifyError::TimestampTooNew {
                ahead_secs: d / 1000,
                tolerance_secs
            })
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(cfg(64))]

    #[test]
    fn replay_window_edges_are_exact(
        ts in timestamp_ms(),
        body in pvec(any::<u8>(), 0..=32),
        id in message_id(),
        plain in printable_secret(1),
        b64 in standard_secret(),
        tol_s in 0u64..=100_000,
        tol_extra_ms in prop_oneof![Just(0u64), 0u64..1000],
    ) {
        for name in TIMESTAMPED {
            let scheme = preset(name);
            let key = [secret(if name == "standard" { &b64 } else { &plain })];
            let t = UnixTime::from_millis(ts);
            let req = sign_req(&scheme, &key, &body, &id, t);
            // The instant the timestamp names: whole seconds except `native`.
            let at = match scheme.timestamp.as_ref().unwrap().unit {
                TimeUnit::Seconds => t.as_secs() * 1000,
                TimeUnit::Milliseconds => ts,
            };

            // Default tolerance: 300 s verifies, 301 s does not.
            let v = Verifier::new(scheme.clone(), &key).unwrap();
            check_edges(&req, &v, &body, at, 300_000)?;
            prop_assert_eq!(
                req.verify(&v, &body, UnixTime::from_millis(at + 301_000)).err(),
                Some(VerifyError::TimestampTooOld { age_secs: 301, tolerance_secs: 300 })
            );
            prop_assert_eq!(
                req.verify(&v, &body, UnixTime::from_millis(at - 301_000)).err(),
                Some(VerifyError::TimestampTooNew { ahead_secs: 301, tolerance_secs: 300 })
            );

            // A custom tolerance, possibly with a millisecond part.
            let tol = Duration::from_secs(tol_s) + Duration::from_millis(tol_extra_ms);
            let v = Verifier::new(scheme.clone(), &key).unwrap().with_tolerance(tol);
            check_edges(&req, &v, &body, at, (tol_s * 1000 + tol_extra_ms) as i64)?;
        }
    }
}

// ---------------------------------------------------------------------------
// Damaged valid requests.

proptest! {
    #![proptest_config(cfg(32))]

    /// One header of a valid request repeated, emptied, removed, oversized or
    /// made non-UTF-8: rejected, except a repeated signature header under a
    /// scheme whose signature value is a list (Standard Webhooks allows it).
    #[test]
    fn damaged_headers_are_rejected(
        which in any::<Index>(),
        body in pvec(any::<u8>(), 0..=32),
        id in message_id(),
        ts in timestamp_ms(),
        plain in printable_secret(10),
        b64 in standard_secret(),
        junk in pvec(128u8..=255, 1..4),
    ) {
        for name in PRESETS {
            let scheme = preset(name);
            let key = [secret(if name == "standard" { &b64 } else { &plain })];
            let t = UnixTime::from_millis(ts);
            let signed_body: Vec<u8>;
            let body: &[u8] = if name == "signed-url" {
                signed_body = format!("{{\"externalId\":\"{}\"}}", hex(&body)).into_bytes();
                &signed_body
            } else {
                &body
            };
            let req = sign_req(&scheme, &key, body, &id, t);
            let v = Verifier::new(scheme.clone(), &key).unwrap();
            prop_assert!(req.verify(&v, body, t).is_ok());

            if let Some(url) = &req.url {
                let sig = pct_encode(req.signed.query[0].1.as_bytes());
                let damaged = [
                    format!("{url}&signature={sig}"),
                    format!("{BASE_URL}&signature="),
                    BASE_URL.to_owned(),
                    format!("{BASE_URL}&signature={sig}{}", "%20".repeat(MAX_VALUE_LEN / 3)),
                    format!("{BASE_URL}&signature={sig}%FF"),
                    format!("{BASE_URL}&signature={sig}%F"),
                ];
                for u in damaged {
                    prop_assert!(v.verify_url(body, &u, t).is_err(), "{}", u);
                }
                prop_assert_eq!(
                    v.verify_url(body, BASE_URL, t).err(),
                    Some(VerifyError::MissingQueryParameter { name: "signature".into() })
                );
                continue;
            }

            let i = which.index(req.headers.len());
            let (hname, value) = req.headers[i].clone();
            let list_sig = i == 0 && scheme.format.list_separator.is_some();
            let malformed = |e: Option<VerifyError>| {
                matches!(e, Some(VerifyError::MalformedHeader { ref name, .. }) if *name == hname)
            };

            let mut h = req.headers.clone();
            h.push((hname.clone(), value.clone()));
            let got = req.with_headers(&v, body, &h, t);
            if list_sig && scheme.format.timestamp_tag.is_none() {
                prop_assert!(got.is_ok(), "{} repeated: {:?}", hname, got);
            } else {
                prop_assert!(malformed(got.err()), "{} repeated", hname);
            }

            let mut h = req.headers.clone();
            h[i].1.clear();
            prop_assert!(malformed(req.with_headers(&v, body, &h, t).err()), "{} empty", hname);

            let mut h = req.headers.clone();
            h.remove(i);
            prop_assert_eq!(
                req.with_headers(&v, body, &h, t).err(),
                Some(VerifyError::MissingHeader { name: hname.clone() })
            );

            let mut h = req.headers.clone();
            h[i].1.extend_from_slice(&junk);
            prop_assert!(req.with_headers(&v, body, &h, t).is_err(), "{} not UTF-8", hname);

            // Oversized: a list signature value padded with separators is
            // still valid up to the limit, and malformed one byte past it.
            let pad = match &scheme.format.list_separator {
                Some(sep) if list_sig => sep.as_bytes()[0],
                _ => b'0',
            };
            let mut h = req.headers.clone();
            h[i].1.resize(MAX_VALUE_LEN + 1, pad);
            prop_assert!(malformed(req.with_headers(&v, body, &h, t).err()), "{} oversized", hname);
            if list_sig {
                h[i].1.truncate(MAX_VALUE_LEN);
                prop_assert!(req.with_headers(&v, body, &h, t).is_ok(), "{} at the limit", hname);
            }

            // An unrelated extra header changes nothing.
            let mut h = req.headers.clone();
            h.insert(0, ("x-unrelated".into(), vec![0xff, 0]));
            prop_assert!(req.with_headers(&v, body, &h, t).is_ok());
        }
    }

    /// `signed-url` signs a field of a JSON body: arbitrary bytes sign only
    /// when they are a JSON object with a string `externalId`.
    #[test]
    fn signed_url_needs_a_json_external_id(body in garbage_body()) {
        let scheme = preset("signed-url");
        let signer = Signer::new(scheme, &[fixed_secret("signed-url")]).unwrap();
        let got = signer.sign(&Message { body: &body, id: None, timestamp: None });
        match external_id_of(&body)? {
            Some(_) => prop_assert!(got.is_ok(), "{:?}", got),
            None => prop_assert!(matches!(got, Err(SignError::BodyNotJson(_))), "{:?}", got),
        }
    }
}

#[test]
fn oversized_body_is_rejected_before_anything_else() {
    for name in PRESETS {
        let v = Verifier::new(preset(name), &[fixed_secret(name)]).unwrap();
        let body = vec![b'a'; hookseal::DEFAULT_MAX_BODY + 1];
        let none: Headers = Vec::new();
        let err = v
            .verify_request(&body, &none, None, UnixTime::from_secs(0))
            .unwrap_err();
        assert_eq!(err.status(&preset(name)), 413, "{name}");
    }
}

// ---------------------------------------------------------------------------
// Secrets at rest.

fn garbage_stored() -> BoxedStrategy<String> {
    prop_oneof![
        any::<String>(),
        "(hs1:[0-9a-f]{0,10}:)?[0-9a-fA-F]{0,30}\\.[0-9a-fA-F]{0,80}",
        "hs1:[^:]{0,8}(:[0-9a-f.:]{0,40})?",
        ("[0-9a-f]{24}", pvec(any::<u8>(), 0..64))
            .prop_map(|(iv, ct)| format!("{iv}.{}", hex(&ct))),
        (1usize..40_000).prop_map(|n| format!("{}.{}", "0".repeat(24), "ab".repeat(n))),
    ]
    .boxed()
}

proptest! {
    #![proptest_config(cfg(128))]

    #[test]
    fn decrypt_of_garbage_is_an_error(stored in garbage_stored(), key_hex in "[0-9a-f]{64}") {
        let key = ServerKey::from_hex(&key_hex).unwrap();
        prop_assert!(key.decrypt(&stored).is_err());
    }

    #[test]
    fn server_key_from_garbage_never_panics(text in prop_oneof!["\\PC{0,80}", "[0-9a-fA-F \n]{60,70}", any::<String>()]) {
        if let Ok(k) = ServerKey::from_hex(&text) {
            prop_assert_eq!(k.to_hex().to_string(), text.trim().to_ascii_lowercase());
        }
    }
}

proptest! {
    #![proptest_config(cfg(12))]

    /// Encryption round-trips, and every bit flip of the stored form is
    /// rejected (in both stored forms).
    #[test]
    fn stored_secret_tampering_is_rejected(s in printable_secret(1), key_hex in "[0-9a-f]{64}") {
        let key = ServerKey::from_hex(&key_hex).unwrap();
        let s = secret(&s);
        for stored in [key.encrypt(&s).unwrap(), key.encrypt_versioned(&s).unwrap()] {
            prop_assert_eq!(key.decrypt(&stored).ok(), Some(s.clone()));
            for (bit, f) in bit_flips(stored.as_bytes()) {
                let Ok(f) = String::from_utf8(f) else { continue };
                prop_assert!(key.decrypt(&f).is_err(), "bit {} of {}", bit, stored);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// JSON.

/// Whatever `json::compact` makes of `b`: no panic; when it succeeds, the
/// output is a fixed point and means what the input meant (read by
/// `serde_json`); when `serde_json` reads the input, so does `compact`.
/// `v` with every number as an f64 (`-0` as `0`): the value `JSON.parse`
/// holds, which is what compact JSON keeps.
fn as_doubles(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Number(n) => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            serde_json::Number::from_f64(if f == 0.0 { 0.0 } else { f })
                .map_or(Value::Null, Value::Number)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(as_doubles).collect()),
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, as_doubles(v))).collect()),
        other => other,
    }
}

fn check_compact(b: &[u8]) -> Result<(), TestCaseError> {
    let got = json::compact(b);
    let theirs = serde_json::from_slice::<serde_json::Value>(b);
    if let Ok(c) = &got {
        prop_assert_eq!(json::compact(c).ok(), Some(c.clone()));
        if let Ok(v) = &theirs {
            // serde_json (an independent parser) reads the same value back,
            // numbers compared as the doubles JavaScript holds.
            let back = serde_json::from_slice::<serde_json::Value>(c).map(as_doubles);
            prop_assert_eq!(back.ok(), Some(as_doubles(v.clone())));
        }
    }
    if theirs.is_ok() {
        prop_assert!(
            got.is_ok(),
            "serde_json reads {:?}, compact: {:?}",
            String::from_utf8_lossy(b),
            got
        );
    }
    Ok(())
}

const TOKENS: [&[u8]; 34] = [
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"\"",
    b"\"a\"",
    b"\"\\u00e9\"",
    b"\\",
    b"\\u",
    b"d83d",
    b"\\ud83d",
    b"\\ude00",
    b"0",
    b"-",
    b"1",
    b".",
    b"e",
    b"E",
    b"+",
    b"true",
    b"fals",
    b"null",
    b" ",
    b"\n",
    b"\t",
    b"\x01",
    "é".as_bytes(),
    "\u{feff}".as_bytes(),
    b"\"k\":",
    b"1.5e3",
    b"\xff",
    b"\"\\/\"",
];

proptest! {
    #![proptest_config(cfg(256))]

    #[test]
    fn compact_of_random_bytes(b in pvec(any::<u8>(), 0..256)) {
        check_compact(&b)?;
    }

    #[test]
    fn compact_of_token_soup(toks in pvec(select(TOKENS.to_vec()), 0..48)) {
        check_compact(&toks.concat())?;
    }

    #[test]
    fn compact_of_generated_json(j in json_tree(), ch in choices()) {
        let pretty = render(&j, &ch, true);
        prop_assert_eq!(json::compact(&pretty), Ok(compact(&j)));
        check_compact(&pretty)?;
    }
}

#[test]
fn compact_depth_limit_is_exact() {
    let max = json::MAX_DEPTH;
    for d in [1, 2, max - 1, max, max + 1, 1000, 200_000] {
        let arr = "[".repeat(d) + &"]".repeat(d);
        assert_eq!(
            json::compact(arr.as_bytes()).is_ok(),
            d <= max,
            "arrays {d}"
        );
        let obj = "{\"a\":".repeat(d) + "1" + &"}".repeat(d);
        assert_eq!(
            json::compact(obj.as_bytes()).is_ok(),
            d <= max,
            "objects {d}"
        );
    }
    // Unterminated and deep: no stack exhaustion.
    assert!(json::compact("[{\"a\":".repeat(500_000).as_bytes()).is_err());
}

// ---------------------------------------------------------------------------
// `http::HeaderMap` (with `--features http`).

#[cfg(feature = "http")]
mod header_map {
    use super::*;
    use http::{HeaderMap, HeaderName, HeaderValue};

    fn to_map(headers: &Headers) -> Option<HeaderMap> {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).ok()?,
                HeaderValue::from_bytes(v).ok()?,
            );
        }
        Some(map)
    }

    proptest! {
        #![proptest_config(cfg(32))]

        /// Signed headers verify from a `HeaderMap`; every bit flip that is
        /// still a valid header value is rejected; garbage is rejected.
        #[test]
        fn header_map_round_trip_flips_and_garbage(
            body in pvec(any::<u8>(), 0..=32),
            id in message_id(),
            ts in timestamp_ms(),
            plain in printable_secret(10),
            b64 in standard_secret(),
            garbage in pvec((select(vec![0usize, 1, 2]), garbage_value()), 0..6),
        ) {
            for name in PRESETS.into_iter().filter(|n| *n != "signed-url") {
                let scheme = preset(name);
                let key = [secret(if name == "standard" { &b64 } else { &plain })];
                let t = UnixTime::from_millis(ts);
                let req = sign_req(&scheme, &key, &body, &id, t);
                let v = Verifier::new(scheme.clone(), &key).unwrap();
                let map = to_map(&req.headers).unwrap();
                prop_assert!(v.verify(&body, &map, t).is_ok(), "{}", name);
                for (i, (_, value)) in req.headers.iter().enumerate() {
                    for (bit, fv) in bit_flips(value) {
                        let mut h = req.headers.clone();
                        h[i].1 = fv;
                        if let Some(m) = to_map(&h) {
                            prop_assert!(v.verify(&body, &m, t).is_err(), "{} {} bit {}", name, i, bit);
                        }
                    }
                }
                let names = scheme.headers();
                let junk: Headers = garbage
                    .iter()
                    .filter_map(|(i, v)| Some((names.get(*i)?.to_string(), v.clone())))
                    .collect();
                if let Some(m) = to_map(&junk) {
                    prop_assert!(v.verify(&body, &m, t).is_err(), "{}", name);
                }
            }
        }
    }
}
