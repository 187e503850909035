//! `hookseal`: sign, verify, generate and encrypt webhook secrets from a
//! terminal. A thin layer over the `hookseal` crate: parse arguments, call the
//! core, print, and map failures to exit codes (0 ok, 1 failed, 2 usage).
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use hookseal::{
    new_id, IdKind, Keyring, Message, Scheme, Secret, SecretError, ServerKey, Signer, UnixTime,
    Verifier,
};
use serde_json::json;
use zeroize::Zeroizing;

mod dispatch;
mod history;
mod install;
mod keypair;
mod portal;
mod receive;
mod reseal;

/// Environment variable holding the server key (64 hex characters).
const SERVER_KEY_ENV: &str = "HOOKSEAL_SERVER_KEY";
/// Optional comma-separated older server keys that still decrypt.
const OLD_KEYS_ENV: &str = "HOOKSEAL_OLD_SERVER_KEYS";

#[derive(Parser)]
#[command(
    name = "hookseal",
    version,
    about = "Sign and verify webhooks; generate, encrypt and hash webhook secrets.",
    after_help = "\
Examples:
  export WH_SECRET=$(hookseal keygen --scheme standard)
  echo -n '{\"a\":1}' | hookseal sign --scheme standard --secret-env WH_SECRET
  echo -n '{\"a\":1}' | hookseal verify --scheme standard --secret-env WH_SECRET \\
      -H 'webhook-id: msg_1' -H 'webhook-timestamp: 1735421346' \\
      -H 'webhook-signature: v1,...' --now 1735421346
  hookseal sign-url --secret-env WH_SECRET --url https://example.com/cb
  hookseal keygen --server-key > server.key      # keep it: it decrypts what it encrypts
  HOOKSEAL_SERVER_KEY=$(cat server.key) hookseal encrypt --secret-env WH_SECRET

Secrets are read from environment variables or files, never from the command
line. Exit codes: 0 success (valid), 1 failure (invalid), 2 usage error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the scheme presets with their headers.
    Schemes {
        /// Print full scheme descriptions as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Generate a secret (default), an id, or a server key.
    #[command(
        after_help = "Examples:\n  hookseal keygen\n  hookseal keygen --scheme standard --bytes 32\n  hookseal keygen --scheme standard-v1a\n  hookseal keygen --id evt\n  hookseal keygen --server-key\n  hookseal keygen --sealing-key /etc/hookseal/sealing.asc > sealing.pub.asc"
    )]
    Keygen(KeygenArgs),
    /// Sign a body (stdin or --body-file); prints one `Name: value` line per header.
    ///
    /// `x-signature` and `fincra` send and sign the compact JSON form
    /// (`JSON.stringify(JSON.parse(body))`) of a JSON body: when that differs
    /// from the body given, the body to send follows the headers after an
    /// empty line, like an HTTP message (or goes to --body-out).
    #[command(
        after_help = "Example:\n  echo -n '{}' | hookseal sign --scheme native --secret-env WH_SECRET --id evt_1 --timestamp 1735421346000\n  hookseal sign --scheme x-signature --secret-env S --body-file in.json --body-out send.json"
    )]
    Sign(SignArgs),
    /// Verify a body (stdin or --body-file) against headers; exit 0 valid, 1 invalid.
    #[command(
        after_help = "Example:\n  hookseal verify --scheme github --secret-env GH_SECRET -H 'X-Hub-Signature-256: sha256=...' < body.json"
    )]
    Verify(VerifyArgs),
    /// Make a signed callback URL and its external id (`signed-url` scheme).
    #[command(name = "sign-url")]
    SignUrl(SignUrlArgs),
    /// Encrypt a secret under $HOOKSEAL_SERVER_KEY; prints `ivhex.cthex`.
    Encrypt {
        #[command(flatten)]
        secrets: SecretArgs,
        /// Print the versioned `hs1:<key id>:ivhex.cthex` form.
        #[arg(long)]
        versioned: bool,
    },
    /// Decrypt a stored secret with $HOOKSEAL_SERVER_KEY (and $HOOKSEAL_OLD_SERVER_KEYS).
    Decrypt {
        /// The stored form, `ivhex.cthex` or `hs1:<key id>:ivhex.cthex`.
        #[arg(long)]
        stored: String,
    },
    /// Print hex(SHA-256(secret)), the lookup hash stored beside a secret.
    Hash {
        #[command(flatten)]
        secrets: SecretArgs,
    },
    /// Deliver the Postgres outbox over HTTP until SIGTERM (or --drain).
    #[command(
        after_help = "Example:\n  DATABASE_URL=postgres://dispatcher@127.0.0.1/app hookseal dispatch --metrics-addr 127.0.0.1:9464"
    )]
    Dispatch(dispatch::DispatchArgs),
    /// Listen for webhooks, verify each, answer per the scheme's status table,
    /// and print one JSON line per request.
    #[command(
        after_help = "Example:\n  hookseal receive --scheme native --secret-env WH_SECRET --listen 127.0.0.1:8080"
    )]
    Receive {
        #[command(flatten)]
        scheme: SchemeArgs,
        #[command(flatten)]
        secrets: SecretArgs,
        #[command(flatten)]
        args: receive::ReceiveArgs,
    },
    /// Each endpoint's health: attempts, success rate, p50/p99 latency, last
    /// error, queue and dead letters (through a role with hookseal_admin).
    #[command(
        after_help = "Example:\n  DATABASE_URL=postgres://admin@db/app hookseal status --since '15 minutes'"
    )]
    Status(history::StatusArgs),
    /// One event's delivery history: every attempt to every endpoint, with
    /// status, class, error and timing ("why didn't event X arrive?").
    #[command(
        after_help = "Example:\n  DATABASE_URL=postgres://admin@db/app hookseal attempts evt_2bV..."
    )]
    Attempts(history::AttemptsArgs),
    /// Install (or upgrade) the portable flavour as plain SQL, for managed
    /// PostgreSQL that loads no native extension (RDS, Aurora, Cloud SQL,
    /// Supabase, Neon): schema hookseal, on pgcrypto, as the database owner.
    /// The whole schema: outbox, flow control, attempt log, retention, roles.
    #[command(
        after_help = "Examples:\n  DATABASE_URL=postgres://owner@db/app hookseal install\n  hookseal install --print-sql > migrations/0001_hookseal.sql"
    )]
    Install(install::InstallArgs),
    /// Portable flavour: move every secret sealed to an older sealing key to
    /// the newest registered one (open with --sealing-key-file, seal, swap
    /// if unchanged), as the role that installed hookseal.
    #[command(
        after_help = "Example (rotation: register the new public key first):\n  DATABASE_URL=postgres://owner@db/app hookseal reseal --sealing-key-file old.asc"
    )]
    Reseal(reseal::ResealArgs),
    /// Portable flavour: a v1a (ed25519) key pair for an endpoint, made
    /// here (pgcrypto has none), its signing key sealed to the newest
    /// sealing key and stored; prints the secret id and the public key.
    #[command(
        after_help = "Example (an endpoint that signs v1a only from now on):\n  DATABASE_URL=postgres://admin@db/app hookseal keypair --endpoint ep_2bV... --grace 0"
    )]
    Keypair(keypair::KeypairArgs),
    /// The operator console and the endpoint-owner portal on a local address:
    /// endpoints, health, attempts, actions (a hookseal_admin login; sign in
    /// with `portal-token --operator`; owners open `portal-link` links).
    #[command(
        after_help = "Example:\n  hookseal portal-token --new-key --key-file portal.key\n  DATABASE_URL=postgres://admin@db/app hookseal portal --key-file portal.key --listen 127.0.0.1:8090\n  hookseal portal-token --operator --key-file portal.key    # paste into the sign-in page"
    )]
    Portal(portal::PortalArgs),
    /// Make the portal's key file, or an operator sign-in token signed by it.
    PortalToken(portal::PortalTokenArgs),
    /// A link that opens the owner portal for one app (the operator's
    /// backend makes one per view of its settings page, or calls
    /// `SELECT hookseal.portal_link(app, ttl)` itself).
    #[command(
        after_help = "Example:\n  DATABASE_URL=postgres://admin@db/app hookseal portal-link --app app_2bV... --ttl 600 --base-url https://webhooks.example.com"
    )]
    PortalLink(portal::PortalLinkArgs),
}

#[derive(Args)]
struct KeygenArgs {
    /// Make a secret fit for this scheme (`standard` gets `whsec_` + base64;
    /// `standard-v1a` prints an ed25519 pair: the `whsk_` signing key, then the
    /// `whpk_` public key for receivers).
    #[arg(long, conflicts_with = "server_key")]
    scheme: Option<String>,
    /// Random bytes for a base64 secret (24-64): only for a scheme
    /// whose key is base64 (`standard`); refused where it has no effect.
    #[arg(long, requires = "scheme", conflicts_with_all = ["id", "server_key"])]
    bytes: Option<usize>,
    /// Print a new id of this kind instead: secret, wh, evt or app.
    #[arg(long, conflicts_with_all = ["scheme", "server_key"])]
    id: Option<String>,
    /// Print a new 64-hex-character server key instead (keep it: what it
    /// encrypts decrypts only with it).
    #[arg(long)]
    server_key: bool,
    /// Make a sealing key pair instead (the portable flavour's secrets):
    /// the opening key goes to FILE (created with mode 0600, never
    /// overwritten; it belongs with the dispatchers), the public key for
    /// the database to standard output.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["scheme", "id", "server_key"])]
    sealing_key: Option<std::path::PathBuf>,
}

#[derive(Args)]
struct SignArgs {
    #[command(flatten)]
    scheme: SchemeArgs,
    #[command(flatten)]
    secrets: SecretArgs,
    /// Message id (schemes that sign one); a fresh `evt_…` id by default.
    #[arg(long)]
    id: Option<String>,
    /// Timestamp as written in the header, in the scheme's unit
    /// (milliseconds for `native`, seconds otherwise); now by default.
    #[arg(long)]
    timestamp: Option<i64>,
    /// A header to sign, curl-style `Name: value` (repeatable, in order), for
    /// a scheme that signs named headers (`signed_headers`); printed after the
    /// scheme's headers, since it is sent too.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
    #[command(flatten)]
    body: BodyArgs,
    /// Write the body to send (the one signed) to this file, changed or
    /// not, instead of printing a changed body after the headers.
    #[arg(long, value_name = "FILE")]
    body_out: Option<PathBuf>,
    /// Print JSON instead of header lines (`body`: the body to send when
    /// the signer changed it, else null).
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct VerifyArgs {
    #[command(flatten)]
    scheme: SchemeArgs,
    #[command(flatten)]
    secrets: SecretArgs,
    /// A request header, curl-style: `Name: value` (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// The request URL, for schemes that sign a query parameter.
    #[arg(long)]
    url: Option<String>,
    /// "Now" in Unix seconds (default: the clock).
    #[arg(long)]
    now: Option<i64>,
    #[command(flatten)]
    limits: Limits,
    #[command(flatten)]
    body: BodyArgs,
    /// Print the outcome as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct SignUrlArgs {
    #[command(flatten)]
    scheme: SchemeArgs,
    #[command(flatten)]
    secrets: SecretArgs,
    /// The callback URL to sign: http:// or https://, without the scheme's
    /// signature parameter.
    #[arg(long)]
    url: String,
    /// The external id to bind (a fresh one by default).
    #[arg(long)]
    external_id: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// What a verifying command accepts (`verify`, `receive`); the defaults are
/// the core's, which every hookseal receiver shares.
#[derive(Args)]
pub(crate) struct Limits {
    /// Replay tolerance in whole seconds (0 or more).
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = hookseal::DEFAULT_TOLERANCE.as_secs(),
        allow_negative_numbers = true,
        value_parser = tolerance_secs
    )]
    tolerance: u64,
    /// Largest body accepted, in bytes (refused above; `receive` answers 413).
    #[arg(long, value_name = "BYTES", default_value_t = hookseal::DEFAULT_MAX_BODY)]
    max_body: usize,
}

impl Limits {
    /// A verifier for `scheme` and `secrets` with these limits.
    pub(crate) fn verifier(&self, scheme: Scheme, secrets: &[Secret]) -> Result<Verifier, Fail> {
        Ok(Verifier::new(scheme, secrets)
            .map_err(|e| usage(e.to_string()))?
            .with_tolerance(Duration::from_secs(self.tolerance))
            .with_max_body(Some(self.max_body)))
    }
}

/// `--tolerance`: whole seconds, 0 or more; a negative one is refused by
/// name (not read as an unknown flag).
fn tolerance_secs(text: &str) -> Result<u64, String> {
    match text.trim().parse::<i64>() {
        Ok(n) if n < 0 => Err(format!("a tolerance is whole seconds, 0 or more, not {n}")),
        Ok(n) => Ok(n.unsigned_abs()),
        Err(e) => Err(format!("not a number of seconds: {e}")),
    }
}

#[derive(Args)]
struct SchemeArgs {
    /// Scheme preset.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(hookseal::PRESETS))]
    scheme: Option<String>,
    /// A scheme described in a TOML or JSON file instead of a preset.
    #[arg(long, conflicts_with = "scheme")]
    scheme_file: Option<PathBuf>,
}

#[derive(Args)]
struct SecretArgs {
    /// Read a secret from this environment variable (repeatable, in order).
    #[arg(long, value_name = "VAR")]
    secret_env: Vec<String>,
    /// Read a secret from this file (repeatable; one trailing newline is ignored).
    #[arg(long, value_name = "FILE")]
    secret_file: Vec<PathBuf>,
}

#[derive(Args)]
struct BodyArgs {
    /// Read the body from this file instead of stdin.
    #[arg(long, value_name = "FILE")]
    body_file: Option<PathBuf>,
}

/// A failure: the message and the exit code.
struct Fail(String, u8);

/// Logs to stderr, as text or JSON lines; `RUST_LOG` filters (default info).
/// ANSI colours only when stderr is a terminal, never in a file or a pipe.
fn init_tracing(format: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// OpenTelemetry for a long-running command: spans exported over OTLP when
/// the `OTEL_EXPORTER_OTLP_*` variables ask, nowhere otherwise. Keep the
/// value until the command ends (dropping it flushes).
fn telemetry(service: &'static str) -> Result<hookseal_otel::Telemetry, Fail> {
    let t = hookseal_otel::Telemetry::init(service).map_err(usage)?;
    if t.exporting() {
        tracing::info!(service, "exporting spans over OTLP");
    }
    Ok(t)
}

/// A time in Unix seconds from the command line. A value that reads as
/// milliseconds (seconds past the year 5000) is a usage error that says
/// so, not a clock 1000 times off and a confusing `stale` verdict.
fn in_seconds(flag: &str, value: i64) -> Result<UnixTime, Fail> {
    if value.abs() >= 100_000_000_000 {
        return Err(usage(format!(
            "{flag} {value} looks like Unix milliseconds; this takes seconds ({})",
            value / 1000
        )));
    }
    Ok(UnixTime::from_secs(value))
}

fn usage(msg: impl Into<String>) -> Fail {
    Fail(msg.into(), 2)
}

/// Runs `job` on a one-thread runtime with a connection to `url` (the CA
/// file of PGSSLROOTCERT, as every command that connects; the default time
/// limit): the one-shot database commands (install, reseal, status,
/// attempts). `hookseal dispatch` builds its own runtime and connections.
fn with_database<T, F, Fut>(url: &str, job: F) -> Result<T, Fail>
where
    F: FnOnce(tokio_postgres::Client) -> Fut,
    Fut: std::future::Future<Output = Result<T, Fail>>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| failed(format!("runtime: {e}")))?;
    rt.block_on(async {
        let client = hookseal_postgres::connect_from_env(url, hookseal_postgres::DEFAULT_TIMEOUT)
            .await
            .map_err(|e| failed(format!("cannot connect: {e}")))?;
        job(client).await
    })
}

fn failed(msg: impl Into<String>) -> Fail {
    Fail(msg.into(), 1)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(Fail(msg, code)) => {
            eprintln!("hookseal: {msg}");
            ExitCode::from(code)
        }
    }
}

impl SchemeArgs {
    fn load(&self) -> Result<Scheme, Fail> {
        self.load_or(None)
    }

    fn load_or(&self, default: Option<&str>) -> Result<Scheme, Fail> {
        let scheme = match (self.scheme.as_deref().or(default), &self.scheme_file) {
            (_, Some(path)) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
                Scheme::from_text(&text).map_err(|e| usage(format!("{}: {e}", path.display())))?
            }
            (Some(name), None) => Scheme::preset(name).map_err(|e| usage(e.to_string()))?,
            (None, None) => return Err(usage("give --scheme or --scheme-file")),
        };
        scheme.validate().map_err(|e| usage(e.to_string()))?;
        Ok(scheme)
    }
}

impl SecretArgs {
    fn load(&self) -> Result<Vec<Secret>, Fail> {
        let mut out = Vec::new();
        for var in &self.secret_env {
            let v = Zeroizing::new(std::env::var(var).map_err(|_| {
                usage(format!(
                    "environment variable {var} is not set or not UTF-8"
                ))
            })?);
            out.push(Secret::new(v.as_str()).map_err(|e| usage(format!("secret in ${var}: {e}")))?);
        }
        for path in &self.secret_file {
            let mut text = Zeroizing::new(
                std::fs::read_to_string(path)
                    .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?,
            );
            if text.ends_with('\n') {
                text.pop();
                if text.ends_with('\r') {
                    text.pop();
                }
            }
            out.push(
                Secret::new(text.as_str())
                    .map_err(|e| usage(format!("secret in {}: {e}", path.display())))?,
            );
        }
        if out.is_empty() {
            return Err(usage(
                "give a secret with --secret-env VAR or --secret-file FILE",
            ));
        }
        Ok(out)
    }

    fn one(&self) -> Result<Secret, Fail> {
        let mut v = self.load()?;
        if v.len() != 1 {
            return Err(usage("this command takes exactly one secret"));
        }
        Ok(v.remove(0))
    }
}

impl BodyArgs {
    fn read(&self) -> Result<Vec<u8>, Fail> {
        match &self.body_file {
            Some(p) => {
                std::fs::read(p).map_err(|e| usage(format!("cannot read {}: {e}", p.display())))
            }
            None => {
                let mut buf = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut buf)
                    .map_err(|e| usage(format!("cannot read stdin: {e}")))?;
                Ok(buf)
            }
        }
    }
}

fn keyring() -> Result<Keyring, Fail> {
    let primary = Zeroizing::new(
        std::env::var(SERVER_KEY_ENV).map_err(|_| usage(format!("set {SERVER_KEY_ENV}")))?,
    );
    let mut ring = Keyring::new(
        ServerKey::from_hex(&primary).map_err(|e| usage(format!("{SERVER_KEY_ENV}: {e}")))?,
    );
    if let Ok(old) = std::env::var(OLD_KEYS_ENV) {
        let old = Zeroizing::new(old);
        for k in old.split(',').filter(|k| !k.trim().is_empty()) {
            ring = ring.with_old_key(
                ServerKey::from_hex(k).map_err(|e| usage(format!("{OLD_KEYS_ENV}: {e}")))?,
            );
        }
    }
    Ok(ring)
}

fn parse_header(h: &str) -> Result<(String, String), Fail> {
    let (name, value) = h
        .split_once(':')
        .ok_or_else(|| usage(format!("header {h:?} is not `Name: value`")))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(usage("header with an empty name"));
    }
    // The value goes to the core as given: the verifier trims surrounding
    // spaces and tabs of every header value (one rule for every adapter).
    Ok((name.to_owned(), value.to_owned()))
}

fn print(s: &str) -> Result<(), Fail> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{s}").map_err(|e| failed(format!("cannot write output: {e}")))
}

fn run(cli: Cli) -> Result<u8, Fail> {
    match cli.command {
        Command::Schemes { json } => {
            let all = Scheme::presets();
            if json {
                print(&serde_json::to_string_pretty(&all).map_err(|e| failed(e.to_string()))?)?;
            } else {
                for s in &all {
                    let where_ = match &s.signature {
                        hookseal::Location::Header(h) => format!("header {h}"),
                        hookseal::Location::Query(q) => format!("query ?{q}="),
                    };
                    let others: Vec<&str> = s
                        .headers()
                        .into_iter()
                        .skip(usize::from(s.signature_header().is_some()))
                        .collect();
                    print(&format!(
                        "{:<12} {:<14} {:<30} signs {:<26} {}",
                        s.name,
                        format!("{:?}-{:?}", s.algorithm, s.encoding),
                        where_,
                        s.message.as_str(),
                        if others.is_empty() {
                            String::new()
                        } else {
                            format!("also: {}", others.join(", "))
                        }
                    ))?;
                }
            }
            Ok(0)
        }
        Command::Keygen(args) => keygen(args),
        Command::Sign(args) => sign(args),
        Command::Verify(args) => verify(args),
        Command::SignUrl(args) => sign_url(args),
        Command::Encrypt { secrets, versioned } => {
            let ring = keyring()?;
            let secret = secrets.one()?;
            let stored = if versioned {
                ring.encrypt(&secret)
            } else {
                ring.primary().encrypt(&secret)
            }
            .map_err(|e| failed(e.to_string()))?;
            print(&stored)?;
            Ok(0)
        }
        Command::Decrypt { stored } => {
            let secret = keyring()?
                .decrypt(stored.trim())
                .map_err(|e| failed(e.to_string()))?;
            print(secret.expose())?;
            Ok(0)
        }
        Command::Dispatch(args) => dispatch::run(args),
        Command::Status(args) => history::status(args),
        Command::Attempts(args) => history::attempts(args),
        Command::Install(args) => install::run(args),
        Command::Reseal(args) => reseal::run(args),
        Command::Keypair(args) => keypair::run(args),
        Command::Portal(args) => portal::run(args),
        Command::PortalToken(args) => portal::token(args),
        Command::PortalLink(args) => portal::link(args),
        Command::Receive {
            scheme,
            secrets,
            args,
        } => receive::run(args, scheme.load()?, secrets.load()?),
        Command::Hash { secrets } => {
            print(&secrets.one()?.hash_hex())?;
            Ok(0)
        }
    }
}

/// `hookseal keygen`: a server key, an id, an ed25519 pair or a secret.
fn keygen(args: KeygenArgs) -> Result<u8, Fail> {
    if let Some(path) = &args.sealing_key {
        return sealing_keygen(path);
    }
    if args.server_key {
        let k = ServerKey::generate().map_err(|e| failed(e.to_string()))?;
        print(&k.to_hex())?;
        return Ok(0);
    }
    if let Some(kind) = args.id {
        let kind: IdKind = kind
            .parse()
            .map_err(|e: SecretError| usage(e.to_string()))?;
        print(&new_id(kind).map_err(|e| failed(e.to_string()))?)?;
        return Ok(0);
    }
    let Some(name) = args.scheme else {
        print(
            Secret::generate()
                .map_err(|e| failed(e.to_string()))?
                .expose(),
        )?;
        return Ok(0);
    };
    let (scheme, pair) = Scheme::for_keys(&name).map_err(|e| usage(e.to_string()))?;
    if args.bytes.is_some() && (pair || !scheme.takes_secret_bytes()) {
        return Err(usage(bytes_unused(&name)));
    }
    if pair {
        let (signing, public) = scheme.new_keypair().map_err(|e| failed(e.to_string()))?;
        print(&format!("{}\n{public}", signing.expose()))?;
        return Ok(0);
    }
    let secret = scheme
        .new_secret(args.bytes.unwrap_or(hookseal::DEFAULT_SECRET_BYTES))
        .map_err(|e| usage(e.to_string()))?;
    print(secret.expose())?;
    Ok(0)
}

/// `hookseal keygen --sealing-key FILE`: the opening key into a new
/// owner-only file, the public key printed.
fn sealing_keygen(path: &std::path::Path) -> Result<u8, Fail> {
    let file = new_private_file(path)?;
    let (opening, public) = hookseal::SealingKeys::generate().map_err(|e| failed(e.to_string()))?;
    write_private(file, path, opening.as_bytes())?;
    print(public.trim_end())?;
    Ok(0)
}

/// Completes at SIGTERM or SIGINT, for the servers that stop on either
/// (`receive`, `portal`); caught from the moment this is called.
fn stop_signal() -> Result<impl std::future::Future<Output = ()>, Fail> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| failed(format!("cannot catch signals: {e}")))?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = tokio::signal::ctrl_c() => {},
        }
    })
}

/// A new owner-only (0600) file for key material; an existing file is
/// never overwritten. Opened before the key is made, so a refusal costs
/// nothing.
fn new_private_file(path: &std::path::Path) -> Result<std::fs::File, Fail> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            failed(format!(
                "{}: {e} (an existing file is never overwritten)",
                path.display()
            ))
        })
}

/// Writes and syncs key material into a file of [`new_private_file`].
fn write_private(
    mut file: std::fs::File,
    path: &std::path::Path,
    bytes: &[u8],
) -> Result<(), Fail> {
    use std::io::Write as _;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| failed(format!("{}: {e}", path.display())))
}

/// Why `--bytes` is refused for `name`, naming the schemes it applies to.
fn bytes_unused(name: &str) -> String {
    let takes: Vec<String> = Scheme::presets()
        .into_iter()
        .filter(Scheme::takes_secret_bytes)
        .map(|s| s.name)
        .collect();
    format!(
        "--bytes has no effect for `{name}`: it sets the length of a base64 secret, which only {} secrets are",
        takes.join(", ")
    )
}

/// `hookseal sign`: the headers (or query) for a body, and the body to send
/// when the scheme changed it.
fn sign(args: SignArgs) -> Result<u8, Fail> {
    let scheme = args.scheme.load()?;
    let unit = scheme.timestamp.as_ref().map(|t| t.unit);
    let signer = Signer::new(scheme, &args.secrets.load()?).map_err(|e| usage(e.to_string()))?;
    let named = args
        .headers
        .iter()
        .map(|h| parse_header(h))
        .collect::<Result<Vec<_>, _>>()?;
    let pairs: Vec<(&str, &str)> = named
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let body = args.body.read()?;
    let timestamp = match (args.timestamp, unit) {
        (None, _) => None,
        (Some(t), Some(hookseal::TimeUnit::Milliseconds)) => Some(UnixTime::from_millis(t)),
        (Some(t), Some(hookseal::TimeUnit::Seconds)) => Some(in_seconds("--timestamp", t)?),
        // A scheme without a timestamp ignores it.
        (Some(t), None) => Some(UnixTime::from_secs(t)),
    };
    let msg = Message {
        body: &body,
        id: args.id.as_deref(),
        timestamp,
    };
    let mut signed = signer
        .sign_with_headers(&msg, &pairs)
        .map_err(|e| match e {
            hookseal::SignError::SignedHeaders | hookseal::SignError::HeadersNotSigned(_) => {
                usage(format!("-H: {e}"))
            }
            e => failed(e.to_string()),
        })?;
    // The named headers are sent too, after the scheme's own, trimmed as
    // they were signed.
    signed.headers.extend(named.iter().map(|(n, v)| {
        let v = String::from_utf8_lossy(hookseal::trim_header_value(v.as_bytes()));
        (n.clone(), v.into_owned())
    }));
    warn_if_receivers_refuse(signed.body_to_send(&body).len());
    if let Some(path) = &args.body_out {
        std::fs::write(path, signed.body_to_send(&body))
            .map_err(|e| failed(format!("cannot write {}: {e}", path.display())))?;
    }
    print_signed(&signed, args.json, args.body_out.is_none())?;
    Ok(0)
}

/// `sign` signs a body of any size, and says so on stderr when hookseal's
/// receivers refuse it by default ([`hookseal::DEFAULT_MAX_BODY`]: `verify`,
/// `receive`, the axum layer and the Lambda unless their limit is raised).
fn warn_if_receivers_refuse(len: usize) {
    if len > hookseal::DEFAULT_MAX_BODY {
        eprintln!(
            "hookseal: warning: the body is {len} bytes; hookseal receivers refuse bodies over {} bytes by default (raise it with verify/receive --max-body, the Lambda's MAX_BODY_BYTES)",
            hookseal::DEFAULT_MAX_BODY
        );
    }
}

/// The signed headers as `Name: value` lines (then query pairs, then a
/// changed body unless it went to a file), or all of it as one JSON object.
fn print_signed(signed: &hookseal::Signed, json: bool, body_inline: bool) -> Result<(), Fail> {
    // Compact JSON: UTF-8 by construction.
    let changed = signed
        .body
        .as_deref()
        .map(|b| String::from_utf8_lossy(b).into_owned());
    if json {
        let map = |pairs: &[(String, String)]| -> serde_json::Map<String, serde_json::Value> {
            pairs.iter().map(|(k, v)| (k.clone(), json!(v))).collect()
        };
        return print(
            &json!({
                "headers": map(&signed.headers),
                "query": map(&signed.query),
                "id": signed.id,
                "timestamp_ms": signed.timestamp.map(UnixTime::as_millis),
                "body": changed,
            })
            .to_string(),
        );
    }
    for (k, v) in &signed.headers {
        print(&format!("{k}: {v}"))?;
    }
    for (k, v) in &signed.query {
        print(&format!("{k}={}", hookseal::percent_encode(v)))?;
    }
    if let (Some(b), true) = (&changed, body_inline) {
        print("")?;
        print(b)?;
    }
    Ok(())
}

/// `hookseal verify`: exit 0 valid, 1 invalid.
fn verify(args: VerifyArgs) -> Result<u8, Fail> {
    let scheme = args.scheme.load()?;
    if args.url.is_none() {
        if let hookseal::Location::Query(param) = &scheme.signature {
            return Err(usage(format!(
                "--url is required: this scheme reads its signature from the URL's `{param}` query parameter"
            )));
        }
    }
    let headers = args
        .headers
        .iter()
        .map(|h| parse_header(h))
        .collect::<Result<Vec<_>, _>>()?;
    let verifier = args.limits.verifier(scheme, &args.secrets.load()?)?;
    let body = args.body.read()?;
    let now = match args.now {
        Some(n) => in_seconds("--now", n)?,
        None => UnixTime::now(),
    };
    let outcome = verifier.verify_request(&body, &headers, args.url.as_deref(), now);
    print_verdict(&verifier, outcome, args.json)
}

/// `valid` (or the JSON outcome) on stdout; the reason on stderr.
fn print_verdict(
    verifier: &Verifier,
    outcome: Result<hookseal::Verified, hookseal::VerifyError>,
    json: bool,
) -> Result<u8, Fail> {
    match outcome {
        Ok(v) => {
            if json {
                print(
                    &json!({
                        "valid": true,
                        "secret_index": v.secret_index,
                        "matched": format!("{:?}", v.matched),
                        "timestamp_ms": v.timestamp.map(UnixTime::as_millis),
                    })
                    .to_string(),
                )?;
            } else {
                print("valid")?;
            }
            Ok(0)
        }
        Err(e) => {
            if json {
                print(
                    &json!({
                        "valid": false,
                        "code": e.code(),
                        "reason": e.to_string(),
                        "status": e.status(verifier.scheme()),
                    })
                    .to_string(),
                )?;
            }
            eprintln!("invalid: {e}");
            Ok(1)
        }
    }
}

/// `hookseal sign-url`: a signed callback URL and its external id.
fn sign_url(args: SignUrlArgs) -> Result<u8, Fail> {
    let signer = Signer::new(
        args.scheme.load_or(Some("signed-url"))?,
        &[args.secrets.one()?],
    )
    .map_err(|e| usage(e.to_string()))?;
    let signed = signer
        .sign_url(&args.url, args.external_id.as_deref())
        .map_err(|e| usage(e.to_string()))?;
    if args.json {
        print(
            &json!({
                "url": signed.url,
                "external_id": signed.external_id,
                "signature": signed.signature,
            })
            .to_string(),
        )?;
    } else {
        print(&format!("url: {}", signed.url))?;
        print(&format!("external_id: {}", signed.external_id))?;
    }
    Ok(0)
}
