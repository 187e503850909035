//! Webhook secrets and identifiers: generation, redaction, zeroizing.

use std::fmt;

use sha2::{Digest, Sha256};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::encoding::{base64_encode, hex_encode};

/// Prefix of every secret this crate generates.
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes of a new base64 secret ([`crate::Scheme::new_secret`]) when
/// the caller names no length.
pub const DEFAULT_SECRET_BYTES: usize = 32;

/// Length of the random part of secrets and identifiers.
pub const NANOID_LEN: usize = 21;

const NANOID_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

/// Why a secret cannot be used or made.
///
/// No variant carries any part of the secret.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SecretError {
    /// The secret is the empty string.
    #[error("secret is empty")]
    Empty,
    /// The scheme needs a longer secret.
    #[error("secret is shorter than the scheme's minimum of {min} characters")]
    TooShort {
        /// The scheme's minimum length in characters.
        min: usize,
    },
    /// The scheme derives its key by base64-decoding the secret, and the
    /// secret (after its prefix) is not base64.
    #[error("secret is not valid base64 after its `whsec_` prefix")]
    NotBase64,
    /// No secret was given where at least one is needed.
    #[error("no secret given")]
    None,
    /// A requested random length is outside what is allowed.
    #[error("secret length must be between {min} and {max} bytes")]
    BadLength {
        /// Smallest allowed.
        min: usize,
        /// Largest allowed.
        max: usize,
    },
    /// The operating system's random source failed.
    #[error("operating system random source failed")]
    Random,
    /// An id kind other than `evt`, `wh`, `app` or `secret`.
    #[error("unknown id kind: evt, wh, app or secret")]
    UnknownIdKind,
    /// The secret carries an ed25519 key prefix (`whsk_`, `whpk_`) but is
    /// not a usable key of that kind; the reason names the rule.
    #[error("ed25519 key: {0}")]
    Ed25519(&'static str),
}

/// A webhook secret string, such as `whsec_yxrTwIuHnHs9Wwb9LdYD6`.
///
/// Its memory is zeroed on drop, and `Debug`/`Display` never print it: read it
/// with [`Secret::expose`] only where it must leave the process (once, to the
/// user who created it).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a secret string. Fails on the empty string.
    pub fn new(secret: impl Into<String>) -> Result<Self, SecretError> {
        let s = Zeroizing::new(secret.into());
        if s.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(Secret(s))
    }

    /// A new `whsec_` + 21-character nanoid secret.
    pub fn generate() -> Result<Self, SecretError> {
        Ok(Secret(Zeroizing::new(format!(
            "{SECRET_PREFIX}{}",
            nanoid(NANOID_LEN)?.as_str()
        ))))
    }

    /// A new Standard Webhooks secret: `whsec_` + base64 of `bytes` random
    /// bytes (24 to 64).
    pub fn generate_base64(bytes: usize) -> Result<Self, SecretError> {
        if !(24..=64).contains(&bytes) {
            return Err(SecretError::BadLength { min: 24, max: 64 });
        }
        let mut raw = Zeroizing::new(vec![0u8; bytes]);
        getrandom::fill(&mut raw).map_err(|_| SecretError::Random)?;
        Ok(Secret(Zeroizing::new(format!(
            "{SECRET_PREFIX}{}",
            base64_encode(&raw)
        ))))
    }

    /// The plaintext. Every call site is a place the secret leaves the type.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `hex(SHA-256(secret string))`: the lookup hash stored beside the
    /// ciphertext.
    pub fn hash_hex(&self) -> String {
        hex_encode(&Sha256::digest(self.0.as_bytes()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The kinds of identifier the design uses, each with its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// `secret_…`: a stored secret row.
    Secret,
    /// `wh_…`: a webhook endpoint.
    Webhook,
    /// `evt_…`: an event (also the message id of a delivery).
    Event,
    /// `app_…`: an application.
    App,
}

impl std::str::FromStr for IdKind {
    type Err = SecretError;

    /// `evt`, `wh`, `app` or `secret` (a trailing `_` is allowed: `evt_`).
    fn from_str(kind: &str) -> Result<Self, SecretError> {
        match kind.strip_suffix('_').unwrap_or(kind) {
            "secret" => Ok(IdKind::Secret),
            "wh" => Ok(IdKind::Webhook),
            "evt" => Ok(IdKind::Event),
            "app" => Ok(IdKind::App),
            _ => Err(SecretError::UnknownIdKind),
        }
    }
}

impl IdKind {
    /// The prefix, underscore included.
    pub fn prefix(self) -> &'static str {
        match self {
            IdKind::Secret => "secret_",
            IdKind::Webhook => "wh_",
            IdKind::Event => "evt_",
            IdKind::App => "app_",
        }
    }
}

/// A new identifier: the kind's prefix + 21 characters of the nanoid
/// alphabet. Event ids are time-ordered: 9 characters of base 36
/// (`0-9a-z`, the same order under the C and the usual libc/ICU collations)
/// counting milliseconds since the epoch, then 12 random characters (72
/// bits). The indexes that hold event ids (events, outbox) then take new
/// rows at their right edge, as with KSUID or UUIDv7, instead of on a random
/// leaf page of an index that, with months of history, no longer fits in
/// memory (the UUIDv4 problem). The other kinds are 21 random characters.
pub fn new_id(kind: IdKind) -> Result<String, SecretError> {
    if kind == IdKind::Event {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let random = nanoid(NANOID_LEN - TIME_CHARS)?;
        return Ok(format!(
            "{}{}{}",
            kind.prefix(),
            base36(ms),
            random.as_str()
        ));
    }
    Ok(format!("{}{}", kind.prefix(), nanoid(NANOID_LEN)?.as_str()))
}

/// Characters of an event id that encode its creation time.
const TIME_CHARS: usize = 9;

/// `n` in base 36, `TIME_CHARS` digits, zero-padded (36^9 ms reach the year
/// 5138; later values keep their last 9 digits).
fn base36(mut n: u128) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = [b'0'; TIME_CHARS];
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(n % 36) as usize];
        n /= 36;
    }
    out.iter().map(|&b| b as char).collect()
}

/// A message id derived from the content, for a message that arrives
/// without one: `msg_` + the first 32 hex digits of SHA-256(body). The same
/// body always gets the same id, so a provider's retry of it is recognised.
pub fn content_id(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    format!("msg_{}", hex_encode(&digest[..16]))
}

/// `len` characters from `A-Za-z0-9_-`, uniformly (64 symbols, so one random
/// byte masked to 6 bits is unbiased).
fn nanoid(len: usize) -> Result<Zeroizing<String>, SecretError> {
    let mut raw = Zeroizing::new(vec![0u8; len]);
    getrandom::fill(&mut raw).map_err(|_| SecretError::Random)?;
    let mut s = Zeroizing::new(String::with_capacity(len));
    for b in raw.iter() {
        s.push(NANOID_ALPHABET[(b & 63) as usize] as char);
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ids_are_stable_and_distinct() {
        // SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a3...
        assert_eq!(content_id(b"abc"), "msg_ba7816bf8f01cfea414140de5dae2223");
        assert_eq!(content_id(b"abc"), content_id(b"abc"));
        assert_ne!(content_id(b"abc"), content_id(b"abd"));
    }

    #[test]
    fn generated_shapes() {
        let s = Secret::generate().unwrap();
        assert_eq!(s.expose().len(), 6 + 21);
        assert!(s.expose().starts_with("whsec_"));
        assert!(s.expose()[6..]
            .bytes()
            .all(|b| NANOID_ALPHABET.contains(&b)));
        assert_ne!(s, Secret::generate().unwrap());
        let b = Secret::generate_base64(32).unwrap();
        assert_eq!(
            crate::encoding::base64_decode(&b.expose()[6..])
                .unwrap()
                .len(),
            32
        );
        assert_eq!(
            Secret::generate_base64(23),
            Err(SecretError::BadLength { min: 24, max: 64 })
        );
        let id = new_id(IdKind::Event).unwrap();
        assert!(id.starts_with("evt_") && id.len() == 25);
        assert!(id[4..].bytes().all(|b| NANOID_ALPHABET.contains(&b)));
        let app = new_id(IdKind::App).unwrap();
        assert!(app.starts_with("app_") && app.len() == 25);
    }

    #[test]
    fn event_ids_sort_by_time() {
        assert_eq!(base36(0), "000000000");
        assert_eq!(base36(35), "00000000z");
        assert_eq!(base36(36), "000000010");
        // 2026-11-30 in ms, and a millisecond later.
        assert!(base36(1_796_000_000_000) < base36(1_796_000_000_001));
        let mut ids: Vec<String> = Vec::new();
        for _ in 0..3 {
            ids.push(new_id(IdKind::Event).unwrap());
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted, "later ids sort after earlier ones");
        assert_ne!(
            new_id(IdKind::Event).unwrap(),
            new_id(IdKind::Event).unwrap()
        );
    }

    #[test]
    fn debug_redacts() {
        let s = Secret::new("whsec_topsecretvalue").unwrap();
        assert!(!format!("{s:?}").contains("topsecret"));
        assert_eq!(Secret::new(""), Err(SecretError::Empty));
    }

    #[test]
    fn hash_matches_design_document() {
        let s = Secret::new("whsec_yxrTwIuHnHs9Wwb9LdYD6").unwrap();
        assert_eq!(
            s.hash_hex(),
            "2dae15292d45e7ac7aadea0ddc9d783f8fe6a0f50652851668e7a814bfe8dbd0"
        );
    }
}
