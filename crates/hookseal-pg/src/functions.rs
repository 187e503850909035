//! The SQL-callable functions. Each parses its arguments, calls the core and
//! maps errors; none computes a MAC or touches AES-GCM itself.
//!
//! Public (granted to the extension's roles): `webhook_sign`,
//! `webhook_verify`, `webhook_verify_reason`, `secret_hash`, `new_id`,
//! `event_body`, `scheme_exists`. Internal (`_`-prefixed, PUBLIC revoked, reached
//! only through `SECURITY DEFINER` SQL functions): `_new_secret`,
//! `_encrypt_secret`, `_decrypt_secret`, `_sign_stored`, `_rewrap`,
//! `_needs_rewrap`.

use std::cell::RefCell;
use std::convert::Infallible;
use std::time::Duration;

use hookseal_core::{
    json, new_id as core_new_id, IdKind, Location, Message, Scheme, Secret, Signed, Signer,
    UnixTime, Verifier, VerifyError,
};
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::Value;
use zeroize::Zeroizing;

use crate::errors::{invalid, storage};
use crate::keys::with_keyring;

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;
/// Cached signers and verifiers per session, at most this many each.
const CACHE_SIZE: usize = 64;

fn unix(ts: TimestampWithTimeZone) -> UnixTime {
    let us: i64 = ts.into();
    UnixTime::from_millis(us.saturating_add(PG_EPOCH_OFFSET_US).div_euclid(1000))
}

/// `ts` as a signing time: `infinity` and `-infinity` are refused (they
/// used to sign the clamped timestamp 9223372036854775).
fn signing_time(ts: Option<TimestampWithTimeZone>) -> Option<UnixTime> {
    ts.map(|t| {
        if t.is_infinity() || t.is_neg_infinity() {
            invalid("the signing timestamp must be finite (got infinity)")
        }
        unix(t)
    })
}

/// A preset name or a scheme description (JSON or TOML), validated: what
/// every `scheme` argument and `endpoints.scheme` hold.
fn scheme(text: &str) -> Scheme {
    Scheme::from_text(text).unwrap_or_else(|e| invalid(e))
}

fn secret(s: &str) -> Secret {
    Secret::new(s).unwrap_or_else(|e| invalid(e))
}

/// One cached signer or verifier: what it was built from (secrets zeroed
/// when evicted) and the prepared value.
struct Entry<T> {
    tag: String,
    secrets: Vec<Zeroizing<String>>,
    value: T,
}

/// A small per-session cache, searched without allocating: at most
/// [`CACHE_SIZE`] entries, the oldest evicted first.
type Cache<T> = RefCell<Vec<Entry<T>>>;

thread_local! {
    static SIGNERS: Cache<Signer> = const { RefCell::new(Vec::new()) };
    static VERIFIERS: Cache<Verifier> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with the cached value for `(tag, secrets)`, building it with
/// `make` on a miss. `make` may raise a Postgres ERROR; no borrow is held
/// while it runs.
fn with_cached<T, S: AsRef<str>, R>(
    cache: &'static std::thread::LocalKey<Cache<T>>,
    tag: &str,
    secrets: &[S],
    make: impl FnOnce() -> T,
    f: impl FnOnce(&T) -> R,
) -> R {
    let Ok(r) = try_with_cached(cache, tag, secrets, || Ok::<T, Infallible>(make()), f);
    r
}

/// [`with_cached`] with a `make` that can fail: nothing is cached then
/// (a failure is retried at the next call, e.g. once a key file is fixed).
fn try_with_cached<T, S: AsRef<str>, R, E>(
    cache: &'static std::thread::LocalKey<Cache<T>>,
    tag: &str,
    secrets: &[S],
    make: impl FnOnce() -> Result<T, E>,
    f: impl FnOnce(&T) -> R,
) -> Result<R, E> {
    let matches = |e: &Entry<T>| {
        e.tag == tag
            && e.secrets.len() == secrets.len()
            && e.secrets
                .iter()
                .zip(secrets)
                .all(|(a, b)| a.as_str() == b.as_ref())
    };
    let hit = cache.with(|c| c.borrow().iter().rposition(matches));
    let index = match hit {
        Some(i) => i,
        None => {
            let value = make()?;
            cache.with(|c| {
                let mut c = c.borrow_mut();
                if c.len() >= CACHE_SIZE {
                    c.remove(0);
                }
                c.push(Entry {
                    tag: tag.to_owned(),
                    secrets: secrets
                        .iter()
                        .map(|s| Zeroizing::new(s.as_ref().to_owned()))
                        .collect(),
                    value,
                });
                c.len() - 1
            })
        }
    };
    Ok(cache.with(|c| f(&c.borrow()[index].value)))
}

fn with_signer<R>(scheme_name: &str, secrets: &[&str], f: impl FnOnce(&Signer) -> R) -> R {
    with_cached(
        &SIGNERS,
        scheme_name,
        secrets,
        || {
            let s: Vec<Secret> = secrets.iter().map(|s| secret(s)).collect();
            Signer::new(scheme(scheme_name), &s).unwrap_or_else(|e| invalid(e))
        },
        f,
    )
}

/// Signed headers as `jsonb`, written as JSON text and parsed once by
/// `jsonb_in` (no intermediate `serde_json::Value`).
pub struct HeadersJson(Vec<u8>);

pgrx::impl_sql_translatable!(HeadersJson, "jsonb");

impl IntoDatum for HeadersJson {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        // Header names and values are printable ASCII: no NUL can occur.
        let mut bytes = self.0;
        bytes.push(0);
        let text = std::ffi::CString::from_vec_with_nul(bytes).ok()?;
        // SAFETY: `jsonb_in` takes one cstring argument, which lives until it
        // returns; it copies what it keeps.
        unsafe {
            pgrx::direct_function_call_as_datum(pg_sys::jsonb_in, &[Some(text.as_ptr().into())])
        }
    }

    fn type_oid() -> pg_sys::Oid {
        pg_sys::JSONBOID
    }
}

// SAFETY: the datum returned is the one `into_datum` built, or NULL.
unsafe impl pgrx::callconv::BoxRet for HeadersJson {
    unsafe fn box_into<'fcx>(
        self,
        fcinfo: &mut pgrx::callconv::FcInfo<'fcx>,
    ) -> pgrx::datum::Datum<'fcx> {
        match self.into_datum() {
            Some(d) => unsafe { fcinfo.return_raw_datum(d) },
            None => fcinfo.return_null(),
        }
    }
}

fn sign(signer: &Signer, body: &[u8], id: Option<&str>, ts: Option<UnixTime>) -> Signed {
    signer
        .sign(&Message {
            body,
            id,
            timestamp: ts,
        })
        .unwrap_or_else(|e| invalid(e))
}

/// The signed headers as a JSON object (a scheme whose signature is a query
/// parameter gets that parameter as a member).
fn sign_to_json(
    signer: &Signer,
    body: &[u8],
    id: Option<&str>,
    ts: Option<UnixTime>,
) -> HeadersJson {
    headers_json(&sign(signer, body, id, ts))
}

fn headers_json(signed: &Signed) -> HeadersJson {
    let mut out = Vec::with_capacity(160);
    out.push(b'{');
    for (i, (k, v)) in signed.headers.iter().chain(&signed.query).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json::push_string(&mut out, k);
        out.push(b':');
        json::push_string(&mut out, v);
    }
    out.push(b'}');
    HeadersJson(out)
}

/// Signs a text body with one secret: the headers to send, as `jsonb`.
/// `x-signature` and `fincra` sign the compact JSON form of a JSON body;
/// `webhook_sign_message` returns that body with the headers.
/// `id` defaults to a fresh `evt_` id, `ts` to the transaction time. A NULL
/// scheme, secret or body gives NULL.
#[pg_extern(volatile, parallel_safe, name = "webhook_sign")]
fn webhook_sign_text(
    scheme: Option<&str>,
    secret: Option<&str>,
    body: Option<&str>,
    id: default!(Option<&str>, "NULL"),
    ts: default!(Option<TimestampWithTimeZone>, "now()"),
) -> Option<HeadersJson> {
    let body = body?.as_bytes();
    let ts = signing_time(ts);
    Some(with_signer(scheme?, &[secret?], |s| {
        sign_to_json(s, body, id, ts)
    }))
}

/// `webhook_sign` for a `bytea` body.
#[pg_extern(volatile, parallel_safe, name = "webhook_sign")]
fn webhook_sign_bytea(
    scheme: Option<&str>,
    secret: Option<&str>,
    body: Option<&[u8]>,
    id: default!(Option<&str>, "NULL"),
    ts: default!(Option<TimestampWithTimeZone>, "now()"),
) -> Option<HeadersJson> {
    let body = body?;
    let ts = signing_time(ts);
    Some(with_signer(scheme?, &[secret?], |s| {
        sign_to_json(s, body, id, ts)
    }))
}

/// `webhook_sign` with several active secrets (rotation): one signature per
/// secret where the scheme carries a list.
#[pg_extern(volatile, parallel_safe, name = "webhook_sign")]
fn webhook_sign_multi(
    scheme: Option<&str>,
    secrets: Option<Vec<Option<String>>>,
    body: Option<&str>,
    id: default!(Option<&str>, "NULL"),
    ts: default!(Option<TimestampWithTimeZone>, "now()"),
) -> Option<HeadersJson> {
    let secrets: Vec<String> = secrets?.into_iter().flatten().collect();
    let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let body = body?.as_bytes();
    let ts = signing_time(ts);
    Some(with_signer(scheme?, &refs, |s| {
        sign_to_json(s, body, id, ts)
    }))
}

/// Signs a text body with one secret and returns the body to send with the
/// headers: for `x-signature` and `fincra` the compact JSON form
/// (`JSON.stringify(JSON.parse(body))`) of a JSON body, which is what they
/// sign; for every other scheme, and for bodies that are not JSON, `body`
/// unchanged. `webhook_sign` signs the same bytes but returns only headers.
/// A NULL scheme, secret or body gives no row.
#[pg_extern(volatile, parallel_safe)]
fn webhook_sign_message(
    scheme: Option<&str>,
    secret: Option<&str>,
    body: Option<&str>,
    id: default!(Option<&str>, "NULL"),
    ts: default!(Option<TimestampWithTimeZone>, "now()"),
) -> TableIterator<'static, (name!(body, String), name!(headers, HeadersJson))> {
    let (Some(scheme), Some(secret), Some(body)) = (scheme, secret, body) else {
        return TableIterator::empty();
    };
    let ts = signing_time(ts);
    let (sent, headers) = with_signer(scheme, &[secret], |s| {
        let signed = sign(s, body.as_bytes(), id, ts);
        // A text body, or its compact JSON: UTF-8 either way.
        let sent = String::from_utf8_lossy(signed.body_to_send(body.as_bytes())).into_owned();
        (sent, headers_json(&signed))
    });
    TableIterator::once((sent, headers))
}

/// The body a sender of `scheme` sends for `body`: the compact JSON form for
/// the schemes that re-serialize JSON (`x-signature`, `fincra`), `body`
/// unchanged otherwise. The outbox stores this form for such endpoints.
#[pg_extern(immutable, strict, parallel_safe)]
fn webhook_body(scheme: &str, body: &str) -> String {
    match self::scheme(scheme).body_to_send(body.as_bytes()) {
        Some(b) => String::from_utf8_lossy(&b).into_owned(),
        None => body.to_owned(),
    }
}

// The native flavour's answers to what the one shared script
// (sql/hookseal.sql) asks of a flavour; the portable flavour defines the
// same two in sql/portable/. Plain SQL, so that the planner inlines them
// where they are called (the fan-out runs them per row).
pgrx::extension_sql!(
    r#"
-- Which flavour this is (sql/hookseal.sql branches on it).
CREATE FUNCTION _flavour() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT 'native'::text $$;

-- The body the outbox stores for an endpoint of `scheme`: webhook_body().
CREATE FUNCTION _delivery_body(scheme text, payload text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT webhook_body(scheme, payload) $$;
"#,
    name = "flavour",
    requires = [webhook_body]
);

/// Outcome of a verification: `Ok`, or why not.
fn verify(
    scheme_name: Option<&str>,
    secrets: Option<Vec<Option<String>>>,
    body: Option<&[u8]>,
    headers: Option<JsonB>,
    tolerance_s: Option<i32>,
    now: Option<TimestampWithTimeZone>,
    url: Option<&str>,
) -> Result<(), String> {
    let (Some(scheme_name), Some(secrets), Some(body), Some(now)) =
        (scheme_name, secrets, body, now)
    else {
        return Err("null_argument: scheme, secrets, body and now must not be NULL".into());
    };
    let secrets: Vec<Zeroizing<String>> =
        secrets.into_iter().flatten().map(Zeroizing::new).collect();
    if secrets.is_empty() {
        return Err("no_secret: no non-NULL secret given".into());
    }
    if now.is_infinity() || now.is_neg_infinity() {
        return Err("bad_now: now must be a finite timestamp".into());
    }
    let tolerance = match tolerance_s {
        None => hookseal_core::DEFAULT_TOLERANCE,
        Some(s) => match u64::try_from(s) {
            Ok(s) => Duration::from_secs(s),
            Err(_) => {
                return Err(format!(
                    "bad_tolerance: tolerance_s must be 0 or more (got {s})"
                ))
            }
        },
    };
    // The body limit is hookseal.max_body_bytes, as for webhook_send.
    let max_body = usize::try_from(crate::gucs::MAX_BODY_BYTES.get()).ok();
    let tag = format!("{scheme_name}\0{}\0{max_body:?}", tolerance.as_secs());
    let make = || {
        let s: Vec<Secret> = secrets.iter().map(|s| secret(s)).collect();
        Verifier::new(scheme(scheme_name), &s)
            .unwrap_or_else(|e| invalid(e))
            .with_tolerance(tolerance)
            .with_max_body(max_body)
    };
    let headers_given = !matches!(headers, None | Some(JsonB(Value::Null)));
    let pairs = header_pairs(headers.map(|h| h.0))?;
    with_cached(&VERIFIERS, &tag, &secrets, make, |v| {
        // Only a scheme signed in the URL may go without headers.
        if !headers_given && !matches!(v.scheme().signature, Location::Query(_)) {
            return Err("bad_headers: headers must be a JSON object of strings".into());
        }
        v.verify_request(body, &pairs, url, unix(now))
            .map(|_| ())
            .map_err(|e: VerifyError| format!("{}: {e}", e.code()))
    })
}

/// Headers from a JSON object of names to strings (an array of strings
/// repeats a header). Any other value is refused, naming the header (0.3.0:
/// `{"Stripe-Signature": 5}` used to be read as a missing header).
fn header_pairs(headers: Option<Value>) -> Result<Vec<(String, String)>, String> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let not_text = |k: &str, v: &Value| {
        let kind = match v {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::Object(_) => "an object",
            Value::Array(_) => "an array holding a non-string",
            Value::String(_) => "a string",
        };
        format!(
            "bad_headers: header `{k}` is {kind}; header values are strings (or arrays of strings)"
        )
    };
    match headers {
        Some(Value::Object(m)) => {
            for (k, v) in m {
                match v {
                    Value::String(s) => pairs.push((k, s)),
                    Value::Array(items) => {
                        for i in items {
                            match i {
                                Value::String(s) => pairs.push((k.clone(), s)),
                                other => return Err(not_text(&k, &Value::Array(vec![other]))),
                            }
                        }
                    }
                    other => return Err(not_text(&k, &other)),
                }
            }
        }
        None | Some(Value::Null) => {}
        _ => return Err("bad_headers: headers must be a JSON object of strings".into()),
    }
    Ok(pairs)
}

/// True when the request verifies. Any NULL argument, or any failed rule,
/// gives false — never NULL. `headers` is a JSON object of header names to
/// strings; `url` is the request URL for `signed-url`.
#[pg_extern(stable, parallel_safe, name = "webhook_verify")]
fn webhook_verify_text(
    scheme: Option<&str>,
    secrets: Option<Vec<Option<String>>>,
    body: Option<&str>,
    headers: Option<JsonB>,
    tolerance_s: default!(Option<i32>, "300"),
    now: default!(Option<TimestampWithTimeZone>, "now()"),
    url: default!(Option<&str>, "NULL"),
) -> bool {
    verify(
        scheme,
        secrets,
        body.map(str::as_bytes),
        headers,
        tolerance_s,
        now,
        url,
    )
    .is_ok()
}

/// `webhook_verify` for a `bytea` body.
#[pg_extern(stable, parallel_safe, name = "webhook_verify")]
fn webhook_verify_bytea(
    scheme: Option<&str>,
    secrets: Option<Vec<Option<String>>>,
    body: Option<&[u8]>,
    headers: Option<JsonB>,
    tolerance_s: default!(Option<i32>, "300"),
    now: default!(Option<TimestampWithTimeZone>, "now()"),
    url: default!(Option<&str>, "NULL"),
) -> bool {
    verify(scheme, secrets, body, headers, tolerance_s, now, url).is_ok()
}

/// `webhook_verify_reason` for a `bytea` body (0.3.0).
#[pg_extern(stable, parallel_safe, name = "webhook_verify_reason")]
fn webhook_verify_reason_bytea(
    scheme: Option<&str>,
    secrets: Option<Vec<Option<String>>>,
    body: Option<&[u8]>,
    headers: Option<JsonB>,
    tolerance_s: default!(Option<i32>, "300"),
    now: default!(Option<TimestampWithTimeZone>, "now()"),
    url: default!(Option<&str>, "NULL"),
) -> String {
    match verify(scheme, secrets, body, headers, tolerance_s, now, url) {
        Ok(()) => "ok".into(),
        Err(e) => e,
    }
}

/// `'ok'`, or `'<code>: <reason>'` naming the rule that failed.
#[pg_extern(stable, parallel_safe)]
fn webhook_verify_reason(
    scheme: Option<&str>,
    secrets: Option<Vec<Option<String>>>,
    body: Option<&str>,
    headers: Option<JsonB>,
    tolerance_s: default!(Option<i32>, "300"),
    now: default!(Option<TimestampWithTimeZone>, "now()"),
    url: default!(Option<&str>, "NULL"),
) -> String {
    match verify(
        scheme,
        secrets,
        body.map(str::as_bytes),
        headers,
        tolerance_s,
        now,
        url,
    ) {
        Ok(()) => "ok".into(),
        Err(e) => e,
    }
}

/// `id` itself when it is a usable message id (the core's one rule:
/// 1 to `MAX_MESSAGE_ID_LEN` bytes of printable ASCII), else error 22023.
/// `webhook_send(app, type, data, event_id)` checks the caller's id with it,
/// so an id the fan-out could not sign under is refused at the door.
#[pg_extern(immutable, parallel_safe)]
fn _message_id(id: Option<&str>) -> String {
    match id {
        Some(id) if hookseal_core::is_message_id(id) => id.to_owned(),
        _ => invalid(format_args!(
            "event id must be 1 to {} printable ASCII characters (no spaces)",
            hookseal_core::MAX_MESSAGE_ID_LEN
        )),
    }
}

/// Why an endpoint cannot deliver with `name` (a preset name or a scheme
/// description, JSON or TOML), or nothing when it can: its signature must
/// travel in a header and sign no named headers (the outbox has no request
/// headers of its own to sign). The one rule behind `scheme_exists()`,
/// `create_endpoint()`'s refusals and the `endpoints.scheme` check.
fn endpoint_scheme_error(name: &str) -> Option<String> {
    let s = match Scheme::from_text(name) {
        Ok(s) => s,
        Err(e) => return Some(e.to_string()),
    };
    if !matches!(s.signature, Location::Header(_)) {
        return Some(format!(
            "`{}` signs a URL (a query parameter), not a delivered request: endpoints need a \
             scheme whose signature is a header",
            s.name
        ));
    }
    if s.signed_headers.is_some() {
        return Some(format!(
            "`{}` signs named request headers, and an outbox delivery has none of its own to sign",
            s.name
        ));
    }
    None
}

/// True when an endpoint can deliver with `name`: a preset or a valid scheme
/// description whose signature travels in a header and signs no named
/// headers (0.3.0: false for `signed-url`, which endpoints refuse).
/// `endpoints.scheme` is checked with it.
#[pg_extern(immutable, strict, parallel_safe)]
fn scheme_exists(name: &str) -> bool {
    endpoint_scheme_error(name).is_none()
}

/// Why an endpoint cannot use `scheme`, or NULL (internal: the reason
/// `create_endpoint()` gives).
#[pg_extern(immutable, strict, parallel_safe)]
fn _endpoint_scheme_error(scheme: &str) -> Option<String> {
    endpoint_scheme_error(scheme)
}

/// True when the stored (encrypted) `stored` is an ed25519 signing key of
/// `scheme`'s asymmetric signatures (internal: a v1a endpoint's rotations
/// make key pairs).
#[pg_extern(stable, strict, parallel_safe)]
fn _is_signing_key(scheme: &str, stored: &str) -> bool {
    let Some(a) = self::scheme(scheme).asymmetric else {
        return false;
    };
    let key = with_keyring(|k| k.decrypt(stored)).unwrap_or_else(|e| storage(e));
    key.expose().starts_with(a.secret_prefix.as_str())
        && hookseal_core::public_key(&a, &key).is_ok()
}

/// The largest delivery body `webhook_send` stores (and `webhook_verify`
/// takes), from `hookseal.max_body_bytes` (internal).
#[pg_extern(stable, parallel_safe)]
fn _max_body_bytes() -> i32 {
    crate::gucs::MAX_BODY_BYTES.get()
}

/// `hex(SHA-256(secret))`, the lookup hash stored beside a secret.
#[pg_extern(immutable, strict, parallel_safe)]
fn secret_hash(secret: &str) -> String {
    self::secret(secret).hash_hex()
}

/// A fresh id: `kind` is `evt`, `wh`, `app` or `secret`.
#[pg_extern(volatile, strict, parallel_safe)]
fn new_id(kind: &str) -> String {
    let k: IdKind = kind.parse().unwrap_or_else(|e| invalid(e));
    core_new_id(k).unwrap_or_else(|e| invalid(e))
}

/// A `jsonb` argument as the text `jsonb_out` writes, numbers exactly as
/// stored: unlike `pgrx::JsonB`, no `serde_json` value in between, which
/// would round integers past 2^64 and refuse numbers past the f64 range.
pub struct JsonbText(String);

pgrx::impl_sql_translatable!(JsonbText, "jsonb");

impl FromDatum for JsonbText {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _typoid: pg_sys::Oid,
    ) -> Option<Self> {
        if is_null {
            return None;
        }
        // SAFETY: `datum` is a non-NULL jsonb (the SQL signature says so);
        // `jsonb_out` detoasts it and returns a palloc'd C string.
        let text = unsafe {
            pgrx::direct_function_call::<&std::ffi::CStr>(pg_sys::jsonb_out, &[Some(datum)])
        }?;
        Some(JsonbText(text.to_string_lossy().into_owned()))
    }
}

// SAFETY: unboxed through `FromDatum` above, as pgrx's own argument types are.
unsafe impl<'fcx> pgrx::callconv::ArgAbi<'fcx> for JsonbText {
    unsafe fn unbox_arg_unchecked(arg: pgrx::callconv::Arg<'_, 'fcx>) -> Self {
        unsafe { arg.unbox_arg_using_from_datum() }.unwrap_or_else(|| invalid("data is NULL"))
    }
}

/// The `native` delivery body `{"id","type","timestamp","data"}` as compact
/// JSON, keys in that order; `data` as `jsonb` stores it (numbers as
/// written, keys in `jsonb` order), whitespace removed.
#[pg_extern(immutable, strict, parallel_safe)]
fn event_body(id: &str, event_type: &str, created_ms: i64, data: JsonbText) -> String {
    let mut out = b"{\"id\":".to_vec();
    json::push_string(&mut out, id);
    out.extend_from_slice(b",\"type\":");
    json::push_string(&mut out, event_type);
    out.extend_from_slice(format!(",\"timestamp\":{created_ms},\"data\":").as_bytes());
    out.extend_from_slice(&json::minify(data.0.as_bytes()));
    out.push(b'}');
    // Only UTF-8 went in.
    String::from_utf8(out).unwrap_or_else(|e| invalid(e))
}

/// A new secret fit for `scheme` (internal: the plaintext is returned once,
/// by `create_secret`).
#[pg_extern(volatile, strict, parallel_safe)]
fn _new_secret(scheme: &str) -> String {
    let s = self::scheme(scheme)
        .new_secret(hookseal_core::DEFAULT_SECRET_BYTES)
        .unwrap_or_else(|e| invalid(e));
    s.expose().to_owned()
}

/// A new ed25519 pair for `scheme`'s asymmetric signatures (internal: the
/// signing key is stored encrypted by `create_keypair`, which returns only
/// the public key).
#[pg_extern(volatile, strict, parallel_safe)]
fn _new_keypair(
    scheme: &str,
) -> TableIterator<'static, (name!(signing, String), name!(public, String))> {
    let (signing, public) = self::scheme(scheme)
        .new_keypair()
        .unwrap_or_else(|e| invalid(e));
    TableIterator::once((signing.expose().to_owned(), public))
}

/// The public key (`whpk_…`) of an ed25519 signing key (`whsk_…`) under
/// `scheme`'s prefixes, for handing to receivers.
#[pg_extern(immutable, strict, parallel_safe)]
fn webhook_public_key(scheme: &str, key: &str) -> String {
    let s = self::scheme(scheme);
    let Some(a) = s.asymmetric.as_ref() else {
        invalid(format!("scheme `{}` has no asymmetric signatures", s.name))
    };
    hookseal_core::public_key(a, &self::secret(key)).unwrap_or_else(|e| invalid(e))
}

/// Encrypts under the primary server key, versioned form (internal).
#[pg_extern(volatile, strict, parallel_safe)]
fn _encrypt_secret(secret: &str) -> String {
    let s = self::secret(secret);
    with_keyring(|k| k.encrypt(&s)).unwrap_or_else(|e| storage(e))
}

/// Decrypts either stored form (internal).
#[pg_extern(stable, strict, parallel_safe)]
fn _decrypt_secret(stored: &str) -> String {
    with_keyring(|k| k.decrypt(stored))
        .unwrap_or_else(|e| storage(e))
        .expose()
        .to_owned()
}

/// Re-encrypts under the primary key when needed (internal).
#[pg_extern(volatile, strict, parallel_safe)]
fn _rewrap(stored: &str) -> String {
    with_keyring(|k| {
        if k.needs_rewrap(stored) {
            k.rewrap(stored)
        } else {
            Ok(stored.to_owned())
        }
    })
    .unwrap_or_else(|e| storage(e))
}

/// True when `stored` is not yet under the primary key (internal).
#[pg_extern(stable, strict, parallel_safe)]
fn _needs_rewrap(stored: &str) -> bool {
    with_keyring(|k| k.needs_rewrap(stored))
}

/// Signs `body` with the stored (encrypted) secrets of an endpoint, newest
/// first, without the plaintext leaving this function (internal). Schemes
/// that carry one signature use the newest secret. NULL, with a WARNING
/// that names why (never a secret), when a stored secret does not decrypt
/// under the server's keys: the fan-out then stores the row unsigned and
/// claim() hands it over with NULL headers, so that endpoint's attempts
/// fail and every other endpoint's rows still go.
#[pg_extern(volatile, parallel_safe)]
fn _sign_stored(
    scheme: &str,
    stored: Vec<Option<String>>,
    body: &str,
    id: &str,
    ts: TimestampWithTimeZone,
) -> Option<HeadersJson> {
    let stored: Vec<String> = stored.into_iter().flatten().collect();
    if stored.is_empty() {
        invalid("endpoint has no active secret");
    }
    // Cache by ciphertext: each stored secret is decrypted once per session.
    let stored = &stored[..stored.len().min(hookseal_core::MAX_SIGNATURES)];
    let signed = try_with_cached(
        &SIGNERS,
        &format!("stored\0{scheme}"),
        stored,
        || {
            let sch = self::scheme(scheme);
            let take = sch.secrets_to_sign(stored.len());
            let secrets = with_keyring(|k| {
                stored[..take]
                    .iter()
                    .map(|s| k.decrypt(s))
                    .collect::<Result<Vec<Secret>, _>>()
            })?;
            Ok(Signer::new(sch, &secrets).unwrap_or_else(|e| invalid(e)))
        },
        |signer| sign_to_json(signer, body.as_bytes(), Some(id), Some(unix(ts))),
    );
    match signed {
        Ok(headers) => Some(headers),
        Err(e @ hookseal_core::StorageError::EncryptFailed) => storage(e),
        Err(e) => {
            pgrx::warning!(
                "hookseal: {e}: message {id} is left unsigned; its endpoint's attempts fail \
                 until the secret decrypts (restore the key to the key file, or rotate the secret)"
            );
            None
        }
    }
}
