//! Verification: body + headers (+ query) + secrets + now -> accepted, or the
//! rule that failed.

use std::time::Duration;

use thiserror::Error;

use crate::asym::Ed25519;
use crate::encoding::{percent_decode, query_pairs};
use crate::headers::{each_trimmed, is_header_token, one, HeaderKey, HeaderSource, One};
use crate::json::{self, JsonError};
use crate::mac::{message_bytes, prepare, Fields, Key};
use crate::message_id::{is_message_id_bytes, MAX_MESSAGE_ID_LEN};
use crate::named::Rendered;
use crate::scheme::{Location, Part, Scheme, Template};
use crate::time::{UnixTime, DEFAULT_TOLERANCE};
use crate::SetupError;

/// Longest header or query value read; longer ones are malformed.
pub const MAX_VALUE_LEN: usize = 8 * 1024;
/// Most signatures read from one request; more is malformed.
pub const MAX_SIGNATURES: usize = 16;
/// Default body size limit (the contract's 256 KiB).
pub const DEFAULT_MAX_BODY: usize = 256 * 1024;

/// Why a request did not verify. Each variant names one rule.
///
/// Messages name headers and rules, never secrets or expected signatures.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VerifyError {
    /// A header the scheme needs is absent.
    #[error("missing header `{name}`")]
    MissingHeader {
        /// The header's name.
        name: String,
    },
    /// A header is present but unusable (empty, repeated, not UTF-8, too
    /// long, wrong shape, not a number, …).
    #[error("malformed header `{name}`: {reason}")]
    MalformedHeader {
        /// The header's name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A header the signature names (its signed-headers item) did not
    /// arrive: the sender signed it, so the request is incomplete.
    #[error("missing header `{name}`, which the signature names")]
    MissingSignedHeader {
        /// The header's name.
        name: String,
    },
    /// The signature query parameter is absent (or no query was given).
    #[error("missing query parameter `{name}`")]
    MissingQueryParameter {
        /// The parameter's name.
        name: String,
    },
    /// The signature query parameter is present but unusable.
    #[error("malformed query parameter `{name}`: {reason}")]
    MalformedQueryParameter {
        /// The parameter's name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The scheme signs a field of the JSON body, and the body is not JSON or
    /// lacks that field.
    #[error("body: {0}")]
    BodyNotJson(JsonError),
    /// The body is larger than the verifier's limit.
    #[error("body is larger than {limit} bytes")]
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The timestamp is further in the past than the tolerance allows.
    #[error(
        "timestamp is {} old, more than the {tolerance_secs} s tolerance",
        beyond(*.age_secs, *.tolerance_secs)
    )]
    TimestampTooOld {
        /// How far in the past, in whole seconds.
        age_secs: i64,
        /// The tolerance in seconds.
        tolerance_secs: u64,
    },
    /// The timestamp is further in the future than the tolerance allows.
    #[error(
        "timestamp is {} in the future, more than the {tolerance_secs} s tolerance",
        beyond(*.ahead_secs, *.tolerance_secs)
    )]
    TimestampTooNew {
        /// How far in the future, in whole seconds.
        ahead_secs: i64,
        /// The tolerance in seconds.
        tolerance_secs: u64,
    },
    /// Signatures were present and well-formed, but none matches any secret
    /// (signatures of unknown versions are skipped, so a request carrying
    /// only those ends here too).
    #[error("no signature matches")]
    NoMatchingSignature,
}

impl VerifyError {
    /// The HTTP status a receiving endpoint answers with, per the contract:
    /// 413 for an oversized body, 400 for missing or malformed input, and the
    /// scheme's own code for a mismatch or a stale timestamp.
    pub fn status(&self, scheme: &Scheme) -> u16 {
        match self {
            VerifyError::BodyTooLarge { .. } => 413,
            VerifyError::TimestampTooOld { .. }
            | VerifyError::TimestampTooNew { .. }
            | VerifyError::NoMatchingSignature => scheme.mismatch_status,
            _ => 400,
        }
    }

    /// A short machine-readable reason, for JSON error bodies and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::MissingHeader { .. } => "missing_header",
            VerifyError::MissingSignedHeader { .. } => "missing_signed_header",
            VerifyError::MalformedHeader { .. } => "malformed_header",
            VerifyError::MissingQueryParameter { .. } => "missing_query_parameter",
            VerifyError::MalformedQueryParameter { .. } => "malformed_query_parameter",
            VerifyError::BodyNotJson(_) => "body_not_json",
            VerifyError::BodyTooLarge { .. } => "body_too_large",
            VerifyError::TimestampTooOld { .. } => "timestamp_too_old",
            VerifyError::TimestampTooNew { .. } => "timestamp_too_new",
            VerifyError::NoMatchingSignature => "no_matching_signature",
        }
    }
}

/// How far outside the window a timestamp is, from the whole seconds it
/// is off (rounded down) and the tolerance's: `301 s`, or `over 300 s` when
/// it is off by a fraction of a second more than the tolerance (300.5 s is
/// not "300 s, more than the 300 s tolerance").
fn beyond(off_secs: i64, tolerance_secs: u64) -> String {
    if u64::try_from(off_secs).is_ok_and(|s| s > tolerance_secs) {
        format!("{off_secs} s")
    } else {
        format!("over {tolerance_secs} s")
    }
}

/// Which bytes the matching signature covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matched {
    /// The raw body (or the JSON field the template names).
    RawBody,
    /// The compact JSON re-serialization of the body.
    CompactJson,
    /// Compact JSON of the scheme's selected top-level fields.
    JsonFields,
}

/// What an accepted request was accepted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// Index, in the secrets given to the verifier, of the secret that matched.
    pub secret_index: usize,
    /// The request's timestamp, for schemes that carry one.
    pub timestamp: Option<UnixTime>,
    /// The bytes the signature covered.
    pub matched: Matched,
    /// The request used the scheme's [`crate::HeaderAliases`] spelling
    /// (`svix-*`): its id is in the alias id header, not `id_header`.
    pub aliased: bool,
}

/// Checks requests against one scheme and one or more secrets.
///
/// Keys are prepared once here, so a long-lived verifier pays the HMAC key
/// schedule once per secret, not once per request.
#[derive(Clone)]
pub struct Verifier {
    scheme: Scheme,
    keys: Vec<Key>,
    names: Names,
    /// The aliases' spelling (`svix-*`), read when `names.signature` is absent.
    alias: Option<Names>,
    tolerance: Duration,
    max_body: Option<usize>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("scheme", &self.scheme.name)
            .field("secrets", &self.keys.len())
            .field("tolerance", &self.tolerance)
            .field("max_body", &self.max_body)
            .finish()
    }
}

/// One spelling of the scheme's header names, prepared once.
#[derive(Clone)]
struct Names {
    signature: Option<Named>,
    id: Option<Named>,
    timestamp: Option<Named>,
}

#[derive(Clone)]
struct Named {
    name: String,
    key: HeaderKey,
}

impl Named {
    fn new(name: &str) -> Self {
        Named {
            name: name.to_owned(),
            key: HeaderKey::new(name),
        }
    }
}

/// Signatures and timestamp read from the signature value(s).
struct Parsed<'a> {
    sigs: [&'a [u8]; MAX_SIGNATURES],
    /// Whether `sigs[i]` carries the asymmetric tag (ed25519).
    asym: [bool; MAX_SIGNATURES],
    /// `sigs[i]`'s version: an index into `Scheme::stronger`, or its length
    /// for the base `format.tag` (so smaller is stronger).
    ver: [usize; MAX_SIGNATURES],
    n: usize,
    ts: Option<&'a [u8]>,
    /// The signed-headers item's value (the names).
    named: Option<&'a str>,
}

impl Verifier {
    /// A verifier for `scheme` accepting any of `secrets`, with the default
    /// 300 s tolerance and 256 KiB body limit.
    pub fn new(scheme: Scheme, secrets: &[crate::Secret]) -> Result<Self, SetupError> {
        scheme.validate()?;
        let keys = prepare(&scheme, secrets)?;
        let names = Names {
            signature: scheme.signature_header().map(Named::new),
            id: scheme.id_header.as_deref().map(Named::new),
            timestamp: scheme
                .timestamp
                .as_ref()
                .and_then(|t| t.header.as_deref())
                .map(Named::new),
        };
        let alias = scheme.header_aliases.as_ref().map(|a| Names {
            signature: Some(Named::new(&a.signature)),
            id: a.id.as_deref().map(Named::new),
            timestamp: a.timestamp.as_deref().map(Named::new),
        });
        Ok(Verifier {
            scheme,
            keys,
            names,
            alias,
            tolerance: DEFAULT_TOLERANCE,
            max_body: Some(DEFAULT_MAX_BODY),
        })
    }

    /// Sets the replay tolerance (both directions).
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Sets the body size limit; `None` disables it.
    pub fn with_max_body(mut self, limit: Option<usize>) -> Self {
        self.max_body = limit;
        self
    }

    /// The replay tolerance (both directions).
    pub fn tolerance(&self) -> Duration {
        self.tolerance
    }

    /// The body size limit, if any.
    pub fn max_body(&self) -> Option<usize> {
        self.max_body
    }

    /// The name of the header the message id was read from in a request
    /// that verified as `v` (the alias's when the request used it).
    pub fn id_header_of(&self, v: &Verified) -> Option<&str> {
        let names = match (&self.alias, v.aliased) {
            (Some(alias), true) => alias,
            _ => &self.names,
        };
        names.id.as_ref().map(|n| n.name.as_str())
    }

    /// The scheme this verifier checks.
    pub fn scheme(&self) -> &Scheme {
        &self.scheme
    }

    /// Verifies a request whose signature travels in headers.
    pub fn verify<H: HeaderSource + ?Sized>(
        &self,
        body: &[u8],
        headers: &H,
        now: UnixTime,
    ) -> Result<Verified, VerifyError> {
        self.verify_request(body, headers, None, now)
    }

    /// Verifies a request, with the URL's query string (the part after `?`,
    /// or a whole URL) for schemes whose signature is a query parameter.
    ///
    /// The steps, in order (each refusal names the first that failed): the
    /// body's size, the signatures (header or query parameter), the message
    /// id, the timestamp and its window, the strongest version present,
    /// then the match (the raw body, then the re-serialized one).
    pub fn verify_request<H: HeaderSource + ?Sized>(
        &self,
        body: &[u8],
        headers: &H,
        query: Option<&str>,
        now: UnixTime,
    ) -> Result<Verified, VerifyError> {
        if let Some(limit) = self.max_body {
            if body.len() > limit {
                return Err(VerifyError::BodyTooLarge { limit });
            }
        }
        let decoded_query;
        let mut p = Parsed {
            sigs: [&[]; MAX_SIGNATURES],
            asym: [false; MAX_SIGNATURES],
            ver: [0; MAX_SIGNATURES],
            n: 0,
            ts: None,
            named: None,
        };
        let (names, aliased) = match (&self.scheme.signature, &self.names.signature) {
            (Location::Header(_), Some(own)) => self.read_signature_header(headers, own, &mut p)?,
            (Location::Query(name), _) | (Location::Header(name), None) => {
                decoded_query = query_parameter(query, name)?;
                self.parse_value(&decoded_query, &mut p)
                    .map_err(|reason| malformed_query(name, reason))?;
                (&self.names, false)
            }
        };
        let id = self.message_id(headers, names)?;
        let (timestamp, ts_text) = self.read_timestamp(headers, names, &p, now)?;
        let (template, kept) = self.strongest_only(&mut p);
        let named = match template.uses(&Part::Headers) || template.uses(&Part::HeaderNames) {
            true => self.signed_headers(headers, p.named)?,
            false => Rendered::default(),
        };
        let (sigs, asym) = (&p.sigs[..kept], &p.asym[..kept]);
        let done = |secret_index, matched| Verified {
            secret_index,
            timestamp,
            matched,
            aliased,
        };
        // The signed bytes: the body, or a JSON field of it.
        let field_value;
        let msg_body: &[u8] = match template.json_field() {
            Some(f) => {
                field_value = json::string_field(body, f).map_err(VerifyError::BodyNotJson)?;
                field_value.as_bytes()
            }
            None => body,
        };
        let signed = (id, ts_text, &named);
        if let Some(i) = self.match_any(template, sigs, asym, signed, msg_body) {
            return Ok(done(i, Matched::RawBody));
        }
        self.check_decodable(sigs, asym)?;
        // Second chance: the body as a re-serializing sender signs it.
        match self.match_reserialized(template, sigs, asym, signed, body) {
            Some((i, how)) => Ok(done(i, how)),
            // Only signatures of other versions, or none matching: a mismatch.
            None => Err(VerifyError::NoMatchingSignature),
        }
    }

    /// The signatures of the scheme's header into `p`, or of its alias's
    /// (one spelling for the whole request: the aliases' only when the
    /// scheme's own signature header is absent and theirs is present; the
    /// own header is read once). Returns the spelling used and whether it
    /// is the alias.
    fn read_signature_header<'a, H: HeaderSource + ?Sized>(
        &'a self,
        headers: &'a H,
        own: &'a Named,
        p: &mut Parsed<'a>,
    ) -> Result<(&'a Names, bool), VerifyError> {
        let (mut count, mut err) = self.parse_signature_header(headers, &own.key, p);
        let (mut names, mut aliased, mut name) = (&self.names, false, &own.name);
        if count == 0 {
            if let Some((alias, a)) = self
                .alias
                .as_ref()
                .and_then(|alias| Some((alias, alias.signature.as_ref()?)))
            {
                let (c, e) = self.parse_signature_header(headers, &a.key, p);
                if c > 0 {
                    (names, aliased, count, err, name) = (alias, true, c, e, &a.name);
                }
            }
        }
        if count == 0 {
            return Err(VerifyError::MissingHeader {
                name: own.name.clone(),
            });
        }
        let reason = if count > 1 && self.scheme.format.list_separator.is_none() {
            Some("header is repeated")
        } else {
            err
        };
        match reason {
            Some(reason) => Err(malformed_header(name, reason)),
            None => Ok((names, aliased)),
        }
    }

    /// The timestamp (its own header, or an item of the signature header)
    /// checked against the window, and its text as signed; none for a
    /// scheme without one.
    fn read_timestamp<'a, H: HeaderSource + ?Sized>(
        &'a self,
        headers: &'a H,
        names: &'a Names,
        p: &Parsed<'a>,
        now: UnixTime,
    ) -> Result<(Option<UnixTime>, &'a [u8]), VerifyError> {
        let Some(spec) = &self.scheme.timestamp else {
            return Ok((None, b""));
        };
        let (text, name) = match (&spec.header, &names.timestamp) {
            (Some(_), Some(Named { name, key })) => match one(headers, key) {
                One::Absent => return Err(VerifyError::MissingHeader { name: name.clone() }),
                One::Repeated => return Err(malformed_header(name, "header is repeated")),
                One::Present(v) => (v, name.as_str()),
            },
            _ => {
                let sig_name = self.signature_name();
                match p.ts {
                    Some(v) => (v, sig_name),
                    None => return Err(malformed_header(sig_name, "no timestamp item")),
                }
            }
        };
        let t = UnixTime::parse(text, spec.unit)
            .ok_or_else(|| malformed_header(name, "timestamp is not a whole number"))?;
        self.check_window(t, now)?;
        Ok((Some(t), text))
    }

    /// Keeps in `p` only the signatures to check: the strongest version
    /// present (a correct weaker signature never rescues a wrong stronger
    /// one) and the asymmetric ones. Returns that version's template and
    /// how many signatures were kept (at the front of `p`).
    fn strongest_only(&self, p: &mut Parsed<'_>) -> (&Template, usize) {
        let s = &self.scheme;
        let strongest = (0..p.n)
            .filter(|&i| !p.asym[i])
            .map(|i| p.ver[i])
            .min()
            .unwrap_or(s.stronger.len());
        let template = s.stronger.get(strongest).map_or(&s.message, |v| &v.message);
        let mut kept = 0;
        for i in 0..p.n {
            if p.asym[i] || p.ver[i] == strongest {
                p.sigs[kept] = p.sigs[i];
                p.asym[kept] = p.asym[i];
                kept += 1;
            }
        }
        (template, kept)
    }

    /// The message id header's value (empty for a scheme without one),
    /// checked against the one id rule.
    fn message_id<'h, H: HeaderSource + ?Sized>(
        &self,
        headers: &'h H,
        names: &Names,
    ) -> Result<&'h [u8], VerifyError> {
        let (Some(_), Some(Named { name, key })) = (&self.scheme.id_header, &names.id) else {
            return Ok(b"");
        };
        match one(headers, key) {
            One::Absent => Err(VerifyError::MissingHeader { name: name.clone() }),
            One::Repeated => Err(malformed_header(name, "header is repeated")),
            One::Present([]) => Err(malformed_header(name, "empty")),
            One::Present(v) if v.len() > MAX_MESSAGE_ID_LEN => {
                Err(malformed_header(name, "too long"))
            }
            One::Present(v) if !is_message_id_bytes(v) => {
                Err(malformed_header(name, "not printable ASCII"))
            }
            One::Present(v) => Ok(v),
        }
    }

    /// Nothing matched: signatures that cannot be a MAC (or an ed25519
    /// signature) at all are a malformed request rather than a mismatch.
    fn check_decodable(&self, sigs: &[&[u8]], asym: &[bool]) -> Result<(), VerifyError> {
        let s = &self.scheme;
        let mac_len = s.algorithm.mac_len();
        let mut buf = [0u8; 64];
        let decodable = sigs.iter().zip(asym).any(|(c, &a)| {
            let want = if a {
                ed25519_dalek::SIGNATURE_LENGTH
            } else {
                mac_len
            };
            s.encoding.decode_into(c, &mut buf) == Some(want)
        });
        if !decodable && !sigs.is_empty() {
            let reason = match s.encoding {
                crate::Encoding::Hex => "signature is not lowercase hex of the MAC's length",
                crate::Encoding::Base64 => "signature is not base64 of the MAC's length",
            };
            return Err(match &s.signature {
                Location::Header(n) => malformed_header(n, reason),
                Location::Query(n) => VerifyError::MalformedQueryParameter {
                    name: n.clone(),
                    reason,
                },
            });
        }
        Ok(())
    }

    /// The second chance: the body as a re-serializing sender signs it
    /// (its compact JSON form, or the projected fields).
    fn match_reserialized(
        &self,
        template: &Template,
        sigs: &[&[u8]],
        asym: &[bool],
        signed: (&[u8], &[u8], &Rendered),
        body: &[u8],
    ) -> Option<(usize, Matched)> {
        if sigs.is_empty() {
            return None;
        }
        let r = self.scheme.reserialize(body)?;
        if r.compact != body {
            if let Some(i) = self.match_any(template, sigs, asym, signed, &r.compact) {
                return Some((i, Matched::CompactJson));
            }
        }
        let projected = r.fields.as_ref()?;
        self.match_any(template, sigs, asym, signed, projected)
            .map(|i| (i, Matched::JsonFields))
    }

    fn signature_name(&self) -> &str {
        match &self.scheme.signature {
            Location::Header(n) | Location::Query(n) => n,
        }
    }

    /// Verifies a `signed-url`-style request from its full URL.
    pub fn verify_url(
        &self,
        body: &[u8],
        url: &str,
        now: UnixTime,
    ) -> Result<Verified, VerifyError> {
        let none: [(&str, &str); 0] = [];
        self.verify_request(body, &none, Some(url), now)
    }

    fn check_window(&self, t: UnixTime, now: UnixTime) -> Result<(), VerifyError> {
        let tol = self.tolerance.as_millis().min(i64::MAX as u128) as i128;
        let diff = t.as_millis() as i128 - now.as_millis() as i128;
        let secs = |d: i128| (d / 1000).clamp(i64::MIN as i128, i64::MAX as i128) as i64;
        if diff < -tol {
            Err(VerifyError::TimestampTooOld {
                age_secs: secs(-diff),
                tolerance_secs: self.tolerance.as_secs(),
            })
        } else if diff > tol {
            Err(VerifyError::TimestampTooNew {
                ahead_secs: secs(diff),
                tolerance_secs: self.tolerance.as_secs(),
            })
        } else {
            Ok(())
        }
    }

    /// The `{headers}` and `{header_names}` texts of the headers the
    /// signature names, in its order; a named header that did not arrive
    /// is its own refusal.
    fn signed_headers<H: HeaderSource + ?Sized>(
        &self,
        headers: &H,
        named: Option<&str>,
    ) -> Result<Rendered, VerifyError> {
        let (Some(spec), sig_name) = (&self.scheme.signed_headers, self.signature_name()) else {
            return Ok(Rendered::default());
        };
        let names = named.ok_or_else(|| malformed_header(sig_name, "no signed-headers item"))?;
        let mut found = Vec::new();
        for name in names.split(spec.separator.as_str()) {
            if !is_header_token(name) {
                return Err(malformed_header(
                    sig_name,
                    "a signed header name is not a token",
                ));
            }
            match one(headers, &HeaderKey::new(name)) {
                One::Absent => {
                    return Err(VerifyError::MissingSignedHeader {
                        name: name.to_owned(),
                    })
                }
                One::Repeated => return Err(malformed_header(name, "header is repeated")),
                One::Present(v) => found.push((name, v)),
            }
        }
        Ok(spec.render(found))
    }

    /// Splits one signature value into signatures and timestamp.
    /// Parses every line of the signature header `key` into `p`: how many
    /// lines there were, and the first line's refusal.
    fn parse_signature_header<'a, H: HeaderSource + ?Sized>(
        &self,
        headers: &'a H,
        key: &HeaderKey,
        p: &mut Parsed<'a>,
    ) -> (usize, Option<&'static str>) {
        let mut count = 0usize;
        let mut err = None;
        each_trimmed(headers, key, &mut |v| {
            count += 1;
            if err.is_none() {
                if let Err(reason) = self.parse_value(v, p) {
                    err = Some(reason);
                }
            }
        });
        (count, err)
    }

    fn parse_value<'a>(&self, v: &'a [u8], p: &mut Parsed<'a>) -> Result<(), &'static str> {
        if v.is_empty() {
            return Err("empty");
        }
        if v.len() > MAX_VALUE_LEN {
            return Err("value is too long");
        }
        let v = std::str::from_utf8(v).map_err(|_| "not UTF-8")?;
        let f = &self.scheme.format;
        let base = self.scheme.stronger.len();
        let push = |p: &mut Parsed<'a>, sig: &'a str, asym: bool, ver: usize| {
            if p.n == MAX_SIGNATURES {
                return Err("too many signatures");
            }
            p.sigs[p.n] = sig.as_bytes();
            p.asym[p.n] = asym;
            p.ver[p.n] = ver;
            p.n += 1;
            Ok(())
        };
        let asym_tag = self.scheme.asymmetric.as_ref().map(|a| a.tag.as_str());
        let named_tag = self.scheme.signed_headers.as_ref().map(|h| h.tag.as_str());
        match &f.list_separator {
            None => {
                let sig = match &f.tag {
                    None => v,
                    Some(tag) => v
                        .strip_prefix(tag.as_str())
                        .and_then(|r| r.strip_prefix(f.tag_separator.as_str()))
                        .ok_or("missing the signature's version prefix")?,
                };
                push(p, sig, false, base)
            }
            Some(sep) => {
                let tag = f.tag.as_deref().unwrap_or("");
                let mut items = 0;
                let mut rest = v;
                while !rest.is_empty() {
                    let (item, tail) = split_once(rest, sep).unwrap_or((rest, ""));
                    rest = tail;
                    if item.is_empty() {
                        continue;
                    }
                    items += 1;
                    let Some((t, val)) = split_once(item, &f.tag_separator) else {
                        continue; // not a tagged item: skipped like an unknown version
                    };
                    if t == tag {
                        push(p, val, false, base)?;
                    } else if Some(t) == asym_tag {
                        push(p, val, true, base)?;
                    } else if let Some(v) = self.scheme.stronger.iter().position(|v| v.tag == t) {
                        push(p, val, false, v)?;
                    } else if Some(t) == named_tag {
                        if p.named.replace(val).is_some() {
                            return Err("signed-headers item is repeated");
                        }
                    } else if f.timestamp_tag.as_deref() == Some(t) {
                        if p.ts.is_some() {
                            return Err("timestamp item is repeated");
                        }
                        p.ts = Some(val.as_bytes());
                    }
                }
                if items == 0 {
                    return Err("no signature items");
                }
                Ok(())
            }
        }
    }

    /// Index of the first secret whose MAC (or ed25519 signature) matches
    /// any candidate of its kind.
    fn match_any(
        &self,
        template: &Template,
        sigs: &[&[u8]],
        asym: &[bool],
        (id, ts, named): (&[u8], &[u8], &Rendered),
        body: &[u8],
    ) -> Option<usize> {
        let fields = Fields {
            id,
            timestamp: ts,
            body,
            headers: &named.text,
            header_names: named.names.as_bytes(),
        };
        let parts = template.parts();
        let enc = self.scheme.encoding;
        let mut buf = [0u8; 64];
        let mut whole = None; // the message as one string, for ed25519
        for (i, key) in self.keys.iter().enumerate() {
            let public = match key {
                Key::Hmac(m) => {
                    let mac = m.compute(parts, &fields);
                    for (c, _) in sigs.iter().zip(asym).filter(|(_, &a)| !a) {
                        if let Some(n) = enc.decode_into(c, &mut buf) {
                            if mac.ct_eq(&buf[..n]) {
                                return Some(i);
                            }
                        }
                    }
                    continue;
                }
                Key::Ed25519(Ed25519::Signing(k)) => k.verifying_key(),
                Key::Ed25519(Ed25519::Public(k)) => *k,
            };
            for (c, _) in sigs.iter().zip(asym).filter(|(_, &a)| a) {
                if enc.decode_into(c, &mut buf) != Some(ed25519_dalek::SIGNATURE_LENGTH) {
                    continue;
                }
                let sig = ed25519_dalek::Signature::from_bytes(&buf);
                let m = whole.get_or_insert_with(|| message_bytes(parts, &fields));
                // Strict: no small-order keys or non-canonical encodings
                // (a signature has exactly one accepted text).
                if public.verify_strict(m, &sig).is_ok() {
                    return Some(i);
                }
            }
        }
        None
    }
}

/// `str::split_once` with a fast path for one-byte patterns (the usual
/// separators), which the general substring search makes slow.
fn split_once<'a>(s: &'a str, pat: &str) -> Option<(&'a str, &'a str)> {
    match pat.as_bytes() {
        // `char` patterns search with `memchr`.
        [b] if b.is_ascii() => s.split_once(char::from(*b)),
        _ => s.split_once(pat),
    }
}

fn malformed_query(name: &str, reason: &'static str) -> VerifyError {
    VerifyError::MalformedQueryParameter {
        name: name.to_owned(),
        reason,
    }
}

/// The signature query parameter `name`'s value, percent-decoded, from a
/// query string or a whole URL: present once, not too long.
fn query_parameter(query: Option<&str>, name: &str) -> Result<Vec<u8>, VerifyError> {
    let missing = || VerifyError::MissingQueryParameter {
        name: name.to_owned(),
    };
    let q = query.ok_or_else(missing)?;
    let q = q.split_once('?').map_or(q, |(_, q)| q);
    let mut found = None;
    for (k, v) in query_pairs(q) {
        if k == name {
            if found.is_some() {
                return Err(malformed_query(name, "parameter is repeated"));
            }
            found = Some(v);
        }
    }
    let raw = found.ok_or_else(missing)?;
    if raw.len() > MAX_VALUE_LEN {
        return Err(malformed_query(name, "value is too long"));
    }
    percent_decode(raw).ok_or_else(|| malformed_query(name, "bad percent-escape"))
}

fn malformed_header(name: &str, reason: &'static str) -> VerifyError {
    VerifyError::MalformedHeader {
        name: name.to_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Message, Secret, Signer};

    /// 300.5 s is past a 300 s tolerance, and the message says so instead
    /// of "300 s old, more than the 300 s tolerance" (issue 20, 14a).
    #[test]
    fn a_fraction_past_the_tolerance_reads_as_past_it() {
        let scheme = Scheme::preset("native").unwrap();
        let secret = [Secret::new("whsec_x").unwrap()];
        let t = UnixTime::from_millis(1_735_421_045_500);
        let msg = Message {
            body: b"{}",
            id: Some("m"),
            timestamp: Some(t),
        };
        let signed = Signer::new(scheme.clone(), &secret)
            .unwrap()
            .sign(&msg)
            .unwrap();
        let v = Verifier::new(scheme, &secret).unwrap();
        let at = |ms: i64| {
            v.verify(b"{}", &signed.headers, UnixTime::from_millis(ms))
                .unwrap_err()
                .to_string()
        };
        let old = at(t.as_millis() + 300_500);
        assert_eq!(
            old,
            "timestamp is over 300 s old, more than the 300 s tolerance"
        );
        let new = at(t.as_millis() - 300_500);
        assert_eq!(
            new,
            "timestamp is over 300 s in the future, more than the 300 s tolerance"
        );
        let whole = at(t.as_millis() + 301_000);
        assert_eq!(
            whole,
            "timestamp is 301 s old, more than the 300 s tolerance"
        );
    }
}
