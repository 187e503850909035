//! Schemes as data: one general description ([`Scheme`]) and the ten named
//! presets of the contract.
//!
//! A scheme says which MAC to compute over which bytes, how to write it, and
//! where it travels. Every preset is a value of the same struct; a user can
//! describe a further scheme of the same shape in JSON or TOML (it is
//! `serde`-deserializable) and [`Scheme::validate`] checks it.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::encoding::Encoding;
use crate::headers::is_header_token;
use crate::named::SignedHeaders;
use crate::time::TimeUnit;

/// The MAC's hash function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// HMAC-SHA256 (32-byte MAC).
    Sha256,
    /// HMAC-SHA512 (64-byte MAC).
    Sha512,
}

impl Algorithm {
    /// MAC length in bytes.
    pub fn mac_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 32,
            Algorithm::Sha512 => 64,
        }
    }
}

/// How the HMAC key is derived from the secret string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyDerivation {
    /// The UTF-8 bytes of the whole secret string, any prefix included.
    Utf8,
    /// Base64-decode of the secret after `prefix` (the prefix is optional on
    /// input, as Standard Webhooks libraries accept both).
    Base64 {
        /// Prefix stripped before decoding, e.g. `whsec_`.
        prefix: String,
    },
}

/// Where the signature travels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Location {
    /// An HTTP header of this name (matched case-insensitively).
    Header(String),
    /// A query parameter of this name in the callback URL, percent-encoded.
    Query(String),
}

/// How signatures are written inside the header or parameter value.
///
/// - No list separator: the value is `{tag}{tag_separator}{sig}` (or just
///   `{sig}` when there is no tag), and anything else is malformed.
/// - With a list separator: the value is a list of `{tag}{tag_separator}{v}`
///   items; items tagged `tag` are signatures, an item tagged `timestamp_tag`
///   is the timestamp, and items with any other tag (other versions) are
///   skipped.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Format {
    /// Version tag that marks a signature, e.g. `v1`, `sha256`, `v0`.
    pub tag: Option<String>,
    /// Between tag and value, e.g. `,` (Standard Webhooks) or `=`.
    pub tag_separator: String,
    /// Between list items, e.g. a space (Standard Webhooks) or `,` (Stripe).
    pub list_separator: Option<String>,
    /// Tag of the list item that carries the timestamp, e.g. Stripe's `t`.
    pub timestamp_tag: Option<String>,
    /// The order in which signing writes the list's items, by tag (each of
    /// the scheme's tags once), e.g. Hook0's `["t", "v0", "h", "v1"]`. By
    /// default: the timestamp, the signed-headers names, the `stronger`
    /// versions, then `tag`. Verifying reads items in any order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<Vec<String>>,
}

/// Where the timestamp comes from, and its unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimestampSpec {
    /// Header carrying the timestamp; `None` when it travels inside the
    /// signature value under [`Format::timestamp_tag`].
    #[serde(default)]
    pub header: Option<String>,
    /// Seconds or milliseconds.
    pub unit: TimeUnit,
}

/// JSON re-serialization, for schemes whose reference senders sign
/// `JSON.stringify(payload)` and whose reference receivers re-serialize the
/// parsed body before comparing. "Compact" is exactly
/// `JSON.stringify(JSON.parse(body))` ([`crate::json::compact`]).
///
/// Verifying tries the raw body first, then these forms. Signing a JSON body
/// sends its compact form and signs the text named below, so raw-comparing
/// and re-serializing receivers both accept; a body that is not JSON is sent
/// and signed as it is.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JsonFallback {
    /// No re-serialization: the body's bytes are signed and checked as they
    /// are (big integers and number text survive).
    #[default]
    None,
    /// Verify: then the compact form. Sign: the compact form.
    Compact,
    /// Verify: then the compact form, then the compact JSON of an object
    /// holding only these top-level fields, in this order. Sign: that object
    /// when the body is an object holding any of them (`fincra`'s
    /// `{event, data}`), else the compact form.
    Fields(Vec<String>),
}

/// Asymmetric signatures beside the HMAC ones: ed25519 over the same signed
/// message, in the same list, under their own version tag (Standard
/// Webhooks' `v1a`). A key's prefix says which kind it is: `secret_prefix`
/// keys sign (and verify), `public_prefix` keys only verify, anything else is
/// an HMAC secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Asymmetric {
    /// Version tag of the ed25519 signatures, e.g. `v1a`.
    pub tag: String,
    /// Prefix of a signing key, e.g. `whsk_`: base64 of the 32-byte seed
    /// followed by the 32-byte public key (64 bytes).
    pub secret_prefix: String,
    /// Prefix of a public key, e.g. `whpk_`: base64 of its 32 bytes.
    pub public_prefix: String,
}

/// Another spelling of a scheme's headers, read when the scheme's own
/// signature header is absent: Svix-powered senders write Standard Webhooks
/// as `svix-id`, `svix-timestamp`, `svix-signature`. A request uses one
/// spelling throughout (never `webhook-id` with `svix-signature`); signing
/// always writes the scheme's own names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderAliases {
    /// The signature header's other name.
    pub signature: String,
    /// The id header's other name (when the scheme has an id header).
    #[serde(default)]
    pub id: Option<String>,
    /// The timestamp header's other name (when the timestamp is a header).
    #[serde(default)]
    pub timestamp: Option<String>,
}

/// A signature version stronger than the scheme's `format.tag`, with its
/// own signed message (say `v1` over named headers beside `v0` over the
/// body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Version {
    /// The version's tag in the signature list.
    pub tag: String,
    /// What it signs.
    pub message: Template,
}

/// One piece of the signed-message template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Literal text.
    Literal(String),
    /// The message id (`{id}`).
    Id,
    /// The timestamp as written in its header (`{timestamp}`).
    Timestamp,
    /// The body bytes (`{body}`).
    Body,
    /// A top-level string field of the JSON body (`{json:NAME}`).
    JsonField(String),
    /// The headers the signature names (`{headers}`), each written as
    /// [`SignedHeaders::each`] says, in the order named.
    Headers,
    /// The names of those headers (`{header_names}`), lower case, joined by
    /// [`SignedHeaders::separator`].
    HeaderNames,
}

/// The signed message as a template such as `{id}.{timestamp}.{body}`.
///
/// Placeholders: `{id}`, `{timestamp}`, `{body}`, `{json:FIELD}`,
/// `{headers}`, `{header_names}`; `{{` and `}}` are literal braces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Template {
    text: String,
    parts: Vec<Part>,
}

impl Template {
    /// Parses a template.
    pub fn parse(text: &str) -> Result<Self, SchemeError> {
        let bad = |why: &str| SchemeError::Template(format!("{why} in {text:?}"));
        let parts = tokens(text)
            .map_err(bad)?
            .into_iter()
            .map(|t| match t {
                Token::Literal(s) => Ok(Part::Literal(s)),
                Token::Placeholder(n) => match n.as_str() {
                    "id" => Ok(Part::Id),
                    "timestamp" => Ok(Part::Timestamp),
                    "body" => Ok(Part::Body),
                    "headers" => Ok(Part::Headers),
                    "header_names" => Ok(Part::HeaderNames),
                    n => match n.strip_prefix("json:") {
                        Some(f) if !f.is_empty() => Ok(Part::JsonField(f.to_owned())),
                        _ => Err(bad(&format!("unknown placeholder `{{{n}}}`"))),
                    },
                },
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Template {
            text: text.to_owned(),
            parts,
        })
    }

    /// The pieces, in order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub(crate) fn uses(&self, p: &Part) -> bool {
        self.parts.contains(p)
    }

    pub(crate) fn json_field(&self) -> Option<&str> {
        self.parts.iter().find_map(|p| match p {
            Part::JsonField(f) => Some(f.as_str()),
            _ => None,
        })
    }
}

/// A piece of a template's text.
pub(crate) enum Token {
    Literal(String),
    Placeholder(String),
}

/// A template's text as literals and `{name}` placeholders, `{{` and `}}`
/// standing for braces: the one reader of message templates and of
/// [`SignedHeaders::each`].
pub(crate) fn tokens(text: &str) -> Result<Vec<Token>, &'static str> {
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' | '}' if chars.peek() == Some(&c) => {
                chars.next();
                lit.push(c);
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => name.push(c),
                        None => return Err("unclosed `{`"),
                    }
                }
                if !lit.is_empty() {
                    out.push(Token::Literal(std::mem::take(&mut lit)));
                }
                out.push(Token::Placeholder(name));
            }
            '}' => return Err("lone `}`"),
            c => lit.push(c),
        }
    }
    if !lit.is_empty() {
        out.push(Token::Literal(lit));
    }
    Ok(out)
}

impl TryFrom<String> for Template {
    type Error = SchemeError;
    fn try_from(s: String) -> Result<Self, SchemeError> {
        Template::parse(&s)
    }
}

impl From<Template> for String {
    fn from(t: Template) -> String {
        t.text
    }
}

/// Why a scheme description cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SchemeError {
    /// No preset has this name.
    #[error("unknown scheme `{0}` (known: {known})", known = PRESETS.join(", "))]
    Unknown(String),
    /// [`Scheme::for_keys`]: no preset and no preset's asymmetric pair has
    /// this name; the message lists [`Scheme::key_names`].
    #[error("unknown scheme `{0}` (known: {known})", known = Scheme::key_names().join(", "))]
    UnknownForKeys(String),
    /// The message template does not parse.
    #[error("bad message template: {0}")]
    Template(String),
    /// The parts of the description contradict each other.
    #[error("inconsistent scheme `{name}`: {why}")]
    Inconsistent {
        /// The scheme's name.
        name: String,
        /// What contradicts what.
        why: String,
    },
    /// A JSON or TOML description did not parse.
    #[error("scheme description does not parse: {0}")]
    Parse(String),
}

/// A complete description of one signing scheme.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scheme {
    /// Name, e.g. `standard`.
    pub name: String,
    /// MAC hash function.
    pub algorithm: Algorithm,
    /// How the MAC is written.
    pub encoding: Encoding,
    /// How the key comes from the secret.
    pub key: KeyDerivation,
    /// Where the signature travels.
    pub signature: Location,
    /// How signatures are written inside that value.
    #[serde(default)]
    pub format: Format,
    /// Header carrying the message id, when the template uses `{id}`.
    #[serde(default)]
    pub id_header: Option<String>,
    /// Timestamp source and unit, when the scheme has one.
    #[serde(default)]
    pub timestamp: Option<TimestampSpec>,
    /// The signed message.
    pub message: Template,
    /// Re-serialization tried when the raw body does not verify.
    #[serde(default)]
    pub json_fallback: JsonFallback,
    /// Ed25519 signatures under their own tag, beside the HMAC ones.
    #[serde(default)]
    pub asymmetric: Option<Asymmetric>,
    /// Other names of the headers, read when the signature header is absent.
    #[serde(default)]
    pub header_aliases: Option<HeaderAliases>,
    /// Versions stronger than `format.tag`, strongest first. A request's
    /// strongest version present must verify; a correct weaker signature
    /// never rescues a wrong stronger one. Signing writes every version.
    #[serde(default)]
    pub stronger: Vec<Version>,
    /// The list item naming the headers `{headers}` signs.
    #[serde(default)]
    pub signed_headers: Option<SignedHeaders>,
    /// Shortest secret accepted, in characters.
    #[serde(default = "one")]
    pub min_secret_len: usize,
    /// HTTP status for a signature that does not match or a timestamp outside
    /// the tolerance (missing or malformed input is always 400).
    pub mismatch_status: u16,
}

fn one() -> usize {
    1
}

/// The shortest secret, in characters, that a deployment may configure for
/// any scheme ([`Scheme::check_configured_secret`]), whatever the scheme's own
/// `min_secret_len` (1 for most presets). One request signed with a short
/// secret is enough to guess the secret offline; every provider-generated
/// secret is longer (Stripe's `whsec_` + 32 characters, Slack's 32 hex digits,
/// Shopify's 64), GitHub's documented example is 26 and `hookseal keygen`
/// makes 27.
pub const MIN_CONFIGURED_SECRET_LEN: usize = 16;

/// Names of the ten presets, in the contract's order.
pub const PRESETS: [&str; 10] = [
    "native",
    "standard",
    "x-signature",
    "flinks",
    "fincra",
    "signed-url",
    "stripe",
    "github",
    "shopify",
    "slack",
];

impl Scheme {
    /// A scheme from text, as a user writes it in a flag, a file or an
    /// environment variable: a JSON description (the text starts with `{`),
    /// a TOML description (it holds a `=`), else a preset name. Validated.
    pub fn from_text(text: &str) -> Result<Scheme, SchemeError> {
        let t = text.trim();
        let scheme = if t.starts_with('{') {
            Scheme::from_json(t)?
        } else if t.contains('=') {
            toml::from_str::<Scheme>(t).map_err(|e| SchemeError::Parse(e.to_string()))?
        } else {
            Scheme::preset(t)?
        };
        scheme.validate()?;
        Ok(scheme)
    }

    /// How many of an endpoint's `available` active secrets (newest first)
    /// sign a delivery: all of them, up to [`crate::MAX_SIGNATURES`], when
    /// the signature value is a list; else only the newest. The one rule for
    /// the database's signing and the dispatcher's.
    pub fn secrets_to_sign(&self, available: usize) -> usize {
        if self.format.list_separator.is_some() {
            available.min(crate::MAX_SIGNATURES)
        } else {
            available.min(1)
        }
    }

    /// A new HMAC secret fit for this scheme: `whsec_` + base64 of `bytes`
    /// random bytes (24 to 64) when the key is base64-derived (`standard`;
    /// [`Scheme::takes_secret_bytes`]), else `whsec_` + a 21-character
    /// nanoid (and `bytes` is not used).
    pub fn new_secret(&self, bytes: usize) -> Result<crate::Secret, crate::SecretError> {
        if self.takes_secret_bytes() {
            crate::Secret::generate_base64(bytes)
        } else {
            crate::Secret::generate()
        }
    }

    /// Whether [`Scheme::new_secret`]'s length in bytes has an effect: the
    /// key is the base64 after a prefix (`standard`).
    pub fn takes_secret_bytes(&self) -> bool {
        matches!(self.key, KeyDerivation::Base64 { .. })
    }

    /// The names keys are made for ([`Scheme::for_keys`]): every preset,
    /// and `{preset}-{tag}` for the asymmetric pair of a preset that has
    /// one (`standard-v1a`).
    pub fn key_names() -> Vec<String> {
        Scheme::presets()
            .into_iter()
            .flat_map(|s| {
                let pair = s
                    .asymmetric
                    .as_ref()
                    .map(|a| format!("{}-{}", s.name, a.tag));
                std::iter::once(s.name).chain(pair)
            })
            .collect()
    }

    /// The scheme a key name of [`Scheme::key_names`] stands for, and
    /// whether it names the asymmetric pair ([`Scheme::new_keypair`]) rather
    /// than an HMAC secret ([`Scheme::new_secret`]).
    pub fn for_keys(name: &str) -> Result<(Scheme, bool), SchemeError> {
        if let Ok(s) = Scheme::preset(name) {
            return Ok((s, false));
        }
        name.rsplit_once('-')
            .and_then(|(base, tag)| {
                let s = Scheme::preset(base).ok()?;
                (s.asymmetric.as_ref()?.tag == tag).then_some((s, true))
            })
            .ok_or_else(|| SchemeError::UnknownForKeys(name.to_owned()))
    }

    /// A new ed25519 pair for this scheme's asymmetric signatures:
    /// (signing key, public key), e.g. (`whsk_…`, `whpk_…`). An error for a
    /// scheme without them.
    pub fn new_keypair(&self) -> Result<(crate::Secret, String), crate::SecretError> {
        let a = self.asymmetric.as_ref().ok_or(crate::SecretError::Ed25519(
            "this scheme has no asymmetric signatures",
        ))?;
        crate::asym::generate_keypair(a)
    }

    /// Checks a secret an operator configured for this scheme (an
    /// environment variable, a secrets store) before a deployment starts
    /// with it: at least [`Scheme::min_configured_secret_len`] characters.
    /// The error names the minimum, never the secret. [`crate::Verifier`]
    /// and [`crate::Signer`] apply only [`Scheme::min_secret_len`], so that
    /// stored secrets and published vectors keep working.
    pub fn check_configured_secret(
        &self,
        secret: &crate::Secret,
    ) -> Result<(), crate::SecretError> {
        let min = self.min_configured_secret_len();
        if secret.expose().chars().count() < min {
            return Err(crate::SecretError::TooShort { min });
        }
        Ok(())
    }

    /// The shortest secret a deployment may configure for this scheme: the
    /// scheme's own [`Scheme::min_secret_len`], and never under
    /// [`MIN_CONFIGURED_SECRET_LEN`].
    pub fn min_configured_secret_len(&self) -> usize {
        self.min_secret_len.max(MIN_CONFIGURED_SECRET_LEN)
    }

    /// The rules for `stronger` versions and `signed_headers`.
    /// Tags and separators the header parser can read back (found by the
    /// `scheme_description` fuzz target: a tag holding a newline and `=`
    /// was accepted, and the scheme could not verify its own signatures):
    /// tags and separators are visible ASCII (a list separator may be a
    /// space), and no tag holds the tag or the list separator.
    fn validate_tokens(&self) -> Result<(), &'static str> {
        let f = &self.format;
        let visible = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic());
        // Separators inside a header value must not occur in what they
        // separate: header names (RFC 9110 tokens), base64 and hex
        // signatures, decimal timestamps.
        let separates = |sep: &str| sep.bytes().all(|b| b" \"(),:;<>?@[\\]{}".contains(&b));
        if let Some(list) = &f.list_separator {
            if !separates(list) {
                return Err("`list_separator` must be made of space or \"(),:;<>?@[\\]{}");
            }
        }
        if !f.tag_separator.is_empty() && !visible(&f.tag_separator) {
            return Err("`tag_separator` must be visible ASCII");
        }
        if let Some(list) = f.list_separator.as_deref().filter(|l| !l.is_empty()) {
            if !f.tag_separator.is_empty()
                && (f.tag_separator.contains(list) || list.contains(f.tag_separator.as_str()))
            {
                return Err("`tag_separator` and `list_separator` must not overlap");
            }
        }
        let tags = f
            .tag
            .iter()
            .chain(&f.timestamp_tag)
            .chain(self.stronger.iter().map(|v| &v.tag))
            .chain(self.signed_headers.iter().map(|h| &h.tag))
            .chain(self.asymmetric.iter().map(|a| &a.tag));
        for tag in tags {
            let holds = |sep: &str| !sep.is_empty() && tag.contains(sep);
            if !visible(tag)
                || holds(&f.tag_separator)
                || f.list_separator.as_deref().is_some_and(holds)
            {
                return Err("tags must be visible ASCII without the tag or list separator");
            }
        }
        if let Some(h) = &self.signed_headers {
            h.check(f.list_separator.as_deref())?;
        }
        Ok(())
    }

    fn validate_versions(&self) -> Result<(), &'static str> {
        let templates =
            std::iter::once(&self.message).chain(self.stronger.iter().map(|v| &v.message));
        let uses_headers = templates
            .clone()
            .any(|t| t.uses(&Part::Headers) || t.uses(&Part::HeaderNames));
        if uses_headers != self.signed_headers.is_some() {
            return Err(
                "`{headers}` or `{header_names}` in a template and `signed_headers` go together",
            );
        }
        if uses_headers
            && (self.format.list_separator.is_none()
                || !matches!(self.signature, Location::Header(_)))
        {
            return Err("`signed_headers` names travel in a header's list (`list_separator`)");
        }
        if self.stronger.is_empty() {
            return Ok(());
        }
        if self.format.list_separator.is_none() || self.format.tag.is_none() {
            return Err("`stronger` versions travel beside `tag` in a list (`list_separator`)");
        }
        if self.asymmetric.is_some() || self.json_fallback != JsonFallback::None {
            return Err("`stronger` versions go without `asymmetric` and `json_fallback`");
        }
        let mut tags = self.list_tags();
        let n = tags.len();
        tags.sort_unstable();
        tags.dedup();
        if tags.len() != n || tags.contains(&"") {
            return Err(
                "version, timestamp and signed-headers tags must be non-empty and distinct",
            );
        }
        for t in templates {
            if t.uses(&Part::Id) != self.id_header.is_some()
                || t.uses(&Part::Timestamp) != self.timestamp.is_some()
                || t.parts()
                    .iter()
                    .filter(|p| matches!(p, Part::Body | Part::JsonField(_)))
                    .count()
                    != 1
            {
                return Err(
                    "every version's template uses the same `{id}`/`{timestamp}` and one body",
                );
            }
        }
        Ok(())
    }

    /// The tags of the list's items: versions, `tag`, timestamp, names.
    fn list_tags(&self) -> Vec<&str> {
        let mut tags: Vec<&str> = self.stronger.iter().map(|v| v.tag.as_str()).collect();
        tags.extend(self.format.tag.as_deref());
        tags.extend(self.format.timestamp_tag.as_deref());
        tags.extend(self.signed_headers.as_ref().map(|h| h.tag.as_str()));
        tags
    }

    /// `format.order` names each of the list's tags once.
    fn validate_order(&self) -> Result<(), &'static str> {
        let Some(order) = &self.format.order else {
            return Ok(());
        };
        if self.format.list_separator.is_none() || self.asymmetric.is_some() {
            return Err(
                "`order` arranges the items of a list (`list_separator`), without `asymmetric`",
            );
        }
        let mut tags = self.list_tags();
        let mut given: Vec<&str> = order.iter().map(String::as_str).collect();
        tags.sort_unstable();
        given.sort_unstable();
        if tags != given {
            return Err("`order` names each of the list's tags once (timestamp, signed headers, versions, `tag`)");
        }
        Ok(())
    }

    /// A scheme from a JSON description. Validated.
    pub fn from_json(text: &str) -> Result<Scheme, SchemeError> {
        let scheme: Scheme =
            serde_json::from_str(text).map_err(|e| SchemeError::Parse(e.to_string()))?;
        scheme.validate()?;
        Ok(scheme)
    }

    /// The named preset.
    pub fn preset(name: &str) -> Result<Scheme, SchemeError> {
        use Algorithm::*;
        use Encoding::*;
        let plain = Scheme::plain;
        let s = match name {
            "native" | "standard" => Scheme::standard_family(name == "native"),
            "x-signature" => Scheme {
                json_fallback: JsonFallback::Compact,
                min_secret_len: 10,
                ..plain(name, Sha256, Hex, "x-signature", None, 400)
            },
            "flinks" => plain(name, Sha256, Base64, "X-Flinks-Signature", None, 403),
            "fincra" => Scheme {
                json_fallback: JsonFallback::Fields(vec!["event".into(), "data".into()]),
                ..plain(name, Sha512, Hex, "signature", None, 401)
            },
            "signed-url" => Scheme {
                signature: Location::Query("signature".into()),
                message: tpl("{json:externalId}"),
                ..plain(name, Sha256, Base64, "", None, 403)
            },
            "stripe" => Scheme {
                format: Format {
                    tag: Some("v1".into()),
                    tag_separator: "=".into(),
                    list_separator: Some(",".into()),
                    timestamp_tag: Some("t".into()),
                    order: None,
                },
                timestamp: Some(TimestampSpec {
                    header: None,
                    unit: TimeUnit::Seconds,
                }),
                message: tpl("{timestamp}.{body}"),
                ..plain(name, Sha256, Hex, "Stripe-Signature", None, 401)
            },
            "github" => plain(
                name,
                Sha256,
                Hex,
                "X-Hub-Signature-256",
                Some("sha256"),
                401,
            ),
            "shopify" => plain(name, Sha256, Base64, "X-Shopify-Hmac-Sha256", None, 401),
            "slack" => Scheme {
                timestamp: Some(TimestampSpec {
                    header: Some("X-Slack-Request-Timestamp".into()),
                    unit: TimeUnit::Seconds,
                }),
                message: tpl("v0:{timestamp}:{body}"),
                ..plain(name, Sha256, Hex, "X-Slack-Signature", Some("v0"), 401)
            },
            other => return Err(SchemeError::Unknown(other.to_owned())),
        };
        debug_assert_eq!(s.validate(), Ok(()));
        Ok(s)
    }

    /// A scheme signing the body alone into one header: the shape of most
    /// presets, which then change a field or two.
    fn plain(
        name: &str,
        algorithm: Algorithm,
        encoding: Encoding,
        header: &str,
        tag: Option<&str>,
        mismatch_status: u16,
    ) -> Scheme {
        Scheme {
            name: name.into(),
            algorithm,
            encoding,
            key: KeyDerivation::Utf8,
            signature: Location::Header(header.into()),
            format: Format {
                tag: tag.map(Into::into),
                tag_separator: "=".into(),
                ..Format::default()
            },
            id_header: None,
            timestamp: None,
            message: tpl("{body}"),
            json_fallback: JsonFallback::None,
            asymmetric: None,
            header_aliases: None,
            stronger: Vec::new(),
            signed_headers: None,
            min_secret_len: 1,
            mismatch_status,
        }
    }

    /// `standard` (Standard Webhooks: `webhook-*` headers, base64 `whsec_`
    /// keys, v1a, the `svix-*` aliases) or, with `native`, hookseal's own
    /// variant (`x-webhook-*`, hex, UTF-8 keys, millisecond timestamps).
    fn standard_family(native: bool) -> Scheme {
        let h = |n: &str| match native {
            true => format!("x-webhook-{n}"),
            false => format!("webhook-{n}"),
        };
        Scheme {
            name: if native { "native" } else { "standard" }.into(),
            algorithm: Algorithm::Sha256,
            encoding: if native {
                Encoding::Hex
            } else {
                Encoding::Base64
            },
            key: match native {
                true => KeyDerivation::Utf8,
                false => KeyDerivation::Base64 {
                    prefix: "whsec_".into(),
                },
            },
            signature: Location::Header(h("signature")),
            format: Format {
                tag: Some("v1".into()),
                tag_separator: ",".into(),
                list_separator: Some(" ".into()),
                timestamp_tag: None,
                order: None,
            },
            id_header: Some(h("id")),
            timestamp: Some(TimestampSpec {
                header: Some(h("timestamp")),
                unit: if native {
                    TimeUnit::Milliseconds
                } else {
                    TimeUnit::Seconds
                },
            }),
            message: tpl("{id}.{timestamp}.{body}"),
            json_fallback: JsonFallback::None,
            asymmetric: (!native).then(|| Asymmetric {
                tag: "v1a".into(),
                secret_prefix: "whsk_".into(),
                public_prefix: "whpk_".into(),
            }),
            header_aliases: (!native).then(|| HeaderAliases {
                signature: "svix-signature".into(),
                id: Some("svix-id".into()),
                timestamp: Some("svix-timestamp".into()),
            }),
            stronger: Vec::new(),
            signed_headers: None,
            min_secret_len: 1,
            mismatch_status: 400,
        }
    }

    /// The body a sender of this scheme sends in place of `body`, when it
    /// differs: for a scheme that re-serializes JSON ([`JsonFallback`] other
    /// than `None`, e.g. `x-signature`, `fincra`), the compact form
    /// `JSON.stringify(JSON.parse(body))` of a JSON body. `None`: send `body`
    /// as it is (other schemes, bodies that are not JSON, bodies already
    /// compact). [`crate::Signer::sign`] applies the same rule.
    pub fn body_to_send(&self, body: &[u8]) -> Option<Vec<u8>> {
        self.reserialize(body)
            .map(|r| r.compact)
            .filter(|c| c != body)
    }

    /// `body` in the forms this scheme re-serializes it to (compact, and the
    /// projection of [`JsonFallback::Fields`]); `None` when the scheme does
    /// not re-serialize or the body is not JSON. The one reading of
    /// `json_fallback` for signing, verifying and [`Scheme::body_to_send`].
    pub(crate) fn reserialize(&self, body: &[u8]) -> Option<crate::json::Reserialized> {
        let fields = match &self.json_fallback {
            JsonFallback::None => return None,
            JsonFallback::Compact => None,
            JsonFallback::Fields(f) => Some(f.as_slice()),
        };
        if self.message.json_field().is_some() {
            return None;
        }
        crate::json::reserialize(body, fields).ok()
    }

    /// All ten presets.
    pub fn presets() -> Vec<Scheme> {
        PRESETS
            .iter()
            .filter_map(|n| Scheme::preset(n).ok())
            .collect()
    }

    /// Checks that the parts of the description agree.
    pub fn validate(&self) -> Result<(), SchemeError> {
        let checked = if self.name.is_empty() {
            Err("name is empty")
        } else {
            self.validate_names()
                .and_then(|()| self.validate_template())
                .and_then(|()| self.validate_asymmetric())
                .and_then(|()| self.validate_format())
        };
        checked.map_err(|why| SchemeError::Inconsistent {
            name: self.name.clone(),
            why: why.to_owned(),
        })
    }

    /// Header and parameter names are tokens; aliases name the same
    /// headers the scheme reads.
    fn validate_names(&self) -> Result<(), &'static str> {
        const NOT_TOKENS: &str = "header and parameter names must be non-empty tokens";
        let loc_name = match &self.signature {
            Location::Header(h) | Location::Query(h) => h,
        };
        let own = [Some(loc_name), self.id_header.as_ref()]
            .into_iter()
            .chain([self.timestamp.as_ref().and_then(|t| t.header.as_ref())])
            .flatten();
        if !own.into_iter().all(|h| is_header_token(h)) {
            return Err(NOT_TOKENS);
        }
        if let Some(a) = &self.header_aliases {
            if !matches!(self.signature, Location::Header(_))
                || a.id.is_some() != self.id_header.is_some()
                || a.timestamp.is_some()
                    != self.timestamp.as_ref().is_some_and(|t| t.header.is_some())
            {
                return Err("`header_aliases` name the same headers the scheme reads (signature, id, timestamp)");
            }
            let names = [Some(&a.signature), a.id.as_ref(), a.timestamp.as_ref()];
            if !names.into_iter().flatten().all(|h| is_header_token(h)) {
                return Err(NOT_TOKENS);
            }
        }
        Ok(())
    }

    /// The template's parts agree with the id, timestamp and body the
    /// scheme reads.
    fn validate_template(&self) -> Result<(), &'static str> {
        if self.message.uses(&Part::Id) != self.id_header.is_some() {
            return Err("`{id}` in the template and `id_header` go together");
        }
        if self.message.uses(&Part::Timestamp) != self.timestamp.is_some() {
            return Err("`{timestamp}` in the template and `timestamp` go together");
        }
        if let Some(ts) = &self.timestamp {
            match (&ts.header, &self.format.timestamp_tag) {
                (Some(_), None) => {}
                (None, Some(_)) if self.format.list_separator.is_some() => {}
                _ => {
                    return Err(
                        "the timestamp comes from a header or from a `timestamp_tag` in a list, not both",
                    )
                }
            }
        } else if self.format.timestamp_tag.is_some() {
            return Err("`timestamp_tag` needs `timestamp`");
        }
        let body_parts = self
            .message
            .parts()
            .iter()
            .filter(|p| matches!(p, Part::Body | Part::JsonField(_)))
            .count();
        if body_parts != 1 {
            return Err("the template must use `{body}` or one `{json:FIELD}` exactly once");
        }
        if self.format.list_separator.is_some() && self.format.tag.is_none() {
            return Err("a list of signatures needs a `tag`");
        }
        Ok(())
    }

    /// v1a signatures: in a header's list, under their own tag, over the
    /// body as it is, with two distinct key prefixes.
    fn validate_asymmetric(&self) -> Result<(), &'static str> {
        let Some(a) = &self.asymmetric else {
            return Ok(());
        };
        if self.format.list_separator.is_none() || !matches!(self.signature, Location::Header(_)) {
            return Err("`asymmetric` signatures travel in a header's list (`list_separator`)");
        }
        if a.tag.is_empty() || Some(&a.tag) == self.format.tag.as_ref() {
            return Err("`asymmetric.tag` must be non-empty and differ from `tag`");
        }
        if self.json_fallback != JsonFallback::None {
            return Err("`asymmetric` signs the body as it is (no `json_fallback`)");
        }
        if a.secret_prefix.is_empty()
            || a.public_prefix.is_empty()
            || a.secret_prefix == a.public_prefix
        {
            return Err("`asymmetric` key prefixes must be non-empty and different");
        }
        Ok(())
    }

    /// Separators, versions, tokens, the fallback and the mismatch status.
    fn validate_format(&self) -> Result<(), &'static str> {
        if matches!(self.format.list_separator.as_deref(), Some("")) {
            return Err("`list_separator` is empty");
        }
        self.validate_versions()?;
        self.validate_tokens()?;
        self.validate_order()?;
        if self.format.tag.is_some() && self.format.tag_separator.is_empty() {
            return Err("a `tag` needs a `tag_separator`");
        }
        if self.json_fallback != JsonFallback::None && !self.message.uses(&Part::Body) {
            return Err("`json_fallback` applies to `{body}` templates");
        }
        if !(400..500).contains(&self.mismatch_status) {
            return Err("`mismatch_status` must be a 4xx code");
        }
        Ok(())
    }

    /// The header that carries the signature, if it travels in a header.
    pub fn signature_header(&self) -> Option<&str> {
        match &self.signature {
            Location::Header(h) => Some(h),
            Location::Query(_) => None,
        }
    }

    /// Every header this scheme reads or writes, signature header first.
    pub fn headers(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.signature_header().into_iter().collect();
        v.extend(self.id_header.as_deref());
        v.extend(self.timestamp.as_ref().and_then(|t| t.header.as_deref()));
        v
    }
}

fn tpl(s: &str) -> Template {
    // Preset templates are constants covered by tests; a failure here is a
    // programming error caught by `presets_validate`.
    Template::parse(s).unwrap_or_else(|_| Template {
        text: s.to_owned(),
        parts: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 20, 14f: the names keys are made for are the ones an unknown
    /// name's error lists (`standard-v1a` among them), and each resolves.
    #[test]
    fn key_names_are_what_for_keys_takes_and_lists() {
        let names = Scheme::key_names();
        assert_eq!(names.len(), PRESETS.len() + 1);
        for n in &names {
            let (s, pair) = Scheme::for_keys(n).unwrap();
            assert_eq!(pair, n == "standard-v1a", "{n}");
            assert!(n.starts_with(&s.name), "{n}");
        }
        let e = Scheme::for_keys("bogus").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("unknown scheme `bogus` (known: {})", names.join(", "))
        );
        assert!(e.to_string().contains("standard-v1a"));
        assert!(Scheme::for_keys("native-v1a").is_err());
        assert!(Scheme::for_keys("standard-v2").is_err());
    }

    #[test]
    fn presets_validate() {
        for name in PRESETS {
            let s = Scheme::preset(name).unwrap();
            assert_eq!(s.validate(), Ok(()), "{name}");
            assert!(!s.message.parts().is_empty(), "{name}");
        }
        assert!(matches!(
            Scheme::preset("nope"),
            Err(SchemeError::Unknown(_))
        ));
    }

    #[test]
    fn template_parse() {
        let t = Template::parse("v0:{timestamp}:{body}").unwrap();
        assert_eq!(
            t.parts(),
            &[
                Part::Literal("v0:".into()),
                Part::Timestamp,
                Part::Literal(":".into()),
                Part::Body
            ]
        );
        assert_eq!(
            Template::parse("{{x}}{body}").unwrap().parts()[0],
            Part::Literal("{x}".into())
        );
        for bad in ["{body", "{nope}", "}", "{json:}"] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn inconsistent_descriptions_rejected() {
        let mut s = Scheme::preset("standard").unwrap();
        s.id_header = None;
        assert!(s.validate().is_err());
        let mut s = Scheme::preset("github").unwrap();
        s.mismatch_status = 500;
        assert!(s.validate().is_err());
        let mut s = Scheme::preset("github").unwrap();
        s.message = Template::parse("{id}").unwrap();
        assert!(s.validate().is_err());
    }

    #[test]
    fn tags_and_separators_must_read_back() {
        for name in PRESETS {
            assert!(Scheme::preset(name).unwrap().validate().is_ok(), "{name}");
        }
        let refused = |edit: &dyn Fn(&mut Scheme)| {
            let mut s = Scheme::preset("stripe").unwrap();
            edit(&mut s);
            s.validate().is_err()
        };
        assert!(refused(&|s| s.format.tag = Some("v\n1".into())));
        assert!(
            refused(&|s| s.format.tag = Some("v1=x".into())),
            "holds the tag separator"
        );
        assert!(
            refused(&|s| s.format.tag = Some("v,1".into())),
            "holds the list separator"
        );
        assert!(refused(&|s| s.format.timestamp_tag = Some("t ".into())));
        assert!(refused(&|s| s.format.tag_separator = "\t".into()));
        assert!(refused(&|s| s.format.list_separator = Some("\n".into())));
        assert!(
            refused(&|s| s.format.tag_separator = "=,".into()),
            "overlaps the list separator"
        );
        assert!(
            refused(&|s| s.format.list_separator = Some("-".into())),
            "occurs inside header names"
        );
    }

    #[test]
    fn configured_secrets_have_a_floor_above_the_schemes_minimum() {
        let secret = |s: &str| crate::Secret::new(s).unwrap();
        let github = Scheme::preset("github").unwrap();
        // GitHub's documented example secret (26 characters) is fine.
        assert_eq!(
            github.check_configured_secret(&secret("It's a Secret to Everybody")),
            Ok(())
        );
        for short in ["a", "fifteen-chars-x"] {
            assert_eq!(
                github.check_configured_secret(&secret(short)),
                Err(crate::SecretError::TooShort {
                    min: MIN_CONFIGURED_SECRET_LEN
                })
            );
        }
        assert_eq!(
            github.check_configured_secret(&secret("sixteen-chars-xx")),
            Ok(())
        );
        // A scheme asking for more than the floor keeps its own minimum.
        let mut long = github;
        long.min_secret_len = 40;
        assert_eq!(long.min_configured_secret_len(), 40);
        // Characters, not bytes, as the verifier counts.
        let pg = Scheme::preset("github").unwrap();
        assert!(pg.check_configured_secret(&secret("ééééééééé")).is_err());
    }
}
