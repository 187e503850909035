//! The replay guard in a PostgreSQL table, shared by every replica.
//!
//! Plain SQL, no extension needed: one table keyed by (scope, id), an
//! `INSERT … ON CONFLICT DO UPDATE … WHERE expired` per accepted request, a
//! `DELETE` when the handler refuses, and expired rows purged every
//! [`PURGE_EVERY`] reservations.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hookseal::UnixTime;
use hookseal_postgres::{ConnectError, Described};
use tokio::sync::Mutex;
use tokio_postgres::Client;

use crate::replay::{BoxFuture, ReplayError, ReplayStore};

/// The table, as `PgReplayStore::create_table` creates it (or run it by
/// hand; the role the receiver connects as needs SELECT, INSERT, UPDATE and
/// DELETE on it).
pub const REPLAY_TABLE_SQL: &str = "CREATE TABLE IF NOT EXISTS hookseal_replay (
    scope    text   NOT NULL,
    id       text   NOT NULL,
    until_ms bigint NOT NULL, -- Unix ms after which the id may be accepted again
    PRIMARY KEY (scope, id)
)";

/// Expired rows are deleted once every this many reservations.
pub const PURGE_EVERY: u64 = 1000;

const RESERVE: &str = "INSERT INTO hookseal_replay AS r (scope, id, until_ms) VALUES ($1, $2, $3)
    ON CONFLICT (scope, id) DO UPDATE SET until_ms = EXCLUDED.until_ms WHERE r.until_ms <= $4
    RETURNING 1";
const FORGET: &str = "DELETE FROM hookseal_replay WHERE scope = $1 AND id = $2";
const PURGE: &str = "DELETE FROM hookseal_replay WHERE until_ms <= $1";

/// Opens a new connection when the last one broke. A `tokio_postgres`
/// error converts with `?` ([`ConnectError`] is `From` it).
pub type Connector =
    Box<dyn Fn() -> BoxFuture<'static, Result<Client, ConnectError>> + Send + Sync>;

/// A [`ReplayStore`] in PostgreSQL (table `hookseal_replay` on the
/// connection's search path).
pub struct PgReplayStore {
    connect: Connector,
    /// The open connection (a plain mutex: held only to copy the Arc).
    client: std::sync::Mutex<Option<Arc<Client>>>,
    /// One reconnect at a time.
    connecting: Mutex<()>,
    reserved: AtomicU64,
}

impl std::fmt::Debug for PgReplayStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgReplayStore").finish_non_exhaustive()
    }
}

impl PgReplayStore {
    /// A store that connects (and reconnects after a broken connection)
    /// with `connect`, so TLS and credentials stay the caller's choice.
    pub fn new(connect: Connector) -> Self {
        PgReplayStore {
            connect,
            client: std::sync::Mutex::new(None),
            connecting: Mutex::new(()),
            reserved: AtomicU64::new(0),
        }
    }

    /// A store that connects to `url` (a `postgres://` URL or key=value
    /// string) as every hookseal component does ([`hookseal_postgres`]):
    /// `sslmode=require` gives TLS verified against the Mozilla roots and
    /// the `PGSSLROOTCERT` file, otherwise plaintext, for a database on the
    /// same host or network. Until 0.3.0 this was `no_tls`, plaintext only.
    pub fn from_url(url: &str) -> Result<Self, ConnectError> {
        let _: tokio_postgres::Config = url.parse().map_err(ConnectError::Url)?;
        let (url, root_cert) = (url.to_owned(), hookseal_postgres::root_cert_from_env());
        Ok(PgReplayStore::new(Box::new(move || {
            let (url, root_cert) = (url.clone(), root_cert.clone());
            Box::pin(
                async move { hookseal_postgres::connect(&url, root_cert.as_deref(), None).await },
            )
        })))
    }

    /// Creates the table if it does not exist ([`REPLAY_TABLE_SQL`]).
    pub async fn create_table(&self) -> Result<(), ReplayError> {
        let client = self.client().await?;
        client.batch_execute(REPLAY_TABLE_SQL).await.map_err(db)?;
        Ok(())
    }

    /// Deletes every record that ended by `now`; returns how many.
    pub async fn purge(&self, now: UnixTime) -> Result<u64, ReplayError> {
        let client = self.client().await?;
        client.execute(PURGE, &[&now.as_millis()]).await.map_err(db)
    }

    /// The open connection, if there is one.
    fn current(&self) -> Option<Arc<Client>> {
        let slot = self.client.lock().unwrap_or_else(|p| p.into_inner());
        slot.as_ref().filter(|c| !c.is_closed()).cloned()
    }

    async fn client(&self) -> Result<Arc<Client>, ReplayError> {
        if let Some(c) = self.current() {
            return Ok(c);
        }
        let _one = self.connecting.lock().await;
        if let Some(c) = self.current() {
            return Ok(c);
        }
        let fresh = Arc::new((self.connect)().await.map_err(not_connected)?);
        *self.client.lock().unwrap_or_else(|p| p.into_inner()) = Some(fresh.clone());
        Ok(fresh)
    }

    async fn reserve_once(
        &self,
        scope: &str,
        id: &str,
        until: UnixTime,
        now: UnixTime,
    ) -> Result<bool, ReplayError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                RESERVE,
                &[&scope, &id, &until.as_millis(), &now.as_millis()],
            )
            .await
            .map_err(db)?;
        if self.reserved.fetch_add(1, Ordering::Relaxed) % PURGE_EVERY == PURGE_EVERY - 1 {
            let _ = client.execute(PURGE, &[&now.as_millis()]).await;
        }
        Ok(row.is_some())
    }
}

fn db(e: tokio_postgres::Error) -> ReplayError {
    // The server's message and SQLSTATE; tokio-postgres never includes the
    // connection string or password in an error.
    ReplayError::Database(Described(&e).to_string())
}

fn not_connected(e: ConnectError) -> ReplayError {
    ReplayError::Database(e.to_string())
}

impl ReplayStore for PgReplayStore {
    fn reserve<'a>(
        &'a self,
        scope: &'a str,
        id: &'a str,
        until: UnixTime,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<bool, ReplayError>> {
        Box::pin(self.reserve_once(scope, id, until, now))
    }

    fn forget(&self, scope: &str, id: &str) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        // Only an open connection is used: forgetting is best effort (the
        // record ends on its own at `until`).
        let Some(client) = self.current() else {
            return;
        };
        let (scope, id) = (scope.to_owned(), id.to_owned());
        handle.spawn(async move {
            if let Err(e) = client.execute(FORGET, &[&scope, &id]).await {
                tracing::warn!(error = %e, "replay store: could not forget an id");
            }
        });
    }
}
