//! The worker loop: claim, deliver concurrently, record results in batches,
//! and on shutdown finish or release what is in flight.
//!
//! Three kinds of task cooperate:
//! - the claimer (the caller's task) holds one connection that also
//!   `LISTEN`s; it claims as many rows as it has free global permits;
//!   attempts slower than `slow_after` trade their global permit for one of
//!   the slow pool, so hanging endpoints do not hold the claimer's slots;
//! - one delivery task per claimed row, holding a global permit and a permit
//!   of its endpoint (the database's claim already hands out no more rows of
//!   an endpoint than it can take, so these rarely wait); it waits out the
//!   row's rate-limit slot (`send_after`) before sending;
//! - the recorder, with its own connection, which turns finished attempts
//!   into one `ack_many` per batch plus one `fail` per failure, and keeps
//!   them until the database takes them (it reconnects as often as needed).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::AbortHandle;
use tokio_postgres::error::SqlState;

use crate::db::{Db, Delivery, Failure, Logged};
use crate::deliver::{Deliverer, FailureClass, Job, Outcome};
use crate::metrics::Metrics;
use crate::pg::{is_permanent, is_transient, Described};
use crate::{Config, DispatchError};

/// Rows of one endpoint a worker may hold per slot of it (`per_endpoint`):
/// the extra rows wait in the worker, holding no worker slot, so the next
/// ones are ready the moment a slot frees instead of one acknowledgement and
/// one claim later. 8 x 32 is what the previous claim let one endpoint hold
/// (the worker's 256 slots). Measured in bench/dispatch.sh --compare: with 2
/// a one-endpoint drain ran at 0.55-0.83x of the previous claim, with 8 at
/// the figures in BENCHMARKS.md. A row queued so long that its attempt could
/// outlive the lease is given back unsent (see [`deliver_one`]). An
/// endpoint the worker holds half of that for is left out of claims
/// (`skip`), so the database does not count its rows again at every claim.
const CLAIM_AHEAD: usize = 8;

/// A row claimed ahead is given back instead of sent when its endpoint's
/// last this many attempts in this worker failed: the next claim, which sees
/// the endpoint's circuit, decides. Without it a dead endpoint would get
/// every row claimed ahead before its circuit opened.
const FAILING_RELEASE: u32 = 2;

/// Slots an endpoint starts with in a worker, until it first answers (any
/// HTTP status): an endpoint that never answers holds at most this many of
/// the worker's slots before its attempts move to the slow pool, so ten
/// hanging endpoints take 40 slots for `slow_after`, not all of them.
/// Measured in bench/fairness.sh (1,000 endpoints, 10 hanging): the healthy
/// p99 went from 128 ms to 101 ms with it (the rest came from the claim).
const SLOW_START: usize = 4;

/// This worker's view of one endpoint.
struct Endpoint {
    /// Its slots: [`SLOW_START`] until it answers, then `per_endpoint`.
    slots: Arc<Semaphore>,
    /// Slots added at its first answer.
    held_back: usize,
    /// It has answered once; `held_back` is added.
    answered: AtomicBool,
    /// Its attempts that failed in a row, here.
    failing: AtomicU32,
    /// Its rows this worker holds (queued, sending or parked).
    held: AtomicUsize,
}

/// Counts a row in [`Endpoint::held`] while its delivery task lives.
struct Held(Arc<Endpoint>);

impl Held {
    fn new(ep: Arc<Endpoint>) -> Self {
        ep.held.fetch_add(1, Relaxed);
        Held(ep)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.held.fetch_sub(1, Relaxed);
    }
}

impl Endpoint {
    fn new(per_endpoint: usize) -> Self {
        let first = per_endpoint.min(SLOW_START);
        Endpoint {
            slots: Arc::new(Semaphore::new(first)),
            held_back: per_endpoint - first,
            answered: AtomicBool::new(false),
            failing: AtomicU32::new(0),
            held: AtomicUsize::new(0),
        }
    }

    /// Counts an attempt's outcome.
    fn observe(&self, outcome: &Outcome) {
        let answered = match outcome {
            Outcome::Delivered { .. } => {
                self.failing.store(0, Relaxed);
                true
            }
            Outcome::Gone => true,
            Outcome::Retry { status, .. } => {
                self.failing.fetch_add(1, Relaxed);
                status.is_some()
            }
        };
        if answered && !self.answered.swap(true, Relaxed) {
            self.slots.add_permits(self.held_back);
        }
    }
}

/// When the loop stops by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
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

enum Record {
    Done(i64, Outcome, Box<Logged>),
    Release(Vec<i64>),
}

/// Delivers outbox rows. Build one per process; [`Dispatcher::run`] is the
/// long-running worker, [`Dispatcher::drain`] the bounded variant for
/// short-lived hosts such as a Lambda invocation.
pub struct Dispatcher {
    config: Arc<Config>,
    deliverer: Deliverer,
    metrics: Arc<Metrics>,
}

impl Dispatcher {
    /// Checks the configuration and builds the HTTP client.
    pub fn new(config: Config) -> Result<Self, DispatchError> {
        config.validate()?;
        let deliverer = Deliverer::new(&config).map_err(DispatchError::Http)?;
        Ok(Dispatcher {
            config: Arc::new(config),
            deliverer,
            metrics: Arc::new(Metrics::default()),
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
    /// transient error (the loop keeps reconnecting).
    pub async fn check_database(&self) -> Result<(), crate::pg::ExtensionError> {
        let cfg = &self.config;
        let mut functions = crate::db::FUNCTIONS.to_vec();
        if cfg.maintain_every.is_some() {
            functions.push(crate::db::MAINTAIN);
        }
        crate::pg::check_url_for(
            &cfg.database_url,
            cfg.root_cert.as_deref(),
            cfg.db_timeout,
            &functions,
        )
        .await
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
            claimed: m.claimed.load(Relaxed),
            delivered: m.delivered.load(Relaxed),
            retried: m.retried.load(Relaxed),
            dead: m.dead.load(Relaxed),
            released: m.released.load(Relaxed),
            lease_lost: m.lease_lost.load(Relaxed),
        }
    }

    async fn work(
        &self,
        mode: Mode,
        shutdown: impl Future<Output = ()>,
    ) -> Result<Summary, Stopped> {
        let cfg = self.config.clone();
        let (tx, rx) = mpsc::unbounded_channel::<Record>();
        // Signalled after each batch of results is recorded: rows left the
        // in-flight count, so the endpoints they held may take more now.
        let recorded = Arc::new(Notify::new());
        let unrecorded = Arc::new(AtomicUsize::new(0));
        let recorder = tokio::spawn(record(
            cfg.clone(),
            self.metrics.clone(),
            rx,
            (recorded.clone(), unrecorded.clone()),
        ));
        let maintainer = match (mode, cfg.maintain_every) {
            (Mode::Forever, Some(every)) => Some(tokio::spawn(maintain(cfg.clone(), every))),
            _ => None,
        };
        let shared = Shared {
            cfg: cfg.clone(),
            deliverer: self.deliverer.clone(),
            metrics: self.metrics.clone(),
            tx: tx.clone(),
            inflight: Arc::default(),
            global: Arc::new(Semaphore::new(cfg.concurrency)),
            slow: Arc::new(Semaphore::new(cfg.max_slow)),
            unrecorded,
        };
        tracing::info!(worker = %cfg.worker_id, concurrency = cfg.concurrency,
            per_endpoint = cfg.per_endpoint, batch = cfg.batch, "dispatcher started");
        let mut claimer = Claimer::new(self, shared.clone(), recorded);
        tokio::pin!(shutdown);
        let end = claimer.run(mode, &mut shutdown).await;
        drop(claimer);
        let grace = match (&end, mode) {
            (End::Signal, _) | (_, Mode::Forever) => cfg.shutdown_grace,
            (_, Mode::Drain(_)) => cfg.timeout + Duration::from_millis(500),
        };
        wind_down(shared, grace).await;
        drop(tx);
        if let Some(m) = maintainer {
            m.abort();
        }
        if let Err(e) = recorder.await {
            tracing::error!(error = %e, "result recorder ended abnormally");
        }
        let s = self.summary();
        tracing::info!(worker = %cfg.worker_id, claimed = s.claimed, delivered = s.delivered,
            retried = s.retried, dead = s.dead, released = s.released,
            lease_lost = s.lease_lost, "dispatcher stopped");
        match end {
            End::Fatal(reason) => Err(Stopped { summary: s, reason }),
            End::Signal | End::Done => Ok(s),
        }
    }

    /// The endpoints this worker holds at least half its claim-ahead of:
    /// the claim leaves them out (see [`CLAIM_AHEAD`]).
    fn saturated(&self, map: &Mutex<HashMap<String, Arc<Endpoint>>>) -> Vec<String> {
        let enough = self.config.per_endpoint * CLAIM_AHEAD / 2;
        let map = map.lock().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .filter(|(_, e)| e.held.load(Relaxed) >= enough)
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn endpoint_limit(
        &self,
        map: &Mutex<HashMap<String, Arc<Endpoint>>>,
        endpoint: &str,
    ) -> Arc<Endpoint> {
        let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 10_000 {
            // Forget idle endpoints (no task holds their semaphore).
            map.retain(|_, s| Arc::strong_count(s) > 1);
        }
        map.entry(endpoint.to_owned())
            .or_insert_with(|| Arc::new(Endpoint::new(self.config.per_endpoint)))
            .clone()
    }
}

/// First wait after a database error; it doubles with each error in a row
/// (a failed connect or claim) up to [`MAX_BACKOFF`], and starts again
/// after a claim succeeds.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Why the claim loop ended.
enum End {
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

/// The claim loop's state: its connection (which also `LISTEN`s), its
/// backoff, and this worker's view of the endpoints.
struct Claimer<'a> {
    d: &'a Dispatcher,
    shared: Shared,
    wake: Arc<Notify>,
    recorded: Arc<Notify>,
    endpoints: Mutex<HashMap<String, Arc<Endpoint>>>,
    db: Option<Db>,
    backoff: Duration,
}

impl<'a> Claimer<'a> {
    fn new(d: &'a Dispatcher, shared: Shared, recorded: Arc<Notify>) -> Self {
        Claimer {
            d,
            shared,
            wake: Arc::new(Notify::new()),
            recorded,
            endpoints: Mutex::new(HashMap::new()),
            db: None,
            backoff: FIRST_BACKOFF,
        }
    }

    /// Claims and hands rows to delivery tasks until shutdown, the end of
    /// a drain, or a permanent refusal. `shutdown` is not polled again
    /// once it has completed.
    async fn run<S: Future<Output = ()>>(&mut self, mode: Mode, shutdown: &mut Pin<&mut S>) -> End {
        loop {
            if let Err(end) = self.step(mode, shutdown).await {
                return end;
            }
        }
    }

    /// One round: a connection, free slots, a claim, its delivery tasks,
    /// and (when fewer rows came than asked) a wait for more work.
    async fn step<S: Future<Output = ()>>(
        &mut self,
        mode: Mode,
        shutdown: &mut Pin<&mut S>,
    ) -> Result<(), End> {
        if let Mode::Drain(until) = mode {
            if Instant::now() >= until {
                return Err(End::Done);
            }
        }
        let Some(conn) = self.connection(shutdown).await? else {
            return Ok(());
        };
        let permits = self.permits(shutdown).await?;
        let want = permits.num_permits();
        let Some((jobs, permits)) = self.claim(conn, permits, shutdown).await? else {
            return Ok(());
        };
        let got = jobs.len();
        self.spawn(jobs, permits);
        if got == want {
            return Ok(()); // more may be due right now
        }
        if let Mode::Drain(_) = mode {
            if got == 0 && self.shared.idle() {
                return Err(End::Done);
            }
        }
        // Fewer rows than slots: nothing else is due, or the endpoints
        // with due rows are at their limits. Claim again on a new event,
        // when recorded results free room, or at the next poll (retries
        // come due without a notification).
        tokio::select! {
            biased;
            _ = shutdown.as_mut() => return Err(End::Signal),
            _ = self.wake.notified() => {}
            _ = self.recorded.notified() => {}
            _ = tokio::time::sleep(self.shared.cfg.poll_interval) => {}
        }
        Ok(())
    }

    /// The open connection, or a new one; `None` after a failed connect
    /// (and its backoff). A refusal no retry can cure (a wrong password, a
    /// dropped database, no `USAGE` on the schema) ends the loop.
    async fn connection<S: Future<Output = ()>>(
        &mut self,
        shutdown: &mut Pin<&mut S>,
    ) -> Result<Option<Db>, End> {
        if let Some(d) = self.db.take().filter(|d| !d.is_closed()) {
            return Ok(Some(d));
        }
        let connected = tokio::select! {
            c = Db::connect_within(&self.shared.cfg, Some(self.wake.clone())) => c,
            _ = shutdown.as_mut() => return Err(End::Signal),
        };
        match connected {
            Ok(d) => Ok(Some(d)),
            Err(e) if e.is_permanent() => {
                self.d.metrics.db_errors.fetch_add(1, Relaxed);
                tracing::error!(error = %e, "the database refuses this worker for good; stopping");
                Err(End::Fatal(format!("cannot connect: {e}")))
            }
            Err(e) => {
                self.d.metrics.db_errors.fetch_add(1, Relaxed);
                tracing::warn!(error = %e, retry_in_ms = self.backoff.as_millis() as u64,
                    "cannot connect to the database");
                self.pause(shutdown).await?;
                Ok(None)
            }
        }
    }

    /// As many delivery slots as are free, up to the batch (at least one:
    /// waits for it).
    async fn permits<S: Future<Output = ()>>(
        &self,
        shutdown: &mut Pin<&mut S>,
    ) -> Result<OwnedSemaphorePermit, End> {
        let global = &self.shared.global;
        let mut permits = tokio::select! {
            biased;
            _ = shutdown.as_mut() => return Err(End::Signal),
            p = global.clone().acquire_many_owned(1) => p.map_err(|_| End::Done)?,
        };
        let extra = (self.shared.cfg.batch - 1).min(global.available_permits());
        if extra > 0 {
            if let Ok(more) = global.clone().try_acquire_many_owned(extra as u32) {
                permits.merge(more);
            }
        }
        Ok(permits)
    }

    /// Claims up to one row per permit. `None`: no answer or an error
    /// worth retrying (the connection is dropped); a permanent refusal
    /// ends the loop.
    async fn claim<S: Future<Output = ()>>(
        &mut self,
        conn: Db,
        permits: OwnedSemaphorePermit,
        shutdown: &mut Pin<&mut S>,
    ) -> Result<Option<(Vec<Job>, OwnedSemaphorePermit)>, End> {
        let cfg = self.shared.cfg.clone();
        let skip = self.d.saturated(&self.endpoints);
        // Not cancelled by shutdown: a claim the database ran must reach
        // the delivery tasks (or the release at shutdown), not wait out
        // its lease.
        let claimed = tokio::time::timeout(
            cfg.db_timeout,
            conn.claim(
                &cfg.worker_id,
                permits.num_permits() as i32,
                cfg.lease,
                (cfg.per_endpoint * CLAIM_AHEAD) as i32,
                &skip,
            ),
        )
        .await;
        match claimed {
            Ok(Ok(jobs)) => {
                self.db = Some(conn);
                self.backoff = FIRST_BACKOFF;
                Ok(Some((jobs, permits)))
            }
            // A stalled connection: drop it (the rows a lost answer
            // leased are delivered again after their lease).
            Err(_) => {
                self.d.metrics.db_errors.fetch_add(1, Relaxed);
                tracing::warn!(
                    timeout_ms = cfg.db_timeout.as_millis() as u64,
                    "claim got no answer; reconnecting"
                );
                Ok(None)
            }
            Ok(Err(e)) => {
                drop(permits);
                self.claim_failed(&e, shutdown).await?;
                Ok(None)
            }
        }
    }

    /// A refused claim: permanent (see [`crate::pg::is_permanent`]) ends
    /// the loop; anything else waits out the backoff, which doubles.
    async fn claim_failed<S: Future<Output = ()>>(
        &mut self,
        e: &tokio_postgres::Error,
        shutdown: &mut Pin<&mut S>,
    ) -> Result<(), End> {
        self.d.metrics.db_errors.fetch_add(1, Relaxed);
        if is_permanent(e) {
            let fix = match e.code() {
                Some(c) if *c == SqlState::INSUFFICIENT_PRIVILEGE => {
                    "; grant hookseal_dispatcher to the dispatcher's role"
                }
                _ => "",
            };
            let reason = format!("claim() refused: {}{fix}", Described(e));
            tracing::error!(error = %Described(e),
                "claim() refused, and no retry can succeed; stopping");
            return Err(End::Fatal(reason));
        }
        tracing::warn!(error = %Described(e), retry_in_ms = self.backoff.as_millis() as u64,
            "claim failed; reconnecting");
        self.pause(shutdown).await
    }

    /// Waits out the backoff (or until shutdown), then doubles it.
    async fn pause<S: Future<Output = ()>>(
        &mut self,
        shutdown: &mut Pin<&mut S>,
    ) -> Result<(), End> {
        tokio::select! {
            _ = tokio::time::sleep(self.backoff) => {}
            _ = shutdown.as_mut() => return Err(End::Signal),
        }
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        Ok(())
    }

    /// One delivery task per claimed row, each with one of `permits`.
    fn spawn(&self, jobs: Vec<Job>, mut permits: OwnedSemaphorePermit) {
        self.d.metrics.claimed.fetch_add(jobs.len() as u64, Relaxed);
        for job in jobs {
            let Some(permit) = permits.split(1) else {
                break; // claim never returns more than asked
            };
            let ep = self.d.endpoint_limit(&self.endpoints, &job.endpoint_id);
            let id = job.outbox_id;
            let mut table = self
                .shared
                .inflight
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let handle = tokio::spawn(deliver_one(
                self.shared.clone(),
                job,
                permit,
                Held::new(ep),
                Instant::now(),
            ));
            table.insert(id, handle.abort_handle());
        }
    }
}

/// After the claim loop: lets in-flight attempts finish within `grace`,
/// then aborts the rest and hands their rows to the recorder to release.
async fn wind_down(shared: Shared, grace: Duration) {
    let deadline = Instant::now() + grace;
    while !shared.idle() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if shared.idle() {
        return;
    }
    let unsent: Vec<(i64, AbortHandle)> = shared
        .inflight
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .drain()
        .collect();
    let ids: Vec<i64> = unsent
        .iter()
        .map(|(id, h)| {
            h.abort();
            *id
        })
        .collect();
    tracing::warn!(
        count = ids.len(),
        "shutdown grace over; releasing unfinished rows"
    );
    let _ = shared.tx.send(Record::Release(ids));
}

/// What the delivery tasks share with the claimer.
#[derive(Clone)]
struct Shared {
    cfg: Arc<Config>,
    deliverer: Deliverer,
    metrics: Arc<Metrics>,
    tx: mpsc::UnboundedSender<Record>,
    /// Every delivery task until it has finished (queued, sending or parked).
    inflight: Arc<Mutex<HashMap<i64, AbortHandle>>>,
    /// The worker's slots: one per attempt being sent.
    global: Arc<Semaphore>,
    /// The slow pool (see [`deliver_or_park`]).
    slow: Arc<Semaphore>,
    /// Results handed to the recorder and not yet in the database (their
    /// rows still count as in flight there).
    unrecorded: Arc<AtomicUsize>,
}

impl Shared {
    /// No delivery task is left and every result is recorded.
    fn idle(&self) -> bool {
        self.unrecorded.load(Relaxed) == 0
            && self
                .inflight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_empty()
    }

    /// A task is done: forget it, then hand its result to the recorder.
    fn finish(&self, id: i64, record: Record) {
        self.inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        self.unrecorded.fetch_add(1, Relaxed);
        if self.tx.send(record).is_err() {
            self.unrecorded.fetch_sub(1, Relaxed);
        }
    }
}

/// One claimed row: wait for a slot of its endpoint (without holding one of
/// the worker's slots meanwhile), wait out its rate slot, send it, record.
async fn deliver_one(
    s: Shared,
    job: Job,
    permit: OwnedSemaphorePermit,
    held: Held,
    claimed_at: Instant,
) {
    let ep = &held.0;
    let id = job.outbox_id;
    let (permit, _ep) = match ep.slots.clone().try_acquire_owned() {
        Ok(e) => (permit, e),
        Err(_) => {
            // Claimed ahead of its endpoint's free slots: queue without a
            // worker slot, so queued rows never crowd out other endpoints.
            drop(permit);
            let (Ok(e), Ok(g)) = (
                ep.slots.clone().acquire_owned().await,
                s.global.clone().acquire_owned().await,
            ) else {
                return s.finish(id, Record::Release(vec![id]));
            };
            if ep.failing.load(Relaxed) >= FAILING_RELEASE {
                return s.finish(id, Record::Release(vec![id]));
            }
            (g, e)
        }
    };
    // Queued (behind its endpoint or its rate slot) for so long that the
    // attempt could outlive the lease: give the row back rather than race
    // the worker that would take it over.
    let start = claimed_at.elapsed().max(job.send_after);
    if start + s.cfg.timeout >= s.cfg.lease {
        return s.finish(id, Record::Release(vec![id]));
    }
    if !job.send_after.is_zero() {
        tokio::time::sleep_until((claimed_at + job.send_after).into()).await;
    }
    let (attempt, permit) =
        deliver_or_park(&s.deliverer, &job, permit, &s.slow, s.cfg.slow_after).await;
    s.metrics.observe(attempt.elapsed);
    ep.observe(&attempt.outcome);
    log_attempt(&job, &attempt.outcome, attempt.elapsed);
    // The slot is free before the result is recorded, so the claimer that
    // the recorder wakes sees it free.
    drop(permit);
    let logged = Logged {
        attempt: job.attempt,
        started: attempt.started,
        finished: attempt.started + attempt.elapsed,
        resigned: job.resigned,
        response_type: attempt.answer.content_type,
        response_body: attempt.answer.body,
    };
    s.finish(id, Record::Done(id, attempt.outcome, Box::new(logged)));
}

/// Delivers `job`. If no answer has come after `slow_after`, trades the
/// delivery's slot for one of the slow pool (when one is free), so a worker
/// whose endpoints hang keeps its slots for the others. Returns the attempt
/// and whichever permit it holds at the end.
async fn deliver_or_park(
    deliverer: &Deliverer,
    job: &Job,
    permit: OwnedSemaphorePermit,
    slow: &Arc<Semaphore>,
    slow_after: Duration,
) -> (crate::deliver::Attempt, OwnedSemaphorePermit) {
    let attempt = deliverer.deliver(job);
    tokio::pin!(attempt);
    tokio::select! {
        a = &mut attempt => return (a, permit),
        _ = tokio::time::sleep(slow_after) => {}
    }
    match slow.clone().try_acquire_owned() {
        Ok(parked) => {
            drop(permit);
            (attempt.await, parked)
        }
        Err(_) => (attempt.await, permit),
    }
}

fn log_attempt(job: &Job, outcome: &Outcome, elapsed: Duration) {
    let ms = elapsed.as_secs_f64() * 1e3;
    match outcome {
        Outcome::Delivered { status } => tracing::debug!(outbox_id = job.outbox_id,
            event = %job.event_id, endpoint = %job.endpoint_id, attempt = job.attempt,
            status, ms, "delivered"),
        Outcome::Gone => tracing::warn!(outbox_id = job.outbox_id, event = %job.event_id,
            endpoint = %job.endpoint_id, "410 Gone: disabling the endpoint"),
        Outcome::Retry { status, error, .. } => tracing::warn!(outbox_id = job.outbox_id,
            event = %job.event_id, endpoint = %job.endpoint_id, attempt = job.attempt,
            status = status.map(i64::from), error = %error, ms, "attempt failed"),
    }
}

/// Retention on a timer (`Config::maintain_every`): every `every`, call
/// `hookseal.maintain()` until it reports nothing more to do. Errors are
/// logged and retried at the next tick; the connection is made per tick
/// (one short session a minute costs nothing and survives restarts). The
/// connection and each call are bounded by `db_timeout`, as every other
/// database call of the worker: a link that stalls without closing skips
/// the tick, logged, instead of stopping retention for good (0.3.0 and
/// before waited forever).
async fn maintain(cfg: Arc<Config>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Err(e) = maintain_once(&cfg).await {
            tracing::warn!(error = %e, "maintain: skipped until the next tick");
        }
    }
}

/// One tick of [`maintain`]: `maintain()` until it has no more to do.
async fn maintain_once(cfg: &Config) -> Result<(), String> {
    let limit = cfg.db_timeout;
    let bounded = |what: &'static str| move |_| format!("{what}: no answer within {limit:?}");
    let client = tokio::time::timeout(
        limit,
        crate::pg::connect(&cfg.database_url, cfg.root_cert.as_deref(), None),
    )
    .await
    .map_err(bounded("cannot connect"))?
    .map_err(|e| format!("cannot connect: {e}"))?;
    loop {
        let row = tokio::time::timeout(
            limit,
            client.query_one("SELECT hookseal.maintain()::text", &[]),
        )
        .await
        .map_err(bounded("maintain()"))?
        .map_err(|e| format!("maintain() failed: {}", Described(&e)))?;
        let text: String = row.get(0);
        let report: serde_json::Value =
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        tracing::info!(report = %text, "maintain");
        if report.get("more") != Some(&serde_json::Value::Bool(true)) {
            return Ok(());
        }
    }
}

/// Results taken from the channel and not yet in the database.
#[derive(Default)]
struct Batches {
    acks: Vec<Delivery>,
    fails: Vec<Failure>,
    release: Vec<i64>,
    /// Records taken and not yet flushed (see [`Shared::unrecorded`]).
    taken: usize,
}

impl Batches {
    fn is_empty(&self) -> bool {
        self.acks.is_empty() && self.fails.is_empty() && self.release.is_empty()
    }

    /// Adds one record to its batch.
    fn take(&mut self, r: Record, metrics: &Metrics) {
        self.taken += 1;
        match r {
            Record::Done(id, Outcome::Delivered { status }, log) => self.acks.push(Delivery {
                outbox_id: id,
                status: i32::from(status),
                log: *log,
            }),
            Record::Done(id, Outcome::Gone, log) => {
                metrics.gone.fetch_add(1, Relaxed);
                self.fails.push(Failure {
                    outbox_id: id,
                    status: Some(410),
                    error: "HTTP 410 Gone: endpoint disabled".into(),
                    retry_after_secs: None,
                    class: FailureClass::Http.as_str(),
                    log: *log,
                })
            }
            Record::Done(
                id,
                Outcome::Retry {
                    status,
                    error,
                    retry_after,
                    class,
                },
                log,
            ) => self.fails.push(Failure {
                outbox_id: id,
                status: status.map(i32::from),
                error,
                retry_after_secs: retry_after.map(|d| d.as_secs_f64()),
                class: class.as_str(),
                log: *log,
            }),
            Record::Release(ids) => self.release.extend(ids),
        }
    }

    /// Takes what the channel holds now, up to a batch; returns false once
    /// the channel is closed and empty.
    fn fill(&mut self, rx: &mut mpsc::UnboundedReceiver<Record>, metrics: &Metrics) -> bool {
        const MAX_BATCH: usize = 1000;
        while self.acks.len() + self.fails.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => self.take(r, metrics),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => return false,
            }
        }
        true
    }

    /// Everything taken is in the database (or given up on): the rows no
    /// longer count as unrecorded.
    fn done(&mut self, unrecorded: &AtomicUsize, recorded: &Notify) {
        self.acks.clear();
        self.fails.clear();
        self.release.clear();
        unrecorded.fetch_sub(self.taken, Relaxed);
        self.taken = 0;
        recorded.notify_one();
    }
}

/// The recorder: batches results into the database until the channel
/// closes and everything it received is recorded (or, with the database
/// gone, until the shutdown grace runs out; those rows are re-delivered
/// after their lease). A connection the database refuses for good (the
/// role lost its rights: [`crate::pg::ConnectError::is_permanent`]) drops
/// the results it holds instead of retrying them; their rows are delivered
/// again after their lease.
async fn record(
    cfg: Arc<Config>,
    metrics: Arc<Metrics>,
    mut rx: mpsc::UnboundedReceiver<Record>,
    (recorded, unrecorded): (Arc<Notify>, Arc<AtomicUsize>),
) {
    let mut b = Batches::default();
    let mut db: Option<Db> = None;
    let mut backoff = FIRST_BACKOFF;
    let mut closed_at: Option<Instant> = None;
    loop {
        if b.is_empty() {
            if closed_at.is_some() {
                return;
            }
            match rx.recv().await {
                Some(r) => b.take(r, &metrics),
                None => return,
            }
        }
        if !b.fill(&mut rx, &metrics) {
            closed_at.get_or_insert_with(Instant::now);
        }
        if let Some(t) = closed_at {
            if t.elapsed() > cfg.shutdown_grace {
                tracing::error!(acks = b.acks.len(), fails = b.fails.len(), release = b.release.len(),
                    "database unreachable at shutdown; these rows will be re-delivered after their lease");
                return;
            }
        }
        let Some(conn) = recorder_connection(
            &cfg,
            &metrics,
            db.take(),
            &mut b,
            &mut backoff,
            (&unrecorded, &recorded),
        )
        .await
        else {
            continue;
        };
        let flushed = tokio::time::timeout(
            cfg.db_timeout,
            flush(
                &cfg,
                &metrics,
                &conn,
                &mut b.acks,
                &mut b.fails,
                &mut b.release,
            ),
        )
        .await;
        if after_flush(&cfg, &metrics, flushed, &mut backoff).await {
            db = Some(conn);
            b.done(&unrecorded, &recorded);
        }
    }
}

/// The recorder's connection: the open one, or a new one. `None` when there
/// is none to use now: after a transient failure (having waited `backoff`,
/// doubled), or a permanent refusal (the results it holds are dropped;
/// their rows are delivered again after their lease).
async fn recorder_connection(
    cfg: &Config,
    metrics: &Metrics,
    open: Option<Db>,
    b: &mut Batches,
    backoff: &mut Duration,
    (unrecorded, recorded): (&AtomicUsize, &Notify),
) -> Option<Db> {
    if let Some(d) = open.filter(|d| !d.is_closed()) {
        return Some(d);
    }
    match Db::connect_within(cfg, None).await {
        Ok(d) => Some(d),
        Err(e) => {
            metrics.db_errors.fetch_add(1, Relaxed);
            if e.is_permanent() {
                tracing::error!(error = %e, acks = b.acks.len(), fails = b.fails.len(),
                    release = b.release.len(),
                    "the database refuses the recorder; dropping these results (the rows are delivered again after their lease)");
                b.done(unrecorded, recorded);
                return None;
            }
            tracing::warn!(error = %e, pending = b.acks.len() + b.fails.len(),
                "recorder cannot connect; keeping results");
            tokio::time::sleep(*backoff).await;
            *backoff = (*backoff * 2).min(MAX_BACKOFF);
            None
        }
    }
}

/// What a flush's outcome means: true when everything was recorded (the
/// connection is kept and the backoff reset); otherwise the error is
/// counted and logged, and after a refusal the recorder waits `backoff`.
async fn after_flush(
    cfg: &Config,
    metrics: &Metrics,
    flushed: Result<Result<(), tokio_postgres::Error>, tokio::time::error::Elapsed>,
    backoff: &mut Duration,
) -> bool {
    match flushed {
        // Cancelled between statements: what was recorded left the
        // batches, the rest is kept for the next connection.
        Err(_) => {
            metrics.db_errors.fetch_add(1, Relaxed);
            tracing::warn!(
                timeout_ms = cfg.db_timeout.as_millis() as u64,
                "recording results got no answer; reconnecting"
            );
            false
        }
        Ok(Ok(())) => {
            *backoff = FIRST_BACKOFF;
            true
        }
        Ok(Err(e)) => {
            metrics.db_errors.fetch_add(1, Relaxed);
            tracing::warn!(error = %Described(&e), retry_in_ms = backoff.as_millis() as u64,
                "recording results failed; reconnecting");
            tokio::time::sleep(*backoff).await;
            *backoff = (*backoff * 2).min(MAX_BACKOFF);
            false
        }
    }
}

async fn flush(
    cfg: &Config,
    metrics: &Metrics,
    db: &Db,
    acks: &mut Vec<Delivery>,
    fails: &mut Vec<Failure>,
    release: &mut Vec<i64>,
) -> Result<(), tokio_postgres::Error> {
    let worker = cfg.worker_id.as_str();
    if !acks.is_empty() {
        match db.ack_many(worker, acks).await {
            Ok(recorded) => {
                metrics.delivered.fetch_add(recorded.len() as u64, Relaxed);
                let lost = acks.len().saturating_sub(recorded.len());
                if lost > 0 {
                    metrics.lease_lost.fetch_add(lost as u64, Relaxed);
                    tracing::warn!(
                        count = lost,
                        "delivered rows whose lease had passed to another worker"
                    );
                }
            }
            // Refused, not interrupted: retrying the same batch would stall
            // the recorder. The rows are delivered again after their lease.
            Err(e) if !is_transient(&e) => {
                metrics.db_errors.fetch_add(1, Relaxed);
                tracing::error!(count = acks.len(), error = %Described(&e),
                    "ack_many() refused these results; the rows are delivered again after their lease");
            }
            Err(e) => return Err(e),
        }
        acks.clear();
    }
    if !fails.is_empty() {
        // Pipelined on the one connection; keep the ones not recorded.
        let results =
            futures_util::future::join_all(fails.iter().map(|f| db.fail(worker, f))).await;
        let mut first_err = None;
        let mut keep = Vec::new();
        for (f, r) in fails.drain(..).zip(results) {
            match r {
                Ok(Some(s)) if s == "dead" => {
                    metrics.dead.fetch_add(1, Relaxed);
                    tracing::warn!(outbox_id = f.outbox_id, "dead-lettered");
                }
                Ok(Some(_)) => {
                    metrics.retried.fetch_add(1, Relaxed);
                }
                Ok(None) => {
                    metrics.lease_lost.fetch_add(1, Relaxed);
                }
                // The statement itself was refused (a bug, or a schema this
                // build does not speak): retrying cannot help. Drop the
                // result, loudly; the row is delivered again after its lease.
                Err(e) if !is_transient(&e) => {
                    metrics.db_errors.fetch_add(1, Relaxed);
                    tracing::error!(outbox_id = f.outbox_id, error = %Described(&e),
                        "fail() refused this result; the row is retried after its lease");
                }
                Err(e) => {
                    keep.push(f);
                    first_err.get_or_insert(e);
                }
            }
        }
        *fails = keep;
        if let Some(e) = first_err {
            return Err(e);
        }
    }
    flush_release(worker, metrics, db, release).await
}

/// Gives the rows in `release` back; a refusal (not an interruption) is
/// logged and the rows dropped: they are due again after their lease, and
/// retrying would stall the recorder.
async fn flush_release(
    worker: &str,
    metrics: &Metrics,
    db: &Db,
    release: &mut Vec<i64>,
) -> Result<(), tokio_postgres::Error> {
    if release.is_empty() {
        return Ok(());
    }
    match db.release(worker, release).await {
        Ok(n) => {
            metrics
                .released
                .fetch_add(u64::try_from(n).unwrap_or(0), Relaxed);
        }
        Err(e) if !is_transient(&e) => {
            metrics.db_errors.fetch_add(1, Relaxed);
            tracing::error!(count = release.len(), error = %Described(&e),
                "release() refused these rows; they are due again after their lease");
        }
        Err(e) => return Err(e),
    }
    release.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database link that accepts and then says nothing (a partition, a
    /// hung proxy): one tick of retention gives up after `db_timeout`
    /// instead of waiting forever (0.3.0 connected with no limit, so
    /// `--maintain-every` silently stopped for good).
    #[tokio::test]
    async fn a_stalled_link_skips_a_maintain_tick_within_the_db_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                open.push(socket); // never answered, never closed
            }
        });
        let mut cfg = Config::new(format!("postgres://nobody@127.0.0.1:{port}/db"));
        cfg.db_timeout = Duration::from_millis(300);
        let started = Instant::now();
        let tick = tokio::time::timeout(Duration::from_secs(10), maintain_once(&cfg)).await;
        let err = tick
            .expect("maintain waited past 10 s on a stalled link")
            .unwrap_err();
        assert!(err.contains("no answer within 300ms"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
        held.abort();
    }
}
