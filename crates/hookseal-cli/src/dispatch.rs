//! `hookseal dispatch`: the long-running outbox worker.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use hookseal_dispatch::{AddressPolicy, Config, Dispatcher};

use crate::{failed, usage, Fail};

#[derive(Args)]
pub struct DispatchArgs {
    /// PostgreSQL URL of a role granted `hookseal_dispatcher`.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// This worker's lease name (default: host-pid-random).
    #[arg(long)]
    worker_id: Option<String>,
    /// Most rows claimed at once.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Seconds a claim is held before another worker may take it.
    #[arg(long, default_value_t = 60.0)]
    lease: f64,
    /// Most attempts in flight in this worker.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Most attempts in flight to one endpoint from this worker (a ceiling on
    /// the endpoint's own max_in_flight).
    #[arg(long, default_value_t = 32)]
    per_endpoint: usize,
    /// Milliseconds after which an unanswered attempt moves to the slow pool
    /// and frees its slot for other endpoints.
    #[arg(long, default_value_t = 100)]
    slow_after_ms: u64,
    /// Most attempts in the slow pool.
    #[arg(long, default_value_t = 4096)]
    max_slow: usize,
    /// Connect timeout, seconds.
    #[arg(long, default_value_t = 5.0)]
    connect_timeout: f64,
    /// Whole-attempt timeout, seconds.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// Look for due rows this often without a notification, milliseconds.
    #[arg(long, default_value_t = 1000)]
    poll_ms: u64,
    /// Cap on a receiver's Retry-After, seconds.
    #[arg(long, default_value_t = 3600)]
    max_retry_after: u64,
    /// Seconds to finish in-flight attempts after SIGTERM before releasing them.
    #[arg(long, default_value_t = 20.0)]
    shutdown_grace: f64,
    /// Longest wait for the database (connect, claim, recording), seconds;
    /// beyond it the connection is replaced.
    #[arg(long, default_value_t = 30.0)]
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
    /// Serve Prometheus metrics on this address (GET /metrics).
    #[arg(long)]
    metrics_addr: Option<SocketAddr>,
    /// Deliver what is due and exit instead of running until SIGTERM.
    #[arg(long)]
    drain: bool,
    /// Run retention (`hookseal.maintain()`) every this many seconds; the
    /// role needs hookseal_dispatcher or hookseal_admin. Off by default:
    /// one worker (or pg_cron) is enough.
    #[arg(long, value_name = "SECONDS")]
    maintain_every: Option<f64>,
    /// Log format.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
}

fn secs(name: &str, v: f64) -> Result<Duration, Fail> {
    Duration::try_from_secs_f64(v).map_err(|_| usage(format!("--{name}: not a valid duration")))
}

pub fn run(args: DispatchArgs) -> Result<u8, Fail> {
    crate::init_tracing(&args.log_format);
    let mut config = Config::new(args.database_url.clone());
    if let Some(w) = args.worker_id {
        config.worker_id = w;
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
    config.maintain_every = match args.maintain_every {
        Some(v) if v > 0.0 => Some(secs("maintain-every", v)?),
        Some(_) => return Err(usage("--maintain-every: must be positive")),
        None => None,
    };
    let nets = args
        .allow
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .parse()
                .map_err(|_| usage(format!("--allow {s}: not a CIDR network")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    config.policy = AddressPolicy::new(nets);
    let dispatcher = Dispatcher::new(config).map_err(|e| usage(e.to_string()))?;
    let rt = tokio::runtime::Runtime::new().map_err(|e| failed(format!("runtime: {e}")))?;
    rt.block_on(async {
        match dispatcher.check_database().await {
            Ok(()) => {}
            Err(e) if e.is_fatal() => return Err(failed(format!("cannot dispatch: {e}"))),
            Err(e) => tracing::warn!(error = %e, "database not reachable yet; will keep trying"),
        }
        if let Some(addr) = args.metrics_addr {
            let (bound, _task) = hookseal_dispatch::serve_metrics(addr, dispatcher.metrics())
                .await
                .map_err(|e| failed(format!("cannot serve metrics on {addr}: {e}")))?;
            tracing::info!(%bound, "metrics at /metrics");
        }
        if args.drain {
            let s = dispatcher.drain(Duration::from_secs(24 * 3600)).await;
            eprintln!(
                "drained: {} delivered, {} retried, {} dead",
                s.delivered, s.retried, s.dead
            );
            return Ok(0);
        }
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| failed(e.to_string()))?;
        dispatcher
            .run(async move {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
                tracing::info!("shutting down");
            })
            .await;
        Ok(0)
    })
}
