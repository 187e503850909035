//! The portal's one PostgreSQL connection (through `hookseal-postgres`:
//! TLS with `PGSSLROOTCERT`, bounded connect), made on first use and made
//! again after it breaks. Queries take turns on it.

use std::cell::Cell;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row};

use crate::PortalError;

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one query may take before the page says the database is slow.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

tokio::task_local! {
    /// The time this request's queries took so far (see [`timed`]).
    static SPENT: Cell<Duration>;
}

/// Runs a request's handler, and says how long its queries took.
pub(crate) async fn timed<F: std::future::Future>(f: F) -> (F::Output, Duration) {
    SPENT
        .scope(Cell::new(Duration::ZERO), async {
            let out = f.await;
            (out, SPENT.with(Cell::get))
        })
        .await
}

pub(crate) struct Db {
    url: String,
    client: Mutex<Option<Client>>,
}

impl Db {
    pub(crate) fn new(url: String) -> Db {
        Db {
            url,
            client: Mutex::new(None),
        }
    }

    /// Runs one statement; the error is described (SQLSTATE and message).
    pub(crate) async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, PortalError> {
        let start = Instant::now();
        let answer = self.run(sql, params).await;
        // Outside a request (no scope): nothing to add to.
        let _ = SPENT.try_with(|t| t.set(t.get() + start.elapsed()));
        answer
    }

    async fn run(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, PortalError> {
        let mut slot = self.client.lock().await;
        if slot.as_ref().is_none_or(Client::is_closed) {
            let c = hookseal_postgres::connect_from_env(&self.url, CONNECT_TIMEOUT)
                .await
                .map_err(|e| PortalError::Database(e.to_string()))?;
            *slot = Some(c);
        }
        let Some(client) = slot.as_ref() else {
            return Err(PortalError::Database("no connection".into()));
        };
        match tokio::time::timeout(QUERY_TIMEOUT, client.query(sql, params)).await {
            Ok(Ok(rows)) => Ok(rows),
            Ok(Err(e)) => {
                let text = hookseal_postgres::Described(&e).to_string();
                if client.is_closed() {
                    *slot = None;
                }
                Err(PortalError::Database(text))
            }
            Err(_) => {
                *slot = None;
                Err(PortalError::Database(format!(
                    "no answer within {QUERY_TIMEOUT:?}"
                )))
            }
        }
    }
}
