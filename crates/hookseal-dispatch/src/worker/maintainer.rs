//! The maintainer: retention (`hookseal.maintain()`) on a timer.

use std::sync::Arc;
use std::time::Duration;

use crate::pg::Described;
use crate::Config;

/// Retention on a timer (`Config::maintain_every`): every `every`, call
/// `hookseal.maintain()` until it reports nothing more to do. Errors are
/// logged and retried at the next tick; the connection is made per tick
/// (one short session a minute costs nothing and survives restarts). The
/// connection and each call are bounded by `db_timeout`, as every other
/// database call of the worker: a link that stalls without closing skips
/// the tick, logged, instead of stopping retention for good (0.3.0 and
/// before waited forever).
pub(super) async fn run(cfg: Arc<Config>, every: Duration) {
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

/// One tick of [`run`]: `maintain()` until it has no more to do.
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

#[cfg(test)]
mod tests {
    use std::time::Instant;

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
