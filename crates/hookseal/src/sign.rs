//! Signing: body + secret(s) (+ id, timestamp) -> headers, or a signed URL.

use std::borrow::Cow;

use thiserror::Error;

use crate::asym::Ed25519;
use crate::encoding::{percent_encode, query_pairs};
use crate::headers::is_header_token;
use crate::json::{self, JsonError};
use crate::mac::{message_bytes, prepare, Fields, Key};
use crate::named::Rendered;
use crate::scheme::{Location, Scheme};
use crate::secret::{new_id, IdKind, Secret};
use crate::time::UnixTime;
use crate::SetupError;

/// Why a message could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SignError {
    /// The message id is empty, longer than [`crate::MAX_MESSAGE_ID_LEN`]
    /// bytes, or has characters outside printable ASCII (it travels in a
    /// header).
    #[error("message id must be 1-{max} printable ASCII characters", max = crate::MAX_MESSAGE_ID_LEN)]
    InvalidId,
    /// The scheme signs a field of the JSON body, and the body is not JSON or
    /// lacks that field.
    #[error("body: {0}")]
    BodyNotJson(JsonError),
    /// [`Signer::sign_url`] was called for a scheme whose signature travels in
    /// a header.
    #[error("scheme `{0}` does not sign URLs")]
    NotAUrlScheme(String),
    /// The timestamp is before 1970 or too far in the future to be written
    /// as the verifier reads it (at most 18 digits).
    #[error("timestamp is before 1970 or needs more than 18 digits")]
    TimestampOutOfRange,
    /// A fresh id was needed and the random source failed.
    #[error("could not generate a message id")]
    Random,
    /// The scheme signs named headers (`{headers}`) and none were given, or
    /// a name is not a header token, or a name was given twice (a verifier
    /// refuses a repeated signed header).
    #[error("the scheme signs named headers: give at least one, each a header token, none twice")]
    SignedHeaders,
    /// Headers to sign were given, and the scheme signs no named headers
    /// (they would go unsigned).
    #[error("scheme `{0}` signs no named headers")]
    HeadersNotSigned(String),
    /// [`Signer::sign_url`] was given a URL that is not `http://` or
    /// `https://` with a host.
    #[error("the URL to sign must be http:// or https:// with a host")]
    UrlNotHttp,
    /// [`Signer::sign_url`] was given a URL that already holds the scheme's
    /// signature parameter: the signed URL would carry it twice, and a
    /// verifier refuses a repeated signature parameter.
    #[error("the URL already holds the `{0}` query parameter; sign the URL without it")]
    UrlHoldsSignature(String),
}

/// The list `value` (items `{tag}{tag_sep}…` joined by `sep`, as
/// [`Signer`] writes them) with its items in `order` of their tags, items of
/// one tag keeping their order. `Scheme::validate` guarantees that `order`
/// names every tag and that no tag holds either separator.
fn in_order(value: &str, sep: &str, tag_sep: &str, order: &[String]) -> String {
    let rank = |item: &str| {
        let tag = item.split_once(tag_sep).map_or(item, |(t, _)| t);
        order.iter().position(|o| o == tag).unwrap_or(order.len())
    };
    let mut items: Vec<&str> = value.split(sep).collect();
    items.sort_by_key(|i| rank(i));
    items.join(sep)
}

/// One computed signature's bytes.
enum SigBytes {
    Mac(crate::mac::MacOut),
    Ed25519([u8; 64]),
}

impl SigBytes {
    fn as_bytes(&self) -> &[u8] {
        match self {
            SigBytes::Mac(m) => m.as_bytes(),
            SigBytes::Ed25519(b) => b,
        }
    }
}

/// What to sign.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// The exact body bytes.
    pub body: &'a [u8],
    /// Message id for schemes that sign one; a fresh `evt_…` id when `None`.
    pub id: Option<&'a str>,
    /// Signing time for schemes that sign one; the clock when `None`.
    pub timestamp: Option<UnixTime>,
}

impl<'a> Message<'a> {
    /// A message with only a body (fresh id, current time).
    pub fn new(body: &'a [u8]) -> Self {
        Message {
            body,
            id: None,
            timestamp: None,
        }
    }
}

/// A signed message: the headers (or query parameters) to send with the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// `(name, value)` headers, signature header first.
    pub headers: Vec<(String, String)>,
    /// `(name, value)` query parameters (values not yet percent-encoded).
    pub query: Vec<(String, String)>,
    /// The message id used, for schemes that sign one.
    pub id: Option<String>,
    /// The signing time used, for schemes that sign one.
    pub timestamp: Option<UnixTime>,
    /// The body to send instead of the one given, when the scheme
    /// re-serializes JSON (`x-signature`, `fincra`) and the given body was not
    /// already in that form: its `JSON.stringify(JSON.parse(body))`. `None`:
    /// send the body as it was given. [`Signed::body_to_send`] picks.
    pub body: Option<Vec<u8>>,
}

impl Signed {
    /// The bytes to send: [`Signed::body`] when the signer rewrote the body,
    /// else `given` (the body that was signed).
    pub fn body_to_send<'a>(&'a self, given: &'a [u8]) -> &'a [u8] {
        self.body.as_deref().unwrap_or(given)
    }

    /// `base` with the query parameters appended, percent-encoded.
    pub fn url(&self, base: &str) -> String {
        let (head, frag) = match base.split_once('#') {
            Some((h, f)) => (h, Some(f)),
            None => (base, None),
        };
        let mut url = head.to_owned();
        for (k, v) in &self.query {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&percent_encode(k));
            url.push('=');
            url.push_str(&percent_encode(v));
        }
        if let Some(f) = frag {
            url.push('#');
            url.push_str(f);
        }
        url
    }
}

/// A callback URL and the external id it is bound to (the `signed-url`
/// scheme): hand both to the sender, which returns the id in the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedUrl {
    /// The base URL with the signature parameter appended.
    pub url: String,
    /// The external id the signature covers.
    pub external_id: String,
    /// The signature, before percent-encoding.
    pub signature: String,
}

/// Signs messages under one scheme with one or more active secrets.
#[derive(Clone)]
pub struct Signer {
    scheme: Scheme,
    keys: Vec<Key>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("scheme", &self.scheme.name)
            .field("secrets", &self.keys.len())
            .finish()
    }
}

impl Signer {
    /// A signer emitting one signature per secret. Schemes whose signature
    /// value holds a single signature accept exactly one secret.
    pub fn new(scheme: Scheme, secrets: &[Secret]) -> Result<Self, SetupError> {
        scheme.validate()?;
        if secrets.len() > 1 && scheme.format.list_separator.is_none() {
            return Err(SetupError::OneSecretOnly(scheme.name));
        }
        if secrets.len() > crate::MAX_SIGNATURES {
            return Err(SetupError::TooManySecrets);
        }
        let keys = prepare(&scheme, secrets)?;
        if keys
            .iter()
            .any(|k| matches!(k, Key::Ed25519(Ed25519::Public(_))))
        {
            return Err(SetupError::PublicKeyCannotSign);
        }
        Ok(Signer { scheme, keys })
    }

    /// The scheme this signer uses.
    pub fn scheme(&self) -> &Scheme {
        &self.scheme
    }

    /// Signs `msg`.
    pub fn sign(&self, msg: &Message<'_>) -> Result<Signed, SignError> {
        self.sign_with_headers(msg, &[])
    }

    /// Signs `msg` for a scheme whose template signs named headers
    /// (`{headers}`): `headers` are the `(name, value)` pairs to sign, in
    /// order, and the signature value names them. They are not added to
    /// [`Signed::headers`]: the caller sends them as given.
    pub fn sign_with_headers(
        &self,
        msg: &Message<'_>,
        headers: &[(&str, &str)],
    ) -> Result<Signed, SignError> {
        let s = &self.scheme;
        let id = self.message_id(msg)?;
        let (timestamp, ts_text) = self.timestamp(msg)?;
        let (signed_text, send) = self.signed_text(msg.body)?;
        let named = self.named_headers(headers)?;
        let fields = Fields {
            id: id.as_deref().unwrap_or("").as_bytes(),
            timestamp: ts_text.as_bytes(),
            body: &signed_text,
            headers: &named.text,
            header_names: named.names.as_bytes(),
        };
        let value = self.signature_value(&fields, &ts_text, &named.names);
        let mut headers = Vec::new();
        let mut query = Vec::new();
        match &s.signature {
            Location::Header(h) => headers.push((h.clone(), value)),
            Location::Query(q) => query.push((q.clone(), value)),
        }
        if let (Some(h), Some(id)) = (&s.id_header, &id) {
            headers.push((h.clone(), id.clone()));
        }
        if let Some(h) = s.timestamp.as_ref().and_then(|t| t.header.as_ref()) {
            headers.push((h.clone(), ts_text.clone()));
        }
        Ok(Signed {
            headers,
            query,
            id,
            timestamp,
            body: send,
        })
    }

    /// The message id: the caller's (checked against the one id rule) or a
    /// fresh `evt_` id; none for a scheme without an id header.
    fn message_id(&self, msg: &Message<'_>) -> Result<Option<String>, SignError> {
        if self.scheme.id_header.is_none() {
            return Ok(None);
        }
        let id = match msg.id {
            Some(id) => id.to_owned(),
            None => new_id(IdKind::Event).map_err(|_| SignError::Random)?,
        };
        if !crate::message_id::is_message_id(&id) {
            return Err(SignError::InvalidId);
        }
        Ok(Some(id))
    }

    /// The signing time (the caller's, or now) and its text in the scheme's
    /// unit; none and empty for a scheme without a timestamp.
    fn timestamp(&self, msg: &Message<'_>) -> Result<(Option<UnixTime>, String), SignError> {
        let Some(spec) = &self.scheme.timestamp else {
            return Ok((None, String::new()));
        };
        let t = msg.timestamp.unwrap_or_else(UnixTime::now);
        let v = t.in_unit(spec.unit);
        if !(0..=999_999_999_999_999_999).contains(&v) {
            return Err(SignError::TimestampOutOfRange);
        }
        Ok((Some(t), v.to_string()))
    }

    /// The signature value, written in place: [ts item] [names item] then
    /// one tagged signature per version and key, strongest version first,
    /// list-separated; then rearranged when the scheme gives an `order`.
    fn signature_value(&self, fields: &Fields<'_>, ts_text: &str, names: &str) -> String {
        let s = &self.scheme;
        let f = &s.format;
        let sep = f.list_separator.as_deref().unwrap_or("");
        let mut value = String::with_capacity(16 + self.keys.len() * 140);
        // Opens a `{tag}{tag_separator}` item; the caller writes its value.
        let open = |value: &mut String, tag: &str| {
            if !value.is_empty() {
                value.push_str(sep);
            }
            value.push_str(tag);
            value.push_str(&f.tag_separator);
        };
        if let Some(tt) = &f.timestamp_tag {
            open(&mut value, tt);
            value.push_str(ts_text);
        }
        if let Some(h) = &s.signed_headers {
            open(&mut value, &h.tag);
            value.push_str(names);
        }
        for v in &s.stronger {
            for k in &self.keys {
                if let Key::Hmac(m) = k {
                    open(&mut value, &v.tag);
                    let mac = m.compute(v.message.parts(), fields);
                    s.encoding.encode_into(mac.as_bytes(), &mut value);
                }
            }
        }
        let mut whole = None; // the message as one string, for ed25519
        for k in &self.keys {
            if !value.is_empty() {
                value.push_str(sep);
            }
            let (tag, sig) = match k {
                Key::Hmac(m) => (
                    f.tag.as_deref(),
                    SigBytes::Mac(m.compute(s.message.parts(), fields)),
                ),
                Key::Ed25519(Ed25519::Signing(sk)) => {
                    use ed25519_dalek::Signer as _;
                    let m = whole.get_or_insert_with(|| message_bytes(s.message.parts(), fields));
                    let tag = s.asymmetric.as_ref().map(|a| a.tag.as_str());
                    (tag, SigBytes::Ed25519(sk.sign(m).to_bytes()))
                }
                // Refused by Signer::new.
                Key::Ed25519(Ed25519::Public(_)) => continue,
            };
            if let Some(t) = tag {
                value.push_str(t);
                value.push_str(&f.tag_separator);
            }
            s.encoding.encode_into(sig.as_bytes(), &mut value);
        }
        match &f.order {
            Some(order) => in_order(&value, sep, &f.tag_separator, order),
            None => value,
        }
    }

    /// The names item's text (also `{header_names}`) and the `{headers}`
    /// text for `headers`; both empty for a scheme that signs no named
    /// headers.
    fn named_headers(&self, headers: &[(&str, &str)]) -> Result<Rendered, SignError> {
        let Some(spec) = &self.scheme.signed_headers else {
            if !headers.is_empty() {
                return Err(SignError::HeadersNotSigned(self.scheme.name.clone()));
            }
            return Ok(Rendered::default());
        };
        if headers.is_empty() || !headers.iter().all(|(n, _)| is_header_token(n)) {
            return Err(SignError::SignedHeaders);
        }
        let repeated = headers
            .iter()
            .enumerate()
            .any(|(i, (n, _))| headers[..i].iter().any(|(m, _)| m.eq_ignore_ascii_case(n)));
        if repeated {
            return Err(SignError::SignedHeaders);
        }
        Ok(spec.render(headers.iter().map(|(n, v)| (*n, v.as_bytes()))))
    }

    /// What the template's body placeholder stands for, and the body to send
    /// when it is not the one given:
    /// - a `{json:FIELD}` template signs that field's string value;
    /// - a scheme that re-serializes JSON signs and sends the compact form
    ///   of a JSON body (for a fields fallback, it signs the compact form of
    ///   those fields when the body is an object holding any of them) and
    ///   signs a body that is not JSON as it is;
    /// - any other scheme signs the body's bytes untouched.
    fn signed_text<'b>(&self, body: &'b [u8]) -> Result<SignedText<'b>, SignError> {
        let s = &self.scheme;
        if let Some(f) = s.message.json_field() {
            let value = json::string_field(body, f).map_err(SignError::BodyNotJson)?;
            return Ok((Cow::Owned(value.into_bytes()), None));
        }
        let Some(r) = s.reserialize(body) else {
            // No re-serialization, or not JSON: the bytes as they are.
            return Ok((Cow::Borrowed(body), None));
        };
        let send = (r.compact != body).then(|| r.compact.clone());
        Ok(match r.fields {
            Some(projected) => (Cow::Owned(projected), send),
            None if send.is_none() => (Cow::Borrowed(body), None),
            None => (Cow::Owned(r.compact), send),
        })
    }

    /// For schemes whose signature is a query parameter over a JSON field
    /// (`signed-url`): the callback URL for `external_id` (a fresh id when
    /// `None`).
    pub fn sign_url(
        &self,
        base_url: &str,
        external_id: Option<&str>,
    ) -> Result<SignedUrl, SignError> {
        let s = &self.scheme;
        let Location::Query(param) = &s.signature else {
            return Err(SignError::NotAUrlScheme(s.name.clone()));
        };
        check_url_to_sign(base_url, param)?;
        let external_id = match external_id {
            Some(e) => e.to_owned(),
            None => new_id(IdKind::Event).map_err(|_| SignError::Random)?,
        };
        let fields = Fields {
            id: b"",
            timestamp: b"",
            body: external_id.as_bytes(),
            headers: b"",
            header_names: b"",
        };
        // The template's JSON-field placeholder stands for the external id;
        // literal parts are signed as written. `prepare` guarantees a key,
        // and a URL scheme has no asymmetric keys (`Scheme::validate`).
        let Some(Key::Hmac(key)) = self.keys.first() else {
            return Err(SignError::NotAUrlScheme(s.name.clone()));
        };
        let sig = s
            .encoding
            .encode(key.compute(s.message.parts(), &fields).as_bytes());
        let signed = Signed {
            headers: Vec::new(),
            query: vec![(query_name(s).to_owned(), sig.clone())],
            id: None,
            timestamp: None,
            body: None,
        };
        Ok(SignedUrl {
            url: signed.url(base_url),
            external_id,
            signature: sig,
        })
    }
}

/// The bytes the MAC covers, and the body to send when it is not the one
/// given.
type SignedText<'b> = (Cow<'b, [u8]>, Option<Vec<u8>>);

/// A URL [`Signer::sign_url`] can sign into one its verifier accepts:
/// `http://` or `https://` (any case) with a host, and not already holding
/// the signature parameter `param` (read as the verifier reads a query).
fn check_url_to_sign(url: &str, param: &str) -> Result<(), SignError> {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let rest = ["https://", "http://"]
        .iter()
        .find(|p| lower.starts_with(**p))
        .map(|p| &url[p.len()..])
        .ok_or(SignError::UrlNotHttp)?;
    if rest.is_empty() || rest.starts_with(['/', '?', '#']) {
        return Err(SignError::UrlNotHttp);
    }
    let head = url.split_once('#').map_or(url, |(h, _)| h);
    if let Some((_, query)) = head.split_once('?') {
        if query_pairs(query).any(|(k, _)| k == param) {
            return Err(SignError::UrlHoldsSignature(param.to_owned()));
        }
    }
    Ok(())
}

fn query_name(s: &Scheme) -> &str {
    match &s.signature {
        Location::Query(q) | Location::Header(q) => q,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_a_verifier_could_not_read() {
        let standard = Scheme::preset("standard").unwrap();
        let secret = Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let many = vec![secret.clone(); crate::MAX_SIGNATURES + 1];
        assert_eq!(
            Signer::new(standard.clone(), &many).unwrap_err(),
            SetupError::TooManySecrets
        );
        assert!(Signer::new(standard.clone(), &many[1..]).is_ok());
        let signer = Signer::new(standard, &[secret]).unwrap();
        for t in [UnixTime::from_millis(-1500), UnixTime::from_secs(-1)] {
            let m = Message {
                body: b"x",
                id: Some("m"),
                timestamp: Some(t),
            };
            assert_eq!(signer.sign(&m), Err(SignError::TimestampOutOfRange));
        }
        let native = Signer::new(
            Scheme::preset("native").unwrap(),
            &[Secret::new("whsec_x").unwrap()],
        )
        .unwrap();
        let far = Message {
            body: b"x",
            id: Some("m"),
            timestamp: Some(UnixTime::from_millis(1_000_000_000_000_000_000)),
        };
        assert_eq!(native.sign(&far), Err(SignError::TimestampOutOfRange));
    }

    /// Issue 20, 14d: a URL its own verifier would refuse (the signature
    /// parameter twice) and a URL that is not HTTP are refused.
    #[test]
    fn sign_url_refuses_urls_it_cannot_sign() {
        let signer = Signer::new(
            Scheme::preset("signed-url").unwrap(),
            &[Secret::new("whsec_x").unwrap()],
        )
        .unwrap();
        let sign = |url: &str| signer.sign_url(url, Some("e1")).map(|s| s.url);
        for url in [
            "https://x.example/cb?signature=abc",
            "https://x.example/cb?a=1&signature=",
            "HTTPS://x.example/cb?signature#frag",
        ] {
            assert_eq!(
                sign(url),
                Err(SignError::UrlHoldsSignature("signature".into())),
                "{url}"
            );
        }
        for url in [
            "ftp://x.example/cb",
            "https://",
            "http:///cb",
            "x.example/cb",
            "",
        ] {
            assert_eq!(sign(url), Err(SignError::UrlNotHttp), "{url}");
        }
        for url in [
            "https://x.example/cb?signatures=1&my_signature=2",
            "HTTP://x.example",
            "https://x.example/cb#signature=1",
        ] {
            assert!(sign(url).is_ok(), "{url}");
        }
    }

    /// Named headers go to the signature only for a scheme that signs them,
    /// and each once.
    #[test]
    fn named_headers_only_where_signed_and_once() {
        let github = Signer::new(
            Scheme::preset("github").unwrap(),
            &[Secret::new("s").unwrap()],
        )
        .unwrap();
        assert_eq!(
            github.sign_with_headers(&Message::new(b"{}"), &[("x-a", "1")]),
            Err(SignError::HeadersNotSigned("github".into()))
        );
        let mut scheme = Scheme::preset("stripe").unwrap();
        scheme.signed_headers = Some(crate::SignedHeaders {
            tag: "h".into(),
            separator: ";".into(),
            each: Default::default(),
            join: String::new(),
        });
        scheme.message = crate::Template::parse("{timestamp}.{headers}{body}").unwrap();
        let signer = Signer::new(scheme, &[Secret::new("s").unwrap()]).unwrap();
        let twice = [("x-a", "1"), ("X-A", "2")];
        assert_eq!(
            signer.sign_with_headers(&Message::new(b"{}"), &twice),
            Err(SignError::SignedHeaders)
        );
        assert!(signer
            .sign_with_headers(&Message::new(b"{}"), &twice[..1])
            .is_ok());
    }
}
