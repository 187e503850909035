//! `hookseal dispatch`: the long-running outbox worker.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use hookseal_dispatch::{defaults, AddressPolicy, Config, Dispatcher, Stopped, Summary};
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::{failed, usage, Fail};

#[derive(Args)]
pub struct DispatchArgs {
    /// PostgreSQL URL of a role granted `hookseal_dispatcher`. Repeat it
    /// (or use --database-urls-file) for a worker over several databases:
    /// each gets its own claim loop, LISTEN connection and recorder, and
    /// one that is down holds only its own rows.
    #[arg(
        long = "database-url",
        value_name = "URL",
        env = "DATABASE_URL",
        hide_env_values = true,
        required_unless_present = "database_urls_file"
    )]
    database_url: Vec<String>,
    /// A file of database URLs, one per line (blank lines and `#` comments
    /// skipped), besides any --database-url.
    #[arg(long, value_name = "FILE")]
    database_urls_file: Option<std::path::PathBuf>,
    /// This worker's lease name (default: host-pid-random).
    #[arg(long)]
    worker_id: Option<String>,
    /// Most rows claimed at once.
    #[arg(long, default_value_t = defaults::BATCH)]
    batch: usize,
    /// Seconds a claim is held before another worker may take it.
    #[arg(long, default_value_t = defaults::LEASE.as_secs_f64())]
    lease: f64,
    /// Most attempts in flight in this worker.
    #[arg(long, default_value_t = defaults::CONCURRENCY)]
    concurrency: usize,
    /// Most attempts in flight to one endpoint from this worker (a ceiling on
    /// the endpoint's own max_in_flight).
    #[arg(long, default_value_t = defaults::PER_ENDPOINT)]
    per_endpoint: usize,
    /// Milliseconds after which an unanswered attempt moves to the slow pool
    /// and frees its slot for other endpoints.
    #[arg(long, default_value_t = defaults::SLOW_AFTER.as_millis() as u64)]
    slow_after_ms: u64,
    /// Most attempts in the slow pool.
    #[arg(long, default_value_t = defaults::MAX_SLOW)]
    max_slow: usize,
    /// Connect timeout, seconds.
    #[arg(long, default_value_t = defaults::CONNECT_TIMEOUT.as_secs_f64())]
    connect_timeout: f64,
    /// Whole-attempt timeout, seconds.
    #[arg(long, default_value_t = defaults::TIMEOUT.as_secs_f64())]
    timeout: f64,
    /// Look for due rows this often without a notification, milliseconds.
    #[arg(long, default_value_t = defaults::POLL_INTERVAL.as_millis() as u64)]
    poll_ms: u64,
    /// Cap on a receiver's Retry-After, seconds.
    #[arg(long, default_value_t = defaults::MAX_RETRY_AFTER.as_secs())]
    max_retry_after: u64,
    /// Seconds to finish in-flight attempts after SIGTERM before releasing them.
    #[arg(long, default_value_t = defaults::SHUTDOWN_GRACE.as_secs_f64())]
    shutdown_grace: f64,
    /// Longest wait for the database (connect, claim, recording), seconds;
    /// beyond it the connection is replaced.
    #[arg(long, default_value_t = defaults::DB_TIMEOUT.as_secs_f64())]
    db_timeout: f64,
    /// Allow destinations in this network (CIDR, repeatable), e.g. 127.0.0.0/8.
    /// Loopback, private, link-local, CGNAT, multicast and reserved addresses
    /// are refused otherwise.
    #[arg(
        long = "allow",
        value_name = "CIDR",
        env = "HOOKSEAL_ALLOW",
        value_delimiter = ','
    )]
    allow: Vec<String>,
    /// Send every delivery through this HTTP CONNECT proxy
    /// (http://[user:password@]host:port), for a fixed egress address. The
    /// destination is resolved and checked here, and the proxy is asked to
    /// connect to the checked address (TLS still runs against the name).
    /// NO_PROXY names hosts that connect directly. HTTPS_PROXY and the
    /// like are not read.
    #[arg(
        long,
        value_name = "URL",
        env = "HOOKSEAL_PROXY",
        hide_env_values = true
    )]
    proxy: Option<String>,
    /// Serve Prometheus metrics on this address (GET /metrics).
    #[arg(long)]
    metrics_addr: Option<SocketAddr>,
    /// Deliver what is due and exit (0) instead of running until SIGTERM.
    /// SIGTERM or SIGINT stops it as they stop the long-running worker (in
    /// flight finished within --shutdown-grace, the rest released, results
    /// recorded), then it exits 143 or 130.
    #[arg(long)]
    drain: bool,
    /// Run retention (`hookseal.maintain()`) every this many seconds; the
    /// role needs hookseal_dispatcher or hookseal_admin. Off by default:
    /// one worker (or pg_cron) is enough.
    #[arg(long, value_name = "SECONDS")]
    maintain_every: Option<f64>,
    /// The portable flavour's sealing key (hookseal keygen --sealing-key
    /// made it): this worker opens the sealed secrets claim() hands over
    /// and signs each attempt. Repeatable, newest first, while secrets are
    /// sealed to an older key too; a file may also hold several keys.
    /// Not needed for the native flavour, which signs in the database.
    #[arg(
        long = "sealing-key-file",
        value_name = "FILE",
        env = "HOOKSEAL_SEALING_KEY_FILE",
        value_delimiter = ','
    )]
    sealing_key_files: Vec<std::path::PathBuf>,
    /// Log format.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
}

/// The sealing keys in `files`, newest first (`None` for no file). The
/// errors name the file, never its content.
pub fn sealing_keys(
    files: &[std::path::PathBuf],
) -> Result<Option<Arc<hookseal::SealingKeys>>, Fail> {
    if files.is_empty() {
        return Ok(None);
    }
    let mut text = zeroize::Zeroizing::new(String::new());
    for f in files {
        let one = zeroize::Zeroizing::new(
            std::fs::read_to_string(f)
                .map_err(|e| usage(format!("--sealing-key-file {}: {e}", f.display())))?,
        );
        text.push_str(&one);
        text.push('\n');
    }
    let keys = hookseal::SealingKeys::parse(&text)
        .map_err(|e| usage(format!("--sealing-key-file: {e}")))?;
    Ok(Some(Arc::new(keys)))
}

fn secs(name: &str, v: f64) -> Result<Duration, Fail> {
    Duration::try_from_secs_f64(v).map_err(|_| usage(format!("--{name}: not a valid duration")))
}

/// Exit status of a `--drain` that a signal interrupted, after it finished
/// or released what it held and recorded every result: 128 + the signal's
/// number, as a shell reports a process the signal killed.
const SIGINT_EXIT: u8 = 130;
const SIGTERM_EXIT: u8 = 143;

pub fn run(args: DispatchArgs) -> Result<u8, Fail> {
    crate::init_tracing(&args.log_format);
    let _telemetry = crate::telemetry("hookseal-dispatch")?;
    let config = config(&args)?;
    let dispatcher = Dispatcher::new(config).map_err(|e| usage(e.to_string()))?;
    let rt = tokio::runtime::Runtime::new().map_err(|e| failed(format!("runtime: {e}")))?;
    rt.block_on(serve(dispatcher, args.metrics_addr, args.drain))
}

/// The flags as a dispatcher [`Config`].
fn config(args: &DispatchArgs) -> Result<Config, Fail> {
    let mut urls = database_urls(&args.database_url, args.database_urls_file.as_deref())?;
    let mut config = Config::new(urls.remove(0));
    config.other_databases = urls;
    if let Some(w) = &args.worker_id {
        config.worker_id = w.clone();
    }
    config.batch = args.batch;
    config.lease = secs("lease", args.lease)?;
    config.concurrency = args.concurrency;
    config.per_endpoint = args.per_endpoint;
    config.slow_after = Duration::from_millis(args.slow_after_ms.max(1));
    config.max_slow = args.max_slow;
    config.connect_timeout = secs("connect-timeout", args.connect_timeout)?;
    config.timeout = secs("timeout", args.timeout)?;
    config.poll_interval = Duration::from_millis(args.poll_ms);
    config.max_retry_after = Duration::from_secs(args.max_retry_after);
    config.shutdown_grace = secs("shutdown-grace", args.shutdown_grace)?;
    config.db_timeout = secs("db-timeout", args.db_timeout)?;
    config.sealing_keys = sealing_keys(&args.sealing_key_files)?;
    config.maintain_every = match args.maintain_every {
        Some(v) if v > 0.0 => Some(secs("maintain-every", v)?),
        Some(_) => return Err(usage("--maintain-every: must be positive")),
        None => None,
    };
    config.policy = address_policy(&args.allow)?;
    config.proxy = match &args.proxy {
        Some(url) => Some(proxy(url)?),
        None => None,
    };
    Ok(config)
}

/// The `--database-url`s, then the file's; at least one. A URL is never
/// repeated in a message (it may hold a password).
pub(crate) fn database_urls(
    given: &[String],
    file: Option<&std::path::Path>,
) -> Result<Vec<String>, Fail> {
    let mut urls: Vec<String> = given.to_vec();
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
        urls.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_owned),
        );
    }
    if urls.is_empty() {
        return Err(usage(
            "give --database-url (or a --database-urls-file with one)",
        ));
    }
    Ok(urls)
}

/// `--proxy` with the environment's `NO_PROXY` (or `no_proxy`).
pub(crate) fn proxy(url: &str) -> Result<hookseal_dispatch::Proxy, Fail> {
    hookseal_dispatch::Proxy::with_env_no_proxy(url, |k| std::env::var(k).ok())
        .map_err(|e| usage(format!("--proxy: {e}")))
}

/// Checks the database and the role, serves metrics, then runs the worker
/// (or drains) until SIGTERM or SIGINT.
async fn serve(
    dispatcher: Dispatcher,
    metrics_addr: Option<SocketAddr>,
    drain: bool,
) -> Result<u8, Fail> {
    // Before anything slow, so a signal during the start check is not the
    // default (die at once) but a shutdown once the worker runs.
    let signals = Signals::new()?;
    match dispatcher.check_database().await {
        Ok(flavour) => tracing::info!(%flavour, "database checked"),
        Err(e) if e.is_fatal() => return Err(failed(format!("cannot dispatch: {e}"))),
        Err(e) => tracing::warn!(error = %e, "database not reachable yet; will keep trying"),
    }
    if let Some(addr) = metrics_addr {
        let (bound, _task) = hookseal_dispatch::serve_metrics(addr, dispatcher.metrics())
            .await
            .map_err(|e| failed(format!("cannot serve metrics on {addr}: {e}")))?;
        tracing::info!(%bound, "metrics at /metrics");
    }
    let got = Arc::new(AtomicU8::new(0));
    let shutdown = signals.wait(got.clone());
    if !drain {
        return match dispatcher.try_run(shutdown).await {
            Ok(_) => Ok(0),
            Err(e) => Err(failed(format!("dispatcher stopped: {e}"))),
        };
    }
    let result = dispatcher
        .try_drain(Duration::from_secs(24 * 3600), shutdown)
        .await;
    drained(result, got.load(Ordering::SeqCst))
}

/// A drain's report and exit status: 0 when it drained, 130 / 143 when
/// SIGINT / SIGTERM stopped it, 1 when the database refused it for good.
fn drained(result: Result<Summary, Stopped>, signal: u8) -> Result<u8, Fail> {
    let s = match result {
        Ok(s) => s,
        Err(e) => return Err(failed(format!("drain stopped: {e}"))),
    };
    let (how, code) = match signal {
        SIGINT => ("interrupted by SIGINT", SIGINT_EXIT),
        SIGTERM => ("interrupted by SIGTERM", SIGTERM_EXIT),
        _ => ("drained", 0),
    };
    eprintln!(
        "{how}: {} delivered, {} retried, {} dead, {} released",
        s.delivered, s.retried, s.dead, s.released
    );
    Ok(code)
}

const SIGINT: u8 = 2;
const SIGTERM: u8 = 15;

/// SIGTERM and SIGINT, caught from the moment this is built.
struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    fn new() -> Result<Self, Fail> {
        let catch = |kind| signal(kind).map_err(|e| failed(format!("cannot catch signals: {e}")));
        Ok(Signals {
            term: catch(SignalKind::terminate())?,
            int: catch(SignalKind::interrupt())?,
        })
    }

    /// Completes at the first SIGTERM or SIGINT and stores its number in
    /// `got`. A second one ends the process at once (exit 143 / 130),
    /// without the shutdown grace: the rows it holds are not released and
    /// come back when their lease runs out (at least once, as after a crash).
    async fn wait(mut self, got: Arc<AtomicU8>) {
        let (n, name) = self.next().await;
        got.store(n, Ordering::SeqCst);
        tracing::info!(
            signal = name,
            "shutting down (a second signal exits at once)"
        );
        tokio::spawn(async move {
            let (n, name) = self.next().await;
            tracing::warn!(
                signal = name,
                "second signal: exiting now; rows in flight return when their lease runs out"
            );
            let code = if n == SIGINT {
                SIGINT_EXIT
            } else {
                SIGTERM_EXIT
            };
            std::process::exit(code.into());
        });
    }

    async fn next(&mut self) -> (u8, &'static str) {
        tokio::select! {
            _ = self.term.recv() => (SIGTERM, "SIGTERM"),
            _ = self.int.recv() => (SIGINT, "SIGINT"),
        }
    }
}

/// The `--allow` networks (dispatch and portal): public addresses and
/// these.
pub(crate) fn address_policy(allow: &[String]) -> Result<AddressPolicy, Fail> {
    let nets = allow
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .parse()
                .map_err(|_| usage(format!("--allow {s}: not a CIDR network")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(AddressPolicy::new(nets))
}
