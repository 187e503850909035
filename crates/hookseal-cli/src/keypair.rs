//! `hookseal keypair`: a v1a (ed25519) key pair for an endpoint of a
//! portable database, which cannot make one (pgcrypto has no ed25519).
//! The pair is made here by the core, the signing key sealed to the
//! database's newest sealing key (the `pgp1k.` form) and stored with
//! `hookseal.add_sealed_keypair()`; the public key is printed for the
//! receivers. The signing key exists in the clear only in this process's
//! memory (zeroized), never in the database, a log or the output.

use clap::Args;
use hookseal::{seal_as, Scheme, SealedForm};

use crate::{failed, print, with_database, Fail};

/// `hookseal keypair` arguments.
#[derive(Args)]
pub struct KeypairArgs {
    /// `postgres://` URL of an admin role (hookseal_admin) or the owner
    /// (never printed).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// The endpoint that is to sign with the new key pair (its scheme must
    /// have v1a: `standard`).
    #[arg(long)]
    endpoint: String,
    /// The endpoint's other secrets expire after this PostgreSQL interval
    /// ('24 hours'; '0' now), as in rotate_secret(); without it they stay.
    #[arg(long)]
    grace: Option<String>,
}

/// Makes, seals and stores the pair; prints its secret id and public key.
pub fn run(args: KeypairArgs) -> Result<u8, Fail> {
    with_database(&args.database_url, |client| async move {
        let db = |e: tokio_postgres::Error| failed(hookseal_postgres::Described(&e).to_string());
        let row = client
            .query_opt(
                "SELECT e.scheme, k.id, k.public_key FROM hookseal.endpoints e \
                 LEFT JOIN hookseal._newest_sealing_key() k ON true WHERE e.id = $1",
                &[&args.endpoint],
            )
            .await
            .map_err(db)?
            .ok_or_else(|| failed(format!("no endpoint {}", args.endpoint)))?;
        let (scheme, public): (String, Option<String>) = (row.get(0), row.get(2));
        let public = public.ok_or_else(|| {
            failed("no sealing key is registered (hookseal keygen --sealing-key, then register_sealing_key())")
        })?;
        let scheme = Scheme::from_text(&scheme)
            .map_err(|e| failed(format!("the endpoint's scheme: {e}")))?;
        let (signing, public_key) = scheme
            .new_keypair()
            .map_err(|e| failed(format!("cannot make a key pair for this endpoint: {e}")))?;
        let sealed = seal_as(&public, &signing, SealedForm::SigningKey)
            .map_err(|e| failed(format!("cannot seal the signing key: {e}")))?;
        let row = client
            .query_one(
                "SELECT hookseal.add_sealed_keypair($1, $2, $3, $4::text::interval)",
                &[&args.endpoint, &sealed, &signing.hash_hex(), &args.grace],
            )
            .await
            .map_err(db)?;
        let secret_id: String = row.get(0);
        print(&format!("secret_id: {secret_id}"))?;
        print(&format!("public_key: {public_key}"))?;
        Ok(0)
    })
}
