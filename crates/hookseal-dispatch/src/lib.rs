//! # hookseal-dispatch
//!
//! Delivers the rows of hookseal's Postgres outbox over HTTP. With the
//! native flavour the database does everything that needs a secret: the
//! fan-out trigger signs each row when the event commits, and
//! `hookseal.claim()` re-signs retries with a fresh timestamp; a dispatcher
//! only moves bytes. With the portable flavour (no library in the
//! database) `claim()` hands over the sealed secrets and the dispatcher,
//! given the sealing key ([`Config::sealing_keys`]), opens them and signs
//! each attempt ([`sealed`]). Either way it claims rows under a lease,
//! POSTs the body with the signed headers, and records the answer with
//! `ack_many()` / `fail()`; the database applies the endpoint's retry
//! schedule, dead-letters, and disables endpoints that answer 410.
//!
//! Any number of dispatchers may share a database: `claim()` uses
//! `FOR UPDATE SKIP LOCKED`, so a row is held by one worker at a time, and a
//! worker that dies loses nothing — its leases expire and the rows are
//! claimed again (delivery is at least once; receivers de-duplicate on the
//! message id, which is the event id in every retry).
//!
//! ```no_run
//! # async fn example() -> Result<(), hookseal_dispatch::DispatchError> {
//! use hookseal_dispatch::{Config, Dispatcher};
//! let config = Config::new("postgres://dispatcher@db/app");
//! let dispatcher = Dispatcher::new(config)?;
//! let summary = dispatcher.run(async { let _ = tokio::signal::ctrl_c().await; }).await;
//! println!("delivered {}", summary.delivered);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::time::Duration;

mod db;
mod deliver;
mod egress;
use hookseal_postgres as pg;
mod metrics;
pub mod reseal;
pub mod sealed;
mod ssrf;
mod trace;
mod worker;

pub use deliver::parse_retry_after;
pub use egress::Proxy;
pub use hookseal::SealingKeys;
pub use ipnet::IpNet;
pub use metrics::{serve as serve_metrics, Metrics};
pub use pg::Flavour;
pub use ssrf::{
    AddressPolicy, Blocked, DestinationRefused, Lookup, NoAddress, Refused, UrlRefused,
};
pub use worker::{Dispatcher, Stopped, Summary};

/// Why a dispatcher could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// A setting is out of range.
    #[error("invalid dispatcher setting: {0}")]
    Config(String),
    /// The HTTP client could not be built (TLS roots, resolver).
    #[error("cannot build the HTTP client: {0}")]
    Http(#[source] reqwest::Error),
}

/// Dispatcher settings. [`Config::new`] gives the defaults. The database
/// URL's `sslmode=require` turns on verified TLS (see [`hookseal_postgres`]).
#[derive(Debug, Clone)]
pub struct Config {
    /// `postgres://` URL of a role granted `hookseal_dispatcher`.
    pub database_url: String,
    /// This worker's name in `outbox.lease_owner`; unique per process.
    pub worker_id: String,
    /// Most rows claimed at once.
    pub batch: usize,
    /// How long a claim is held before another worker may take it. Must
    /// exceed `timeout`.
    pub lease: Duration,
    /// Most attempts in flight in this worker.
    pub concurrency: usize,
    /// An attempt still waiting for its answer after this long gives its
    /// slot (one of `concurrency`) back and waits in the slow pool instead,
    /// so endpoints that hang cannot hold the slots other endpoints need.
    pub slow_after: Duration,
    /// Most attempts waiting in the slow pool. When it is full, a slow
    /// attempt keeps its slot.
    pub max_slow: usize,
    /// Most attempts in flight to one endpoint in this worker: a ceiling on
    /// top of the endpoint's own `max_in_flight` (all workers together).
    pub per_endpoint: usize,
    /// TCP (and TLS) connect timeout.
    pub connect_timeout: Duration,
    /// Whole-attempt timeout, connect to last byte of the answer.
    pub timeout: Duration,
    /// How often to look for due rows when no notification arrives
    /// (retries come due without one).
    pub poll_interval: Duration,
    /// Upper bound on a receiver's `Retry-After`.
    pub max_retry_after: Duration,
    /// How long shutdown waits for in-flight attempts before releasing them.
    pub shutdown_grace: Duration,
    /// Which destination addresses are allowed.
    pub policy: AddressPolicy,
    /// Extra CA certificates (PEM) for `sslmode=require`; by default the
    /// file named by `PGSSLROOTCERT`.
    pub root_cert: Option<std::path::PathBuf>,
    /// Longest wait for the database: a connection, a claim, a batch of
    /// results. Beyond it the connection is dropped and a new one made, so
    /// a network that stalls without closing (a partition, a hung proxy)
    /// cannot stop the worker. A claim whose answer was lost is delivered
    /// again after its lease.
    pub db_timeout: Duration,
    /// Call `hookseal.maintain()` (retention) this often while running, and
    /// again at once while it reports more to do. `None` (the default):
    /// never; a scheduler such as pg_cron calls it instead.
    pub maintain_every: Option<Duration>,
    /// The portable flavour's opening keys (newest first): its database
    /// hands over sealed secrets and the worker signs each attempt
    /// ([`sealed`]). `None`: only a native database, which signs itself,
    /// can be served ([`Dispatcher::check_database`] refuses a portable one).
    pub sealing_keys: Option<std::sync::Arc<SealingKeys>>,
    /// Send through this HTTP CONNECT proxy, to the address the policy
    /// checked ([`Proxy`]). `None` (the default): connect directly.
    pub proxy: Option<Proxy>,
    /// More databases this worker serves besides `database_url` (apps
    /// split across databases): each gets its own claim loop, `LISTEN`
    /// connection and recorder, keyed by its own outbox ids; the worker's
    /// slots, slow pool and HTTP client are shared. One that is down or
    /// slow holds only its own rows.
    pub other_databases: Vec<String>,
}

/// The dispatcher's defaults, written once: [`Config::new`] uses them and
/// the CLI's flags show and fall back to them. `claim()`'s own SQL
/// defaults for `batch`, `lease` and `per_endpoint` are the same numbers,
/// checked against these by the outbox integration test.
pub mod defaults {
    use std::time::Duration;

    /// Most rows claimed at once.
    pub const BATCH: usize = 100;
    /// How long a claim is held.
    pub const LEASE: Duration = Duration::from_secs(60);
    /// Most attempts in flight in a worker.
    pub const CONCURRENCY: usize = 256;
    /// When an unanswered attempt moves to the slow pool.
    pub const SLOW_AFTER: Duration = Duration::from_millis(100);
    /// Most attempts in the slow pool.
    pub const MAX_SLOW: usize = 4096;
    /// Most attempts in flight to one endpoint in a worker.
    pub const PER_ENDPOINT: usize = 32;
    /// TCP (and TLS) connect timeout.
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    /// Whole-attempt timeout.
    pub const TIMEOUT: Duration = Duration::from_secs(30);
    /// How often to look for due rows without a notification.
    pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
    /// Upper bound on a receiver's `Retry-After`.
    pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
    /// How long shutdown waits for in-flight attempts.
    pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);
    /// Longest wait for the database.
    pub const DB_TIMEOUT: Duration = hookseal_postgres::DEFAULT_TIMEOUT;
}

impl Config {
    /// The settings of [`defaults`] (public destinations only, the CA file
    /// of `PGSSLROOTCERT`, no retention timer) for `database_url`.
    pub fn new(database_url: impl Into<String>) -> Self {
        Config {
            database_url: database_url.into(),
            worker_id: default_worker_id(),
            batch: defaults::BATCH,
            lease: defaults::LEASE,
            concurrency: defaults::CONCURRENCY,
            slow_after: defaults::SLOW_AFTER,
            max_slow: defaults::MAX_SLOW,
            per_endpoint: defaults::PER_ENDPOINT,
            connect_timeout: defaults::CONNECT_TIMEOUT,
            timeout: defaults::TIMEOUT,
            poll_interval: defaults::POLL_INTERVAL,
            max_retry_after: defaults::MAX_RETRY_AFTER,
            shutdown_grace: defaults::SHUTDOWN_GRACE,
            policy: AddressPolicy::default(),
            root_cert: pg::root_cert_from_env(),
            db_timeout: defaults::DB_TIMEOUT,
            maintain_every: None,
            sealing_keys: None,
            proxy: None,
            other_databases: Vec::new(),
        }
    }

    /// Every database this worker serves: `database_url`, then
    /// `other_databases`.
    pub fn databases(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.database_url.as_str())
            .chain(self.other_databases.iter().map(String::as_str))
    }

    fn validate(&self) -> Result<(), DispatchError> {
        let bad = |m: &str| Err(DispatchError::Config(m.to_owned()));
        let urls: Vec<&str> = self.databases().collect();
        if urls.iter().enumerate().any(|(i, u)| urls[..i].contains(u)) {
            return bad("a database URL is given twice");
        }
        if self.batch == 0 || self.batch > 10_000 {
            return bad("batch must be 1..=10000");
        }
        if self.concurrency == 0 || self.concurrency > 100_000 {
            return bad("concurrency must be 1..=100000");
        }
        if self.max_slow > 1_000_000 {
            return bad("the slow pool must be 0..=1000000");
        }
        if self.per_endpoint == 0 || self.per_endpoint > 10_000 {
            return bad("per-endpoint concurrency must be 1..=10000");
        }
        if self.timeout.is_zero() || self.connect_timeout.is_zero() || self.db_timeout.is_zero() {
            return bad("timeouts must be positive");
        }
        if self.lease <= self.timeout {
            return bad("the lease must be longer than the HTTP timeout");
        }
        if self.poll_interval.is_zero() {
            return bad("poll interval must be positive");
        }
        if self.worker_id.is_empty() || self.worker_id.len() > 200 {
            return bad("worker id must be 1..=200 bytes");
        }
        Ok(())
    }
}

/// `host-pid-random`, unique enough that two processes never share leases.
fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_owned());
    let mut r = [0u8; 4];
    let _ = getrandom::fill(&mut r);
    format!(
        "{host}-{}-{:08x}",
        std::process::id(),
        u32::from_be_bytes(r)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 24: a worker's databases are `database_url` then the others,
    /// each once; the refusal never repeats a URL (it may hold a password).
    #[test]
    fn several_databases_each_once() {
        let mut c = Config::new("postgres://a:pw1@h1/app");
        c.other_databases = vec!["postgres://b:pw2@h2/app".into()];
        assert!(c.validate().is_ok());
        assert_eq!(c.databases().count(), 2);
        c.other_databases.push("postgres://a:pw1@h1/app".into());
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("twice") && !e.contains("pw1"), "{e}");
        assert_eq!(
            crate::pg::target("postgres://a:pw1@h1:6432/app"),
            "h1:6432/app"
        );
    }

    #[test]
    fn defaults_are_valid_and_bad_settings_are_named() {
        let c = Config::new("postgres://x");
        assert!(c.validate().is_ok());
        let mut short = c.clone();
        short.lease = Duration::from_secs(10);
        let e = short.validate().unwrap_err().to_string();
        assert!(e.contains("lease"), "{e}");
        let mut zero = c.clone();
        zero.concurrency = 0;
        assert!(zero.validate().is_err());
        let a = default_worker_id();
        let b = default_worker_id();
        assert_ne!(a, b);
    }
}
