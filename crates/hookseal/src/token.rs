//! Signed, expiring tokens: what the portal (`hookseal-portal`) hands out as
//! operator sign-in tokens, endpoint-owner links, session cookies and CSRF
//! fields. Here, not in the portal, because nothing outside the core
//! computes a MAC.
//!
//! A token is `base64url(claims) "." expiry "." base64url(tag)`, the tag an
//! HMAC-SHA256 under a [`TokenKey`] over the purpose, the claims and the
//! expiry (in whole seconds since the epoch), each length-prefixed. The
//! purpose keeps a token of one kind from being taken for another (a
//! session cookie is not a sign-in link). Claims are signed, not encrypted:
//! they hold ids, never a secret. Tags are compared in constant time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::UnixTime;

/// The text form's prefix of a [`TokenKey`].
pub const TOKEN_KEY_PREFIX: &str = "hstk_";

/// Longest token [`TokenKey::open`] reads (a cookie's worth).
pub const MAX_TOKEN_LEN: usize = 4096;

/// The key that signs and checks tokens: 32 random bytes, zeroized on drop.
pub struct TokenKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

/// Why a token key or a token was refused. No variant holds key material
/// or the token's text.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TokenError {
    /// The system's random source failed.
    #[error("the system's random source failed")]
    Random,
    /// Not a token key (`hstk_` and 32 bytes of base64url).
    #[error("not a token key (expected {TOKEN_KEY_PREFIX} and 43 base64url characters)")]
    BadKey,
    /// Not a token of this shape, or longer than [`MAX_TOKEN_LEN`].
    #[error("not a token")]
    Malformed,
    /// The tag does not match: another key, another purpose, or altered.
    #[error(
        "the token's signature does not match (another key, another kind of token, or altered)"
    )]
    BadSignature,
    /// The token expired.
    #[error("the token expired")]
    Expired,
}

impl TokenKey {
    /// A new random key.
    pub fn generate() -> Result<TokenKey, TokenError> {
        let mut raw = Zeroizing::new([0u8; 32]);
        getrandom::fill(raw.as_mut()).map_err(|_| TokenError::Random)?;
        Ok(TokenKey(raw))
    }

    /// From its text form (`hstk_` + base64url); surrounding whitespace,
    /// as a key file ends with a line feed, is ignored.
    pub fn from_text(text: &str) -> Result<TokenKey, TokenError> {
        let b64 = text
            .trim()
            .strip_prefix(TOKEN_KEY_PREFIX)
            .ok_or(TokenError::BadKey)?;
        let bytes = Zeroizing::new(
            URL_SAFE_NO_PAD
                .decode(b64)
                .map_err(|_| TokenError::BadKey)?,
        );
        let mut raw = Zeroizing::new([0u8; 32]);
        if bytes.len() != raw.len() {
            return Err(TokenError::BadKey);
        }
        raw.copy_from_slice(&bytes);
        Ok(TokenKey(raw))
    }

    /// Its text form, for a key file.
    pub fn to_text(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "{TOKEN_KEY_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(self.0.as_ref())
        ))
    }

    /// A token of `purpose` carrying `claims`, valid until `expires`.
    pub fn sign(&self, purpose: &str, claims: &str, expires: UnixTime) -> String {
        let expiry = expires.as_secs();
        let tag = self.tag(purpose, claims, expiry);
        format!(
            "{}.{expiry}.{}",
            URL_SAFE_NO_PAD.encode(claims),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// The claims of a token of `purpose` this key signed, if it has not
    /// expired at `now`. The signature is checked before the expiry, so an
    /// expired token tells nothing about a forged one.
    pub fn open(&self, purpose: &str, token: &str, now: UnixTime) -> Result<String, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(c), Some(e), Some(t), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let claims = URL_SAFE_NO_PAD
            .decode(c)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or(TokenError::Malformed)?;
        let expiry: i64 = e.parse().map_err(|_| TokenError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(t)
            .map_err(|_| TokenError::Malformed)?;
        let want = self.tag(purpose, &claims, expiry);
        if !bool::from(want.as_slice().ct_eq(&tag)) {
            return Err(TokenError::BadSignature);
        }
        if now.as_secs() >= expiry {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }

    fn tag(&self, purpose: &str, claims: &str, expiry: i64) -> Vec<u8> {
        // HMAC takes a key of any length: new_from_slice cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_ref())
            .unwrap_or_else(|_| Hmac::new(&Default::default()));
        for part in [purpose.as_bytes(), claims.as_bytes()] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.update(&expiry.to_be_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> TokenKey {
        TokenKey::from_text("hstk_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8").unwrap()
    }

    #[test]
    fn a_token_opens_until_it_expires_and_only_for_its_purpose() {
        let k = key();
        let t = k.sign("session", "app_1 sid", UnixTime::from_secs(1000));
        assert_eq!(
            k.open("session", &t, UnixTime::from_secs(999)).unwrap(),
            "app_1 sid"
        );
        assert_eq!(
            k.open("session", &t, UnixTime::from_secs(1000)),
            Err(TokenError::Expired)
        );
        assert_eq!(
            k.open("link", &t, UnixTime::from_secs(1)),
            Err(TokenError::BadSignature)
        );
        let other = TokenKey::generate().unwrap();
        assert_eq!(
            other.open("session", &t, UnixTime::from_secs(1)),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn altered_tokens_are_refused() {
        let k = key();
        let t = k.sign("link", "app_1", UnixTime::from_secs(1000));
        let (claims, rest) = t.split_once('.').unwrap();
        let (_, tag) = rest.split_once('.').unwrap();
        // A later expiry with the old tag, other claims with the old tag.
        let later = format!("{claims}.2000.{tag}");
        assert_eq!(
            k.open("link", &later, UnixTime::from_secs(1)),
            Err(TokenError::BadSignature)
        );
        let other = format!("{}.1000.{tag}", URL_SAFE_NO_PAD.encode("app_2"));
        assert_eq!(
            k.open("link", &other, UnixTime::from_secs(1)),
            Err(TokenError::BadSignature)
        );
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            "!.1.x",
            &"a".repeat(MAX_TOKEN_LEN + 1),
        ] {
            assert_eq!(
                k.open("link", bad, UnixTime::from_secs(1)),
                Err(TokenError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn keys_round_trip_and_bad_keys_are_refused_without_their_text() {
        let k = TokenKey::generate().unwrap();
        let again = TokenKey::from_text(&format!("{}\n", k.to_text().as_str())).unwrap();
        let t = k.sign("p", "c", UnixTime::from_secs(10));
        assert_eq!(again.open("p", &t, UnixTime::from_secs(1)).unwrap(), "c");
        for bad in [
            "",
            "hstk_",
            "hstk_AAAA",
            "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
        ] {
            let e = TokenKey::from_text(bad).unwrap_err();
            assert_eq!(e, TokenError::BadKey);
        }
        assert_eq!(format!("{k:?}"), "TokenKey(..)");
    }
}
