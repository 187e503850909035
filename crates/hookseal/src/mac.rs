//! Prepared keys: HMAC, and ed25519 for schemes with asymmetric signatures.
//!
//! An HMAC key's inner and outer pad blocks are hashed once, when a
//! [`crate::Signer`] or [`crate::Verifier`] is built; each message then
//! clones that state and feeds the template's pieces in order, with no
//! concatenated copy of the message. Ed25519 needs the message whole
//! ([`message_bytes`]).

use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::asym::{self, Ed25519};
use crate::encoding::base64_decode;
use crate::scheme::{Algorithm, KeyDerivation, Part, Scheme};
use crate::secret::{Secret, SecretError};

/// An HMAC state keyed once.
#[derive(Clone)]
pub(crate) enum MacKey {
    Sha256(Hmac<Sha256>),
    Sha512(Hmac<Sha512>),
}

/// A computed MAC (up to 64 bytes).
pub(crate) struct MacOut {
    buf: [u8; 64],
    len: usize,
}

impl MacOut {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Constant-time equality with a decoded candidate, by `subtle`'s slice
    /// comparison (lengths are public; it returns false for unequal
    /// lengths without looking at the bytes). `bench/ct.sh` checks for
    /// timing that depends on where two MACs differ.
    pub(crate) fn ct_eq(&self, other: &[u8]) -> bool {
        self.as_bytes().ct_eq(other).into()
    }
}

/// The values a template's placeholders stand for.
pub(crate) struct Fields<'a> {
    pub id: &'a [u8],
    pub timestamp: &'a [u8],
    pub body: &'a [u8],
    /// The named headers as the scheme writes them (`{headers}`).
    pub headers: &'a [u8],
    /// Their names (`{header_names}`).
    pub header_names: &'a [u8],
}

impl MacKey {
    pub(crate) fn new(alg: Algorithm, key: &[u8]) -> Self {
        // HMAC accepts keys of any length, so `new_from_slice` cannot fail;
        // the fallback keeps this panic-free regardless.
        match alg {
            Algorithm::Sha256 => MacKey::Sha256(
                Hmac::new_from_slice(key).unwrap_or_else(|_| Hmac::new(&Default::default())),
            ),
            Algorithm::Sha512 => MacKey::Sha512(
                Hmac::new_from_slice(key).unwrap_or_else(|_| Hmac::new(&Default::default())),
            ),
        }
    }

    /// The MAC of the template filled with `f`.
    pub(crate) fn compute(&self, parts: &[Part], f: &Fields<'_>) -> MacOut {
        fn run<M: Mac + Clone>(m: &M, parts: &[Part], f: &Fields<'_>, out: &mut MacOut) {
            let mut m = m.clone();
            for p in parts {
                m.update(match p {
                    Part::Literal(s) => s.as_bytes(),
                    Part::Id => f.id,
                    Part::Timestamp => f.timestamp,
                    Part::Body | Part::JsonField(_) => f.body,
                    Part::Headers => f.headers,
                    Part::HeaderNames => f.header_names,
                });
            }
            let tag = m.finalize().into_bytes();
            out.len = tag.len();
            out.buf[..tag.len()].copy_from_slice(&tag);
        }
        let mut out = MacOut {
            buf: [0; 64],
            len: 0,
        };
        match self {
            MacKey::Sha256(m) => run(m, parts, f, &mut out),
            MacKey::Sha512(m) => run(m, parts, f, &mut out),
        }
        out
    }
}

/// HMAC key bytes for `secret` under `scheme`'s key rule.
pub(crate) fn derive_key(
    scheme: &Scheme,
    secret: &Secret,
) -> Result<Zeroizing<Vec<u8>>, SecretError> {
    let s = secret.expose();
    if s.chars().count() < scheme.min_secret_len {
        return Err(SecretError::TooShort {
            min: scheme.min_secret_len,
        });
    }
    match &scheme.key {
        KeyDerivation::Utf8 => Ok(Zeroizing::new(s.as_bytes().to_vec())),
        KeyDerivation::Base64 { prefix } => {
            let rest = s.strip_prefix(prefix.as_str()).unwrap_or(s);
            let key = Zeroizing::new(base64_decode(rest).ok_or(SecretError::NotBase64)?);
            if key.is_empty() {
                return Err(SecretError::Empty);
            }
            Ok(key)
        }
    }
}

/// A prepared key of either kind.
#[derive(Clone)]
pub(crate) enum Key {
    /// An HMAC secret: signatures under the scheme's `tag`.
    Hmac(MacKey),
    /// An ed25519 key: signatures under the scheme's asymmetric tag.
    Ed25519(Ed25519),
}

/// One prepared key per secret, in order: an ed25519 key when the scheme
/// has asymmetric signatures and the secret carries one of their prefixes,
/// else an HMAC key.
pub(crate) fn prepare(scheme: &Scheme, secrets: &[Secret]) -> Result<Vec<Key>, SecretError> {
    if secrets.is_empty() {
        return Err(SecretError::None);
    }
    secrets
        .iter()
        .map(|s| {
            if let Some(parsed) = scheme.asymmetric.as_ref().and_then(|a| asym::parse(a, s)) {
                return parsed.map(Key::Ed25519);
            }
            Ok(Key::Hmac(MacKey::new(
                scheme.algorithm,
                &derive_key(scheme, s)?,
            )))
        })
        .collect()
}

/// The template filled with `f`, as one byte string (what ed25519 signs).
pub(crate) fn message_bytes(parts: &[Part], f: &Fields<'_>) -> Vec<u8> {
    let mut m = Vec::with_capacity(f.id.len() + f.timestamp.len() + f.body.len() + 8);
    for p in parts {
        m.extend_from_slice(match p {
            Part::Literal(s) => s.as_bytes(),
            Part::Id => f.id,
            Part::Timestamp => f.timestamp,
            Part::Body | Part::JsonField(_) => f.body,
            Part::Headers => f.headers,
            Part::HeaderNames => f.header_names,
        });
    }
    m
}
