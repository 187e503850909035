//! `hookseal portal` (the operator console and owner portal of
//! `hookseal-portal`), `hookseal portal-token` (its key file and operator
//! sign-in tokens) and `hookseal portal-link` (an owner link).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use hookseal::TokenKey;

use crate::{failed, new_private_file, print, usage, with_database, write_private, Fail};

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
    /// Endpoint URLs an owner enters may be in this network (CIDR,
    /// repeatable): give the portal the dispatchers' `--allow`.
    #[arg(
        long = "allow",
        value_name = "CIDR",
        env = "HOOKSEAL_ALLOW",
        value_delimiter = ','
    )]
    allow: Vec<String>,
    /// An origin whose pages may frame the owner portal
    /// (https://app.example.com; repeatable). None: it is never framed.
    #[arg(
        long = "frame-ancestor",
        value_name = "ORIGIN",
        env = "HOOKSEAL_PORTAL_FRAME_ANCESTORS",
        value_delimiter = ','
    )]
    frame_ancestors: Vec<String>,
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
    let frame_ancestors = args
        .frame_ancestors
        .iter()
        .filter(|o| !o.trim().is_empty())
        .map(|o| {
            hookseal_portal::frame_ancestor(o).map_err(|e| usage(format!("--frame-ancestor: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let config = hookseal_portal::Config {
        database_url: args.database_url,
        key,
        secure_cookies: !args.insecure_cookies,
        policy: crate::dispatch::address_policy(&args.allow)?,
        frame_ancestors,
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

/// `hookseal portal-link` arguments.
#[derive(Args)]
pub struct PortalLinkArgs {
    /// `postgres://` URL of a hookseal_admin login (never printed).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// The app whose endpoints the link opens.
    #[arg(long)]
    app: String,
    /// How long the link opens the portal, in seconds (1 to 604800).
    #[arg(long, default_value_t = 3600)]
    ttl: u32,
    /// Where `hookseal portal` is served, e.g. https://webhooks.example.com.
    #[arg(long, default_value = "http://127.0.0.1:8090")]
    base_url: String,
}

/// Prints a link to the owner portal of one app (`hookseal.portal_link`).
pub fn link(args: PortalLinkArgs) -> Result<u8, Fail> {
    let base = args.base_url.trim_end_matches('/').to_owned();
    let path: String = with_database(&args.database_url, |client| async move {
        let ttl = f64::from(args.ttl);
        let row = client
            .query_one(
                "SELECT hookseal.portal_link($1, make_interval(secs => $2))",
                &[&args.app, &ttl],
            )
            .await
            .map_err(|e| failed(hookseal_postgres::Described(&e).to_string()))?;
        Ok(row.get(0))
    })?;
    print(&format!("{base}{path}"))?;
    Ok(0)
}
