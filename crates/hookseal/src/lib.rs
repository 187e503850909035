//! # hookseal
//!
//! Sign and verify webhooks under any of ten schemes — `native`, Standard
//! Webhooks (`standard`), `x-signature`, `flinks`, `fincra`, `signed-url`,
//! `stripe`, `github`, `shopify`, `slack` — or one you describe, and keep
//! webhook secrets encrypted at rest.
//!
//! Schemes are data: every preset is a [`Scheme`] value, and a further
//! scheme of the same shape is a JSON or TOML document away.
//!
//! ```
//! use hookseal::{Message, Scheme, Secret, Signer, UnixTime, Verifier};
//!
//! let secret = Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
//! let scheme = Scheme::preset("standard")?;
//! let now = UnixTime::from_secs(1_614_265_330);
//!
//! let signer = Signer::new(scheme.clone(), &[secret.clone()])?;
//! let signed = signer.sign(&Message {
//!     body: br#"{"test": 2432232314}"#,
//!     id: Some("msg_p5jXN8AQM9LWM0D4loKWxJek"),
//!     timestamp: Some(now),
//! })?;
//! assert_eq!(signed.headers[0].1, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
//!
//! let verifier = Verifier::new(scheme, &[secret])?;
//! verifier.verify(br#"{"test": 2432232314}"#, &signed.headers, now)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Secrets ([`Secret`]) and server keys ([`ServerKey`]) zero their memory on
//! drop and never print their value. Nothing here panics on input: every
//! failure is a typed error naming the rule that failed.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod asym;
mod encoding;
mod headers;
pub mod json;
mod mac;
mod message_id;
mod named;
mod scheme;
#[cfg(feature = "sealing")]
mod sealing;
mod secret;
mod sign;
mod storage;
mod time;
mod token;
mod verify;

use thiserror::Error;

pub use asym::{generate_keypair, public_key};
pub use encoding::{hex_encode, percent_encode, Encoding};
pub use headers::{trim_header_value, HeaderKey, HeaderSource};
pub use json::JsonError;
pub use message_id::{inbound_id, is_message_id, is_message_id_bytes, MAX_MESSAGE_ID_LEN};
pub use named::{HeaderItem, SignedHeaders};
pub use scheme::{
    Algorithm, Asymmetric, Format, HeaderAliases, JsonFallback, KeyDerivation, Location, Part,
    Scheme, SchemeError, Template, TimestampSpec, Version, MIN_CONFIGURED_SECRET_LEN, PRESETS,
};
#[cfg(feature = "sealing")]
pub use sealing::{
    seal, seal_as, SealError, SealedForm, SealingKeys, SEALED_PREFIX, SEALED_SIGNING_PREFIX,
    SEALING_KEY_BITS,
};
pub use secret::{
    content_id, new_id, IdKind, Secret, SecretError, DEFAULT_SECRET_BYTES, NANOID_LEN,
    SECRET_PREFIX,
};
pub use sign::{Message, SignError, Signed, SignedUrl, Signer};
pub use storage::{KeyError, KeyId, Keyring, ServerKey, StorageError};
pub use time::{TimeUnit, UnixTime, DEFAULT_TOLERANCE};
pub use token::{TokenError, TokenKey, MAX_TOKEN_LEN, TOKEN_KEY_PREFIX};
pub use verify::{
    Matched, Verified, Verifier, VerifyError, DEFAULT_MAX_BODY, MAX_SIGNATURES, MAX_VALUE_LEN,
};

/// Why a [`Signer`] or [`Verifier`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SetupError {
    /// The scheme description is inconsistent.
    #[error(transparent)]
    Scheme(#[from] SchemeError),
    /// A secret is unusable for the scheme.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// Several secrets were given for signing, and the scheme's signature
    /// value holds only one signature.
    #[error("scheme `{0}` carries one signature; sign with one secret")]
    OneSecretOnly(String),
    /// More secrets than a verifier reads signatures ([`MAX_SIGNATURES`]).
    #[error("at most {MAX_SIGNATURES} secrets sign one message")]
    TooManySecrets,
    /// A public key (`whpk_`) was given to a [`Signer`]: it verifies, it
    /// cannot sign.
    #[error("a public key (whpk_) verifies but cannot sign; sign with the whsk_ key")]
    PublicKeyCannotSign,
}
