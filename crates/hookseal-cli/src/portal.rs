//! `hookseal portal` (the operator console of `hookseal-portal`) and
//! `hookseal portal-token` (its key file and operator sign-in tokens).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use hookseal::TokenKey;

use crate::{failed, new_private_file, print, usage, write_private, Fail};

/// `hookseal portal` arguments.
#[derive(Args)]
pub struct PortalArgs {
    /// `postgres://` URL of a hookseal_admin login (never printed).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// The portal's key file (`hookseal portal-token --new-key`).
    #[arg(long, env = "HOOKSEAL_PORTAL_KEY_FILE")]
    key_file: PathBuf,
    /// Session cookies without `Secure`, for a plain-HTTP name other than
    /// localhost (behind a TLS proxy, leave it out).
    #[arg(long)]
    insecure_cookies: bool,
    /// Log format: text or json.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
}

/// `hookseal portal-token` arguments.
#[derive(Args)]
pub struct PortalTokenArgs {
    /// The portal's key file.
    #[arg(long, env = "HOOKSEAL_PORTAL_KEY_FILE")]
    key_file: PathBuf,
    /// Make the key file (0600; an existing file is never overwritten).
    #[arg(
        long,
        conflicts_with = "operator",
        required_unless_present = "operator"
    )]
    new_key: bool,
    /// Print an operator sign-in token (paste it into the sign-in page).
    #[arg(long)]
    operator: bool,
    /// How long the sign-in token is valid, in seconds.
    #[arg(long, default_value_t = hookseal_portal::OPERATOR_TTL.as_secs())]
    ttl: u64,
}

fn read_key(path: &std::path::Path) -> Result<TokenKey, Fail> {
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
        usage(format!(
            "{}: {e} (make it with hookseal portal-token --new-key --key-file {})",
            path.display(),
            path.display()
        ))
    })?);
    TokenKey::from_text(&text).map_err(|e| usage(format!("{}: {e}", path.display())))
}

/// Serves the console until SIGTERM or SIGINT.
pub fn run(args: PortalArgs) -> Result<u8, Fail> {
    crate::init_tracing(&args.log_format);
    let key = read_key(&args.key_file)?;
    let config = hookseal_portal::Config {
        database_url: args.database_url,
        key,
        secure_cookies: !args.insecure_cookies,
    };
    let rt = tokio::runtime::Runtime::new().map_err(|e| failed(format!("runtime: {e}")))?;
    rt.block_on(async {
        let stop = crate::stop_signal()?;
        hookseal_portal::serve(
            config,
            args.listen,
            |bound| eprintln!("hookseal portal: listening on http://{bound}/"),
            stop,
        )
        .await
        .map_err(|e| failed(e.to_string()))
    })?;
    Ok(0)
}

/// Makes the key file, or prints an operator token.
pub fn token(args: PortalTokenArgs) -> Result<u8, Fail> {
    if args.new_key {
        let file = new_private_file(&args.key_file)?;
        let key = TokenKey::generate().map_err(|e| failed(e.to_string()))?;
        let mut text = key.to_text();
        text.push('\n');
        write_private(file, &args.key_file, text.as_bytes())?;
        eprintln!("portal key written to {}", args.key_file.display());
        return Ok(0);
    }
    if args.ttl == 0 {
        return Err(usage("--ttl: must be at least 1 second"));
    }
    let key = read_key(&args.key_file)?;
    print(&hookseal_portal::operator_token(
        &key,
        Duration::from_secs(args.ttl),
    ))?;
    Ok(0)
}
