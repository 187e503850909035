//! Signing at claim, for the portable flavour: its database stores rows
//! unsigned and seals every secret to a public key, and `claim()` hands
//! over the endpoint's scheme and the sealed secrets that sign now. The
//! sender opens them with the sealing keys it was given and signs the
//! attempt with the core, with the attempt's own timestamp (the Standard
//! Webhooks spec asks for one per attempt).
//!
//! This is the one place a dispatcher holds secrets, and only in the
//! portable flavour; a native database signs, and sends `sealed` NULL.
//! Opened secrets are kept in a bounded cache keyed by the SHA-256 of
//! their sealed form (which names one stored secret: each seal is
//! randomized), so the RSA decryption (about 10 ms) is paid once per
//! secret, not per delivery; evicted and dropped secrets are zeroized
//! ([`hookseal::Secret`] wipes itself).

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use hookseal::{Message, Scheme, SealingKeys, Secret, Signer, UnixTime};
use lru::LruCache;
use sha2::{Digest, Sha256};

use crate::deliver::Job;

/// Opened secrets kept at most (an endpoint has a few; a worker sees at
/// most this many endpoints' secrets without opening one again).
pub const OPENED_CACHE: usize = 10_000;

/// Parsed schemes kept at most (presets and descriptions).
const SCHEME_CACHE: usize = 1_000;

/// The sealing keys and what has been opened with them.
pub struct Sealed {
    keys: Arc<SealingKeys>,
    opened: Mutex<LruCache<[u8; 32], Secret>>,
    schemes: Mutex<LruCache<String, Scheme>>,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealed").field("keys", &self.keys).finish()
    }
}

/// Why an attempt could not be signed. No variant holds a secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignFailure {
    /// The database is the portable flavour and this worker was given no
    /// sealing key.
    #[error("the claim handed over sealed secrets and this worker has no sealing key; start it with --sealing-key-file")]
    NoKeys,
    /// The row came without a scheme (a database older than the build).
    #[error("the claim gave no scheme to sign with")]
    NoScheme,
    /// The endpoint had no active secret at the claim.
    #[error("the endpoint has no active secret to sign with")]
    NoSecret,
    /// The scheme is not one the core accepts.
    #[error("cannot sign with the endpoint's scheme: {0}")]
    Scheme(String),
    /// A sealed secret did not open (sealed to a key this worker lacks).
    #[error("cannot open the endpoint's sealed secret: {0}; give this worker every sealing key secrets are sealed to")]
    Open(hookseal::SealError),
    /// The core refused to sign.
    #[error("cannot sign: {0}")]
    Sign(String),
    /// Native flavour: the database could not sign (its server log names
    /// why: a stored secret that does not decrypt under its keys).
    #[error("cannot sign: the database could not sign this attempt (an endpoint secret that does not decrypt under the server keys; the server log's hookseal WARNING names the message)")]
    Database,
}

impl Sealed {
    /// Signs with secrets sealed to any of `keys`.
    pub fn new(keys: Arc<SealingKeys>) -> Self {
        Sealed {
            keys,
            opened: Mutex::new(LruCache::new(
                NonZeroUsize::new(OPENED_CACHE).unwrap_or(NonZeroUsize::MIN),
            )),
            schemes: Mutex::new(LruCache::new(
                NonZeroUsize::new(SCHEME_CACHE).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }

    /// Signs `job` now when its claim handed over sealed secrets: fills
    /// its headers (and query parameters, as headers, as the native
    /// flavour's headers object holds them) and, for a scheme that
    /// re-serializes JSON, replaces the body with the form it signed.
    /// Nothing to do for a job the database signed.
    pub async fn sign(&self, job: &mut Job) -> Result<(), SignFailure> {
        let Some(sealed) = job.sealed.as_ref() else {
            return Ok(());
        };
        let scheme = self.scheme(job.scheme.as_deref().ok_or(SignFailure::NoScheme)?)?;
        let take = scheme.secrets_to_sign(sealed.len());
        if take == 0 {
            return Err(SignFailure::NoSecret);
        }
        let mut secrets = Vec::with_capacity(take);
        for stored in &sealed[..take] {
            secrets.push(self.open(stored).await?);
        }
        let signer = Signer::new(scheme, &secrets).map_err(|e| SignFailure::Sign(e.to_string()))?;
        let signed = signer
            .sign(&Message {
                body: job.body.as_bytes(),
                id: Some(&job.event_id),
                timestamp: Some(UnixTime::now()),
            })
            .map_err(|e| SignFailure::Sign(e.to_string()))?;
        job.headers = signed.headers.into_iter().chain(signed.query).collect();
        if let Some(body) = signed.body {
            // The core writes JSON.stringify's form of a JSON body: UTF-8.
            job.body = String::from_utf8(body)
                .map_err(|_| SignFailure::Sign("re-serialized body is not UTF-8".into()))?;
        }
        Ok(())
    }

    fn scheme(&self, text: &str) -> Result<Scheme, SignFailure> {
        let mut cache = self.schemes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = cache.get(text) {
            return Ok(s.clone());
        }
        let s = Scheme::from_text(text).map_err(|e| SignFailure::Scheme(e.to_string()))?;
        cache.put(text.to_owned(), s.clone());
        Ok(s)
    }

    /// One sealed secret, opened (from the cache, or on a blocking thread:
    /// an RSA decryption).
    async fn open(&self, stored: &str) -> Result<Secret, SignFailure> {
        let id: [u8; 32] = Sha256::digest(stored.as_bytes()).into();
        if let Some(s) = self
            .opened
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
        {
            return Ok(s.clone());
        }
        let keys = self.keys.clone();
        let stored = stored.to_owned();
        let secret = tokio::task::spawn_blocking(move || keys.open(&stored))
            .await
            .map_err(|_| SignFailure::Open(hookseal::SealError::OpenFailed))?
            .map_err(SignFailure::Open)?;
        self.opened
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .put(id, secret.clone());
        Ok(secret)
    }

    /// How many opened secrets are cached.
    pub fn cached(&self) -> usize {
        self.opened.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}
