//! Ed25519 keys for asymmetric signatures (Standard Webhooks' `v1a`):
//! parsing `whsk_`/`whpk_` strings, generating a pair, deriving the public
//! key. The curve arithmetic is `ed25519-dalek`'s; nothing here is
//! hand-written cryptography.

use ed25519_dalek::{SigningKey, VerifyingKey};
use zeroize::Zeroizing;

use crate::encoding::{base64_decode, base64_encode};
use crate::scheme::Asymmetric;
use crate::secret::{Secret, SecretError};

/// An ed25519 key as a scheme's prefixes say.
#[derive(Clone)]
pub(crate) enum Ed25519 {
    /// A signing key (`whsk_`), which also verifies.
    Signing(Box<SigningKey>),
    /// A public key (`whpk_`): verifies only.
    Public(VerifyingKey),
}

fn bad(reason: &'static str) -> SecretError {
    SecretError::Ed25519(reason)
}

/// `Some` when `secret` carries one of `a`'s prefixes (then it must be a
/// valid key of that kind), `None` for an HMAC secret.
pub(crate) fn parse(a: &Asymmetric, secret: &Secret) -> Option<Result<Ed25519, SecretError>> {
    let s = secret.expose();
    if let Some(b64) = s.strip_prefix(a.secret_prefix.as_str()) {
        return Some(parse_signing(b64));
    }
    let b64 = s.strip_prefix(a.public_prefix.as_str())?;
    Some(parse_public(b64))
}

fn parse_signing(b64: &str) -> Result<Ed25519, SecretError> {
    let raw = Zeroizing::new(base64_decode(b64).ok_or(bad("not canonical base64"))?);
    let Ok(pair) = <&[u8; 64]>::try_from(raw.as_slice()) else {
        return Err(bad("a signing key is 64 bytes (seed, then public key)"));
    };
    // from_keypair checks that the public half is the seed's.
    let key = SigningKey::from_keypair_bytes(pair)
        .map_err(|_| bad("the public half does not belong to the seed"))?;
    Ok(Ed25519::Signing(Box::new(key)))
}

fn parse_public(b64: &str) -> Result<Ed25519, SecretError> {
    let raw = base64_decode(b64).ok_or(bad("not canonical base64"))?;
    let Ok(bytes) = <[u8; 32]>::try_from(raw.as_slice()) else {
        return Err(bad("a public key is 32 bytes"));
    };
    let key = VerifyingKey::from_bytes(&bytes).map_err(|_| bad("not a curve point"))?;
    if key.is_weak() {
        return Err(bad("a small-order point"));
    }
    Ok(Ed25519::Public(key))
}

/// A fresh ed25519 pair in `a`'s format: (signing key, public key), e.g.
/// (`whsk_…`, `whpk_…`).
pub fn generate_keypair(a: &Asymmetric) -> Result<(Secret, String), SecretError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut_slice()).map_err(|_| SecretError::Random)?;
    let key = SigningKey::from_bytes(&seed);
    let pair = Zeroizing::new(key.to_keypair_bytes());
    let secret = Secret::new(format!(
        "{}{}",
        a.secret_prefix,
        base64_encode(pair.as_slice())
    ))?;
    Ok((secret, public_text(a, &key.verifying_key())))
}

/// The public key (`whpk_…`) of a signing key (`whsk_…`) or of a public key
/// (returned as it is), under `a`'s prefixes.
pub fn public_key(a: &Asymmetric, secret: &Secret) -> Result<String, SecretError> {
    match parse(a, secret) {
        None => Err(bad("not an ed25519 key (no whsk_/whpk_ prefix)")),
        Some(Err(e)) => Err(e),
        Some(Ok(Ed25519::Signing(k))) => Ok(public_text(a, &k.verifying_key())),
        Some(Ok(Ed25519::Public(k))) => Ok(public_text(a, &k)),
    }
}

fn public_text(a: &Asymmetric, key: &VerifyingKey) -> String {
    format!("{}{}", a.public_prefix, base64_encode(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scheme;

    fn a() -> Asymmetric {
        Scheme::preset("standard").unwrap().asymmetric.unwrap()
    }

    #[test]
    fn generated_pairs_parse_and_match() {
        let (sk, pk) = generate_keypair(&a()).unwrap();
        assert!(sk.expose().starts_with("whsk_") && sk.expose().len() == 5 + 88);
        assert!(pk.starts_with("whpk_") && pk.len() == 5 + 44);
        assert_eq!(public_key(&a(), &sk).unwrap(), pk);
        assert_eq!(
            public_key(&a(), &Secret::new(pk.clone()).unwrap()).unwrap(),
            pk
        );
        assert_ne!(generate_keypair(&a()).unwrap().1, pk);
    }

    #[test]
    fn bad_keys_say_why() {
        let (sk, pk) = generate_keypair(&a()).unwrap();
        let why = |s: &str| match parse(&a(), &Secret::new(s).unwrap()) {
            Some(Err(SecretError::Ed25519(r))) => r,
            _ => "accepted",
        };
        assert_eq!(
            why("whsk_AAAA"),
            "a signing key is 64 bytes (seed, then public key)"
        );
        assert_eq!(why("whpk_AAAA"), "a public key is 32 bytes");
        assert_eq!(why("whsk_!!"), "not canonical base64");
        // The seed of one key with the public half of another.
        let (other, _) = generate_keypair(&a()).unwrap();
        let mixed = format!("whsk_{}{}", &sk.expose()[5..48], &other.expose()[48..]);
        assert_ne!(why(&mixed), "accepted");
        // The identity point (small order) is refused as a public key.
        let mut ident = [0u8; 32];
        ident[0] = 1;
        assert_eq!(
            why(&format!("whpk_{}", base64_encode(&ident))),
            "a small-order point"
        );
        assert_eq!(why(&pk), "accepted");
        assert!(parse(&a(), &Secret::new("whsec_AAAA").unwrap()).is_none());
    }
}
