//! The claimer: one connection that also `LISTEN`s; it claims as many rows
//! as the worker has free slots and starts a delivery task for each
//! ([`super::sender`]), then waits for a notification, recorded results or
//! the poll interval.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{Notify, OwnedSemaphorePermit};
use tokio_postgres::error::SqlState;

use super::backoff::Backoff;
use super::sender::{Endpoint, Held, Shared};
use super::{End, Mode};
use crate::db::Db;
use crate::deliver::Job;
use crate::pg::{is_permanent, Described};

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
pub(super) const CLAIM_AHEAD: usize = 8;

/// The claim loop's state: its connection (which also `LISTEN`s), its
/// backoff, and this worker's view of the endpoints.
pub(super) struct Claimer {
    shared: Shared,
    wake: Arc<Notify>,
    recorded: Arc<Notify>,
    endpoints: Mutex<HashMap<String, Arc<Endpoint>>>,
    db: Option<Db>,
    backoff: Backoff,
}

impl Claimer {
    pub(super) fn new(shared: Shared, recorded: Arc<Notify>) -> Self {
        Claimer {
            shared,
            wake: Arc::new(Notify::new()),
            recorded,
            endpoints: Mutex::new(HashMap::new()),
            db: None,
            backoff: Backoff::new(),
        }
    }

    /// Claims and hands rows to delivery tasks until shutdown, the end of
    /// a drain, or a permanent refusal. `shutdown` is not polled again
    /// once it has completed.
    pub(super) async fn run<S: Future<Output = ()>>(
        &mut self,
        mode: Mode,
        shutdown: &mut Pin<&mut S>,
    ) -> End {
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
                self.shared.metrics.db_errors.inc_by(1);
                tracing::error!(error = %e, "the database refuses this worker for good; stopping");
                Err(End::Fatal(format!("cannot connect: {e}")))
            }
            Err(e) => {
                self.shared.metrics.db_errors.inc_by(1);
                tracing::warn!(error = %e, retry_in_ms = self.backoff.current().as_millis() as u64,
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
        let skip = self.saturated();
        // Not cancelled by shutdown: a claim the database ran must reach
        // the delivery tasks (or the release at shutdown), not wait out
        // its lease.
        let started = std::time::SystemTime::now();
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
            Ok(Ok(mut jobs)) => {
                let ended = std::time::SystemTime::now();
                for job in jobs.iter_mut().filter(|j| j.traceparent.is_some()) {
                    job.trace = crate::trace::claimed(job, &cfg.worker_id, started, ended);
                }
                self.db = Some(conn);
                self.backoff.reset();
                Ok(Some((jobs, permits)))
            }
            // A stalled connection: drop it (the rows a lost answer
            // leased are delivered again after their lease).
            Err(_) => {
                self.shared.metrics.db_errors.inc_by(1);
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
        self.shared.metrics.db_errors.inc_by(1);
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
        tracing::warn!(error = %Described(e), retry_in_ms = self.backoff.current().as_millis() as u64,
            "claim failed; reconnecting");
        self.pause(shutdown).await
    }

    /// Waits out the backoff (or until shutdown), then doubles it.
    async fn pause<S: Future<Output = ()>>(
        &mut self,
        shutdown: &mut Pin<&mut S>,
    ) -> Result<(), End> {
        let wait = self.backoff.step();
        tokio::select! {
            _ = tokio::time::sleep(wait) => Ok(()),
            _ = shutdown.as_mut() => Err(End::Signal),
        }
    }

    /// One delivery task per claimed row, each with one of `permits`.
    fn spawn(&self, jobs: Vec<Job>, mut permits: OwnedSemaphorePermit) {
        self.shared.metrics.claimed.inc_by(jobs.len() as u64);
        for job in jobs {
            let Some(permit) = permits.split(1) else {
                break; // claim never returns more than asked
            };
            let ep = self.endpoint(&job.endpoint_id);
            self.shared.spawn(job, permit, Held::new(ep));
        }
    }

    /// The endpoints this worker holds at least half its claim-ahead of:
    /// the claim leaves them out (see [`CLAIM_AHEAD`]).
    fn saturated(&self) -> Vec<String> {
        let enough = self.shared.cfg.per_endpoint * CLAIM_AHEAD / 2;
        let map = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .filter(|(_, e)| e.held.load(Relaxed) >= enough)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// This worker's view of `endpoint` (made at its first row).
    fn endpoint(&self, endpoint: &str) -> Arc<Endpoint> {
        let mut map = self.endpoints.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 10_000 {
            // Forget idle endpoints (no task holds their semaphore).
            map.retain(|_, s| Arc::strong_count(s) > 1);
        }
        map.entry(endpoint.to_owned())
            .or_insert_with(|| Arc::new(Endpoint::new(self.shared.cfg.per_endpoint)))
            .clone()
    }
}
