//! Sealed secrets for the portable flavour: the database seals, only the
//! holders of the opening key open.
//!
//! A database without our library cannot keep a key it can use without
//! every superuser (and every dump) holding it too. So the portable flavour
//! seals each secret it generates to a public key with pgcrypto's
//! `pgp_pub_encrypt` (OpenPGP, RSA: the one public-key kind pgcrypto has,
//! and pgcrypto is on every managed PostgreSQL), and the dispatchers and the
//! Lambda, which hold the private key, open it here. The stored form is
//! `pgp1.` and the base64 of the OpenPGP message; a v1a signing key, which
//! the database cannot make (pgcrypto has no ed25519: `hookseal keypair`
//! makes it and seals it here), is stored as `pgp1k.` and the same, so that
//! the database, which never opens it, knows the endpoint signs with key
//! pairs ([`SealedForm`]).
//!
//! OpenPGP itself is the `pgp` crate's (rPGP); nothing of the format is
//! written here beyond the prefix. Opening costs an RSA decryption (about
//! 10 ms at 3,072 bits, release build): callers cache opened secrets by
//! their id.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use pgp::composed::{
    Deserializable, EncryptionCaps, KeyType, Message, SecretKeyParamsBuilder, SignedPublicKey,
    SignedSecretKey, SubkeyParamsBuilder,
};
use pgp::types::KeyDetails as _;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::Secret;

/// The stored form's prefix.
pub const SEALED_PREFIX: &str = "pgp1.";

/// The stored form's prefix for a sealed v1a signing key.
pub const SEALED_SIGNING_PREFIX: &str = "pgp1k.";

/// What a stored sealed value holds, as its prefix says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedForm {
    /// A secret (`pgp1.`): an HMAC secret the database generated.
    Secret,
    /// A v1a signing key (`pgp1k.`), made outside the database.
    SigningKey,
}

impl SealedForm {
    /// The form of a stored value, None when it is not sealed.
    pub fn of(stored: &str) -> Option<SealedForm> {
        if stored.starts_with(SEALED_SIGNING_PREFIX) {
            Some(SealedForm::SigningKey)
        } else if stored.starts_with(SEALED_PREFIX) {
            Some(SealedForm::Secret)
        } else {
            None
        }
    }

    /// The stored form's prefix.
    pub fn prefix(self) -> &'static str {
        match self {
            SealedForm::Secret => SEALED_PREFIX,
            SealedForm::SigningKey => SEALED_SIGNING_PREFIX,
        }
    }
}

/// RSA modulus size of a new sealing key, in bits.
pub const SEALING_KEY_BITS: u32 = 3072;

/// Why a sealing key or a sealed secret could not be used. No variant
/// carries key material or plaintext.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SealError {
    /// The text is not an armored OpenPGP secret key with an encryption key.
    #[error("not a sealing key: {0}")]
    BadKey(&'static str),
    /// The public key given to seal with is unusable.
    #[error("not a sealing public key: {0}")]
    BadPublicKey(&'static str),
    /// The stored value is not in the sealed form (`pgp1.` or `pgp1k.`, and base64).
    #[error("not a sealed secret (expected `pgp1.` or `pgp1k.`, and base64)")]
    NotSealed,
    /// None of the opening keys opens it (sealed to another key, or altered).
    #[error("no opening key opens this sealed secret (sealed to another key, or altered)")]
    OpenFailed,
    /// It opened, and the content is not a usable secret.
    #[error("the sealed content is not a usable secret")]
    BadPlaintext,
    /// Key generation or sealing failed.
    #[error("could not make the key pair or seal")]
    Generate,
}

/// The opening keys, newest first: a secret sealed to any of them opens
/// (rotation: register a new public key, keep the old private key here
/// until no secret is sealed to it).
pub struct SealingKeys {
    keys: Vec<SignedSecretKey>,
}

impl std::fmt::Debug for SealingKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<String> = self
            .keys
            .iter()
            .map(|k| k.fingerprint().to_string())
            .collect();
        f.debug_struct("SealingKeys")
            .field("fingerprints", &ids)
            .finish()
    }
}

impl SealingKeys {
    /// The keys of armored OpenPGP secret keys (each as
    /// [`SealingKeys::generate`] writes it), newest first.
    pub fn from_armored<S: AsRef<str>>(texts: &[S]) -> Result<Self, SealError> {
        if texts.is_empty() {
            return Err(SealError::BadKey("no key given"));
        }
        let keys = texts
            .iter()
            .map(|t| {
                let (key, _) = SignedSecretKey::from_string(t.as_ref())
                    .map_err(|_| SealError::BadKey("not an armored OpenPGP secret key"))?;
                key.verify_bindings()
                    .map_err(|_| SealError::BadKey("its self-signatures do not verify"))?;
                Ok(key)
            })
            .collect::<Result<Vec<_>, SealError>>()?;
        Ok(SealingKeys { keys })
    }

    /// The keys of a key file or variable: one or more armored OpenPGP
    /// secret keys one after the other, newest first (rotation: the new
    /// key above the old).
    pub fn parse(text: &str) -> Result<Self, SealError> {
        const BEGIN: &str = "-----BEGIN PGP PRIVATE KEY BLOCK-----";
        let starts: Vec<usize> = text.match_indices(BEGIN).map(|(i, _)| i).collect();
        // Slices of `text`: no copy of the key material to wipe.
        let blocks: Vec<&str> = starts
            .iter()
            .enumerate()
            .map(|(n, &start)| text[start..starts.get(n + 1).copied().unwrap_or(text.len())].trim())
            .collect();
        if blocks.is_empty() {
            return Err(SealError::BadKey(
                "no armored OpenPGP private key (-----BEGIN PGP PRIVATE KEY BLOCK-----)",
            ));
        }
        SealingKeys::from_armored(&blocks)
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Never true: there is at least one key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// A new key pair: the opening key (armored, for the dispatchers' key
    /// file or secrets store) and the public key to register in the
    /// database (armored). RSA-3072, an encryption subkey under a
    /// certifying primary key, no passphrase.
    pub fn generate() -> Result<(Zeroizing<String>, String), SealError> {
        let mut enc = SubkeyParamsBuilder::default();
        enc.key_type(KeyType::Rsa(SEALING_KEY_BITS))
            .can_sign(false)
            .can_encrypt(EncryptionCaps::All)
            .can_authenticate(false);
        let mut params = SecretKeyParamsBuilder::default();
        params
            .key_type(KeyType::Rsa(SEALING_KEY_BITS))
            .can_certify(true)
            .can_sign(false)
            .can_encrypt(EncryptionCaps::None)
            .primary_user_id("hookseal sealing key".into())
            .subkeys(vec![enc.build().map_err(|_| SealError::Generate)?]);
        let secret = params
            .build()
            .map_err(|_| SealError::Generate)?
            .generate(rand::rngs::OsRng)
            .map_err(|_| SealError::Generate)?;
        let public = SignedPublicKey::from(secret.clone())
            .to_armored_string(Default::default())
            .map_err(|_| SealError::Generate)?;
        let private = secret
            .to_armored_string(Default::default())
            .map_err(|_| SealError::Generate)?;
        Ok((Zeroizing::new(private), public))
    }

    /// Opens a stored sealed secret.
    pub fn open(&self, stored: &str) -> Result<Secret, SealError> {
        let form = SealedForm::of(stored).ok_or(SealError::NotSealed)?;
        let b64 = &stored[form.prefix().len()..];
        let bytes = STANDARD.decode(b64).map_err(|_| SealError::NotSealed)?;
        let plain = self
            .keys
            .iter()
            .find_map(|k| open_with(k, &bytes))
            .ok_or(SealError::OpenFailed)?;
        let text = String::from_utf8(plain.to_vec()).map_err(|_| SealError::BadPlaintext)?;
        Secret::new(text).map_err(|_| SealError::BadPlaintext)
    }
}

/// The plaintext of an OpenPGP message `bytes` if `key` opens it.
fn open_with(key: &SignedSecretKey, bytes: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let mut m = Message::from_bytes(bytes)
        .ok()?
        .decrypt(&"".into(), key)
        .ok()?;
    if m.is_compressed() {
        m = m.decompress().ok()?;
    }
    m.as_data_vec().ok().map(Zeroizing::new)
}

/// Seals `secret` to an armored public key, in the stored form, as the
/// portable flavour's database does with pgcrypto (for tests and for
/// sealing outside the database). The plaintext's copy inside the OpenPGP
/// builder is not zeroized (the `pgp` crate's buffer).
pub fn seal(public_armored: &str, secret: &Secret) -> Result<String, SealError> {
    seal_as(public_armored, secret, SealedForm::Secret)
}

/// [`seal`], in the stored form `form` (a v1a signing key: `pgp1k.`).
pub fn seal_as(
    public_armored: &str,
    secret: &Secret,
    form: SealedForm,
) -> Result<String, SealError> {
    use pgp::composed::MessageBuilder;
    use pgp::crypto::sym::SymmetricKeyAlgorithm;
    let (key, _) = SignedPublicKey::from_string(public_armored)
        .map_err(|_| SealError::BadPublicKey("not an armored OpenPGP public key"))?;
    let sub = key
        .public_subkeys
        .iter()
        .find(|s| s.algorithm().can_encrypt())
        .ok_or(SealError::BadPublicKey("no encryption subkey"))?;
    let mut rng = rand::rngs::OsRng;
    let mut builder = MessageBuilder::from_bytes("", secret.expose().as_bytes().to_vec())
        .seipd_v1(&mut rng, SymmetricKeyAlgorithm::AES128);
    builder
        .encrypt_to_key(&mut rng, &sub)
        .map_err(|_| SealError::Generate)?;
    let bytes = builder.to_vec(rng).map_err(|_| SealError::Generate)?;
    Ok(format!("{}{}", form.prefix(), STANDARD.encode(bytes)))
}
