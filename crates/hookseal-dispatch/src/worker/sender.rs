//! The sender: one task per claimed row, which waits for a slot of its
//! endpoint (and its rate slot), sends the row, and hands the result to
//! the recorder; attempts slower than `slow_after` trade their worker slot
//! for one of the slow pool. At shutdown [`wind_down`] lets them finish
//! within the grace and gives the rest back.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::AbortHandle;
use tokio_util::task::TaskTracker;

use super::recorder::Record;
use crate::db::Logged;
use crate::deliver::{Deliverer, Job, Outcome};
use crate::metrics::Metrics;
use crate::Config;

/// A row claimed ahead is given back instead of sent when its endpoint's
/// last this many attempts in this worker failed: the next claim, which sees
/// the endpoint's circuit, decides. Without it a dead endpoint would get
/// every row claimed ahead before its circuit opened.
pub(super) const FAILING_RELEASE: u32 = 2;

/// Slots an endpoint starts with in a worker, until it first answers (any
/// HTTP status): an endpoint that never answers holds at most this many of
/// the worker's slots before its attempts move to the slow pool, so ten
/// hanging endpoints take 40 slots for `slow_after`, not all of them.
/// Measured in bench/fairness.sh (1,000 endpoints, 10 hanging): the healthy
/// p99 went from 128 ms to 101 ms with it (the rest came from the claim).
const SLOW_START: usize = 4;

/// This worker's view of one endpoint.
pub(super) struct Endpoint {
    /// Its slots: [`SLOW_START`] until it answers, then `per_endpoint`.
    slots: Arc<Semaphore>,
    /// Slots added at its first answer.
    held_back: usize,
    /// It has answered once; `held_back` is added.
    answered: AtomicBool,
    /// Its attempts that failed in a row, here.
    failing: AtomicU32,
    /// Its rows this worker holds (queued, sending or parked).
    pub(super) held: AtomicUsize,
}

/// Counts a row in [`Endpoint::held`] while its delivery task lives.
pub(super) struct Held(pub(super) Arc<Endpoint>);

impl Held {
    pub(super) fn new(ep: Arc<Endpoint>) -> Self {
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
    pub(super) fn new(per_endpoint: usize) -> Self {
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
    pub(super) fn observe(&self, outcome: &Outcome) {
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

/// After the claim loop: lets in-flight attempts finish within `grace`,
/// then aborts the rest and hands their rows to the recorder to release.
pub(super) async fn wind_down(shared: Shared, grace: Duration) {
    shared.tasks.close();
    if tokio::time::timeout(grace, shared.tasks.wait())
        .await
        .is_ok()
    {
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
    if ids.is_empty() {
        return;
    }
    tracing::warn!(
        count = ids.len(),
        "shutdown grace over; releasing unfinished rows"
    );
    shared.hand_over(Record::Release(ids)).await;
}

/// What the delivery tasks share with the claimer.
#[derive(Clone)]
pub(super) struct Shared {
    pub(super) cfg: Arc<Config>,
    pub(super) deliverer: Deliverer,
    pub(super) metrics: Arc<Metrics>,
    /// To the recorder (bounded: [`super::recorder::backlog`]).
    pub(super) tx: mpsc::Sender<Record>,
    /// Every delivery task until it has finished (queued, sending or
    /// parked), for the release at shutdown.
    pub(super) inflight: Arc<Mutex<HashMap<i64, AbortHandle>>>,
    /// The delivery tasks, to wait for at shutdown.
    pub(super) tasks: TaskTracker,
    /// The worker's slots: one per attempt being sent.
    pub(super) global: Arc<Semaphore>,
    /// The slow pool (see [`deliver_or_park`]).
    pub(super) slow: Arc<Semaphore>,
    /// Results handed to the recorder and not yet in the database (their
    /// rows still count as in flight there).
    pub(super) unrecorded: Arc<AtomicUsize>,
    /// Portable flavour: the sealing keys and the opened secrets.
    pub(super) sealed: Option<Arc<crate::sealed::Sealed>>,
}

impl Shared {
    /// No delivery task is left and every result is recorded.
    pub(super) fn idle(&self) -> bool {
        self.unrecorded.load(Relaxed) == 0 && self.tasks.is_empty()
    }

    /// Starts the delivery task of one claimed row.
    pub(super) fn spawn(&self, job: Job, permit: OwnedSemaphorePermit, held: Held) {
        let id = job.outbox_id;
        let mut table = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        let handle = self
            .tasks
            .spawn(deliver_one(self.clone(), job, permit, held, Instant::now()));
        table.insert(id, handle.abort_handle());
    }

    /// A task is done: forget it, then hand its result to the recorder.
    async fn finish(&self, id: i64, record: Record) {
        self.inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        self.hand_over(record).await;
    }

    /// Gives the recorder one record, counted in `unrecorded` until it is
    /// recorded (the recorder subtracts what it took); waits while the
    /// backlog is full.
    pub(super) async fn hand_over(&self, record: Record) {
        self.unrecorded.fetch_add(1, Relaxed);
        if self.tx.send(record).await.is_err() {
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
                return s.finish(id, Record::Release(vec![id])).await;
            };
            if ep.failing.load(Relaxed) >= FAILING_RELEASE {
                return s.finish(id, Record::Release(vec![id])).await;
            }
            (g, e)
        }
    };
    // Queued (behind its endpoint or its rate slot) for so long that the
    // attempt could outlive the lease: give the row back rather than race
    // the worker that would take it over.
    let start = claimed_at.elapsed().max(job.send_after);
    if start + s.cfg.timeout >= s.cfg.lease {
        return s.finish(id, Record::Release(vec![id])).await;
    }
    if !job.send_after.is_zero() {
        tokio::time::sleep_until((claimed_at + job.send_after).into()).await;
    }
    let mut job = job;
    if let Err(e) = sign_now(&s, &mut job).await {
        // Nothing sent: a failed attempt, retried on the endpoint's schedule.
        tracing::warn!(outbox_id = id, event = %job.event_id, endpoint = %job.endpoint_id,
            error = %e, "cannot sign the attempt; not sent");
        let now = std::time::SystemTime::now();
        let outcome = crate::deliver::no_answer(e.to_string(), crate::deliver::FailureClass::Other);
        let logged = Logged {
            attempt: job.attempt,
            started: now,
            finished: now,
            resigned: job.resigned,
            response_type: None,
            response_body: None,
            span: None,
        };
        drop(permit);
        return s
            .finish(id, Record::Done(id, outcome, Box::new(logged)))
            .await;
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
        span: attempt.span,
    };
    s.finish(id, Record::Done(id, attempt.outcome, Box::new(logged)))
        .await;
}

/// Portable flavour: signs `job` with its sealed secrets, just before it is
/// sent (its own timestamp). Nothing to do when the database signed; an
/// error when it could not.
async fn sign_now(s: &Shared, job: &mut Job) -> Result<(), crate::sealed::SignFailure> {
    if job.unsigned {
        return Err(crate::sealed::SignFailure::Database);
    }
    if job.sealed.is_none() {
        return Ok(());
    }
    match &s.sealed {
        Some(sealed) => sealed.sign(job).await,
        None => Err(crate::sealed::SignFailure::NoKeys),
    }
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

#[cfg(test)]
mod tests {
    use super::super::recorder::tests::{delivered, test_config, FakeDb};
    use super::super::recorder::{backlog, Recorder};
    use super::*;

    fn shared(backlog_size: usize) -> (Shared, mpsc::Receiver<Record>) {
        let cfg = test_config();
        let (tx, rx) = backlog(backlog_size);
        let s = Shared {
            deliverer: Deliverer::new(&cfg).unwrap(),
            metrics: Arc::new(Metrics::default()),
            tx,
            inflight: Arc::default(),
            tasks: TaskTracker::new(),
            global: Arc::new(Semaphore::new(cfg.concurrency)),
            slow: Arc::new(Semaphore::new(cfg.max_slow)),
            unrecorded: Arc::new(AtomicUsize::new(0)),
            sealed: None,
            cfg,
        };
        (s, rx)
    }

    /// The backlog to the recorder is bounded: with it full, a result waits
    /// (counted as unrecorded, so a drain does not end) until the recorder
    /// takes one.
    #[tokio::test]
    async fn a_full_backlog_makes_the_next_result_wait() {
        let (s, mut rx) = shared(2);
        s.hand_over(delivered(1)).await;
        s.hand_over(delivered(2)).await;
        let third = tokio::spawn({
            let s = s.clone();
            async move { s.hand_over(delivered(3)).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            !third.is_finished(),
            "the third result waits while the backlog is full"
        );
        assert_eq!(s.unrecorded.load(Relaxed), 3);
        assert!(!s.idle());
        assert!(matches!(rx.recv().await, Some(Record::Done(1, ..))));
        tokio::time::timeout(Duration::from_secs(2), third)
            .await
            .expect("taken once there is room")
            .unwrap();
        assert!(matches!(rx.recv().await, Some(Record::Done(2, ..))));
        assert!(matches!(rx.recv().await, Some(Record::Done(3, ..))));
    }

    /// At shutdown, rows whose attempts outlive the grace are aborted and
    /// given back in one release, counted like any other result: after the
    /// recorder, nothing is left unrecorded (0.3.0 sent the release
    /// uncounted, and the recorder's subtraction wrapped the counter to
    /// usize::MAX).
    #[tokio::test]
    async fn unfinished_rows_are_released_at_shutdown_and_accounted_for() {
        let (s, rx) = shared(16);
        for id in [41, 42] {
            let mut table = s.inflight.lock().unwrap();
            let h = s.tasks.spawn(std::future::pending::<()>());
            table.insert(id, h.abort_handle());
        }
        s.hand_over(delivered(40)).await;
        let db = FakeDb::default();
        let recorder = tokio::spawn(
            Recorder {
                cfg: s.cfg.clone(),
                metrics: s.metrics.clone(),
                connect: db.clone(),
                rx,
                recorded: Arc::new(tokio::sync::Notify::new()),
                unrecorded: s.unrecorded.clone(),
            }
            .run(),
        );
        let started = Instant::now();
        let unrecorded = s.unrecorded.clone();
        wind_down(s, Duration::from_millis(200)).await;
        assert!(
            started.elapsed() >= Duration::from_millis(200),
            "the grace is waited out"
        );
        recorder.await.unwrap();
        db.with(|f| {
            let mut released: Vec<i64> = f.releases.concat();
            released.sort();
            assert_eq!(released, vec![41, 42]);
            assert_eq!(f.acks.concat(), vec![40]);
        });
        assert_eq!(unrecorded.load(Relaxed), 0);
    }

    /// A row whose rate slot (or queue) comes so late that its attempt
    /// could outlive the lease is given back unsent rather than raced with
    /// the worker that would take it over.
    #[tokio::test]
    async fn a_row_that_would_outlive_its_lease_is_released_unsent() {
        let (s, mut rx) = shared(4);
        let job = Job {
            outbox_id: 7,
            event_id: "evt_1".into(),
            endpoint_id: "ep_1".into(),
            // Never reached: the row must not be sent.
            url: "http://127.0.0.1:9/never".into(),
            body: "{}".into(),
            headers: vec![("x-webhook-signature".into(), "v1,x".into())],
            attempt: 1,
            send_after: s.cfg.lease - s.cfg.timeout,
            resigned: false,
            scheme: None,
            sealed: None,
            unsigned: false,
            traceparent: None,
            tracestate: None,
            trace: Default::default(),
        };
        let permit = s.global.clone().acquire_owned().await.unwrap();
        let ep = Arc::new(Endpoint::new(s.cfg.per_endpoint));
        s.spawn(job, permit, Held::new(ep.clone()));
        let got = tokio::time::timeout(Duration::from_secs(2), rx.recv())
            .await
            .expect("released at once, not after the wait");
        assert!(matches!(got, Some(Record::Release(ids)) if ids == vec![7]));
        s.tasks.close();
        s.tasks.wait().await;
        assert_eq!(ep.held.load(Relaxed), 0, "the row no longer counts as held");
        assert_eq!(s.global.available_permits(), s.cfg.concurrency);
    }

    /// With nothing in flight, shutdown does not wait for the grace.
    #[tokio::test]
    async fn an_idle_worker_winds_down_at_once() {
        let (s, _rx) = shared(4);
        let started = Instant::now();
        wind_down(s, Duration::from_secs(5)).await;
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
