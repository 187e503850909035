//! The recorder: results of finished attempts into the database, in
//! batches, on a connection of its own.
//!
//! Delivery tasks hand their results over a bounded channel ([`backlog`]).
//! The recorder takes what the channel holds (up to [`MAX_BATCH`]), records
//! the deliveries with one `ack_many`, each failure with one `fail`
//! (pipelined), and the rows given back with one `release`; then it wakes
//! the claimer (rows left the in-flight count). What the database does not
//! take is kept and tried again on a new connection after a backoff; what
//! it refuses for good (a statement error, not an interruption) is logged
//! and dropped: those rows are delivered again after their lease.
//!
//! The database calls are behind [`ResultStore`] and [`Connect`], so the
//! batching, release, lease and accounting rules are unit-tested without a
//! PostgreSQL (the tests below); [`Db`] is the real store.

use std::future::Future;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, Notify};

use super::backoff::Backoff;
use crate::db::{Db, Delivery, Failure, Logged};
use crate::deliver::{FailureClass, Outcome};
use crate::metrics::Metrics;
use crate::pg::{is_transient, ConnectError, Described};
use crate::Config;

/// What a delivery task hands the recorder.
pub(super) enum Record {
    /// An attempt finished: delivered, gone, or to be retried.
    Done(i64, Outcome, Box<Logged>),
    /// Rows given back unsent.
    Release(Vec<i64>),
}

/// Most results recorded in one round.
const MAX_BATCH: usize = 1000;

/// The channel between the delivery tasks and the recorder, holding at
/// most `capacity` results. When it is full a finished delivery task waits
/// to hand its result over (holding no slot of the worker: its permit is
/// given back first, but its row still counts as held, so the claimer
/// takes no more than its claim-ahead of that endpoint): the backlog of a
/// recorder that cannot reach the database stays bounded instead of
/// growing with every claim.
pub(super) fn backlog(capacity: usize) -> (mpsc::Sender<Record>, mpsc::Receiver<Record>) {
    mpsc::channel(capacity.max(1))
}

/// The statements that record results. `Db` is the real one.
pub(super) trait ResultStore: Send + Sync {
    /// A failed statement.
    type Error: Send;
    /// An interruption (worth the same statement again on a new
    /// connection), not a refusal.
    fn is_transient(e: &Self::Error) -> bool;
    /// The error for a log line.
    fn describe(e: &Self::Error) -> String;
    /// The connection is gone.
    fn is_closed(&self) -> bool;
    /// Records deliveries; returns the ids recorded (the others had lost
    /// their lease).
    fn ack_many(
        &self,
        worker: &str,
        done: &[Delivery],
    ) -> impl Future<Output = Result<Vec<i64>, Self::Error>> + Send;
    /// Records a failure; returns the row's new status, `None` when the
    /// lease was lost.
    fn fail(
        &self,
        worker: &str,
        f: &Failure,
    ) -> impl Future<Output = Result<Option<String>, Self::Error>> + Send;
    /// Gives rows back; returns how many were.
    fn release(
        &self,
        worker: &str,
        ids: &[i64],
    ) -> impl Future<Output = Result<i32, Self::Error>> + Send;
}

/// Makes the recorder's connections.
pub(super) trait Connect: Send + Sync {
    /// What a connection gives.
    type Store: ResultStore;
    /// A new connection.
    fn connect(&self) -> impl Future<Output = Result<Self::Store, ConnectError>> + Send;
}

impl ResultStore for Db {
    type Error = tokio_postgres::Error;
    fn is_transient(e: &Self::Error) -> bool {
        is_transient(e)
    }
    fn describe(e: &Self::Error) -> String {
        Described(e).to_string()
    }
    fn is_closed(&self) -> bool {
        Db::is_closed(self)
    }
    fn ack_many(
        &self,
        worker: &str,
        done: &[Delivery],
    ) -> impl Future<Output = Result<Vec<i64>, Self::Error>> + Send {
        Db::ack_many(self, worker, done)
    }
    fn fail(
        &self,
        worker: &str,
        f: &Failure,
    ) -> impl Future<Output = Result<Option<String>, Self::Error>> + Send {
        Db::fail(self, worker, f)
    }
    fn release(
        &self,
        worker: &str,
        ids: &[i64],
    ) -> impl Future<Output = Result<i32, Self::Error>> + Send {
        Db::release(self, worker, ids)
    }
}

/// The configured database (`database_url`, within `db_timeout`).
pub(super) struct Database(pub(super) Arc<Config>);

impl Connect for Database {
    type Store = Db;
    fn connect(&self) -> impl Future<Output = Result<Db, ConnectError>> + Send {
        Db::connect_within(&self.0, None)
    }
}

/// Results taken from the channel and not yet in the database.
#[derive(Default)]
struct Batches {
    acks: Vec<Delivery>,
    fails: Vec<Failure>,
    release: Vec<i64>,
    /// Records taken and not yet flushed (each counted once in
    /// `unrecorded` by the side that handed it over).
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
                metrics.gone.inc_by(1);
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
    fn fill(&mut self, rx: &mut mpsc::Receiver<Record>, metrics: &Metrics) -> bool {
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

/// The recorder task's state.
pub(super) struct Recorder<C: Connect> {
    pub(super) cfg: Arc<Config>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) connect: C,
    pub(super) rx: mpsc::Receiver<Record>,
    /// Signalled after each recorded batch (the claimer waits on it).
    pub(super) recorded: Arc<Notify>,
    /// Results handed over and not yet recorded (their rows still count
    /// as in flight in the database).
    pub(super) unrecorded: Arc<AtomicUsize>,
}

impl<C: Connect> Recorder<C> {
    /// Records until the channel closes and everything it received is
    /// recorded (or, with the database gone, until the shutdown grace runs
    /// out; those rows are re-delivered after their lease). A connection
    /// the database refuses for good (the role lost its rights:
    /// [`ConnectError::is_permanent`]) drops the results it holds instead
    /// of retrying them; their rows are delivered again after their lease.
    pub(super) async fn run(mut self) {
        let mut b = Batches::default();
        let mut store: Option<C::Store> = None;
        let mut backoff = Backoff::new();
        let mut closed_at: Option<Instant> = None;
        loop {
            if b.is_empty() {
                if closed_at.is_some() {
                    return;
                }
                match self.rx.recv().await {
                    Some(r) => b.take(r, &self.metrics),
                    None => return,
                }
            }
            if !b.fill(&mut self.rx, &self.metrics) {
                closed_at.get_or_insert_with(Instant::now);
            }
            if closed_at.is_some_and(|t| t.elapsed() > self.cfg.shutdown_grace) {
                tracing::error!(acks = b.acks.len(), fails = b.fails.len(), release = b.release.len(),
                    "database unreachable at shutdown; these rows will be re-delivered after their lease");
                return;
            }
            let Some(conn) = self.connection(store.take(), &mut b, &mut backoff).await else {
                continue;
            };
            let flushed = tokio::time::timeout(
                self.cfg.db_timeout,
                flush(&self.cfg.worker_id, &self.metrics, &conn, &mut b),
            )
            .await;
            if self.after_flush(flushed, &mut backoff).await {
                store = Some(conn);
                b.done(&self.unrecorded, &self.recorded);
            }
        }
    }

    /// The open connection, or a new one. `None` when there is none to use
    /// now: after a transient failure (having waited out the backoff), or
    /// a permanent refusal (the results it holds are dropped; their rows
    /// are delivered again after their lease).
    async fn connection(
        &self,
        open: Option<C::Store>,
        b: &mut Batches,
        backoff: &mut Backoff,
    ) -> Option<C::Store> {
        if let Some(d) = open.filter(|d| !d.is_closed()) {
            return Some(d);
        }
        match self.connect.connect().await {
            Ok(d) => Some(d),
            Err(e) => {
                self.metrics.db_errors.inc_by(1);
                if e.is_permanent() {
                    tracing::error!(error = %e, acks = b.acks.len(), fails = b.fails.len(),
                        release = b.release.len(),
                        "the database refuses the recorder; dropping these results (the rows are delivered again after their lease)");
                    b.done(&self.unrecorded, &self.recorded);
                    return None;
                }
                tracing::warn!(error = %e, pending = b.acks.len() + b.fails.len(),
                    retry_in_ms = backoff.current().as_millis() as u64,
                    "recorder cannot connect; keeping results");
                backoff.wait().await;
                None
            }
        }
    }

    /// What a flush's outcome means: true when everything was recorded
    /// (the connection is kept and the backoff reset); otherwise the error
    /// is counted and logged, and the recorder waits out the backoff.
    async fn after_flush(
        &self,
        flushed: Result<Result<(), <C::Store as ResultStore>::Error>, tokio::time::error::Elapsed>,
        backoff: &mut Backoff,
    ) -> bool {
        match flushed {
            Ok(Ok(())) => {
                backoff.reset();
                return true;
            }
            // Cancelled between statements: what was recorded left the
            // batches, the rest is kept for the next connection.
            Err(_) => tracing::warn!(
                timeout_ms = self.cfg.db_timeout.as_millis() as u64,
                retry_in_ms = backoff.current().as_millis() as u64,
                "recording results got no answer; reconnecting"
            ),
            Ok(Err(e)) => tracing::warn!(error = %<C::Store as ResultStore>::describe(&e),
                retry_in_ms = backoff.current().as_millis() as u64,
                "recording results failed; reconnecting"),
        }
        self.metrics.db_errors.inc_by(1);
        backoff.wait().await;
        false
    }
}

/// A statement's error: an interruption is handed back (the batch is kept
/// and tried again on a new connection); a refusal is counted, logged by
/// `log` with the error's description, and the batch given up (retrying it
/// would stall the recorder; its rows are delivered again after their
/// lease).
fn refused<S: ResultStore>(
    metrics: &Metrics,
    e: S::Error,
    log: impl FnOnce(&str),
) -> Result<(), S::Error> {
    if S::is_transient(&e) {
        return Err(e);
    }
    metrics.db_errors.inc_by(1);
    log(&S::describe(&e));
    Ok(())
}

/// Records the batches: the deliveries, then the failures, then the rows
/// given back. What was recorded leaves its batch; on an interruption the
/// rest stays for the next try.
async fn flush<S: ResultStore>(
    worker: &str,
    metrics: &Metrics,
    db: &S,
    b: &mut Batches,
) -> Result<(), S::Error> {
    flush_acks(worker, metrics, db, &mut b.acks).await?;
    flush_fails(worker, metrics, db, &mut b.fails).await?;
    flush_release(worker, metrics, db, &mut b.release).await
}

/// One `ack_many` for every delivery. Ids missing from its answer had lost
/// their lease (counted). A refusal (not an interruption) drops the batch,
/// logged: retrying the same batch would stall the recorder, and the rows
/// are delivered again after their lease.
async fn flush_acks<S: ResultStore>(
    worker: &str,
    metrics: &Metrics,
    db: &S,
    acks: &mut Vec<Delivery>,
) -> Result<(), S::Error> {
    if acks.is_empty() {
        return Ok(());
    }
    let started = std::time::SystemTime::now();
    match db.ack_many(worker, acks).await {
        Ok(recorded) => {
            let ended = std::time::SystemTime::now();
            for span in acks.iter().filter_map(|a| a.log.span.as_ref()) {
                crate::trace::recorded(span, "hookseal.ack", started, ended);
            }
            metrics.delivered.inc_by(recorded.len() as u64);
            let lost = acks.len().saturating_sub(recorded.len());
            if lost > 0 {
                metrics.lease_lost.inc_by(lost as u64);
                tracing::warn!(
                    count = lost,
                    "delivered rows whose lease had passed to another worker"
                );
            }
        }
        Err(e) => {
            refused::<S>(metrics, e, |error| {
                tracing::error!(count = acks.len(), error,
                "ack_many() refused these results; the rows are delivered again after their lease")
            })?
        }
    }
    acks.clear();
    Ok(())
}

/// One `fail` per failure, pipelined on the one connection; the ones
/// interrupted are kept. A refused statement (a bug, or a schema this build
/// does not speak) drops its result, loudly: the row is delivered again
/// after its lease.
async fn flush_fails<S: ResultStore>(
    worker: &str,
    metrics: &Metrics,
    db: &S,
    fails: &mut Vec<Failure>,
) -> Result<(), S::Error> {
    if fails.is_empty() {
        return Ok(());
    }
    let started = std::time::SystemTime::now();
    let results = futures_util::future::join_all(fails.iter().map(|f| db.fail(worker, f))).await;
    let ended = std::time::SystemTime::now();
    let mut first_err = None;
    let mut keep = Vec::new();
    for (f, r) in fails.drain(..).zip(results) {
        if let (Some(span), Ok(_)) = (&f.log.span, &r) {
            crate::trace::recorded(span, "hookseal.fail", started, ended);
        }
        match r {
            Ok(Some(s)) if s == "dead" => {
                metrics.dead.inc_by(1);
                tracing::warn!(outbox_id = f.outbox_id, "dead-lettered");
            }
            Ok(Some(_)) => {
                metrics.retried.inc_by(1);
            }
            Ok(None) => {
                metrics.lease_lost.inc_by(1);
            }
            Err(e) if !S::is_transient(&e) => {
                metrics.db_errors.inc_by(1);
                tracing::error!(outbox_id = f.outbox_id, error = %S::describe(&e),
                    "fail() refused this result; the row is retried after its lease");
            }
            Err(e) => {
                keep.push(f);
                first_err.get_or_insert(e);
            }
        }
    }
    *fails = keep;
    first_err.map_or(Ok(()), Err)
}

/// Gives the rows in `release` back; a refusal (not an interruption) is
/// logged and the rows dropped: they are due again after their lease, and
/// retrying would stall the recorder.
async fn flush_release<S: ResultStore>(
    worker: &str,
    metrics: &Metrics,
    db: &S,
    release: &mut Vec<i64>,
) -> Result<(), S::Error> {
    if release.is_empty() {
        return Ok(());
    }
    match db.release(worker, release).await {
        Ok(n) => {
            metrics.released.inc_by(u64::try_from(n).unwrap_or(0));
        }
        Err(e) => refused::<S>(metrics, e, |error| {
            tracing::error!(
                count = release.len(),
                error,
                "release() refused these rows; they are due again after their lease"
            )
        })?,
    }
    release.clear();
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::deliver::FailureClass;

    /// A failed statement of the fake store.
    #[derive(Debug)]
    pub(crate) enum FakeError {
        /// An interruption: the recorder keeps the batch and reconnects.
        Transient,
        /// A refusal: the recorder drops the batch.
        Refused,
    }

    /// What the fake database was asked, and what it answers.
    #[derive(Default)]
    pub(crate) struct Fake {
        pub(crate) connects: usize,
        pub(crate) acks: Vec<Vec<i64>>,
        pub(crate) fails: Vec<i64>,
        pub(crate) releases: Vec<Vec<i64>>,
        /// Errors the next connects give, in order.
        pub(crate) connect_errors: VecDeque<ConnectError>,
        /// Errors the next `ack_many` calls give, in order.
        pub(crate) ack_errors: VecDeque<FakeError>,
        /// `ack_many` records only this many of a batch (the rest lost
        /// their lease).
        pub(crate) ack_keeps: Option<usize>,
        /// `fail` answers: `None` when the lease was lost.
        pub(crate) fail_answer: Option<Option<String>>,
    }

    #[derive(Clone, Default)]
    pub(crate) struct FakeDb(pub(crate) Arc<Mutex<Fake>>);

    impl FakeDb {
        pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Fake) -> R) -> R {
            f(&mut self.0.lock().unwrap())
        }
    }

    impl ResultStore for FakeDb {
        type Error = FakeError;
        fn is_transient(e: &FakeError) -> bool {
            matches!(e, FakeError::Transient)
        }
        fn describe(e: &FakeError) -> String {
            format!("{e:?}")
        }
        fn is_closed(&self) -> bool {
            false
        }
        fn ack_many(
            &self,
            _worker: &str,
            done: &[Delivery],
        ) -> impl Future<Output = Result<Vec<i64>, FakeError>> + Send {
            let ids: Vec<i64> = done.iter().map(|d| d.outbox_id).collect();
            let answer = self.with(|f| match f.ack_errors.pop_front() {
                Some(e) => Err(e),
                None => {
                    f.acks.push(ids.clone());
                    let keep = f.ack_keeps.unwrap_or(ids.len()).min(ids.len());
                    Ok(ids[..keep].to_vec())
                }
            });
            async move { answer }
        }
        fn fail(
            &self,
            _worker: &str,
            failure: &Failure,
        ) -> impl Future<Output = Result<Option<String>, FakeError>> + Send {
            let answer = self.with(|f| {
                f.fails.push(failure.outbox_id);
                f.fail_answer.clone().unwrap_or(Some("pending".into()))
            });
            async move { Ok(answer) }
        }
        fn release(
            &self,
            _worker: &str,
            ids: &[i64],
        ) -> impl Future<Output = Result<i32, FakeError>> + Send {
            let n = ids.len() as i32;
            self.with(|f| f.releases.push(ids.to_vec()));
            async move { Ok(n) }
        }
    }

    impl Connect for FakeDb {
        type Store = FakeDb;
        fn connect(&self) -> impl Future<Output = Result<FakeDb, ConnectError>> + Send {
            let answer = self.with(|f| {
                f.connects += 1;
                f.connect_errors.pop_front()
            });
            let db = self.clone();
            async move { answer.map_or(Ok(db), Err) }
        }
    }

    pub(crate) fn logged() -> Box<Logged> {
        Box::new(Logged {
            attempt: 1,
            started: SystemTime::now(),
            finished: SystemTime::now(),
            resigned: false,
            response_type: None,
            response_body: None,
            span: None,
        })
    }

    pub(crate) fn delivered(id: i64) -> Record {
        Record::Done(id, Outcome::Delivered { status: 200 }, logged())
    }

    fn retried(id: i64) -> Record {
        Record::Done(
            id,
            Outcome::Retry {
                status: Some(500),
                error: "HTTP 500".into(),
                retry_after: None,
                class: FailureClass::Http,
            },
            logged(),
        )
    }

    pub(crate) fn test_config() -> Arc<Config> {
        let mut c = Config::new("postgres://nobody@127.0.0.1:9/none");
        c.shutdown_grace = Duration::from_millis(500);
        c.db_timeout = Duration::from_secs(2);
        Arc::new(c)
    }

    /// Hands `records` over as the senders do (counted in `unrecorded`),
    /// closes the channel and runs the recorder to its end.
    async fn record_all(db: &FakeDb, records: Vec<Record>) -> (Arc<Metrics>, usize) {
        let (tx, rx) = backlog(64);
        let unrecorded = Arc::new(AtomicUsize::new(0));
        for r in records {
            unrecorded.fetch_add(1, Relaxed);
            tx.send(r).await.unwrap();
        }
        drop(tx);
        let metrics = Arc::new(Metrics::default());
        Recorder {
            cfg: test_config(),
            metrics: metrics.clone(),
            connect: db.clone(),
            rx,
            recorded: Arc::new(Notify::new()),
            unrecorded: unrecorded.clone(),
        }
        .run()
        .await;
        let left = unrecorded.load(Relaxed);
        (metrics, left)
    }

    #[tokio::test]
    async fn one_ack_many_per_batch_one_fail_per_failure_and_the_releases() {
        let db = FakeDb::default();
        let mut records: Vec<Record> = (1..=5).map(delivered).collect();
        records.extend([retried(6), retried(7), Record::Release(vec![8, 9])]);
        let (m, left) = record_all(&db, records).await;
        db.with(|f| {
            assert_eq!(
                f.acks,
                vec![vec![1, 2, 3, 4, 5]],
                "one statement for the batch"
            );
            assert_eq!(f.fails, vec![6, 7]);
            assert_eq!(f.releases, vec![vec![8, 9]]);
            assert_eq!(f.connects, 1);
        });
        assert_eq!(m.delivered.get(), 5);
        assert_eq!(m.retried.get(), 2);
        assert_eq!(m.released.get(), 2);
        assert_eq!(left, 0, "every record handed over was accounted for");
    }

    #[tokio::test]
    async fn results_of_rows_whose_lease_passed_on_are_counted_as_lost() {
        let db = FakeDb::default();
        db.with(|f| {
            f.ack_keeps = Some(3);
            f.fail_answer = Some(None);
        });
        let mut records: Vec<Record> = (1..=5).map(delivered).collect();
        records.push(retried(6));
        let (m, left) = record_all(&db, records).await;
        assert_eq!(m.delivered.get(), 3);
        assert_eq!(m.lease_lost.get(), 2 + 1);
        assert_eq!(m.retried.get(), 0);
        assert_eq!(left, 0);
    }

    #[tokio::test]
    async fn an_interrupted_batch_is_kept_and_recorded_once_after_a_reconnect() {
        let db = FakeDb::default();
        db.with(|f| {
            f.ack_errors.push_back(FakeError::Transient);
            f.connect_errors
                .push_back(ConnectError::Timeout(Duration::from_millis(5)));
        });
        let started = Instant::now();
        let (m, left) = record_all(&db, (1..=4).map(delivered).collect()).await;
        db.with(|f| {
            assert_eq!(f.acks, vec![vec![1, 2, 3, 4]], "recorded once, whole");
            assert_eq!(f.connects, 2 + 1, "the failed connect, then one per try");
        });
        assert_eq!(m.delivered.get(), 4);
        assert_eq!(m.db_errors.get(), 2);
        // The interruption, then the failed connect: 100 ms, then 200 ms.
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(left, 0);
    }

    #[tokio::test]
    async fn a_refused_batch_is_dropped_not_retried() {
        let db = FakeDb::default();
        db.with(|f| f.ack_errors.push_back(FakeError::Refused));
        let (m, left) = record_all(&db, (1..=3).map(delivered).collect()).await;
        db.with(|f| assert!(f.acks.is_empty()));
        assert_eq!(m.delivered.get(), 0);
        assert_eq!(m.db_errors.get(), 1);
        assert_eq!(left, 0);
    }

    #[tokio::test]
    async fn a_database_that_refuses_the_recorder_for_good_drops_its_results() {
        let db = FakeDb::default();
        db.with(|f| {
            f.connect_errors.push_back(ConnectError::RootCert {
                path: "/nonexistent.pem".into(),
                reason: "no such file".into(),
            })
        });
        let (m, left) = record_all(&db, vec![delivered(1), retried(2)]).await;
        db.with(|f| {
            assert!(f.acks.is_empty() && f.fails.is_empty());
            assert_eq!(f.connects, 1, "a permanent refusal is not retried");
        });
        assert_eq!(m.db_errors.get(), 1);
        assert_eq!(left, 0);
    }

    #[tokio::test]
    async fn with_the_database_gone_at_shutdown_the_recorder_gives_up_after_the_grace() {
        let db = FakeDb::default();
        db.with(|f| {
            for _ in 0..100 {
                f.connect_errors
                    .push_back(ConnectError::Timeout(Duration::from_millis(1)));
            }
        });
        let started = Instant::now();
        let (_, left) = record_all(&db, vec![delivered(1)]).await;
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(500), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
        db.with(|f| assert!(f.acks.is_empty()));
        assert_eq!(
            left, 1,
            "not recorded: the row is delivered again after its lease"
        );
    }
}
