//! Counters and a latency histogram (`prometheus-client`), rendered in the
//! OpenMetrics text format and optionally served over HTTP (`GET /metrics`,
//! axum).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// What a dispatcher counts. Cheap to update from many tasks (each counter
/// one atomic).
#[derive(Debug)]
pub struct Metrics {
    /// Rows claimed.
    pub claimed: Counter,
    /// 2xx answers recorded as delivered.
    pub delivered: Counter,
    /// Failed attempts scheduled for a retry.
    pub retried: Counter,
    /// Rows dead-lettered (retries exhausted or 410).
    pub dead: Counter,
    /// 410 answers (the endpoint was disabled).
    pub gone: Counter,
    /// Results not recorded because the lease had passed to another worker.
    pub lease_lost: Counter,
    /// Rows given back unsent at shutdown.
    pub released: Counter,
    /// Database errors (each followed by a reconnect).
    pub db_errors: Counter,
    attempts: Histogram,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("hookseal_dispatch");
        let mut counter = |name: &str, help: &str| {
            let c = Counter::default();
            registry.register(name, help, c.clone());
            c
        };
        let claimed = counter("claimed", "Outbox rows claimed.");
        let delivered = counter("delivered", "Rows delivered (2xx).");
        let retried = counter("retried", "Failed attempts scheduled for retry.");
        let dead = counter("dead", "Rows dead-lettered.");
        let gone = counter("gone", "410 answers; the endpoint was disabled.");
        let lease_lost = counter("lease_lost", "Results dropped: lease lost.");
        let released = counter("released", "Rows released unsent at shutdown.");
        let db_errors = counter("db_errors", "Database errors.");
        let attempts = Histogram::new(BUCKETS);
        registry.register("attempt_seconds", "HTTP attempt latency.", attempts.clone());
        Metrics {
            claimed,
            delivered,
            retried,
            dead,
            gone,
            lease_lost,
            released,
            db_errors,
            attempts,
            registry,
        }
    }
}

impl Metrics {
    /// Records one attempt's latency.
    pub fn observe(&self, d: Duration) {
        self.attempts.observe(d.as_secs_f64());
    }

    /// The OpenMetrics text exposition (which Prometheus reads).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(2048);
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Serves `GET /metrics` (and `GET /healthz`) on `addr` until the task is
/// dropped. Returns the bound address (useful with port 0).
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || async move {
                (
                    [(
                        CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    metrics.render(),
                )
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }));
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "metrics server stopped");
        }
    });
    Ok((bound, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let m = Metrics::default();
        m.observe(Duration::from_micros(500));
        m.observe(Duration::from_millis(30));
        m.observe(Duration::from_secs(60));
        m.delivered.inc_by(2);
        let text = m.render();
        assert!(
            text.contains("hookseal_dispatch_delivered_total 2\n"),
            "{text}"
        );
        assert!(text.contains("_bucket{le=\"0.001\"} 1\n"), "{text}");
        assert!(text.contains("_bucket{le=\"0.05\"} 2\n"), "{text}");
        assert!(text.contains("_bucket{le=\"30.0\"} 2\n"), "{text}");
        assert!(text.contains("_bucket{le=\"+Inf\"} 3\n"), "{text}");
        assert!(
            text.contains("hookseal_dispatch_attempt_seconds_count 3\n"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn metrics_are_served_over_http() {
        let m = Arc::new(Metrics::default());
        m.claimed.inc_by(7);
        let (addr, task) = serve("127.0.0.1:0".parse().unwrap(), m).await.unwrap();
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let r = client
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        assert!(
            text.contains("hookseal_dispatch_claimed_total 7\n"),
            "{text}"
        );
        let r = client
            .get(format!("http://{addr}/other"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        task.abort();
    }
}
