//! Secrets at rest: AES-256-GCM under a server key.
//!
//! Two stored forms decrypt:
//! - the design documents' form `hex(iv).hex(ciphertext || tag)`, which names
//!   no key (a [`Keyring`] tries each of its keys; the GCM tag tells which fits);
//! - the versioned form `hs1:<key id>:hex(iv).hex(ciphertext || tag)`, which
//!   names the server key by its [`KeyId`], so keys can be rotated and rows
//!   re-encrypted lazily.
//!
//! Every encryption uses a fresh random 12-byte IV.

use std::fmt;

use aes_gcm::aead::Aead;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use sha2::{Digest, Sha256};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::encoding::{hex_decode, hex_encode};
use crate::secret::Secret;

const VERSION_TAG: &str = "hs1";
const IV_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Longest stored string accepted (a secret is small; this bounds work).
const MAX_STORED_LEN: usize = 4096;

/// Why a server key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    /// The key is not exactly 64 hexadecimal characters.
    #[error("server key must be 64 hex characters (32 bytes)")]
    BadFormat,
    /// A keyring was built with no key.
    #[error("keyring has no server key")]
    Empty,
}

/// Why a stored secret could not be decrypted or a secret encrypted.
///
/// No variant carries key material or plaintext.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StorageError {
    /// The stored string has neither the `ivhex.cthex` nor the
    /// `hs1:<key id>:ivhex.cthex` shape.
    #[error("stored secret is not `ivhex.cthex` or `hs1:<key id>:ivhex.cthex`")]
    Malformed,
    /// The IV or ciphertext part is not lowercase hex of even length.
    #[error("stored secret has invalid hex")]
    BadHex,
    /// The IV is not 12 bytes.
    #[error("stored secret's IV is {0} bytes, expected 12")]
    BadIvLength(usize),
    /// The ciphertext is shorter than the 16-byte GCM tag.
    #[error("stored secret's ciphertext is truncated")]
    Truncated,
    /// The versioned form names a key the keyring does not hold.
    #[error("stored secret was encrypted under server key {0}, which is not loaded")]
    UnknownKey(String),
    /// Authentication failed: wrong server key, or the data was altered.
    #[error("stored secret does not decrypt under the server key (wrong key or tampered data)")]
    DecryptFailed,
    /// The decrypted plaintext is not a usable secret (not UTF-8, or empty).
    #[error("stored secret decrypted to something that is not a secret string")]
    BadPlaintext,
    /// The encryption primitive or random source failed.
    #[error("encryption failed")]
    EncryptFailed,
    /// The secret is too long to store: its stored form would exceed the
    /// 4,096 characters a stored secret may have (about 2,000 bytes of
    /// secret), so it could never be read back.
    #[error("secret is too long to store (its stored form would exceed 4096 characters)")]
    TooLong,
}

/// Short public name of a server key: the first 8 hex characters of
/// SHA-256(`"hookseal key id\0"` || key). Safe to log and store.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyId(String);

impl KeyId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A 32-byte AES-256-GCM server key. Zeroed on drop; `Debug` shows only its
/// [`KeyId`].
#[derive(Clone)]
pub struct ServerKey {
    key: Zeroizing<[u8; 32]>,
    id: KeyId,
}

impl ServerKey {
    /// From 64 hex characters (either case; surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let t = Zeroizing::new(text.trim().to_ascii_lowercase());
        if t.len() != 64 {
            return Err(KeyError::BadFormat);
        }
        let bytes = Zeroizing::new(hex_decode(&t).ok_or(KeyError::BadFormat)?);
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&bytes);
        Ok(Self::from_bytes(key))
    }

    /// A new random key.
    pub fn generate() -> Result<Self, StorageError> {
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(key.as_mut()).map_err(|_| StorageError::EncryptFailed)?;
        Ok(Self::from_bytes(key))
    }

    fn from_bytes(key: Zeroizing<[u8; 32]>) -> Self {
        let mut h = Sha256::new();
        h.update(b"hookseal key id\0");
        h.update(key.as_ref());
        let id = KeyId(hex_encode(&h.finalize()[..4]));
        ServerKey { key, id }
    }

    /// The key as 64 lowercase hex characters (to hand to an operator once).
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex_encode(self.key.as_ref()))
    }

    /// This key's public id.
    pub fn id(&self) -> &KeyId {
        &self.id
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(self.key.as_ref().into())
    }

    /// Encrypts in the documents' form `ivhex.cthex`.
    pub fn encrypt(&self, secret: &Secret) -> Result<String, StorageError> {
        let mut iv = [0u8; IV_LEN];
        getrandom::fill(&mut iv).map_err(|_| StorageError::EncryptFailed)?;
        let ct = self
            .cipher()
            .encrypt(Nonce::from_slice(&iv), secret.expose().as_bytes())
            .map_err(|_| StorageError::EncryptFailed)?;
        let stored = format!("{}.{}", hex_encode(&iv), hex_encode(&ct));
        // What decrypt() would refuse is refused here (found by the
        // `stored_secret` fuzz target: a 2,028-byte secret encrypted and
        // then did not decrypt).
        if stored.len() > MAX_STORED_LEN {
            return Err(StorageError::TooLong);
        }
        Ok(stored)
    }

    /// Encrypts in the versioned form `hs1:<key id>:ivhex.cthex`.
    pub fn encrypt_versioned(&self, secret: &Secret) -> Result<String, StorageError> {
        let stored = format!("{VERSION_TAG}:{}:{}", self.id, self.encrypt(secret)?);
        if stored.len() > MAX_STORED_LEN {
            return Err(StorageError::TooLong);
        }
        Ok(stored)
    }

    /// Decrypts either stored form; a versioned one must name this key.
    pub fn decrypt(&self, stored: &str) -> Result<Secret, StorageError> {
        let parsed = Stored::parse(stored)?;
        if let Some(kid) = parsed.key_id {
            if kid != self.id.0 {
                return Err(StorageError::UnknownKey(kid.to_owned()));
            }
        }
        self.open(&parsed)
    }

    fn open(&self, s: &Stored<'_>) -> Result<Secret, StorageError> {
        let pt = Zeroizing::new(
            self.cipher()
                .decrypt(Nonce::from_slice(&s.iv), s.ct.as_slice())
                .map_err(|_| StorageError::DecryptFailed)?,
        );
        let text = std::str::from_utf8(&pt).map_err(|_| StorageError::BadPlaintext)?;
        Secret::new(text).map_err(|_| StorageError::BadPlaintext)
    }
}

impl fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerKey({})", self.id)
    }
}

struct Stored<'a> {
    key_id: Option<&'a str>,
    iv: [u8; IV_LEN],
    ct: Vec<u8>,
}

impl<'a> Stored<'a> {
    fn parse(stored: &'a str) -> Result<Self, StorageError> {
        if stored.len() > MAX_STORED_LEN {
            return Err(StorageError::Malformed);
        }
        let (key_id, body) = match stored.strip_prefix("hs1:") {
            Some(rest) => {
                let (kid, body) = rest.split_once(':').ok_or(StorageError::Malformed)?;
                if kid.is_empty() {
                    return Err(StorageError::Malformed);
                }
                (Some(kid), body)
            }
            None => (None, stored),
        };
        let (iv_hex, ct_hex) = body.split_once('.').ok_or(StorageError::Malformed)?;
        let iv = hex_decode(iv_hex).ok_or(StorageError::BadHex)?;
        let ct = hex_decode(ct_hex).ok_or(StorageError::BadHex)?;
        if iv.len() != IV_LEN {
            return Err(StorageError::BadIvLength(iv.len()));
        }
        if ct.len() < TAG_LEN {
            return Err(StorageError::Truncated);
        }
        let mut ivb = [0u8; IV_LEN];
        ivb.copy_from_slice(&iv);
        Ok(Stored {
            key_id,
            iv: ivb,
            ct,
        })
    }
}

/// The server keys a process holds: one primary that encrypts, and older ones
/// that still decrypt during a rotation.
#[derive(Clone, Debug)]
pub struct Keyring {
    keys: Vec<ServerKey>,
}

impl Keyring {
    /// A keyring whose primary (encrypting) key is `primary`.
    pub fn new(primary: ServerKey) -> Self {
        Keyring {
            keys: vec![primary],
        }
    }

    /// Adds an older key that still decrypts.
    pub fn with_old_key(mut self, key: ServerKey) -> Self {
        if !self.keys.iter().any(|k| k.id == key.id) {
            self.keys.push(key);
        }
        self
    }

    /// The encrypting key.
    pub fn primary(&self) -> &ServerKey {
        &self.keys[0]
    }

    /// Encrypts under the primary key, in the versioned form.
    pub fn encrypt(&self, secret: &Secret) -> Result<String, StorageError> {
        self.primary().encrypt_versioned(secret)
    }

    /// Decrypts either form: a versioned one with the key it names, the
    /// documents' form with whichever key authenticates it.
    pub fn decrypt(&self, stored: &str) -> Result<Secret, StorageError> {
        let parsed = Stored::parse(stored)?;
        match parsed.key_id {
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.id.0 == kid)
                .ok_or_else(|| StorageError::UnknownKey(kid.to_owned()))?
                .open(&parsed),
            None => {
                for k in &self.keys {
                    match k.open(&parsed) {
                        Err(StorageError::DecryptFailed) => continue,
                        other => return other,
                    }
                }
                Err(StorageError::DecryptFailed)
            }
        }
    }

    /// True when `stored` is not in the versioned form under the primary key.
    pub fn needs_rewrap(&self, stored: &str) -> bool {
        match Stored::parse(stored) {
            Ok(s) => s.key_id != Some(self.primary().id.as_str()),
            Err(_) => false,
        }
    }

    /// Decrypts `stored` and encrypts it again under the primary key.
    pub fn rewrap(&self, stored: &str) -> Result<String, StorageError> {
        self.encrypt(&self.decrypt(stored)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "1d28023fc6320b42781a4d811465e3a23b2a4f21340e27c06e683c1e987ed5f9";
    const STORED: &str = "e21b8662eb68e7f031663e85.b029e0c3c1557db59b035b5a1c377ca68148950acc49bc17c7e15db25dd63421a8ad55bb7e9960a8fb36a3";

    #[test]
    fn what_encrypts_decrypts_and_too_long_is_refused() {
        let key = ServerKey::from_hex(KEY).unwrap();
        let ring = Keyring::new(ServerKey::from_hex(KEY).unwrap());
        let fits = Secret::new("s".repeat(2000)).unwrap();
        assert_eq!(ring.decrypt(&ring.encrypt(&fits).unwrap()).unwrap(), fits);
        assert_eq!(key.decrypt(&key.encrypt(&fits).unwrap()).unwrap(), fits);
        let long = Secret::new("s".repeat(2028)).unwrap();
        assert_eq!(ring.encrypt(&long), Err(StorageError::TooLong));
        assert_eq!(key.encrypt(&long), Err(StorageError::TooLong));
    }

    #[test]
    fn design_document_example_decrypts() {
        let k = ServerKey::from_hex(KEY).unwrap();
        assert_eq!(
            k.decrypt(STORED).unwrap().expose(),
            "whsec_yxrTwIuHnHs9Wwb9LdYD6"
        );
    }

    #[test]
    fn fresh_iv_each_time_and_round_trip() {
        let k = ServerKey::from_hex(KEY).unwrap();
        let s = Secret::new("whsec_abc").unwrap();
        let a = k.encrypt(&s).unwrap();
        let b = k.encrypt(&s).unwrap();
        assert_ne!(a, b);
        assert_eq!(k.decrypt(&a).unwrap(), s);
        let v = k.encrypt_versioned(&s).unwrap();
        assert!(v.starts_with(&format!("hs1:{}:", k.id())));
        assert_eq!(k.decrypt(&v).unwrap(), s);
    }

    #[test]
    fn rotation() {
        let old = ServerKey::from_hex(KEY).unwrap();
        let new = ServerKey::generate().unwrap();
        let ring = Keyring::new(new.clone()).with_old_key(old.clone());
        assert_eq!(
            ring.decrypt(STORED).unwrap().expose(),
            "whsec_yxrTwIuHnHs9Wwb9LdYD6"
        );
        assert!(ring.needs_rewrap(STORED));
        let re = ring.rewrap(STORED).unwrap();
        assert!(!ring.needs_rewrap(&re));
        assert_eq!(
            new.decrypt(&re).unwrap().expose(),
            "whsec_yxrTwIuHnHs9Wwb9LdYD6"
        );
        assert!(matches!(old.decrypt(&re), Err(StorageError::UnknownKey(_))));
        let only_new = Keyring::new(new);
        assert_eq!(only_new.decrypt(STORED), Err(StorageError::DecryptFailed));
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let k = ServerKey::from_hex(KEY).unwrap();
        let cases = [
            ("", StorageError::Malformed),
            ("abc", StorageError::Malformed),
            ("e21.b0", StorageError::BadHex),
            ("e21b.b029", StorageError::BadIvLength(2)),
            ("E21B8662EB68E7F031663E85.b029", StorageError::BadHex),
            ("e21b8662eb68e7f031663e85.b029", StorageError::Truncated),
            ("hs1::e21b8662eb68e7f031663e85.b0", StorageError::Malformed),
            ("hs1:zz", StorageError::Malformed),
        ];
        for (input, want) in cases {
            assert_eq!(k.decrypt(input).unwrap_err(), want, "{input:?}");
        }
        let mut tampered = STORED.to_owned();
        tampered.replace_range(30..31, "1");
        assert_eq!(
            k.decrypt(&tampered).unwrap_err(),
            StorageError::DecryptFailed
        );
        assert_eq!(ServerKey::from_hex("00").unwrap_err(), KeyError::BadFormat);
        assert_eq!(
            ServerKey::from_hex(&"g".repeat(64)).unwrap_err(),
            KeyError::BadFormat
        );
        assert!(!format!("{k:?}").contains("1d28023f"));
    }
}
