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
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::AbortHandle;

use crate::db::{Db, Delivery, Failure, Logged};
use crate::deliver::{Deliverer, FailureClass, Job, Outcome};
use crate::metrics::Metrics;
use crate::pg::{is_transient, Described};
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
    /// version this build speaks ([`crate::pg::EXTENSION_VERSION`]). Call
    /// it before [`run`](Self::run): a database without the extension, or
    /// at another version, gives an error whose
    /// [`is_fatal`](crate::pg::ExtensionError::is_fatal) says not to start;
    /// an unreachable one a transient error (the loop keeps reconnecting).
    pub async fn check_database(&self) -> Result<(), crate::pg::ExtensionError> {
        let cfg = &self.config;
        crate::pg::check_url(&cfg.database_url, cfg.root_cert.as_deref(), cfg.db_timeout).await
    }

    /// The counters this dispatcher updates.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Runs until `shutdown` completes, then stops claiming, waits up to the
    /// shutdown grace for in-flight deliveries, releases the rest, and
    /// records every result before returning.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> Summary {
        self.work(Mode::Forever, shutdown).await
    }

    /// Delivers what is due now and returns when nothing is left, or when
    /// `budget` is nearly spent (claiming stops at `budget` minus the HTTP
    /// timeout, so in-flight attempts can finish).
    pub async fn drain(&self, budget: Duration) -> Summary {
        let stop_claiming = budget.saturating_sub(self.config.timeout + Duration::from_secs(1));
        self.work(
            Mode::Drain(Instant::now() + stop_claiming),
            std::future::pending(),
        )
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

    async fn work(&self, mode: Mode, shutdown: impl Future<Output = ()>) -> Summary {
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
        let wake = Arc::new(Notify::new());
        let global = Arc::new(Semaphore::new(cfg.concurrency));
        let endpoints: Mutex<HashMap<String, Arc<Endpoint>>> = Mutex::new(HashMap::new());
        let inflight: Arc<Mutex<HashMap<i64, AbortHandle>>> = Arc::default();
        let shared = Shared {
            cfg: cfg.clone(),
            deliverer: self.deliverer.clone(),
            metrics: self.metrics.clone(),
            tx: tx.clone(),
            inflight: inflight.clone(),
            global: global.clone(),
            slow: Arc::new(Semaphore::new(cfg.max_slow)),
            unrecorded: unrecorded.clone(),
        };
        let mut db: Option<Db> = None;
        let mut backoff = Duration::from_millis(100);
        tracing::info!(worker = %cfg.worker_id, concurrency = cfg.concurrency,
            per_endpoint = cfg.per_endpoint, batch = cfg.batch, "dispatcher started");
        tokio::pin!(shutdown);

        loop {
            if let Mode::Drain(until) = mode {
                if Instant::now() >= until {
                    break;
                }
            }
            let conn = match db.take() {
                Some(d) if !d.is_closed() => d,
                _ => {
                    let connected = tokio::select! {
                        c = Db::connect_within(&cfg, Some(wake.clone())) => c,
                        _ = &mut shutdown => break,
                    };
                    match connected {
                        Ok(d) => {
                            backoff = Duration::from_millis(100);
                            d
                        }
                        Err(e) => {
                            self.metrics.db_errors.fetch_add(1, Relaxed);
                            tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64,
                                "cannot connect to the database");
                            tokio::select! {
                                _ = tokio::time::sleep(backoff) => {}
                                _ = &mut shutdown => break,
                            }
                            backoff = (backoff * 2).min(Duration::from_secs(5));
                            continue;
                        }
                    }
                }
            };
            // As many rows as there are free delivery slots (at least one).
            let mut permits = tokio::select! {
                biased;
                _ = &mut shutdown => break,
                p = global.clone().acquire_many_owned(1) => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let extra = (cfg.batch - 1).min(global.available_permits());
            if extra > 0 {
                if let Ok(more) = global.clone().try_acquire_many_owned(extra as u32) {
                    permits.merge(more);
                }
            }
            let want = permits.num_permits();
            // Not cancelled by shutdown: a claim the database ran must reach
            // the delivery tasks (or the release below), not wait out its lease.
            let claimed = tokio::time::timeout(
                cfg.db_timeout,
                conn.claim(
                    &cfg.worker_id,
                    want as i32,
                    cfg.lease,
                    (cfg.per_endpoint * CLAIM_AHEAD) as i32,
                    &self.saturated(&endpoints),
                ),
            )
            .await;
            let jobs = match claimed {
                Ok(Ok(jobs)) => {
                    db = Some(conn);
                    jobs
                }
                // A stalled connection: drop it (the rows a lost answer
                // leased are delivered again after their lease).
                Err(_) => {
                    self.metrics.db_errors.fetch_add(1, Relaxed);
                    tracing::warn!(
                        timeout_ms = cfg.db_timeout.as_millis() as u64,
                        "claim got no answer; reconnecting"
                    );
                    drop(permits);
                    continue;
                }
                Ok(Err(e)) => {
                    self.metrics.db_errors.fetch_add(1, Relaxed);
                    tracing::warn!(error = %Described(&e), "claim failed; reconnecting");
                    drop(permits);
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = &mut shutdown => break,
                    }
                    continue;
                }
            };
            let got = jobs.len();
            self.metrics.claimed.fetch_add(got as u64, Relaxed);
            for job in jobs {
                let Some(permit) = permits.split(1) else {
                    break; // claim never returns more than asked
                };
                let ep = self.endpoint_limit(&endpoints, &job.endpoint_id);
                let id = job.outbox_id;
                let mut table = inflight.lock().unwrap_or_else(|p| p.into_inner());
                let handle = tokio::spawn(deliver_one(
                    shared.clone(),
                    job,
                    permit,
                    Held::new(ep),
                    Instant::now(),
                ));
                table.insert(id, handle.abort_handle());
            }
            drop(permits);
            if got == want {
                continue; // more may be due right now
            }
            if let Mode::Drain(_) = mode {
                if got == 0 && shared.idle() {
                    break;
                }
            }
            // Fewer rows than slots: nothing else is due, or the endpoints
            // with due rows are at their limits. Claim again on a new event,
            // when recorded results free room, or at the next poll (retries
            // come due without a notification).
            tokio::select! {
                biased;
                _ = &mut shutdown => break,
                _ = wake.notified() => {}
                _ = recorded.notified() => {}
                _ = tokio::time::sleep(cfg.poll_interval) => {}
            }
        }

        // Stop claiming; let in-flight attempts finish within the grace.
        let grace = match mode {
            Mode::Forever => cfg.shutdown_grace,
            Mode::Drain(_) => cfg.timeout + Duration::from_millis(500),
        };
        let deadline = Instant::now() + grace;
        while !shared.idle() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let finished = shared.idle();
        if !finished {
            let unsent: Vec<(i64, AbortHandle)> = inflight
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
            let _ = tx.send(Record::Release(ids));
        }
        drop(tx);
        drop(shared);
        drop(db);
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
        s
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
/// (one short session a minute costs nothing and survives restarts).
async fn maintain(cfg: Arc<Config>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let client =
            match crate::pg::connect(&cfg.database_url, cfg.root_cert.as_deref(), None).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "maintain: cannot connect");
                    continue;
                }
            };
        loop {
            match client
                .query_one("SELECT hookseal.maintain()::text", &[])
                .await
            {
                Ok(row) => {
                    let text: String = row.get(0);
                    let report: serde_json::Value =
                        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
                    tracing::info!(report = %text, "maintain");
                    if report.get("more") != Some(&serde_json::Value::Bool(true)) {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %Described(&e), "maintain() failed");
                    break;
                }
            }
        }
    }
}

/// The recorder: batches results into the database until the channel
/// closes and everything it received is recorded (or, with the database
/// gone, until the shutdown grace runs out; those rows are re-delivered
/// after their lease).
async fn record(
    cfg: Arc<Config>,
    metrics: Arc<Metrics>,
    mut rx: mpsc::UnboundedReceiver<Record>,
    (recorded, unrecorded): (Arc<Notify>, Arc<AtomicUsize>),
) {
    const MAX_BATCH: usize = 1000;
    let mut acks: Vec<Delivery> = Vec::new();
    let mut fails: Vec<Failure> = Vec::new();
    let mut release: Vec<i64> = Vec::new();
    let mut db: Option<Db> = None;
    let mut backoff = Duration::from_millis(100);
    let mut closed_at: Option<Instant> = None;
    // Records taken and not yet flushed (see Shared::unrecorded).
    let mut taken = 0usize;
    let take = |r: Record,
                acks: &mut Vec<Delivery>,
                fails: &mut Vec<Failure>,
                release: &mut Vec<i64>| match r {
        Record::Done(id, Outcome::Delivered { status }, log) => acks.push(Delivery {
            outbox_id: id,
            status: i32::from(status),
            log: *log,
        }),
        Record::Done(id, Outcome::Gone, log) => {
            metrics.gone.fetch_add(1, Relaxed);
            fails.push(Failure {
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
        ) => fails.push(Failure {
            outbox_id: id,
            status: status.map(i32::from),
            error,
            retry_after_secs: retry_after.map(|d| d.as_secs_f64()),
            class: class.as_str(),
            log: *log,
        }),
        Record::Release(ids) => release.extend(ids),
    };
    loop {
        if acks.is_empty() && fails.is_empty() && release.is_empty() {
            if closed_at.is_some() {
                return;
            }
            match rx.recv().await {
                Some(r) => {
                    take(r, &mut acks, &mut fails, &mut release);
                    taken += 1;
                }
                None => return,
            }
        }
        while acks.len() + fails.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => {
                    take(r, &mut acks, &mut fails, &mut release);
                    taken += 1;
                }
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    closed_at.get_or_insert_with(Instant::now);
                    break;
                }
            }
        }
        if let Some(t) = closed_at {
            if t.elapsed() > cfg.shutdown_grace {
                tracing::error!(acks = acks.len(), fails = fails.len(), release = release.len(),
                    "database unreachable at shutdown; these rows will be re-delivered after their lease");
                return;
            }
        }
        let conn = match db.take() {
            Some(d) if !d.is_closed() => d,
            _ => match Db::connect_within(&cfg, None).await {
                Ok(d) => {
                    backoff = Duration::from_millis(100);
                    d
                }
                Err(e) => {
                    metrics.db_errors.fetch_add(1, Relaxed);
                    tracing::warn!(error = %e, pending = acks.len() + fails.len(),
                        "recorder cannot connect; keeping results");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            },
        };
        let flushed = tokio::time::timeout(
            cfg.db_timeout,
            flush(&cfg, &metrics, &conn, &mut acks, &mut fails, &mut release),
        )
        .await;
        match flushed {
            // Cancelled between statements: what was recorded left the
            // batches, the rest is kept for the next connection.
            Err(_) => {
                metrics.db_errors.fetch_add(1, Relaxed);
                tracing::warn!(
                    timeout_ms = cfg.db_timeout.as_millis() as u64,
                    "recording results got no answer; reconnecting"
                );
            }
            Ok(Ok(())) => {
                db = Some(conn);
                unrecorded.fetch_sub(taken, Relaxed);
                taken = 0;
                recorded.notify_one();
            }
            Ok(Err(e)) => {
                metrics.db_errors.fetch_add(1, Relaxed);
                tracing::warn!(error = %Described(&e), "recording results failed; reconnecting");
                tokio::time::sleep(backoff).await;
            }
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
    if !release.is_empty() {
        let n = db.release(worker, release).await?;
        metrics
            .released
            .fetch_add(u64::try_from(n).unwrap_or(0), Relaxed);
        release.clear();
    }
    Ok(())
}
