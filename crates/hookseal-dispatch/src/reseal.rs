//! Moving sealed secrets to the newest sealing key (portable flavour):
//! `hookseal reseal`.
//!
//! The database can seal but never open, so rotating the sealing key is
//! done here: each secret still sealed to an older key is opened with the
//! opening keys, checked against its stored hash, sealed to the newest
//! registered public key with the core's `seal()`, and written back only if
//! the row still holds what was read (a concurrent revoke or reseal wins).
//! Runs as the role that installed hookseal (it reads `hookseal.secrets`,
//! which no hookseal role may); batches of `batch` rows, each its own
//! statement, so a stop midway leaves every row either old or new.

use hookseal::{seal, seal_as, SealedForm, SealingKeys};
use hookseal_postgres::{Described, Flavour};
use thiserror::Error;
use tokio_postgres::Client;

/// What a reseal did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Resealed {
    /// The key id every resealed secret is now sealed to.
    pub key_id: String,
    /// Secrets moved to it.
    pub moved: u64,
    /// Ids of secrets none of the opening keys opened, or whose opened
    /// value did not match the stored hash: left as they were.
    pub unopened: Vec<String>,
}

/// Why a reseal could not run. No variant carries a secret.
#[derive(Debug, Error)]
pub enum ResealError {
    /// The database holds the native flavour, whose secrets are rewrapped
    /// in the database.
    #[error("this database has the native flavour: rotate its server key with hookseal.old_server_keys and SELECT hookseal.rewrap_secrets()")]
    Native,
    /// No sealing key is registered.
    #[error(
        "no sealing key is registered: SELECT hookseal.register_sealing_key(public_key) first"
    )]
    NoKey,
    /// The newest registered public key is unusable.
    #[error("the newest registered sealing key {0}: {1}")]
    BadKey(String, hookseal::SealError),
    /// A database call failed (a role that may not read hookseal.secrets
    /// gets permission denied here: run as the role that installed).
    #[error("{0}")]
    Database(String),
}

fn db(e: tokio_postgres::Error) -> ResealError {
    ResealError::Database(Described(&e).to_string())
}

/// Reseals every secret not sealed to the newest registered key.
pub async fn reseal(
    client: &Client,
    keys: &SealingKeys,
    batch: i64,
) -> Result<Resealed, ResealError> {
    if hookseal_postgres::check_extension(client)
        .await
        .map_err(|e| ResealError::Database(e.to_string()))?
        == Flavour::Native
    {
        return Err(ResealError::Native);
    }
    let (key_id, public) = newest_key(client).await?;
    let mut done = Resealed {
        key_id: key_id.clone(),
        ..Resealed::default()
    };
    loop {
        let rows = client
            .query(
                "SELECT s.id, s.secret, s.hash FROM hookseal.secrets s \
                 WHERE hookseal._needs_rewrap(s.secret) AND s.id <> ALL($1) ORDER BY s.id LIMIT $2",
                &[&done.unopened, &batch.max(1)],
            )
            .await
            .map_err(db)?;
        if rows.is_empty() {
            return Ok(done);
        }
        for row in rows {
            let (id, stored, hash): (String, String, String) = (row.get(0), row.get(1), row.get(2));
            match reseal_one(keys, &public, &stored, &hash) {
                Some(new) => done.moved += swap(client, &id, &stored, &new).await?,
                None => done.unopened.push(id),
            }
        }
    }
}

/// The newest registered key (`hookseal._newest_sealing_key()`, the rule
/// `_needs_rewrap` and new secrets follow).
async fn newest_key(client: &Client) -> Result<(String, String), ResealError> {
    let row = client
        .query_one(
            "SELECT id, public_key FROM hookseal._newest_sealing_key()",
            &[],
        )
        .await
        .map_err(db)?;
    let (Some(id), Some(public)): (Option<String>, Option<String>) = (row.get(0), row.get(1))
    else {
        return Err(ResealError::NoKey);
    };
    // Sealing a throwaway value proves the key usable before any row moves.
    if let Ok(probe) = hookseal::Secret::new("reseal-probe") {
        seal(&public, &probe).map_err(|e| ResealError::BadKey(id.clone(), e))?;
    }
    Ok((id, public))
}

/// `stored` opened, checked against its hash and sealed to `public`; None
/// when it does not open or is not the secret the row's hash names. A v1a
/// signing key stays in its form (`pgp1k.`).
fn reseal_one(keys: &SealingKeys, public: &str, stored: &str, hash: &str) -> Option<String> {
    let form = SealedForm::of(stored)?;
    let secret = keys.open(stored).ok()?;
    if secret.hash_hex() != hash {
        return None;
    }
    seal_as(public, &secret, form).ok()
}

/// Writes `new` over `old` if the row still holds `old`; 1 if it did.
async fn swap(client: &Client, id: &str, old: &str, new: &str) -> Result<u64, ResealError> {
    client
        .execute(
            "UPDATE hookseal.secrets SET secret = $3 WHERE id = $1 AND secret = $2",
            &[&id, &old, &new],
        )
        .await
        .map_err(db)
}
