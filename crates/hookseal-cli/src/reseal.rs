//! `hookseal reseal`: the portable flavour's secrets moved to the newest
//! sealing key (`hookseal_dispatch::reseal`).

use clap::Args;

use crate::dispatch::sealing_keys;
use crate::{failed, print, usage, with_database, Fail};

/// `hookseal reseal` arguments.
#[derive(Args)]
pub struct ResealArgs {
    /// `postgres://` URL of the role that installed hookseal (the only one
    /// that reads hookseal.secrets; never printed).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// The opening keys of the secrets to move (repeatable; a file may hold
    /// several keys). The newest registered public key seals.
    #[arg(
        long = "sealing-key-file",
        value_name = "FILE",
        env = "HOOKSEAL_SEALING_KEY_FILE",
        value_delimiter = ',',
        required = true
    )]
    sealing_key_files: Vec<std::path::PathBuf>,
    /// Rows per statement.
    #[arg(long, default_value_t = 100)]
    batch: i64,
}

/// Reseals, then prints how many moved; exit 1 if any could not be opened.
pub fn run(args: ResealArgs) -> Result<u8, Fail> {
    let Some(keys) = sealing_keys(&args.sealing_key_files)? else {
        return Err(usage("--sealing-key-file is needed"));
    };
    with_database(&args.database_url, |client| async move {
        let done = hookseal_dispatch::reseal::reseal(&client, &keys, args.batch)
            .await
            .map_err(|e| failed(format!("nothing more resealed: {e}")))?;
        print(&format!(
            "resealed {} secret(s) to sealing key {}",
            done.moved, done.key_id
        ))?;
        if done.unopened.is_empty() {
            return Ok(0);
        }
        Err(failed(format!(
            "{} secret(s) left as they were: no --sealing-key-file opens them, or what opened is not the stored secret ({})",
            done.unopened.len(),
            done.unopened.join(", ")
        )))
    })
}
