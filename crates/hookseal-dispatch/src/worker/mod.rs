//! The worker: claim, deliver concurrently, record results in batches,
//! and on shutdown finish or release what is in flight. Its parts, each in
//! its own file with its own `run` (River's producer, executor, completer
//! and maintenance, in this worker's words):
//! - [`claimer`]: the caller's task; one connection that also `LISTEN`s;
//!   claims as many rows as the worker has free slots;
//! - [`sender`]: one task per claimed row, holding a worker slot and a slot
//!   of its endpoint (the database's claim already hands out no more rows
//!   of an endpoint than it can take, so these rarely wait); it waits out
//!   the row's rate-limit slot (`send_after`) before sending; attempts
//!   slower than `slow_after` trade their slot for one of the slow pool, so
//!   hanging endpoints do not hold the claimer's slots;
//! - [`recorder`]: its own connection; finished attempts into one
//!   `ack_many` per batch plus one `fail` per failure, kept until the
//!   database takes them, over a bounded backlog;
//! - [`maintainer`]: `maintain()` on a timer (`--maintain-every`).
//!
//! [`backoff`] is the one wait after a database error that the claimer and
//! the recorder share.

use std::future::Future;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore};
use tokio_util::task::TaskTracker;

use crate::deliver::Deliverer;
use crate::metrics::Metrics;
use crate::{Config, DispatchError};

mod backoff;
mod claimer;
mod maintainer;
mod recorder;
mod sender;

use claimer::Claimer;
use recorder::{Database, Recorder};
use sender::{wind_down, Shared};

/// When the loop stops by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Only on the shutdown signal.
    Forever,
    /// When nothing is due and nothing is in flight, or at the deadline.
    Drain(Instant),
}

/// What a run did (counted by this dispatcher since it was built).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    /// Rows claimed.
    pub claimed: u64,
    /// Rows delivered.
    pub delivered: u64,
    /// Failed attempts scheduled for a retry.
    pub retried: u64,
    /// Rows dead-lettered.
    pub dead: u64,
    /// Rows given back unsent.
    pub released: u64,
    /// Results dropped because the lease had moved on.
    pub lease_lost: u64,
}

impl Summary {
    /// The counts since `earlier` (a summary of the same dispatcher).
    pub fn since(self, earlier: Summary) -> Summary {
        Summary {
            claimed: self.claimed.saturating_sub(earlier.claimed),
            delivered: self.delivered.saturating_sub(earlier.delivered),
            retried: self.retried.saturating_sub(earlier.retried),
            dead: self.dead.saturating_sub(earlier.dead),
            released: self.released.saturating_sub(earlier.released),
            lease_lost: self.lease_lost.saturating_sub(earlier.lease_lost),
        }
    }
}

/// Delivers outbox rows. Build one per process; [`Dispatcher::run`] is the
/// long-running worker, [`Dispatcher::drain`] the bounded variant for
/// short-lived hosts such as a Lambda invocation.
pub struct Dispatcher {
    config: Arc<Config>,
    deliverer: Deliverer,
    metrics: Arc<Metrics>,
    /// Portable flavour: the sealing keys and the secrets opened so far
    /// (kept across runs and drains of this dispatcher).
    sealed: Option<Arc<crate::sealed::Sealed>>,
}

impl Dispatcher {
    /// Checks the configuration and builds the HTTP client.
    pub fn new(config: Config) -> Result<Self, DispatchError> {
        config.validate()?;
        let deliverer = Deliverer::new(&config).map_err(DispatchError::Http)?;
        let sealed = config
            .sealing_keys
            .clone()
            .map(|k| Arc::new(crate::sealed::Sealed::new(k)));
        Ok(Dispatcher {
            config: Arc::new(config),
            deliverer,
            metrics: Arc::new(Metrics::default()),
            sealed,
        })
    }

    /// Connects once and checks that the database has the extension at the
    /// version this build speaks ([`crate::pg::EXTENSION_VERSION`]) and
    /// that the role may execute every function the worker calls (those
    /// `hookseal_dispatcher` is granted; `maintain()` too with
    /// `maintain_every`). Call it before [`run`](Self::run): a database
    /// without the extension, at another version, or a role without the
    /// grant gives an error whose
    /// [`is_fatal`](crate::pg::ExtensionError::is_fatal) says not to start
    /// (its message names the role and the `GRANT`); an unreachable one a
    /// transient error (the loop keeps reconnecting). Returns the flavour
    /// found; a portable database without [`Config::sealing_keys`] is
    /// refused ([`crate::pg::ExtensionError::NoSealingKey`]).
    pub async fn check_database(&self) -> Result<crate::Flavour, crate::pg::ExtensionError> {
        let cfg = &self.config;
        let mut functions = crate::db::FUNCTIONS.to_vec();
        if cfg.maintain_every.is_some() {
            functions.push(crate::db::MAINTAIN);
        }
        // Every database (a worker over several checks each): a refusal
        // for good is returned at once; otherwise one that is only
        // unreachable is (the caller warns and the lane keeps trying).
        let mut result = self.check_one(&cfg.database_url, &functions).await;
        for url in &cfg.other_databases {
            let checked = self.check_one(url, &functions).await;
            if result.is_ok() || checked.as_ref().is_err_and(|e| e.is_fatal()) {
                result = checked.map(|f| result.unwrap_or(f));
            }
        }
        result
    }

    /// One database's check (see [`check_database`](Self::check_database)).
    async fn check_one(
        &self,
        url: &str,
        functions: &[&str],
    ) -> Result<crate::Flavour, crate::pg::ExtensionError> {
        let cfg = &self.config;
        let checked =
            crate::pg::check_url_for(url, cfg.root_cert.as_deref(), cfg.db_timeout, functions)
                .await
                .and_then(|flavour| match flavour {
                    crate::Flavour::Portable if self.sealed.is_none() => {
                        Err(crate::pg::ExtensionError::NoSealingKey)
                    }
                    f => Ok(f),
                });
        if !cfg.other_databases.is_empty() {
            match &checked {
                Ok(f) => {
                    tracing::info!(database = %crate::pg::target(url), flavour = %f, "database checked")
                }
                Err(e) => {
                    tracing::warn!(database = %crate::pg::target(url), error = %e, "database check failed")
                }
            }
        }
        checked
    }

    /// Whether it was given sealing keys (can sign the portable flavour's
    /// rows).
    pub fn can_sign(&self) -> bool {
        self.sealed.is_some()
    }

    /// How many opened secrets this dispatcher holds in memory (portable
    /// flavour; 0 otherwise).
    pub fn opened_secrets(&self) -> usize {
        self.sealed.as_ref().map_or(0, |s| s.cached())
    }

    /// The counters this dispatcher updates.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Runs until `shutdown` completes, then stops claiming, waits up to the
    /// shutdown grace for in-flight deliveries, releases the rest, and
    /// records every result before returning. A permanent refusal of the
    /// claim (see [`try_run`](Self::try_run)) stops it early, logged.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> Summary {
        self.try_run(shutdown).await.unwrap_or_else(|e| e.summary)
    }

    /// [`run`](Self::run), but a claim the database refuses with an error
    /// no retry can cure (no privilege, no such function:
    /// [`crate::pg::is_permanent`]) stops the worker, after the same
    /// shutdown steps, with [`Stopped`] instead of retrying it forever.
    /// Errors of the connection are retried, with a backoff that doubles
    /// up to 5 s.
    pub async fn try_run(&self, shutdown: impl Future<Output = ()>) -> Result<Summary, Stopped> {
        self.work(Mode::Forever, shutdown).await
    }

    /// Delivers what is due now and returns when nothing is left, or when
    /// `budget` is nearly spent (claiming stops at `budget` minus the HTTP
    /// timeout, so in-flight attempts can finish).
    pub async fn drain(&self, budget: Duration) -> Summary {
        self.try_drain(budget, std::future::pending())
            .await
            .unwrap_or_else(|e| e.summary)
    }

    /// [`drain`](Self::drain) that also ends when `shutdown` completes (as
    /// [`run`](Self::run) does: in-flight attempts get the shutdown grace,
    /// the rest is released, every result is recorded) or, with
    /// [`Stopped`], on a permanent refusal (see [`try_run`](Self::try_run)).
    pub async fn try_drain(
        &self,
        budget: Duration,
        shutdown: impl Future<Output = ()>,
    ) -> Result<Summary, Stopped> {
        let stop_claiming = budget.saturating_sub(self.config.timeout + Duration::from_secs(1));
        self.work(Mode::Drain(Instant::now() + stop_claiming), shutdown)
            .await
    }

    /// What this dispatcher has counted since it was built.
    pub fn summary(&self) -> Summary {
        let m = &self.metrics;
        Summary {
            claimed: m.claimed.get(),
            delivered: m.delivered.get(),
            retried: m.retried.get(),
            dead: m.dead.get(),
            released: m.released.get(),
            lease_lost: m.lease_lost.get(),
        }
    }

    /// Every database's lane at once, sharing the worker's slots and slow
    /// pool, until `shutdown` (or, draining, until each lane is done). A
    /// lane that the database refuses for good stops alone, logged; the
    /// worker reports it once every lane has ended.
    async fn work(
        &self,
        mode: Mode,
        shutdown: impl Future<Output = ()>,
    ) -> Result<Summary, Stopped> {
        let cfg = self.config.clone();
        let global = Arc::new(Semaphore::new(cfg.concurrency));
        let slow = Arc::new(Semaphore::new(cfg.max_slow));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tracing::info!(worker = %cfg.worker_id, concurrency = cfg.concurrency,
            per_endpoint = cfg.per_endpoint, batch = cfg.batch,
            databases = cfg.databases().count(), "dispatcher started");
        let lanes = cfg.databases().map(|url| {
            let lane = self.lane(url, global.clone(), slow.clone(), mode);
            lane.run(mode, stopped.clone())
        });
        let all = futures_util::future::join_all(lanes);
        tokio::pin!(all, shutdown);
        let ends = tokio::select! {
            ends = &mut all => ends,
            _ = &mut shutdown => {
                let _ = stop.send(true);
                all.await
            }
        };
        let s = self.summary();
        tracing::info!(worker = %cfg.worker_id, claimed = s.claimed, delivered = s.delivered,
            retried = s.retried, dead = s.dead, released = s.released,
            lease_lost = s.lease_lost, "dispatcher stopped");
        let fatal: Vec<String> = ends
            .into_iter()
            .filter_map(|e| match e {
                End::Fatal(reason) => Some(reason),
                End::Signal | End::Done => None,
            })
            .collect();
        match fatal.is_empty() {
            true => Ok(s),
            false => Err(Stopped {
                summary: s,
                reason: fatal.join("; "),
            }),
        }
    }

    /// One database's recorder (and maintainer) started, and the state its
    /// claimer and delivery tasks share.
    fn lane(&self, url: &str, global: Arc<Semaphore>, slow: Arc<Semaphore>, mode: Mode) -> Lane {
        let cfg = Arc::new(Config {
            database_url: url.to_owned(),
            other_databases: Vec::new(),
            ..(*self.config).clone()
        });
        let (tx, rx) = recorder::backlog(cfg.concurrency);
        // Signalled after each batch of results is recorded: rows left the
        // in-flight count, so the endpoints they held may take more now.
        let recorded = Arc::new(Notify::new());
        let unrecorded = Arc::new(AtomicUsize::new(0));
        let recorder = tokio::spawn(
            Recorder {
                cfg: cfg.clone(),
                metrics: self.metrics.clone(),
                connect: Database(cfg.clone()),
                rx,
                recorded: recorded.clone(),
                unrecorded: unrecorded.clone(),
            }
            .run(),
        );
        let maintainer = match (mode, cfg.maintain_every) {
            (Mode::Forever, Some(every)) => Some(tokio::spawn(maintainer::run(cfg.clone(), every))),
            _ => None,
        };
        let shared = Shared {
            cfg: cfg.clone(),
            deliverer: self.deliverer.clone(),
            metrics: self.metrics.clone(),
            tx,
            inflight: Arc::default(),
            tasks: TaskTracker::new(),
            global,
            slow,
            unrecorded,
            sealed: self.sealed.clone(),
        };
        Lane {
            target: crate::pg::target(url),
            shared,
            recorded,
            recorder,
            maintainer,
        }
    }
}

/// One database's part of a worker: its claimer, delivery tasks, recorder
/// and maintainer. Its outbox ids never meet another lane's (each lane has
/// its own in-flight table and recorder), so everything keyed by an id is
/// keyed by (database, id).
struct Lane {
    target: String,
    shared: Shared,
    recorded: Arc<Notify>,
    recorder: tokio::task::JoinHandle<()>,
    maintainer: Option<tokio::task::JoinHandle<()>>,
}

impl Lane {
    /// Claims until `stopped` says so (or the drain is done, or the
    /// database refuses for good), then finishes or releases what is in
    /// flight and records every result.
    async fn run(self, mode: Mode, mut stopped: tokio::sync::watch::Receiver<bool>) -> End {
        let cfg = self.shared.cfg.clone();
        let mut claimer = Claimer::new(self.shared.clone(), self.recorded);
        let signal = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        tokio::pin!(signal);
        let end = claimer.run(mode, &mut signal).await;
        drop(claimer);
        let grace = match (&end, mode) {
            (End::Signal, _) | (_, Mode::Forever) => cfg.shutdown_grace,
            (_, Mode::Drain(_)) => cfg.timeout + Duration::from_millis(500),
        };
        // Every sender (the claimer's, the tasks') is gone after this, so
        // the recorder ends once it has recorded what it holds.
        wind_down(self.shared, grace).await;
        if let Some(m) = self.maintainer {
            m.abort();
        }
        if let Err(e) = self.recorder.await {
            tracing::error!(database = %self.target, error = %e, "result recorder ended abnormally");
        }
        match end {
            End::Fatal(reason) => {
                tracing::error!(database = %self.target, reason, "this database's claims stopped");
                End::Fatal(format!("{}: {reason}", self.target))
            }
            other => other,
        }
    }
}

/// Why the claim loop ended.
pub(super) enum End {
    /// The shutdown future completed.
    Signal,
    /// A drain found nothing left, or reached its deadline.
    Done,
    /// The database refused a claim for good (see [`crate::pg::is_permanent`]).
    Fatal(String),
}

/// Why a worker stopped by itself: the database refused its claim with an
/// error no retry can cure (SQLSTATE 42501, the role lacks
/// `hookseal_dispatcher`; 42883, the function is missing; …). What was in
/// flight was finished or released first, as at a shutdown.
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct Stopped {
    /// What the dispatcher had counted when it stopped.
    pub summary: Summary,
    /// The refusal, with its SQLSTATE.
    pub reason: String,
}
