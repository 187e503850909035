//! The extension's dispatcher API (`hookseal.claim`, `ack_many`, `fail`,
//! `release`) over one tokio-postgres connection, plus `LISTEN`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use std::path::Path;
use tokio::sync::Notify;
use tokio_postgres::{Client, Statement};

use crate::pg::ConnectError;

use crate::deliver::Job;

/// The channel the fan-out trigger notifies.
pub const CHANNEL: &str = "hookseal_outbox";

/// The functions [`Db`] calls, as signatures inside the `hookseal` schema
/// (those of the GRANT to `hookseal_dispatcher`): the start check
/// ([`crate::Dispatcher::check_database`]) makes sure the role may execute
/// them.
pub const FUNCTIONS: [&str; 4] = [
    "claim(text, integer, interval, integer, text[])",
    "ack_many(text, bigint[], integer[], integer[], timestamptz[], timestamptz[], boolean[], text[], text[])",
    "fail(bigint, text, integer, text, interval, text, integer, timestamptz, timestamptz, boolean, text, text)",
    "release(text, bigint[])",
];

/// What `--maintain-every` calls (`hookseal.maintain()` with its defaults).
pub const MAINTAIN: &str = "maintain(integer, integer)";

/// A connection with the dispatcher's statements prepared.
pub struct Db {
    client: Client,
    claim: Statement,
    ack_many: Statement,
    fail: Statement,
    release: Statement,
}

/// An attempt's entry in the attempt log (`hookseal.attempts`), besides
/// its outcome.
#[derive(Debug, Clone)]
pub struct Logged {
    /// Which attempt of the row it was (1 for the first).
    pub attempt: i32,
    /// When the request was sent.
    pub started: SystemTime,
    /// When its answer was classified.
    pub finished: SystemTime,
    /// Whether the claim signed the headers anew.
    pub resigned: bool,
    /// The answer's content type.
    pub response_type: Option<String>,
    /// The answer's first bytes.
    pub response_body: Option<String>,
    /// The attempt's span, parent of its recording's (not stored).
    pub span: Option<hookseal_otel::SpanContext>,
}

/// A delivery to record.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The row.
    pub outbox_id: i64,
    /// The 2xx status.
    pub status: i32,
    /// Its log entry.
    pub log: Logged,
}

/// A failed attempt to record.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The row.
    pub outbox_id: i64,
    /// The answer's status, if there was one.
    pub status: Option<i32>,
    /// What went wrong.
    pub error: String,
    /// Not before this many seconds.
    pub retry_after_secs: Option<f64>,
    /// The failure's class (`FailureClass::as_str`).
    pub class: &'static str,
    /// Its log entry.
    pub log: Logged,
}

impl Db {
    /// [`Db::connect`] to the configured database within its `db_timeout`
    /// (a stalled network gives [`ConnectError::Timeout`]).
    pub async fn connect_within(
        cfg: &crate::Config,
        wake: Option<Arc<Notify>>,
    ) -> Result<Db, ConnectError> {
        let connect = Db::connect(&cfg.database_url, cfg.root_cert.as_deref(), wake);
        tokio::time::timeout(cfg.db_timeout, connect)
            .await
            .unwrap_or(Err(ConnectError::Timeout(cfg.db_timeout)))
    }

    /// Connects (see [`crate::pg::connect`] for TLS), prepares the
    /// statements and, when `wake` is given, listens on [`CHANNEL`] and
    /// signals `wake` on every notification. [`Db::is_closed`] tells when the
    /// connection has ended.
    pub async fn connect(
        url: &str,
        root_cert: Option<&Path>,
        wake: Option<Arc<Notify>>,
    ) -> Result<Db, ConnectError> {
        let listening = wake.is_some();
        let client = crate::pg::connect(url, root_cert, wake).await?;
        let claim = client
            .prepare(
                "SELECT outbox_id, event_id, endpoint_id, url, body, headers::text, attempt, \
                 send_delay, resigned, scheme, sealed, traceparent, tracestate \
                 FROM hookseal.claim($1, $2, make_interval(secs => $3), $4, $5)",
            )
            .await?;
        let ack_many = client
            .prepare("SELECT hookseal.ack_many($1, $2, $3, $4, $5, $6, $7, $8, $9)")
            .await?;
        let fail = client
            .prepare(
                "SELECT hookseal.fail($1, $2, $3, $4, make_interval(secs => $5), $6, $7, $8, $9, \
                 $10, $11, $12)::text",
            )
            .await?;
        let release = client.prepare("SELECT hookseal.release($1, $2)").await?;
        if listening {
            // The claimer's connection. A claim is a lease: if a crash loses
            // its commit, the rows are due again, as when a lease runs out
            // (at least once either way), so claims need not wait for the
            // WAL flush. Results (ack_many, fail) stay synchronous.
            client
                .batch_execute(&format!("SET synchronous_commit = off; LISTEN {CHANNEL}"))
                .await?;
        }
        Ok(Db {
            client,
            claim,
            ack_many,
            fail,
            release,
        })
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Claims up to `batch` due rows for `lease`, at most `per_endpoint`
    /// in flight to one endpoint from this worker (the database applies the
    /// endpoints' own limits on top), none of the endpoints in `skip`.
    pub async fn claim(
        &self,
        worker: &str,
        batch: i32,
        lease: Duration,
        per_endpoint: i32,
        skip: &[String],
    ) -> Result<Vec<Job>, tokio_postgres::Error> {
        let rows = self
            .client
            .query(
                &self.claim,
                &[&worker, &batch, &lease.as_secs_f64(), &per_endpoint, &skip],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let headers: Option<String> = r.get(5);
                Job {
                    outbox_id: r.get(0),
                    event_id: r.get(1),
                    endpoint_id: r.get(2),
                    url: r.get(3),
                    body: r.get(4),
                    headers: headers.as_deref().map(parse_headers).unwrap_or_default(),
                    attempt: r.get(6),
                    send_after: send_after(r.get(7)),
                    resigned: r.get::<_, Option<bool>>(8).unwrap_or(true),
                    scheme: r.get(9),
                    sealed: r.get(10),
                    unsigned: headers.is_none(),
                    traceparent: r.get(11),
                    tracestate: r.get(12),
                    trace: Default::default(),
                }
            })
            .collect())
    }

    /// Records deliveries with their log entries, in one statement;
    /// returns the ids recorded (the rest had lost their lease).
    pub async fn ack_many(
        &self,
        worker: &str,
        done: &[Delivery],
    ) -> Result<Vec<i64>, tokio_postgres::Error> {
        let ids: Vec<i64> = done.iter().map(|d| d.outbox_id).collect();
        let statuses: Vec<i32> = done.iter().map(|d| d.status).collect();
        let attempts: Vec<i32> = done.iter().map(|d| d.log.attempt).collect();
        let started: Vec<SystemTime> = done.iter().map(|d| d.log.started).collect();
        let finished: Vec<SystemTime> = done.iter().map(|d| d.log.finished).collect();
        let resigned: Vec<bool> = done.iter().map(|d| d.log.resigned).collect();
        let types: Vec<Option<&str>> = done
            .iter()
            .map(|d| d.log.response_type.as_deref())
            .collect();
        let bodies: Vec<Option<&str>> = done
            .iter()
            .map(|d| d.log.response_body.as_deref())
            .collect();
        let rows = self
            .client
            .query(
                &self.ack_many,
                &[
                    &worker, &ids, &statuses, &attempts, &started, &finished, &resigned, &types,
                    &bodies,
                ],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Records a failed attempt; returns the row's new status (`pending`,
    /// `dead`), or `None` when the lease was lost.
    pub async fn fail(
        &self,
        worker: &str,
        f: &Failure,
    ) -> Result<Option<String>, tokio_postgres::Error> {
        let row = self
            .client
            .query_one(
                &self.fail,
                &[
                    &f.outbox_id,
                    &worker,
                    &f.status,
                    &f.error,
                    &f.retry_after_secs,
                    &f.class,
                    &f.log.attempt,
                    &f.log.started,
                    &f.log.finished,
                    &f.log.resigned,
                    &f.log.response_type,
                    &f.log.response_body,
                ],
            )
            .await?;
        Ok(row.get(0))
    }

    /// Gives unsent rows back; returns how many were released.
    pub async fn release(&self, worker: &str, ids: &[i64]) -> Result<i32, tokio_postgres::Error> {
        let row = self
            .client
            .query_one(&self.release, &[&worker, &ids])
            .await?;
        Ok(row.get(0))
    }
}

/// The claim's `send_delay` (seconds) as a duration; anything not a small
/// positive number is "now".
fn send_after(secs: Option<f64>) -> Duration {
    match secs {
        Some(s) if s.is_finite() && s > 0.0 => Duration::from_secs_f64(s.min(3600.0)),
        _ => Duration::ZERO,
    }
}

/// The claim's headers object as (name, value) pairs; non-string values
/// (which the extension never produces) are dropped.
fn parse_headers(text: &str) -> Vec<(String, String)> {
    match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text) {
        Ok(map) => map
            .into_iter()
            .filter_map(|(k, v)| match v {
                serde_json::Value::String(s) => Some((k, s)),
                _ => None,
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}
